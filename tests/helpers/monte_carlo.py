"""Monte Carlo checks of an error rate: Clopper–Pearson intervals of an estimated probability.

Shared by the soundness tests of SEGCERTIFY and of the joint radii: a sound procedure fails
:func:`check_at_most` with probability at most DELTA (its seeds are fixed, so a run is
reproducible).
"""

from __future__ import annotations

from scipy import stats

DELTA = 1e-4


def cp_interval(x, reps, delta=DELTA):
    """One-sided Clopper–Pearson bounds (each at level delta) for x successes in reps."""
    low = stats.beta.ppf(delta, x, reps - x + 1) if x > 0 else 0.0
    high = stats.beta.isf(delta, x + 1, reps - x) if x < reps else 1.0
    return low, high


def check_at_most(x, reps, alpha, label):
    """Assert that the error rate x / reps is not significantly above alpha; return the bounds."""
    low, high = cp_interval(x, reps)
    print(f"{label}: estimate {x / reps:.5f} (CP [{low:.5f}, {high:.5f}]) vs alpha {alpha:.5f}")
    assert low <= alpha, f"{label}: error rate {x / reps:.4g} exceeds alpha={alpha:.4g}"
    return low, high
