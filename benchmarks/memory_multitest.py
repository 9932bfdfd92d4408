"""Peak memory and time of ``adjust`` per method, this tree against an older one, in one run.

Peak memory is measured with :mod:`tracemalloc` (numpy and numba's runtime report
their buffers to it) during one call on ``H x W`` float64 p-values (one family),
over the bytes of the p-values, which exist before the call and are not counted;
the result's ``adjusted`` and ``reject`` are (1.125 of it).  Time: best of 3
calls (compiled kernels) in each of ``--rounds`` rounds, the trees alternating.
The older tree (``--old``, a commit; its ``mtcert/`` is
unpacked with ``git archive`` into a temporary folder) is measured on its default
path and on the low-memory path it took from ``ADJUST_LOW_MEMORY_MIN`` tests on;
each tree runs in its own process.  ``--families F`` splits the p-values into F
families of ``H W / F`` (``axis=1``); ``--methods`` keeps some methods only;
``--append`` adds the table to the results instead of replacing them.  The table
goes to ``benchmarks/results/memory_multitest.md``.  Usage::

    python benchmarks/memory_multitest.py [H W] [--old 50a6c46] [--rounds 3]
        [--families F] [--methods hommel,holm] [--append]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

METHODS = (
    "holm",
    "bonferroni",
    "sidak",
    "holm-sidak",
    "hochberg",
    "generalized-hochberg",
    "hommel",
    "fdr_bh",
    "fdr_by",
    "fdr_tsbh",
    "fdr_tsbky",
    "fdr_gbs",
)
OLD_COMMIT = "50a6c46"
RESULTS = Path(__file__).resolve().parent / "results" / "memory_multitest.md"


def peak(fn) -> int:
    fn()  # compile / load kernels outside the measurement
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def measure(h, w, what="peak", low_memory="0", families="1", methods="") -> dict:
    """This process's tree: ``{method: peak / input bytes}`` (``what`` "peak") or
    ``{method: seconds}`` (best of 3, "time"); ``low_memory`` "1": with
    ``ADJUST_LOW_MEMORY_MIN`` = 0 (a tree that has the setting); ``families`` rows
    adjusted along ``axis=1``; ``methods`` a comma-separated subset (empty: all)."""
    from _timing import best_of

    from mtcert import _tunables, adjust

    if low_memory == "1":
        _tunables.ADJUST_LOW_MEMORY_MIN = 0
    p = np.random.default_rng(0).random(int(h) * int(w)) ** 3
    if int(families) > 1:
        p = p.reshape(int(families), -1)
    out = {}
    for method in methods.split(",") if methods else METHODS:
        k = {"k": 2} if method.startswith("generalized") else {}
        if int(families) > 1:
            k["axis"] = 1
        if what == "peak":
            out[method] = peak(lambda method=method, k=k: adjust(p, method, **k)) / p.nbytes
        else:
            out[method] = best_of(lambda method=method, k=k: adjust(p, method, **k), repeat=3)
    return out


def main() -> None:
    from _timing import ROOT, in_tree, unpack_tree

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size", nargs="*", type=int, default=[1024, 1024], help="H W")
    parser.add_argument("--old", default=OLD_COMMIT, help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per tree")
    parser.add_argument("--families", type=int, default=1, help="rows adjusted along axis=1")
    parser.add_argument("--methods", default="", help="comma-separated methods (all)")
    parser.add_argument("--append", action="store_true", help="add to the results file")
    args = parser.parse_args()
    h, w = args.size[0], args.size[-1]
    fam, methods = str(args.families), args.methods
    chosen = methods.split(",") if methods else list(METHODS)
    with tempfile.TemporaryDirectory() as tmp:
        old_root = unpack_tree(args.old, Path(tmp) / "old")
        # the low-memory column only for an old tree that has the setting
        low = "ADJUST_LOW_MEMORY_MIN" in (old_root / "mtcert" / "_tunables.py").read_text()
        peaks = [
            in_tree(root, "memory_multitest", "measure", h, w, "peak", flag, fam, methods)
            for root, flag in [(old_root, "0")] + [(old_root, "1")] * low + [(ROOT, "0")]
        ]
        # the trees' timings alternate, best of the rounds: a shared machine's load
        # changes over minutes
        times = [{m: float("inf") for m in chosen} for _ in range(2)]
        for _ in range(args.rounds):
            for best, root in zip(times, (old_root, ROOT), strict=True):
                got = in_tree(root, "memory_multitest", "measure", h, w, "time", "0", fam, methods)
                for m in chosen:
                    best[m] = min(best[m], got[m])
    what = "one family" if args.families == 1 else f"{args.families} families, axis=1"
    lines = [
        f"adjust on {h}x{w} p-values ({what}): peak traced memory / input bytes and "
        f"seconds (best of 3 calls in each of {args.rounds} alternating rounds per tree), "
        f"{os.cpu_count()} CPUs",
        "",
        f"| method | {args.old} | "
        + (f"{args.old} low-memory path | " if low else "")
        + f"this tree | {args.old} time | this tree time | speed-up |",
        "|---|" + "---:|" * (len(peaks) + 3),
    ]
    for m in chosen:
        to, tn = (x[m] for x in times)
        ratios = " | ".join(f"{x[m]:.2f}x" for x in peaks)
        lines.append(f"| {m} | {ratios} | {to * 1e3:.1f} ms | {tn * 1e3:.1f} ms | {to / tn:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    if args.append and RESULTS.exists():
        table = RESULTS.read_text() + "\n" + table
    RESULTS.write_text(table)
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
