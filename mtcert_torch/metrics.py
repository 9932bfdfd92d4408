"""Per-input segmentation counts computed on the model's device.

:func:`segmentation_tally` is the torch twin of
:func:`mtcert.certify.metrics.segmentation_tally`: it counts where the labels live
(one ``bincount`` per quantity, no host copy of the label maps) and returns
the core's :class:`mtcert.certify.metrics.SegmentationTally`, which
:class:`mtcert.certify.metrics.CertifiedSegmentationMetrics` accumulates (definitions
in :mod:`mtcert.certify.metrics`, paper App. A.1).  Abstained components
(:data:`mtcert.ABSTAIN`) count as wrong and belong to no predicted class;
components whose target is ``ignore_index`` are left out.

A base module: imports torch and the core's metrics only.
"""

from __future__ import annotations

import torch

from mtcert import ABSTAIN
from mtcert.certify.metrics import SegmentationTally

__all__ = ["segmentation_tally"]


def segmentation_tally(
    pred, target, num_classes: int, *, ignore_index: int | None = 255
) -> SegmentationTally:
    """Counts of one input: components, valid, correct, abstained, per-class ∩ and ∪.

    Parameters
    ----------
    pred : tensor or array ``(*components)``
        Predicted labels in ``[0, num_classes)`` or ``-1`` for abstain.
    target : tensor or array ``(*components)``
        Ground truth in ``[0, num_classes)`` or ``ignore_index``.
    num_classes : int
    ignore_index : int or None, default 255
        Target value to leave out; None scores every component.

    Examples
    --------
    >>> import torch
    >>> pred, target = torch.tensor([[0, 1], [-1, 1]]), torch.tensor([[0, 1], [1, 255]])
    >>> c = segmentation_tally(pred, target, 2)
    >>> c.valid, c.correct, c.abstained, c.intersection.tolist(), c.union.tolist()
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
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index={ignore_index} collides with a class in [0, {num_classes})")
    valid = (
        torch.ones_like(target, dtype=torch.bool)
        if ignore_index is None
        else target != ignore_index
    )
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
    # One transfer to the host for all scalars and both vectors.
    scalars = torch.stack(
        [valid.sum(), hit.sum(), (pred == ABSTAIN).sum(), (p == ABSTAIN).sum()]
    ).tolist()
    return SegmentationTally(
        components=int(pred.numel()),
        valid=scalars[0],
        correct=scalars[1],
        abstained=scalars[2],
        abstained_valid=scalars[3],
        intersection=inter.cpu().numpy(),
        union=(area_t + area_p - inter).cpu().numpy(),
    )
