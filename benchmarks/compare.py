"""Run every ``compare_*.py`` script in this folder: ratios measured in one run.

Usage::

    python benchmarks/compare.py [NAME ...]          # this tree, e.g. compare_multitest
    python benchmarks/compare.py --trees OLD NEW [--rounds 3] [NAME ...]

With ``--trees`` each round runs the scripts once per tree, in turn (the trees
alternate, so that a machine that slows down or speeds up during the run affects
them alike), each tree with its own ``benchmarks/compare.py`` and its own
``mtcert`` on ``PYTHONPATH``; every timed line is then reported with its best
time over the rounds in each tree and the ratio to the first tree.  Imports the
standard library only (the scripts import mtcert).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# the first time on a line of a script's report: "12.3ms" or "4.56 s"
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s?(ms|s)\b")


def _run_tree(tree: Path, names: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    script = tree / "benchmarks" / "compare.py"
    out = subprocess.run(
        [sys.executable, str(script), *names],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _timed_lines(report: str) -> dict[str, float]:
    """``{label: seconds}`` for every line of ``report`` that holds a time."""
    times = {}
    for line in report.splitlines():
        match = _TIME.search(line)
        if match:
            label = line[: match.start()].rstrip(" :")
            scale = 1e-3 if match.group(2) == "ms" else 1.0
            times[label] = float(match.group(1)) * scale
    return times


def compare_trees(trees: list[Path], names: list[str], rounds: int) -> None:
    """Best time per timed line and tree over ``rounds`` alternating runs (see module)."""
    best: list[dict[str, float]] = [{} for _ in trees]
    for r in range(rounds):
        for i, tree in enumerate(trees):
            print(f"round {r + 1}/{rounds}: {tree}", file=sys.stderr, flush=True)
            for label, seconds in _timed_lines(_run_tree(tree, names)).items():
                best[i][label] = min(seconds, best[i].get(label, float("inf")))
    width = max(len(label) for label in best[0])
    head = "".join(f" {'tree ' + str(i + 1):>11}" for i in range(len(trees)))
    print("\n".join(f"tree {i + 1}: {tree}" for i, tree in enumerate(trees)))
    print(f"{'case (best of ' + str(rounds) + ')':<{width}}{head}  ratio to tree 1")
    for label, first in best[0].items():
        cells = [b.get(label, float("nan")) for b in best]
        times = "".join(f" {t * 1e3:>9.1f}ms" for t in cells)
        ratios = " ".join(f"{t / first:.2f}x" for t in cells[1:])
        print(f"{label:<{width}}{times}  {ratios}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="compare_*.py scripts to run (default: all)")
    parser.add_argument("--trees", nargs="+", type=Path, help="source trees to compare")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per tree")
    args = parser.parse_args()
    names = args.names or sorted(p.stem for p in HERE.glob("compare_*.py"))
    if args.trees:
        compare_trees([t.resolve() for t in args.trees], names, args.rounds)
        return 0
    sys.path.insert(0, str(HERE))
    for name in names:
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
