"""Families of tests along array axes: which p-values one procedure controls together.

:func:`mtcert.stats.multitest.adjust`, :func:`mtcert.certify.segmentation.segcertify`,
:func:`~mtcert.certify.segmentation.segcertify_hits` and
:func:`mtcert.certify.radii.certify_radii` take an ``axis`` with numpy's rule
for reductions: the axes given together form ONE family and the remaining axes index
the families.  :func:`check_axis` validates it; :func:`to_families` lays an array out
as ``(families, tests)`` rows for the kernels and :func:`from_families` undoes it.

Imports numpy only.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_axis", "family_shape", "family_size", "from_families", "to_families"]


def check_axis(axis: object, ndim: int) -> int | tuple[int, ...] | None:
    """Validate the family axes of an array with ``ndim`` dimensions.

    As in numpy's reductions, the axes given together form ONE family and the
    remaining axes index the families: for p-values of shape ``(B, H, W)``,
    ``axis=(1, 2)`` makes ``B`` families of ``H * W`` tests, ``axis=2`` (or
    ``-1``) makes ``B * H`` families of ``W`` tests, and None one family.

    Parameters
    ----------
    axis : None, int or tuple of int
        Negative axes count from the end.  A tuple must be non-empty and free
        of repeats (``1`` and ``-2`` repeat each other in 3 dimensions).
    ndim : int
        Dimensions of the array.  A 0-d array is one family whatever ``axis``
        is (``0`` or ``-1`` are accepted for it).

    Returns
    -------
    int, tuple of int or None
        An int made non-negative, a tuple made non-negative and sorted, or
        None (no axis, or a 0-d array).

    Raises
    ------
    ValueError
        When ``axis`` is not None, an int or a tuple of ints (bools are
        refused), is out of range, repeats an axis, or is an empty tuple.

    Examples
    --------
    >>> from mtcert.stats.families import check_axis
    >>> check_axis(-1, 3), check_axis((2, -2), 3), check_axis(None, 3)
    (2, (1, 2), None)
    """
    if axis is None:
        return None
    bound = max(ndim, 1)

    def one(a):
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise ValueError(f"axis must be None or an int, or a tuple of ints; got {axis!r}")
        if not -bound <= a < bound:
            raise ValueError(f"axis {a} is out of bounds for an array with {ndim} dimension(s)")
        return int(a) % bound

    if isinstance(axis, tuple):
        if not axis:
            raise ValueError("axis must not be an empty tuple (use None for one family)")
        axes = tuple(sorted(one(a) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis must not repeat an axis; got {axis!r}")
        return axes if ndim else None
    a = one(axis)
    return a if ndim else None


def _axes(axis: int | tuple[int, ...]) -> tuple[int, ...]:
    return axis if isinstance(axis, tuple) else (axis,)


def family_shape(shape: tuple[int, ...], axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape that indexes the families: ``shape`` without the family axes.

    Examples
    --------
    >>> from mtcert.stats.families import family_shape
    >>> family_shape((8, 64, 96), (1, 2)), family_shape((8, 64, 96), None)
    ((8,), ())
    """
    if axis is None:
        return ()
    axes = _axes(axis)
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def family_size(shape: tuple[int, ...], axis: int | tuple[int, ...] | None) -> int:
    """Tests per family: the product of ``shape`` over the family axes.

    Examples
    --------
    >>> from mtcert.stats.families import family_size
    >>> family_size((8, 64, 96), (1, 2)), family_size((8, 64, 96), None)
    (6144, 49152)
    """
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[i] for i in _axes(axis))


def to_families(arr: np.ndarray, axis: int | tuple[int, ...] | None) -> np.ndarray:
    """``arr`` as a C-contiguous ``(families, tests)`` array (``axis`` from :func:`check_axis`).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.stats.families import to_families
    >>> to_families(np.arange(8).reshape(2, 2, 2), (0, 2))
    array([[0, 1, 4, 5],
           [2, 3, 6, 7]])
    """
    if axis is None:
        return np.ascontiguousarray(arr).reshape(1, -1)
    axes = _axes(axis)
    moved = np.moveaxis(arr, axes, range(arr.ndim - len(axes), arr.ndim))
    n_families = math.prod(family_shape(arr.shape, axis))
    return np.ascontiguousarray(moved).reshape(n_families, family_size(arr.shape, axis))


def from_families(
    arr2d: np.ndarray, shape: tuple[int, ...], axis: int | tuple[int, ...] | None
) -> np.ndarray:
    """Undo :func:`to_families`: a ``(families, tests)`` array back to ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.stats.families import from_families, to_families
    >>> x = np.arange(24).reshape(2, 3, 4)
    >>> bool((from_families(to_families(x, (0, 2)), x.shape, (0, 2)) == x).all())
    True
    """
    if axis is None:
        return arr2d.reshape(shape)
    axes = _axes(axis)
    moved_shape = (*family_shape(shape, axis), *(shape[i] for i in axes))
    ndim = len(shape)
    return np.moveaxis(arr2d.reshape(moved_shape), range(ndim - len(axes), ndim), axes)
