"""``python -m mtcert run``: the README's main job on built-in defaults.

The core part prints the multiple-testing demo and reproduces the paper's
Fig. 2 power studies (``fig2a``, ``fig2b``, ``fig2c`` and the combined
``fig2``).  Further parts come from installed plugins through the
``mtcert.jobs`` entry-point group: each entry is ``name = "module:function"``,
and ``function(out: pathlib.Path) -> int`` writes its results under
``out = <--out>/<name>`` and returns an exit status.  The core never names a
plugin; ``mtcert_torch`` registers its certified-segmentation demo there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path

from mtcert.cli.common import positive_int

__all__ = [
    "HELP",
    "JOB_GROUP",
    "MAIN_JOB_PRESETS",
    "add_arguments",
    "find_jobs",
    "main_job",
    "run",
    "run_plugin_jobs",
]

HELP = "the main job on built-in defaults (Fig. 2 power studies, plugin demos)"
#: Example arguments, listed in the help's epilog.
EXAMPLES = ["", "--out results --reps 20"]

#: Entry-point group of the main job's plugin parts: name -> callable(out: Path) -> int.
JOB_GROUP = "mtcert.jobs"
MAIN_JOB_PRESETS = ("fig2a", "fig2b", "fig2c")


def find_jobs() -> list[importlib.metadata.EntryPoint]:
    """The installed plugin jobs (entry points of :data:`JOB_GROUP`), sorted by name."""
    return sorted(importlib.metadata.entry_points(group=JOB_GROUP), key=lambda ep: ep.name)


def _load(entry: importlib.metadata.EntryPoint) -> Callable[[Path], int] | None:
    try:
        return entry.load()
    except ImportError as exc:  # the plugin's own dependencies (e.g. torch) are missing
        print(f"skipping the {entry.name!r} job: {exc}")
        return None


def main_job(out: str | Path = "results", *, reps: int | None = None) -> int:
    """Demo table, the Fig. 2 power studies, then every plugin job; returns the exit status."""
    from mtcert.cli.demo import multitest_demo
    from mtcert.sim.power.study import power_study

    out = Path(out)
    print(multitest_demo())
    print()
    studies = [
        power_study(out=out, preset=name, reps=reps, overwrite=True) for name in MAIN_JOB_PRESETS
    ]
    try:
        from mtcert.plotting import save_figure
        from mtcert.sim.power.figures import plot_fig2

        fig = plot_fig2({s.name: s.df for s in studies})
    except ImportError as exc:
        print(f"note: combined figure skipped ({exc})", file=sys.stderr)
    else:
        paths = save_figure(fig, out / "fig2", formats=["png"])
        print(f"fig2: combined figure (a-c) -> {paths[0]}")
    print(f"power study results (CSV + PNG) are in {out.resolve()}")
    return run_plugin_jobs(out)


def run_plugin_jobs(out: str | Path) -> int:
    """Run every installed plugin job as ``job(out / name)``; stop at the first failure.

    A job whose plugin cannot be imported (e.g. without torch) is skipped with a
    note.  Returns the first non-zero exit status, else 0.
    """
    for entry in find_jobs():
        job = _load(entry)
        if job is None:
            continue
        code = int(job(Path(out) / entry.name) or 0)
        if code:
            return code
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``run`` sub-command's options to ``parser``."""
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument(
        "--reps",
        type=positive_int,
        help="repetitions per power-study grid point (None: the presets'; small = a quick check)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the ``run`` sub-command."""
    from mtcert.cli.common import fail

    try:
        return main_job(args.out, reps=args.reps)
    except ValueError as exc:
        return fail(args.prog, str(exc))
