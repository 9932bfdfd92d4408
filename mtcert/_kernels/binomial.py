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

Where the tail beyond ``k`` (or, for ``k`` on the near side of the mean, the
opposite tail, then below 1/2) needs at most :data:`SUM_TERMS` pmf terms to
reach 1e-17 of its sum -- ``n p (1 - p)`` up to ~2000, or ``k`` far from the
mean -- the kernels sum those terms from Loader's pmf instead
(:func:`tail_by_sums`): 1.4-2.8 times faster than ``ibeta`` and as accurate
(few ulp; ``|ln P|`` ulp in deep tails, where ``ibeta`` underflows).

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
_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True)
def _stirlerr_series(m):
    """stirlerr(m) = ln m! - ln(sqrt(2 pi m) (m/e)^m) for m > 15, from the Stirling series."""
    inv = 1.0 / m
    i2 = inv * inv
    s0, s1, s2, s3, s4 = 1.0 / 12, 1.0 / 360, 1.0 / 1260, 1.0 / 1680, 1.0 / 1188
    if m > 500.0:
        return (s0 - s1 * i2) * inv
    if m > 80.0:
        return (s0 - (s1 - s2 * i2) * i2) * inv
    if m > 35.0:
        return (s0 - (s1 - (s2 - s3 * i2) * i2) * i2) * inv
    return (s0 - (s1 - (s2 - (s3 - s4 * i2) * i2) * i2) * i2) * inv


# stirlerr(m) for integers m < 1024: exactly enough from log-gamma up to 15, then the
# series (a table lookup is several times faster than the series' division).
_STIRLERR_TABLE = np.array(
    [0.0]
    + [math.lgamma(m + 1.0) - (m + 0.5) * math.log(m) + m - _LN_SQRT_2PI for m in range(1, 16)]
    + [_stirlerr_series.py_func(float(m)) for m in range(16, 1024)]
)


@numba.njit(cache=True)
def _stirlerr(m):
    if m < 1024.0:
        return _STIRLERR_TABLE[int(m)]
    return _stirlerr_series(m)


# 1 / (2j + 3), j = 0..31: atanh(v) / v - 1 = w (1/3 + w/5 + w^2/7 + ...), w = v^2.
# For w < 0.09 the first 16 terms leave out less than 1e-17 of the sum, for w < 1/4
# all 32 less than 1e-20.
_ATANH_SERIES = 1.0 / (2.0 * np.arange(32) + 3.0)


@numba.njit(cache=True, inline="always")
def _estrin16(c, o, w, w2, w4, w8):
    """sum_{j=0}^{15} c[o + j] w^j by Estrin's scheme (short dependency chains)."""
    q0 = (c[o] + c[o + 1] * w) + (c[o + 2] + c[o + 3] * w) * w2
    q1 = (c[o + 4] + c[o + 5] * w) + (c[o + 6] + c[o + 7] * w) * w2
    q2 = (c[o + 8] + c[o + 9] * w) + (c[o + 10] + c[o + 11] * w) * w2
    q3 = (c[o + 12] + c[o + 13] * w) + (c[o + 14] + c[o + 15] * w) * w2
    return (q0 + q1 * w4) + (q2 + q3 * w4) * w8


@numba.njit(cache=True)
def _bd0(x, mean):
    """Deviance term x ln(x / mean) + mean - x, computed without cancellation."""
    # In v = (x - mean) / (x + mean): x ln(x / mean) = 2 x atanh(v), so the term is
    # (x - mean) v + 2 x (atanh(v) - v), a series of positive terms after the first
    # that converges like v^2 (a fixed polynomial: 16 terms up to |v| = 0.3, 32 up to
    # 1/2).  Beyond |v| = 1/2 the closed form below cancels at most ~1.5 digits.
    d = x - mean
    if abs(d) < 0.5 * (x + mean):
        v = d / (x + mean)
        w = v * v
        w2 = w * w
        w4 = w2 * w2
        w8 = w4 * w4
        series = _estrin16(_ATANH_SERIES, 0, w, w2, w4, w8)
        if w >= 0.09:
            series += (w8 * w8) * _estrin16(_ATANH_SERIES, 16, w, w2, w4, w8)
        return d * v + (2.0 * x * v) * w * series
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
    return _saddle_exponent(k, n, p) - 0.5 * math.log(_TWO_PI * k * ((n - k) / n))


@numba.njit(cache=True, inline="always")
def _saddle_exponent(k, n, p):
    """ln P(X = k) + ln sqrt(2 pi k (n - k) / n), for 0 < k < n and 0 < p < 1."""
    return (
        _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * (1.0 - p))
    )


@numba.njit(cache=True)
def binom_pmf(k, n, p):
    """P(X = k) for X ~ Bin(n, p); k, n integral-valued floats with 0 <= k <= n.

    Underflows (to a subnormal number or 0) below about 1e-308; use
    :func:`binom_logpmf` there.
    """
    if 0.0 < k < n and 0.0 < p < 1.0:
        return math.exp(_saddle_exponent(k, n, p)) * math.sqrt(n / (_TWO_PI * k * (n - k)))
    return math.exp(binom_logpmf(k, n, p))


@numba.njit(cache=True)
def _tail_ratio_sum(k, n, p, upward, min_terms, max_terms, compensated):
    """Sum over the tail beyond ``k`` of P(X = j) / P(X = k), j from k away from the mode.

    ``upward``: j = k, k + 1, ..., n (step ratio (n - j) p / ((j + 1) q)); otherwise
    j = k, k - 1, ..., 0 (step ratio j q / ((n - j + 1) p)).  Either way a step
    ratio is ``rho a / b`` with ``a`` falling and ``b`` rising by one per step,
    and ``a`` reaching 0 ends the tail.  The caller uses this only where the
    first ratio is below 1 (k beyond the mean on the side of the tail); the
    ratios then decrease along the tail, so once the last term times
    ``r / (1 - r)`` (r the last ratio) is below 1e-17 of the sum, the rest of
    the tail cannot change it.

    Steps are taken four at a time with one division (the block's terms in
    Horner form over the product of its four denominators).  ``compensated``
    adds the blocks with Neumaier's compensation, which keeps the sum within a
    few ulp however long it is; without it (cheaper by a tenth) the error of
    the sum grows to at most ``terms / 8`` ulp.  The stopping rule is first
    checked after ``min_terms`` terms (a caller that knows about how many are
    needed saves the checks and the mispredicted branches).  Returns NaN if
    the sum needs more than ``max_terms`` terms.
    """
    q = 1.0 - p
    # selects rather than branches: the direction is hard to predict
    rho = (p if upward else q) / (q if upward else p)
    a = n - k if upward else k
    b = (k if upward else n - k) + 1.0
    s = 1.0
    c = 0.0
    t = 1.0
    terms = 0.0
    while True:
        c1 = rho * a
        c2 = rho * (a - 1.0)
        c3 = rho * (a - 2.0)
        c4 = rho * (a - 3.0)
        b4 = b + 3.0
        b34 = (b + 2.0) * b4
        b234 = (b + 1.0) * b34
        inv = 1.0 / (b * b234)  # off the chain through t: blocks overlap
        # a term of zero (a reached 0) zeroes all later ones in the block
        block = t * (c1 * (b234 + c2 * (b34 + c3 * (b4 + c4))) * inv)
        t = t * ((c1 * c2) * (c3 * c4) * inv)
        if compensated:
            u = s + block
            if s >= block:
                c += (s - u) + block
            else:
                c += (block - u) + s
            s = u
        else:
            s += block
        terms += 4.0
        if terms >= min_terms:
            if t * c4 <= 1e-17 * s * (b4 - c4):
                return s + c
            if terms >= max_terms:
                return math.nan
        a -= 4.0
        b += 4.0


@numba.njit(cache=True)
def log_tail(k, n, p, upward):
    """ln P(X >= k) (``upward``) or ln P(X <= k), summed in log space from P(X = k).

    Exact to a few ulp of ``ln P`` where ``k`` lies beyond the mean on the side
    of the tail; used where the regularised incomplete beta function
    underflows or loses its relative accuracy (deep tails).
    """
    return binom_logpmf(k, n, p) + math.log(_tail_ratio_sum(k, n, p, upward, 0.0, math.inf, True))


# Most terms the elementwise kernels sum next to ``k`` before they leave a tail to
# Boost's ibeta: a term costs about a nanosecond, the pmf about 30, one ibeta call
# 50-100 ns for n p q below 10 and 300-600 ns from n p q ~ 30 on (measured on the
# 2-core development machine), so the sums stay ahead up to several hundred terms.
SUM_TERMS = 400.0


@numba.njit(cache=True)
def tail_by_sums(k, n, p, upper):
    """P(X >= k) (``upper``) or P(X <= k) from the pmf next to ``k`` and a short sum.

    The tail on the far side of ``k`` from the mean is the pmf at its first
    term times :func:`_tail_ratio_sum`; when ``k`` lies on the near side, the
    result is one minus the opposite tail, which is then below 1/2 (so the
    subtraction loses no relative accuracy).  Returns NaN where the sum would
    need more than :data:`SUM_TERMS` terms (``k`` within a few standard
    deviations of the mean when ``n p (1 - p)`` is large) or ``n`` exceeds
    2^53.  Requires ``0 < p < 1``, ``1 <= k <= n`` (``upper``) or
    ``0 <= k < n``.  Relative error a few ulp (the uncompensated sum adds at most
    50), ``|ln P|`` ulp in deep tails (4e-13 the largest seen against 60 digits).
    """
    if n > 9007199254740992.0:  # counts beyond 2^53 are not exact doubles
        return math.nan
    mean = n * p
    if upper:
        complement = k <= mean
        j = k - 1.0 if complement else k
    else:
        complement = k >= mean
        j = k + 1.0 if complement else k
    upward = j > mean
    # The terms fall off about as a normal density of variance n p q: from
    # distance d, they reach 1e-17 of the first after sqrt(d^2 + 80 var) - d steps,
    # more than SUM_TERMS when 80 var > SUM_TERMS (SUM_TERMS + 2 d).
    d = abs(j - mean)
    var80 = 80.0 * mean * (1.0 - p)
    if var80 > SUM_TERMS * (SUM_TERMS + 2.0 * d):
        return math.nan
    # at most SUM_TERMS / 8 = 50 ulp uncompensated, a few in practice
    s = _tail_ratio_sum(j, n, p, upward, math.sqrt(d * d + var80) - d - 4.0, SUM_TERMS, False)
    if s != s:
        return math.nan
    pmf = binom_pmf(j, n, p)
    if pmf > 1e-290:
        tail = pmf * s
    else:  # in logs: P(X = j) may underflow where the tail does not
        tail = math.exp(binom_logpmf(j, n, p) + math.log(s))
    return 1.0 - tail if complement else tail


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
    if 0.0 < p < 1.0:
        v = tail_by_sums(k, n, p, True)
        if v == v:
            return v
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
    if 0.0 < p < 1.0:
        v = tail_by_sums(k, n, p, False)
        if v == v:
            return v
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
