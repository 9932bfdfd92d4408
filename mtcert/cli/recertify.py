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
from pathlib import Path

from mtcert._files import output_folder, output_name
from mtcert.cli.common import (
    draw_figure,
    fail,
    floats,
    ints,
    markdown_table,
    names,
)
from mtcert.stats.methods import FDR_METHODS, FWER_METHODS, KFWER_METHODS

__all__ = ["HELP", "add_arguments", "applicable", "default_out", "run", "too_few_samples"]

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
    parser.add_argument(
        "--tau", type=floats, default=[0.75],
        help="thresholds in [1/2, 1), comma-separated (one row each), e.g. 0.6,0.75,0.9",
    )  # fmt: skip
    parser.add_argument(
        "--alpha", type=floats, default=[0.001],
        help="error levels, comma-separated (one row each), e.g. 1e-3,1e-4",
    )  # fmt: skip
    parser.add_argument(
        "--method", type=names, default=["holm"],
        help=f"procedures, comma-separated (one row each): FWER {', '.join(FWER_METHODS)}; "
        f"k-FWER {', '.join(KFWER_METHODS)}; FDR (no certificate) {', '.join(FDR_METHODS)}",
    )  # fmt: skip
    parser.add_argument(
        "--k", type=ints, default=[1],
        help="k of the k-FWER (generalized-*) methods, comma-separated (one row each): a "
        "certificate allows up to k - 1 false certified components per item at alpha (k = 1: "
        "FWER); the other methods use 1",
    )  # fmt: skip
    parser.add_argument(
        "--out",
        help="output folder (default: recertify/ next to the first COUNTS: beside a "
        ".mtcounts file, inside a folder of counts files)",
    )
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
        if args.out is not None:  # before any work: an unwritable --out loses nothing
            output_name(output_folder(args.out), args.name, "recertify", _SUFFIXES,
                        overwrite=args.overwrite)  # fmt: skip
        read = {c: read_counts(c, partial=args.partial) for c in dict.fromkeys(args.counts)}
        out = output_folder(args.out or default_out(args.counts[0]), "--out")
        output_name(out, args.name, "recertify", _SUFFIXES, overwrite=args.overwrite)
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
    shown = applicable(df)
    (out / f"{name}.md").write_text(markdown_table(shown))
    print(markdown_table(shown), end="")
    for line in too_few_samples(df, read, family):
        print(f"note: {line}")
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


#: Columns of task-specific scores: left out of the printed table where no row has one
#: (ShapeNet-part's instance and class mIoU for an image run).
TASK_COLUMNS = ("pooled_miou", "inst_miou", "class_miou")


def default_out(counts) -> Path:
    """The default ``--out``: ``recertify/`` beside a counts file, inside a folder of them.

    Examples
    --------
    >>> default_out("results/cs/counts.mtcounts").as_posix()
    'results/cs/recertify'
    """
    path = Path(counts)
    return (path if path.is_dir() else path.parent) / "recertify"


def applicable(df):
    """``df`` without the :data:`TASK_COLUMNS` that are empty in every row.

    Examples
    --------
    >>> import pandas as pd
    >>> list(applicable(pd.DataFrame({"acc": [0.5], "inst_miou": [float("nan")]})).columns)
    ['acc']
    """
    return df.drop(columns=[c for c in TASK_COLUMNS if c in df and df[c].isna().all()])


def certification_floor_of(N: int, tau: float, alpha: float, method: str, k: int) -> int:
    """Fewest testing samples at which a family of ``N`` components, each with all of
    its ``n`` hits, certifies anything under ``method`` (found with the method itself).

    Below it every component abstains however good the model: the hits can give no
    smaller p-value (``tau**n``).  Holm's (Bonferroni's) is
    :func:`mtcert.certify.sequential.certification_floor`; the step-up methods (Hochberg,
    Hommel) reject all N equal p-values already at ``alpha``.

    Examples
    --------
    >>> certification_floor_of(256 * 512, 0.75, 0.001, "holm", 1)
    65
    >>> certification_floor_of(256 * 512, 0.75, 0.001, "hochberg", 1)
    25
    """
    import warnings

    import numpy as np

    from mtcert.certify.segmentation import segcertify_hits

    guess = np.zeros(N, np.int64)

    def certifies(n: int) -> bool:
        with warnings.catch_warnings():  # an FDR method warns it is no certificate
            warnings.simplefilter("ignore")
            cert = segcertify_hits(guess, np.full(N, n), n, tau=tau, alpha=alpha, method=method,
                                   k=k)  # fmt: skip
        return bool((cert.labels >= 0).any())

    lo, hi = 0, 1  # certifies(lo) is False, certifies(hi) is searched for
    while not certifies(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # the all-hits p-value tau**n falls with n: monotone
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if certifies(mid) else (mid, hi)
    return hi


def too_few_samples(df, runs: dict, family: str) -> list[str]:
    """One note per setting of ``df`` where every component abstains because the run's n
    is below :func:`certification_floor_of` (``runs``: label -> stored counts)."""
    from mtcert.certify.guarantees import FAMILIES

    noun, part = FAMILIES.get(family, ("item", "component"))
    article = "an" if noun[0] in "aeiou" else "a"
    notes, floors = [], {}
    labels = {str(label): counts for label, counts in runs.items()}
    for row in df.itertuples(index=False):
        if not row.abstain == 1.0:  # NaN (nothing scored) or something certified
            continue
        counts = labels[row.run] if hasattr(row, "run") else next(iter(runs.values()))
        if not len(counts):
            continue
        size = round(counts.components() / len(counts))  # components per item
        key = (size, row.tau, row.alpha, row.method, row.k)
        if key not in floors:
            floors[key] = certification_floor_of(size, row.tau, row.alpha, row.method, row.k)
        if row.n < floors[key]:
            k = f", k = {row.k}" if row.k != 1 else ""
            notes.append(
                (f"{row.run}: " if hasattr(row, "run") else "")
                + f"tau = {row.tau:g}, alpha = {row.alpha:g}, {row.method}{k}: every {part} "
                f"abstains because n = {row.n} < {floors[key]} needed for tau at alpha (below "
                f"it even {article} {noun} of {size} {part}s that all have n hits of n "
                "certifies nothing); store more testing samples, or lower tau or raise alpha"
            )
    return notes
