"""Small helpers shared by the stand-alone comparison scripts."""

from __future__ import annotations

import time

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
