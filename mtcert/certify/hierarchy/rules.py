"""Level-selection rules: which node of the hierarchy each component tests (stage 1).

:class:`GapRule` (the adaptive paper's rule) and :class:`ShareRule` choose a level
from the guessing counts only; :func:`select_nodes` applies one.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import numpy as np

from mtcert.certify.hierarchy.tree import ClassHierarchy, _check_hierarchy
from mtcert.stats.validation import as_class_counts

__all__ = ["GapRule", "ShareRule", "select_nodes"]


def _level_counts(counts: np.ndarray, hierarchy: ClassHierarchy, level: int):
    """Counts summed per node at ``level``: ``(..., V_l)`` and the node id of each column."""
    nodes, col = np.unique(hierarchy.level_map(level), return_inverse=True)
    onehot = np.zeros((hierarchy.n_classes, nodes.size), dtype=counts.dtype)
    onehot[np.arange(hierarchy.n_classes), col] = 1
    return counts @ onehot, nodes


@dataclass(frozen=True)
class GapRule:
    """The paper's rule: climb when the guessing samples do not separate the top two classes.

    The gap is the difference between the largest and the second largest
    fine-class share among the ``n0`` guessing samples.  With thresholds
    ``t_1 >= t_2 >= ... >= t_L`` (one per level above the fine one), a
    component goes to the highest level ``l`` with ``gap <= t_l``, or stays
    fine when ``gap > t_1``.

    The paper computes the gap from the mean softmax of the guessing samples
    and uses ``(0.25, 0, 0)`` on its 4-level Cityscapes hierarchy; the core
    sees counts only, so here the shares are vote frequencies.  Any function
    of the guessing samples keeps the certificate valid; the thresholds only
    trade abstentions for information.

    Parameters
    ----------
    thresholds : sequence of float in [0, 1], non-increasing
        Shorter than the number of coarse levels: the missing ones are 0 (only
        exact ties climb there).
    """

    thresholds: tuple[float, ...]

    def __post_init__(self):
        t = tuple(float(x) for x in np.atleast_1d(np.asarray(self.thresholds, dtype=float)))
        if not t or not all(0.0 <= x <= 1.0 for x in t):
            raise ValueError(f"thresholds must be numbers in [0, 1]; got {self.thresholds!r}")
        if any(b > a for a, b in itertools.pairwise(t)):
            raise ValueError(f"thresholds must be non-increasing; got {t}")
        object.__setattr__(self, "thresholds", t)

    def levels(self, counts0: np.ndarray, hierarchy: ClassHierarchy) -> np.ndarray:
        """Level per component from fine class counts ``(..., C)``."""
        n_up = hierarchy.n_levels - 1
        if len(self.thresholds) > n_up:
            raise ValueError(
                f"GapRule has {len(self.thresholds)} thresholds but the hierarchy has only "
                f"{n_up} level(s) above the fine classes"
            )
        t = np.zeros(n_up)
        t[: len(self.thresholds)] = self.thresholds
        if counts0.shape[-1] < 2:
            return np.full(counts0.shape[:-1], n_up, dtype=np.int64)
        top2 = np.sort(counts0, axis=-1)[..., -2:]
        gap = (top2[..., 1] - top2[..., 0]) / counts0.sum(axis=-1)
        # {l : gap <= t_l} is a prefix 1..m of the levels, since t is non-increasing
        return (gap[..., None] <= t).sum(axis=-1).astype(np.int64)


@dataclass(frozen=True)
class ShareRule:
    """Certify at the finest level whose modal node holds ``min_share`` of the guessing samples.

    A component climbs until the most frequent node at the level gets at
    least ``min_share * n0`` of the ``n0`` guessing votes (the top level when
    none does).  With ``min_share`` a little above ``tau`` this picks the most
    informative node that the test is likely to certify.
    """

    min_share: float

    def __post_init__(self):
        v = self.min_share
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= v <= 1.0:
            raise ValueError(f"min_share must be a number in [0, 1]; got {v!r}")
        object.__setattr__(self, "min_share", float(v))

    def levels(self, counts0: np.ndarray, hierarchy: ClassHierarchy) -> np.ndarray:
        """Level per component from fine class counts ``(..., C)``."""
        need = self.min_share * counts0.sum(axis=-1)
        out = np.full(counts0.shape[:-1], hierarchy.n_levels - 1, dtype=np.int64)
        undecided = np.ones(counts0.shape[:-1], dtype=bool)
        for lvl in range(hierarchy.n_levels - 1):
            agg, _ = _level_counts(counts0, hierarchy, lvl)
            ok = undecided & (agg.max(axis=-1) >= need)
            out[ok] = lvl
            undecided &= ~ok
        return out


def _check_rule(rule):
    if not isinstance(rule, GapRule | ShareRule):
        raise TypeError(f"rule must be a GapRule or a ShareRule; got {rule!r}")
    return rule


def _check_classes(counts: np.ndarray, hierarchy: ClassHierarchy, name: str) -> None:
    if counts.shape[-1] != hierarchy.n_classes:
        raise ValueError(
            f"{name} has {counts.shape[-1]} classes on its last axis but the hierarchy has "
            f"{hierarchy.n_classes} fine classes"
        )


def select_nodes(counts0, hierarchy: ClassHierarchy, *, rule):
    """Choose each component's level and node from its guessing counts (stage 1).

    Parameters
    ----------
    counts0 : array_like of int, shape (..., C)
        Fine class counts of the ``n0`` guessing samples.
    hierarchy : ClassHierarchy
    rule : GapRule or ShareRule
        How the level is chosen.

    Returns
    -------
    levels, nodes : ndarray of int64, shape (...)
        The chosen level and the node id guessed there: the node with the most
        guessing votes at that level (ties to the lowest node id).

    Examples
    --------
    >>> h = ClassHierarchy(["car", "truck", "person"],
    ...                    {"vehicle": ["car", "truck"], "human": ["person"]})
    >>> levels, nodes = select_nodes([[9, 1, 0], [5, 4, 1]], h, rule=GapRule((0.25,)))
    >>> levels, [h.names[v] for v in nodes]
    (array([0, 1]), ['car', 'vehicle'])
    """
    hierarchy = _check_hierarchy(hierarchy)
    rule = _check_rule(rule)
    counts0 = as_class_counts(counts0, "counts0")
    _check_classes(counts0, hierarchy, "counts0")
    if np.any(counts0.sum(axis=-1) == 0):
        raise ValueError("counts0: every component needs at least one guessing sample")
    levels = rule.levels(counts0, hierarchy)
    nodes = np.empty(levels.shape, dtype=np.int64)
    for lvl in np.unique(levels):
        at = levels == lvl
        agg, ids = _level_counts(counts0[at], hierarchy, int(lvl))
        nodes[at] = ids[np.argmax(agg, axis=-1)]
    return levels, nodes
