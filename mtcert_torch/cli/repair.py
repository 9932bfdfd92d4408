"""``repair``: move damaged or repeated records of an output folder aside.

The command-line face of :func:`mtcert_torch.runs.store.repair_results`; imports
the run store only.
"""

from __future__ import annotations

import argparse

from mtcert_torch.runs.store import repair_results

__all__ = ["COMMANDS", "EXAMPLES", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True,
        help="the output folder of a certify run: damaged or repeated lines of its record "
        "files are moved to <file>.corrupt, the CSV files rewritten",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Repair ``--out`` and print one line per record file."""
    print("\n".join(repair_results(args.out)))
    return 0


#: Sub-command name -> example argument lines, listed in its ``--help``.
EXAMPLES = {"repair": ["--out results/cs", "--out results/shapenet"]}

#: Sub-command name -> (one-line help, ``add_arguments(parser)``, ``run(args) -> int``).
COMMANDS = {
    "repair": ("move damaged or repeated records of an output folder aside", add_arguments, run)
}
