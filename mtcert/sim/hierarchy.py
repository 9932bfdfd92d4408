"""Flat against hierarchical certification on synthetic oracles.

:func:`hierarchical_oracle` builds a :class:`~mtcert.sim.oracle.MultiClassOracle`
that confuses classes along a hierarchy; :func:`flat_vs_hierarchical` compares
SEGCERTIFY with its adaptive hierarchical variant on it.
"""

from __future__ import annotations

import numbers

import numpy as np

from mtcert.certify.hierarchy import (
    ClassHierarchy,
    certified_information_gain,
    hierarchical_segcertify,
)
from mtcert.certify.hierarchy.tree import _check_hierarchy
from mtcert.certify.labels import ABSTAIN
from mtcert.certify.segmentation import segcertify
from mtcert.sim.oracle import MultiClassOracle

__all__ = ["flat_vs_hierarchical", "hierarchical_oracle"]


def hierarchical_oracle(hierarchy: ClassHierarchy, truth, gamma: float, *, within: float = 0.8):
    """A :class:`~mtcert.sim.oracle.MultiClassOracle` that confuses classes along the hierarchy.

    Component ``i`` shows its true fine class ``truth[i]`` with probability
    ``1 - gamma``; of the remaining mass ``gamma``, the fraction ``within``
    goes evenly to the other fine classes under the same top-level node and the
    rest evenly to the classes under other top-level nodes (a class alone
    under its top node gives all of ``gamma`` to the others).  As ``gamma``
    grows the fine class falls below ``tau`` long before its top node does:
    the regime where certifying the coarser node pays.

    Examples
    --------
    >>> h = ClassHierarchy(["a", "b", "c"], {"ab": ["a", "b"], "c": ["c"]})
    >>> hierarchical_oracle(h, [0, 2], 0.2).probabilities
    array([[0.8 , 0.16, 0.04],
           [0.1 , 0.1 , 0.8 ]])
    """
    hierarchy = _check_hierarchy(hierarchy)
    truth = np.asarray(truth)
    C = hierarchy.n_classes
    if truth.ndim != 1 or truth.dtype.kind not in "iu" or truth.size == 0:
        raise ValueError("truth must be a non-empty 1-D array of fine class labels")
    if truth.min() < 0 or truth.max() >= C:
        raise ValueError(f"truth labels must lie in [0, {C - 1}]")
    for name, v in (("gamma", gamma), ("within", within)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1]; got {v!r}")
    top = hierarchy.level_map(hierarchy.n_levels - 1)
    p = np.zeros((truth.size, C))
    for i, c in enumerate(truth):
        same = (top == top[c]) & (np.arange(C) != c)
        other = top != top[c]
        w = within if same.any() else 0.0
        if not other.any():
            w = 1.0
        if same.any():
            p[i, same] = gamma * w / same.sum()
        if other.any():
            p[i, other] = gamma * (1.0 - w) / other.sum()
        p[i, c] = 1.0 - gamma
    return MultiClassOracle(p, truth.astype(np.int64))


def flat_vs_hierarchical(
    oracle, hierarchy: ClassHierarchy, *, n0: int, n: int, tau, alpha, method="holm", k=1,
    rule=None, reps: int = 1, rng,
) -> dict:  # fmt: skip
    """Abstain rate, certified accuracy and CIG of flat and hierarchical SEGCERTIFY.

    Both certify the *same* simulated samples of ``oracle`` (a
    :class:`~mtcert.sim.oracle.MultiClassOracle` over the hierarchy's fine
    classes): ``reps`` independent repetitions, each one family of all
    components; the results are means over repetitions.

    Parameters
    ----------
    oracle : MultiClassOracle
        E.g. :func:`hierarchical_oracle`.
    hierarchy : ClassHierarchy
    n0, n, tau, alpha, method, k
        SEGCERTIFY's settings, the same for both.
    rule : GapRule or ShareRule, optional
        As in :func:`hierarchical_segcertify`.
    reps : int
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``{"flat": {...}, "hierarchical": {...}}`` with keys ``abstain_rate``,
        ``certified_accuracy`` (certified node contains the truth) and ``cig``
        (normalised).

    Examples
    --------
    >>> h = ClassHierarchy(["a", "b", "c"], {"ab": ["a", "b"], "c": ["c"]})
    >>> oracle = hierarchical_oracle(h, [0, 1, 2] * 20, 0.3, within=0.9)
    >>> res = flat_vs_hierarchical(oracle, h, n0=20, n=100, tau=0.75, alpha=0.01, reps=3,
    ...                            rng=np.random.default_rng(0))
    >>> res["hierarchical"]["abstain_rate"] < res["flat"]["abstain_rate"]
    True
    """
    hierarchy = _check_hierarchy(hierarchy)
    if oracle.n_classes != hierarchy.n_classes:
        raise ValueError(
            f"oracle has {oracle.n_classes} classes, the hierarchy {hierarchy.n_classes}"
        )
    counts0 = oracle.sample_counts(n0, rng=rng, size=reps)
    counts = oracle.sample_counts(n, rng=rng, size=reps)
    truth = np.broadcast_to(oracle.truth, counts.shape[:-1])
    flat = segcertify(counts0, counts, tau=tau, alpha=alpha, method=method, k=k, axis=-1).labels
    hier = hierarchical_segcertify(
        counts0, counts, hierarchy, tau=tau, alpha=alpha, method=method, k=k, axis=-1, rule=rule
    ).labels

    def scores(nodes):
        return {
            "abstain_rate": float(np.mean(nodes == ABSTAIN)),
            "certified_accuracy": float(np.mean(hierarchy.contains(nodes, truth))),
            "cig": certified_information_gain(nodes, truth, hierarchy),
        }

    return {"flat": scores(flat), "hierarchical": scores(hier)}
