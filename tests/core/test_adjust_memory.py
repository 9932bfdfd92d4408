"""Peak memory of ``adjust``, as ``benchmarks/memory_multitest.py`` measures it, and the
results of its memory-saving sort: the same bits whichever way the keys are sorted.

The sorting procedures keep only the order (int32) besides the output: the sort keys
live in the output array, the bucketed sort's scratch holds at most half of them, and
each procedure writes its adjusted values straight to their place.

The peak of :mod:`tracemalloc` (numpy and numba's runtime report their buffers
to it) during one call, over the bytes of the float64 p-values, which exist
before the call and are not counted.  The result's ``adjusted`` (float64) and
``reject`` (bool) arrays are counted: 1.125 of the budget.  Every method stays
within 2x, Hommel included: its tangent points, hull, window and winners live in
the output seen as int32 pairs, next to the order.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mtcert import _jit, _tunables, adjust
from mtcert._kernels.methods import harmonic_sum
from mtcert.stats import multitest as mt
from mtcert.stats.multitest import METHODS

BOUND = {method: 2.0 for method in METHODS}


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


@pytest.mark.parametrize("method", ["holm-sidak", "hochberg", "fdr_bh", "hommel"])
def test_peak_memory_when_everything_is_rejected_or_tied(method):
    """Holm–Šidák compares all m ranks (bounded steps); equal values make one bucket
    larger than the sort's scratch (sorted where it lies)."""
    rng = np.random.default_rng(4)
    for p in (rng.random(1 << 19) * 1e-12, np.full(1 << 19, 0.25)):
        res = adjust(p, method)
        ratio = peak_ratio(lambda p=p: adjust(p, method), p.nbytes)
        assert ratio <= BOUND[method], f"{method}: peak {ratio:.2f}x the p-values"
        assert res.n_rejected in (0, p.size)


@pytest.mark.parametrize(
    "method", ["holm-sidak", "hochberg", "fdr_bh", "fdr_by", "fdr_tsbh", "hommel"]
)
def test_peak_memory_per_family(pvalues, method):
    p = pvalues.reshape(16, -1)  # 16 families of 2^16: sorted row by row
    ratio = peak_ratio(lambda: adjust(p, method, axis=1), p.nbytes)
    assert ratio <= 2.0, f"{method}: peak {ratio:.2f}x the p-values"


def test_hommel_peak_memory_at_four_million_tests():
    """2^22 p-values: one family and 16 families (the cache-sized scatter blocks, many)."""
    p = np.random.default_rng(3).random(1 << 22) ** 3
    for shape, kw in (((p.size,), {}), ((16, p.size // 16), {"axis": 1})):
        x = p.reshape(shape)
        ratio = peak_ratio(lambda x=x, kw=kw: adjust(x, "hommel", **kw), p.nbytes)
        assert ratio <= 2.0, f"{shape}: peak {ratio:.2f}x the p-values"


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
def test_bucketed_sort_gives_the_same_bits(method, monkeypatch):
    """The bucketed sort (several parts, a group larger than the scratch) against
    plain np.sort of the keys: identical results."""
    k = {"k": 3} if method.startswith("generalized") else {}
    for name, p, kw in _cases():
        monkeypatch.setattr(_tunables, "BUCKET_MIN", 1 << 62)  # np.sort only
        plain = adjust(p, method, **k, **kw)
        monkeypatch.setattr(_tunables, "BUCKET_MIN", 1000)
        monkeypatch.setattr(_tunables, "BUCKET_TARGET", 64)
        bucketed = adjust(p, method, **k, **kw)
        monkeypatch.undo()
        assert bucketed.adjusted.tobytes() == plain.adjusted.tobytes(), (method, name)
        assert np.array_equal(bucketed.reject, plain.reject), (method, name)
        assert np.array_equal(bucketed.n_rejected, plain.n_rejected), (method, name)


def test_bucket_sort_in_parts_equals_np_sort():
    rng = np.random.default_rng(5)
    for p in (
        rng.random(1 << 18) ** 5,
        np.concatenate([np.full(1 << 17, 0.5), rng.random(1 << 16)]),  # a group > scratch
        np.concatenate([rng.random(1000) * 1e-300, np.ones(70_000), rng.random(90_001)]),
    ):
        p = rng.permutation(p)
        keys = np.empty((1, p.size), dtype=np.uint64)
        mt.pack_keys(p.reshape(1, -1), np.empty(0, np.int64), (p.size - 1).bit_length(), keys)
        want = np.sort(keys[0])
        mt._bucket_sort(keys[0])
        np.testing.assert_array_equal(keys[0], want)


@pytest.mark.parametrize("method", ["hochberg", "fdr_by", "fdr_tsbh", "fdr_gbs", "hommel"])
def test_tiers_agree(method):
    p = np.random.default_rng(2).random(5000) ** 3
    p[::50] = np.nan
    runs = []
    for mode in ("never", "always"):
        with _jit.policy(mode):
            res = adjust(p, method, nan_policy="omit")
        runs.append((res.adjusted.tobytes(), res.reject.tobytes()))
    assert runs[0] == runs[1]
