"""Input validation shared by every public function of :mod:`mtcert` and its plugins.

Public functions validate and convert here, then hand contiguous arrays to the
numba kernels in :mod:`mtcert._kernels`, which never validate.  Every error is a
``ValueError`` that names the offending argument and, where there is a closed
set, lists the allowed values.  Plugins (such as :mod:`mtcert_torch`) use the
same checks so that a user sees the same message for the same mistake.

Integer arrays keep the caller's dtype where that is safe (no copy of a large
count array just to widen it); they come back in native byte order, and
``uint64`` data is viewed as ``int64`` once every value is known to fit, so
that no downstream arithmetic mixes the two (numpy and numba would silently
promote that mix to float64).

Examples
--------
>>> from mtcert.stats.validation import check_alpha, check_tau
>>> check_alpha(0.001), check_tau(0.75)
(0.001, 0.75)
>>> check_alpha(1.5)
Traceback (most recent call last):
...
ValueError: alpha must lie strictly between 0 and 1; got 1.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "NAN_POLICIES",
    "as_class_counts",
    "as_counts",
    "as_independent_count_pair",
    "as_integer_array",
    "as_integer_counts",
    "as_probabilities",
    "check_alpha",
    "check_nan_policy",
    "check_option",
    "check_positive_int",
    "check_positive_real",
    "check_tau",
]

#: The scipy words accepted as ``nan_policy``.
NAN_POLICIES = ("propagate", "omit", "raise")

_INT64_MAX = int(np.iinfo(np.int64).max)


def _real(value, name: str, what: str) -> float:
    """``float(value)`` for a real number (bools, strings, complex refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return float(value)


def check_option(value, name: str, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of the strings in ``allowed``.

    Parameters
    ----------
    value : object
        The user's choice.
    name : str
        Argument name used in the error message.
    allowed : iterable of str
        The accepted values (matched exactly).

    Returns
    -------
    str
        ``value`` itself.

    Raises
    ------
    ValueError
        If ``value`` is not one of ``allowed``; the message lists them.

    Examples
    --------
    >>> check_option("laplace", "noise", ("gaussian", "laplace"))
    'laplace'
    """
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_alpha(alpha, name: str = "alpha") -> float:
    """Check a significance level: a real number strictly inside (0, 1).

    Parameters
    ----------
    alpha : real
        The level (bools, strings and complex numbers are refused).
    name : str, default "alpha"
        Argument name used in the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``alpha`` is not a real number in (0, 1) (NaN included).

    Examples
    --------
    >>> check_alpha(0.05)
    0.05
    """
    alpha = _real(alpha, name, "a real number in (0, 1)")
    if not (0.0 < alpha < 1.0):  # also rejects NaN
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {alpha!r}")
    return alpha


def check_tau(tau, name: str = "tau") -> float:
    """Check a SEGCERTIFY threshold: a real number in [1/2, 1).

    Parameters
    ----------
    tau : real
        The threshold on the guessed class's probability.
    name : str, default "tau"
        Argument name used in the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``tau`` is not a real number in [1/2, 1).

    Examples
    --------
    >>> check_tau(0.5)
    0.5
    """
    tau = _real(tau, name, "a real number in [0.5, 1)")
    if not (0.5 <= tau < 1.0):
        raise ValueError(f"{name} must lie in [0.5, 1); got {tau!r}")
    return tau


def check_positive_int(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Check an integer in ``[minimum, maximum]`` (numpy integers accepted, bools and floats not).

    Parameters
    ----------
    value : int
        The user's value.
    name : str
        Argument name used in the error message.
    minimum : int, default 1
        Smallest accepted value.
    maximum : int or None, default None
        Largest accepted value (None: no upper bound).  Pass it wherever the
        value later sizes an array or enters fixed-width arithmetic.

    Returns
    -------
    int
        A Python ``int``.

    Raises
    ------
    ValueError
        If ``value`` is not an integer or lies outside the range.

    Examples
    --------
    >>> check_positive_int(3, "k")
    3
    >>> check_positive_int(2**70, "n", maximum=2**62)
    Traceback (most recent call last):
    ...
    ValueError: n must be an integer in [1, 4611686018427387904]; got 1180591620717411303424
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    value = int(value)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}]; got {value}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return value


def check_positive_real(value, name: str) -> float:
    """Check a finite real number > 0 (a noise scale such as ``sigma``).

    Parameters
    ----------
    value : real
        The user's value.
    name : str
        Argument name used in the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``value`` is not a finite real number > 0.

    Examples
    --------
    >>> check_positive_real(0.25, "sigma")
    0.25
    """
    value = _real(value, name, "a positive real number")
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return value


def check_nan_policy(nan_policy) -> str:
    """Check a scipy-style ``nan_policy`` (one of :data:`NAN_POLICIES`).

    Examples
    --------
    >>> check_nan_policy("omit")
    'omit'
    """
    return check_option(nan_policy, "nan_policy", NAN_POLICIES)


def _asarray(values, name: str) -> np.ndarray:
    """``np.asarray`` whose failures (ragged nesting, huge Python ints) name the argument."""
    try:
        return np.asarray(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers: {exc}") from None


def as_probabilities(values, name: str, *, allow_nan: bool = True) -> np.ndarray:
    """Convert to a float64 array with every non-NaN entry in [0, 1].

    Parameters
    ----------
    values : array_like
        Probabilities or p-values.
    name : str
        Argument name used in error messages.
    allow_nan : bool, default True
        Leave NaN entries in place (the caller applies its ``nan_policy``);
        False: NaN raises.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    ValueError
        On ragged or non-numeric input (strings, ``None``, complex numbers
        are refused rather than converted) or values outside [0, 1].

    Examples
    --------
    >>> as_probabilities([0.5, 1], "p")
    array([0.5, 1. ])
    """
    arr = _asarray(values, name)
    kind = arr.dtype.kind
    if kind == "O":
        # None would silently become NaN, a complex number lose its imaginary part
        if not all(isinstance(v, numbers.Real) for v in arr.flat):
            bad = next(v for v in arr.flat if not isinstance(v, numbers.Real))
            raise ValueError(f"{name} must be real numbers in [0, 1]; found {bad!r}")
    elif kind not in "biuf":
        raise ValueError(f"{name} must be real numbers in [0, 1]; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    nan = np.isnan(arr)
    if not allow_nan and nan.any():
        raise ValueError(f"{name} contains NaN")
    bad = ~nan & ((arr < 0.0) | (arr > 1.0))
    if bad.any():
        first = arr[bad].flat[0]
        raise ValueError(
            f"{name} must lie in [0, 1]; {int(bad.sum())} value(s) do not (e.g. {first!r})"
        )
    return arr


def as_integer_array(
    values, name: str, *, strict: bool = False, what: str = "integers"
) -> np.ndarray:
    """Integers of either sign, in the caller's integer dtype where that is safe.

    Integer input is returned without a copy when it is already in native
    byte order (big-endian input is byte-swapped into a copy); ``uint64`` is
    viewed as ``int64`` after checking that every value fits, and booleans
    as ``uint8``.  Floats are accepted only if they hold integral values
    (``3.0`` but not ``2.5``) and are converted to ``int64``.

    Parameters
    ----------
    values : array_like of int
        Labels, counts, hit counts.
    name : str
        Argument name used in error messages.
    strict : bool, default False
        Accept integer dtypes only (no booleans, no floats).
    what : str, default "integers"
        What the values are, for error messages.

    Returns
    -------
    ndarray
        Native-order signed integers, or unsigned integers of at most 32 bits.

    Raises
    ------
    ValueError
        On ragged or non-numeric input, complex or object dtype, NaN or
        infinite or non-integral floats, or values beyond ``int64``.

    Examples
    --------
    >>> as_integer_array(np.array([3, -4], ">i2"), "guess").dtype
    dtype('int16')
    >>> as_integer_array(np.array([2**63], np.uint64), "guess")
    Traceback (most recent call last):
    ...
    ValueError: guess holds values too large for int64 (found 9223372036854775808)
    """
    arr = _asarray(values, name)
    kind = arr.dtype.kind
    if arr.size == 0 and kind in "bf":
        return arr.astype(np.int64)  # ``np.asarray([])`` is float64: still no values to refuse
    if kind not in ("iu" if strict else "biuf"):
        raise ValueError(f"{name} must be an array of {what}; got dtype {arr.dtype}")
    if kind == "b":
        return arr.view(np.uint8)
    if kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite {what}; found NaN or inf")
        if not np.all(arr == np.floor(arr)):
            raise ValueError(f"{name} must hold integers; found non-integral values")
        if arr.size and np.abs(arr).max() > 2.0**62:
            raise ValueError(f"{name} holds values too large for int64")
        return arr.astype(np.int64)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.uint64:
        top = int(arr.max()) if arr.size else 0
        if top > _INT64_MAX:
            raise ValueError(f"{name} holds values too large for int64 (found {top})")
        return arr.view(np.int64)
    return arr


def as_integer_counts(values, name: str) -> np.ndarray:
    """Non-negative integers, in the caller's integer dtype where that is safe.

    :func:`as_integer_array` plus a check that no value is negative.

    Examples
    --------
    >>> as_integer_counts(np.array([3, 4], np.uint8), "counts").dtype
    dtype('uint8')
    >>> as_integer_counts([2.0, -5.0], "hits")
    Traceback (most recent call last):
    ...
    ValueError: hits must be non-negative; found -5
    """
    arr = as_integer_array(values, name, what="non-negative integers")
    if arr.size and arr.dtype.kind == "i":
        low = int(arr.min())
        if low < 0:
            raise ValueError(f"{name} must be non-negative; found {low}")
    return arr


def as_counts(values, name: str) -> np.ndarray:
    """Non-negative integers as an ``int64`` array (see :func:`as_integer_array`).

    Examples
    --------
    >>> as_counts([1, 2], "k").dtype
    dtype('int64')
    """
    return as_integer_counts(values, name).astype(np.int64, copy=False)


def _check_class_totals(counts: np.ndarray, name: str) -> None:
    """Refuse counts whose total over the class axis does not fit in ``int64``.

    Such totals would wrap around to a small or negative ``n`` and certify a
    component on samples that were never drawn.  Only rows with an entry above
    ``INT64_MAX // C`` can overflow, so the common case costs one ``max``.
    """
    n_classes = counts.shape[-1]
    limit = _INT64_MAX // n_classes
    if int(np.iinfo(counts.dtype).max) <= limit or int(counts.max()) <= limit:
        return
    suspect = counts[(counts > limit).any(axis=-1)]
    totals = suspect.astype(object).sum(axis=-1)
    top = max(totals.flat)
    if top > _INT64_MAX:
        raise ValueError(f"{name} must total at most 2**63 - 1 per component; found {top}")


def as_class_counts(values, name: str, *, keep_dtype: bool = False) -> np.ndarray:
    """Class counts of shape ``(..., C)``: a non-empty class axis, at least one row.

    Parameters
    ----------
    values : array_like of int
        Counts, the class axis last.
    name : str
        Argument name used in error messages.
    keep_dtype : bool, default False
        Return the caller's integer dtype (see :func:`as_integer_counts`)
        instead of ``int64``; the totals over the class axis are checked to
        fit in ``int64`` either way.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        As :func:`as_integer_counts`, and for an empty class axis, no
        components, or per-component totals beyond ``int64``.

    Examples
    --------
    >>> as_class_counts([[2**62, 2**62, 1]], "counts")
    Traceback (most recent call last):
    ...
    ValueError: counts must total at most 2**63 - 1 per component; found 9223372036854775809
    """
    counts = as_integer_counts(values, name)
    if counts.ndim < 1 or counts.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty class axis (the last one)")
    if counts.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to classify")
    _check_class_totals(counts, name)
    return counts if keep_dtype else counts.astype(np.int64, copy=False)


def as_independent_count_pair(counts0, counts) -> tuple[np.ndarray, np.ndarray]:
    """Guessing and testing class counts, validated as a pair of the same shape.

    The one validator for every algorithm that guesses from ``counts0`` and
    tests on ``counts`` (SEGCERTIFY, Cohen's CERTIFY, INDIVCLASS).  The two
    must come from independent samples (reusing the guessing samples for the
    test biases it towards the guess); passing the same or overlapping arrays
    is the one violation that can be detected, and is refused.

    Parameters
    ----------
    counts0, counts : array_like of int, shape (..., C)
        Guessing and testing class counts, the class axis last.

    Returns
    -------
    (counts0, counts) : tuple of ndarray
        In the caller's integer dtypes where safe (no copy of native-order
        integer input), see :func:`as_integer_counts`; every component's
        total fits in ``int64``.

    Raises
    ------
    ValueError
        On overlapping arrays, different shapes, and everything
        :func:`as_class_counts` refuses.

    Examples
    --------
    >>> c0, c = as_independent_count_pair([[9, 1]], np.array([[95, 5]], np.uint8))
    >>> c.dtype
    dtype('uint8')
    """
    if counts0 is counts or (
        isinstance(counts0, np.ndarray)
        and isinstance(counts, np.ndarray)
        and np.may_share_memory(counts0, counts)
    ):
        raise ValueError(
            "counts0 and counts must come from independent samples; "
            "got the same (or overlapping) array for both"
        )
    counts0 = as_class_counts(counts0, "counts0", keep_dtype=True)
    counts = as_class_counts(counts, "counts", keep_dtype=True)
    if counts0.shape != counts.shape:
        raise ValueError(
            f"counts0 and counts must have the same shape; got {counts0.shape} and {counts.shape}"
        )
    return counts0, counts
