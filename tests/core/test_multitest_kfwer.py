"""Monte-Carlo checks of k-FWER control under adversarial dependence.

A known trap: the paper authors' released code used the step-down
critical values k*alpha/(m - i) (0-based i >= k) instead of Lehmann & Romano's
k*alpha/(m + k - i) (1-based i > k).  The joint laws below keep every true-null
p-value exactly U(0, 1) but couple them so that, with some probability, just
enough nulls sit just under a procedure's critical values:

* ``x_c[j]`` randomly chosen nulls are placed uniformly in the interval
  I_j = (b_{j-1}, b_j] between consecutive critical values, with probability
  ``pi_c`` for configuration c;
* every other null is drawn from the residual density (1 - u_j) / q on I_j
  (1 above b_J), where u_j = sum_c pi_c x_c[j] / (m0 |I_j|); the budget
  ``sum_c pi_c x_c[j] <= m0 |I_j|`` makes this a density and the mixture is
  exactly uniform for every null.

With the false nulls ranked first (p = 0), the intervals are placed at the
critical values of ranks m1 + 1, ..., m1 + k.  Aimed at Lehmann–Romano's values
the greedy mixture attains k-FWER = alpha exactly (their bound is tight); aimed
at the permissive values it reaches 5/3 alpha for the permissive procedure.

Every test is seeded (deterministic); tolerances are 4 binomial standard
errors, i.e. a one-sided false-alarm rate of about 3e-5 per check if the seed
were redrawn.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mtcert.stats.multitest import adjust

ALPHA = 0.05
REPS = 40_000
SE = np.sqrt(ALPHA * (1 - ALPHA) / REPS)
TOL = 4 * SE


def lr_critical(m, k, alpha=ALPHA):
    """Lehmann & Romano (2005) Thm 2.2, ranks r = 1..m: k*alpha/(m + k - max(r, k))."""
    r = np.arange(1, m + 1)
    return k * alpha / (m + k - np.maximum(r, k))


def permissive_critical(m, k, alpha=ALPHA):
    """The paper authors' constants: k*alpha/m for 0-based i < k, k*alpha/(m - i) for i >= k."""
    i = np.arange(m)
    return np.where(i < k, k * alpha / m, k * alpha / (m - np.maximum(i, k)))


def step_down_false_rejections(p, crit, is_null):
    """Count false rejections of the step-down procedure with critical values ``crit``."""
    order = np.argsort(p, axis=1, kind="stable")
    s = np.take_along_axis(p, order, axis=1)
    reject_sorted = np.cumprod(s <= crit, axis=1).astype(bool)
    return (reject_sorted & np.take_along_axis(is_null, order, axis=1)).sum(axis=1)


def greedy_mixture(edges, m0):
    """Configurations (x_1, x_2, x_3) = (1,1,1), (2,0,1), (3,0,0) and their greedy
    probabilities within the budgets m0 |I_j| (k = 3: prefix counts >= 1, 2, 3)."""
    budget = m0 * np.diff(edges)
    configs = np.array([[1, 1, 1], [2, 0, 1], [3, 0, 0]])
    p1 = min(budget)
    p2 = min((budget[0] - p1) / 2, budget[2] - p1)
    p3 = (budget[0] - p1 - 2 * p2) / 3
    return configs, np.array([p1, p2, p3])


def adversarial_nulls(rng, reps, m0, edges, configs, probs):
    """``reps`` draws of m0 null p-values, each exactly U(0, 1) (see module docstring)."""
    edges = np.asarray(edges, dtype=float)
    widths = np.diff(edges)
    used = (probs[:, None] * configs).sum(axis=0) / (m0 * widths)
    assert np.all(used <= 1 + 1e-12), "configuration exceeds an interval's budget"
    # residual segments: I_1..I_J with weight (1 - u_j)|I_j|, then (b_J, 1]
    lo = np.append(edges[:-1], edges[-1])
    hi = np.append(edges[1:], 1.0)
    weight = np.append(np.clip(1 - used, 0, None) * widths, 1 - edges[-1])

    which = rng.choice(len(probs) + 1, size=reps, p=np.append(probs, 1 - probs.sum()))
    label = np.full((reps, m0), -1)  # -1: residual, j: interval I_{j+1}
    for c, x in enumerate(configs):
        rows = which == c
        row_labels = np.concatenate([np.full(n, j) for j, n in enumerate(x)])
        label[rows, : row_labels.size] = row_labels
    label = rng.permuted(label, axis=1)  # which nulls get placed: uniformly at random

    u = rng.random((reps, m0))
    seg = np.where(label >= 0, label, 0)
    p = edges[seg] + u * widths[seg]
    res = label < 0
    seg_r = rng.choice(weight.size, size=int(res.sum()), p=weight / weight.sum())
    p[res] = lo[seg_r] + u[res] * (hi[seg_r] - lo[seg_r])
    return p


def scenario(seed, m, m0, k, crit_of):
    """False nulls (p = 0) ranked first; intervals at the critical values of ranks m1+1..m1+k."""
    m1 = m - m0
    crit = crit_of(m, k)
    edges = np.concatenate([[0.0], crit[m1 : m1 + k]])
    configs, probs = greedy_mixture(edges, m0)
    rng = np.random.default_rng(seed)
    nulls = adversarial_nulls(rng, REPS, m0, edges, configs, probs)
    p = np.concatenate([np.zeros((REPS, m1)), nulls], axis=1)
    is_null = np.zeros(p.shape, dtype=bool)
    is_null[:, m1:] = True
    return p, is_null, probs.sum()


def lr_kfwer(p, is_null, k):
    res = adjust(p, "generalized-holm", alpha=ALPHA, k=k, axis=1)
    return np.mean((res.reject & is_null).sum(axis=1) >= k)


def test_adversarial_law_has_uniform_null_marginals():
    p, _, _ = scenario(1, m=20, m0=5, k=3, crit_of=permissive_critical)
    for col in range(15, 20):
        assert stats.kstest(p[:, col], "uniform").pvalue > 1e-3


def test_generalized_holm_tight_without_false_nulls():
    """All m nulls: with prob alpha, k random nulls fall in [0, k alpha / m]."""
    m, k = 10, 3
    rng = np.random.default_rng(2)
    edges = np.array([0.0, k * ALPHA / m])
    p = adversarial_nulls(rng, REPS, m, edges, np.array([[k]]), np.array([ALPHA]))
    rate = lr_kfwer(p, np.ones_like(p, dtype=bool), k)
    assert abs(rate - ALPHA) <= TOL  # attains alpha: the construction has teeth


@pytest.mark.parametrize("seed", [3, 4])
def test_generalized_holm_controls_kfwer_with_false_nulls_first(seed):
    m, m0, k = 20, 5, 3
    # aimed at Lehmann-Romano's own critical values: tight, k-FWER = alpha exactly
    p, is_null, target = scenario(seed, m, m0, k, lr_critical)
    assert target == pytest.approx(ALPHA)
    rate = lr_kfwer(p, is_null, k)
    assert rate <= ALPHA + TOL
    assert rate >= ALPHA - TOL
    # our kernel and the plain step-down with LR constants agree on every draw
    plain = step_down_false_rejections(p, lr_critical(m, k), is_null) >= k
    assert np.mean(plain) == rate
    # aimed at the permissive values: Lehmann-Romano still holds
    p, is_null, _ = scenario(seed + 10, m, m0, k, permissive_critical)
    assert lr_kfwer(p, is_null, k) <= ALPHA + TOL


def test_permissive_constants_lose_kfwer_control():
    """The released code's constants k*alpha/(m - i) lose k-FWER control."""
    m, m0, k = 20, 5, 3
    p, is_null, target = scenario(5, m, m0, k, permissive_critical)
    assert target == pytest.approx(5 / 3 * ALPHA)
    rate = np.mean(step_down_false_rejections(p, permissive_critical(m, k), is_null) >= k)
    assert rate > ALPHA + 10 * SE  # measured ~0.083 = 5/3 alpha
    assert rate >= target - TOL
    # and generalized Holm is not the permissive procedure in disguise
    assert lr_kfwer(p, is_null, k) <= ALPHA + TOL


def test_independence_procedures_control_kfwer():
    """Independent U(0, 1) nulls (MTP2 holds): generalized Šidák attains alpha exactly
    (P(Bin(m, c) >= k) = alpha at its critical value c); generalized Hochberg stays <= alpha."""
    m, k = 20, 2
    p = np.random.default_rng(6).random((REPS, m))
    sidak = adjust(p, "generalized-sidak", alpha=ALPHA, k=k, axis=1)
    rate = np.mean(sidak.n_rejected >= k)
    assert abs(rate - ALPHA) <= TOL
    hochberg = adjust(p, "generalized-hochberg", alpha=ALPHA, k=k, axis=1)
    assert np.mean(hochberg.n_rejected >= k) <= ALPHA + TOL
    assert np.all(hochberg.n_rejected >= adjust(p, "generalized-holm", k=k, axis=1).n_rejected)
