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

__all__ = ["HELP", "add_arguments", "run"]

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
    print("\n".join(plan.report()))
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
