"""``python -m mtcert demo``: a small multiple-testing demo on simulated p-values."""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["HELP", "add_arguments", "multitest_demo", "run"]

HELP = "multiple-testing demo on simulated p-values"
#: Largest ``--m``: every method holds several arrays of m numbers.
MAX_M = 10**7
#: Example arguments, listed in the help's epilog.
EXAMPLES = ["", "--m 10000 --alpha 0.01 --seed 1"]


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
    from mtcert.stats.validation import check_positive_int

    m = check_positive_int(m, "--m", maximum=MAX_M)  # sized before anything is allocated
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` sub-command's options to ``parser``."""
    parser.add_argument("--m", type=int, default=10_000, help="number of tests")
    parser.add_argument("--alpha", type=float, default=0.05, help="level")
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def run(args: argparse.Namespace) -> int:
    """Run the ``demo`` sub-command."""
    from mtcert.cli.common import fail

    try:
        print(multitest_demo(m=args.m, alpha=args.alpha, seed=args.seed))
    except ValueError as exc:
        return fail(args.prog, str(exc))
    return 0
