"""The README's main job (``python -m mtcert run``) and the small demos behind it."""

from __future__ import annotations

import numpy as np


def multitest_demo(m: int = 10_000, alpha: float = 0.05, seed: int = 0) -> str:
    """Simulate SEGCERTIFY-style binomial p-values and summarise them.

    Returns a printable summary.
    """
    from mtcert import binom_test

    rng = np.random.default_rng(seed)
    n, tau = 100, 0.75
    p_true = np.where(rng.random(m) < 0.9, 0.9, 0.75)  # 10 % of components exactly at tau
    hits = rng.binomial(n, p_true)
    pvalues = binom_test(hits, n, tau)
    return (
        f"{m} components, n = {n}, tau = {tau}: smallest p-value {pvalues.min():.3g}, "
        f"{int((pvalues <= alpha / m).sum())} pass Bonferroni at alpha = {alpha}"
    )


def main_job() -> int:
    print(multitest_demo())
    return 0
