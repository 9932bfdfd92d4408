"""Binomial tails summed next to ``k`` (the elementwise fast path) against exact references.

Where the tail beyond ``k`` needs at most ``SUM_TERMS`` pmf terms, the kernels
sum it instead of calling Boost's incomplete beta function.  References: sums
of the pmf in 60-digit mpmath arithmetic from ``k`` outward (independent of
mtcert and of scipy), the deviance term in mpmath, and the exact level of the
test (the pmf mass of the rejection region, in mpmath).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import example, given, settings
from hypothesis import strategies as hs

from mtcert._kernels.binomial import SUM_TERMS, _bd0, tail_by_sums
from mtcert.stats.binomial import binom_test

DIGITS = 60
N_MAX = 2**53
REL = 1e-12


def short_tail_mp(k, n, p, upper):
    """P(X >= k) (``upper``) or P(X <= k), X ~ Bin(n, p), in mpmath, from the shorter side.

    The tail on the far side of ``k`` from the mean is summed from ``k`` outward
    until the terms fall below 1e-40 of the sum; on the near side the result is
    one minus the opposite tail.  ``p`` is taken exactly (``1 - p`` is formed in
    60 digits, never rounded to a double).
    """
    with mpmath.workdps(DIGITS):
        pm = mpmath.mpf(p)
        qm = 1 - pm
        mean = n * pm
        if upper:
            complement = k <= mean
            j = k - 1 if complement else k
        else:
            complement = k >= mean
            j = k + 1 if complement else k
        upward = j > mean
        t = mpmath.binomial(n, j) * pm**j * qm ** (n - j)
        s = t
        while (j < n if upward else j > 0) and t > s * mpmath.mpf(10) ** -40:
            if upward:
                t = t * (n - j) * pm / ((j + 1) * qm)
                j += 1
            else:
                t = t * j * qm / ((n - j + 1) * pm)
                j -= 1
            s += t
        return float(1 - s if complement else s)


def rel_err(ours, ref):
    return abs(ours - ref) / ref


def check_against_mpmath(k, n, p):
    for upper in (True, False):
        if (upper and k < 1) or (not upper and k >= n):
            continue
        ref = short_tail_mp(k, n, p, upper)
        ours = float(binom_test(k, n, p, alternative="greater" if upper else "less"))
        if ref > 1e-305:
            assert rel_err(ours, ref) <= REL, (k, n, p, upper, ours, ref)
        else:  # subnormal range: no relative accuracy to promise, but no garbage
            assert ours <= 1e-304, (k, n, p, upper, ours, ref)


@settings(max_examples=300, deadline=None)
@given(
    log2_n=hs.floats(0, 53),
    log10_var=hs.floats(-3, 3.4),
    side=hs.sampled_from(["p", "q"]),
    z=hs.one_of(hs.floats(-40, 40), hs.sampled_from([-1e9, 1e9, 0.0])),
    shift=hs.integers(-3, 3),
)
@example(log2_n=53, log10_var=1.0, side="p", z=0.0, shift=0)  # n = 2^53, mean 10
@example(log2_n=53, log10_var=1.0, side="q", z=3.0, shift=0)  # p = 1 - 1.1e-15
@example(log2_n=10, log10_var=-3, side="p", z=1e9, shift=0)  # k = n, p ~ 1e-6
@example(log2_n=7, log10_var=1.4, side="q", z=-40.0, shift=0)  # ~1e-300 lower tail
def test_tails_against_mpmath(log2_n, log10_var, side, z, shift):
    # n from 1 to 2^53; p from n p q = var (small or near 1 when n is large); k at
    # z standard deviations from the mean (clipped to 0..n: k = 0 and k = n included).
    n = max(1, min(N_MAX, round(2.0**log2_n)))
    var = 10.0**log10_var
    small = min(0.5, var / n)  # p (1 - p) ~ var / n for the smaller of p and q
    p = small if side == "p" else 1.0 - small
    if not 0.0 < p < 1.0:
        return
    sd = math.sqrt(n * p * (1.0 - p))
    k = int(min(n, max(0, round(n * p + z * sd) + shift)))
    check_against_mpmath(k, n, p)


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (1, 1, 0.3),
        (0, 1, 0.3),
        (2, 3, 1e-300),  # tiny p: a tail of 3e-600 underflows to 0
        (1, 10, 1e-30),  # ~1e-29
        (1, 2**53, 1e-16),  # Poisson mean ~0.9 at n = 2^53
        (40, 2**53, 1e-15),  # 3e-14: Poisson mean 9, k far above it
        (2**53 - 5, 2**53, 1 - 1e-15),
        (1000, 1000, 0.5),  # 2^-1000 = 9e-302
        (1125, 1167, 0.5),  # 1e-274
        (1144, 1167, 0.5),  # 6e-304, near the bottom of the normal range
        (77, 100, 0.5),  # 3e-8: k beyond the mean
        (23, 100, 0.5),  # k below the mean
        (97, 100, 0.75),  # the tail ends inside the first block of four
        (3, 100, 0.25),
    ],
)
def test_edges_against_mpmath(k, n, p):
    check_against_mpmath(k, n, p)


def test_matches_scipy_on_the_benchmark_workload():
    rng = np.random.default_rng(20261206)
    n = rng.integers(50, 150, 20_000)
    k = rng.binomial(n, 0.8)
    p = rng.uniform(0.5, 0.9, n.size)
    ours = binom_test(k, n, p)
    ref = st.binom.sf(k - 1, n, p)
    assert np.max(np.abs(ours - ref) / ref) <= REL
    lower = binom_test(k, n, p, alternative="less")
    ref = st.binom.cdf(k, n, p)
    assert np.max(np.abs(lower - ref) / ref) <= REL


def test_falls_back_where_sums_would_be_long():
    # Next to the mean of Bin(10^6, 1/2) the sum needs ~9 standard deviations
    # (4500 terms): the kernels leave that to ibeta.  So too for n beyond 2^53.
    assert math.isnan(tail_by_sums(500_000.0, 1e6, 0.5, True))
    assert math.isnan(tail_by_sums(5.0, 2.0**60, 1e-18, True))
    assert not math.isnan(tail_by_sums(20.0, 1e6, 1e-5, True))  # var 10: a short sum
    # where it falls back, the values are still right (near the mean: ~1/2)
    assert (
        rel_err(float(binom_test(500_000, 10**6, 0.5)), short_tail_mp(500_000, 10**6, 0.5, True))
        <= 1e-12
    )
    assert SUM_TERMS >= 64


@pytest.mark.parametrize("v", [0.0, 1e-9, 1e-3, 0.05, 0.29, 0.3, 0.31, 0.45, 0.4999, 0.5, 0.7])
@pytest.mark.parametrize("scale", [1.0, 37.5, 1e6, 2.0**53])
def test_deviance_term_against_mpmath(v, scale):
    # bd0(x, m) = x ln(x / m) + m - x with x = scale (1 + v), m = scale (1 - v).
    for sign in (1.0, -1.0):
        x, m = scale * (1.0 + sign * v), scale * (1.0 - sign * v)
        with mpmath.workdps(DIGITS):
            xm, mm = mpmath.mpf(x), mpmath.mpf(m)
            ref = float(xm * mpmath.log(xm / mm) + mm - xm)
        ours = _bd0(x, m)
        if ref == 0.0:
            assert ours == 0.0
        else:
            assert abs(ours - ref) <= 8e-16 * ref + 1e-300, (x, m, ours, ref)


@pytest.mark.parametrize(("n", "p"), [(20, 0.5), (100, 0.75), (150, 0.9), (400, 0.03)])
@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_exact_level_never_exceeds_alpha(n, p, alternative):
    # Soundness: the test that rejects when the p-value is <= alpha has size <= alpha
    # under the null (pmf mass of the rejection region, in mpmath) for every alpha.
    ks = np.arange(n + 1)
    pvals = binom_test(ks, n, np.full(ks.shape, p), alternative=alternative)  # elementwise
    with mpmath.workdps(DIGITS):
        pm = mpmath.mpf(p)
        pmf = [mpmath.binomial(n, j) * pm**j * (1 - pm) ** (n - j) for j in range(n + 1)]
        for alpha in (1e-12, 1e-6, 1e-3, 0.01, 0.05, 0.1, 0.5):
            size = mpmath.fsum(pmf[j] for j in range(n + 1) if pvals[j] <= alpha)
            assert size <= alpha, (alpha, float(size))
        # and the p-values are the exact tail masses, not merely conservative ones
        exact = [
            mpmath.fsum(pmf[j:]) if alternative == "greater" else mpmath.fsum(pmf[: j + 1])
            for j in range(n + 1)
        ]
    err = [
        abs(float(pv) - float(e)) / float(e)
        for pv, e in zip(pvals, exact, strict=True)
        if float(e) > 1e-305
    ]
    assert max(err) <= REL


def test_monte_carlo_rejection_rate_under_the_null():
    # Seeded draws under H0 (p_true = p): the one-sided test at alpha rejects at
    # most alpha of the time, up to 4 binomial standard errors of the estimate.
    rng = np.random.default_rng(5)
    m = 400_000
    n = rng.integers(30, 300, m)
    p = rng.uniform(0.05, 0.95, m)
    k = rng.binomial(n, p)
    for alternative in ("greater", "less"):
        pvals = binom_test(k, n, p, alternative=alternative)
        for alpha in (0.01, 0.05, 0.2):
            rate = np.mean(pvals <= alpha)
            assert rate <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / m), (alpha, rate)
