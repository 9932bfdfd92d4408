"""Sequential SEGCERTIFY and its anytime-valid p-values (mtcert.certify.sequential).

Soundness: seeded Monte Carlo runs of the whole procedure with nulls exactly at
tau (the worst case) and alternatives near 1 (so that Holm meets the nulls at
its most permissive critical value).  Each asserts that the one-sided
Clopper–Pearson lower bound (level DELTA) of the FWER does not exceed alpha;
a mutant that applies the fixed-n binomial p-value at the data-dependent
stopping time runs the same simulation and must exceed alpha.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from mtcert.certify import sequential as seq
from mtcert.certify.sequential import (
    anytime_pvalues,
    certification_floor,
    fresh_hits,
    mixture_log_evalue,
    sequential_segcertify,
)
from mtcert.stats.binomial import binom_test

DELTA = 1e-4
TAU, ALPHA = 0.5, 0.1
LOOKS = (10, 20, 30, 40, 60, 80, 100)
P_NULL = np.array([TAU, TAU, 0.995, 0.995])  # two nulls at the bound, two alternatives


def cp_bounds(x, reps, delta=DELTA):
    low = stats.beta.ppf(delta, x, reps - x + 1) if x > 0 else 0.0
    high = stats.beta.isf(delta, x + 1, reps - x) if x < reps else 1.0
    return low, high


def fwer_at_bound(reps, bound, seed):
    rng = np.random.default_rng(seed)
    guess = np.ones(P_NULL.size, np.int64)
    false, used = 0, []
    for _ in range(reps):
        cert = sequential_segcertify(
            guess, lambda m, g: rng.binomial(m, P_NULL), tau=TAU, alpha=ALPHA, looks=LOOKS,
            bound=bound,
        )  # fmt: skip
        false += bool(cert.reject[:2].any())
        used.append(cert.n)
    return false, float(np.mean(used))


@pytest.mark.parametrize("bound", ["mixture", "schedule"])
def test_fwer_at_the_bound(bound):
    reps = 600
    x, mean_n = fwer_at_bound(reps, bound, seed=2023)
    low, high = cp_bounds(x, reps)
    print(f"{bound}: FWER {x / reps:.4f} CP [{low:.4f}, {high:.4f}], mean n {mean_n:.1f}")
    assert low <= ALPHA
    assert mean_n < LOOKS[-1]  # images do stop early: the stopping time is data dependent


def test_mutant_fixed_n_pvalue_at_stopping_time_fails(monkeypatch):
    """The exact binomial p-value is valid at a fixed n, not at a stopping time."""

    def fixed_n(hits, n, tau, bound, looks, a, b):
        return np.asarray(binom_test(hits, n, tau), dtype=np.float64)

    monkeypatch.setattr(seq, "_look_pvalues", fixed_n)
    reps = 400
    x, _ = fwer_at_bound(reps, "mixture", seed=2023)
    low, _ = cp_bounds(x, reps)
    print(f"mutant: FWER {x / reps:.4f}, CP lower {low:.4f}")
    assert low > ALPHA


def test_mixture_evalue_matches_its_integral():
    tau, n, a, b = 0.75, 30, 2.0, 1.5
    for h in (0, 12, 23, 30):

        def lr(q, h=h):
            return (q / tau) ** h * ((1 - q) / (1 - tau)) ** (n - h) * stats.beta.pdf(q, a, b)

        num = integrate.quad(lr, tau, 1, epsabs=0, epsrel=1e-10)[0]
        want = num / stats.beta.sf(tau, a, b)
        got = np.exp(mixture_log_evalue(h, n, tau, a=a, b=b))
        assert got == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("p", [0.75, 0.6, 0.3])
def test_mixture_is_a_supermartingale_under_the_null(p):
    """E[M_{n+1} | S_n] <= M_n for p <= tau (= at p = tau), computed exactly."""
    tau, n = 0.75, 40
    h = np.arange(n + 1)
    now = np.exp(mixture_log_evalue(h, n, tau))
    nxt = p * np.exp(mixture_log_evalue(h + 1, n + 1, tau)) + (1 - p) * np.exp(
        mixture_log_evalue(h, n + 1, tau)
    )
    if p == tau:
        np.testing.assert_allclose(nxt, now, rtol=1e-9)
    else:
        assert np.all(nxt <= now * (1 + 1e-12))


def test_anytime_pvalues_are_weaker_than_the_fixed_n_test():
    hits = np.arange(60, 101)
    exact = binom_test(hits, 100, 0.75)
    assert np.all(anytime_pvalues(hits, 100, 0.75) >= exact)
    sched = anytime_pvalues(hits, 100, 0.75, bound="schedule", looks=5)
    np.testing.assert_allclose(sched, np.minimum(1, 5 * exact))


def test_sampler_may_return_hits_or_class_counts():
    guess = np.array([[0, 2], [1, 1]])
    counts = np.array([[[5, 0, 0], [1, 1, 3]], [[0, 5, 0], [2, 2, 1]]])
    np.testing.assert_array_equal(fresh_hits(lambda m, g: counts, 5, guess), [[5, 3], [5, 2]])
    np.testing.assert_array_equal(
        fresh_hits(lambda m, g: counts[..., 0], 5, guess), [[5, 1], [0, 2]]
    )


def test_certified_set_only_grows_and_repr():
    rng = np.random.default_rng(3)
    p = np.r_[np.full(500, 0.999), np.linspace(0.5, 0.95, 100)]
    seen = []

    def sample(m, g):
        seen.append(m)
        return rng.binomial(m, p)

    cert = sequential_segcertify(
        np.zeros(p.size, int), sample, tau=0.75, alpha=0.01, looks=[30, 50, 80, 120], settle=0
    )
    certified = [h[1] for h in cert.history]
    assert certified == sorted(certified)
    assert sum(seen) == cert.n == cert.history[-1][0]
    assert cert.stopped in ("settled", "budget")
    assert cert.labels[cert.reject].tolist() == [0] * cert.n_certified
    assert "SequentialCertificate(method='holm'" in repr(cert) and "bound='mixture'" in repr(cert)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="hochberg"), "method must be one of"),
        (dict(bound="betting"), "bound"),
        (dict(looks=[20, 10]), "looks must be strictly increasing"),
        (dict(looks=[]), "looks"),
        (dict(settle=1.5), "settle"),
        (dict(futility=0), "futility"),
        (dict(prior=(1.0, -1.0)), "prior"),
        (dict(prior=(1.0, 1.0, 1.0)), "prior"),
        (dict(tau=0.3), "tau"),
        (dict(alpha=2), "alpha"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    args = dict(tau=0.75, alpha=0.01, looks=[10, 20])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sequential_segcertify([1, 1], lambda m, g: np.array([m, m]), **args)


@pytest.mark.parametrize(
    ("sampler", "match"),
    [
        (lambda m, g: np.array([m + 1, 0]), "outside"),
        (lambda m, g: np.array([m]), "shape"),
        (lambda m, g: np.array([[m, 1], [0, m]]), "sum to m"),
        ("not callable", "callable"),
    ],
)
def test_bad_samplers_are_refused(sampler, match):
    with pytest.raises(ValueError, match=match):
        sequential_segcertify([1, 1], sampler, tau=0.75, alpha=0.01, looks=[10])


def test_schedule_bound_needs_looks():
    with pytest.raises(ValueError, match="looks"):
        anytime_pvalues([3], 5, 0.75, bound="schedule")


@pytest.mark.parametrize("bound", ["exact", "mixture", "schedule"])
@pytest.mark.parametrize(
    ("N", "tau", "alpha"), [(256 * 512, 0.75, 1e-3), (100, 0.95, 0.1), (1, 0.5, 0.3)]
)
def test_certification_floor_is_the_first_n_where_anything_certifies(bound, N, tau, alpha):
    f = certification_floor(N, tau, alpha, bound=bound, looks=8)

    def smallest_p(n):
        if bound == "exact":
            return float(binom_test(n, n, tau))
        return float(anytime_pvalues([n], n, tau, bound=bound, looks=8)[0])

    assert smallest_p(f) <= alpha / N
    assert f == 1 or smallest_p(f - 1) > alpha / N
