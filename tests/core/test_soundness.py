"""Seeded Monte Carlo checks that certificates keep their promise.

Every check estimates an error probability from R independent repetitions
(batched: one ``segcertify_hits(..., axis=-1)`` call certifies all R families)
and asserts that the one-sided Clopper–Pearson *lower* bound at level
DELTA = 1e-4 does not exceed the promised level.  If the true error rate is
<= alpha, such an assertion fails with probability <= 1e-4 (the false-alarm
rate; seeds are fixed, so a run is reproducible).  To show that the checks
can fail, the same simulations are run through deliberately wrong variants
(an off-by-one p-value, reused guessing samples), whose lower bounds must
exceed alpha.

Worst case for SEGCERTIFY: a component whose guessed class has probability
exactly tau is a true null with the largest possible rejection probability,
and alternatives with probability ~1 are rejected first, so that Holm tests
the nulls at the most permissive critical values.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mtcert.certify.cohen import certify
from mtcert.certify.segmentation import segcertify, segcertify_hits
from tests.helpers.monte_carlo import check_at_most, cp_interval

N_TEST, TAU = 100, 0.75


def table(n, tau):
    return stats.binom.sf(np.arange(n + 1) - 1, n, tau)


def level_for(target, scale):
    """alpha = scale * table[j] for the table entry that puts alpha near ``target``.

    Choosing alpha on the lattice of attainable p-values makes the discrete
    test (almost) exact, so the Monte Carlo checks are close to tight.
    """
    tab = table(N_TEST, TAU)
    j = int(np.argmin(np.abs(np.log(scale * tab[1:] / target)))) + 1
    return scale * tab[j]


def simulate_worst_case(rng, reps, m0, m1, p_alt=0.999):
    """Hits for m0 nulls at p = tau and m1 alternatives at p_alt, shape (reps, m0 + m1)."""
    null = rng.binomial(N_TEST, TAU, size=(reps, m0))
    alt = rng.binomial(N_TEST, p_alt, size=(reps, m1))
    return np.concatenate([null, alt], axis=1)


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_fwer_worst_case_half_nulls_at_tau(method):
    rng = np.random.default_rng(20210701)
    reps, m0 = 60_000, 10
    m = 2 * m0
    # Holm: after the m1 alternatives the nulls meet alpha / m0, so alpha = m0 * table[j]
    # is the tightest case; Bonferroni always uses alpha / m
    alpha = level_for(0.05, m0 if method == "holm" else m)
    hits = simulate_worst_case(rng, reps, m0, m0)
    guess = np.zeros_like(hits)
    cert = segcertify_hits(guess, hits, N_TEST, tau=TAU, alpha=alpha, method=method, axis=-1)
    false_cert = cert.reject[:, :m0].any(axis=1)
    low, high = check_at_most(int(false_cert.sum()), reps, alpha, f"FWER {method}")
    # tight enough to notice a real violation: exact value of the union of the
    # m0 independent null events at this alpha
    crit = alpha / m0 if method == "holm" else alpha / m
    p_one = table(N_TEST, TAU)[table(N_TEST, TAU) <= crit * (1 + 1e-12)].max()
    exact = 1 - (1 - p_one) ** m0
    assert low <= exact <= high
    assert cert.reject[:, m0:].mean() > 0.99  # alternatives are certified: worst case reached
    # the checker has power: an off-by-one p-value, P(X > hits) instead of
    # P(X >= hits), is caught on the same simulated data
    wrong = segcertify_hits(
        guess, np.minimum(hits + 1, N_TEST), N_TEST, tau=TAU, alpha=alpha, method=method, axis=-1
    )
    x_wrong = int(wrong.reject[:, :m0].any(axis=1).sum())
    assert cp_interval(x_wrong, reps)[0] > alpha


@pytest.mark.parametrize("method", ["generalized-holm", "generalized-bonferroni"])
@pytest.mark.parametrize("dependent", [False, True])
def test_kfwer_worst_case(method, dependent):
    """P(>= k false certifications) <= alpha, independent nulls and nulls in
    blocks of k identical copies (the dependence that makes k errors come together)."""
    rng = np.random.default_rng(1979 + dependent)
    reps, m0, k = 60_000, 12, 3
    m = 2 * m0
    # generalized Holm meets the nulls at k alpha / (m0 + k - 1) after the alternatives
    alpha = level_for(0.05, (m0 + k - 1) / k if method == "generalized-holm" else m / k)
    hits = simulate_worst_case(rng, reps, m0, m0)
    if dependent:
        hits[:, :m0] = np.repeat(hits[:, : m0 // k], k, axis=1)
    cert = segcertify_hits(
        np.zeros_like(hits), hits, N_TEST, tau=TAU, alpha=alpha, method=method, k=k, axis=-1
    )
    n_false = cert.reject[:, :m0].sum(axis=1)
    label = f"{k}-FWER {method} ({'blocks of k copies' if dependent else 'independent'})"
    check_at_most(int((n_false >= k).sum()), reps, alpha, label)


def test_selection_bias_when_guessing_and_testing_reuse_samples():
    """Reusing the testing samples to guess inflates the FWER.

    Each component has two classes with probability 1/2 = tau: every null is
    true.  The guess from the same counts is the class that came up more
    often, so its hits are max(X, n - X) and P(pv <= c) doubles.
    """
    rng = np.random.default_rng(7)
    reps, m, n, tau = 40_000, 10, 100, 0.5
    tab = table(n, tau)
    j = int(np.argmin(np.abs(m * tab - 0.02)))
    alpha = m * tab[j]
    x = rng.binomial(n, 0.5, size=(reps, m))
    counts = np.stack([x, n - x], axis=-1)
    x0 = rng.binomial(10, 0.5, size=(reps, m))
    counts0 = np.stack([x0, 10 - x0], axis=-1)  # independent guessing samples
    sound = segcertify(counts0, counts, tau=tau, alpha=alpha, axis=-1)
    x_sound = int((sound.n_certified > 0).sum())
    check_at_most(x_sound, reps, alpha, "FWER, independent guessing samples")
    # the API refuses the same array ...
    with pytest.raises(ValueError, match="independent"):
        segcertify(counts, counts, tau=tau, alpha=alpha, axis=-1)
    # ... but cannot detect a copy: the certificate then fails about twice as often
    reused = segcertify(counts.copy(), counts, tau=tau, alpha=alpha, axis=-1)
    x_reused = int((reused.n_certified > 0).sum())
    low, high = cp_interval(x_reused, reps)
    print(f"FWER, reused samples: estimate {x_reused / reps:.5f} (CP [{low:.5f}, {high:.5f}])")
    assert low > alpha
    assert low > 1.5 * x_sound / reps


def test_cohen_certify_coverage():
    """CERTIFY's p_lower exceeds the true probability with probability <= alpha."""
    rng = np.random.default_rng(3)
    reps, n, p_true, alpha = 200_000, 100, 0.8, 0.05
    hits = rng.binomial(n, p_true, size=reps)
    res = certify(np.tile([1, 0], (reps, 1)), np.stack([hits, n - hits], axis=-1), alpha=alpha)
    check_at_most(int((res.p_lower > p_true).sum()), reps, alpha, "CERTIFY p_lower > p")
