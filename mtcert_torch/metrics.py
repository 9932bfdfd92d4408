"""On-device per-image segmentation statistics (paper App. A.1), torchmetrics-style.

A functional :func:`segmentation_stats` computes, for one image, the counts
every Table-1 column is built from; :class:`SegmentationMetrics` accumulates
them over a dataset.  Abstained pixels (label ``-1``, :data:`mtcert.ABSTAIN`)
count as wrong and belong to no predicted class; pixels whose ground truth is
``ignore_index`` are left out of accuracy and IoU.

Definitions (App. A.1):

* (certified) per-pixel accuracy: correct pixels / non-ignored pixels, pooled
  over all images;
* (certified) mIoU: IoU_c^i = |P_c^i ∩ G_c^i| / |P_c^i ∪ G_c^i| for every image
  i and class c, averaged over all (i, c) pairs whose union is non-empty;
* abstention rate: abstained pixels / non-ignored pixels.

These are the definitions of :mod:`mtcert.metrics` (``tests/test_torch_certifier.py``
checks that both agree); this twin works on tensors where they live and keeps
the per-image counts so a results file can be summarised again later.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ABSTAIN = -1


def segmentation_stats(pred, target, num_classes: int, *, ignore_index: int = 255) -> dict:
    """Counts for one image: pixels, valid, correct, abstained, per-class ∩ and ∪.

    Parameters
    ----------
    pred : tensor or array (H, W)
        Predicted labels in ``[0, num_classes)`` or ``-1`` for abstain.
    target : tensor or array (H, W)
        Ground truth in ``[0, num_classes)`` or ``ignore_index``.

    Examples
    --------
    >>> import torch
    >>> s = segmentation_stats(torch.tensor([[0, 1], [-1, 1]]), torch.tensor([[0, 1], [1, 255]]), 2)
    >>> s["valid"], s["correct"], s["abstained"], s["intersection"].tolist(), s["union"].tolist()
    (3, 2, 1, [1, 1], [1, 2])
    """
    pred = torch.as_tensor(pred)
    target = torch.as_tensor(target, device=pred.device)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        raise ValueError(
            f"target holds labels outside [0, {num_classes}) that are not ignore_index="
            f"{ignore_index}: e.g. {int(target[bad][0])}"
        )
    if bool(((pred < ABSTAIN) | (pred >= num_classes)).any()):
        raise ValueError(f"pred holds labels outside [-1, {num_classes})")
    t = target[valid]
    p = pred[valid]
    hit = p == t
    inter = torch.bincount(t[hit], minlength=num_classes)
    area_t = torch.bincount(t, minlength=num_classes)
    area_p = torch.bincount(p[p >= 0], minlength=num_classes)
    return {
        "pixels": int(pred.numel()),
        "valid": int(valid.sum()),
        "correct": int(hit.sum()),
        "abstained": int((pred == ABSTAIN).sum()),
        "abstained_valid": int((p == ABSTAIN).sum()),
        "intersection": inter.cpu().numpy(),
        "union": (area_t + area_p - inter).cpu().numpy(),
    }


class SegmentationMetrics:
    """Accumulate accuracy, mIoU and abstention rate over images (App. A.1).

    Examples
    --------
    >>> import torch
    >>> m = SegmentationMetrics(2)
    >>> _ = m.update(torch.tensor([[0, 1], [-1, 1]]), torch.tensor([[0, 1], [1, 1]]))
    >>> {k: round(v, 4) for k, v in m.compute().items()}
    {'accuracy': 0.75, 'miou': 0.8333, 'abstain_rate': 0.25, 'images': 1}
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.pixels = self.valid = self.correct = self.abstained = self.images = 0
        self.abstained_valid = 0
        self.iou_sum = 0.0
        self.iou_terms = 0

    def update(self, pred, target) -> dict:
        """Add one image; returns its :func:`segmentation_stats`."""
        s = segmentation_stats(pred, target, self.num_classes, ignore_index=self.ignore_index)
        self.add(s)
        return s

    def add(self, stats: dict) -> None:
        """Add precomputed per-image stats (e.g. read back from a results file)."""
        self.images += 1
        self.pixels += stats["pixels"]
        self.valid += stats["valid"]
        self.correct += stats["correct"]
        self.abstained += stats["abstained"]
        self.abstained_valid += stats["abstained_valid"]
        inter = np.asarray(stats["intersection"], dtype=np.float64)
        union = np.asarray(stats["union"], dtype=np.float64)
        present = union > 0
        self.iou_sum += float((inter[present] / union[present]).sum())
        self.iou_terms += int(present.sum())

    def compute(self) -> dict:
        return {
            "accuracy": self.correct / self.valid if self.valid else math.nan,
            "miou": self.iou_sum / self.iou_terms if self.iou_terms else math.nan,
            "abstain_rate": self.abstained_valid / self.valid if self.valid else math.nan,
            "images": self.images,
        }


def part_iou(intersection, union, parts: tuple[int, int]) -> float:
    """ShapeNet-part IoU of one shape: mean IoU over its category's parts only.

    The usual ShapeNet-part convention (Qi et al., PointNet; the reference
    PointNet++ ``test_partseg.py``): for each part ``c`` in ``range(*parts)``,
    IoU_c = |P_c ∩ G_c| / |P_c ∪ G_c|, and IoU_c = 1 when the part is neither
    predicted nor present; the shape's IoU is their mean.  Averaged over
    shapes it is the "instance mIoU", averaged per category and then over
    categories the "class mIoU".  Feed it the per-class counts of
    :func:`segmentation_stats`; abstained points belong to no predicted part,
    so they lower the IoU of their true part.

    Parameters
    ----------
    intersection, union : array_like (num_classes,)
        Per-class counts of one shape.
    parts : (start, stop)
        The category's part labels, e.g. :data:`mtcert_torch.shapenet.PART_RANGES`.

    Examples
    --------
    >>> s = segmentation_stats([12, 12, -1, 13], [12, 12, 13, 13], 50)
    >>> part_iou(s["intersection"], s["union"], (12, 16))  # (1 + 1/2 + 1 + 1) / 4
    0.875
    """
    lo, hi = (int(v) for v in parts)
    inter = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    if not 0 <= lo < hi <= min(len(inter), len(union)):
        raise ValueError(f"parts must be a range (start, stop) of class indices; got {parts}")
    i, u = inter[lo:hi], union[lo:hi]
    ious = np.divide(i, u, out=np.ones_like(u), where=u > 0)
    return float(ious.mean())
