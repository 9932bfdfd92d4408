"""Peak memory of ``adjust`` on its low-memory path, as ``benchmarks/memory_multitest.py``
measures it, and that path's results: the same bits as the default path.

From ``_tunables.ADJUST_LOW_MEMORY_MIN`` tests on (set to 0 here), the sorting
procedures work inside the output array.

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

from mtcert import _jit, _tunables, adjust
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


@pytest.fixture
def low_memory(monkeypatch):
    monkeypatch.setattr(_tunables, "ADJUST_LOW_MEMORY_MIN", 0)


@pytest.fixture(scope="module")
def pvalues():
    # 2^20 p-values: above BUCKET_MIN (the bucketed sort), signals near 0
    return np.random.default_rng(0).random(1 << 20) ** 3


@pytest.mark.parametrize("method", METHODS)
def test_peak_memory_per_method(pvalues, method, low_memory):
    k = {"k": 2} if method.startswith("generalized") else {}
    ratio = peak_ratio(lambda: adjust(pvalues, method, **k), pvalues.nbytes)
    assert ratio <= BOUND[method], f"{method}: peak {ratio:.2f}x the p-values"


@pytest.mark.parametrize("method", ["holm-sidak", "hochberg", "fdr_bh", "fdr_by", "fdr_tsbh"])
def test_peak_memory_per_family(pvalues, method, low_memory):
    p = pvalues.reshape(16, -1)  # 16 families of 2^16: sorted row by row
    ratio = peak_ratio(lambda: adjust(p, method, axis=1), p.nbytes)
    assert ratio <= 2.0, f"{method}: peak {ratio:.2f}x the p-values"


@pytest.mark.parametrize("m", [1, 8, 127, 8192, 8193, 16392, 100_003, 1 << 20])
def test_harmonic_sum_is_numpys_pairwise_sum(m):
    terms = np.arange(1, m + 1, dtype=np.float64)
    assert harmonic_sum(m) == np.sum(1.0 / terms)


def _cases():
    rng = np.random.default_rng(1)
    p = rng.random(300_000) ** 4  # above BUCKET_MIN: the bucketed sort
    p[::97] = p[5]  # ties
    p[::1001] = 0.0
    p[::4999] = 1.0
    with_nan = p[:20_000].copy()
    with_nan[::13] = np.nan
    return [
        ("bucketed", p, {}),
        ("families", p[:240_000].reshape(12, -1), {"axis": 1}),
        ("nan omitted", with_nan, {"nan_policy": "omit"}),
        ("small", p[:3000], {}),
    ]


@pytest.mark.parametrize("method", METHODS)
def test_low_memory_path_gives_the_same_bits(method, monkeypatch):
    k = {"k": 3} if method.startswith("generalized") else {}
    for name, p, kw in _cases():
        default = adjust(p, method, **k, **kw)
        monkeypatch.setattr(_tunables, "ADJUST_LOW_MEMORY_MIN", 0)
        low = adjust(p, method, **k, **kw)
        monkeypatch.undo()
        assert low.adjusted.tobytes() == default.adjusted.tobytes(), (method, name)
        assert np.array_equal(low.reject, default.reject), (method, name)
        assert np.array_equal(low.n_rejected, default.n_rejected), (method, name)


@pytest.mark.parametrize("method", ["hochberg", "fdr_by", "fdr_tsbh", "fdr_gbs", "hommel"])
def test_low_memory_path_tiers_agree(method, low_memory):
    p = np.random.default_rng(2).random(5000) ** 3
    p[::50] = np.nan
    runs = []
    for mode in ("never", "always"):
        with _jit.policy(mode):
            res = adjust(p, method, nan_policy="omit")
        runs.append((res.adjusted.tobytes(), res.reject.tobytes()))
    assert runs[0] == runs[1]
