"""Peak memory of ``adjust``, as ``benchmarks/memory_multitest.py`` measures it.

The peak of :mod:`tracemalloc` (numpy and numba's runtime report their buffers
to it) during one call, over the bytes of the float64 p-values, which exist
before the call and are not counted.  The result's ``adjusted`` (float64) and
``reject`` (bool) arrays are counted: 1.125 of the budget.  Every method but
Hommel stays within 2x; Hommel needs its Simes values and two integer
work arrays of m entries besides the sort order.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mtcert import adjust
from mtcert._kernels.methods import harmonic_sum
from mtcert.stats.multitest import METHODS

BOUND = {method: 2.0 for method in METHODS}
BOUND["hommel"] = 4.0


def peak_ratio(fn, nbytes: int) -> float:
    fn()  # compile / load kernels outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return top / nbytes


@pytest.fixture(scope="module")
def pvalues():
    # 2^20 p-values: above BUCKET_MIN (the bucketed sort), signals near 0
    return np.random.default_rng(0).random(1 << 20) ** 3


@pytest.mark.parametrize("method", METHODS)
def test_peak_memory_per_method(pvalues, method):
    k = {"k": 2} if method.startswith("generalized") else {}
    ratio = peak_ratio(lambda: adjust(pvalues, method, **k), pvalues.nbytes)
    assert ratio <= BOUND[method], f"{method}: peak {ratio:.2f}x the p-values"


@pytest.mark.parametrize("method", ["holm-sidak", "hochberg", "fdr_bh", "fdr_by", "fdr_tsbh"])
def test_peak_memory_per_family(pvalues, method):
    p = pvalues.reshape(16, -1)  # 16 families of 2^16: sorted row by row
    ratio = peak_ratio(lambda: adjust(p, method, axis=1), p.nbytes)
    assert ratio <= 2.0, f"{method}: peak {ratio:.2f}x the p-values"


@pytest.mark.parametrize("m", [1, 8, 127, 8192, 8193, 16392, 100_003, 1 << 20])
def test_harmonic_sum_is_numpys_pairwise_sum(m):
    terms = np.arange(1, m + 1, dtype=np.float64)
    assert harmonic_sum(m) == np.sum(1.0 / terms)
