"""A synthetic segmentation task and a tiny network, for tests, demos and benchmarks.

Images are discs (class 1) and squares (class 2) with their own colour on a
striped, noisy background (class 0).  Everything is drawn from one seeded
:class:`numpy.random.Generator`, so a dataset is reproducible from its seed.

Imports numpy, torch and Pillow only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

SHAPE_CLASSES = ("background", "disc", "square")
SHAPE_PALETTE = ((40, 40, 40), (220, 60, 60), (60, 110, 230))


def make_shapes(num: int, size: int = 32, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` images ``(num, 3, size, size)`` in [0, 1] and labels ``(num, size, size)``.

    Each image has a textured background (random stripes plus pixel noise) and
    one disc and one square at random places and sizes; the square is drawn
    last, so it occludes the disc where they overlap.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((num, 3, size, size))
    labels = np.zeros((num, size, size), dtype=np.int64)
    for i in range(num):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.3, 0.8)
        stripes = 0.5 + 0.15 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        img = stripes[None] * rng.uniform(0.7, 1.0, size=(3, 1, 1))
        lab = labels[i]
        r = rng.uniform(0.15, 0.25) * size
        cy, cx = rng.uniform(r, size - r, size=2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        half = rng.uniform(0.12, 0.2) * size
        sy, sx = rng.uniform(half, size - half, size=2)
        square = (np.abs(yy - sy) <= half) & (np.abs(xx - sx) <= half)
        for mask, cls, colour in ((disc, 1, (0.85, 0.25, 0.2)), (square, 2, (0.2, 0.4, 0.9))):
            img[:, mask] = np.asarray(colour)[:, None] * rng.uniform(0.85, 1.0)
            lab[mask] = cls
        images[i] = np.clip(img + rng.normal(0, 0.03, size=img.shape), 0, 1)
    return torch.from_numpy(images).float(), torch.from_numpy(labels)


def write_folder_dataset(root, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """Write ``root/images/*.png`` and ``root/labels/*.png`` (a :class:`FolderDataset`)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        arr = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(arr).save(root / "images" / f"shape_{i:04d}.png")
        Image.fromarray(lab.numpy().astype(np.uint8)).save(root / "labels" / f"shape_{i:04d}.png")
    return root


class TinySegNet(torch.nn.Module):
    """Four-layer fully convolutional net with logits at half resolution.

    The stride-2 layer makes the adapter's bilinear upsampling part of every
    test that uses it, as with HRNetV2's 1/4-resolution logits.
    """

    def __init__(self, num_classes: int = 3, width: int = 16):
        super().__init__()
        w = width
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(w, w, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(w, w, 3, padding=2, dilation=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(w, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
