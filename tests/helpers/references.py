"""Exact references for the binomial tails, in 60-digit mpmath arithmetic.

Independent of :mod:`mtcert.stats.binomial` and of scipy/Boost (which
underflow or lose relative accuracy in the deep tails).  Each function sets its
own precision, so a result does not depend on which test module set
``mpmath.mp.dps`` first.
"""

from __future__ import annotations

import mpmath

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
