"""Wrap any segmentation network as a pixel-space classifier for smoothing.

The smoothed classifier is defined on images in [0, 1] pixel space: the noise
is added there (no clipping — clipping would change the noise distribution and
void the certificate), and only then does the adapter resize to each scale,
normalise with the model's mean/std, run the network and bring the logits back
to the full input resolution, where certification happens (paper §6.2).

Imports torch and the core's validation only.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mtcert.stats.validation import check_option, check_positive_int, check_positive_real

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUTOCAST = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


class SegmentationAdapter(torch.nn.Module):
    """Pixel-space, multi-scale view of a segmentation network.

    Parameters
    ----------
    model : torch.nn.Module
        Maps normalised images ``(B, 3, H', W')`` to logits ``(B, C, h, w)`` at
        any resolution (HRNetV2 returns 1/4 of the input).
    num_classes : int
        ``C``.
    mean, std : sequence of float
        Per-channel normalisation applied after the noise (ImageNet by default).
    scales : float or sequence of float
        Resize factors.  One scale: the labels are the argmax of the upsampled
        logits.  Several scales (or ``flip``): softmax probabilities of every
        scale (and its horizontally flipped copy) are upsampled to full
        resolution and averaged, as in HRNet's multi-scale inference used by the
        paper (Table 1, "multi").
    flip : bool
        Also evaluate horizontally flipped inputs (flipped back before averaging).
    align_corners : bool
        Passed to every bilinear resize (HRNet's configs use ``False``).
    autocast : {None, "bf16", "fp16"}
        Run the network under :func:`torch.autocast` with this dtype.  Off by
        default: reduced precision speeds up GPU inference (roughly 1.5–2× on
        tensor-core GPUs) but can flip the argmax at pixels whose top two logits
        are close.  The certificate stays valid — it is a statement about the
        classifier actually run, reduced precision included — but the labels
        may differ slightly from a float32 run.
    channels_last : bool
        Convert the network's parameters (in place) and every normalised batch
        to the ``torch.channels_last`` memory format, which convolutions on
        tensor-core GPUs run faster.  Off by default.  The values are the same;
        only the layout (and so the order of floating-point operations inside
        the convolutions) changes, so a label can flip only where the top two
        logits agree to rounding error.
    compile : bool or str
        Run the network through :func:`torch.compile` (``True``: the default
        ``"inductor"`` backend; a string names another backend), compiled on the
        first call with ``dynamic=False``: one graph per input shape (each scale,
        and a smaller last batch, compiles once more).  Off by default; the
        backend is kept in ``compile_backend`` (None when off) and the first
        call's time, compilation included, in ``compile_seconds``.
        Same values up to the order of floating-point operations, as for
        ``channels_last``.  The noise is drawn outside the adapter, so neither
        option changes the noise stream.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(3, 4, 1)
    >>> adapter = SegmentationAdapter(net, num_classes=4, scales=(0.5, 1.0), flip=True)
    >>> adapter.labels(torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 8, 8])
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        num_classes: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        scales: float | Sequence[float] = 1.0,
        flip: bool = False,
        align_corners: bool = False,
        autocast: str | None = None,
        channels_last: bool = False,
        compile: bool | str = False,
    ):
        super().__init__()
        self.model = model
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if not isinstance(compile, bool | str) or compile == "":
            raise ValueError(f"compile must be True, False or a backend name; got {compile!r}")
        # (not ``self.compile``: that is torch.nn.Module's own compile method)
        self.compile_backend = ("inductor" if compile is True else compile) or None
        #: Seconds of the first call through the compiled network (compilation
        #: included); None until then, or when ``compile`` is off.
        self.compile_seconds: float | None = None
        # kept out of the module tree: the compiled wrapper holds the same parameters
        object.__setattr__(self, "_compiled", None)
        self.num_classes = check_positive_int(num_classes, "num_classes", minimum=1)
        scales = (scales,) if isinstance(scales, int | float) else tuple(scales)
        if not scales:
            raise ValueError("scales must contain at least one scale")
        self.scales = tuple(check_positive_real(s, "scales") for s in scales)
        self.flip = bool(flip)
        self.align_corners = bool(align_corners)
        if autocast not in AUTOCAST:
            check_option(autocast, "autocast", ("bf16", "fp16"))
        self.autocast = autocast
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean.shape != std.shape:
            raise ValueError(
                f"mean and std must have the same length; got {mean.shape[1]} and {std.shape[1]}"
            )
        if not bool(torch.isfinite(mean).all()):  # NaN or inf: the network would see no image
            raise ValueError(f"mean must be finite numbers; got {mean.flatten().tolist()}")
        if not bool((std > 0).all() & torch.isfinite(std).all()):
            raise ValueError(f"std must be finite and positive; got {std.flatten().tolist()}")
        # On the wrapped model's device: wrapping a model already moved to the GPU must work.
        device = next(iter(model.parameters()), next(iter(model.buffers()), mean)).device
        self.register_buffer("mean", mean.to(device), persistent=False)
        self.register_buffer("std", std.to(device), persistent=False)

    @property
    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return self.mean.device

    @property
    def multi(self) -> bool:
        """True when outputs are averaged (several scales or flips)."""
        return len(self.scales) > 1 or self.flip

    def _autocast(self, x: torch.Tensor):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=x.device.type, dtype=AUTOCAST[self.autocast])

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"images must have shape (B, {self.mean.shape[1]}, H, W); got {tuple(x.shape)}"
            )

    def _logits_at(self, x: torch.Tensor, scale: float, flip: bool) -> torch.Tensor:
        """Full-resolution float32 logits of the network run at ``scale``."""
        size = x.shape[-2:]
        if scale != 1.0:
            # int(s * L + 0.5) as HRNet's multi-scale inference does.
            scaled = (max(1, int(scale * size[0] + 0.5)), max(1, int(scale * size[1] + 0.5)))
            x = F.interpolate(x, size=scaled, mode="bilinear", align_corners=self.align_corners)
        if flip:
            x = x.flip(-1)
        # .to is free when the devices agree; it covers a model moved after wrapping.
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(x):
            out = self._network(x)
        if isinstance(out, list | tuple):  # HRNet-OCR style auxiliary outputs: keep the last
            out = out[-1]
        if out.dim() != 4 or out.shape[1] != self.num_classes:
            raise ValueError(
                f"model must return logits (B, {self.num_classes}, h, w); got {tuple(out.shape)}"
            )
        out = out.float()
        if flip:
            out = out.flip(-1)
        if out.shape[-2:] != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=self.align_corners)
        return out

    def _network(self, x: torch.Tensor):
        """The wrapped network's output for ``x``, through torch.compile when asked."""
        if self.compile_backend is None:
            return self.model(x)
        if self._compiled is None:
            compiled = torch.compile(self.model, backend=self.compile_backend, dynamic=False)
            start = time.perf_counter()
            out = compiled(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            self.compile_seconds = time.perf_counter() - start
            object.__setattr__(self, "_compiled", compiled)
            return out
        return self._compiled(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Full-resolution logits at the first scale, without flip (used for training)."""
        self._check(x)
        return self._logits_at(x, self.scales[0], False)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Full-resolution class probabilities ``(B, C, H, W)``, averaged over scales/flips."""
        self._check(x)
        probs = None
        views = [(s, f) for s in self.scales for f in ((False, True) if self.flip else (False,))]
        for scale, flip in views:
            p = self._logits_at(x, scale, flip).softmax(1)
            probs = p if probs is None else probs.add_(p)
        return probs.div_(len(views))

    def labels(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel labels ``(B, H, W)`` (int64) of images ``x`` in [0, 1] pixel space."""
        if not self.multi:
            # softmax is monotone: the argmax of the upsampled logits is the same label.
            return self.logits(x).argmax(1)
        return self.probabilities(x).argmax(1)

    forward = labels
