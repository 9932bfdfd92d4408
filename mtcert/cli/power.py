"""``python -m mtcert power``: run a power-study preset or an ad-hoc grid.

Examples
--------
Reproduce the paper's Fig. 2a (CSV + PNG under ``results/``)::

    python -m mtcert power --preset fig2a

An ad-hoc grid (ranges are ``start:stop:step`` with ``stop`` included, lists are
comma-separated)::

    python -m mtcert power --method segcertify-holm,segcertify-bonferroni \\
        --gamma 0:0.1:0.01 --N 100 --n0 1000 --n 1000 --alpha 0.001 --tau 0.75

The work is done by :func:`power_study`, a plain function that takes values;
:func:`add_arguments` and :func:`run` only translate the command line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from mtcert.cli.common import UsageError, fail, output_folder, output_name, positive_int
from mtcert.stats.validation import check_option, check_positive_int

__all__ = ["HELP", "Study", "add_arguments", "power_study", "run", "save_figure"]

HELP = "power studies on synthetic oracles (paper §6.1, App. B)"

#: Figure formats ``--format`` accepts.
FIGURE_FORMATS = ("png", "pdf", "svg")
#: At most this many values per list or range option (a typo'd step must not hang).
MAX_VALUES = 10_000
#: At most this many components / samples per grid point (memory is O(N) and O(n)).
MAX_SIZE = 10**7
#: At most this many (grid point, method) rows per run.
MAX_ROWS = 1_000_000
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


def ints(text: str, maximum: int | None = None) -> list[int]:
    """Integers, lists or ranges; each at most ``maximum``."""
    values = _numbers(text, _integral)
    too_big = [v for v in values if maximum is not None and v > maximum]
    if too_big:
        raise argparse.ArgumentTypeError(
            f"{too_big[0]} is larger than the maximum {maximum} (memory grows with it)"
        )
    return values


def floats(text: str) -> list[float]:
    """Real numbers, lists or ranges."""
    return _numbers(text, float)


def budgets(text: str) -> list[int | float]:
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
    values = ints(text, MAX_SIZE)
    if len(values) != 1 or values[0] < 1:
        raise argparse.ArgumentTypeError(f"one integer >= 1 expected; got {text!r}")
    return values[0]


def _sizes(text: str) -> list[int]:
    return ints(text, MAX_SIZE)


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
        ("--gamma", floats, "error rate(s) of the good components, in [0, 1]"),
        ("--N", _sizes, f"components (at most {MAX_SIZE})"),
        ("--n-bad", ints, "bad components (error rate 5 gamma), <= N"),
        ("--n0", _sizes, f"guessing samples (at most {MAX_SIZE})"),
        ("--n", _sizes, f"testing samples (at most {MAX_SIZE})"),
        ("--alpha", floats, "level(s) in (0, 1)"),
        ("--tau", floats, "SEGCERTIFY threshold(s) in [0.5, 1)"),
        ("--budget", budgets, "error budget(s) b for k-FWER methods: ints, or fractions of N"),
    ]
    for flag, type_, help_ in spec:
        dest = flag[2:].replace("-", "_")
        grid.add_argument(
            flag, dest=dest, type=type_, default=GRID_DEFAULTS[dest], action=_GridOption,
            help=help_,
        )  # fmt: skip
    grid.add_argument("--k", nargs="?", action=_Renamed, help=argparse.SUPPRESS)


@dataclass
class Study:
    """A finished power study: its name, data and how to plot it."""

    name: str
    df: pd.DataFrame
    x: str
    y: str
    title: str | None
    files: list[Path]


def _check_rows(scenarios: Sequence[Any]) -> None:
    rows = sum(len(sc.evaluations) for sc in scenarios)
    if rows > MAX_ROWS:
        raise UsageError(f"the grid has {rows} rows (points x methods); at most {MAX_ROWS}")


def save_figure(fig: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """Save ``fig`` as ``stem.<format>`` for every format; close it; return the paths."""
    import matplotlib.pyplot as plt

    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths


def power_study(
    *,
    out: str | Path = "results",
    preset: str | None = None,
    grid: dict[str, Any] | None = None,
    name: str | None = None,
    reps: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    backend: str = "threads",
    smooth: bool = False,
    plot: bool = True,
    formats: Sequence[str] = ("png",),
    errorbars: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> Study:
    """Run a preset or an ad-hoc grid, write ``<out>/<name>.csv`` and its figure(s).

    Everything is validated and the output folder created before simulating.
    Raises :class:`~mtcert.cli.common.UsageError` (or ``ValueError``) on bad
    input; a missing matplotlib only skips the figure, with a note on stderr.
    """
    from mtcert.sim import power
    from mtcert.sim.power.grid import expand_grid

    if (preset is None) == (grid is None):
        raise UsageError("give either a preset or a grid")
    formats = figure_formats(",".join(formats)) if plot else []
    if preset is not None:
        if preset not in power.PRESETS:
            raise UsageError(f"preset must be one of {', '.join(power.PRESETS)}; got {preset!r}")
        spec = power.PRESETS[preset]
        kwargs, x, default_name = dict(spec.grid), spec.x, preset
        reps = spec.reps if reps is None else reps
        smoothed, title = spec.smooth or smooth, f"{preset}: {spec.title}"
    else:
        kwargs = dict(grid)
        x = "N" if len(kwargs["N"]) > len(kwargs["gamma"]) else "gamma"
        default_name, smoothed, title = "power", smooth, None
        reps = 100 if reps is None else reps
    _check_rows(expand_grid(**kwargs, reps=reps, seed=seed))
    if workers is not None:
        check_positive_int(workers, "workers")
    check_option(backend, "backend", power.BACKENDS)
    folder = output_folder(out)
    suffixes = (".csv", *(f".{f}" for f in FIGURE_FORMATS))
    name = output_name(folder, name, default_name, suffixes, overwrite=overwrite)

    t0 = time.perf_counter()
    df = power.run_grid(
        **kwargs, reps=reps, seed=seed, workers=workers, backend=backend, progress=progress
    )
    if smoothed:
        df = power.smooth(df, x=x)
    seconds = time.perf_counter() - t0
    csv = folder / f"{name}.csv"
    df.to_csv(csv, index=False)
    print(f"{name}: {len(df)} rows in {seconds:.1f} s -> {csv}")
    y = "certified_rate_smoothed" if smoothed else "certified_rate"
    study = Study(name, df, x, y, title, [csv])
    if formats:
        try:
            from mtcert.plotting import plot_power

            fig = plot_power(df, x=x, y=y, title=title, errorbars=errorbars)
        except ImportError as exc:
            print(f"note: figure skipped ({exc}); the CSV is complete", file=sys.stderr)
            return study
        paths = save_figure(fig, folder / name, formats)
        study.files.extend(paths)
        print(f"{name}: figure -> {', '.join(map(str, paths))}")
    return study


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
