"""Images as a smoothing task: noise in [0, 1] pixel space, one label per pixel.

The smoothed classifier is defined on images in [0, 1]: the noise is added
there (no clipping — clipping would change the noise distribution and void the
certificate); a :class:`~mtcert_torch.SegmentationAdapter` then resizes to each
scale, normalises, runs the network and brings the logits back to the full
input resolution, where certification happens (paper §6.2).

Integer images are read with their documented scale (:data:`INTEGER_SCALES`:
``uint8`` / 255, ``uint16`` / 65535); every other integer dtype is refused, since
nothing says whether an ``int64`` image holds 0..255 or 0..1 (certifying 0..255
values as if they were in [0, 1] makes σ = 0.25 noise negligible and the radius
meaningless).  Non-finite scores stop the certification
(:class:`~mtcert_torch.task.NonFiniteOutputError`).

Imports the task interface (:mod:`mtcert_torch.task`) and the adapter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtcert_torch.task import Smoothed, TensorTask, as_labels
from mtcert_torch.tasks.adapter import SegmentationAdapter

__all__ = ["INTEGER_SCALES", "ImageTask", "as_image"]

#: Integer image dtypes and the value that means 1.0 (the largest value of the type).
INTEGER_SCALES = {torch.uint8: 255.0, torch.uint16: 65535.0}


def as_image(image, device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A ``(C, H, W)`` tensor in [0, 1] of ``dtype`` on ``device``.

    ``uint8`` input is divided by 255, ``uint16`` by 65535 (:data:`INTEGER_SCALES`);
    floating-point input is taken as already in [0, 1], and refused with a ``ValueError``
    naming ``image`` when a value is outside [0, 1] or NaN: σ and the certified radius are in
    units of that range, so a 0..255 float image would certify a radius 255 times too
    large.  Other integer and boolean dtypes are refused too: their scale is unknown.

    Examples
    --------
    >>> import torch
    >>> as_image(torch.full((3, 1, 1), 255, dtype=torch.uint8), "cpu").flatten().tolist()
    [1.0, 1.0, 1.0]
    >>> as_image(torch.zeros(3, 1, 1, dtype=torch.int64), "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image has dtype torch.int64, whose scale is unknown: give uint8 (0..255), ...
    >>> as_image(torch.full((3, 1, 1), 128.0), "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image has float values outside [0, 1] (from 128 to 128): ...
    """
    img = torch.as_tensor(image)
    if img.dim() != 3:
        raise ValueError(f"image must have shape (3, H, W); got {tuple(img.shape)}")
    if not img.dtype.is_floating_point:
        scale = INTEGER_SCALES.get(img.dtype)
        if scale is None:
            raise ValueError(
                f"image has dtype {img.dtype}, whose scale is unknown: give uint8 (0..255), "
                "uint16 (0..65535) or floats in [0, 1], e.g. image.float() / 255 for 0..255 "
                "values"
            )
        # float64 holds every uint16 exactly; then to the smoothing space's dtype
        img = img.to(torch.float64).div_(scale)
    elif img.numel():
        lo, hi = torch.aminmax(img)
        if not (lo >= 0 and hi <= 1):  # NaN fails both
            raise ValueError(
                f"image has float values outside [0, 1] (from {lo.item():g} to {hi.item():g}): "
                "floats are taken as pixel values in [0, 1], the units of sigma and of the "
                "certified radius; divide 0..255 values by 255 (or pass uint8)"
            )
    return img.to(device=device, dtype=dtype)


class ImageTask(TensorTask):
    """Semantic segmentation of ``(C, H, W)`` images in [0, 1] pixel space.

    Parameters
    ----------
    model : SegmentationAdapter or callable
        A :class:`~mtcert_torch.SegmentationAdapter` (recommended: it brings
        normalisation, scales, flips and upsampling) or any callable mapping
        images ``(B, C, H, W)`` to labels ``(B, H, W)`` or logits ``(B, K, H, W)``.
    num_classes : int, optional
        Taken from the adapter when not given.
    noise : {"gaussian", "laplace"}
        ℓ2 (Gaussian) or ℓ1 (Laplace) certificates in pixel space.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv2d(3, 2, 1)
    >>> task = ImageTask(SegmentationAdapter(net, num_classes=2))
    >>> task.num_classes, task.prepare(torch.rand(3, 4, 5), torch.device("cpu")).info
    (2, {'height': 4, 'width': 5, 'pixels': 20})
    """

    def __init__(
        self,
        model: SegmentationAdapter | Callable,
        *,
        num_classes: int | None = None,
        noise: str = "gaussian",
    ):
        if isinstance(model, SegmentationAdapter):
            num_classes = model.num_classes if num_classes is None else num_classes
        elif not callable(model):
            raise ValueError("model must be a SegmentationAdapter or a callable")
        if num_classes is None:
            raise ValueError("num_classes is required when model is not a SegmentationAdapter")
        super().__init__(model, num_classes=num_classes, noise=noise)

    @property
    def device(self) -> torch.device | None:
        if isinstance(self.model, SegmentationAdapter):
            return self.model.device
        return super().device

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        model = self.model
        if isinstance(model, SegmentationAdapter):
            # the adapter's labels, with the scores checked: NaN logits must not become class 0
            scores = model.probabilities(z) if model.multi else model.logits(z)
            return as_labels(scores)
        return super().classify(z)

    def prepare(self, x, device: torch.device) -> Smoothed:
        img = as_image(x, device, self.dtype)
        _, h, w = img.shape
        info = {"height": int(h), "width": int(w), "pixels": int(h * w)}
        return Smoothed(img, self.classify, info=info)

    def record(self, info: dict) -> dict:
        return {k: info[k] for k in ("height", "width", "pixels")}
