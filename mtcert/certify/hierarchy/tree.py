"""The class hierarchy: fine classes as leaves, coarser nodes as sets of them.

:class:`ClassHierarchy` (from a mapping, a JSON file or the built-in
:data:`CITYSCAPES` categories) and the checks on it.  Imports only numpy.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

__all__ = ["CITYSCAPES", "CITYSCAPES_CATEGORIES", "CITYSCAPES_CLASSES", "ClassHierarchy"]

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


#: Deepest tree accepted (real hierarchies have a handful of levels; the check keeps a
#: crafted file from exhausting Python's recursion limit).
MAX_DEPTH = 100


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
        if path.count("/") >= MAX_DEPTH:
            raise ValueError(f"tree is nested deeper than {MAX_DEPTH} levels")
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
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:  # also JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"cannot read a hierarchy from {str(path)!r}: {exc}") from None
        except RecursionError:
            raise ValueError(
                f"cannot read a hierarchy from {str(path)!r}: nested too deeply"
            ) from None
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

        :data:`~mtcert.certify.labels.ABSTAIN` nodes and labels outside ``[0, C)``
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


def _check_hierarchy(hierarchy) -> ClassHierarchy:
    if not isinstance(hierarchy, ClassHierarchy):
        raise TypeError(f"hierarchy must be a ClassHierarchy; got {type(hierarchy).__name__}")
    return hierarchy
