"""References for the binomial tails: exact ones in 60-digit mpmath arithmetic, and scipy's.

The mpmath sums are independent of :mod:`mtcert.stats.binomial` and of
scipy/Boost (which underflow or lose relative accuracy in the deep tails, and
sometimes fail outright).  Each sets its own precision, so a result does not
depend on which test module set ``mpmath.mp.dps`` first.
"""

from __future__ import annotations

import mpmath
import scipy.stats

DIGITS = 60


def exact_tail(k, n, p, alternative):
    """The binomial test's p-value as a float, by brute-force sums over the pmf.

    ``alternative="two-sided"`` sums the outcomes no more likely than ``k`` with
    scipy's relative tolerance of 1e-7 (as :func:`scipy.stats.binomtest` does).
    """
    with mpmath.workdps(DIGITS):
        p = mpmath.mpf(p)
        pmf = [mpmath.binomial(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)]
        if alternative == "greater":
            return float(mpmath.fsum(pmf[k:]))
        if alternative == "less":
            return float(mpmath.fsum(pmf[: k + 1]))
        d = pmf[k] * (1 + mpmath.mpf("1e-7"))
        return min(1.0, float(mpmath.fsum(x for x in pmf if x <= d)))


def upper_tail_mp(k, n, p):
    """P(X >= k), X ~ Bin(n, p), as an mpmath number: summed from k up until negligible."""
    with mpmath.workdps(DIGITS):
        p = mpmath.mpf(p)
        q = 1 - p
        t = mpmath.binomial(n, k) * p**k * q ** (n - k)
        s, j = t, k
        while j < n and t > s * mpmath.mpf(10) ** -40:
            t = t * (n - j) * p / ((j + 1) * q)
            j += 1
            s += t
        return s


def binomial_upper_tail(k, n, p):
    """P(X >= k), X ~ Bin(n, p), as a float: the shorter of the two sums."""
    if k > n * p:
        return float(upper_tail_mp(k, n, p))
    with mpmath.workdps(DIGITS):
        p = mpmath.mpf(p)
        return float(
            1 - mpmath.fsum(mpmath.binomial(n, j) * p**j * (1 - p) ** (n - j) for j in range(k))
        )


def scipy_binomtest(k, n, p, alternative="two-sided"):
    """:func:`scipy.stats.binomtest`'s p-value, or None where scipy itself fails.

    For p within a few powers of ten of the smallest normal float, the two-sided
    search calls Boost's ``ibeta_derivative``, which overflows: ``binomtest(0, 4,
    2.2e-308)`` and ``binomtest(0, 21, 3.9e-307)`` raise OverflowError.  A reference
    that fails is no reference; the caller falls back to :func:`exact_tail`.
    """
    try:
        return scipy.stats.binomtest(k, n, p, alternative=alternative).pvalue
    except ArithmeticError:
        return None
