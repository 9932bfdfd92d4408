"""Small helpers shared by the stand-alone comparison scripts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from mtcert import _jit

# The comparisons time compiled kernels: small calls would otherwise start in the
# interpreted tier (mtcert._jit), which is the first-call behaviour, not the speed.
_jit.set_mode("always")


def best_of(fn, *, repeat: int = 5, warmup: int = 1) -> float:
    """Best wall-clock time of ``repeat`` calls (after ``warmup`` calls), in seconds."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def report(rows: list[tuple[str, float, float]], title: str) -> None:
    """Print ``(case, ours_s, reference_s)`` rows with the speed-up ratio."""
    print(f"\n{title}")
    print(f"{'case':<48} {'mtcert':>10} {'reference':>10} {'ratio':>8}")
    for case, ours, ref in rows:
        print(f"{case:<48} {ours * 1e3:>8.1f}ms {ref * 1e3:>8.1f}ms {ref / ours:>7.1f}x")


ROOT = Path(__file__).resolve().parent.parent


def unpack_tree(commit: str, into: Path) -> Path:
    """``mtcert/`` of ``commit`` (``git archive``) under ``into``; returns ``into``."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "mtcert"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return into


def in_tree(root: Path, module: str, function: str, *args: str) -> dict:
    """``benchmarks/<module>.<function>(*args)`` in a fresh process whose ``mtcert`` is
    the one under ``root``; the function returns a JSON-able dict."""
    code = (
        "import json, sys; root, bench, module, function = sys.argv[1:5]; "
        "sys.path[:0] = [root, bench]; import mtcert; assert mtcert.__file__.startswith(root); "
        "import importlib; fn = getattr(importlib.import_module(module), function); "
        "print(json.dumps(fn(*sys.argv[5:])))"
    )
    argv = [sys.executable, "-c", code, str(root), str(ROOT / "benchmarks"), module, function]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [*argv, *map(str, args)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
