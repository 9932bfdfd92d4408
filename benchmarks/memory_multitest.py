"""Peak memory of SEGCERTIFY's general path and of ``adjust``, relative to the input.

Measured with :mod:`tracemalloc` (numpy reports its buffers to it), one family of
``H x W`` components with int64 hits and n = 100.  Usage::

    python benchmarks/memory_multitest.py [H W]
"""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np

from mtcert import adjust, segcertify_hits

METHODS = ("holm", "bonferroni", "sidak", "holm-sidak", "hochberg", "hommel", "fdr_bh")


def peak(fn) -> int:
    fn()  # compile / load kernels outside the measurement
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main(h: int = 1024, w: int = 1024) -> None:
    rng = np.random.default_rng(0)
    hits = rng.binomial(100, 0.97, (h, w))
    guess = np.zeros((h, w), np.int64)
    p = rng.random(h * w) ** 3
    print(f"\npeak memory / input bytes, {h}x{w} components")
    print(f"{'method':<14} {'segcertify_hits':>16} {'adjust':>8}")
    for method in METHODS:
        seg = peak(
            lambda method=method: segcertify_hits(
                guess, hits, 100, tau=0.75, alpha=1e-3, method=method
            )
        )
        adj = peak(lambda method=method: adjust(p, method))
        print(f"{method:<14} {seg / hits.nbytes:>15.2f}x {adj / p.nbytes:>7.2f}x")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
