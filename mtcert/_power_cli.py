"""``python -m mtcert power``: run a power-study preset or an ad-hoc grid.

Examples
--------
Reproduce the paper's Fig. 2a (CSV + PNG under ``results/``)::

    python -m mtcert power --preset fig2a

An ad-hoc grid (ranges are ``start:stop:step`` with ``stop`` included, lists are
comma-separated)::

    python -m mtcert power --method segcertify-holm,segcertify-bonferroni \\
        --gamma 0:0.1:0.01 --N 100 --n0 1000 --n 1000 --alpha 0.001 --tau 0.75
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mtcert.cli import command

__all__ = ["add_arguments", "run", "run_main_job"]

MAIN_JOB_PRESETS = ("fig2a", "fig2b", "fig2c")


def _numbers(text: str, cast):
    """Parse ``"a,b,c"`` or ``"start:stop:step"`` (stop included) into a list."""
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                start, stop, step = (Decimal(v) for v in part.split(":"))
                if step <= 0 or stop < start:
                    raise argparse.ArgumentTypeError(
                        f"range {part!r} needs start <= stop and step > 0"
                    )
                value = start
                while value <= stop:  # Decimal: no floating drift at the end point
                    out.append(cast(value))
                    value += step
            else:
                out.append(cast(Decimal(part)))
        except (InvalidOperation, ValueError):
            raise argparse.ArgumentTypeError(f"not a number or range: {part!r}") from None
    return out


def _ints(text):
    def cast(d):
        if d != d.to_integral_value():
            raise ValueError
        return int(d)

    return _numbers(text, cast)


def _floats(text):
    return _numbers(text, float)


def _budgets(text):
    return _numbers(text, lambda d: int(d) if d == d.to_integral_value() else float(d))


def _methods(text):
    return [m.strip() for m in text.split(",") if m.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``power`` sub-command's options to ``parser``."""
    from mtcert.power import PRESETS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "presets:\n"
        + "\n".join(f"  {p.name:6s} {p.title}  [{p.paper}]" for p in PRESETS.values())
        + "\n\nWithout --preset, the grid options define an ad-hoc grid; ranges are "
        "start:stop:step (stop included), lists comma-separated."
    )
    parser.add_argument("--preset", choices=list(PRESETS), help="a paper figure to reproduce")
    parser.add_argument("--reps", type=int, help="repetitions per grid point (default: preset's)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument(
        "--workers", type=int, help="local worker processes (default: all cores; 1 = serial)"
    )
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument(
        "--smooth",
        action="store_true",
        help="add the Savitzky-Golay-smoothed curve (paper App. B.1) and plot it",
    )
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grid = parser.add_argument_group("ad-hoc grid (ignored with --preset)")
    grid.add_argument(
        "--method",
        type=_methods,
        default=["segcertify-holm", "segcertify-bonferroni"],
        help="comma-separated: jointclass, indivclass, segcertify-<adjust method> "
        "(default: segcertify-holm,segcertify-bonferroni)",
    )
    grid.add_argument("--gamma", type=_floats, default=[0.05], help="error rate(s) (default 0.05)")
    grid.add_argument("--N", type=_ints, default=[100], help="components (default 100)")
    grid.add_argument("--k", type=_ints, default=[0], help="bad components (default 0)")
    grid.add_argument("--n0", type=_ints, default=[100], help="guessing samples (default 100)")
    grid.add_argument("--n", type=_ints, default=[100], help="testing samples (default 100)")
    grid.add_argument("--alpha", type=_floats, default=[0.001], help="level(s) (default 0.001)")
    grid.add_argument("--tau", type=_floats, default=[0.75], help="threshold(s) (default 0.75)")
    grid.add_argument(
        "--budget",
        type=_budgets,
        default=[0],
        help="error budget(s) b for k-FWER methods: ints, or fractions of N (default 0)",
    )
    grid.add_argument("--name", default="power", help="output base name (default: power)")


def _pick_x(args) -> str:
    return "N" if len(args.N) > len(args.gamma) else "gamma"


def run(args) -> int:
    """Run the ``power`` sub-command; returns the exit code."""
    return _run(args)


def _run(args, executor=None) -> int:
    from mtcert import power

    out = Path(args.out)
    progress = not args.no_progress
    t0 = time.perf_counter()
    try:
        if args.preset:
            name = args.preset
            preset = power.PRESETS[name]
            df = power.run_preset(
                name,
                reps=args.reps,
                seed=args.seed,
                executor=executor,
                workers=args.workers,
                progress=progress,
            )
            x = preset.x
            smoothed = preset.smooth or args.smooth
            if args.smooth and not preset.smooth:
                df = power.smooth(df, x=x)
        else:
            name = args.name
            x = _pick_x(args)
            df = power.run_grid(
                args.method,
                gamma=args.gamma,
                N=args.N,
                k=args.k,
                n0=args.n0,
                n=args.n,
                alpha=args.alpha,
                tau=args.tau,
                budget=args.budget,
                reps=100 if args.reps is None else args.reps,
                seed=args.seed,
                executor=executor,
                workers=args.workers,
                progress=progress,
            )
            smoothed = args.smooth
            if smoothed:
                df = power.smooth(df, x=x)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{name}.csv"
    df.to_csv(csv, index=False)
    print(f"{name}: {len(df)} rows in {seconds:.1f} s -> {csv}")
    if not args.no_plot:
        try:
            from mtcert.plotting import plot_power
        except ImportError as exc:  # pragma: no cover - only without matplotlib
            print(f"no plot: {exc}", file=sys.stderr)
            return 0
        png = out / f"{name}.png"
        y = "certified_rate_smoothed" if smoothed else "certified_rate"
        title = f"{name}: {power.PRESETS[name].title}" if args.preset else None
        fig = plot_power(df, x=x, y=y, title=title)
        fig.savefig(png, dpi=120)
        _close(fig)
        print(f"{name}: figure -> {png}")
    return 0


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def run_main_job(out: str = "results") -> int:
    """Run the paper's Fig. 2 presets (fig2a, fig2b, fig2c) on default settings.

    Writes ``<out>/<preset>.csv`` and ``<out>/<preset>.png`` for each and prints
    where they are.  Returns 0 on success.
    """
    import contextlib
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mtcert.power import _mp_context

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    code = 0
    workers = os.cpu_count() or 1
    # One process pool for all presets: its start-up is paid once.
    pool = (
        ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
        if workers > 1
        else contextlib.nullcontext()
    )
    with pool as executor:
        for name in MAIN_JOB_PRESETS:
            args = parser.parse_args(["--preset", name, "--out", str(out)])
            code = code or _run(args, executor=executor)
    if code == 0:
        print(f"power study results (CSV + PNG) are in {Path(out).resolve()}")
    return code


command("power", "power studies on synthetic oracles (paper §6.1, App. B)", add_arguments)(run)
