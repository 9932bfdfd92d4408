"""Parity with the libraries users already call: statsmodels' own test cases, its
FDR drop-ins and local FDR, scipy's method names; aliases and huge k everywhere."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import statsmodels.stats.multitest as sm
import statsmodels.stats.tests.test_multi as sm_cases

# statsmodels' own test cases, run against mtcert's functions (collected from
# this module, so the fixture below swaps the functions they call).
from statsmodels.stats.tests.test_multi import (  # noqa: F401
    TestMultiTests1,
    TestMultiTests2,
    TestMultiTests3,
    TestMultiTests4,
    test_fdr_bky,
    test_fdr_twostage,
    test_hommel,
    test_issorted,
    test_multipletests_empty,
    test_pvalcorrection_reject,
)

import mtcert.certify.segmentation as certify_mod
import mtcert.stats.multitest as mt
from mtcert.certify.segmentation import segcertify_hits
from mtcert.stats.compat import (
    fdrcorrection,
    fdrcorrection_twostage,
    local_fdr,
    local_fdr_correction,
    multipletests,
)
from mtcert.stats.multitest import adjust


@pytest.fixture(autouse=True)
def _statsmodels_cases_call_mtcert(monkeypatch):
    monkeypatch.setattr(sm_cases, "multipletests", multipletests)
    monkeypatch.setattr(sm_cases, "fdrcorrection", fdrcorrection)
    monkeypatch.setattr(sm_cases, "fdrcorrection_twostage", fdrcorrection_twostage)


def _random_pvalues(rng, m):
    p = rng.random(m) ** rng.uniform(1, 6)
    if rng.random() < 0.3:
        p[: m // 2] = p[0]  # ties
    return p


def test_fdrcorrection_matches_statsmodels():
    rng = np.random.default_rng(1)
    for _ in range(60):
        p = _random_pvalues(rng, int(rng.integers(1, 60)))
        for method in ("indep", "i", "p", "poscorr", "negcorr", "n"):
            for is_sorted in (False, True):
                q = np.sort(p) if is_sorted else p
                ours = fdrcorrection(q, 0.1, method, is_sorted)
                ref = sm.fdrcorrection(q, 0.1, method, is_sorted)
                np.testing.assert_array_equal(ours[0], ref[0])
                np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
    with pytest.raises(ValueError, match="method"):
        fdrcorrection([0.1], method="bh")


def test_fdrcorrection_twostage_matches_statsmodels():
    rng = np.random.default_rng(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(60):
            p = _random_pvalues(rng, int(rng.integers(1, 60)))
            for method in ("bky", "bh"):
                for maxiter in (0, 1, 2, -1, None, True, False):
                    ours = fdrcorrection_twostage(p, 0.1, method, maxiter=maxiter)
                    ref = sm.fdrcorrection_twostage(p, 0.1, method, maxiter=maxiter)
                    np.testing.assert_array_equal(ours[0], ref[0])
                    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
                    assert ours[2] == ref[2]
                    np.testing.assert_allclose(ours[3], ref[3], rtol=1e-15)
    with pytest.raises(TypeError, match="iter"):
        fdrcorrection_twostage([0.1], iter=True)


def test_lfdr_matches_statsmodels():
    rng = np.random.default_rng(3)
    for _ in range(60):
        p = _random_pvalues(rng, int(rng.integers(1, 80)))
        for method in ("lfdr", "lfdr_sl"):
            ours = multipletests(p, alpha=0.2, method=method)
            ref = sm.multipletests(p, alpha=0.2, method=method)
            np.testing.assert_array_equal(ours[0], ref[0])
            np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
            np.testing.assert_equal(ours[2:], ref[2:])
        s = np.sort(p)
        ours = multipletests(s, method="lfdr", is_sorted=True)
        np.testing.assert_allclose(ours[1], sm.multipletests(s, method="lfdr", is_sorted=True)[1])


def test_lfdr_point_mass_at_zero():
    # statsmodels raises on p = 0 (zero-width gap); a point mass has local FDR 0
    # and the support line of the rest starts above the origin.
    p = np.array([0.0, 0.0, 0.01, 0.3, 0.6, 0.9])
    rej, lfdr, _, _ = multipletests(p, alpha=0.05, method="lfdr")
    assert list(lfdr[:2]) == [0.0, 0.0] and rej[:2].all()
    rest = sm.multipletests(p[2:] + 0.0, method="lfdr")[1]  # same support line without the mass
    assert np.all(np.diff(lfdr[2:]) >= 0) and rest.shape == (4,)
    assert np.isnan(multipletests([0.1, np.nan], method="lfdr")[1]).all()


@pytest.mark.parametrize(("ours", "theirs"), [("bh", "bh"), ("by", "by"), ("BH", "bh")])
def test_scipy_false_discovery_control_names(ours, theirs):
    rng = np.random.default_rng(4)
    p = _random_pvalues(rng, 200)
    res = adjust(p, ours)
    assert res.method == {"bh": "fdr_bh", "by": "fdr_by"}[theirs]
    ref = scipy.stats.false_discovery_control(p, method=theirs)
    np.testing.assert_allclose(res.adjusted, ref, rtol=1e-12)


@pytest.mark.parametrize("alias", ["h", "Holm", "HOLM", "b", "Bonf", "generalized-HOLM"])
def test_aliases_take_the_counting_path(alias, monkeypatch):
    # an alias must not silently fall back to the general (sorting) path
    def no_adjust(*args, **kwargs):
        raise AssertionError("segcertify_hits used adjust instead of the counting path")

    monkeypatch.setattr(certify_mod, "adjust_families", no_adjust)
    rng = np.random.default_rng(5)
    hits = rng.integers(90, 101, 500)
    cert = segcertify_hits(np.zeros(500, int), hits, 100, tau=0.75, alpha=0.01, method=alias)
    canonical = mt.canonical_method(alias)
    assert cert.method == canonical
    monkeypatch.undo()
    ref = adjust(cert.pvalues, canonical, alpha=0.01)
    np.testing.assert_array_equal(cert.reject, ref.reject)


@pytest.mark.parametrize("k", [2**62, 2**63 - 1, 2**63, 2**64 + 1, 10**30])
def test_huge_k_is_exact(k):
    # no int64 wrap-around; for k > m the constants are all m (LR 2005)
    p = np.array([0.01, 0.02, 0.5, 1e-300])
    expected = np.minimum(1.0, p * 4 / float(k))
    for method in ("generalized-bonferroni", "generalized-holm", "generalized-hochberg"):
        res = adjust(p, method, k=k, alpha=0.05)
        np.testing.assert_allclose(res.adjusted, expected, rtol=1e-15)
        assert res.reject.all() and (res.adjusted >= 0).all()
    sidak = adjust(p, "generalized-sidak", k=k)  # P(Bin(4, p) >= k) = 0
    assert (sidak.adjusted == 0).all() and sidak.reject.all()
    hits = np.array([100, 99, 50, 0])
    for method in ("generalized-holm", "generalized-bonferroni"):
        cert = segcertify_hits(
            np.zeros(4, int), hits, 100, tau=0.75, alpha=0.01, method=method, k=k
        )
        ref = adjust(cert.pvalues, method, alpha=0.01, k=k)
        np.testing.assert_array_equal(cert.reject, ref.reject)
        assert cert.reject.all()  # k > m: no family of 4 can hold k false certificates


def test_k_within_range_unchanged_by_float_kernels():
    rng = np.random.default_rng(6)
    p = rng.random(300) ** 4
    for k in (1, 2, 7, 299, 300, 301):
        gh = adjust(p, "generalized-holm", k=k)
        s = np.sort(p)
        m = p.size
        r = np.arange(1, m + 1)
        c = (m + k - np.maximum(r, k)) / k  # Lehmann & Romano 2005, Thm 2.2
        ref = np.minimum(1, np.maximum.accumulate(s * c))
        np.testing.assert_allclose(np.sort(gh.adjusted), ref, rtol=1e-15)


def test_huge_maxiter_means_full_iteration():
    p = np.array([0.001, 0.01, 0.02, 0.03, 0.04, 0.2, 0.7])
    full = multipletests(p, method="fdr_tsbky", maxiter=-1)
    for maxiter in (2**63, 2**64, 10**30):
        ours = multipletests(p, method="fdr_tsbky", maxiter=maxiter)
        np.testing.assert_array_equal(ours[0], full[0])
        np.testing.assert_array_equal(ours[1], full[1])


# -- each statsmodels-compatible name drops in alone ----------------------------------

_SWAP_RUNNER = """
import sys, pytest
import statsmodels.stats.multitest as smm
import statsmodels.stats.tests.test_multi as cases
import mtcert.stats.compat as compat
name = sys.argv[1]
setattr(smm, name, getattr(compat, name))   # statsmodels' functions call each other
setattr(cases, name, getattr(compat, name))  # the name the test module imported
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-c", sys.argv[2],
                      "--rootdir", sys.argv[3], "-W", "ignore", cases.__file__]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "multipletests",
        "fdrcorrection",
        "fdrcorrection_twostage",
        "local_fdr_correction",
        "local_fdr",
    ],
)
def test_statsmodels_suite_passes_with_one_name_swapped(name, tmp_path):
    """statsmodels' own multitest tests, with only ``name`` replaced by ours (in its
    module too, so statsmodels' other functions call ours)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("statsmodels.stats.tests.test_multi")
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    done = subprocess.run(
        [sys.executable, "-c", _SWAP_RUNNER, name, str(ini), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_twostage_bh_with_only_fdrcorrection_swapped(monkeypatch):
    # statsmodels' two-stage FDR calls fdrcorrection at alpha * m / m0, here >= 1
    p = [0.0001, 0.00175, 0.0034, 0.00505, 0.0067, 0.00835, 0.01, 0.05001, 0.080005, 0.11]
    ref = sm.fdrcorrection_twostage(p, 0.1, method="bh")
    monkeypatch.setattr(sm, "fdrcorrection", fdrcorrection)
    ours = sm.fdrcorrection_twostage(p, 0.1, method="bh")
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
    assert ours[2:] == ref[2:]


@pytest.mark.parametrize("alpha", [1.0, 1.5, 0.0, -0.1])
@pytest.mark.parametrize(
    "method",
    ["b", "s", "h", "hs", "sh", "ho", "fdr_bh", "fdr_by", "fdr_tsbh", "fdr_tsbky", "fdr_gbs"],
)
def test_multipletests_any_alpha_as_statsmodels(method, alpha):
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = np.round(rng.beta(0.3, 1, int(rng.integers(1, 25))), 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ours, ref = multipletests(p, alpha, method), sm.multipletests(p, alpha, method)
        np.testing.assert_array_equal(ours[0], ref[0])
        np.testing.assert_allclose(ours[1], ref[1], rtol=1e-12)
        np.testing.assert_allclose(ours[2:], ref[2:], rtol=1e-12)


@pytest.mark.parametrize("method", ["b", "s", "h", "ho", "fdr_bh", "fdr_tsbky", "fdr_gbs"])
def test_multipletests_float32_and_lists_as_statsmodels(method):
    rng = np.random.default_rng(4)
    for _ in range(20):
        p = rng.beta(0.3, 1, int(rng.integers(1, 25))).astype(np.float32)
        for q in (p, p.tolist()):
            ours, ref = multipletests(q, 0.05, method), sm.multipletests(q, 0.05, method)
            assert ours[1].dtype == ref[1].dtype
            np.testing.assert_array_equal(ours[0], ref[0])
            np.testing.assert_allclose(ours[1], ref[1], rtol=1e-6)


@pytest.mark.parametrize("pi0", [1.0, 0.7])
def test_local_fdr_correction_matches_statsmodels(pi0):
    rng = np.random.default_rng(5)
    for _ in range(30):
        p = rng.beta(0.4, 1, int(rng.integers(1, 40)))
        if rng.random() < 0.4:
            p = np.round(p, 2) + 0.001  # ties, no zeros (statsmodels divides by 0 there)
        for is_sorted in (False, True):
            q = np.sort(p) if is_sorted else p
            ours = local_fdr_correction(q, null_proportion=pi0, is_sorted=is_sorted)
            ref = sm.local_fdr_correction(q, null_proportion=pi0, is_sorted=is_sorted)
            np.testing.assert_allclose(ours.fdr, ref.fdr, rtol=1e-10)
            np.testing.assert_allclose(ours.lfdr, ref.lfdr, rtol=1e-10)


@pytest.mark.parametrize("alpha", [0, 1e-8])
def test_local_fdr_matches_statsmodels(alpha):
    z = np.r_[scipy.stats.norm.ppf(np.linspace(0.001, 0.999, 1000)), np.linspace(3, 4, 20)]
    ours, ref = local_fdr(z, alpha=alpha), sm.local_fdr(z, alpha=alpha)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)
    ours = local_fdr(z, null_proportion=0.9, deg=5, nbins=20)
    ref = sm.local_fdr(z, null_proportion=0.9, deg=5, nbins=20)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)
