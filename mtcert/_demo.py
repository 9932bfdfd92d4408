"""The README's main job (``python -m mtcert run``) and the small demo behind ``demo``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def multitest_demo(m: int = 10_000, alpha: float = 0.05, seed: int = 0) -> str:
    """SEGCERTIFY-style p-values for ``m`` components, corrected by several procedures.

    A tenth of the components sit exactly at the null boundary p = tau (their
    rejections are false); the rest are robust at p = 0.9.  Returns a printable
    table of rejections and false rejections per method.

    Examples
    --------
    >>> print(multitest_demo(m=1000, seed=1).splitlines()[0])
    1000 components, n = 100 samples, tau = 0.75, alpha = 0.05: 92 true nulls
    """
    from mtcert import adjust, binom_test

    rng = np.random.default_rng(seed)
    n, tau = 100, 0.75
    null = rng.random(m) < 0.1
    hits = rng.binomial(n, np.where(null, tau, 0.9))
    pvalues = binom_test(hits, n, tau)
    lines = [
        f"{m} components, n = {n} samples, tau = {tau}, alpha = {alpha}: "
        f"{int(null.sum())} true nulls",
        f"{'method':<24}{'rejected':>10}{'false':>8}",
    ]
    for method, k in [
        ("bonferroni", 1),
        ("holm", 1),
        ("hommel", 1),
        ("generalized-holm", 5),
        ("fdr_bh", 1),
    ]:
        res = adjust(pvalues, method, alpha=alpha, k=k)
        label = method if k == 1 else f"{method} (k={k})"
        lines.append(f"{label:<24}{res.n_rejected:>10}{int((res.reject & null).sum()):>8}")
    return "\n".join(lines)


def main_job(out: str | Path = "results") -> int:
    """Fig. 2 power studies, then (with torch installed) a certified segmentation demo."""
    from mtcert._power_cli import run_main_job

    print(multitest_demo())
    print()
    code = run_main_job(out=str(out))
    if code:
        return code
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed: skipping the certified-segmentation demo")
        return 0
    from mtcert_torch.demo import run_demo

    return run_demo(Path(out) / "segmentation")
