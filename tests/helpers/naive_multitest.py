"""Slow reference implementations of the multiple-testing procedures.

Written from the definitions (critical values, step-down / step-up rules,
closed testing), one family at a time with plain Python loops and lists, so
that :mod:`mtcert.stats.multitest` can be checked against something independent of
its kernels.  Adjusted p-values are "the smallest alpha at which the
hypothesis is rejected", written out directly.  Hommel is closed testing with
Simes tests over all subsets: exponential, for m <= 10 only.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction


def _lr_crit(r, m, k, alpha):
    # Lehmann & Romano (2005), Thm 2.2 (1-based rank r).
    return k * alpha / (m + k - max(r, k))


def _lr_coef(r, m, k):
    return m + k - max(r, k)


def naive_adjust(p, method, alpha=0.05, k=1):
    """Return (reject, adjusted) lists in the input order."""
    m = len(p)
    if m == 0:
        return [], []
    order = sorted(range(m), key=lambda i: p[i])
    s = [p[i] for i in order]
    rej_sorted = [False] * m
    adj_sorted = [0.0] * m

    if method in ("bonferroni", "generalized-bonferroni"):
        return (
            [x <= k * alpha / m for x in p],
            [min(1.0, x * m / k) for x in p],
        )
    if method in ("sidak", "generalized-sidak"):
        adj = []
        for x in p:
            if k == 1:
                adj.append(-math.expm1(m * math.log1p(-x)) if x < 1 else 1.0)
            else:  # P(Bin(m, x) >= k), exact rational arithmetic
                q = Fraction(x)
                tail = sum(math.comb(m, j) * q**j * (1 - q) ** (m - j) for j in range(k, m + 1))
                adj.append(float(tail))
        if k == 1:
            crit = 1 - (1 - alpha) ** (1 / m)
            return [x <= crit for x in p], adj
        return [a <= alpha for a in adj], adj

    if method in ("holm", "generalized-holm", "holm-sidak"):
        if method == "holm-sidak":
            crit = [1 - (1 - alpha) ** (1 / (m - i)) for i in range(m)]
            raw = [-math.expm1((m - i) * math.log1p(-s[i])) if s[i] < 1 else 1.0 for i in range(m)]
        else:
            crit = [_lr_crit(i + 1, m, k, alpha) for i in range(m)]
            raw = [s[i] * _lr_coef(i + 1, m, k) / k for i in range(m)]
        for i in range(m):  # step-down: stop at the first acceptance
            if s[i] > crit[i]:
                break
            rej_sorted[i] = True
        for i in range(m):
            adj_sorted[i] = min(1.0, max(raw[: i + 1]))
    elif method in ("hochberg", "generalized-hochberg", "fdr_bh", "fdr_by"):
        if method in ("fdr_bh", "fdr_by"):
            cm = sum(1.0 / j for j in range(1, m + 1)) if method == "fdr_by" else 1.0
            crit = [(i + 1) / m / cm * alpha for i in range(m)]
            raw = [s[i] / ((i + 1) / m / cm) for i in range(m)]
        else:
            crit = [_lr_crit(i + 1, m, k, alpha) for i in range(m)]
            raw = [s[i] * _lr_coef(i + 1, m, k) / k for i in range(m)]
        last = -1  # step-up: reject everything up to the last p below its critical value
        for i in range(m):
            if s[i] <= crit[i]:
                last = i
        for i in range(last + 1):
            rej_sorted[i] = True
        for i in range(m):
            adj_sorted[i] = min(1.0, min(raw[i:]))
    elif method == "hommel":
        if m > 10:
            raise ValueError("naive Hommel enumerates 2^m subsets; m <= 10 only")
        for i in range(m):
            worst = 0.0
            others = [j for j in range(m) if j != i]
            for size in range(m):
                for sub in itertools.combinations(others, size):
                    vals = sorted([s[i]] + [s[j] for j in sub])
                    n = len(vals)
                    simes = min(n * v / (r + 1) for r, v in enumerate(vals))
                    worst = max(worst, simes)
            adj_sorted[i] = min(1.0, worst)
            rej_sorted[i] = adj_sorted[i] <= alpha
    else:
        raise ValueError(f"no naive reference for {method!r}")

    reject = [False] * m
    adjusted = [0.0] * m
    for pos, i in enumerate(order):
        reject[i] = rej_sorted[pos]
        adjusted[i] = adj_sorted[pos]
    return reject, adjusted
