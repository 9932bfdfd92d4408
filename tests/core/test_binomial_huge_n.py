"""Binomial tails at huge n (up to 2^53, the largest n whose counts are exact doubles).

Boost's incomplete beta function returns NaN for some parameters next to the mean
there (ibetac at a = 2^52 + 1, b = 2^52, x = 1/2); the kernels then fall back on
the complement of the other tail.  References: the symmetry of Bin(n, 1/2), the
complement identity, and the Berry–Esseen bound on the normal approximation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as hs
from scipy.special import ndtr

from mtcert import _jit
from mtcert._kernels.binomial import binom_pmf
from mtcert.stats.binomial import binom_test

ALTERNATIVES = ["less", "greater", "two-sided"]
N_MAX = 2**53
# Boost's ibeta is accurate to a few 1e-12 (absolute, near 1/2) at n ~ 2^53 for p = 1/2;
# for other p, ibeta and ibetac there disagree by up to ~1e-9 (ln p times n ~ 2^53).
DYADIC_ABS = 1e-11
BOOST_ABS = 1e-8


def pvalue(k, n, p, alternative):
    return float(binom_test(k, n, p, alternative=alternative))


def berry_esseen(n, p):
    """Bound on |P(X <= x) - Phi((x - np) / sigma)| (Shevtsova 2011: C = 0.4748)."""
    q = 1.0 - p
    return 0.4748 * (p * p + q * q) / math.sqrt(n * p * q)


@pytest.mark.parametrize("n", [2**53, 2**53 - 2, 2**52, 2**40])
def test_median_of_symmetric_binomial(n):
    # By symmetry P(X <= n/2) = P(X >= n/2) = (1 + P(X = n/2)) / 2 for Bin(n, 1/2).
    k = n // 2
    exact = 0.5 + 0.5 * binom_pmf(float(k), float(n), 0.5)
    less, greater = pvalue(k, n, 0.5, "less"), pvalue(k, n, 0.5, "greater")
    assert abs(less - exact) <= DYADIC_ABS and abs(greater - exact) <= DYADIC_ABS
    assert pvalue(k, n, 0.5, "two-sided") == 1.0


@pytest.mark.parametrize("p", [0.5, 0.25, 0.75, 0.6394719365196334])
@pytest.mark.parametrize("n", [2**53, 2**53 - 1])
def test_tails_are_complements_next_to_the_mean(n, p):
    # Where Boost's ibetac returned NaN: k within a few counts of the mean.
    for k in round(n * p) + np.arange(-3, 4):
        k = int(k)
        less, greater = pvalue(k, n, p, "less"), pvalue(k + 1, n, p, "greater")
        assert math.isfinite(less) and math.isfinite(greater)
        assert abs(less + greater - 1.0) <= BOOST_ABS, (k, less, greater)
        assert math.isfinite(pvalue(k, n, p, "two-sided"))


@given(
    log2_n=hs.floats(0, 53),
    p=hs.one_of(hs.sampled_from([0.0, 0.5, 0.25, 1.0]), hs.floats(0, 1)),
    z=hs.one_of(hs.floats(-40, 40), hs.floats(-1e9, 1e9)),
)
@example(log2_n=53.0, p=0.5, z=0.0)
@example(log2_n=53.0, p=0.75, z=0.0)
def test_property_no_nan_and_berry_esseen(log2_n, p, z):
    n = min(N_MAX, max(1, round(2.0**log2_n)))
    sigma = math.sqrt(n * p * (1.0 - p))
    k = int(min(n, max(0, round(n * p + z * max(sigma, 1.0)))))
    # Compiled: a tail just past 1e-200 at n ~ 2^53 sums ~1e8 pmf ratios.
    with _jit.policy("always"):
        less, greater, two = (pvalue(k, n, p, alt) for alt in ALTERNATIVES)
    for v in (less, greater, two):
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (k, n, p, less, greater, two)
    assert two >= min(less, greater)
    if sigma > 0.0:
        bound = berry_esseen(n, p) + BOOST_ABS
        assert abs(less - ndtr((k - n * p) / sigma)) <= bound
        assert abs(greater - ndtr(-(k - 1 - n * p) / sigma)) <= bound
