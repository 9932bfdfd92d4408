"""Input validation shared by every public function.

Public functions validate and convert here, then hand contiguous arrays to the
numba kernels in :mod:`mtcert._kernels`, which never validate.  Every error is a
``ValueError`` that names the offending argument and, where there is a closed
set, lists the allowed values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

NAN_POLICIES = ("propagate", "omit", "raise")


def check_option(value, name: str, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``ValueError``."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_alpha(alpha, name: str = "alpha") -> float:
    """Check a significance level: a real number strictly inside (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"{name} must be a real number in (0, 1); got {alpha!r}")
    alpha = float(alpha)
    if not (0.0 < alpha < 1.0):  # also rejects NaN
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {alpha!r}")
    return alpha


def check_tau(tau, name: str = "tau") -> float:
    """Check a SEGCERTIFY threshold: a real number in [1/2, 1)."""
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0.5, 1); got {tau!r}")
    tau = float(tau)
    if not (0.5 <= tau < 1.0):
        raise ValueError(f"{name} must lie in [0.5, 1); got {tau!r}")
    return tau


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Check an integer ``>= minimum`` (numpy integers accepted, bools and floats not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return value


def check_positive_real(value, name: str) -> float:
    """Check a finite real number > 0 (a noise scale such as sigma)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive real number; got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return value


def as_probabilities(values, name: str, *, allow_nan: bool = True) -> np.ndarray:
    """Convert to a float64 array with every non-NaN entry in [0, 1].

    NaN entries are left in place when ``allow_nan`` (the caller applies its
    ``nan_policy``); otherwise they raise.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers in [0, 1]: {exc}") from None
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


def as_counts(values, name: str) -> np.ndarray:
    """Convert to an int64 array of non-negative integers.

    Floats are accepted only if they hold integral values (``3.0`` but not
    ``2.5``); NaN, infinities, negatives and booleans-as-strings are refused.
    """
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of non-negative integers; got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite non-negative integers; found NaN or inf")
        if not np.all(arr == np.floor(arr)):
            raise ValueError(f"{name} must hold integers; found non-integral values")
        if arr.size and np.abs(arr).max() > 2.0**62:
            raise ValueError(f"{name} holds values too large for int64")
    out = arr.astype(np.int64, copy=False)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must be non-negative; found {int(out.min())}")
    return out


def check_nan_policy(nan_policy) -> str:
    """Check a scipy-style ``nan_policy``."""
    return check_option(nan_policy, "nan_policy", NAN_POLICIES)


def as_class_counts(counts, name: str) -> np.ndarray:
    """Integer class counts of shape (..., C): a non-empty class axis, at least one row."""
    counts = as_counts(counts, name)
    if counts.ndim < 1 or counts.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty class axis (the last one)")
    if counts.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to classify")
    return counts


def as_independent_count_pair(counts0, counts) -> tuple[np.ndarray, np.ndarray]:
    """Guessing and testing class counts, validated as a pair of the same shape.

    The two must come from independent samples (reusing the guessing samples for
    the test biases it towards the guess); passing the same or overlapping arrays
    is the one violation that can be detected, and is refused.
    """
    if counts0 is counts or np.may_share_memory(counts0, counts):
        raise ValueError(
            "counts0 and counts must come from independent samples; "
            "got the same (or overlapping) array for both"
        )
    counts0 = as_class_counts(counts0, "counts0")
    counts = as_class_counts(counts, "counts")
    if counts0.shape != counts.shape:
        raise ValueError(
            f"counts0 and counts must have the same shape; got {counts0.shape} and {counts.shape}"
        )
    return counts0, counts
