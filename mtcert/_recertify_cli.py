"""``python -m mtcert recertify`` and ``python -m mtcert plan`` (parsers and runners).

Both take plain values and call one library function each
(:func:`mtcert.recertify.recertify` / :func:`~mtcert.recertify.radius_curve`,
:func:`mtcert.planning.plan_samples`); :mod:`mtcert.cli` registers them.

Examples
--------
Re-decide a stored run at 3 τ × 2 α × 3 methods (k = 1, 10 for generalized Holm)::

    python -m mtcert recertify results/segmentation/certify/counts.mtcounts \\
        --tau 0.6,0.75,0.9 --alpha 1e-3,1e-4 \\
        --method holm,bonferroni,generalized-holm --k 1,10 --curve

Plan n from a pilot run at n = 20::

    python -m mtcert plan --pilot pilot/counts.mtcounts --tau 0.75 --alpha 1e-3 \\
        --method holm --target 0.9
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads only when a command runs
    import pandas as pd

__all__ = [
    "PLAN_HELP",
    "RECERTIFY_HELP",
    "add_plan_arguments",
    "add_recertify_arguments",
    "run_plan",
    "run_recertify",
]

RECERTIFY_HELP = "re-decide stored counts at other tau, alpha, method, k (no model needed)"
PLAN_HELP = "plan the number of testing samples n for a target certified rate"


def _list(cast, what: str):
    def parse(text: str) -> list:
        try:
            out = [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a comma-separated list of {what}: {text!r}"
            ) from None
        if not out:
            raise argparse.ArgumentTypeError(f"empty list of {what}")
        return out

    return parse


_floats = _list(float, "numbers")
_ints = _list(int, "integers")
_names = _list(str, "names")


def add_recertify_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m mtcert recertify``."""
    parser.add_argument(
        "counts", nargs="+", metavar="COUNTS",
        help="stored counts of one run each: a .mtcounts file or a folder of per-rank files",
    )  # fmt: skip
    parser.add_argument("--tau", type=_floats, default=[0.75], help="thresholds (default 0.75)")
    parser.add_argument("--alpha", type=_floats, default=[0.001], help="levels (default 0.001)")
    parser.add_argument("--method", type=_names, default=["holm"], help="procedures (default holm)")
    parser.add_argument(
        "--k", type=_ints, default=[1], help="k of the k-FWER methods (default 1; others use 1)"
    )
    parser.add_argument("--out", default="results/recertify", help="output folder")
    parser.add_argument("--name", default="recertify", help="output base name")
    parser.add_argument(
        "--curve", action="store_true",
        help="also certified accuracy against radius (at the first alpha, method, k), CSV + PNG",
    )  # fmt: skip
    parser.add_argument(
        "--curve-tau", type=_floats, help="tau grid of the curve (default 0.5 to 0.99)"
    )
    parser.add_argument("--no-plot", action="store_true", help="write CSV files only")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``df`` (floats to 4 significant digits, NaN as ``-``)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines) + "\n"


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def run_recertify(args) -> int:
    """Run ``recertify``: writes ``<name>.csv`` / ``.md`` (and the radius curve); exit code."""
    from mtcert.recertify import DEFAULT_CURVE_TAU, radius_curve, recertify

    runs = args.counts if len(args.counts) > 1 else args.counts[0]
    out = Path(args.out)
    try:
        df = recertify(runs, tau=args.tau, alpha=args.alpha, method=args.method, k=args.k)
        curve = None
        if args.curve:
            tau = args.curve_tau or DEFAULT_CURVE_TAU
            curve = radius_curve(
                runs, tau=tau, alpha=args.alpha[0], method=args.method[0], k=args.k[0]
            )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        return _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{args.name}.csv", index=False)
    (out / f"{args.name}.md").write_text(markdown_table(df))
    print(markdown_table(df), end="")
    print(
        "Each row is a separate certificate at its own (tau, alpha); rows do not hold jointly.\n"
        f"-> {out / args.name}.csv, {out / args.name}.md"
    )
    if curve is not None:
        curve.to_csv(out / "radius_curve.csv", index=False)
        print(f"radius curve: {len(curve)} points -> {out / 'radius_curve.csv'}")
        if not args.no_plot:
            from mtcert.recertify import plot_radius_curves

            fig = plot_radius_curves(curve)
            fig.savefig(out / "radius_curve.png", dpi=120)
            _close(fig)
            print(f"figure -> {out / 'radius_curve.png'}")
    return 0


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m mtcert plan``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pilot", nargs="+", metavar="COUNTS", help="a pilot run's stored counts")
    src.add_argument(
        "--profile", metavar="FILE", help="p_A values: a .npy file or a text file of numbers"
    )
    src.add_argument("--beta", type=_floats, metavar="A,B", help="p_A ~ Beta(A, B)")
    parser.add_argument("--N", type=int, help="components per family (default: from the profile)")
    parser.add_argument("--tau", type=float, default=0.75, help="threshold (default 0.75)")
    parser.add_argument("--alpha", type=float, default=0.001, help="level (default 0.001)")
    parser.add_argument("--method", default="holm", help="procedure (default holm)")
    parser.add_argument("--k", type=int, default=1, help="k of the k-FWER methods (default 1)")
    parser.add_argument("--n", type=_ints, help="grid of n (default 10 ... 5000)")
    parser.add_argument("--target", type=float, help="target certified rate")
    parser.add_argument("--n0", type=int, help="simulate the guessing stage with n0 samples")
    parser.add_argument("--reps", type=int, default=200, help="simulated families per n")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--items", type=int, help="items of the planned run, for the band (default: pilot's)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=0, help="pilot resamples for the band (default 0)"
    )
    parser.add_argument("--out", default="results/plan", help="output folder")
    parser.add_argument("--name", default="plan", help="output base name")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")


def _profile(args):
    if args.pilot:
        return args.pilot if len(args.pilot) > 1 else args.pilot[0]
    if args.beta:
        from scipy import stats

        if len(args.beta) != 2:
            raise ValueError(f"--beta takes two numbers A,B; got {args.beta}")
        return stats.beta(*args.beta)
    import numpy as np

    path = Path(args.profile)
    return np.load(path) if path.suffix == ".npy" else np.loadtxt(path, ndmin=1)


def run_plan(args) -> int:
    """Run ``plan``: writes ``<name>.csv`` (and ``.png``), prints the smallest n; exit code."""
    from mtcert.planning import DEFAULT_N, plan_samples, plot_plan

    out = Path(args.out)
    try:
        plan = plan_samples(
            _profile(args), N=args.N, tau=args.tau, alpha=args.alpha, method=args.method,
            k=args.k, n=args.n or DEFAULT_N, target=args.target, n0=args.n0, reps=args.reps,
            seed=args.seed, items=args.items, bootstrap=args.bootstrap,
        )  # fmt: skip
    except (ValueError, TypeError, OSError) as exc:
        return _fail(exc)
    out.mkdir(parents=True, exist_ok=True)
    plan.table.to_csv(out / f"{args.name}.csv", index=False)
    print(plan)
    print(markdown_table(plan.table), end="")
    if plan.target is not None:
        found = plan.n_needed if plan.n_needed is not None else "not reached on this grid"
        print(f"smallest n reaching a certified rate of {plan.target:g}: {found}")
    print(f"-> {out / args.name}.csv")
    if not args.no_plot:
        fig = plot_plan(plan)
        fig.savefig(out / f"{args.name}.png", dpi=120)
        _close(fig)
        print(f"figure -> {out / args.name}.png")
    return 0


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
