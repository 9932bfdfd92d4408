"""``python -m mtcert plan``: the sample-size planner (parser and runner).

The runner takes plain values and calls :func:`mtcert.stored.planning.plan_samples`;
:mod:`mtcert.cli` registers it.

Examples
--------
Plan n from a pilot run at n = 20::

    python -m mtcert plan --pilot pilot/counts.mtcounts --tau 0.75 --alpha 1e-3 \\
        --method holm --target 0.9
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mtcert._files import output_folder, output_name
from mtcert.cli.common import (
    draw_figure,
    fail,
    floats,
    ints,
    markdown_table,
)
from mtcert.stats.methods import FWER_METHODS, KFWER_METHODS

__all__ = ["HELP", "add_arguments", "report", "run"]

HELP = "plan the number of testing samples n for a target certified rate"
#: Example arguments, listed in the help's epilog.
EXAMPLES = [
    "--pilot results/segmentation/certify --tau 0.75 --alpha 1e-3 --target 0.9",
    "--beta 30,1.5 --N 100000 --tau 0.75 --alpha 1e-3 --target 0.9",
]
#: Largest ``--N``: the planner draws families of N components (10**8: several GB).
MAX_COMPONENTS = 10**8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m mtcert plan``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pilot", nargs="+", metavar="COUNTS", help="a pilot run's stored counts")
    src.add_argument(
        "--profile", metavar="FILE", help="p_A values: a .npy file or a text file of numbers"
    )
    src.add_argument("--beta", type=floats, metavar="A,B", help="p_A ~ Beta(A, B)")
    parser.add_argument("--N", type=int, help="components per family (default: from the profile)")
    parser.add_argument("--tau", type=float, default=0.75, help="threshold in [1/2, 1)")
    parser.add_argument("--alpha", type=float, default=0.001, help="error level")
    parser.add_argument(
        "--method", default="holm",
        help=f"procedure, one of {', '.join(FWER_METHODS + KFWER_METHODS)}: the rate is exact "
        "for the Bonferroni-type ones, simulated for the others",
    )  # fmt: skip
    parser.add_argument(
        "--k", type=int, default=1,
        help="k of the k-FWER (generalized-*) methods: up to k - 1 false certified components "
        "per family",
    )  # fmt: skip
    parser.add_argument(
        "--n", type=ints,
        help="grid of n, comma-separated, e.g. 50,100,200 (default: 10 ... 5000, 16 points)",
    )  # fmt: skip
    parser.add_argument("--target", type=float, help="target certified rate")
    parser.add_argument("--n0", type=int, help="simulate the guessing stage with n0 samples")
    parser.add_argument("--reps", type=int, default=200, help="simulated families per n")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument(
        "--items", type=int, help="items of the planned run, for the band (default: pilot's)"
    )
    parser.add_argument("--bootstrap", type=int, default=0, help="pilot resamples for the band")
    parser.add_argument("--out", default="results/plan", help="output folder")
    parser.add_argument(
        "--name", default=None, help="output base name (default: plan, or plan-2, ... when taken)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --name")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument(
        "--partial", action="store_true",
        help="also read pilot counts files without their closing frame (a run in progress or "
        "cut short, or a file of format version 1)",
    )  # fmt: skip


def _profile(args):
    if args.pilot:
        from mtcert.stored.counts import read_counts

        pilot = read_counts(args.pilot, partial=args.partial)  # the files of one run
        for note in pilot.incomplete:
            print(f"{args.prog}: note: {note}", file=sys.stderr)
        return pilot
    if args.beta:
        from scipy import stats

        if len(args.beta) != 2:
            raise ValueError(f"--beta takes two numbers A,B; got {args.beta}")
        return stats.beta(*args.beta)
    import numpy as np

    path = Path(args.profile)
    return np.load(path) if path.suffix == ".npy" else np.loadtxt(path, ndmin=1)


def run(args) -> int:
    """Run ``plan``: writes ``<name>.csv`` (and ``.png``), prints the smallest n; exit code."""
    from mtcert.stats.validation import check_positive_int
    from mtcert.stored.planning import DEFAULT_N, plan_samples, plot_plan

    suffixes = (".csv", ".png")
    try:
        out = output_folder(args.out)  # before any work: an unwritable --out loses nothing
        output_name(out, args.name, "plan", suffixes, overwrite=args.overwrite)
        if args.N is not None:  # families of N components are allocated: refuse absurd sizes
            check_positive_int(args.N, "--N", maximum=MAX_COMPONENTS)
        plan = plan_samples(
            _profile(args), N=args.N, tau=args.tau, alpha=args.alpha, method=args.method,
            k=args.k, n=args.n or DEFAULT_N, target=args.target, n0=args.n0, reps=args.reps,
            seed=args.seed, items=args.items, bootstrap=args.bootstrap,
        )  # fmt: skip
        # taken only now, atomically: runs writing to one --out at once get different names
        name = output_name(out, args.name, "plan", suffixes, overwrite=args.overwrite, claim=True)
    except (ValueError, TypeError, OSError) as exc:
        return fail(args.prog, str(exc))
    plan.table.to_csv(out / f"{name}.csv", index=False)
    print(plan)
    print(markdown_table(plan.table), end="")
    print("\n".join(report(plan)))
    if plan.target is not None:
        if plan.n_needed is not None and not plan.exact:
            lo, hi = plan.n_interval
            print(
                f"  simulated ({plan.reps} families per n, searched between grid points): n in "
                f"{lo}..{'(beyond the grid)' if hi is None else hi} reaches it within "
                "+-2 Monte Carlo standard errors"
                + ("" if plan.n_bound is None else f"; never more than {plan.n_bound}, the exact "
                   "n of its Bonferroni-type counterpart, which it certifies a superset of")
            )  # fmt: skip
    print(f"-> {out / name}.csv")
    if not args.no_plot:
        draw_figure(args.prog, lambda: plot_plan(plan), out / f"{name}.png")
    return 0


def report(plan) -> list[str]:
    """What a :class:`~mtcert.stored.planning.SamplePlan` computed and what it says about
    its target, in lines of text.

    The grid of n (exact or simulated, with how many families); with a target: the
    smallest n reaching it and how it was found (a grid point: the grid point below it
    did not), or, when the grid does not reach it, the rate at the largest n, whether it
    still rises, and where it levels off
    (:attr:`~mtcert.stored.planning.SamplePlan.ceiling`).

    Examples
    --------
    >>> from scipy import stats
    >>> from mtcert.stored.planning import plan_samples
    >>> plan = plan_samples(stats.beta(30, 1.5), N=10_000, tau=0.75, alpha=0.001,
    ...                     method="bonferroni", n=[20, 50, 100, 200], target=0.99)
    >>> print("\\n".join(report(plan)))  # doctest: +NORMALIZE_WHITESPACE
    rates at n = 20, 50, 100, 200 (4 grid points), exact
    smallest n reaching a certified rate of 0.99: not reached on this grid; at the largest
    n = 200 the rate is 0.9013 and still rising (0.5792 at n = 100); as n grows it levels
    off at 0.9995, the share of components with p_A above tau = 0.75: a larger n reaches
    the target (extend the grid)
    """
    grid = [int(v) for v in plan.table["n"]]
    shown = ", ".join(map(str, grid)) if len(grid) <= 8 else (
        f"{', '.join(map(str, grid[:3]))}, ..., {', '.join(map(str, grid[-2:]))}"
    )  # fmt: skip
    how = "exact" if plan.exact else f"simulated, {plan.reps} families of N = {plan.N} per n"
    lines = [f"rates at n = {shown} ({len(grid)} grid points), {how}"]
    if plan.target is None:
        return lines
    head = f"smallest n reaching a certified rate of {plan.target:g}: "
    rates = dict(zip(grid, plan.table["rate"], strict=True))
    if plan.n_needed is None:
        last, rate = grid[-1], rates[grid[-1]]
        se = dict(zip(grid, plan.table["rate_se"], strict=True))
        text = f"not reached on this grid; at the largest n = {last} the rate is {rate:.4g}"
        if rate == 0.0:
            text += ": nothing certifies yet"
        elif len(grid) > 1:
            prev = grid[-2]
            noise = 2.0 * math.hypot(se[last], se[prev])
            rising = rate - rates[prev] > max(noise, 1e-3)
            text += (
                f" and still rising ({rates[prev]:.4g} at n = {prev})" if rising
                else f", level with n = {prev} ({rates[prev]:.4g})"
                + (" within Monte Carlo error" if noise else "")
            )  # fmt: skip
        ceiling = plan.ceiling
        text += (
            f"; as n grows it levels off at {ceiling:.4g}, the share of components with "
            f"p_A above tau = {plan.tau:g}: "
            + ("a larger n reaches the target (extend the grid)" if ceiling >= plan.target
               else "no n reaches the target (lower tau or the target)")
        )  # fmt: skip
        return [*lines, head + text]
    n = plan.n_needed
    if plan.exact:
        below = max((g for g in grid if g < n), default=0)
        text = f"{n} (exact: every n from {below + 1} to the first grid point reaching it checked)"
    elif n in grid:
        below = max((g for g in grid if g < n), default=None)
        text = f"{n}, the smallest simulated grid point reaching it"
        if below is not None:
            text += f" (n = {below} did not: rate {rates[below]:.4g})"
        between = [m for m in plan.searched if (below or 0) < m < n]
        if between:
            text += f"; n = {between[0]}..{between[-1]} simulated in between did not either"
    elif n == plan.n_bound:
        text = (
            f"{n}, the exact n of its Bonferroni-type counterpart, which it certifies a superset of"
        )
    else:
        below = max((g for g in grid if g < n), default=None)
        above = min((g for g in grid if g > n), default=None)
        side = [f"{g} (rate {rates[g]:.4g})" for g in (below, above) if g is not None]
        lo, hi = below or 0, above or math.inf
        more = sum(lo < m < hi for m in plan.searched)
        text = f"{n}, found by simulating {more} more n between the grid points " + " and ".join(
            side
        )
    return [*lines, head + text]
