"""``python -m mtcert power``: run a power-study preset or an ad-hoc grid.

Examples
--------
Reproduce the paper's Fig. 2a (CSV + PNG under ``results/``)::

    python -m mtcert power --preset fig2a

An ad-hoc grid (ranges are ``start:stop:step`` with ``stop`` included, lists are
comma-separated)::

    python -m mtcert power --method segcertify-holm,segcertify-bonferroni \\
        --gamma 0:0.1:0.01 --N 100 --n0 1000 --n 1000 --alpha 0.001 --tau 0.75

The work is done by :func:`mtcert.sim.power.study.power_study`, a plain function
that takes values; :func:`add_arguments` and :func:`run` only translate the
command line.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mtcert.cli.common import fail, positive_int
from mtcert.sim.power.study import FIGURE_FORMATS, power_study

__all__ = ["HELP", "add_arguments", "run"]

HELP = "power studies on synthetic oracles (paper §6.1, App. B)"
#: Example arguments, listed in the help's epilog.
EXAMPLES = [
    "--preset fig2a --out results",
    "--gamma 0:0.1:0.01 --N 1000 --method segcertify-holm --reps 200",
    "--preset fig6a --format pdf,svg",
]

#: At most this many values per list or range option (a typo'd step must not hang).
MAX_VALUES = 10_000
#: At most this many components / samples per grid point (memory is O(N) and O(n)).
MAX_SIZE = 10**7
#: Defaults of the ad-hoc grid, as the command line spells them.
GRID_DEFAULTS = {
    "method": "segcertify-holm,segcertify-bonferroni",
    "gamma": "0.05",
    "N": "100",
    "n_bad": "0",
    "n0": "100",
    "n": "100",
    "alpha": "0.001",
    "tau": "0.75",
    "budget": "0",
}


def _numbers(text: str, cast: Callable[[Decimal], Any]) -> list:
    """Parse ``"a,b,c"`` or ``"start:stop:step"`` (stop included) into a list."""
    out: list = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                start, stop, step = (Decimal(v) for v in part.split(":"))
                if not (step > 0 and stop >= start) or not step.is_finite():
                    raise argparse.ArgumentTypeError(
                        f"range {part!r} needs start <= stop and a finite step > 0"
                    )
                count = math.floor((stop - start) / step) + 1
                if len(out) + count > MAX_VALUES:
                    raise argparse.ArgumentTypeError(
                        f"range {part!r} has {count} values; at most {MAX_VALUES} are allowed"
                    )
                # Decimal: no floating drift at the end point.
                out.extend(cast(start + i * step) for i in range(count))
            else:
                value = Decimal(part)
                if not value.is_finite():
                    raise ValueError
                out.append(cast(value))
        except (InvalidOperation, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"not a number or range: {part!r}") from None
        if len(out) > MAX_VALUES:
            raise argparse.ArgumentTypeError(f"at most {MAX_VALUES} values are allowed")
    return out


def _integral(d: Decimal) -> int:
    if d != d.to_integral_value():
        raise ValueError
    return int(d)


def grid_ints(text: str, maximum: int | None = None) -> list[int]:
    """Integers, lists or ranges; each at most ``maximum``."""
    values = _numbers(text, _integral)
    too_big = [v for v in values if maximum is not None and v > maximum]
    if too_big:
        raise argparse.ArgumentTypeError(
            f"{too_big[0]} is larger than the maximum {maximum} (memory grows with it)"
        )
    return values


def grid_floats(text: str) -> list[float]:
    """Real numbers, lists or ranges."""
    return _numbers(text, float)


def grid_budgets(text: str) -> list[int | float]:
    """Error budgets: ints, or fractions of N."""
    return _numbers(text, lambda d: int(d) if d == d.to_integral_value() else float(d))


def methods(text: str) -> list[str]:
    """A comma-separated list of method names."""
    return [m.strip() for m in text.split(",") if m.strip()]


def figure_formats(text: str) -> list[str]:
    """A comma-separated list of figure formats out of :data:`FIGURE_FORMATS`."""
    out = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in out if f not in FIGURE_FORMATS]
    if bad or not out:
        raise argparse.ArgumentTypeError(
            f"formats must be a comma-separated subset of {','.join(FIGURE_FORMATS)}; got {text!r}"
        )
    return list(dict.fromkeys(out))


def _reps(text: str) -> int:
    values = grid_ints(text, MAX_SIZE)
    if len(values) != 1 or values[0] < 1:
        raise argparse.ArgumentTypeError(f"one integer >= 1 expected; got {text!r}")
    return values[0]


def _sizes(text: str) -> list[int]:
    return grid_ints(text, MAX_SIZE)


class _GridOption(argparse.Action):
    """Store the value and remember that a grid option was given (``--preset`` conflicts)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.grid_options = [*getattr(namespace, "grid_options", []), option_string]


class _Renamed(argparse.Action):
    """An old option spelling: refuse it and name the new one."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(
            f"{option_string} was renamed --n-bad (the number of bad components); "
            "k is reserved for the k-FWER"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``power`` sub-command's options to ``parser``."""
    from mtcert.sim.power import BACKENDS, PRESETS

    parser.epilog = (
        "presets:\n"
        + "\n".join(f"  {p.name:6s} {p.title}  [{p.paper}]" for p in PRESETS.values())
        + "\n\nWithout --preset, the grid options define an ad-hoc grid; ranges are "
        "start:stop:step (stop included), lists comma-separated.\nOutput files are "
        "<out>/<name>.csv and figures; an existing name gets a -2, -3, ... suffix "
        "unless --name/--overwrite say otherwise."
    )
    parser.set_defaults(grid_options=[])
    parser.add_argument(
        "--preset", choices=list(PRESETS), help="a paper figure to reproduce (fixes the grid)"
    )
    parser.add_argument(
        "--reps",
        type=_reps,
        help="repetitions per grid point (None: the preset's, 100 for an ad-hoc grid)",
    )
    parser.add_argument("--seed", type=int, default=0, help="root seed")
    parser.add_argument(
        "--workers", type=positive_int, help="threads or processes (None: all cores; 1 = serial)"
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="threads", help="local parallel back-end"
    )
    parser.add_argument("--out", default="results", help="output folder (created if needed)")
    parser.add_argument(
        "--name",
        help="base name of the output files (None: the preset's name, or 'power')",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files of an existing --name"
    )
    parser.add_argument(
        "--smooth",
        action="store_true",
        help="add the Savitzky-Golay-smoothed curve (paper App. B.1) and plot it",
    )
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument(
        "--format",
        dest="formats",
        type=figure_formats,
        default="png",
        help=f"figure format(s), comma-separated: {','.join(FIGURE_FORMATS)}",
    )
    parser.add_argument(
        "--errorbars", action="store_true", help="shade +-2 standard errors around each curve"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grid = parser.add_argument_group("ad-hoc grid (cannot be combined with --preset)")
    spec = [
        ("--method", methods, "comma-separated: jointclass, indivclass, segcertify-<method>"),
        ("--gamma", grid_floats, "error rate(s) of the good components, in [0, 1]"),
        ("--N", _sizes, f"components (at most {MAX_SIZE})"),
        ("--n-bad", grid_ints, "bad components (error rate 5 gamma), <= N"),
        ("--n0", _sizes, f"guessing samples (at most {MAX_SIZE})"),
        ("--n", _sizes, f"testing samples (at most {MAX_SIZE})"),
        ("--alpha", grid_floats, "level(s) in (0, 1)"),
        ("--tau", grid_floats, "SEGCERTIFY threshold(s) in [0.5, 1)"),
        ("--budget", grid_budgets, "error budget(s) b for k-FWER methods: ints, or fractions of N"),
    ]
    for flag, type_, help_ in spec:
        dest = flag[2:].replace("-", "_")
        grid.add_argument(
            flag, dest=dest, type=type_, default=GRID_DEFAULTS[dest], action=_GridOption,
            help=help_,
        )  # fmt: skip
    grid.add_argument("--k", nargs="?", action=_Renamed, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run the ``power`` sub-command; returns the exit code."""
    if args.preset and args.grid_options:
        return fail(
            args.prog,
            f"--preset {args.preset} fixes the grid; {', '.join(args.grid_options)} cannot be "
            "combined with it (drop --preset for an ad-hoc grid)",
        )
    grid = None
    if not args.preset:
        grid = {key: getattr(args, key) for key in GRID_DEFAULTS}
    try:
        power_study(
            out=args.out,
            preset=args.preset,
            grid=grid,
            name=args.name,
            reps=args.reps,
            seed=args.seed,
            workers=args.workers,
            backend=args.backend,
            smooth=args.smooth,
            plot=not args.no_plot,
            formats=args.formats,
            errorbars=args.errorbars,
            progress=not args.no_progress,
            overwrite=args.overwrite,
        )
    except ValueError as exc:
        return fail(args.prog, str(exc))
    return 0
