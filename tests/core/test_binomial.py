"""binom_test / clopper_pearson against scipy, statsmodels and mpmath references."""

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import example, given
from hypothesis import strategies as hs
from statsmodels.stats.proportion import proportion_confint

from mtcert.stats.binomial import binom_test, clopper_pearson, greater_pvalue_table
from tests.helpers.references import exact_tail, scipy_binomtest, upper_tail_mp


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


@pytest.fixture(scope="module")
def random_knp():
    rng = np.random.default_rng(20261125)
    n = rng.integers(1, 2000, 4000)
    k = rng.integers(0, n + 1)
    p = rng.uniform(0, 1, n.size)
    p[:200] = np.round(p[:200], 1)  # exact 0, 1/2, 1 and p*n integral
    return k, n, p


def test_greater_matches_scipy_sf(random_knp):
    k, n, p = random_knp
    ours = binom_test(k, n, p)
    ref = st.binom.sf(k - 1, n, p)
    assert ours.shape == k.shape
    # scipy's sf (Boost's ibeta) underflows to 0 or loses accuracy below ~1e-250;
    # there ours are checked against mpmath (test_deep_tails_against_mpmath).
    ok = ref > 1e-200
    assert rel_err(ours[ok], ref[ok]).max() <= 1e-9
    assert np.all(ours[~ok] <= 1.01e-200)
    assert np.all(ref[ours == 0] == 0)  # we underflow only where scipy does too


def test_less_matches_scipy_cdf_away_from_underflow(random_knp):
    # scipy's binom.cdf loses accuracy below ~1e-250 (checked against mpmath below).
    k, n, p = random_knp
    ours = binom_test(k, n, p, alternative="less")
    ref = st.binom.cdf(k, n, p)
    ok = ref > 1e-200
    assert rel_err(ours[ok], ref[ok]).max() <= 1e-9


def test_two_sided_matches_scipy_binomtest(random_knp):
    k, n, p = (a[:1500] for a in random_knp)
    ours = binom_test(k, n, p, alternative="two-sided")
    ref = np.array(
        [st.binomtest(int(a), int(b), c).pvalue for a, b, c in zip(k, n, p, strict=True)]
    )
    ok = ref > 1e-200
    assert rel_err(ours[ok], ref[ok]).max() <= 1e-9
    assert np.all(ours[~ok] <= 1e-199)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (0, 1, 0.3),
        (1, 1, 0.3),
        (700, 1000, 0.1),
        (5, 1000, 0.9),
        (37, 1167, 0.4966176792382273),
        (1404, 2320, 0.2657625520186808),
        (30, 60, 0.5),
        (1999, 2000, 0.5),
        (3, 4, 0.75),
    ],
)
def test_against_mpmath_including_deep_tails(k, n, p, alternative):
    ours = float(binom_test(k, n, p, alternative=alternative))
    ref = exact_tail(k, n, p, alternative)
    if ref < 1e-300:
        assert ours < 1e-299
    else:
        assert rel_err(ours, ref) <= 1e-9, (ours, ref)


@pytest.mark.parametrize("n", range(1075, 1266, 38))
def test_two_sided_extreme_tail_against_mpmath(n):
    # Where the opposite tail's pmf underflows in scipy's search, the
    # p-value must still include it (p = 1/2: exactly twice the one-sided tail).
    for k in (0, 7, 21, 38):
        ref = exact_tail(k, n, 0.5, "two-sided")
        ours = float(binom_test(k, n, 0.5, alternative="two-sided"))
        assert rel_err(ours, ref) <= 1e-11, (k, n, ours, ref)
        lower = float(binom_test(k, n, 0.5, alternative="less"))
        assert rel_err(ours, 2 * lower) <= 1e-11


@pytest.mark.slow  # exact sums over 1168 terms
def test_two_sided_extreme_tail_asymmetric_against_mpmath():
    n, p = 1167, 0.4966
    for k in range(11, 35, 3):
        for kk in (k, n - k):
            ref = exact_tail(kk, n, p, "two-sided")
            ours = float(binom_test(kk, n, p, alternative="two-sided"))
            assert rel_err(ours, ref) <= 1e-11, (kk, ours, ref)
    # k = 38 of 1167 at p = 1/2: a two-sided p-value that scipy's search gets wrong
    assert float(binom_test(38, 1167, 0.5, alternative="two-sided")) == pytest.approx(
        3.798e-280, rel=1e-3
    )


def test_deep_tails_against_mpmath():
    # Boost's ibeta returns 0 for e.g. P(X >= 1129), X ~ Bin(1167, 1/2) = 1.9e-280,
    # and loses relative accuracy below ~1e-250: these tails are summed in log space.
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(10 ** rng.uniform(2, 4))
        p = float(rng.uniform(0.05, 0.95))
        # k with a tail between ~1e-200 and ~1e-305, near n or beyond the mean
        k = int(min(n, round(n * p + rng.uniform(0.6, 1.0) * (n - n * p))))
        ref = upper_tail_mp(k, n, p)
        ours = float(binom_test(k, n, p))
        if ref > 1e-300:
            assert rel_err(ours, float(ref)) <= 1e-11, (k, n, p, ours, ref)
        lower = float(binom_test(n - k, n, 1 - p, alternative="less"))
        if ref > 1e-300:
            assert rel_err(lower, float(ref)) <= 1e-11, (k, n, p, lower, ref)
    assert float(binom_test(1129, 1167, 0.5)) == pytest.approx(1.8990736359070655e-280, rel=1e-11)


def test_tiny_pvalues_keep_relative_accuracy():
    # P(X >= 1000) for X ~ Bin(1000, 0.5) = 2**-1000 ~ 9.3e-302: exact, not 1 - cdf.
    assert float(binom_test(1000, 1000, 0.5)) == pytest.approx(2.0**-1000, rel=1e-12)
    # Upper tail just below the mode: no cancellation either.
    assert float(binom_test(1, 10**7, 1e-9)) == pytest.approx(
        -np.expm1(10**7 * np.log1p(-1e-9)), rel=1e-9
    )


def test_large_n_no_overflow():
    n = 10**7
    k = np.array([0, 7_490_000, 7_500_000, 7_510_000, 7_600_000, n])
    ours = binom_test(k, n, 0.75)
    ref = st.binom.sf(k - 1, n, 0.75)
    assert np.all(np.isfinite(ours)) and np.all((ours >= 0) & (ours <= 1))
    assert rel_err(ours[ref > 0], ref[ref > 0]).max() <= 1e-9


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_table_fast_path_equals_elementwise(alternative):
    rng = np.random.default_rng(1)
    k = rng.integers(0, 101, 5000)  # 5000 > n + 1: the gather path
    fast = binom_test(k, 100, 0.75, alternative=alternative)
    slow = binom_test(k, np.full(k.shape, 100), 0.75, alternative=alternative)  # elementwise
    assert np.array_equal(fast, slow)


def test_greater_pvalue_table():
    table = greater_pvalue_table(50, 0.75)
    assert table.shape == (51,) and table[0] == 1.0
    assert np.all(np.diff(table) <= 0)
    assert rel_err(table, st.binom.sf(np.arange(51) - 1, 50, 0.75)).max() <= 1e-12
    with pytest.raises(ValueError, match="scalars"):
        greater_pvalue_table([10, 20], 0.5)


@given(
    n=hs.integers(1, 400),
    frac=hs.floats(0, 1),
    p=hs.one_of(hs.sampled_from([0.0, 0.5, 0.75, 1.0]), hs.floats(0, 1)),
    alternative=hs.sampled_from(["greater", "less", "two-sided"]),
)
@example(n=4, frac=0.0, p=2.2250738585072014e-308, alternative="two-sided")  # scipy raises
@example(n=21, frac=0.0, p=3.877234243783096e-307, alternative="two-sided")  # scipy raises
def test_property_against_scipy(n, frac, p, alternative):
    k = round(frac * n)
    ours = float(binom_test(k, n, p, alternative=alternative))
    ref = scipy_binomtest(k, n, p, alternative)
    if ref is None:  # scipy fails there: the exact sum is the reference
        ref = exact_tail(k, n, p, alternative)
    if ref > 1e-200:
        assert rel_err(ours, ref) <= 1e-9
    else:
        assert ours <= 1e-199


def test_broadcasting_and_scalars():
    out = binom_test(np.arange(6).reshape(2, 3), 5, [[0.5], [0.25]])
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(st.binom.sf(4, 5, 0.25), rel=1e-12)
    scalar = binom_test(3, 5, 0.5)
    assert np.ndim(scalar) == 0 and isinstance(scalar, np.floating)
    assert binom_test(np.array([], dtype=int), 5, 0.5).shape == (0,)
    assert binom_test(np.zeros((0, 3), dtype=int), 5, 0.5).shape == (0, 3)
    assert binom_test([2.0, 3.0], 5, 0.5).shape == (2,)  # integral floats are accepted


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 6, "n": 5, "p": 0.5}, "k must not exceed n"),
        ({"k": [1, 6], "n": [5, 5], "p": 0.5}, "k must not exceed n"),
        ({"k": -1, "n": 5, "p": 0.5}, "k must be non-negative"),
        ({"k": 2.5, "n": 5, "p": 0.5}, "k must hold integers"),
        ({"k": np.nan, "n": 5, "p": 0.5}, "k must be finite"),
        ({"k": 2, "n": 0, "p": 0.5}, "n must be a positive integer"),
        ({"k": 2, "n": 5, "p": 1.5}, "p must lie in"),
        ({"k": 2, "n": 5, "p": np.nan}, "p contains NaN"),
        ({"k": [1, 2], "n": [5, 5, 5], "p": 0.5}, "cannot be broadcast"),
        ({"k": "a", "n": 5, "p": 0.5}, "k must be an array of non-negative integers"),
        ({"k": 2, "n": 5, "p": 0.5, "alternative": "larger"}, "alternative must be one of"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        binom_test(**kwargs)


def test_clopper_pearson_matches_statsmodels():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 3000, 3000)
    k = rng.integers(0, n + 1)
    k[:10], k[10:20] = 0, n[10:20]
    for alpha in (0.05, 0.001):
        low, high = clopper_pearson(k, n, alpha=alpha)
        ref_low, ref_high = proportion_confint(k, n, alpha, method="beta")
        assert rel_err(low, ref_low).max() <= 1e-10
        assert rel_err(high, ref_high).max() <= 1e-10


def test_clopper_pearson_one_sided_is_cohen_bound():
    # Cohen et al. use proportion_confint(nA, n, alpha=2 * alpha, method="beta")[0].
    low, high = clopper_pearson([0, 60, 99, 100], 100, alpha=0.001, alternative="greater")
    ref = proportion_confint(np.array([0, 60, 99, 100]), 100, 0.002, method="beta")[0]
    assert rel_err(low, ref).max() <= 1e-10 and np.all(high == 1.0)
    low, high = clopper_pearson(60, 100, alpha=0.001, alternative="less")
    assert low == 0.0
    assert high == pytest.approx(proportion_confint(60, 100, 0.002, method="beta")[1], rel=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("true_p", [0.02, 0.3, 0.75, 0.97])
def test_clopper_pearson_exact_coverage(alternative, true_p):
    """Coverage sum_k P(X = k) 1[p in CI(k)] >= 1 - alpha, computed exactly."""
    n, alpha = 60, 0.05
    k = np.arange(n + 1)
    low, high = clopper_pearson(k, n, alpha=alpha, alternative=alternative)
    covered = (low <= true_p) & (true_p <= high)
    assert st.binom.pmf(k, n, true_p)[covered].sum() >= 1 - alpha


def test_clopper_pearson_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        clopper_pearson(3, 10, alpha=1.0)
    with pytest.raises(ValueError, match="alternative"):
        clopper_pearson(3, 10, alternative="larger")
    with pytest.raises(ValueError, match="k must not exceed n"):
        clopper_pearson(11, 10)


def test_fork_after_use_is_safe():
    """Kernels must not start a fork-unsafe thread pool (GNU OpenMP aborts forked children)."""
    import multiprocessing

    binom_test(np.arange(101), np.full(101, 100), 0.5)  # elementwise kernel in the parent
    binom_test(np.arange(101).repeat(3), 100, 0.5)  # gather kernel in the parent
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_child_binom_sum)
        assert result.get(timeout=120) == pytest.approx(
            float(binom_test(np.arange(11), 10, 0.5).sum())
        )


def _child_binom_sum():
    return float(binom_test(np.arange(11), np.full(11, 10), 0.5).sum())


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_grouped_by_n_and_threaded_paths_agree(alternative):
    # p shared and few distinct n: one table per distinct n, then a gather.  Passing p
    # per element forces the elementwise kernel, run in threaded chunks (> 2**16 tests).
    rng = np.random.default_rng(7)
    n = rng.choice([3, 40, 41, 500], size=200_000)
    k = rng.binomial(n, 0.6)
    grouped = binom_test(k, n, 0.55, alternative=alternative)
    elementwise = binom_test(k, n, np.full(k.shape, 0.55), alternative=alternative)
    assert np.array_equal(grouped, elementwise)
    idx = rng.choice(k.size, 300, replace=False)
    ref = st.binom.sf(k[idx] - 1, n[idx], 0.55) if alternative == "greater" else None
    if ref is not None:
        assert rel_err(grouped[idx], ref).max() <= 1e-12


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_clopper_pearson_confidence_level_matches_scipy(alternative):
    rng = np.random.default_rng(12)
    for _ in range(30):
        n = int(rng.integers(1, 500))
        k = int(rng.integers(0, n + 1))
        cl = float(rng.choice([0.9, 0.95, 0.99, 0.999]))
        ref = st.binomtest(k, n, alternative=alternative).proportion_ci(cl, method="exact")
        low, high = clopper_pearson(k, n, confidence_level=cl, alternative=alternative)
        # scipy finds the bounds by root-finding (xtol ~1e-12); ours are betaincinv
        np.testing.assert_allclose([low, high], [ref.low, ref.high], rtol=1e-9, atol=1e-14)
    a = clopper_pearson(7, 10, alpha=0.05)
    assert clopper_pearson(7, 10) == a  # default alpha 0.05
    with pytest.raises(ValueError, match="not both"):
        clopper_pearson(7, 10, alpha=0.05, confidence_level=0.95)
    with pytest.raises(ValueError, match="confidence_level"):
        clopper_pearson(7, 10, confidence_level=1.5)


@pytest.mark.parametrize("bad", [[0.5 + 0j], np.array([0.5], complex), [None], ["0.5"]])
def test_complex_none_and_strings_refused_for_p(bad):
    with pytest.raises(ValueError, match="p must be real"):
        binom_test(3, 10, bad)
