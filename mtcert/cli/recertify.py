"""``python -m mtcert recertify``: re-decide stored counts (parser and runner).

The runner takes plain values and calls :func:`mtcert.stored.recertification.recertify` and
:func:`~mtcert.stored.recertification.radius_curve`; :mod:`mtcert.cli` registers it (the
sibling command ``plan`` lives in :mod:`mtcert.cli.plan`).

Examples
--------
Re-decide a stored run at 3 τ × 2 α × 3 methods (k = 1, 10 for generalized Holm)::

    python -m mtcert recertify results/segmentation/certify/counts.mtcounts \\
        --tau 0.6,0.75,0.9 --alpha 1e-3,1e-4 \\
        --method holm,bonferroni,generalized-holm --k 1,10 --curve

"""

from __future__ import annotations

import argparse
import sys

from mtcert._files import output_folder, output_name
from mtcert.cli.common import (
    draw_figure,
    fail,
    floats,
    ints,
    markdown_table,
    names,
)

__all__ = ["HELP", "add_arguments", "run"]

HELP = "re-decide stored counts at other tau, alpha, method, k (no model needed)"
#: Example arguments, listed in the help's epilog.
EXAMPLES = [
    "results/segmentation/certify --tau 0.6,0.75,0.9 --method holm,bonferroni",
    "results/cityscapes --alpha 1e-3,1e-4 --method generalized-holm --k 1,10 --curve",
]

_SUFFIXES = (
    ".csv", ".md", "-radius_curve.csv", "-joint_radius_curve.csv", "-radius_curve.png",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m mtcert recertify``."""
    parser.add_argument(
        "counts", nargs="+", metavar="COUNTS",
        help="stored counts of one run each: a .mtcounts file or a folder of per-rank files",
    )  # fmt: skip
    parser.add_argument("--tau", type=floats, default=[0.75], help="thresholds")
    parser.add_argument("--alpha", type=floats, default=[0.001], help="levels")
    parser.add_argument("--method", type=names, default=["holm"], help="procedures")
    parser.add_argument(
        "--k", type=ints, default=[1], help="k of the k-FWER methods (the others use 1)"
    )
    parser.add_argument("--out", default="results/recertify", help="output folder")
    parser.add_argument(
        "--name",
        default=None,
        help="output base name (default: recertify, or recertify-2, ... when taken)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --name")
    parser.add_argument(
        "--curve", action="store_true",
        help="also certified accuracy against radius (at the first alpha, method, k; one "
        "certificate per point) and the joint radius curve (one certificate for all radii), "
        "CSV + PNG",
    )  # fmt: skip
    parser.add_argument(
        "--curve-tau", type=floats, help="tau grid of the curve (default: 0.5 to 0.99)"
    )
    parser.add_argument("--no-plot", action="store_true", help="write CSV files only")
    parser.add_argument(
        "--partial", action="store_true",
        help="also read counts files without their closing frame (a run in progress or cut "
        "short, or a file of format version 1): the items they hold",
    )  # fmt: skip


def run(args) -> int:
    """Run ``recertify``: writes ``<name>.csv`` / ``.md`` (and the radius curve); exit code."""
    from mtcert.certify.guarantees import row_notes
    from mtcert.stored.counts import read_counts
    from mtcert.stored.recertification import (
        DEFAULT_CURVE_TAU,
        family_of,
        joint_radius_curve,
        radius_curve,
        recertify,
    )

    try:
        out = output_folder(args.out)  # before any work: an unwritable --out loses nothing
        output_name(out, args.name, "recertify", _SUFFIXES, overwrite=args.overwrite)
        read = {c: read_counts(c, partial=args.partial) for c in dict.fromkeys(args.counts)}
        for note in (line for counts in read.values() for line in counts.incomplete):
            print(f"{args.prog}: note: {note}", file=sys.stderr)
        runs = read if len(read) > 1 else next(iter(read.values()))
        df = recertify(runs, tau=args.tau, alpha=args.alpha, method=args.method, k=args.k)
        curve = joint = None
        if args.curve:
            tau = args.curve_tau or DEFAULT_CURVE_TAU
            curve = radius_curve(
                runs, tau=tau, alpha=args.alpha[0], method=args.method[0], k=args.k[0]
            )
            joint = joint_radius_curve(runs, tau=tau, alpha=args.alpha[0])
        first = next(iter(read.values()))
        family, items = family_of(first), len(first)
        # taken only now, atomically: runs writing to one --out at once get different names
        name = output_name(
            out, args.name, "recertify", _SUFFIXES, overwrite=args.overwrite, claim=True
        )
    except (ValueError, TypeError, OSError) as exc:
        return fail(args.prog, str(exc))
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(markdown_table(df))
    print(markdown_table(df), end="")
    print(
        "Each row is a separate certificate at its own (tau, alpha, method, k); rows do not "
        "hold jointly (error_rate: FWER, or k-FWER with its k).\n"
        + "\n".join(row_notes(family=family, items=items if len(args.counts) == 1 else None))
        + f"\n-> {out / name}.csv, {out / name}.md"
    )
    if curve is not None:
        curve.to_csv(out / f"{name}-radius_curve.csv", index=False)
        joint.to_csv(out / f"{name}-joint_radius_curve.csv", index=False)
        print(
            f"radius curve: {len(curve)} points, each its own certificate (do not read the "
            f"largest radius per {family} off it) -> {out / name}-radius_curve.csv\n"
            f"joint radius curve: one certificate per {family} for all {len(joint)} points "
            f"(FWER {args.alpha[0]:g} per {family}) -> {out / name}-joint_radius_curve.csv"
        )
        if not args.no_plot:
            import pandas as pd

            from mtcert.stored.recertification import plot_radius_curves

            both = pd.concat([curve, joint], ignore_index=True)
            path = out / f"{name}-radius_curve.png"
            draw_figure(args.prog, lambda: plot_radius_curves(both), path)
    return 0
