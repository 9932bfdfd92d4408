"""Per-component joint radii: scipy references, Monte Carlo at the bound, a failing mutant,
and brute-force closed tests behind the capped Holm radii (docs/recertify.md).

Monte Carlo checks use tests/helpers/monte_carlo.py, as the SEGCERTIFY soundness tests do:
the one-sided Clopper–Pearson lower bound of the estimated error rate at level 1e-4 must not
exceed alpha (a sound procedure fails a check with probability <= 1e-4; seeds are fixed).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from mtcert.certify.radii import (
    RadiiCertificate,
    cap,
    certify_radii,
    joint_bound_table,
    lower_bound_table,
)
from mtcert.certify.segmentation import segcertify_hits
from tests.helpers.monte_carlo import check_at_most, cp_interval


def test_lower_bounds_and_radii_match_scipy():
    rng = np.random.default_rng(0)
    n, alpha, sigma = 60, 0.01, 0.5
    hits = rng.integers(0, n + 1, size=(7, 9))
    guess = rng.integers(0, 4, size=hits.shape)
    m = hits.size
    ref = np.where(hits > 0, stats.beta.ppf(alpha / m, hits, n - hits + 1), 0.0)
    for noise, radius in (
        ("gaussian", lambda p: sigma * stats.norm.ppf(p)),
        ("laplace", lambda p: -sigma * np.log(2 * (1 - p))),
        ("uniform", lambda p: 2 * sigma * (p - 0.5)),
    ):
        cert = certify_radii(
            guess, hits, n, alpha=alpha, sigma=sigma, noise=noise, method="bonferroni"
        )
        np.testing.assert_allclose(cert.p_lower, ref, rtol=1e-10, atol=1e-14)
        ok = ref > 0.5
        np.testing.assert_array_equal(cert.certified, ok)
        np.testing.assert_array_equal(cert.labels, np.where(ok, guess, -1))
        np.testing.assert_allclose(cert.radii, np.where(ok, radius(np.where(ok, ref, 0.75)), 0))
        assert cert.family_size == m and cert.capped == 0 and cert.cap is None
    # tau_min: abstain up to it
    cert = certify_radii(guess, hits, n, alpha=alpha, sigma=sigma, tau_min=0.8, method="bonferroni")
    np.testing.assert_array_equal(cert.certified, ref > 0.8)
    assert (cert.radii[~cert.certified] == 0).all()


def _holm_reference(hits, n, alpha):
    """The closed form by its definition, with scipy: Holm at alpha on P(Bin(n, cap) >= X_i)
    (sorted, one component at a time); the rejected at the cap, the rest Clopper–Pearson at
    alpha / (m - d)."""
    m = len(hits)
    top = (alpha / m) ** (1 / n)
    q = stats.binom.sf(np.asarray(hits) - 1, n, top)
    q[np.asarray(hits) == n] = top**n  # exactly alpha / m (scipy's sf rounds)
    d = 0
    for j, i in enumerate(np.argsort(q, kind="stable")):
        if q[i] > alpha / (m - j) * (1 + 1e-9):
            break
        d += 1
    rejected = np.zeros(m, bool)
    rejected[np.argsort(q, kind="stable")[:d]] = True
    level = alpha / (m - d) if d < m else alpha
    bound = np.where(np.asarray(hits) > 0, stats.beta.ppf(level, hits, n - np.asarray(hits) + 1), 0)
    return np.where(rejected, top, bound), d


@pytest.mark.parametrize("seed", range(6))
def test_holm_radii_match_their_definition_and_dominate_bonferroni(seed):
    rng = np.random.default_rng(seed)
    n, alpha, m = [(100, 0.001, 400), (30, 0.05, 50), (12, 0.2, 5)][seed % 3]
    share = [0.0, 0.5, 0.95][seed // 2]  # components with all n hits
    hits = np.where(rng.random(m) < share, n, rng.binomial(n, rng.beta(9, 1, m)))
    guess = np.zeros(m, int)
    holm = certify_radii(guess, hits, n, alpha=alpha, sigma=1.0)
    bonf = certify_radii(guess, hits, n, alpha=alpha, sigma=1.0, method="bonferroni")
    ref, d = _holm_reference(hits, n, alpha)
    np.testing.assert_allclose(holm.p_lower, ref, rtol=1e-9, atol=1e-14)
    assert holm.capped == d and holm.cap == pytest.approx((alpha / m) ** (1 / n), rel=1e-12)
    assert (holm.p_lower >= bonf.p_lower * (1 - 1e-12)).all()  # never less, on any data
    if d:  # and strictly more below the cap once a component reached it
        below = hits < n
        assert (holm.p_lower[below & (hits > 0)] > bonf.p_lower[below & (hits > 0)]).all()
    np.testing.assert_allclose(joint_bound_table(hits, n, alpha)[hits], holm.p_lower)


def test_families_along_an_axis_are_separate_certificates():
    rng = np.random.default_rng(1)
    hits = rng.integers(40, 101, size=(3, 50))
    hits[0, :30] = 100  # one family with many components at the cap
    guess = np.zeros_like(hits)
    for method in ("holm", "bonferroni"):
        batch = certify_radii(guess, hits, 100, alpha=0.01, sigma=0.25, axis=-1, method=method)
        for b in range(3):
            one = certify_radii(guess[b], hits[b], 100, alpha=0.01, sigma=0.25, method=method)
            np.testing.assert_array_equal(batch.radii[b], one.radii)
            assert int(np.asarray(batch.capped)[b]) == one.capped
        assert batch.family_size == 50 and batch.n_certified.shape == (3,)
        cols = certify_radii(guess.T, hits.T, 100, alpha=0.01, sigma=0.25, axis=0, method=method)
        np.testing.assert_array_equal(cols.radii.T, batch.radii)
    whole = certify_radii(guess, hits, 100, alpha=0.01, sigma=0.25, method="bonferroni")
    assert whole.family_size == 150


def test_a_tuple_of_axes_is_one_family_per_remaining_index():
    """``axis=(1, 2)`` on a batch of images: one certificate per image, equal to certifying
    each image alone (numpy's rule: the named axes together form one family)."""
    rng = np.random.default_rng(2)
    hits = rng.integers(40, 101, size=(3, 4, 5))
    guess = rng.integers(0, 3, size=hits.shape)
    for method in ("holm", "bonferroni"):
        batch = certify_radii(guess, hits, 100, alpha=0.01, sigma=0.25, axis=(1, -1),
                              method=method)  # fmt: skip
        assert batch.axis == (1, 2) and batch.family_size == 20
        assert batch.n_certified.shape == (3,) and np.shape(batch.capped) == (3,)
        for b in range(3):
            one = certify_radii(guess[b], hits[b], 100, alpha=0.01, sigma=0.25, method=method)
            np.testing.assert_array_equal(batch.radii[b], one.radii)
            np.testing.assert_array_equal(batch.labels[b], one.labels)
            assert batch.n_certified[b] == one.n_certified
            assert int(np.asarray(batch.capped)[b]) == one.capped
    with pytest.raises(ValueError, match="repeat"):
        certify_radii(guess, hits, 100, alpha=0.01, sigma=0.25, axis=(1, -2))


def test_labels_at_a_radius_and_repr():
    cert = certify_radii([2, 2, 1, 0], [100, 97, 80, 55], 100, alpha=0.001, sigma=0.25)
    assert isinstance(cert, RadiiCertificate)
    np.testing.assert_array_equal(cert.labels_at(0.0), [2, 2, 1, -1])
    np.testing.assert_array_equal(cert.labels_at(0.3), [2, -1, -1, -1])
    assert cert.n_certified == 3 and cert.certified_rate == 0.75
    text = repr(cert)
    assert "jointly per family (FWER)" in text and "alpha=0.001" in text and "shape=(4,)" in text
    assert "method='holm'" in text
    with pytest.raises(ValueError, match="radius"):
        cert.labels_at(float("nan"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(hits=[1.0, np.nan]), "hits must be finite"),
        (dict(hits=[1, 101]), r"hits must lie in \[0, n\]"),
        (dict(hits=[-1, 3]), r"hits must lie in \[0, n\]"),
        (dict(guess=[-1, 0]), "guess must hold non-negative"),
        (dict(guess=[0, 1, 2]), "same shape"),
        (dict(guess=[], hits=[]), "hits is empty"),
        (dict(alpha=0.0), "alpha"),
        (dict(alpha=1.5), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(n=0), "n must be"),
        (dict(n=2.5), "n must be"),
        (dict(sigma=-1.0), "sigma"),
        (dict(noise="cauchy"), "noise"),
        (dict(tau_min=0.4), "tau_min"),
        (dict(axis=3), "axis"),
        (dict(method="sidak"), "method"),
        (dict(hits=[[1.5, 2]], guess=[[0, 0]]), "hits must hold integers"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(guess=[0, 1], hits=[50, 99], n=100, alpha=0.01, sigma=0.25)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        certify_radii(args.pop("guess"), args.pop("hits"), args.pop("n"), **args)


def test_joint_radii_per_tau_between_bonferroni_and_holm_segcertify():
    """Duality: Bonferroni radii certify at R(tau) exactly what Bonferroni-SEGCERTIFY
    certifies at tau; the Holm radii at least that and at most Holm-SEGCERTIFY at tau."""
    rng = np.random.default_rng(2)
    n, alpha = 100, 0.001
    hits = rng.binomial(n, rng.beta(20, 1.5, size=500))
    guess = rng.integers(0, 3, size=500)
    bonf = certify_radii(guess, hits, n, alpha=alpha, sigma=0.25, method="bonferroni")
    holm = certify_radii(guess, hits, n, alpha=alpha, sigma=0.25)
    assert holm.capped > 0  # the test sees the step-down at work
    for tau in np.round(np.linspace(0.5, 0.95, 19), 3)[1:]:
        seg = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="bonferroni")
        pv = stats.binom.sf(hits - 1, n, tau)
        tie = np.isclose(pv, alpha / hits.size, rtol=1e-9)  # the boundary itself
        mine = bonf.certified & (bonf.p_lower >= tau)
        np.testing.assert_array_equal(mine[~tie], seg.reject[~tie])
        step = holm.certified & (holm.p_lower >= tau)
        seg_holm = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="holm")
        assert (step >= mine).all() and (step <= seg_holm.reject).all()


# -- Monte Carlo at the bound ------------------------------------------------------------------
# Nulls just below the bound of C hits at level alpha / M0, each failing with probability
# alpha / M0; for "holm" M1 further components always have all N hits (p = 1), reach the cap
# and leave the M0 nulls exactly that level: the worst case of the step-down.
M0, M1, N, ALPHA, C = 20, 10, 50, 0.1, 45


def _boundary_p():
    return float(lower_bound_table(N, M0, ALPHA)[C]) - 1e-12


def _hits(rng, reps, dependent, method):
    p = _boundary_p()
    if not dependent:
        null = rng.binomial(N, p, size=(reps, M0))
    else:
        # every X_i ~ Bin(N, p) exactly, coupled through one uniform so that the events
        # {X_i >= C} are disjoint: the union bound is attained (the worst dependence)
        tail = stats.binom.sf(C - 1, N, p)
        v = (rng.random((reps, 1)) + tail * np.arange(M0)) % 1.0
        null = stats.binom.ppf(v, N, p).astype(np.int64)
    if method == "bonferroni":
        return null, p
    return np.concatenate([null, np.full((reps, M1), N)], axis=1), p


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
@pytest.mark.parametrize("dependent", [False, True])
def test_joint_guarantee_at_the_bound_and_a_mutant_without_split(method, dependent):
    rng = np.random.default_rng(20210718 + dependent)
    reps = 40_000
    hits, p = _hits(rng, reps, dependent, method)
    tail = stats.binom.sf(C - 1, N, p)  # each null's error probability, ~ alpha / M0
    assert tail == pytest.approx(ALPHA / M0, rel=1e-6)
    cert = certify_radii(np.zeros_like(hits), hits, N, alpha=ALPHA, sigma=0.25, axis=-1,
                         method=method)  # fmt: skip
    if method == "holm":
        assert (np.asarray(cert.capped) >= M1).all()  # the alternatives reached the cap
    label = f"joint radii {method} ({'disjoint errors' if dependent else 'independent'})"
    false = (cert.p_lower[:, :M0] > p).any(axis=1)
    low, high = check_at_most(int(false.sum()), reps, ALPHA, label)
    exact = M0 * tail if dependent else 1 - (1 - tail) ** M0  # 0.1 and 0.0956
    assert low <= exact <= high  # tight: the check would see a real excess
    # the mutant: every component's bound at the full alpha (no split across the family)
    mutant = lower_bound_table(N, 1, ALPHA)[hits[:, :M0]]
    x_mutant = int((mutant > p).any(axis=1).sum())
    print(f"{label}, mutant without split: {x_mutant / reps:.4f}")
    assert cp_interval(x_mutant, reps)[0] > ALPHA
    with pytest.raises(AssertionError, match="exceeds alpha"):
        check_at_most(x_mutant, reps, ALPHA, "mutant")


# -- why the capped step-down: brute-force closed tests over a tau grid ---------------------
def _closed_test(hits, n, grid, alpha):
    """Closure of the family {H_ij: p_i <= grid[j]} with Bonferroni local tests, by enumeration.

    An intersection of H_ij is {p_i <= min of its grid values, i in S}; its local test
    rejects when min_i pv_i(t_i) <= alpha / |S|.  Returns the largest rejected grid index
    per component (-1: none).
    """
    m, L = len(hits), len(grid)
    pv = stats.binom.sf(np.asarray(hits)[:, None] - 1, n, np.asarray(grid)[None, :])
    pairs = list(itertools.product(range(m), range(L)))
    local = {}
    for r in range(1, len(pairs) + 1):
        for J in itertools.combinations(pairs, r):
            t = {}
            for i, j in J:
                t[i] = min(t.get(i, L), j)
            # (1 + 1e-9): P(Bin(n, cap) >= n) is alpha / m exactly, up to rounding
            local[J] = min(pv[i, j] for i, j in t.items()) <= alpha / len(t) * (1 + 1e-9)
    best = [-1] * m
    for i, j in pairs:
        if all(ok for J, ok in local.items() if (i, j) in J):
            best[i] = max(best[i], j)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_closed_test_over_an_uncapped_grid_is_bonferroni(seed):
    rng = np.random.default_rng(seed)
    n, alpha, m = 12, 0.2, 3
    grid = [0.5, 0.6, 0.8]  # 0.8 ** 12 = 0.069 > alpha / m: no component can pass the top
    assert grid[-1] ** n > alpha / m
    hits = rng.integers(6, n + 1, size=m)
    bonf = lower_bound_table(n, m, alpha)[hits]
    expect = [max((j for j, t in enumerate(grid) if t <= b), default=-1) for b in bonf]
    assert _closed_test(hits, n, grid, alpha) == expect


@pytest.mark.parametrize("hits", [[12, 12, 9], [12, 11, 10], [12, 9, 8], [10, 10, 10]])
def test_capped_closed_test_is_holm_at_the_cap_then_bonferroni_on_the_rest(hits):
    """With the cap low enough to pass, the closure certifies the Holm rejections at the cap
    (radius cut to the cap) and tests the others at alpha / (m - d): more radius below the cap,
    none above it (docs/recertify.md, Proposition 3)."""
    n, alpha, m = 12, 0.2, 3
    grid = [0.5, 0.55, 0.6, 0.65]
    hits = np.asarray(hits)
    q = stats.binom.sf(hits - 1, n, grid[-1])
    order = np.argsort(q, kind="stable")
    d = 0
    while d < m and q[order[d]] <= alpha / (m - d):
        d += 1
    rejected = set(order[:d].tolist())
    expect = []
    for i in range(m):
        if i in rejected:
            expect.append(len(grid) - 1)
        else:
            b = lower_bound_table(n, m - d, alpha)[hits[i]]
            expect.append(max((j for j, t in enumerate(grid) if t <= b), default=-1))
    assert _closed_test(hits, n, grid, alpha) == expect


def test_fixed_sequence_over_a_grid_is_the_bound_restricted_to_the_grid():
    """Testing p_i <= tau_1 < tau_2 < ... in order at alpha / m, stopping at the first
    acceptance, gives the largest grid point not above the joint bound: never more radius."""
    rng = np.random.default_rng(5)
    n, alpha, m = 100, 0.01, 40
    hits = rng.integers(50, n + 1, size=m)
    grid = np.round(np.linspace(0.5, 0.99, 50), 4)
    bound = lower_bound_table(n, m, alpha)[hits]
    for h, b in zip(hits, bound, strict=True):
        last = -1
        for j, tau in enumerate(grid):
            if stats.binom.sf(h - 1, n, tau) > alpha / m:
                break
            last = j
        below = np.flatnonzero(grid <= b)
        assert last == (below[-1] if below.size else -1)


@pytest.mark.parametrize(
    "hits", [[12, 12, 9], [12, 11, 10], [12, 10, 7], [11, 10, 9], [12, 12, 12]]
)
def test_holm_radii_are_the_closed_test_over_the_grid_up_to_the_cap(hits):
    """The implementation against the brute-force closure of {p_i <= t}, t up to the cap."""
    n, alpha, m = 12, 0.2, 3
    top = cap(n, m, alpha)
    grid = [0.5, 0.6, 0.7, top]
    cert = certify_radii(np.zeros(m, int), hits, n, alpha=alpha, sigma=1.0)
    expect = [max((j for j, t in enumerate(grid) if t <= b), default=-1) for b in cert.p_lower]
    assert _closed_test(np.asarray(hits), n, grid, alpha) == expect


@pytest.mark.parametrize("hits", [[50] * 8, [50] * 7 + [0], [50, 49, 3, 0], [12, 30, 44]])
def test_bound_table_is_monotone_in_the_hits(hits):
    """What the joint radius curve's hit thresholds rely on, the all-capped family included."""
    table = joint_bound_table(hits, 50, 0.05)
    assert table[0] == 0.0 and (np.diff(table) >= 0).all()
    cert = certify_radii(np.zeros(len(hits), int), hits, 50, alpha=0.05, sigma=1.0)
    np.testing.assert_array_equal(table[hits], cert.p_lower)
