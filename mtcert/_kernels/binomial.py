"""Numba kernels for exact binomial tail probabilities.

The regularised incomplete beta functions come from ``scipy.special.cython_special``
(Boost's ``ibeta``), passed into the kernels as first-class function arguments so
that the kernels stay cacheable (a ctypes pointer captured as a global would stop
numba from caching).  Inputs are validated by :mod:`mtcert.stats.binomial`.

Identities used (X ~ Bin(n, p), 0 <= k <= n, I the regularised incomplete beta):

* P(X >= k) = I_p(k, n - k + 1) for k >= 1, and 1 for k = 0;
* P(X <= k) = 1 - I_p(k + 1, n - k) = ``betaincc(k + 1, n - k, p)`` for k < n, 1 for k = n.

Neither is ever formed as ``1 - cdf``, so tails keep full relative accuracy down
to the smallest normal double.

The kernels do not use ``parallel=True``: numba's default OpenMP threading layer
is not fork-safe, and a user who forks worker processes (multiprocessing's
default on Linux) after calling mtcert would see them terminated.  The Python
wrapper instead runs ``nogil`` kernels on chunks in a thread pool.

Imports numpy, numba, :mod:`scipy.special.cython_special` and :mod:`mtcert._jit` only.
"""

from __future__ import annotations

import ctypes
import math

import numba
import numpy as np
from numba.extending import get_cython_function_address

from mtcert._jit import tiered

_BETA_SIGNATURE = ctypes.CFUNCTYPE(
    ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_int
)


def _cython_special_double(name: str):
    """ctypes handle to the ``double (double, double, double)`` variant of ``name``.

    Fused Cython functions are exported under ``__pyx_fuse_<i><name>``; the index of
    the double variant is not stable across scipy releases, so look it up by signature.
    """
    import scipy.special.cython_special as cs

    for key, capsule in cs.__pyx_capi__.items():
        if key == name or (
            key.startswith("__pyx_fuse_")
            and key.endswith(name)
            and key[len("__pyx_fuse_") :].lstrip("0123456789") == name
        ):
            if "double (double, double, double," in repr(capsule):
                addr = get_cython_function_address("scipy.special.cython_special", key)
                return _BETA_SIGNATURE(addr)
    raise ImportError(f"scipy.special.cython_special has no double variant of {name}")


BETAINC = _cython_special_double("betainc")
BETAINCC = _cython_special_double("betaincc")

# --- binomial probability mass (Loader 2000, "Fast and accurate computation of binomial
# probabilities"): saddle-point form with the Stirling-series error term, accurate to a
# few ulp in relative terms where log-gamma differences lose ~log10(n) digits.

_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
# stirlerr(m) = ln m! - ln(sqrt(2 pi m) (m/e)^m) for m = 0..15, tabulated exactly enough.
_STIRLERR_TABLE = np.array(
    [0.0]
    + [math.lgamma(m + 1.0) - (m + 0.5) * math.log(m) + m - _LN_SQRT_2PI for m in range(1, 16)]
)


@numba.njit(cache=True)
def _stirlerr(m):
    if m <= 15.0:
        return _STIRLERR_TABLE[int(m)]
    mm = m * m
    s0, s1, s2, s3, s4 = 1.0 / 12, 1.0 / 360, 1.0 / 1260, 1.0 / 1680, 1.0 / 1188
    if m > 500.0:
        return (s0 - s1 / mm) / m
    if m > 80.0:
        return (s0 - (s1 - s2 / mm) / mm) / m
    if m > 35.0:
        return (s0 - (s1 - (s2 - s3 / mm) / mm) / mm) / m
    return (s0 - (s1 - (s2 - (s3 - s4 / mm) / mm) / mm) / mm) / m


@numba.njit(cache=True)
def _bd0(x, mean):
    """Deviance term x ln(x / mean) + mean - x, computed without cancellation."""
    # Series in v = (x - mean) / (x + mean) (positive terms but the first two; converges
    # like v^2): used up to |v| = 1/2, where the closed form below cancels digits.
    if abs(x - mean) < 0.5 * (x + mean):
        v = (x - mean) / (x + mean)
        s = (x - mean) * v
        ej = 2.0 * x * v
        v2 = v * v
        j = 1
        while j < 1000:
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
        return s
    return x * math.log(x / mean) + mean - x


@numba.njit(cache=True)
def binom_logpmf(k, n, p):
    """ln P(X = k) for X ~ Bin(n, p); k, n integral-valued floats with 0 <= k <= n.

    In logs so that no probability underflows before the caller combines it.
    """
    q = 1.0 - p
    if p == 0.0:
        return 0.0 if k == 0.0 else -math.inf
    if q == 0.0:
        return 0.0 if k == n else -math.inf
    if k == 0.0:
        return -_bd0(n, n * q) - n * p if p < 0.1 else n * math.log1p(-p)
    if k == n:
        return -_bd0(n, n * p) - n * q if q < 0.1 else n * math.log(p)
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * q)
    lf = math.log(2.0 * math.pi) + math.log(k) + math.log1p(-k / n)
    return lc - 0.5 * lf


@numba.njit(cache=True)
def binom_pmf(k, n, p):
    """P(X = k) for X ~ Bin(n, p); k, n integral-valued floats with 0 <= k <= n."""
    return math.exp(binom_logpmf(k, n, p))


@numba.njit(cache=True)
def _tail_ratio_sum(k, n, p, upward):
    """Sum over the tail beyond ``k`` of P(X = j) / P(X = k), j from k away from the mode.

    ``upward``: j = k, k + 1, ..., n (ratio (n - j) p / ((j + 1) q)); otherwise
    j = k, k - 1, ..., 0 (ratio j q / ((n - j + 1) p)).  The caller uses this only
    where the ratio is below 1 (k beyond the mean); it then decreases along the
    tail, so once ``t r / (1 - r)`` is below the last ulp of the sum the rest of
    the tail cannot change it.  Neumaier's compensation keeps the sum to ~1 ulp.
    """
    q = 1.0 - p
    s = 1.0
    c = 0.0
    t = 1.0
    j = k
    while (j < n) if upward else (j > 0.0):
        if upward:
            r = ((n - j) * p) / ((j + 1.0) * q)
            j += 1.0
        else:
            r = (j * q) / ((n - j + 1.0) * p)
            j -= 1.0
        t *= r
        u = s + t
        if s >= t:
            c += (s - u) + t
        else:
            c += (t - u) + s
        s = u
        if t * r <= 1e-17 * s * (1.0 - r):
            break
    return s + c


@numba.njit(cache=True)
def log_tail(k, n, p, upward):
    """ln P(X >= k) (``upward``) or ln P(X <= k), summed in log space from P(X = k).

    Exact to a few ulp of ``ln P`` where ``k`` lies beyond the mean on the side
    of the tail; used where the regularised incomplete beta function
    underflows or loses its relative accuracy (deep tails).
    """
    return binom_logpmf(k, n, p) + math.log(_tail_ratio_sum(k, n, p, upward))


# Below this, Boost's ibeta may return 0 or lose relative accuracy for binomial
# parameters (e.g. I_{1/2}(1129, 39) = 1.9e-280 comes back as 0); deep tails are
# summed in log space from the pmf instead.
DEEP_TAIL = 1e-200


# Boost's ibeta / ibetac return NaN for some parameters near 2^53 (e.g. ibetac at
# a = 2^52 + 1, b = 2^52, x = 1/2: a + b = n + 1 is not a double there).  This
# happens next to the mean, where both tails are about 1/2, so the complement of
# the other tail is then accurate to an ulp or two.


@numba.njit(cache=True)
def binom_greater(k, n, p, betainc, betaincc):
    """P(X >= k); the two-sided search may ask for k = n + 1 (an empty tail)."""
    if k <= 0.0:
        return 1.0
    if k > n:
        return 0.0
    v = betainc(k, n - k + 1.0, p, 0)
    if v != v:
        v = 1.0 - betaincc(k, n - k + 1.0, p, 0)
    if v < DEEP_TAIL and k > n * p:
        return math.exp(log_tail(k, n, p, True))
    return v


@numba.njit(cache=True)
def binom_less(k, n, p, betainc, betaincc):
    """P(X <= k); the two-sided search may ask for k = -1 (an empty tail)."""
    if k >= n:
        return 1.0
    if k < 0.0:
        return 0.0
    v = betaincc(k + 1.0, n - k, p, 0)
    if v != v:
        v = 1.0 - betainc(k + 1.0, n - k, p, 0)
    if v < DEEP_TAIL and k < n * p:
        return math.exp(log_tail(k, n, p, False))
    return v


@numba.njit(cache=True)
def binom_two_sided(k, n, p, betainc, betaincc):
    """Two-sided p-value as ``scipy.stats.binomtest``, exact also in the extreme tails.

    Sums the probabilities of all outcomes no more likely than ``k`` (with scipy's
    relative tolerance 1e-7), locating the boundary on the other side of the mode by
    binary search over the unimodal pmf.  The search compares log-probabilities, so
    the opposite tail is found even where its pmf underflows (scipy drops it there
    and returns up to half the p-value below about 1e-250).
    """
    if k == p * n:
        return 1.0
    target = binom_logpmf(k, n, p) + math.log1p(1e-7)
    pn = p * n
    if k < pn:
        # smallest ix in [ceil(pn), n] with logpmf(ix) <= target (pmf decreasing there)
        lo = math.ceil(pn)
        hi = n + 1.0
        while lo < hi:
            mid = lo + math.floor((hi - lo) / 2.0)
            if binom_logpmf(mid, n, p) <= target:
                hi = mid
            else:
                lo = mid + 1.0
        pval = binom_less(k, n, p, betainc, betaincc) + binom_greater(lo, n, p, betainc, betaincc)
    else:
        # largest ix in [0, floor(pn)] with logpmf(ix) <= target (pmf increasing there)
        lo = -1.0
        hi = math.floor(pn)
        while lo < hi:
            mid = lo + math.ceil((hi - lo) / 2.0)
            if binom_logpmf(mid, n, p) <= target:
                lo = mid
            else:
                hi = mid - 1.0
        pval = binom_less(lo, n, p, betainc, betaincc) + binom_greater(k, n, p, betainc, betaincc)
    return min(1.0, pval)


# One kernel per alternative, so that a call compiles only the tail it needs
# (the two-sided search is not compiled for a SEGCERTIFY table).  Arrays of
# size 1 broadcast.


@numba.njit(cache=True, inline="always")
def _at(a, i):
    return float(a[i] if a.size > 1 else a[0])


@tiered
@numba.njit(cache=True, nogil=True)
def greater_elementwise(k, n, p, out, betainc, betaincc):
    """out[i] = P(X >= k[i]) for X ~ Bin(n[i], p[i])."""
    for i in range(out.size):
        out[i] = binom_greater(_at(k, i), _at(n, i), _at(p, i), betainc, betaincc)


@tiered
@numba.njit(cache=True, nogil=True)
def less_elementwise(k, n, p, out, betainc, betaincc):
    """out[i] = P(X <= k[i]) for X ~ Bin(n[i], p[i])."""
    for i in range(out.size):
        out[i] = binom_less(_at(k, i), _at(n, i), _at(p, i), betainc, betaincc)


@tiered
@numba.njit(cache=True, nogil=True)
def two_sided_elementwise(k, n, p, out, betainc, betaincc):
    """out[i] = two-sided p-value of k[i] under Bin(n[i], p[i]) (as scipy.stats.binomtest)."""
    for i in range(out.size):
        out[i] = binom_two_sided(_at(k, i), _at(n, i), _at(p, i), betainc, betaincc)


@tiered
@numba.njit(cache=True)
def gather_by_n(table, offsets, n, k, out):
    """out[i] = table[offsets[n[i]] + k[i]]; n of size 1 broadcasts (inputs validated)."""
    if n.size == 1:
        base = offsets[n[0]]
        for i in range(k.size):
            out[i] = table[base + k[i]]
    else:
        for i in range(k.size):
            out[i] = table[offsets[n[i]] + k[i]]


@numba.njit(cache=True)
def upper_tail_by_sums(k, n, p):
    """P(X >= k) for X ~ Bin(n, p) by summing the pmf from its larger side.

    For ``k`` above the mean the upper tail is summed directly; otherwise the
    result is one minus the lower tail P(X <= k - 1), which is then at most
    about 1/2, so the subtraction costs no relative accuracy.  Each sum starts
    at the pmf next to ``k`` and runs away from the mode, so it needs few
    terms when ``k`` is small (the k of a k-FWER) or far from the mean.
    Relative error is a few ulp where the result is not tiny (Boost's ibeta
    reaches 6e-13 there for large n), and ``|ln P|`` ulp in deep tails.
    """
    if k <= 0.0:
        return 1.0
    if k > n or p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    if k > n * p:
        return math.exp(log_tail(k, n, p, True))
    return -math.expm1(log_tail(k - 1.0, n, p, False))
