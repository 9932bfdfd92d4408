"""Images as a smoothing task: noise in [0, 1] pixel space, one label per pixel.

The smoothed classifier is defined on images in [0, 1]: the noise is added
there (no clipping — clipping would change the noise distribution and void the
certificate); a :class:`~mtcert_torch.SegmentationAdapter` then resizes to each
scale, normalises, runs the network and brings the logits back to the full
input resolution, where certification happens (paper §6.2).

Imports the task interface (:mod:`mtcert_torch.task`) and the adapter.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtcert_torch.task import Smoothed, TensorTask
from mtcert_torch.tasks.adapter import SegmentationAdapter

__all__ = ["ImageTask", "as_image"]


def as_image(image, device) -> torch.Tensor:
    """A float32 ``(C, H, W)`` tensor in [0, 1] on ``device`` (uint8 input is divided by 255)."""
    img = torch.as_tensor(image)
    if img.dim() != 3:
        raise ValueError(f"image must have shape (3, H, W); got {tuple(img.shape)}")
    if img.dtype == torch.uint8:
        img = img.float().div_(255.0)
    return img.to(device=device, dtype=torch.float32)


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
        if isinstance(self.model, SegmentationAdapter):
            return self.model.labels(z)  # labels already (saves one dispatch)
        return super().classify(z)

    def prepare(self, x, device: torch.device) -> Smoothed:
        img = as_image(x, device)
        _, h, w = img.shape
        info = {"height": int(h), "width": int(w), "pixels": int(h * w)}
        return Smoothed(img, self.classify, info=info)

    def record(self, info: dict) -> dict:
        return {k: info[k] for k in ("height", "width", "pixels")}
