"""Certified segmentation metrics (Fischer et al. 2021, App. A.1).

Predictions are certified label maps: a class in ``[0, num_classes)`` or
:data:`~mtcert.cohen.ABSTAIN` (-1).  Abstention is not a class: an abstained
pixel is never correct, belongs to no predicted class, and still counts in the
ground-truth class's union.  Pixels whose target equals ``ignore_index``
(default 255, the Cityscapes / Pascal-Context convention) are left out of
every metric.

- certified per-pixel accuracy: correct pixels / non-ignored pixels, pooled
  over all inputs;
- mean IoU as in the paper: :math:`IoU_c^i = |P_c^i \\cap G_c^i| / |P_c^i \\cup G_c^i|`
  for every input i and class c, averaged over all (i, c) pairs.  Pairs with
  an empty union (class absent from both prediction and ground truth of that
  input) have no IoU and are left out of the average;
- abstention rate: abstained / non-ignored pixels.

:class:`CertifiedSegmentationMetrics` accumulates these over a data set one
input (or batch) at a time; the functions are one-shot conveniences.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from mtcert.cohen import ABSTAIN
from mtcert.validation import as_integer_array, check_positive_int

__all__ = [
    "CertifiedSegmentationMetrics",
    "SegmentationScores",
    "abstain_rate",
    "certified_accuracy",
    "iou_per_input",
    "mean_iou",
]


def _check_ignore(ignore_index, num_classes):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"ignore_index must be an integer or None; got {ignore_index!r}")
    ignore_index = int(ignore_index)
    if num_classes is not None and 0 <= ignore_index < num_classes:
        raise ValueError(f"ignore_index={ignore_index} collides with a class in [0, {num_classes})")
    return ignore_index


def _labels(x, name):
    """Integer labels, native byte order; uint64 as int64 (numpy mixes the two to float)."""
    return as_integer_array(x, name, strict=True)


def _pair(pred, target, num_classes, ignore_index, batch_axis):
    """Validate; return (pred, target, valid) as (B, P) arrays (B = inputs)."""
    pred = _labels(pred, "pred")
    target = _labels(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape; got {pred.shape} and {target.shape}"
        )
    if batch_axis is None:
        pred, target = pred.reshape(1, -1), target.reshape(1, -1)
    else:
        if isinstance(batch_axis, bool) or not isinstance(batch_axis, numbers.Integral):
            raise ValueError(f"batch_axis must be None or an integer; got {batch_axis!r}")
        if not -pred.ndim <= batch_axis < pred.ndim:
            raise ValueError(f"batch_axis {batch_axis} is out of bounds for shape {pred.shape}")
        b = pred.shape[batch_axis]
        pred = np.moveaxis(pred, batch_axis, 0).reshape(b, -1)
        target = np.moveaxis(target, batch_axis, 0).reshape(b, -1)
    valid = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    upper = num_classes if num_classes is not None else np.iinfo(np.int64).max
    bad_t = valid & ((target < 0) | (target >= upper))
    if bad_t.any():
        raise ValueError(
            f"target values must lie in [0, {num_classes}) or equal ignore_index="
            f"{ignore_index}; found {target[bad_t].flat[0]}"
        )
    bad_p = (pred != ABSTAIN) & ((pred < 0) | (pred >= upper))
    if bad_p.any():
        raise ValueError(
            f"pred values must lie in [0, {num_classes}) or be ABSTAIN ({ABSTAIN}); "
            f"found {pred[bad_p].flat[0]}"
        )
    return pred, target, valid


def _areas(pred, target, valid, num_classes):
    """Per input and class: |P ∩ G|, |P|, |G| over non-ignored pixels, each (B, C)."""
    n_in = pred.shape[0]
    size = n_in * num_classes
    offset = (np.arange(n_in, dtype=np.int64) * num_classes)[:, None]
    hit = valid & (pred == target)
    inter = np.bincount((offset + target)[hit], minlength=size)
    has_pred = valid & (pred != ABSTAIN)
    area_p = np.bincount((offset + pred)[has_pred], minlength=size)
    area_g = np.bincount((offset + target)[valid], minlength=size)
    shape = (n_in, num_classes)
    return inter.reshape(shape), area_p.reshape(shape), area_g.reshape(shape)


def iou_per_input(pred, target, *, num_classes, ignore_index=255, batch_axis=None):
    """IoU of every input and class, NaN where the union is empty.

    Parameters
    ----------
    pred : array_like of int
        Certified labels in ``[0, num_classes)`` or ``ABSTAIN``.
    target : array_like of int
        Ground truth in ``[0, num_classes)`` or ``ignore_index``; same shape.
    num_classes : int
    ignore_index : int or None, default 255
        Target value of pixels to leave out.
    batch_axis : int or None, default None
        None: the arrays are one input.  An integer: that axis indexes inputs.

    Returns
    -------
    ndarray, shape (num_inputs, num_classes)

    Examples
    --------
    >>> from mtcert.metrics import iou_per_input
    >>> iou_per_input([0, 0, -1, 1], [0, 1, 1, 1], num_classes=3)
    array([[0.5       , 0.33333333,        nan]])
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    ignore_index = _check_ignore(ignore_index, num_classes)
    pred, target, valid = _pair(pred, target, num_classes, ignore_index, batch_axis)
    inter, area_p, area_g = _areas(pred, target, valid, num_classes)
    union = area_p + area_g - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(pred, target, *, num_classes, ignore_index=255, batch_axis=None):
    """Certified mean IoU as in Fischer et al. (2021), App. A.1.

    The average of :func:`iou_per_input` over all (input, class) pairs with a
    non-empty union; NaN if there is none.  Parameters as there.

    References
    ----------
    .. [1] Fischer, Baader, Vechev, "Scalable Certified Segmentation via
       Randomized Smoothing", ICML 2021, App. A.1.

    Examples
    --------
    >>> from mtcert.metrics import mean_iou
    >>> round(mean_iou([0, 0, -1, 1], [0, 1, 1, 1], num_classes=3), 4)
    0.4167
    """
    iou = iou_per_input(
        pred, target, num_classes=num_classes, ignore_index=ignore_index, batch_axis=batch_axis
    )
    defined = ~np.isnan(iou)
    return float(iou[defined].mean()) if defined.any() else float("nan")


def certified_accuracy(pred, target, *, ignore_index=255):
    """Certified per-pixel accuracy: correct / non-ignored pixels (ABSTAIN is never correct).

    Pooled over every pixel of the arrays (the paper's "over all images").
    NaN if every pixel is ignored.

    Examples
    --------
    >>> from mtcert.metrics import certified_accuracy
    >>> certified_accuracy([0, 0, -1, 1, 2], [0, 1, 1, 1, 255])
    0.5
    """
    ignore_index = _check_ignore(ignore_index, None)
    pred, target, valid = _pair(pred, target, None, ignore_index, None)
    n = int(valid.sum())
    return float(np.count_nonzero(valid & (pred == target))) / n if n else float("nan")


def abstain_rate(pred, target=None, *, ignore_index=255):
    """Fraction of abstained components (of the non-ignored ones when ``target`` is given).

    Examples
    --------
    >>> from mtcert.metrics import abstain_rate
    >>> abstain_rate([0, -1, -1, 2])
    0.5
    >>> abstain_rate([0, -1, -1, 2], [0, 255, 1, 2])
    0.3333333333333333
    """
    if target is None:
        pred = _labels(pred, "pred")
        if pred.size == 0:
            return float("nan")
        return float(np.count_nonzero(pred == ABSTAIN)) / pred.size
    ignore_index = _check_ignore(ignore_index, None)
    pred, target, valid = _pair(pred, target, None, ignore_index, None)
    n = int(valid.sum())
    return float(np.count_nonzero(valid & (pred == ABSTAIN))) / n if n else float("nan")


@dataclass(frozen=True)
class SegmentationScores:
    """Metrics computed by :meth:`CertifiedSegmentationMetrics.compute`.

    Attributes
    ----------
    accuracy : float
        Certified per-pixel accuracy over all non-ignored pixels.
    mean_iou : float
        Paper App. A.1: mean of IoU over all (input, class) pairs with a
        non-empty union.
    abstain_rate : float
        Abstained / non-ignored pixels.
    class_iou : ndarray (num_classes,)
        Per class, the mean IoU over the inputs where it is defined (NaN if none).
    pooled_iou : ndarray (num_classes,)
        Per class, intersection / union summed over the data set (the usual
        benchmark IoU from one confusion matrix); NaN for classes never seen.
    pooled_mean_iou : float
        nanmean of ``pooled_iou`` (the common data-set mIoU, *not* the paper's).
    n_inputs, n_pixels : int
        Inputs seen and non-ignored pixels counted.
    """

    accuracy: float
    mean_iou: float
    abstain_rate: float
    class_iou: np.ndarray
    pooled_iou: np.ndarray
    pooled_mean_iou: float
    n_inputs: int
    n_pixels: int

    def __repr__(self):
        return (
            f"SegmentationScores(accuracy={self.accuracy:.4f}, mean_iou={self.mean_iou:.4f}, "
            f"abstain_rate={self.abstain_rate:.4f}, pooled_mean_iou={self.pooled_mean_iou:.4f}, "
            f"n_inputs={self.n_inputs}, n_pixels={self.n_pixels})"
        )


class CertifiedSegmentationMetrics:
    """Accumulate certified accuracy, mIoU (App. A.1) and abstention over a data set.

    Parameters
    ----------
    num_classes : int
        Number of real classes (ABSTAIN is not one of them).
    ignore_index : int or None, default 255
        Target value of pixels to leave out.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.metrics import CertifiedSegmentationMetrics
    >>> acc = CertifiedSegmentationMetrics(num_classes=3)
    >>> acc.update(np.array([[0, -1], [1, 1]]), np.array([[0, 0], [1, 255]]))
    >>> acc.update(np.array([[2, 2], [2, 2]]), np.array([[2, 2], [2, 1]]))
    >>> s = acc.compute()
    >>> s.accuracy, round(s.mean_iou, 4), s.abstain_rate
    (0.7142857142857143, 0.5625, 0.14285714285714285)
    """

    def __init__(self, num_classes, *, ignore_index=255):
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.ignore_index = _check_ignore(ignore_index, self.num_classes)
        self.reset()

    def reset(self):
        """Forget everything accumulated so far."""
        c = self.num_classes
        self._n_inputs = 0
        self._n_valid = 0
        self._n_correct = 0
        self._n_abstain = 0
        self._iou_sum = np.zeros(c)
        self._iou_count = np.zeros(c, np.int64)
        self._inter = np.zeros(c, np.int64)
        self._union = np.zeros(c, np.int64)

    def update(self, pred, target, *, batch_axis=None):
        """Add one input (``batch_axis=None``) or a batch of inputs along ``batch_axis``."""
        pred, target, valid = _pair(pred, target, self.num_classes, self.ignore_index, batch_axis)
        inter, area_p, area_g = _areas(pred, target, valid, self.num_classes)
        union = area_p + area_g - inter
        defined = union > 0
        iou = np.divide(inter, union, out=np.zeros(union.shape), where=defined)
        self._iou_sum += iou.sum(axis=0)
        self._iou_count += defined.sum(axis=0)
        self._inter += inter.sum(axis=0)
        self._union += union.sum(axis=0)
        self._n_inputs += pred.shape[0]
        self._n_valid += int(valid.sum())
        self._n_correct += int(inter.sum())
        self._n_abstain += int(np.count_nonzero(valid & (pred == ABSTAIN)))

    def compute(self) -> SegmentationScores:
        """Scores over everything seen since construction or :meth:`reset`."""
        nan = float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            class_iou = np.where(self._iou_count > 0, self._iou_sum / self._iou_count, np.nan)
            pooled = np.where(self._union > 0, self._inter / self._union, np.nan)
        count = int(self._iou_count.sum())
        n = self._n_valid
        return SegmentationScores(
            accuracy=self._n_correct / n if n else nan,
            mean_iou=float(self._iou_sum.sum() / count) if count else nan,
            abstain_rate=self._n_abstain / n if n else nan,
            class_iou=class_iou,
            pooled_iou=pooled,
            pooled_mean_iou=float(np.nanmean(pooled)) if np.any(self._union > 0) else nan,
            n_inputs=self._n_inputs,
            n_pixels=n,
        )

    def __repr__(self):
        return (
            f"CertifiedSegmentationMetrics(num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, n_inputs={self._n_inputs})"
        )
