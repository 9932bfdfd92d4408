"""Adaptive hierarchical SEGCERTIFY: node hits (stage 2) and the certificate.

:func:`hierarchical_segcertify` chooses nodes with a rule
(:mod:`~mtcert.certify.hierarchy.rules`), counts their hits with
:func:`node_hits` and hands both to :func:`mtcert.certify.segmentation.segcertify_hits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtcert.certify.hierarchy.rules import (
    ShareRule,
    _check_classes,
    select_nodes,
)
from mtcert.certify.hierarchy.tree import ClassHierarchy, _check_hierarchy
from mtcert.certify.segmentation import SegmentationCertificate, segcertify_hits
from mtcert.stats.validation import as_class_counts, as_independent_count_pair, check_tau

__all__ = ["HierarchicalCertificate", "hierarchical_segcertify", "node_hits"]


def node_hits(counts, nodes, hierarchy: ClassHierarchy) -> np.ndarray:
    """Hits of each component's node: testing samples whose fine label lies under it (stage 2).

    Parameters
    ----------
    counts : array_like of int, shape (..., C)
        Fine class counts of the ``n`` testing samples (independent of the
        samples that chose ``nodes``).
    nodes : array_like of int, shape (...)
        Node id per component.

    Examples
    --------
    >>> h = ClassHierarchy(["car", "truck", "person"],
    ...                    {"vehicle": ["car", "truck"], "human": ["person"]})
    >>> node_hits([[60, 30, 10], [60, 30, 10]], [0, 3], h)
    array([60, 90])
    """
    hierarchy = _check_hierarchy(hierarchy)
    counts = as_class_counts(counts, "counts")
    _check_classes(counts, hierarchy, "counts")
    nodes = np.asarray(nodes)
    if nodes.shape != counts.shape[:-1]:
        raise ValueError(
            f"nodes must have the component shape {counts.shape[:-1]}; got {nodes.shape}"
        )
    if nodes.dtype.kind not in "iu":
        raise ValueError(f"nodes must be integer node ids; got dtype {nodes.dtype}")
    if nodes.size and (nodes.min() < 0 or nodes.max() >= hierarchy.n_nodes):
        raise ValueError(f"nodes must lie in [0, {hierarchy.n_nodes - 1}]")
    member = hierarchy.membership
    hits = np.zeros(nodes.shape, dtype=np.int64)
    for c in range(hierarchy.n_classes):  # C passes over N, no (N, C) temporary
        hits += np.where(member[nodes, c], counts[..., c], 0)
    return hits


@dataclass(frozen=True, repr=False, eq=False)
class HierarchicalCertificate:
    """Result of :func:`hierarchical_segcertify`.

    Attributes
    ----------
    certificate : SegmentationCertificate
        SEGCERTIFY's certificate over node ids: ``certificate.labels`` is the
        certified node per component, :data:`~mtcert.certify.labels.ABSTAIN` elsewhere.
    hierarchy : ClassHierarchy
    levels : ndarray of int64
        The level chosen for each component from the guessing samples.
    guess : ndarray of int64
        The node guessed for each component (certified or not).

    With probability at least ``1 - alpha`` every certified component's node
    receives more than ``tau`` of the base model's noisy labels at the input,
    so at every input within ``certificate.certified_radius(sigma)`` it still receives
    more than half of them: the smoothed classifier over that level's nodes
    keeps predicting the node.  (The fine-class argmax may change: "car"
    0.30 and "truck" 0.25 against "person" 0.45 is still "vehicle".)
    """

    certificate: SegmentationCertificate
    hierarchy: ClassHierarchy
    levels: np.ndarray
    guess: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Certified node id per component, ABSTAIN where abstained."""
        return self.certificate.labels

    @property
    def abstain_rate(self):
        return self.certificate.abstain_rate

    def certified_radius(self, sigma, noise: str = "gaussian") -> float:
        """Certified radius of every certified node at ``p = tau``.

        See :meth:`~mtcert.certify.segmentation.SegmentationCertificate.certified_radius`.
        """
        return self.certificate.certified_radius(sigma, noise)

    def __repr__(self) -> str:
        c = self.certificate
        lv = np.bincount(self.levels.ravel(), minlength=self.hierarchy.n_levels)
        return (
            f"HierarchicalCertificate(method={c.method!r}, alpha={c.alpha!r}, tau={c.tau!r}, "
            f"n={c.n}, shape={c.labels.shape}, levels={lv.tolist()}, "
            f"abstain_rate={np.mean(c.abstain_rate):.4g})"
        )


def hierarchical_segcertify(
    counts0,
    counts,
    hierarchy: ClassHierarchy,
    *,
    tau,
    alpha,
    method="holm",
    k=1,
    axis=None,
    rule=None,
) -> HierarchicalCertificate:
    """Adaptive hierarchical SEGCERTIFY from fine class counts (Anani et al. 2024).

    Parameters
    ----------
    counts0 : array_like of int, shape (..., C)
        Fine class counts of the ``n0`` guessing samples: they choose every
        component's level and node (:func:`select_nodes`).
    counts : array_like of int, shape (..., C)
        Fine class counts of ``n`` further samples, **independent of the
        guessing samples**; every component totals the same ``n``.
    hierarchy : ClassHierarchy
        ``C`` must be its number of fine classes.
    tau, alpha, method, k, axis
        As in :func:`mtcert.certify.segmentation.segcertify_hits`, which does the testing
        unchanged on the node hits.
    rule : GapRule or ShareRule, optional
        Level-selection rule; by default ``ShareRule((1 + tau) / 2)``: the
        finest node holding at least halfway between ``tau`` and 1 of the
        guessing votes (on vote counts it certified more, and more
        informatively, than the paper's :class:`GapRule` in our oracle study,
        see ``docs/hierarchy.md``).

    Returns
    -------
    HierarchicalCertificate

    Examples
    --------
    >>> h = ClassHierarchy(["car", "truck", "person"],
    ...                    {"vehicle": ["car", "truck"], "human": ["person"]})
    >>> counts0 = [[10, 0, 0], [6, 4, 0], [0, 1, 9]]
    >>> counts = [[100, 0, 0], [55, 45, 0], [2, 8, 90]]
    >>> cert = hierarchical_segcertify(counts0, counts, h, tau=0.75, alpha=0.01)
    >>> [h.names[v] if v >= 0 else "abstain" for v in cert.labels]
    ['car', 'vehicle', 'person']
    """
    hierarchy = _check_hierarchy(hierarchy)
    counts0, counts = as_independent_count_pair(counts0, counts)
    _check_classes(counts, hierarchy, "counts")
    totals = counts.sum(axis=-1)
    n = int(totals.flat[0])
    if np.any(totals != n):
        raise ValueError(
            "every component's counts must sum to the same n; "
            f"got totals between {int(totals.min())} and {int(totals.max())}"
        )
    if n < 1:
        raise ValueError("counts sum to n = 0: there are no testing samples")
    if rule is None:
        rule = ShareRule((1.0 + check_tau(tau)) / 2.0)
    levels, nodes = select_nodes(counts0, hierarchy, rule=rule)
    hits = node_hits(counts, nodes, hierarchy)
    cert = segcertify_hits(nodes, hits, n, tau=tau, alpha=alpha, method=method, k=k, axis=axis)
    return HierarchicalCertificate(cert, hierarchy, levels, nodes)
