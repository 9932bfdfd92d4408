"""``python -m mtcert_torch``: certify models on data sets from the command line.

Commands:

* ``certify``: a segmentation model on a folder of images (paper Table 1);
* ``certify-pointcloud``: a part segmenter on ShapeNet-part clouds (Table 2);
* ``repair``: fix an output folder whose record file holds a damaged line.

Example (the paper's Table 1 setting, scale 0.25)::

    python -m mtcert_torch certify --model hrnetv2_w48 --checkpoint hrnet_cs.pth \\
        --data /data/cityscapes --sigma 0.25 --tau 0.75 --n0 10 --n 100 --alpha 0.001 \\
        --scale 0.25 --out results/cs --device cuda --limit 100

Under ``torchrun --nproc_per_node K`` the items are sharded over the K
processes (``torch.distributed``; gloo on CPU, NCCL on CUDA) and rank 0 writes
the summary.  See :mod:`mtcert_torch.runs.store` for the output files.

This package is a thin dispatcher over one module per command group
(:mod:`~mtcert_torch.cli.certify`, :mod:`~mtcert_torch.cli.repair`), each with
``COMMANDS``: name -> (help, ``add_arguments(parser)``, ``run(args) -> int``) and
``EXAMPLES``: name -> example argument lines (the epilog of its ``--help``).
The parser only maps options to keyword values of the runs; every user error is
one line on stderr and exit status 2; an interrupt (Ctrl-C) keeps every finished
item, prints one line and exits with 130.  The command line is the top layer: it
may import everything below it and the core's shared command-line plumbing
(:mod:`mtcert.cli.common`).
"""

from __future__ import annotations

import argparse
import sys

from mtcert import __version__
from mtcert.cli.common import Parser, fail, module_program, one_line
from mtcert_torch.cli import certify, repair

__all__ = ["COMMANDS", "EXAMPLES", "build_parser", "main"]

#: Sub-command name -> (one-line help, ``add_arguments(parser)``, ``run(args) -> int``).
COMMANDS = {**certify.COMMANDS, **repair.COMMANDS}
#: Sub-command name -> example argument lines (listed in its ``--help``).
EXAMPLES = {**certify.EXAMPLES, **repair.EXAMPLES}

DESCRIPTION = "Certify PyTorch segmentation models on data sets from the command line."
#: Examples of the top-level help: one per command.
TOP_EXAMPLES = (
    "certify --model hrnetv2_w48 --checkpoint hrnet_cs.pth --data /data/cityscapes "
    "--sigma 0.25 --scale 0.25 --out results/cs --device cuda --save-counts",
    "certify-pointcloud --data shapenetcore_partanno_segmentation_benchmark_v0_normal "
    "--checkpoint best_model.pth --sigma 0.02 --out results/shapenet",
    "repair --out results/cs",
)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m mtcert_torch`` (``prog``: the name shown in messages)."""
    prog = prog or module_program("mtcert_torch")
    parser = Parser(prog=prog, description=DESCRIPTION, epilog=_examples(prog, TOP_EXAMPLES))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (text, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(
            name, help=text, description=text[:1].upper() + text[1:] + ".",
            epilog=_examples(f"{prog} {name}", EXAMPLES[name]),
        )  # fmt: skip
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def _examples(prefix: str, lines) -> str:
    """An epilog listing example command lines, one per line."""
    return "examples:\n" + "\n".join(f"  {prefix} {line}" for line in lines)


def main(argv=None) -> int:
    """Run one command; return its exit status (130 when interrupted).

    A user error exits with status 2 (``SystemExit``) after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; finished items are kept in {args.out} "
            "(rerun the same command to resume)",
            file=sys.stderr,
        )
        return 130
    except (ValueError, OSError) as exc:
        raise SystemExit(fail(f"{parser.prog} {args.command}", one_line(exc))) from None
