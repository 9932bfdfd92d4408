"""Peak memory of SEGCERTIFY and of ``adjust``, relative to the input.

Measured with :mod:`tracemalloc` (numpy reports its buffers to it), one family of
``H x W`` components with int64 hits and n = 100 (``segcertify_hits``, counting
path for the methods in ``FAST_METHODS`` -- Hommel, BH and BY included --,
``adjust`` on float p-values for the others) and ``H x W`` float64 p-values
(``adjust``, on its default path and on the low-memory path that
``_tunables.ADJUST_LOW_MEMORY_MIN`` selects for large calls).  Usage::

    python benchmarks/memory_multitest.py [H W]
"""

from __future__ import annotations

import sys
import tracemalloc
import warnings

import numpy as np

from mtcert import _tunables, adjust, segcertify_hits
from mtcert.certify.segmentation import FAST_METHODS, NotACertificateWarning

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
)


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
    warnings.simplefilter("ignore", NotACertificateWarning)  # FDR methods measured all the same
    print(f"\npeak memory / input bytes, {h}x{w} components")
    print(f"{'method':<21} {'path':<9} {'segcertify_hits':>16} {'adjust':>8} {'low-mem':>8}")
    for method in METHODS:
        path = "counting" if method in FAST_METHODS else "adjust"
        seg = peak(
            lambda method=method: segcertify_hits(
                guess, hits, 100, tau=0.75, alpha=1e-3, method=method
            )
        )
        adj = peak(lambda method=method: adjust(p, method))
        default_min = _tunables.ADJUST_LOW_MEMORY_MIN
        _tunables.ADJUST_LOW_MEMORY_MIN = 0
        try:
            low = peak(lambda method=method: adjust(p, method))
        finally:
            _tunables.ADJUST_LOW_MEMORY_MIN = default_min
        print(
            f"{method:<21} {path:<9} {seg / hits.nbytes:>15.2f}x {adj / p.nbytes:>7.2f}x"
            f" {low / p.nbytes:>7.2f}x"
        )


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))
