"""Command-line interface: ``python -m mtcert <command>`` (or the ``mtcert`` script).

Commands
--------
run
    The main job on built-in defaults (the README's first command): the paper's
    Fig. 2 power studies and the jobs plugins register (``mtcert.jobs``).
demo
    A small multiple-testing demo on simulated p-values.
power
    Power studies on synthetic oracles.
recertify
    Re-decide stored counts at other tau, alpha, method and k (no model needed).
plan
    Plan the number of testing samples n for a target certified rate.

Adding a command: write a module with ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int`` (exit status), and add one line to :data:`COMMANDS`.
Every user error is one stderr line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mtcert.cli.common import Parser, module_program

__all__ = ["COMMANDS", "build_parser", "main"]

#: Sub-command name -> module defining ``HELP``, ``add_arguments(parser)``, ``run(args)``.
COMMANDS: dict[str, str] = {
    "run": "mtcert.cli.run",
    "demo": "mtcert.cli.demo",
    "power": "mtcert.cli.power",
    "recertify": "mtcert.cli.recertify",
    "plan": "mtcert.cli.plan",
}


def program_name(argv0: str | None = None) -> str:
    """``python -m mtcert`` when run as a module, else the console script's name."""
    return module_program("mtcert", argv0)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The full parser: one sub-parser per entry of :data:`COMMANDS`."""
    from mtcert import __version__

    parser = Parser(
        prog=prog or program_name(),
        description="Multiple testing for certified robustness: power studies, demos, "
        "re-deciding stored counts.",
        epilog=_examples(
            ["run --out results", "power --preset fig2a --out results", "demo --m 1000"]
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        if getattr(module, "EXAMPLES", None):  # after add_arguments, which may set an epilog
            p.epilog = "\n\n".join(filter(None, [p.epilog, _examples(module.EXAMPLES, name)]))
        p.set_defaults(run=module.run, prog=p.prog)
    return parser


def _examples(commands: Sequence[str], command: str = "") -> str:
    """An epilog section listing example command lines."""
    prefix = f"{program_name()} {command + ' ' if command else ''}"
    return "examples:\n" + "\n".join(f"  {prefix}{line}".rstrip() for line in commands)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status."""
    args = build_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted", file=sys.stderr)
        return 130
