"""Adaptive hierarchical certification (Anani, Lorenz, Schiele & Fritz, ICML 2024).

Where flat SEGCERTIFY abstains on a pixel torn between "car" and "truck", the
adaptive algorithm can certify "vehicle" instead: fewer abstentions, and still
a guarantee.  The fine classes are the leaves of a :class:`ClassHierarchy`;
every coarser node stands for the set of fine classes below it.

Per component the algorithm

1. looks at the class counts of the ``n0`` *guessing* samples and chooses a
   level (:class:`GapRule`, the paper's rule, or :class:`ShareRule`) and the
   modal node at that level (:func:`select_nodes`);
2. counts the *hits* of that node among ``n`` independent *testing* samples:
   samples whose fine label lies under the node (:func:`node_hits`);
3. hands the nodes and hits to :func:`mtcert.certify.segcertify_hits`
   unchanged: one-sided binomial test of ``H0: P(label under node) <= tau``
   per component and FWER (or k-FWER) control over all of them.

Soundness is inherited from SEGCERTIFY: the level and node of every component
are functions of the guessing samples only, so, conditionally on those
samples, each hypothesis is fixed before the testing samples are drawn and
its hit count is ``Bin(n, p_node)``.  The p-values are valid conditionally,
the FWER procedure controls the error conditionally, hence also
unconditionally.  Choosing the level from the testing samples would break
this (``tests/test_hierarchy.py`` shows such a mutant failing).

The Certified Information Gain (:func:`information_gain`,
:func:`certified_information_gain`) scores a certified node ``v`` that
contains the true fine class with ``log C - log |leaves(v)|`` (``C`` fine
classes): a fine class gains ``log C``, the root gains nothing; abstentions
and wrong nodes gain 0.  Normalised by ``log C`` (as the paper reports it) a
flat certificate's CIG equals its certified accuracy.

References
----------
.. [1] A. Anani, T. Lorenz, B. Schiele, M. Fritz, "Adaptive Hierarchical
   Certification for Segmentation using Randomized Smoothing", ICML 2024
   (arXiv:2402.08400).
.. [2] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, Algorithm 2.
.. [3] M. Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
   Understanding", CVPR 2016 (cityscapesScripts ``labels.py``: the categories).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from mtcert.certify import ABSTAIN, SegmentationCertificate, segcertify_hits
from mtcert.validation import as_class_counts, as_independent_count_pair, check_tau

__all__ = [
    "CITYSCAPES",
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_CLASSES",
    "ClassHierarchy",
    "GapRule",
    "HierarchicalCertificate",
    "ShareRule",
    "certified_information_gain",
    "flat_vs_hierarchical",
    "hierarchical_oracle",
    "hierarchical_segcertify",
    "information_gain",
    "node_hits",
    "select_nodes",
]

#: The 19 Cityscapes train classes, in train-id order (cityscapesScripts ``labels.py``).
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

#: Their categories as cityscapesScripts defines them (the "void" category has no train class).
CITYSCAPES_CATEGORIES = {
    "flat": ["road", "sidewalk"],
    "construction": ["building", "wall", "fence"],
    "object": ["pole", "traffic light", "traffic sign"],
    "nature": ["vegetation", "terrain"],
    "sky": ["sky"],
    "human": ["person", "rider"],
    "vehicle": ["car", "truck", "bus", "train", "motorcycle", "bicycle"],
}


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} names must be non-empty strings; got {name!r}")
    return name


def _parse_tree(classes: tuple[str, ...], tree) -> tuple[list[str], list[int], list[int]]:
    """Node names, parent ids and levels of ``tree`` over ``classes``, validated."""
    if not isinstance(tree, Mapping):
        raise TypeError(f"tree must be a mapping {{node: [children]}}; got {type(tree)}")
    fine_id = {c: i for i, c in enumerate(classes)}
    names = list(classes)
    parent = [-1] * len(classes)
    levels = [0] * len(classes)
    seen: dict[str, str] = {}
    coarse_seen: set[str] = set()

    def add(mapping, parent_id, path):
        child_levels = []
        for name, children in mapping.items():
            _check_name(name, "node")
            if name in coarse_seen:
                raise ValueError(f"coarse node {name!r} appears more than once in tree")
            coarse_seen.add(name)
            if isinstance(children, Mapping):
                children = [children]
            if isinstance(children, str) or not isinstance(children, Sequence):
                raise TypeError(
                    f"children of node {name!r} must be a list; got {type(children).__name__}"
                )
            if not children:
                raise ValueError(f"node {name!r} has no children")
            node = len(names)
            names.append(name)
            parent.append(parent_id)
            levels.append(0)
            sub_levels = []
            for child in children:
                if isinstance(child, Mapping):
                    sub_levels.append(add(child, node, f"{path}/{name}"))
                elif isinstance(child, str):
                    if child not in fine_id:
                        raise ValueError(
                            f"{child!r} under {path}/{name} is not one of the fine classes"
                        )
                    if child in seen:
                        raise ValueError(
                            f"fine class {child!r} appears twice: under {seen[child]} and "
                            f"under {path}/{name}; every fine class needs exactly one path"
                        )
                    seen[child] = f"{path}/{name}"
                    parent[fine_id[child]] = node
                    sub_levels.append(0)
                else:
                    raise TypeError(
                        f"children of {name!r} must be class names or mappings; got {child!r}"
                    )
            levels[node] = 1 + max(sub_levels)
            child_levels.append(levels[node])
        return max(child_levels) if child_levels else 0

    add(tree, -1, "")
    missing = [c for c in classes if c not in seen]
    if missing:
        raise ValueError(f"every fine class must appear in tree exactly once; missing: {missing}")
    return names, parent, levels


@dataclass(frozen=True, eq=False, repr=False)
class ClassHierarchy:
    """A tree (or forest) over fine classes: fine classes are leaves, coarser nodes above.

    Parameters
    ----------
    classes : sequence of str
        The fine class names in label order: fine class ``c`` is label ``c``.
    tree : mapping
        The coarse nodes: ``{name: children, ...}`` where ``children`` is a
        list whose items are fine class names (str) or mappings of the same
        form (sub-trees).  Every fine class must appear exactly once; a fine
        class that should stay alone at every level sits under a node of its
        own (as Cityscapes' "sky").  Top-level names are roots (there may be
        several; a single root above everything adds a level whose
        certificates carry no information, CIG 0).

    Attributes
    ----------
    names : tuple of str
        Name of every node; ids ``0 .. C-1`` are the fine classes, then the
        coarse nodes in depth-first order.  Certified labels are these ids.
    parent : ndarray of int64
        Parent id of every node, ``-1`` for roots.
    level : ndarray of int64
        Height of every node: 0 for fine classes, ``1 + max(child level)`` above.
    n_classes, n_nodes, n_levels : int
        ``C``, the number of nodes, and ``1 + max(level)``.

    Notes
    -----
    A component certified "at level ``l``" gets, for each fine class, the
    highest ancestor-or-self whose level is at most ``l``
    (:meth:`level_map`); a fine class whose parent sits higher than ``l``
    stays itself, as "road" does in the paper's multi-level hierarchy.

    Examples
    --------
    >>> h = ClassHierarchy(["car", "truck", "person"],
    ...                    {"vehicle": ["car", "truck"], "human": ["person"]})
    >>> h.names
    ('car', 'truck', 'person', 'vehicle', 'human')
    >>> h.level_map(1)
    array([3, 3, 4])
    >>> h.leaf_counts
    array([1, 1, 1, 2, 1])
    """

    classes: tuple[str, ...]
    tree: Mapping
    names: tuple[str, ...] = field(init=False)
    parent: np.ndarray = field(init=False)
    level: np.ndarray = field(init=False)

    def __post_init__(self):
        if isinstance(self.classes, str) or not isinstance(self.classes, Sequence):
            raise TypeError(
                f"classes must be a sequence of fine class names; got {type(self.classes)}"
            )
        classes = tuple(_check_name(c, "class") for c in self.classes)
        if not classes:
            raise ValueError("classes is empty: a hierarchy needs at least one fine class")
        dup = sorted({c for c in classes if classes.count(c) > 1})
        if dup:
            raise ValueError(f"classes must be unique; repeated: {dup}")
        names, parent, levels = _parse_tree(classes, self.tree)
        object.__setattr__(self, "classes", classes)
        # a private plain copy: later changes to the caller's mapping cannot reach us
        object.__setattr__(self, "tree", json.loads(json.dumps(self.tree)))
        object.__setattr__(self, "names", tuple(names))
        for attr, values in (("parent", parent), ("level", levels)):
            arr = np.asarray(values, dtype=np.int64)
            arr.flags.writeable = False
            object.__setattr__(self, attr, arr)

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def flat(cls, classes: Sequence[str]) -> ClassHierarchy:
        """The trivial hierarchy: every fine class under a node of its own name.

        Certifying with it is flat SEGCERTIFY (the node of a fine class holds
        exactly that class).
        """
        return cls(classes, {c: [c] for c in classes})

    @classmethod
    def cityscapes(cls) -> ClassHierarchy:
        """Cityscapes' 19 train classes under its 7 categories (cityscapesScripts)."""
        return cls(CITYSCAPES_CLASSES, CITYSCAPES_CATEGORIES)

    @classmethod
    def from_json(cls, path) -> ClassHierarchy:
        """Read ``{"classes": [...], "tree": {...}}`` from a JSON file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read a hierarchy from {str(path)!r}: {exc}") from None
        if not isinstance(data, dict) or set(data) != {"classes", "tree"}:
            raise ValueError(
                f"{str(path)!r} must hold a JSON object with exactly the keys 'classes' and 'tree'"
            )
        try:
            return cls(data["classes"], data["tree"])
        except TypeError as exc:  # a file's content is a value error of that file
            raise ValueError(f"{str(path)!r}: {exc}") from None

    def to_json(self) -> str:
        """The JSON form :meth:`from_json` reads."""
        return json.dumps({"classes": list(self.classes), "tree": self.tree}, indent=1)

    # -- structure ----------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_nodes(self) -> int:
        return len(self.names)

    @property
    def n_levels(self) -> int:
        return int(self.level.max()) + 1

    @cached_property
    def _level_maps(self) -> np.ndarray:
        maps = np.empty((self.n_levels, self.n_classes), dtype=np.int64)
        for c in range(self.n_classes):
            node, up = c, self.parent[c]
            for lvl in range(self.n_levels):
                while up >= 0 and self.level[up] <= lvl:
                    node, up = up, self.parent[up]
                maps[lvl, c] = node
        maps.flags.writeable = False
        return maps

    def level_map(self, level: int) -> np.ndarray:
        """Node id of every fine class at ``level`` (0 = the fine classes themselves)."""
        if isinstance(level, bool) or not isinstance(level, numbers.Integral):
            raise TypeError(f"level must be an integer; got {level!r}")
        if not 0 <= level < self.n_levels:
            raise ValueError(f"level must lie in [0, {self.n_levels - 1}]; got {level}")
        return self._level_maps[level]

    @cached_property
    def membership(self) -> np.ndarray:
        """``membership[v, c]`` is True when fine class ``c`` lies under (or is) node ``v``."""
        m = np.zeros((self.n_nodes, self.n_classes), dtype=bool)
        for c in range(self.n_classes):
            v = c
            while v >= 0:
                m[v, c] = True
                v = self.parent[v]
        m.flags.writeable = False
        return m

    @cached_property
    def leaf_counts(self) -> np.ndarray:
        """Number of fine classes under each node."""
        out = self.membership.sum(axis=1).astype(np.int64)
        out.flags.writeable = False
        return out

    def contains(self, nodes, labels) -> np.ndarray:
        """True where node ``nodes[i]`` contains fine class ``labels[i]``.

        :data:`~mtcert.certify.ABSTAIN` nodes and labels outside ``[0, C)``
        (e.g. an ignore label) give False.
        """
        nodes = np.asarray(nodes)
        labels = np.asarray(labels)
        if nodes.shape != labels.shape:
            raise ValueError(
                f"nodes and labels must have the same shape; got {nodes.shape} and {labels.shape}"
            )
        ok = (nodes >= 0) & (nodes < self.n_nodes) & (labels >= 0) & (labels < self.n_classes)
        return ok & self.membership[np.where(ok, nodes, 0), np.where(ok, labels, 0)]

    def __repr__(self) -> str:
        return (
            f"ClassHierarchy(classes={self.n_classes}, nodes={self.n_nodes}, "
            f"levels={self.n_levels})"
        )


#: The built-in Cityscapes hierarchy (19 train classes, 7 categories).
CITYSCAPES = ClassHierarchy.cityscapes()


# -- level-selection rules ------------------------------------------------------------------


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


def _check_hierarchy(hierarchy) -> ClassHierarchy:
    if not isinstance(hierarchy, ClassHierarchy):
        raise TypeError(f"hierarchy must be a ClassHierarchy; got {type(hierarchy).__name__}")
    return hierarchy


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


# -- certification ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class HierarchicalCertificate:
    """Result of :func:`hierarchical_segcertify`.

    Attributes
    ----------
    certificate : SegmentationCertificate
        SEGCERTIFY's certificate over node ids: ``certificate.labels`` is the
        certified node per component, :data:`~mtcert.certify.ABSTAIN` elsewhere.
    hierarchy : ClassHierarchy
    levels : ndarray of int64
        The level chosen for each component from the guessing samples.
    guess : ndarray of int64
        The node guessed for each component (certified or not).

    With probability at least ``1 - alpha`` every certified component's node
    receives more than ``tau`` of the base model's noisy labels at the input,
    so at every input within ``certificate.radius(sigma)`` it still receives
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

    def radius(self, sigma, noise: str = "gaussian") -> float:
        """Certified radius; see :meth:`SegmentationCertificate.radius`."""
        return self.certificate.radius(sigma, noise)

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
        As in :func:`mtcert.certify.segcertify_hits`, which does the testing
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


# -- metrics ---------------------------------------------------------------------------------


def information_gain(nodes, hierarchy: ClassHierarchy, *, normalize: bool = True) -> np.ndarray:
    """Information of a certified node: ``log C - log |leaves(node)|`` (0 for ABSTAIN).

    With ``normalize`` (default) divided by ``log C``: 1 for a fine class,
    0 for a node holding every class.  Correctness is not checked here (see
    :func:`certified_information_gain`).

    Examples
    --------
    >>> h = ClassHierarchy(["a", "b", "c", "d"], {"ab": ["a", "b"], "cd": ["c", "d"]})
    >>> information_gain([0, 4, -1], h)
    array([1. , 0.5, 0. ])
    """
    hierarchy = _check_hierarchy(hierarchy)
    nodes = np.asarray(nodes)
    if nodes.dtype.kind not in "iu":
        raise ValueError(f"nodes must be integer node ids; got dtype {nodes.dtype}")
    if nodes.size and (nodes.min() < ABSTAIN or nodes.max() >= hierarchy.n_nodes):
        raise ValueError(f"nodes must be ABSTAIN ({ABSTAIN}) or lie in [0, {hierarchy.n_nodes})")
    C = hierarchy.n_classes
    gain = math.log(C) - np.log(hierarchy.leaf_counts.astype(np.float64))
    if normalize:
        gain = gain / math.log(C) if C > 1 else np.zeros_like(gain)
    return np.where(nodes >= 0, gain[np.maximum(nodes, 0)], 0.0)


def certified_information_gain(
    nodes, target, hierarchy: ClassHierarchy, *, ignore_index: int = 255, normalize: bool = True
) -> float:
    """Certified Information Gain (CIG) of one prediction: mean gain over valid components.

    A component counts with :func:`information_gain` of its certified node
    when that node contains the true fine class, and with 0 when abstained or
    wrong; components whose target is ``ignore_index`` are left out.  With
    ``normalize`` (default, as the paper reports it) the value lies in
    [0, 1] and a flat certificate's CIG equals its certified accuracy.

    Returns NaN when no component is valid.

    Examples
    --------
    >>> h = ClassHierarchy(["a", "b", "c", "d"], {"ab": ["a", "b"], "cd": ["c", "d"]})
    >>> certified_information_gain([0, 4, 5, -1], [0, 1, 1, 2], h)
    0.375
    """
    hierarchy = _check_hierarchy(hierarchy)
    nodes = np.asarray(nodes)
    target = np.asarray(target)
    if nodes.shape != target.shape:
        raise ValueError(
            f"nodes and target must have the same shape; got {nodes.shape} and {target.shape}"
        )
    valid = target != ignore_index
    if not valid.any():
        return float("nan")
    gain = information_gain(nodes, hierarchy, normalize=normalize)
    correct = hierarchy.contains(nodes, target)
    return float(np.where(correct & valid, gain, 0.0).sum() / valid.sum())


# -- power on oracles -----------------------------------------------------------------------


def hierarchical_oracle(hierarchy: ClassHierarchy, truth, gamma: float, *, within: float = 0.8):
    """A :class:`~mtcert.oracle.MultiClassOracle` that confuses classes along the hierarchy.

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
    from mtcert.oracle import MultiClassOracle

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
    :class:`~mtcert.oracle.MultiClassOracle` over the hierarchy's fine
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
    from mtcert.certify import segcertify

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
