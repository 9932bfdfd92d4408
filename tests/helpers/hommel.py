"""References for Hommel (and the other counting methods) on SEGCERTIFY's hits.

Independent of the counting kernel: ``adjust`` on the float p-values of
:func:`mtcert.binom_test`, and Hommel's definition and closed testing with
Simes tests in exact rational arithmetic; plus a generator of hits whose
p-values crowd Hommel's critical values.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

import mtcert.certify.segmentation as certify_mod
from mtcert._kernels.methods import CODES
from mtcert.stats.binomial import binom_test
from mtcert.stats.multitest import adjust


def pvalues_ref(hits, n, tau):
    """The one-sided binomial p-values P(Bin(n, tau) >= hits)."""
    return binom_test(np.asarray(hits, np.int64), n, tau, alternative="greater")


def adjust_reject(hits, n, tau, alpha, method="hommel", axis=None):
    """``adjust``'s decisions on the p-values of ``hits`` (one family, or families along axis)."""
    p = pvalues_ref(hits, n, tau)
    if axis is None:
        return adjust(p.ravel(), method, alpha=alpha).reject.reshape(p.shape)
    moved = np.moveaxis(p, axis, -1)
    return np.moveaxis(adjust(moved, method, alpha=alpha, axis=-1).reject, -1, axis)


def hommel_definition(p, alpha):
    """Hommel (1988) from its definition, in exact rational arithmetic, every j checked.

    With p_(1) <= ... <= p_(m): j* = max{j : p_(m-j+l) > l alpha / j for l = 1..j};
    reject every p <= alpha / j*, or all when no such j exists.
    """
    q = [Fraction(float(x)) for x in np.ravel(p)]
    s = sorted(q)
    m = len(s)
    a = Fraction(alpha)
    js = [j for j in range(1, m + 1) if all(s[m - j + l - 1] > l * a / j for l in range(1, j + 1))]
    if not js:
        return np.ones(m, bool)
    return np.array([x <= a / max(js) for x in q])


def closed_testing(p, alpha):
    """Closed testing with Simes tests over every subset, exact (small m only)."""
    q = [Fraction(float(x)) for x in np.ravel(p)]
    a = Fraction(alpha)
    reject = np.ones(len(q), bool)
    for size in range(1, len(q) + 1):
        for sub in itertools.combinations(range(len(q)), size):
            vals = sorted(q[i] for i in sub)
            if all(v > (r + 1) * a / size for r, v in enumerate(vals)):  # Simes accepts
                reject[list(sub)] = False
    return reject


def stable(p, alpha, rel=Fraction(1, 2**20)):
    """The exact Hommel decisions are the same at alpha (1 -+ rel)."""
    a = Fraction(alpha)
    return np.array_equal(hommel_definition(p, a * (1 - rel)), hommel_definition(p, a * (1 + rel)))


def near_boundary_hits(rng, n, tau, alpha, m):
    """Hits whose p-values crowd the Hommel critical values alpha l / j, heavily tied."""
    p = pvalues_ref(np.arange(n + 1), n, tau)
    near = np.flatnonzero((p >= alpha / (4 * m)) & (p <= 4 * alpha))
    pool = near if near.size else np.arange(n + 1)
    levels = rng.choice(pool, size=min(pool.size, int(rng.integers(1, 9))))
    hits = rng.choice(np.concatenate([levels, [n]]), size=m)
    spread = rng.random(m) < 0.1
    hits[spread] = rng.integers(0, n + 1, size=int(spread.sum()))
    return hits


def fallback_calls(monkeypatch) -> list:
    """Spy on SEGCERTIFY's fallback (``adjust``'s core); the list of method names it gets."""
    calls = []
    real = certify_mod.adjust_families
    names = {code: name for name, code in CODES.items()}

    def spy(*args, **kwargs):
        calls.append(names[args[1]])
        return real(*args, **kwargs)

    monkeypatch.setattr(certify_mod, "adjust_families", spy)
    return calls
