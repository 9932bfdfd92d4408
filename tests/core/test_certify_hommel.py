"""Hommel, Benjamini–Hochberg and –Yekutieli on SEGCERTIFY's counting path.

The counting kernel decides Hommel from the tie groups of the hit histogram
(:func:`mtcert._kernels.certify._hommel`) and hands a family whose decision is
within a relative 2**-30 of changing to ``adjust``.  References, each
independent of that kernel: ``adjust`` on the float p-values from
:func:`mtcert.binom_test` (statsmodels-exact, see test_multitest_parity.py),
and Hommel's definition and closed testing with Simes tests, both in exact
rational arithmetic.
"""

from __future__ import annotations

import itertools
import tracemalloc
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mtcert.certify.segmentation as certify_mod
from mtcert._kernels import certify as kernels
from mtcert.certify import ABSTAIN, FAST_METHODS, NotACertificateWarning, segcertify_hits
from tests.helpers.hommel import (
    adjust_reject,
    closed_testing,
    fallback_calls,
    hommel_definition,
    near_boundary_hits,
    pvalues_ref,
    stable,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::mtcert.certify.segmentation.NotACertificateWarning"
)

COUNTING = ("hommel", "fdr_bh", "fdr_by")


@st.composite
def near_boundary_families(draw, max_n=60, max_m=30):
    """(n, tau, alpha, hits): heavy ties, and alpha often at or near a Hommel boundary.

    A Hommel boundary is alpha = v j / l for a p-value v and 1 <= l <= j <= m;
    alpha is drawn as such a product (exact, nudged by a few ulp, or by 1e-9)
    or freely.
    """
    n = draw(st.integers(1, max_n))
    tau = draw(st.sampled_from([0.5, 0.6, 0.75, 0.9]))
    m = draw(st.integers(1, max_m))
    levels = [*draw(st.lists(st.integers(0, n), min_size=1, max_size=5)), n]
    hit = st.sampled_from(levels) | st.integers(0, n)
    hits = np.array(draw(st.lists(hit, min_size=m, max_size=m)), np.int64)
    kind = draw(st.sampled_from(["exact", "ulp", "near", "free"]))
    if kind == "free":
        alpha = draw(st.floats(1e-6, 0.99))
    else:
        v = float(pvalues_ref(draw(st.sampled_from(levels)), n, tau))
        j = draw(st.integers(1, m))
        alpha = v * j / draw(st.integers(1, j))
        if kind == "ulp":
            alpha = float(alpha * (1 + draw(st.integers(-4, 4)) * 2.0**-52))
        elif kind == "near":
            alpha *= 1 + draw(st.sampled_from([-1e-9, 1e-9]))
        alpha = min(max(alpha, 1e-12), 0.99)
    return n, tau, alpha, hits


@given(fam=near_boundary_families())
def test_hommel_matches_adjust_and_the_exact_definition(fam):
    n, tau, alpha, hits = fam
    guess = np.arange(hits.size) % 6
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="hommel")
    ref = adjust_reject(hits, n, tau, alpha)
    np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
    assert cert.n_certified == ref.sum()
    p = pvalues_ref(hits, n, tau)
    if stable(p, alpha):
        # away from a boundary the floats cannot matter: exact Hommel decides
        np.testing.assert_array_equal(cert.reject, hommel_definition(p, alpha))
        if hits.size <= 6:
            np.testing.assert_array_equal(cert.reject, closed_testing(p, alpha))
    for method in ("fdr_bh", "fdr_by"):
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method)
        ref = adjust_reject(hits, n, tau, alpha, method)
        np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))


def test_the_exact_references_agree_and_are_mostly_stable():
    """Definition and closed testing agree on exact rationals; tests above are not vacuous."""
    rng = np.random.default_rng(3)
    n_stable = 0
    for _ in range(300):
        m = int(rng.integers(1, 7))
        p = rng.choice([0.001, 0.01, 0.02, 0.025, 0.05, 0.2, 1.0, *rng.random(3)], m)
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        np.testing.assert_array_equal(hommel_definition(p, alpha), closed_testing(p, alpha))
        n_stable += stable(p, alpha)
    assert n_stable > 200


@pytest.fixture
def adjust_calls(monkeypatch):
    """The method names SEGCERTIFY's fallback (``adjust``'s core) is called with."""
    return fallback_calls(monkeypatch)


def test_hommel_varied_sizes_and_direct_table(adjust_calls, monkeypatch):
    """m from 1 to a few thousand, n from 1 to 10**4 (the large-n path for few hits)."""
    direct = []
    real_direct = certify_mod._direct_table
    monkeypatch.setattr(
        certify_mod, "_direct_table", lambda *a: direct.append(1) or real_direct(*a)
    )
    n_cases = 0
    for seed in range(10):
        rng = np.random.default_rng([seed, 13])
        for m, n in itertools.product((1, 2, 7, 40, 3000), (1, 10, 100, 10**4)):
            tau = float(rng.choice([0.5, 0.75, 0.9, 0.99]))
            alpha = float(rng.choice([1e-3, 0.01, 0.05, 0.2, rng.uniform(1e-4, 0.5)]))
            hits = near_boundary_hits(rng, n, tau, alpha, m)
            guess = rng.integers(0, 5, m)
            dtype = (np.int64, np.int32, np.uint16, np.int16)[int(rng.integers(4))]
            if n <= np.iinfo(dtype).max:
                hits = hits.astype(dtype)
            for method in COUNTING:
                cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method)
                ref = adjust_reject(hits, n, tau, alpha, method)
                np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
                assert cert.n_certified == ref.sum()
                n_cases += 1
    assert direct  # n = 10**4 with m < (n + 1) / 8 went through _direct_table
    assert len(adjust_calls) < n_cases / 20  # the counting path decided (almost) all


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_hommel_axis_families(axis, adjust_calls):
    rng = np.random.default_rng(axis + 5)
    n, tau = 50, 0.75
    for alpha in (1e-3, 0.05, 0.3):
        hits = near_boundary_hits(rng, n, tau, alpha, 7 * 60).reshape(7, 60)
        guess = rng.integers(0, 3, hits.shape)
        for method in COUNTING:
            cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, axis=axis)
            ref = adjust_reject(hits, n, tau, alpha, method, axis=axis)
            np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
            np.testing.assert_array_equal(cert.n_certified, ref.sum(axis=axis))
    assert adjust_calls == []


def _boundary_alphas(p):
    """alpha = v j / l for every p-value v and 1 <= l <= j <= m (rounded to a float)."""
    m = p.size
    out = {float(v * j / l) for v in np.unique(p) for j in range(1, m + 1) for l in range(1, j + 1)}
    return sorted(a for a in out if 0 < a < 1)


def test_hommel_boundaries_go_to_adjust(adjust_calls):
    """Every alpha at a Hommel boundary is decided as ``adjust`` decides it.

    At an exact boundary the floats of ``adjust`` and of the kernel may round
    differently, so the kernel must hand the family over (``undecided``);
    nudged by 2**-20, outside the kernel's 2**-30 band, it decides itself.
    """
    n, tau = 100, 0.75
    hits = np.array([100, 100, 97, 95, 95, 95, 90, 85, 80])
    p = pvalues_ref(hits, n, tau)
    guess = np.arange(hits.size) % 4
    table = pvalues_ref(np.arange(n + 1), n, tau)
    n_undecided = n_checked = 0
    alphas = _boundary_alphas(p)
    for alpha in alphas:
        # a change of the exact decisions within 2**-40 of alpha is inside the band
        if not stable(p, alpha, Fraction(1, 2**40)):
            n_checked += 1
            labels = np.empty((1, hits.size), np.int64)
            copy = np.empty((1, hits.size), np.int64)
            *_, undecided = kernels.certify_families(
                guess[None], hits[None], table, alpha, 1.0, FAST_METHODS["hommel"], 1.0,
                ABSTAIN, labels, copy,
            )  # fmt: skip
            n_undecided += undecided
            assert undecided, alpha
        for a in (alpha, alpha * (1 + 2.0**-20), alpha * (1 - 2.0**-20)):
            cert = segcertify_hits(guess, hits, n, tau=tau, alpha=a, method="hommel")
            ref = adjust_reject(hits, n, tau, a)
            np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
            if stable(p, a):
                np.testing.assert_array_equal(cert.reject, hommel_definition(p, a))
    assert n_checked > 5 and n_undecided == n_checked
    assert n_checked <= len(adjust_calls) < len(alphas)


def test_hommel_all_rejected_boundary_and_tiny_alpha(adjust_calls):
    """p_(m) = alpha (reject all iff p_(m) <= alpha) and alpha too small for the kernel."""
    n, tau = 30, 0.5
    hits = np.array([30, 28, 25, 25, 22])
    p = pvalues_ref(hits, n, tau)
    alpha = float(p.max())
    cert = segcertify_hits(np.zeros(5, int), hits, n, tau=tau, alpha=alpha, method="hommel")
    ref = adjust_reject(hits, n, tau, alpha)
    np.testing.assert_array_equal(cert.reject, ref)
    assert adjust_calls == ["hommel"]
    # n = 2000, tau = 1/2: the top p-values underflow to 0, one tie group with p = 0
    hits = np.array([2000, 1999, 1990, 1500, 1000, 2000])
    for alpha in (1e-300, 2.0**-959, 1e-30):
        cert = segcertify_hits(np.zeros(6, int), hits, 2000, tau=0.5, alpha=alpha, method="hommel")
        np.testing.assert_array_equal(cert.reject, adjust_reject(hits, 2000, 0.5, alpha))
    assert adjust_calls == ["hommel", "hommel"]  # alpha < 2**-960 only


@pytest.mark.parametrize("method", ["hommel", "holm", "hochberg", "fdr_bh"])
def test_counting_path_peak_memory(method):
    """Peak traced memory of one family of int64 hits: at most 1.5x the hits (about 1.13x).

    Before Hommel and fdr_bh took the counting path they peaked at 8.5x and 5.5x.
    """
    rng = np.random.default_rng(0)
    hits = rng.binomial(100, 0.97, (512, 512))
    guess = np.zeros(hits.shape, np.int64)

    def run():
        return segcertify_hits(guess, hits, 100, tau=0.75, alpha=1e-3, method=method)

    run()  # compile or load the kernels outside the measurement
    tracemalloc.start()
    try:
        cert = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 1.5 * hits.nbytes, peak / hits.nbytes
    ref = adjust_reject(hits, 100, 0.75, 1e-3, method)
    np.testing.assert_array_equal(cert.reject, ref)
    assert 0 < cert.n_certified < hits.size


@pytest.mark.parametrize("hits_dtype", [np.int64, np.int8])
def test_fdr_warning_points_at_the_caller(hits_dtype):
    """Fused (int64) and converting (int8) path both warn, at the caller's line."""
    hits = np.array([100, 99, 50], hits_dtype)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        segcertify_hits(np.zeros(3, np.int64), hits, 100, tau=0.75, alpha=0.01, method="fdr_by")
    assert [w.category for w in rec] == [NotACertificateWarning]
    assert rec[0].filename == __file__


@given(
    v=st.floats(0, 1),
    a=st.floats(1e-9, 0.999),
    c=st.integers(0, 400),
    extra=st.integers(0, 400),
)
def test_first_forbidden_is_the_smallest_forbidden_j(v, a, c, extra):
    """``_first_forbidden`` against a scan of ``(j - c) a >= j v`` in exact rationals.

    Where some j sits within a relative 1e-9 of equality the floats may
    decide either way; only the kernel's own invariant is checked there.
    """
    m = c + extra + (c == 0 and extra == 0)
    got = kernels._first_forbidden(v, c, m, a)
    fa, fv = Fraction(a), Fraction(v)
    exact = next((j for j in range(c + 1, m + 1) if (j - c) * fa >= j * fv), m + 1)
    near = any(
        abs((j - c) * fa - j * fv) <= Fraction(1, 10**9) * j * fa
        for j in (exact - 1, exact)
        if c < j <= m
    )
    if not near:
        assert got == exact
    assert c < got <= m + 1
    assert got == m + 1 or kernels._forbids(got, c, v, a)
    assert got == c + 1 or not kernels._forbids(got - 1, c, v, a)
