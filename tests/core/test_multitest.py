"""Tests for mtcert.stats.multitest against statsmodels, slow definitions and invariants."""

from __future__ import annotations

import dataclasses
import doctest
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests as sm_multipletests

import mtcert.stats.multitest as mt
from mtcert import _tunables
from mtcert._kernels import multitest as kernels
from mtcert.stats.compat import multipletests
from mtcert.stats.multitest import (
    FDR_METHODS,
    FWER_METHODS,
    KFWER_METHODS,
    METHODS,
    AdjustResult,
    adjust,
)
from tests.helpers.naive_multitest import naive_adjust
from tests.helpers.references import binomial_upper_tail

SM_ALIASES = {
    "bonferroni": ["b", "bonf", "bonferroni"],
    "sidak": ["s", "sidak"],
    "holm": ["h", "holm"],
    "holm-sidak": ["hs", "holm-sidak"],
    "hochberg": ["sh", "simes-hochberg"],
    "hommel": ["ho", "hommel"],
    "fdr_bh": ["fdr_bh", "fdr_i", "fdr_p", "fdri", "fdrp"],
    "fdr_by": ["fdr_by", "fdr_n", "fdr_c", "fdrn", "fdrcorr"],
    "fdr_tsbh": ["fdr_tsbh", "fdr_2sbh"],
    "fdr_tsbky": ["fdr_tsbky", "fdr_2sbky", "fdr_twostage"],
    "fdr_gbs": ["fdr_gbs"],
}
SM_METHODS = tuple(SM_ALIASES)  # canonical names
SM_NAME = {name: aliases[0] for name, aliases in SM_ALIASES.items()}
CLASSICAL_OF = {
    "generalized-bonferroni": "bonferroni",
    "generalized-holm": "holm",
    "generalized-hochberg": "hochberg",
    "generalized-sidak": "sidak",
}

# p-values with the awkward cases over-represented: exact ties, 0, 1, 1e-300,
# values sitting on typical critical values, and a continuous spread.
special = st.sampled_from([0.0, 1.0, 1e-300, 5e-324, 0.01, 0.0125, 0.025, 0.05, 0.5, 0.999])
pvalue = st.one_of(special, st.floats(0.0, 1.0), st.floats(0.0, 1e-3))
pvalue_lists = st.lists(pvalue, min_size=0, max_size=40)
alphas = st.sampled_from([0.05, 0.01, 0.1, 0.2, 0.5])


def sm(p, alpha, method, **kw):
    # statsmodels' Holm branch calls gc.collect() (~0.1 s a call); it changes no result
    with warnings.catch_warnings(), mock.patch("gc.collect"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return sm_multipletests(np.array(p, dtype=float), alpha=alpha, method=method, **kw)


def assert_same(ours, ref):
    rej, adj, a_sidak, a_bonf = ours
    np.testing.assert_array_equal(rej, ref[0])
    np.testing.assert_allclose(adj, ref[1], rtol=1e-10, atol=0)
    np.testing.assert_equal(a_sidak, ref[2])
    np.testing.assert_equal(a_bonf, ref[3])


# --------------------------------------------------------------- statsmodels


def test_method_tuples_cover_everything():
    assert set(METHODS) == set(FWER_METHODS) | set(FDR_METHODS) | set(KFWER_METHODS)
    assert len(METHODS) == 15
    assert set(SM_METHODS) <= set(METHODS)


@given(p=pvalue_lists, alpha=alphas)
def test_multipletests_matches_statsmodels(p, alpha):
    for _method, aliases in SM_ALIASES.items():
        ref = sm(p, alpha, aliases[0])
        for alias in aliases:
            assert_same(multipletests(p, alpha=alpha, method=alias), ref)


@given(p=pvalue_lists, alpha=alphas)
def test_multipletests_sorted_input_and_returnsorted(p, alpha):
    ps = sorted(p)
    for method in SM_METHODS:
        assert_same(
            multipletests(ps, alpha=alpha, method=method, is_sorted=True),
            sm(ps, alpha, SM_NAME[method], is_sorted=True),
        )
        assert_same(
            multipletests(p, alpha=alpha, method=method, returnsorted=True),
            sm(p, alpha, SM_NAME[method], returnsorted=True),
        )


@pytest.mark.parametrize("maxiter", [-1, None, 0, 1, 2, 5, True, False])
@pytest.mark.parametrize("method", ["fdr_tsbh", "fdr_tsbky"])
def test_two_stage_maxiter_matches_statsmodels(method, maxiter):
    rng = np.random.default_rng(7)
    for _ in range(30):
        m = int(rng.integers(1, 60))
        p = rng.random(m) ** rng.integers(1, 12)
        p[rng.random(m) < 0.2] = 0.0
        alpha = float(rng.choice([0.05, 0.2, 0.5]))
        assert_same(
            multipletests(p, alpha=alpha, method=method, maxiter=maxiter),
            sm(p, alpha, SM_NAME[method], maxiter=maxiter),
        )


@pytest.fixture(params=["np.sort", "buckets"])
def sort_path(request, monkeypatch):
    """Run a test through the plain packed-key sort and through the bucketed sort
    (made to trigger at small m, with tiny groups)."""
    if request.param == "buckets":
        monkeypatch.setattr(_tunables, "BUCKET_MIN", 1000)
        monkeypatch.setattr(_tunables, "BUCKET_TARGET", 64)
    return request.param


@pytest.mark.parametrize("method", SM_METHODS)
def test_large_families_match_statsmodels(method, sort_path):
    """Thousands of tests: the packed-key sort, its near-tie repair and Hommel's hull."""
    rng = np.random.default_rng(11)
    cases = [
        rng.random(4000) ** 6,
        np.round(rng.random(3000), 3),  # heavy exact ties
        0.3 + rng.integers(0, 50, 3000) * 2.0**-54,  # ties and near-ties below the key bits
        np.concatenate([np.zeros(500), rng.random(1500) * 1e-4, np.ones(200)]),
    ]
    for p in cases:
        p = rng.permutation(p)
        for alpha in (0.05, 0.5):
            assert_same(multipletests(p, alpha=alpha, method=method), sm(p, alpha, SM_NAME[method]))


def test_bucket_sort_equals_np_sort():
    rng = np.random.default_rng(8)
    p = rng.permutation(
        np.concatenate([rng.random(300_000), rng.random(60_000) * 1e-9, np.full(50_000, 0.25)])
    )
    p[::1000] = np.nan
    keys = np.empty((1, p.size), dtype=np.uint64)
    kernels.pack_keys(p.reshape(1, -1), np.empty(0, np.int64), (p.size - 1).bit_length(), keys)
    want = np.sort(keys[0])
    mt._bucket_sort(keys[0])  # in place, scratch for half the keys
    np.testing.assert_array_equal(keys[0], want)
    res = adjust(p, "fdr_bh", nan_policy="omit")  # m >= BUCKET_MIN: bucketed path
    ok = ~np.isnan(p)
    assert_same(
        multipletests(p[ok], method="fdr_bh"),
        sm(p[ok], 0.05, "fdr_bh"),
    )
    np.testing.assert_array_equal(res.adjusted[ok], multipletests(p[ok], method="fdr_bh")[1])


def test_near_tie_repair_falls_back_to_argsort():
    """Many distinct values sharing the key bits exceed the repair budget -> argsort path."""
    rng = np.random.default_rng(3)
    m = 20000
    p = 0.3 + rng.permutation(m) * 2.0**-54
    p2d = p.reshape(1, -1)
    idxbits = (m - 1).bit_length()
    keys = np.empty_like(p2d, dtype=np.uint64)
    no_index = np.empty(0, np.int64)
    kernels.pack_keys(p2d, no_index, idxbits, keys)
    keys.sort(axis=1)
    order = np.empty(p2d.shape, np.int32)
    ok = kernels.unpack_order(keys, idxbits, p2d, np.array([m]), no_index, order)
    assert not ok[0]
    for method in ("holm", "fdr_bh", "hommel"):
        assert_same(multipletests(p, method=method), sm(p, 0.05, SM_NAME[method]))


def test_empty_and_single():
    for method in SM_METHODS:
        assert_same(multipletests([], method=method), sm([], 0.05, SM_NAME[method]))
        for x in (0.0, 0.03, 0.05, 1.0):
            assert_same(multipletests([x], method=method), sm([x], 0.05, SM_NAME[method]))
    for method in METHODS:
        res = adjust([], method)
        assert res.reject.shape == res.adjusted.shape == (0,)
        assert res.n_rejected == 0 and res.n_tests == 0
        res = adjust(0.01, method)  # 0-d: one family of one test
        assert res.reject.shape == res.adjusted.shape == () and bool(res.reject)
        if method not in ("fdr_tsbky", "fdr_gbs"):  # these rescale even a single p-value
            assert float(res.adjusted) == 0.01


# ------------------------------------------------------------- naive references


@given(
    p=st.lists(pvalue, min_size=0, max_size=9),
    alpha=alphas,
    k=st.integers(1, 4),
    method=st.sampled_from(METHODS),
)
# P(Bin(7, 1/2) >= 4) = 1/2 = alpha exactly; the float tail is a few ulp off (see below)
@example(p=[0.0] * 6 + [0.5], alpha=0.5, k=4, method="generalized-sidak")
def test_adjust_matches_definitions(p, alpha, k, method):
    if method in ("fdr_tsbh", "fdr_tsbky", "fdr_gbs"):
        return  # statsmodels-defined procedures: checked against statsmodels above
    if method not in KFWER_METHODS:
        k = 1
    res = adjust(p, method, alpha=alpha, k=k)
    rej, adj = naive_adjust(p, method, alpha, k)
    if method == "generalized-sidak" and k > 1:
        # Rejection is P(Bin(m, p) >= k) <= alpha, the tail summed in floats (to ~1e-14
        # relative: test_generalized_sidak_to_1e14_against_mpmath).  Where the exact tail
        # is alpha to 1e-12 the float tail may fall on either side: there the decision
        # must follow the adjusted value returned (checked against the exact one below).
        tie = np.isclose(adj, alpha, rtol=1e-12, atol=0)
        ours = np.asarray(res.adjusted).reshape(-1) <= alpha
        rej = np.where(tie, ours, rej).tolist()
    np.testing.assert_array_equal(res.reject, np.array(rej, dtype=bool).reshape(res.reject.shape))
    np.testing.assert_allclose(res.adjusted, np.array(adj).reshape(-1), rtol=1e-10, atol=1e-300)
    assert res.n_rejected == sum(rej)


@given(p=pvalue_lists, alpha=alphas)
def test_generalized_with_k1_is_classical_bit_for_bit(p, alpha):
    for gen, classical in CLASSICAL_OF.items():
        a = adjust(p, gen, alpha=alpha, k=1)
        b = adjust(p, classical, alpha=alpha)
        np.testing.assert_array_equal(a.reject, b.reject)
        np.testing.assert_array_equal(a.adjusted, b.adjusted)


def test_generalized_sidak_is_binomial_tail():
    p = np.array([1e-4, 0.002, 0.01, 0.3])
    res = adjust(p, "generalized-sidak", k=2, alpha=0.01)
    from scipy import stats

    np.testing.assert_allclose(res.adjusted, stats.binom.sf(1, 4, p), rtol=1e-12)
    np.testing.assert_array_equal(res.reject, stats.binom.sf(1, 4, p) <= 0.01)


def test_generalized_sidak_to_1e14_against_mpmath():
    # scipy's bdtrc (and Boost's ibeta) carry ~1e-12 relative error here
    x = np.full(1962, 0.5)
    x[0] = 0.0012020318472429298
    got = adjust(x, "generalized-sidak", k=3).adjusted[0]
    assert abs(got - 0.41943897310369627) <= 1e-14 * 0.41943897310369627
    rng = np.random.default_rng(11)
    for _ in range(150):
        m = int(10 ** rng.uniform(0.5, 5))
        k = int(rng.integers(2, min(m, 60) + 1))
        p = float(min(0.999, k / m * 10 ** rng.uniform(-2, 0.7)))
        ref = binomial_upper_tail(k, m, p)
        if ref < 1e-10:
            continue
        ours = adjust(np.r_[p, np.ones(m - 1)], "generalized-sidak", k=k).adjusted[0]
        assert abs(ours - ref) <= 1.5e-14 * ref, (m, k, p, ours, ref)


def test_k_larger_than_m_applies_formulas_as_written():
    p = [0.01, 0.2, 0.6]
    gh = adjust(p, "generalized-holm", k=5)
    gb = adjust(p, "generalized-bonferroni", k=5)
    np.testing.assert_array_equal(gh.adjusted, gb.adjusted)  # all critical values k*alpha/m
    np.testing.assert_allclose(gh.adjusted, np.minimum(1, np.array(p) * 3 / 5))
    gs = adjust(p, "generalized-sidak", k=5)  # P(Bin(3, p) >= 5) = 0
    assert gs.reject.all() and (gs.adjusted == 0).all()


# ------------------------------------------------------------------ invariants


@given(p=st.lists(pvalue, min_size=1, max_size=40), alpha=alphas)
def test_nesting_of_fwer_procedures(p, alpha):
    # The larger procedure gets alpha one part in 1e12 higher: different formulas may
    # round differently exactly at a critical value (e.g. Hommel's 3 * 0.05 / 3).
    lo = {m: adjust(p, m, alpha=alpha).reject for m in (*FWER_METHODS, "fdr_bh")}
    hi = {m: adjust(p, m, alpha=alpha * (1 + 1e-12)).reject for m in (*FWER_METHODS, "fdr_bh")}
    assert np.all(lo["holm"] >= lo["bonferroni"])  # same critical value alpha/m at rank 1
    assert np.all(lo["hochberg"] >= lo["holm"])  # same critical values
    assert np.all(hi["hommel"] >= lo["hochberg"])
    assert np.all(hi["holm-sidak"] >= lo["sidak"])
    assert np.all(hi["fdr_bh"] >= lo["hochberg"])


@given(p=st.lists(pvalue, min_size=1, max_size=40), a1=alphas, a2=alphas)
def test_monotone_in_alpha(p, a1, a2):
    lo, hi = min(a1, a2), max(a1, a2)
    # the two-stage and GBS adaptive procedures are not promised to be monotone in alpha
    for method in (*FWER_METHODS, "fdr_bh", "fdr_by", *KFWER_METHODS):
        k = 2 if method in KFWER_METHODS else 1
        assert np.all(
            adjust(p, method, alpha=hi, k=k).reject >= adjust(p, method, alpha=lo, k=k).reject
        )


@given(p=st.lists(pvalue, min_size=1, max_size=30), k=st.integers(1, 5), alpha=alphas)
def test_kfwer_monotone_in_k(p, k, alpha):
    for method in KFWER_METHODS:
        a = adjust(p, method, alpha=alpha, k=k)
        b = adjust(p, method, alpha=alpha, k=k + 1)
        assert np.all(b.reject >= a.reject)
        assert np.all(b.adjusted <= a.adjusted * (1 + 1e-12))  # up to rounding of c*p/k


@given(p=st.lists(pvalue, min_size=1, max_size=30), seed=st.integers(0, 2**32 - 1))
def test_permutation_equivariance(p, seed):
    p = np.array(p)
    perm = np.random.default_rng(seed).permutation(p.size)
    for method in METHODS:
        k = 2 if method in KFWER_METHODS else 1
        a = adjust(p, method, k=k)
        b = adjust(p[perm], method, k=k)
        np.testing.assert_array_equal(a.reject[perm], b.reject)
        np.testing.assert_array_equal(a.adjusted[perm], b.adjusted)


@given(p=st.lists(pvalue, min_size=1, max_size=30))
def test_ties_get_equal_adjusted_values(p):
    p = np.array(p + p[:3])
    for method in METHODS:
        res = adjust(p, method)
        for v in np.unique(p):
            assert np.unique(res.adjusted[p == v]).size == 1
            assert np.unique(res.reject[p == v]).size == 1


# ------------------------------------------------------------------- axis/shape


@pytest.mark.parametrize("method", METHODS)
def test_axis_families_equal_separate_calls(method):
    rng = np.random.default_rng(5)
    P = rng.random((3, 4, 25)) ** 4
    P[0, 1, :5] = P[0, 1, 5]  # ties inside one family
    k = 2 if method in KFWER_METHODS else 1
    for axis in (0, 1, 2, -1):
        res = adjust(P, method, k=k, axis=axis)
        assert res.reject.shape == res.adjusted.shape == P.shape
        moved = np.moveaxis(P, axis, -1)
        fam_shape = moved.shape[:-1]
        assert res.n_rejected.shape == fam_shape == res.n_tests.shape
        for idx in np.ndindex(fam_shape):
            one = adjust(moved[idx], method, k=k)
            np.testing.assert_array_equal(np.moveaxis(res.reject, axis, -1)[idx], one.reject)
            np.testing.assert_array_equal(np.moveaxis(res.adjusted, axis, -1)[idx], one.adjusted)
            assert res.n_rejected[idx] == one.n_rejected
    whole = adjust(P, method, k=k)  # axis=None: one family of 300
    flat = adjust(P.ravel(), method, k=k)
    np.testing.assert_array_equal(whole.adjusted.ravel(), flat.adjusted)
    assert whole.n_tests == 300 and isinstance(whole.n_rejected, int)


# ------------------------------------------------------------------------- NaN


@pytest.mark.parametrize("method", METHODS)
def test_nan_policies(method):
    p = np.array([0.001, np.nan, 0.02, 0.04, 0.0005, np.nan, 0.3])
    ok = ~np.isnan(p)
    with pytest.raises(ValueError, match="pvalues contains NaN"):
        adjust(p, method, nan_policy="raise")

    prop = adjust(p, method)  # default "propagate": the whole family is unknown
    assert np.isnan(prop.adjusted).all() and not prop.reject.any()
    assert prop.n_rejected == 0 and prop.n_tests == p.size

    omit = adjust(p, method, nan_policy="omit")  # NaNs are not tests: m = 5
    sub = adjust(p[ok], method)
    np.testing.assert_array_equal(omit.adjusted[ok], sub.adjusted)
    np.testing.assert_array_equal(omit.reject[ok], sub.reject)
    assert np.isnan(omit.adjusted[~ok]).all() and not omit.reject[~ok].any()
    assert omit.n_tests == 5 and omit.n_rejected == sub.n_rejected

    # per family: only the family holding the NaN is affected
    P = np.vstack([p, np.where(ok, p, 0.5)])
    rows = adjust(P, method, axis=1)
    assert np.isnan(rows.adjusted[0]).all()
    np.testing.assert_array_equal(rows.adjusted[1], adjust(P[1], method).adjusted)
    rows = adjust(P, method, axis=1, nan_policy="omit")
    np.testing.assert_array_equal(rows.adjusted[0, ok], sub.adjusted)
    np.testing.assert_array_equal(rows.n_tests, [5, 7])


def test_multipletests_nan_propagates_for_every_method():
    for method in SM_METHODS:
        rej, adj, _, _ = multipletests([0.01, np.nan, 0.2], method=method)
        assert np.isnan(adj).all() and not rej.any()


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pvalues": [0.1, 1.5]}, "pvalues must lie in"),
        ({"pvalues": [-0.1]}, "pvalues must lie in"),
        ({"pvalues": ["a"]}, "pvalues must be"),
        ({"pvalues": ["0.1"]}, "pvalues must be real"),  # no silent string parsing
        ({"pvalues": [0.01 + 0j, 0.02 + 5j]}, "pvalues must be real"),
        ({"pvalues": np.array([0.01, 0.02], complex)}, "pvalues must be real"),
        ({"pvalues": [None, 0.1]}, "pvalues must be real.*None"),
        ({"k": 2**63, "method": "holm"}, "k must be 1"),
        ({"k": 10**400, "method": "generalized-holm"}, "k must be below"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"method": "nope"}, "method must be one of 'bonferroni'"),
        ({"method": None}, "method"),
        ({"k": 0, "method": "generalized-holm"}, "k must be an integer >= 1"),
        ({"k": 1.5, "method": "generalized-holm"}, "k must be an integer"),
        ({"k": True, "method": "generalized-holm"}, "k must be an integer"),
        ({"k": 2, "method": "holm"}, "k must be 1 for method 'holm'"),
        ({"nan_policy": "ignore"}, "nan_policy must be one of"),
        ({"axis": 2}, "axis 2 is out of bounds"),
        ({"axis": 1.0}, "axis must be None or an int"),
    ],
)
def test_adjust_validation(kwargs, match):
    args = {"pvalues": [0.01, 0.2]} | kwargs
    with pytest.raises(ValueError, match=match):
        adjust(args.pop("pvalues"), **args)


def test_multipletests_validation():
    with pytest.raises(ValueError, match="pvals must be 1-dimensional"):
        multipletests(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="method"):
        multipletests([0.1], method="lfdr_x")
    with pytest.raises(ValueError, match="method"):
        adjust([0.1], method="lfdr")  # not a procedure with a level: multipletests only
    with pytest.raises(ValueError, match="pvals must be real"):
        multipletests([0.1, None])
    with pytest.raises(ValueError, match="maxiter"):
        multipletests([0.1], method="fdr_tsbh", maxiter=-2)
    with pytest.raises(ValueError, match="alpha"):
        adjust([0.1], alpha=1.2)  # strict; multipletests takes any level, as statsmodels
    with pytest.raises(ValueError, match="pvals must lie in"):
        multipletests([0.1, 2.0])


def test_method_names_case_insensitive_and_canonical():
    assert adjust([0.1], "Holm-Sidak").method == "holm-sidak"
    assert adjust([0.1], "simes-hochberg").method == "hochberg"
    assert adjust([0.1], "FDR_I").method == "fdr_bh"


# --------------------------------------------------------------- result object


def test_result_object():
    res = adjust([0.01, 0.04, 0.03, 0.005], "holm")
    assert isinstance(res, AdjustResult)
    assert (res.method, res.alpha, res.k, res.n_tests, res.n_rejected) == ("holm", 0.05, 1, 4, 2)
    text = repr(res)
    assert text.startswith("AdjustResult(method='holm', alpha=0.05, k=1, n_tests=4, n_rejected=2")
    assert "reject=[ True, False, False,  True]" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.alpha = 0.1


def test_docstring_examples():
    result = doctest.testmod(mt, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


def test_holm_sorts_only_candidates():
    """(Generalized) Holm orders only p-values that can adjust below 1; same results."""
    rng = np.random.default_rng(9)
    p = rng.permutation(np.concatenate([rng.random(5000), rng.random(1000) * 1e-5]))
    cand = mt._holm_candidates(p, p.size, 1)
    assert cand is not None and 1000 <= cand.size < 1100
    assert p[cand].max() < np.sort(p)[cand.size]  # exactly the smallest ones
    assert_same(multipletests(p, method="holm"), sm(p, 0.05, "holm"))
    for k in (1, 2, 7):
        one = adjust(p, "generalized-holm", k=k)  # one family: candidate path
        full = adjust(np.vstack([p, p]), "generalized-holm", k=k, axis=1)  # full sort path
        np.testing.assert_array_equal(one.adjusted, full.adjusted[0])
        np.testing.assert_array_equal(one.reject, full.reject[0])
    withnan = np.insert(p, [10, 500, 4000], np.nan)
    res = adjust(withnan, "holm", nan_policy="omit")
    ok = ~np.isnan(withnan)
    np.testing.assert_array_equal(res.adjusted[ok], adjust(p, "holm").adjusted)
    assert np.isnan(res.adjusted[~ok]).all() and not res.reject[~ok].any()


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_shapes_and_all_nan_families(method):
    for shape, axis in [((0, 5), 1), ((3, 0), 1), ((3, 0), 0), ((0,), 0), ((2, 3, 4), 1)]:
        res = adjust(np.full(shape, 0.01), method, axis=axis)
        assert res.adjusted.shape == res.reject.shape == shape
        assert res.n_rejected.shape == tuple(np.delete(shape, axis))
    res = adjust([[np.nan, np.nan], [0.01, 0.02]], method, axis=1, nan_policy="omit")
    np.testing.assert_array_equal(res.n_tests, [0, 2])
    assert np.isnan(res.adjusted[0]).all() and not res.reject[0].any()
    p32 = np.array([0.01, 0.5], dtype=np.float32)
    res = adjust(p32[None, :].T, method, axis=0)  # strided, float32
    np.testing.assert_array_equal(res.adjusted[:, 0], adjust(p32.astype(float), method).adjusted)


@pytest.mark.parametrize("first_failure", [0, 1023, 1024, 3000, 4096, 5000])
def test_holm_sidak_critical_values_on_growing_prefixes_match_statsmodels(first_failure):
    # Holm-Sidak compares with its critical values only up to the first failure, on
    # prefixes of 1024, 4096, ... ranks: rejections ending inside, at and past a prefix
    # boundary, and every hypothesis rejected, with the critical value hit exactly.
    m, alpha = 5000, 0.05
    crit = 1 - np.power(1.0 - alpha, 1.0 / np.arange(m, 0, -1, dtype=np.float64))
    p = crit * 0.5
    if first_failure < m:
        p[first_failure] = np.nextafter(crit[first_failure], 1.0)
        p[first_failure + 1 :] = 0.9
    p[:first_failure:7] = crit[:first_failure:7]  # equal to the critical value: rejected
    res = adjust(p, "holm-sidak", alpha=alpha)
    ref_rej, ref_adj, _, _ = sm_multipletests(p, alpha=alpha, method="holm-sidak")
    assert res.reject.sum() == first_failure
    np.testing.assert_array_equal(res.reject, ref_rej)
    np.testing.assert_allclose(res.adjusted, ref_adj, rtol=1e-15, atol=0)


# ------------------------------------------------ Hommel in the output and the order


def _hommel_dense(s):
    """Hommel's adjusted values of the sorted ``s`` as the kernel computed them with
    a float64 array of Simes values and an integer hull/deque array beside the
    output (the same operations; its bits are the reference for the in-place one)."""
    m = s.size
    cim = np.empty(m + 1)
    hull = np.empty(m + 1, dtype=np.int64)
    h = 0
    for q in range(m - 1, -1, -1):
        t = q + 1
        yt = s[t - 1]
        while h >= 2:
            ta, tb = hull[h - 1], hull[h - 2]
            ya, yb = s[ta - 1], s[tb - 1]
            if (ya - yt) * float(tb - ta) >= (yb - ya) * float(ta - t):
                h -= 1
            else:
                break
        hull[h] = t
        h += 1
        lo, hi = 0, h - 1
        while lo < hi:
            mid = (lo + hi) // 2
            t1, t2 = hull[h - 1 - mid], hull[h - 2 - mid]
            if s[t2 - 1] / float(t2 - q) < s[t1 - 1] / float(t1 - q):
                lo = mid + 1
            else:
                hi = mid
        tb = hull[h - 1 - lo]
        cim[m - q] = float(m - q) * s[tb - 1] / float(tb - q)
    a = np.empty(m)
    dq = np.empty(m + 1, dtype=np.int64)
    run, jj, ptr, head, tail, nxt = -np.inf, m, m, 0, 0, m
    for i in range(m):
        while jj >= m - i:
            if cim[jj] > run:
                run = cim[jj]
            jj -= 1
        ai = run
        hi_j = m - i - 1
        if hi_j >= 1:
            p = s[i]
            while ptr >= 1 and not (float(ptr) * p <= cim[ptr]):
                ptr -= 1
            L = min(ptr, hi_j)
            best = float(L) * p if L >= 1 else -np.inf
            while nxt >= L + 1 and nxt >= 1:
                while tail > head and cim[dq[tail - 1]] <= cim[nxt]:
                    tail -= 1
                dq[tail] = nxt
                tail += 1
                nxt -= 1
            while head < tail and dq[head] > hi_j:
                head += 1
            if head < tail and cim[dq[head]] > best:
                best = cim[dq[head]]
            if best > ai:
                ai = best
        a[i] = min(ai, 1.0)
    return a


def _hommel_cases():
    rng = np.random.default_rng(21)
    with_nan = rng.random(700) ** 2
    with_nan[::7] = np.nan
    return {
        "spread": rng.random(2500) ** 4,  # three blocks of gathered values
        "ties": np.round(rng.random(800), 2),
        "zeros and ones": np.concatenate([np.zeros(40), rng.random(300), np.ones(60)]),
        "near ties": 0.3 + rng.integers(0, 40, 500) * 2.0**-54,
        "nan omitted": with_nan,
        "one": np.array([0.02]),
        "two equal": np.array([0.3, 0.3]),
        "all equal": np.full(257, 0.04),
        "all rejected": rng.random(600) * 1e-9,
        "linear": np.arange(1, 401) / 400.0,
    }


@pytest.mark.parametrize("tier", ["never", "always"])
@pytest.mark.parametrize("name", list(_hommel_cases()))
def test_hommel_in_place_matches_dense_buffers(name, tier):
    """The kernel (tangent points and window in the output seen as int32 pairs, values
    read through the order, blocked in-place scatter) against the dense-buffer one,
    bit for bit, in both tiers, with int32 work in the output and int64 work apart."""
    from mtcert import _jit

    p = np.random.default_rng(5).permutation(_hommel_cases()[name])
    ok = ~np.isnan(p)
    m = int(ok.sum())
    order = np.argsort(p, kind="stable")  # NaNs last
    want = np.full(p.size, np.nan)
    want[order[:m]] = _hommel_dense(p[order[:m]])
    for itype in (np.int32, np.int64):
        adj = np.empty((1, p.size))
        nrej, thr = np.zeros(1, np.int64), np.zeros(1)
        work = adj.view(np.int32) if itype == np.int32 else np.empty((1, 2 * p.size), np.int64)
        with _jit.policy(tier):
            kernels.hommel_rows(
                order.astype(itype)[None], p[None], np.array([m]), adj, nrej, thr, work
            )
        assert adj[0].tobytes() == want.tobytes(), (name, itype)
        assert nrej[0] == -1
    res = adjust(p, "hommel", nan_policy="omit")
    assert res.adjusted.tobytes() == want.tobytes()
    np.testing.assert_array_equal(res.reject, want <= 0.05)


@pytest.mark.parametrize("n", [1, 2, 5, 99, 100, 1000, 1001])
def test_scatter_in_place_is_fancy_assignment(n, monkeypatch):
    """``row[o] = row`` for random permutations, the blocks made small (interpreted) so
    that the swaps into blocks, a short last block and the in-block cycles all run."""
    rng = np.random.default_rng(n)
    monkeypatch.setattr(kernels, "_SCATTER_BLOCK", 16)
    for _ in range(3):
        o = rng.permutation(n).astype(np.int32)
        row = rng.random(n)
        want = np.empty(n)
        want[o] = row
        kernels._scatter_in_place.py_func(row, o)
        assert row.tobytes() == want.tobytes()


def test_scatter_in_place_compiled_in_blocks():
    rng = np.random.default_rng(9)
    n = 5 * kernels._SCATTER_BLOCK + 77
    for o in (rng.permutation(n), np.arange(n)[::-1].copy(), np.arange(n)):
        row = rng.random(n)
        want = np.empty(n)
        want[o] = row
        kernels._scatter_in_place(row, o.astype(np.int32))
        assert row.tobytes() == want.tobytes()
