"""Command-line interface: ``python -m mtcert <command>``.

Commands
--------
run
    The main job on built-in defaults (the README's first command): the paper's
    Fig. 2 power studies and, with torch installed, a certified segmentation.
demo
    A small multiple-testing demo on simulated p-values.
power
    Power studies on synthetic oracles (:mod:`mtcert._power_cli`).

Feature modules register further sub-commands through :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# name -> (help, add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> int`` as sub-command ``name``."""

    def register(run):
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--m", type=int, default=10_000, help="number of tests (default 10000)")
    parser.add_argument("--alpha", type=float, default=0.05, help="level (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


@command("demo", "multiple-testing demo on simulated p-values", _demo_arguments)
def _demo(args) -> int:
    from mtcert._demo import multitest_demo

    print(multitest_demo(m=args.m, alpha=args.alpha, seed=args.seed))
    return 0


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="results", help="output folder (default: results)")


@command("run", "the main job on built-in defaults", _run_arguments)
def _run(args) -> int:
    from mtcert._demo import main_job

    return main_job(args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mtcert", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args._run(args) or 0)


# Sub-commands defined in feature modules register themselves on import.
from mtcert import _power_cli  # noqa: E402, F401
from mtcert import _recertify_cli as _rc  # noqa: E402

command("recertify", _rc.RECERTIFY_HELP, _rc.add_recertify_arguments)(_rc.run_recertify)
command("plan", _rc.PLAN_HELP, _rc.add_plan_arguments)(_rc.run_plan)
