"""Certified Information Gain (CIG): how much a certified node says about the class.

A certified node ``v`` that contains the true fine class scores
``log C - log |leaves(v)|`` (``C`` fine classes); abstentions and wrong nodes 0.
"""

from __future__ import annotations

import math

import numpy as np

from mtcert.certify.hierarchy.tree import ClassHierarchy, _check_hierarchy
from mtcert.certify.labels import ABSTAIN

__all__ = ["certified_information_gain", "information_gain"]


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

    Returns NaN when no component is valid.  A target that is neither a fine
    class of ``hierarchy`` nor ``ignore_index`` is refused (``ValueError``):
    it would score 0 silently.

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
    if target.dtype.kind not in "iu":
        raise ValueError(f"target must hold integer class labels; got dtype {target.dtype}")
    valid = target != ignore_index
    outside = valid & ((target < 0) | (target >= hierarchy.n_classes))
    if outside.any():
        raise ValueError(
            f"target must lie in [0, {hierarchy.n_classes}) (the hierarchy's fine classes) or "
            f"equal ignore_index={ignore_index}; got {target[outside].flat[0]}"
        )
    if not valid.any():
        return float("nan")
    gain = information_gain(nodes, hierarchy, normalize=normalize)
    correct = hierarchy.contains(nodes, target)
    return float(np.where(correct & valid, gain, 0.0).sum() / valid.sum())
