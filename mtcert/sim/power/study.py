"""A power study as a job: run a preset or an ad-hoc grid, write its CSV and figures.

:func:`power_study` is what ``python -m mtcert power`` and the main job call;
it validates everything and checks the output folder before simulating, and
never overwrites an earlier study's files unless asked to.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mtcert._files import output_folder, output_name
from mtcert.sim.power.figures import preset_title, settings_title
from mtcert.sim.power.grid import expand_grid
from mtcert.stats.validation import check_option, check_positive_int

__all__ = ["FIGURE_FORMATS", "MAX_ROWS", "Study", "power_study"]

#: Figure formats a study can write.
FIGURE_FORMATS = ("png", "pdf", "svg")
#: At most this many (grid point, method) rows per study.
MAX_ROWS = 1_000_000


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
        raise ValueError(f"the grid has {rows} rows (points x methods); at most {MAX_ROWS}")


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
    Raises ``ValueError`` on bad input; a missing matplotlib only skips the
    figure, with a note on stderr.
    """
    from mtcert.sim import power

    if (preset is None) == (grid is None):
        raise ValueError("give either a preset or a grid")
    formats = list(dict.fromkeys(check_option(f, "formats", FIGURE_FORMATS) for f in formats))
    if plot and not formats:
        raise ValueError(f"formats must name at least one of {', '.join(FIGURE_FORMATS)}")
    formats = formats if plot else []
    if preset is not None:
        if preset not in power.PRESETS:
            raise ValueError(f"preset must be one of {', '.join(power.PRESETS)}; got {preset!r}")
        spec = power.PRESETS[preset]
        kwargs, x, default_name = dict(spec.grid), spec.x, preset
        reps = spec.reps if reps is None else reps
        smoothed = spec.smooth or smooth
    else:
        kwargs = dict(grid)
        x = "N" if len(kwargs["N"]) > len(kwargs["gamma"]) else "gamma"
        default_name, smoothed = "power", smooth
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
    title = settings_title(df, x) if preset is None else preset_title(df, preset)
    study = Study(name, df, x, y, title, [csv])
    if formats:
        try:
            from mtcert.plotting import plot_power, save_figure

            fig = plot_power(df, x=x, y=y, title=title, errorbars=errorbars)
        except ImportError as exc:
            print(f"note: figure skipped ({exc}); the CSV is complete", file=sys.stderr)
            return study
        paths = save_figure(fig, folder / name, formats=formats)
        study.files.extend(paths)
        print(f"{name}: figure -> {', '.join(map(str, paths))}")
    return study
