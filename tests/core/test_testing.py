"""Tests for mtcert.sim.testing: the hypothesis strategies and the error-rate checker,
which is run here on every built-in procedure of mtcert.stats.multitest."""

import numpy as np
import pytest
from hypothesis import find, given
from scipy import stats

from mtcert.sim.testing import (
    SCENARIOS,
    check_error_rate,
    count_arrays,
    hit_vectors,
    pvalue_arrays,
)
from mtcert.stats.multitest import FDR_METHODS, FWER_METHODS, KFWER_METHODS, METHODS, adjust

# -- strategies -----------------------------------------------------------------------


@given(pvalue_arrays(min_size=1, max_size=30))
def test_pvalue_arrays_are_valid(p):
    assert p.dtype == np.float64 and p.ndim == 1 and 1 <= p.size <= 30
    assert ((p >= 0) & (p <= 1)).all()


def test_pvalue_arrays_reach_the_hard_cases():
    assert find(pvalue_arrays(), lambda p: (p == 0).any() and (p == 1).any()) is not None
    assert find(pvalue_arrays(), lambda p: ((p > 0) & (p < 1e-300)).any()) is not None
    ties = find(pvalue_arrays(), lambda p: p.size >= 3 and np.unique(p).size < p.size // 2 + 1)
    assert ties is not None
    assert find(pvalue_arrays(allow_nan=True), lambda p: np.isnan(p).any()) is not None


@given(count_arrays(max_components=8, max_classes=4, max_n=50))
def test_count_arrays_share_a_total(c):
    assert c.dtype == np.int64 and c.ndim == 2 and 2 <= c.shape[1] <= 4
    assert (c >= 0).all() and np.unique(c.sum(-1)).size == 1


def test_count_arrays_reach_ties():
    def tied(c):
        top2 = np.sort(c, axis=-1)[:, -2:]
        return (top2[:, 0] == top2[:, 1]).any() and (top2[:, 1] > 0).all()

    assert find(count_arrays(), tied) is not None


@given(hit_vectors(max_size=20, max_n=10**6))
def test_hit_vectors_are_in_range(hn):
    hits, n = hn
    assert hits.dtype == np.int64 and ((hits >= 0) & (hits <= n)).all()


def test_strategy_argument_validation():
    with pytest.raises(ValueError, match="max_size"):
        pvalue_arrays(min_size=5, max_size=2)
    with pytest.raises(ValueError, match="min_classes"):
        count_arrays(min_classes=1)
    with pytest.raises(ValueError, match="max_"):
        hit_vectors(min_n=10, max_n=2)


# -- error-rate checker: correctness of the estimate -----------------------------------


def _vec(method, alpha, k=1):
    return lambda p: adjust(p, method, alpha=alpha, k=k, axis=-1).reject


def test_adversarial_attains_the_bonferroni_bound():
    # Clumped rotation: FWER of Bonferroni is exactly alpha when m0 = m; the
    # exact value must lie in the interval and the verdict must be "pass".
    res = check_error_rate(_vec("bonferroni", 0.1), scenario="adversarial", m=10, alpha=0.1,
                           reps=20_000, seed=3, vectorized=True)  # fmt: skip
    assert res.ci_low <= 0.1 <= res.ci_high and res.verdict == "pass"
    # generalized Bonferroni, k = 2, attains k-FWER = alpha too (k | m0 = m).
    res = check_error_rate(_vec("generalized-bonferroni", 0.1, 2), scenario="adversarial",
                           m=10, alpha=0.1, k=2, rate="kfwer", reps=20_000, seed=4,
                           vectorized=True)  # fmt: skip
    assert res.ci_low <= 0.1 <= res.ci_high


def test_independent_matches_closed_forms():
    m, m0, a = 12, 8, 0.2
    res = check_error_rate(_vec("bonferroni", a), m=m, m0=m0, alpha=a, reps=20_000, seed=5,
                           vectorized=True)  # fmt: skip
    exact = 1 - (1 - a / m) ** m0
    assert res.ci_low <= exact <= res.ci_high
    # BH with independent continuous nulls has FDR exactly alpha * m0 / m.
    res = check_error_rate(_vec("fdr_bh", a), m=m, m0=m0, alpha=a, rate="fdr", reps=20_000,
                           seed=6, vectorized=True)  # fmt: skip
    assert res.ci_low <= a * m0 / m <= res.ci_high


def test_positive_scenario_is_equicorrelated():
    # Capture the p-values through a procedure and check the z-scores' correlation.
    seen = []

    def spy(p):
        seen.append(p.copy())
        return np.zeros_like(p, dtype=bool)

    check_error_rate(spy, scenario="positive", m=3, rho=0.6, reps=20_000, seed=0, vectorized=True)
    z = stats.norm.isf(seen[0])
    c = np.corrcoef(z.T)
    assert np.allclose(c[np.triu_indices(3, 1)], 0.6, atol=0.03)


# -- error-rate checker on every built-in procedure -------------------------------------

ANY_DEPENDENCE = {"bonferroni", "holm", "generalized-bonferroni", "generalized-holm", "fdr_by"}
PRDS = {"sidak", "holm-sidak", "hochberg", "hommel", "fdr_bh", "generalized-hochberg"}


def _scenarios(method):
    if method in ANY_DEPENDENCE:
        return ("independent", "positive", "adversarial")
    if method in PRDS:
        return ("independent", "positive")
    return ("independent",)


CASES = [(m, s) for m in METHODS for s in _scenarios(m)]


def test_every_builtin_method_is_covered():
    assert {m for m, _ in CASES} == set(METHODS)
    assert set(METHODS) == set(FWER_METHODS) | set(FDR_METHODS) | set(KFWER_METHODS)


@pytest.mark.parametrize("method, scenario", CASES)
def test_builtin_procedures_keep_their_promise(method, scenario):
    k = 2 if method in KFWER_METHODS else 1
    rate = "fdr" if method in FDR_METHODS else ("kfwer" if k > 1 else "fwer")
    m0 = 20 if scenario == "adversarial" else 14  # adversarial: tight at m0 = m
    res = check_error_rate(
        _vec(method, 0.1, k), scenario=scenario, m=20, m0=m0, alpha=0.1, k=k, rate=rate,
        reps=4000, seed=11, vectorized=True,
    )  # fmt: skip
    assert res.verdict == "pass", res


# -- error-rate checker: it can fail, and its interface ---------------------------------


def test_checker_detects_broken_procedures():
    res = check_error_rate(lambda p: p <= 0.05, m=20, alpha=0.05, reps=2000, seed=0)
    assert res.verdict == "fail" and res.estimate > 0.5
    # generalized Šidák assumes independence; the adversarial construction breaks it.
    gsidak = _vec("generalized-sidak", 0.1, 2)
    res = check_error_rate(gsidak, scenario="adversarial", m=20, alpha=0.1, k=2, rate="kfwer",
                           reps=4000, seed=1, vectorized=True)  # fmt: skip
    assert res.verdict == "fail"


def test_loop_and_vectorized_paths_agree():
    kw = dict(scenario="positive", m=8, m0=5, alpha=0.2, reps=300, seed=9)
    a = check_error_rate(lambda p: adjust(p, "hommel", alpha=0.2).reject, **kw)
    b = check_error_rate(_vec("hommel", 0.2), vectorized=True, **kw)
    assert a == b
    assert repr(a).startswith("ErrorRateResult(rate='fwer', scenario='positive'")


def test_custom_scenario_callable():
    def all_zero(rng, reps, m, m0, clump, mu, rho):
        return np.zeros((reps, m))

    res = check_error_rate(_vec("holm", 0.05), scenario=all_zero, m=4, reps=50, vectorized=True)
    assert res.scenario == "all_zero" and res.estimate == 1.0 and res.verdict == "fail"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(procedure=3), "callable"),
        (dict(m0=30), "m0"),
        (dict(rate="fwe"), "rate"),
        (dict(k=2), "kfwer"),
        (dict(alpha=1.0), "alpha"),
        (dict(scenario="negative"), "scenario"),
        (dict(reps=0), "reps"),
        (dict(rho=1.5), "rho"),
        (dict(procedure=lambda p: p), "boolean"),
        (dict(procedure=lambda p: p[:-1] < 0.1), "boolean"),
    ],
)
def test_checker_validation(kwargs, match):
    base = dict(procedure=lambda p: p < 0.001, m=20, reps=10)
    with pytest.raises(ValueError, match=match):
        check_error_rate(**{**base, **kwargs})


def test_scenarios_are_named():
    assert set(SCENARIOS) == {"independent", "positive", "adversarial"}


def test_clump_size_is_its_own_parameter():
    from mtcert.sim.testing import SCENARIOS

    seen = {}

    def spy(rng, reps, m, m0, clump, mu, rho):
        seen["clump"] = clump
        return SCENARIOS["adversarial"](rng, reps, m, m0, clump, mu, rho)

    check_error_rate(_vec("generalized-bonferroni", 0.1, 2), scenario=spy, m=12, alpha=0.1, k=2,
                     rate="kfwer", reps=10, vectorized=True)  # fmt: skip
    assert seen["clump"] == 2  # defaults to k: the sharp construction for the k-FWER
    check_error_rate(_vec("holm", 0.1), scenario=spy, m=12, alpha=0.1, clump=3, reps=10,
                     vectorized=True)  # fmt: skip
    assert seen["clump"] == 3
    p = SCENARIOS["adversarial"](np.random.default_rng(0), 2, 6, 6, 3, 3.0, 0.5)
    assert len(np.unique(p[0])) == 2  # two clumps of three equal p-values
    with pytest.raises(ValueError, match="clump"):
        check_error_rate(_vec("holm", 0.1), clump=0, reps=10, vectorized=True)
