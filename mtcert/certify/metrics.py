"""Certified segmentation metrics (Fischer et al. 2021, App. A.1).

Predictions are certified label maps: a class in ``[0, num_classes)`` or
:data:`~mtcert.certify.labels.ABSTAIN` (-1).  Abstention is not a class: an abstained
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
- abstention rate: abstained / non-ignored pixels;
- ShapeNet-part IoU of one shape (:func:`part_iou`): the mean IoU over its
  category's parts, a part absent from both prediction and ground truth
  counting 1; averaged over shapes it is the *instance mIoU*, per category and
  then over categories the *class mIoU*.

Everything is computed from per-input counts (:class:`SegmentationTally`:
components, non-ignored, correct, abstained, per-class ∩ and ∪).
:func:`segmentation_tally` computes them with numpy (the torch plugin computes
the same counts on the model's device);
:class:`CertifiedSegmentationMetrics` accumulates them over a data set
(:meth:`~CertifiedSegmentationMetrics.add`, or
:meth:`~CertifiedSegmentationMetrics.update` from label arrays), and
accumulators of data-set shards combine by a sum of counts
(:meth:`~CertifiedSegmentationMetrics.merge`).  The other functions are
one-shot conveniences.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from mtcert.certify.labels import ABSTAIN
from mtcert.stats.validation import as_integer_array, check_positive_int

__all__ = [
    "CertifiedSegmentationMetrics",
    "SegmentationScores",
    "SegmentationTally",
    "abstain_rate",
    "certified_accuracy",
    "iou_per_input",
    "mean_iou",
    "part_iou",
    "segmentation_tally",
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
    >>> from mtcert.certify.metrics import iou_per_input
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
    >>> from mtcert.certify.metrics import mean_iou
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
    >>> from mtcert.certify.metrics import certified_accuracy
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
    >>> from mtcert.certify.metrics import abstain_rate
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
class SegmentationTally:
    """The tally of one input every metric is built from: per-component outcome counts.

    Attributes
    ----------
    components : int
        All components (pixels, points) of the input.
    valid : int
        Components whose target is not ``ignore_index``.
    correct : int
        Valid components whose prediction equals the target.
    abstained, abstained_valid : int
        Abstained components, of all and of the valid ones.
    intersection, union : ndarray of int64 ``(num_classes,)``
        Per class, ``|P_c ∩ G_c|`` and ``|P_c ∪ G_c|`` over valid components
        (an abstained component belongs to no predicted class).
    """

    components: int
    valid: int
    correct: int
    abstained: int
    abstained_valid: int
    intersection: np.ndarray
    union: np.ndarray

    def __post_init__(self):
        for name in ("intersection", "union"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr < 0).any():
                raise ValueError(f"{name} must be a 1-d array of non-negative integer counts")
            object.__setattr__(self, name, arr.astype(np.int64))
        if self.intersection.shape != self.union.shape or (self.intersection > self.union).any():
            raise ValueError("intersection and union must have one entry per class, ∩ ≤ ∪")
        for name in ("components", "valid", "correct", "abstained", "abstained_valid"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name, 0))
        if not self.correct + self.abstained_valid <= self.valid <= self.components:
            raise ValueError(
                "counts must satisfy correct + abstained_valid <= valid <= components; got "
                f"{self.correct} + {self.abstained_valid}, {self.valid}, {self.components}"
            )

    def part_iou(self, parts: tuple[int, int]) -> float:
        """ShapeNet-part IoU of this input over the labels ``range(*parts)`` (:func:`part_iou`)."""
        return part_iou(self.intersection, self.union, parts)


def segmentation_tally(pred, target, *, num_classes, ignore_index=255) -> SegmentationTally:
    """The :class:`SegmentationTally` of one input.

    Parameters as :func:`iou_per_input` (one input, any shape).

    Examples
    --------
    >>> from mtcert.certify.metrics import segmentation_tally
    >>> c = segmentation_tally([0, 1, -1, 1], [0, 1, 1, 255], num_classes=2)
    >>> c.valid, c.correct, c.abstained, c.intersection.tolist(), c.union.tolist()
    (3, 2, 1, [1, 1], [1, 2])
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    ignore_index = _check_ignore(ignore_index, num_classes)
    pred, target, valid = _pair(pred, target, num_classes, ignore_index, None)
    inter, area_p, area_g = _areas(pred, target, valid, num_classes)
    abstain = pred == ABSTAIN
    return SegmentationTally(
        components=int(pred.size),
        valid=int(valid.sum()),
        correct=int(inter.sum()),
        abstained=int(abstain.sum()),
        abstained_valid=int((abstain & valid).sum()),
        intersection=inter[0],
        union=(area_p + area_g - inter)[0],
    )


def part_iou(intersection, union, parts: tuple[int, int]) -> float:
    """ShapeNet-part IoU of one shape: the mean IoU over its category's parts only.

    The usual ShapeNet-part convention (Qi et al., PointNet; the reference
    PointNet++ ``test_partseg.py``): for each part ``c`` in ``range(*parts)``,
    IoU_c = |P_c ∩ G_c| / |P_c ∪ G_c|, and IoU_c = 1 when the part is neither
    predicted nor present.  Abstained points belong to no predicted part, so
    they lower the IoU of their true part.

    Parameters
    ----------
    intersection, union : array_like ``(num_classes,)``
        Per-class counts of one shape (:class:`SegmentationTally`).
    parts : (start, stop)
        The category's part labels.

    Examples
    --------
    >>> from mtcert.certify.metrics import part_iou, segmentation_tally
    >>> c = segmentation_tally([12, 12, -1, 13], [12, 12, 13, 13], num_classes=50)
    >>> part_iou(c.intersection, c.union, (12, 16))  # (1 + 1/2 + 1 + 1) / 4
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
    instance_miou, class_miou : float
        ShapeNet-part instance and class mIoU (:func:`part_iou` averaged over
        the inputs added with ``parts``, and per ``group`` then over groups);
        NaN when no input had ``parts``.
    """

    accuracy: float
    mean_iou: float
    abstain_rate: float
    class_iou: np.ndarray
    pooled_iou: np.ndarray
    pooled_mean_iou: float
    n_inputs: int
    n_pixels: int
    instance_miou: float = float("nan")
    class_miou: float = float("nan")

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
    >>> from mtcert.certify.metrics import CertifiedSegmentationMetrics
    >>> acc = CertifiedSegmentationMetrics(num_classes=3)
    >>> acc.update(np.array([[0, -1], [1, 1]]), np.array([[0, 0], [1, 255]]))
    >>> acc.update(np.array([[2, 2], [2, 2]]), np.array([[2, 2], [2, 1]]))
    >>> s = acc.compute()
    >>> s.accuracy, round(s.mean_iou, 4), s.abstain_rate
    (0.7142857142857143, 0.5625, 0.14285714285714285)

    Per-input counts (e.g. computed on a GPU), with ShapeNet-part IoU per group:

    >>> from mtcert.certify.metrics import segmentation_tally
    >>> parts = CertifiedSegmentationMetrics(num_classes=4, ignore_index=None)
    >>> for pred, target, group in (([0, 1], [0, 1], "mug"), ([2, -1], [2, 3], "cap")):
    ...     c = segmentation_tally(pred, target, num_classes=4, ignore_index=None)
    ...     parts.add(c, group=group, parts=(0, 2) if group == "mug" else (2, 4))
    >>> s = parts.compute()
    >>> s.instance_miou, s.class_miou, s.abstain_rate
    (0.75, 0.75, 0.25)
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
        self._shape_iou_sum = 0.0
        self._shapes = 0
        self._groups: dict = {}  # group -> [sum of shape IoUs, shapes]

    def add(self, tally: SegmentationTally, *, group=None, parts=None) -> None:
        """Add the :class:`SegmentationTally` of one input.

        ``parts`` (a label range ``(start, stop)``) adds the input's
        :func:`part_iou` to the instance mIoU, and to the class mIoU of ``group``.
        """
        if not isinstance(tally, SegmentationTally):
            raise TypeError(f"tally must be a SegmentationTally; got {type(tally).__name__}")
        if tally.intersection.shape != (self.num_classes,):
            raise ValueError(
                f"tally holds {tally.intersection.shape[0]} classes; expected {self.num_classes}"
            )
        self._accumulate(
            tally.intersection[None], tally.union[None], tally.valid, tally.abstained_valid
        )
        if parts is not None:
            iou = tally.part_iou(parts)
            self._shape_iou_sum += iou
            self._shapes += 1
            g = self._groups.setdefault(group, [0.0, 0])
            g[0] += iou
            g[1] += 1

    def merge(self, other: CertifiedSegmentationMetrics) -> CertifiedSegmentationMetrics:
        """Add the totals of ``other`` (e.g. another shard of the data set) to these."""
        if not isinstance(other, CertifiedSegmentationMetrics) or (
            other.num_classes,
            other.ignore_index,
        ) != (self.num_classes, self.ignore_index):
            raise ValueError("other must be a CertifiedSegmentationMetrics of the same setting")
        for name in ("_n_inputs", "_n_valid", "_n_correct", "_n_abstain", "_shapes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("_iou_sum", "_iou_count", "_inter", "_union"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._shape_iou_sum += other._shape_iou_sum
        for group, (total, count) in other._groups.items():
            g = self._groups.setdefault(group, [0.0, 0])
            g[0] += total
            g[1] += count
        return self

    def _accumulate(self, inter, union, n_valid, n_abstain) -> None:
        """Add inputs given by per-input ``(B, C)`` intersections and unions."""
        defined = union > 0
        iou = np.divide(inter, union, out=np.zeros(union.shape), where=defined)
        self._iou_sum += iou.sum(axis=0)
        self._iou_count += defined.sum(axis=0)
        self._inter += inter.sum(axis=0)
        self._union += union.sum(axis=0)
        self._n_inputs += inter.shape[0]
        self._n_valid += int(n_valid)
        self._n_correct += int(inter.sum())
        self._n_abstain += int(n_abstain)

    def update(self, pred, target, *, batch_axis=None):
        """Add one input (``batch_axis=None``) or a batch of inputs along ``batch_axis``."""
        pred, target, valid = _pair(pred, target, self.num_classes, self.ignore_index, batch_axis)
        inter, area_p, area_g = _areas(pred, target, valid, self.num_classes)
        n_abstain = np.count_nonzero(valid & (pred == ABSTAIN))
        self._accumulate(inter, area_p + area_g - inter, valid.sum(), n_abstain)

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
            instance_miou=self._shape_iou_sum / self._shapes if self._shapes else nan,
            class_miou=(
                float(np.mean([t / c for t, c in self._groups.values()])) if self._groups else nan
            ),
        )

    def __repr__(self):
        return (
            f"CertifiedSegmentationMetrics(num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, n_inputs={self._n_inputs})"
        )
