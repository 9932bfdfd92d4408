"""SEGCERTIFY: the counting fast path against plain references, API and validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

import mtcert.certify.segmentation as certify_mod
from mtcert import _jit
from mtcert._kernels import certify as kernels
from mtcert._kernels.methods import CODES
from mtcert.certify.segmentation import (
    ABSTAIN,
    FAST_METHODS,
    NotACertificateWarning,
    SegmentationCertificate,
    segcertify,
    segcertify_hits,
)
from mtcert.stats.multitest import adjust


def table_ref(n, tau):
    """P(Bin(n, tau) >= j), j = 0..n, from scipy."""
    return stats.binom.sf(np.arange(n + 1) - 1, n, tau)


def critical_ref(method, r, m, alpha, k, cm=1.0):
    """Critical value at 1-based rank r among m, from the textbook definitions.

    ``cm``: Benjamini–Yekutieli's sum of 1/l for l <= m (read for "fdr_by" only).
    """
    if method in ("bonferroni", "generalized-bonferroni"):
        return k * alpha / float(m)
    if method == "sidak":
        return 1 - (1 - alpha) ** (1 / m)
    if method == "holm-sidak":
        return 1 - (1 - alpha) ** (1 / (m - r + 1))
    if method == "fdr_bh":  # Benjamini & Hochberg 1995
        return r / m * alpha
    if method == "fdr_by":  # Benjamini & Yekutieli 2001
        return r / m / cm * alpha
    # Holm, Hochberg and their Lehmann–Romano / Sarkar generalisations
    return k * alpha / float(m + k - max(r, k))


def fwer_ref(p, method, alpha, k=1):
    """Plain single-step / step-down / step-up procedure from the definition.

    Sort the p-values (stably); single step rejects every p_(r) below its critical
    value, step-down the longest prefix that passes, step-up (Hochberg) the
    prefix up to the largest rank that passes.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    cm = sum(1 / j for j in range(1, m + 1))
    passes = np.array(
        [p[idx] <= critical_ref(method, r, m, alpha, k, cm) for r, idx in enumerate(order, start=1)]
    )
    reject = np.zeros(m, dtype=bool)
    if method in ("bonferroni", "generalized-bonferroni", "sidak"):
        reject[order] = passes
    elif method in ("hochberg", "generalized-hochberg", "fdr_bh", "fdr_by"):
        n_rej = int(np.flatnonzero(passes)[-1]) + 1 if passes.any() else 0
        reject[order[:n_rej]] = True
    else:
        n_rej = int(np.argmin(passes)) if not passes.all() else m
        reject[order[:n_rej]] = True
    return reject


def labels_ref(guess, reject):
    return np.where(reject, guess, ABSTAIN)


# Hommel is not a plain step-wise rule: its exact references (definition, closed
# testing) and boundary cases live in test_certify_hommel.py
PLAIN_METHODS = sorted(set(FAST_METHODS) - {"hommel"})


TAUS = st.sampled_from([0.5, 0.6, 0.75, 0.9, 0.99])
ALPHAS = st.one_of(
    st.sampled_from([1e-3, 0.01, 0.05, 0.2, 0.5]), st.floats(1e-6, 0.99, allow_nan=False)
)


@st.composite
def families(draw, max_n=60, max_m=40):
    """(n, hits) with many ties, the extremes 0 and n, and m down to 1."""
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    levels = draw(st.lists(st.integers(0, n), min_size=1, max_size=4))
    levels += [0, n]
    hits = draw(st.lists(st.sampled_from(levels) | st.integers(0, n), min_size=m, max_size=m))
    return n, np.array(hits, dtype=np.int64)


@given(fam=families(), tau=TAUS, alpha=ALPHAS)
def test_holm_and_bonferroni_match_references(fam, tau, alpha):
    n, hits = fam
    guess = np.arange(hits.size) % 7
    pv = stats.binom.sf(hits - 1, n, tau)
    # statsmodels' Holm calls gc.collect() on every call (~0.1 s), so Holm is
    # checked against the plain definition here and against statsmodels below
    for method, ref in (
        ("holm", fwer_ref(pv, "holm", alpha)),
        ("bonferroni", multipletests(pv, alpha=alpha, method="bonferroni")[0]),
    ):
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method)
        np.testing.assert_array_equal(cert.labels, labels_ref(guess, ref))
        np.testing.assert_array_equal(cert.reject, ref)
        assert cert.n_certified == ref.sum()


@pytest.mark.parametrize("seed", range(4))
def test_holm_matches_statsmodels_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    tau = float(rng.choice([0.5, 0.75, 0.9]))
    hits = rng.choice(rng.integers(0, n + 1, size=6), size=3000)
    hits[:5] = n
    guess = rng.integers(0, 19, size=hits.size)
    pv = stats.binom.sf(hits - 1, n, tau)
    for alpha in (1e-3, 0.05, 0.5):
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha)
        ref = multipletests(pv, alpha=alpha, method="holm")[0]
        np.testing.assert_array_equal(cert.labels, labels_ref(guess, ref))


@pytest.mark.filterwarnings("ignore::mtcert.certify.segmentation.NotACertificateWarning")
@given(fam=families(), tau=TAUS, alpha=ALPHAS, k=st.integers(1, 6))
def test_counting_methods_match_plain_definition(fam, tau, alpha, k):
    n, hits = fam
    guess = np.arange(hits.size) % 5
    table = table_ref(n, tau)
    for method in PLAIN_METHODS:
        kk = k if method.startswith("generalized") else 1
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=kk)
        np.testing.assert_array_equal(cert.reject, fwer_ref(table[hits], method, alpha, kk))


@pytest.mark.filterwarnings("ignore::mtcert.certify.segmentation.NotACertificateWarning")
@given(fam=families(), tau=TAUS, alpha=ALPHAS, k=st.integers(1, 6))
def test_fast_path_identical_to_adjust(fam, tau, alpha, k):
    """The fast counting path decides exactly as the general ``adjust`` path."""
    n, hits = fam
    guess = (np.arange(hits.size) * 3) % 11
    pvalues = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha).pvalues
    np.testing.assert_allclose(pvalues, table_ref(n, tau)[hits], rtol=1e-12, atol=0)
    for method in FAST_METHODS:
        kk = k if method.startswith("generalized") else 1
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=kk)
        res = adjust(pvalues, method, alpha=alpha, k=kk)
        np.testing.assert_array_equal(cert.labels, labels_ref(guess, res.reject))


@pytest.mark.filterwarnings("ignore::mtcert.certify.segmentation.NotACertificateWarning")
@given(
    n=st.integers(1, 30),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 9)),
    data=st.data(),
    tau=TAUS,
    alpha=ALPHAS,
    method=st.sampled_from(sorted(FAST_METHODS)),
    axis=st.sampled_from([0, 1, -1, -2]),
)
def test_batched_families_equal_per_family_calls(n, shape, data, tau, alpha, method, axis):
    hits = np.array(
        data.draw(
            st.lists(st.integers(0, n), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])
        )
    ).reshape(shape)
    guess = np.arange(hits.size).reshape(shape) % 4
    k = 2 if method.startswith("generalized") else 1
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=k, axis=axis)
    moved_h = np.moveaxis(hits, axis, -1)
    moved_g = np.moveaxis(guess, axis, -1)
    moved_l = np.moveaxis(cert.labels, axis, -1)
    for i in range(moved_h.shape[0]):
        one = segcertify_hits(moved_g[i], moved_h[i], n, tau=tau, alpha=alpha, method=method, k=k)
        np.testing.assert_array_equal(moved_l[i], one.labels)
        assert np.asarray(cert.n_certified)[i] == one.n_certified
    np.testing.assert_allclose(cert.certified_rate, np.asarray(cert.n_certified) / shape[axis])
    assert cert.abstain_rate.shape == (shape[1 - axis % 2],)


def test_ties_across_underflowed_pvalues():
    """For n = 2000, tau = 1/2 the top p-values underflow to 0: one tie group."""
    n = 2000
    table = table_ref(n, 0.5)
    assert (table == 0).sum() > 1
    hits = np.array([n, n - 1, n - 2, 1990, 1000, 1100, 0, n])
    guess = np.arange(hits.size)
    for method in ("holm", "bonferroni", "sidak", "holm-sidak", "simes-hochberg", "hommel"):
        cert = segcertify_hits(guess, hits, n, tau=0.5, alpha=1e-300, method=method)
        with np.errstate(divide="ignore"):  # statsmodels' Šidák: log1p(-1) for p = 1
            ref = multipletests(table[hits], alpha=1e-300, method=method)[0]
        np.testing.assert_array_equal(cert.reject, ref)


def test_single_component_and_extremes():
    c = segcertify_hits(np.array([4]), np.array([100]), 100, tau=0.75, alpha=0.001)
    assert c.labels.tolist() == [4] and c.n_certified == 1
    c = segcertify_hits(4, 0, 100, tau=0.75, alpha=0.001)
    assert c.labels.shape == () and c.labels == ABSTAIN
    assert c.certified_rate == 0.0 and c.abstain_rate == 1.0
    # m = 1: reject iff P(Bin(n, tau) >= hits) <= alpha
    n, tau, alpha = 50, 0.6, 0.05
    table = table_ref(n, tau)
    for h in range(n + 1):
        c = segcertify_hits([1], [h], n, tau=tau, alpha=alpha)
        assert bool(c.reject[0]) == (table[h] <= alpha)


def test_pvalues_radius_and_repr():
    rng = np.random.default_rng(1)
    hits = rng.integers(60, 101, size=(8, 9))
    guess = rng.integers(0, 3, size=(8, 9))
    cert = segcertify_hits(guess, hits, 100, tau=0.75, alpha=0.01)
    np.testing.assert_allclose(cert.pvalues, stats.binom.sf(hits - 1, 100, 0.75), rtol=1e-12)
    assert cert.pvalues.shape == hits.shape
    assert cert.certified_radius(0.25) == pytest.approx(0.25 * stats.norm.ppf(0.75), rel=1e-14)
    assert cert.certified_radius(1.0, noise="laplace") == pytest.approx(-np.log(0.5), rel=1e-14)
    assert cert.certified_radius(2.0, noise="uniform") == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="noise"):
        cert.certified_radius(1.0, noise="cauchy")
    with pytest.raises(ValueError, match="sigma"):
        cert.certified_radius(0.0)
    assert isinstance(cert, SegmentationCertificate)
    text = repr(cert)
    assert "holm" in text and "alpha=0.01" in text and "(8, 9)" in text
    with pytest.raises(AttributeError):
        cert.alpha = 0.5


def test_certificate_does_not_alias_caller_buffers():
    guess = np.array([1, 2, 3])
    hits = np.array([100, 100, 10])
    cert = segcertify_hits(guess, hits, 100, tau=0.75, alpha=0.05)
    hits[:] = 0
    guess[:] = 0
    assert cert.labels.tolist() == [1, 2, ABSTAIN]
    assert cert.reject.tolist() == [True, True, False]
    assert cert.pvalues[0] == pytest.approx(0.75**100)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.uint64, ">u2"])
def test_labels_are_int64_whatever_the_guess_dtype(dtype):
    cert = segcertify_hits(
        np.array([200 % 128, 5], dtype=dtype), np.array([9, 0], np.uint8), 9, tau=0.5, alpha=0.1
    )
    assert cert.labels.dtype == np.int64
    assert cert.labels[1] == ABSTAIN


@pytest.mark.parametrize("seed", range(6))
def test_methods_match_statsmodels_with_ties(seed):
    """Every FWER method (counting path or ``adjust``) against statsmodels on tied hits."""
    rng = np.random.default_rng([seed, 14])
    n = int(rng.integers(5, 200))
    tau = float(rng.choice([0.5, 0.75, 0.9]))
    hits = rng.choice(rng.integers(0, n + 1, size=int(rng.integers(1, 8))), size=2000)
    hits[:5] = n
    guess = rng.integers(0, 5, size=hits.size)
    pv = stats.binom.sf(hits - 1, n, tau)
    for alpha in (1e-3, 0.05, 0.5):
        for method, sm_name in (
            ("sidak", "sidak"),
            ("holm-sidak", "holm-sidak"),
            ("hochberg", "simes-hochberg"),
            ("hommel", "hommel"),
            ("fdr_bh", "fdr_bh"),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotACertificateWarning)  # fdr_bh: tested elsewhere
                cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method)
            with np.errstate(divide="ignore"):  # statsmodels' Šidák: log1p(-1) for p = 1
                ref = multipletests(pv, alpha=alpha, method=sm_name)[0]
            np.testing.assert_array_equal(cert.labels, labels_ref(guess, ref))
            np.testing.assert_array_equal(cert.reject, ref)
            np.testing.assert_allclose(cert.pvalues, pv, rtol=1e-12)


@pytest.mark.filterwarnings("ignore::mtcert.certify.segmentation.NotACertificateWarning")
def test_fast_methods_never_call_adjust(monkeypatch):
    """The counting path decides every FAST_METHODS family itself (no float p-value array)."""
    calls = []
    monkeypatch.setattr(certify_mod, "adjust_families", lambda *a, **kw: calls.append(a))
    rng = np.random.default_rng(2)
    hits = rng.integers(60, 101, size=(40, 50))
    for method in FAST_METHODS:
        for axis in (None, 0, -1):
            segcertify_hits(hits % 3, hits, 100, tau=0.75, alpha=0.01, method=method, axis=axis)
    assert calls == []


def test_holm_sidak_near_critical_value_is_decided_by_adjust(monkeypatch):
    """A p-value within rounding of its Holm–Šidák critical value goes to ``adjust``.

    The kernel's ``pow`` and numpy's ``np.power`` may differ in the last bits; the
    kernel refuses to decide within 2**-48 of the critical value rather than risk a
    decision that differs from ``adjust``.
    """
    n, tau, m = 100, 0.75, 64
    table = table_ref(n, tau)
    hits = np.full(m, 95)
    hits[:3] = 80
    p = certify_mod._pvalue_table(n, tau)[95]
    alpha = float(-np.expm1(m * np.log1p(-p)))  # rank 1's critical value is p, to rounding
    guess = np.arange(m) % 4
    real = certify_mod.adjust_families  # adjust's core, the certifier's fallback
    names = {code: name for name, code in CODES.items()}
    calls = []

    def spy(*args, **kwargs):
        calls.append(names[args[1]])
        return real(*args, **kwargs)

    monkeypatch.setattr(certify_mod, "adjust_families", spy)
    for axis in (None, -1):
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="holm-sidak", axis=axis)
        ref = adjust(table[hits], "holm-sidak", alpha=alpha).reject
        np.testing.assert_array_equal(cert.reject.ravel(), ref)
        np.testing.assert_array_equal(cert.labels, labels_ref(guess, ref))
        assert cert.n_certified == ref.sum()
    assert calls == ["holm-sidak", "holm-sidak"]
    labels = np.empty((1, m), np.int64)
    copy = np.empty((1, m), np.int64)
    out = kernels.certify_families(
        guess[None],
        hits[None],
        table,
        alpha,
        1.0,
        FAST_METHODS["holm-sidak"],
        0.0,
        ABSTAIN,
        labels,
        copy,
    )
    assert out[3]  # undecided


def test_segcertify_from_counts_matches_hits_form():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.full(4, 0.3), size=(6, 5))
    counts0 = np.stack([[rng.multinomial(10, p) for p in row] for row in probs])
    counts = np.stack([[rng.multinomial(100, p) for p in row] for row in probs])
    guess = np.argmax(counts0, axis=-1)
    hits = np.take_along_axis(counts, guess[..., None], -1)[..., 0]
    for axis in (None, 0, 1):
        a = segcertify(counts0, counts, tau=0.6, alpha=0.05, axis=axis)
        b = segcertify_hits(guess, hits, 100, tau=0.6, alpha=0.05, axis=axis)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.n_certified, b.n_certified)
        assert a.n == 100


def test_segcertify_guess_is_first_argmax_and_scalar_component():
    cert = segcertify([3, 7, 7], [0, 0, 50], tau=0.5, alpha=0.1)
    assert cert.labels.shape == () and cert.labels == ABSTAIN  # guess 1, never hit
    cert = segcertify([3, 7, 7], np.array([0, 50, 0]), tau=0.5, alpha=0.1)
    assert cert.labels.shape == () and cert.labels == 1


def test_independence_guard():
    counts = np.array([[10, 90], [5, 95]])
    with pytest.raises(ValueError, match="independent"):
        segcertify(counts, counts, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="independent"):
        segcertify(counts[:, ::-1], counts, tau=0.75, alpha=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.4}, "tau"),
        ({"tau": 1.0}, "tau"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"method": "nope"}, "method"),
        ({"method": "holm", "k": 2}, "k must be 1"),
        ({"method": "generalized-holm", "k": 0}, "k"),
        ({"axis": 2}, "axis"),
        ({"axis": 1.0}, "axis"),
    ],
)
def test_bad_options(kwargs, match):
    args = {"tau": 0.75, "alpha": 0.01, **kwargs}
    with pytest.raises(ValueError, match=match):
        segcertify_hits(np.zeros((2, 3), int), np.ones((2, 3), int), 10, **args)


def test_bad_inputs():
    g = np.zeros(3, int)
    with pytest.raises(ValueError, match="hits must lie in"):
        segcertify_hits(g, [1, 11, 2], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="hits must lie in"):
        segcertify_hits(g, np.array([1, -1, 2], np.int8), 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="hits"):
        segcertify_hits(g, [1.5, 1, 2], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="hits"):
        segcertify_hits(g, [np.nan, 1, 2], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="guess"):
        segcertify_hits([0, -1, 2], [1, 1, 2], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="same shape"):
        segcertify_hits(g, [1, 2], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="empty"):
        segcertify_hits([], [], 10, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="n must"):
        segcertify_hits(g, g, 0, tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="empty"):
        segcertify_hits(
            np.zeros((3, 0), int), np.zeros((3, 0), int), 10, tau=0.75, alpha=0.01, axis=1
        )
    c0 = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="same n"):
        segcertify(c0, np.array([[5, 5], [5, 6]]), tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="non-negative"):
        segcertify(c0, np.array([[5, 5], [11, -1]]), tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="same shape"):
        segcertify(c0, np.array([[5, 5, 0], [5, 5, 0]]), tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="n = 0"):
        segcertify(c0, np.zeros((2, 2), int), tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="class axis"):
        segcertify(np.zeros((2, 0), int), np.zeros((2, 0), int), tau=0.75, alpha=0.01)
    with pytest.raises(ValueError, match="empty"):
        segcertify(np.zeros((0, 2), int), np.zeros((0, 2), int), tau=0.75, alpha=0.01)


def test_kernels_run_jitted_histogram_and_sort_paths():
    """The numba kernels are compiled and both family strategies agree with a reference.

    Reference: the plain definitions, and ``adjust`` for Hommel (whose exact
    references are in test_certify_hommel.py).
    """
    rng = np.random.default_rng(0)
    for n, shape in ((10, (2, 40_000)), (5000, (3, 50)), (5000, (1, 7))):
        hits = rng.integers(max(0, n - 30), n + 1, size=shape)
        hits[:, :3] = n
        guess = rng.integers(0, 9, size=shape)
        table = table_ref(n, 0.5)
        for method, code in FAST_METHODS.items():
            labels = np.empty(shape, np.int64)
            copy = np.empty(shape, np.int64)
            const = certify_mod._family_constant(code, 0.05, shape[1])
            n_rej, n_bad, n_neg, undecided = kernels.certify_families(
                guess, hits, table, 0.05, 2.0, code, const, ABSTAIN, labels, copy
            )
            if method == "hommel":
                ref = adjust(table[hits], "hommel", alpha=0.05, axis=-1).reject
            else:
                ref = np.array([fwer_ref(table[r], method, 0.05, 2) for r in hits])
            np.testing.assert_array_equal(labels, labels_ref(guess, ref))
            np.testing.assert_array_equal(n_rej, ref.sum(axis=1))
            np.testing.assert_array_equal(copy, hits)
            assert n_bad == 0 and n_neg == 0 and not undecided
    counts0 = rng.integers(0, 5, size=(50, 4))
    counts = rng.multinomial(20, [0.25] * 4, size=50)
    guess, hits = np.empty(50, np.int64), np.empty(50, np.int64)
    with _jit.policy("always"):  # compiled, however small the call
        assert kernels.guess_and_hits(counts0, counts, 20, guess, hits)
    np.testing.assert_array_equal(guess, counts0.argmax(axis=1))
    np.testing.assert_array_equal(hits, counts[np.arange(50), guess])
    for fn in (kernels.certify_families, kernels.guess_and_hits):  # the compiled tiers
        assert fn.dispatcher.signatures, fn
