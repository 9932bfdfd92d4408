"""Two-stage SEGCERTIFY with per-image n from a pilot (mtcert.stored.adaptive).

Soundness: seeded Monte Carlo runs with every component's two classes at
probability 1/2 = tau (whatever the pilot guesses, the null sits exactly at
the bound) and n chosen from the pilot by a data-dependent rule.  The FWER's
one-sided Clopper–Pearson lower bound (level DELTA) must not exceed alpha; a
mutant sampler that replays the pilot's samples as the first testing samples
(the pilot reused in the test) runs the same simulation and must exceed it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mtcert.stored.adaptive import plan_image_n, two_stage_segcertify

DELTA = 1e-4
TAU, N_PILOT, M = 0.5, 10, 4
# Holm at level 4 * P(Bin(20, 1/2) >= 15): the test is (almost) exact at n = 20
ALPHA = M * float(stats.binom.sf(14, 20, TAU))


def cp_bounds(x, reps, delta=DELTA):
    low = stats.beta.ppf(delta, x, reps - x + 1) if x > 0 else 0.0
    high = stats.beta.isf(delta, x + 1, reps - x) if x < reps else 1.0
    return low, high


def choose_n(pilot_hits, n1):
    # any function of the pilot: fewer samples when it looks promising.  At n = 20 and
    # n = 40 the per-test level alpha / 4 sits on (or just above) the binomial lattice
    # (0.0207 and 0.0192), so the check is tight whichever n the rule picks
    return 20 if pilot_hits.sum() >= 24 else 40


def fwer_at_bound(reps, seed, *, replay_pilot):
    rng = np.random.default_rng(seed)
    false = 0
    for _ in range(reps):
        c1 = rng.binomial(N_PILOT, TAU, size=M)
        pilot = np.stack([N_PILOT - c1, c1], axis=-1)

        def sample(m, guess, pilot=pilot):
            x = rng.binomial(m, TAU, size=M)
            counts = np.stack([m - x, x], axis=-1)
            if replay_pilot:  # the bug: the first N_PILOT "fresh" samples are the pilot's
                x = rng.binomial(m - N_PILOT, TAU, size=M)
                counts = pilot + np.stack([m - N_PILOT - x, x], axis=-1)
            return counts

        res = two_stage_segcertify(
            pilot, sample, tau=TAU, alpha=ALPHA, method="holm", choose_n=choose_n
        )
        false += bool(res.certificate.reject.any())
    return false


def test_fwer_at_the_bound_with_n_from_the_pilot():
    reps = 3000
    x = fwer_at_bound(reps, 11, replay_pilot=False)
    low, high = cp_bounds(x, reps)
    print(f"two-stage: FWER {x / reps:.4f} CP [{low:.4f}, {high:.4f}] vs alpha {ALPHA:.4f}")
    assert low <= ALPHA


def test_mutant_reusing_pilot_samples_in_the_test_fails():
    reps = 3000
    x = fwer_at_bound(reps, 11, replay_pilot=True)
    low, _ = cp_bounds(x, reps)
    print(f"mutant: FWER {x / reps:.4f}, CP lower {low:.4f} vs alpha {ALPHA:.4f}")
    assert low > ALPHA


def test_planner_spends_less_on_easy_images():
    rng = np.random.default_rng(0)
    easy = rng.binomial(20, np.r_[np.full(9_700, 0.999), np.full(300, 0.7)])
    hard = rng.binomial(20, np.r_[np.full(6_000, 0.999), rng.uniform(0.7, 1, 4_000)])
    kw = dict(tau=0.75, alpha=0.001, reference_n=100)
    p_easy, p_hard = plan_image_n(easy, 20, **kw), plan_image_n(hard, 20, **kw)
    assert p_easy.n < p_hard.n <= 100
    assert p_easy.reached and p_easy.predicted >= p_easy.target
    # a target no grid n reaches: the budget
    cap = plan_image_n(hard, 20, tau=0.75, alpha=0.001, target=1.0, n_grid=[50, 80])
    assert (cap.n, cap.reached) == (80, False)


def test_testing_samples_are_drawn_after_the_pilot_and_only_those_are_used():
    rng = np.random.default_rng(5)
    p = np.r_[np.full(2000, 0.999), np.full(200, 0.6)]
    calls = []

    def sample(m, guess):
        calls.append((m, guess.copy()))
        return rng.binomial(m, p)  # hits of guess 1

    c1 = rng.binomial(20, p)
    pilot = np.stack([20 - c1, c1], -1)
    res = two_stage_segcertify(pilot, sample, tau=0.75, alpha=0.001, reference_n=100)
    assert len(calls) == 1 and calls[0][0] == res.n == res.certificate.n
    np.testing.assert_array_equal(calls[0][1], np.argmax(pilot, axis=-1))  # the pilot's guess
    assert res.passes == 20 + res.n
    assert "TwoStageCertificate(method='holm'" in repr(res) and f"passes={res.passes}" in repr(res)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), "exactly one of target and reference_n"),
        (dict(target=0.5, reference_n=100), "exactly one"),
        (dict(target=1.5), "target"),
        (dict(reference_n=100, tolerance=-0.1), "tolerance"),
        (dict(reference_n=100, n_grid=[]), "n_grid"),
        (dict(reference_n=0), "reference_n"),
        (dict(target=0.5, tau=1.2), "tau"),
    ],
)
def test_bad_plan_arguments_name_themselves(kwargs, match):
    args = dict(tau=0.75, alpha=0.001)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plan_image_n([20, 19, 20], 20, **args)


def test_bad_pilots_and_rules_are_refused():
    with pytest.raises(ValueError, match="pilot_hits"):
        plan_image_n([21], 20, tau=0.75, alpha=0.01, target=0.5)
    with pytest.raises(ValueError, match="same n1"):
        two_stage_segcertify([[3, 1], [2, 1]], None, tau=0.75, alpha=0.01, target=0.5)
    with pytest.raises(ValueError, match="choose_n"):
        two_stage_segcertify(
            [[3, 1], [2, 2]], lambda m, g: np.zeros(2, int), tau=0.75, alpha=0.01,
            choose_n=lambda h, n1: 0,
        )  # fmt: skip
