"""The threaded single-family path of SEGCERTIFY and the thread helper behind it.

The threaded path (axis=None, large families) must make exactly the decisions
of the serial kernel and of :func:`mtcert.stats.multitest.adjust`.  It only runs for
very large images on multi-core machines, so the tests force it on small
inputs (and with 3 workers whatever the machine) by monkeypatching.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

import numpy as np
import pytest

import mtcert.certify.segmentation as certify_mod
from mtcert import _threads, _tunables
from mtcert._kernels import certify as _k
from mtcert.certify import ABSTAIN, FAST_METHODS, segcertify_hits
from mtcert.stats.binomial import greater_pvalue_table
from mtcert.stats.multitest import adjust
from tests.helpers.hommel import (
    adjust_reject,
    fallback_calls,
    near_boundary_hits,
    pvalues_ref,
)


@pytest.fixture
def threaded(monkeypatch):
    """Force the threaded path with 3 workers; yields the list of its calls."""
    calls = []
    real = certify_mod._one_family_threaded

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(_tunables, "CERTIFY_MIN_CHUNK", 16)
    monkeypatch.setattr(certify_mod, "workers_for", lambda size, min_chunk: 3)
    monkeypatch.setattr(certify_mod, "_one_family_threaded", spy)
    return calls


def _serial(guess, hits, n, tau, alpha, method, k):
    """The batched serial kernel on the one family."""
    table = greater_pvalue_table(n, tau)
    labels = np.empty((1, hits.size), np.int64)
    copy = np.empty((1, hits.size), certify_mod._hits_dtype(n))
    n_rej, n_bad, n_neg, undecided = _k.certify_families(
        guess.reshape(1, -1),
        hits.reshape(1, -1),
        table,
        alpha,
        k,
        FAST_METHODS[method],
        certify_mod._family_constant(FAST_METHODS[method], alpha, hits.size),
        ABSTAIN,
        labels,
        copy,
    )
    assert n_bad == 0 and n_neg == 0 and not undecided
    return labels.reshape(guess.shape), int(n_rej[0])


def _image(rng, shape, n, guess_dtype, hits_dtype):
    """Mostly clean components (many ties at hits = n), some unstable, some hits = 0."""
    size = int(np.prod(shape))
    p = np.where(rng.random(size) < 0.7, 0.995, rng.uniform(0.0, 1.0, size))
    hits = rng.binomial(n, p)
    hits[rng.random(size) < 0.02] = 0
    hits[rng.random(size) < 0.05] = n
    guess = rng.integers(0, 19, size)
    return guess.astype(guess_dtype).reshape(shape), hits.astype(hits_dtype).reshape(shape)


CASES = [
    # (guess dtype, hits dtype, n): wide hits (copied while histogramming),
    # narrow hits (copied while labelling), n needing a uint16 copy
    (np.int64, np.int64, 100),
    (np.int32, np.uint8, 100),
    (np.uint8, np.int32, 1000),
    (np.int16, np.uint16, 1000),
]


@pytest.mark.parametrize(("guess_dtype", "hits_dtype", "n"), CASES)
@pytest.mark.parametrize(
    ("method", "k"),
    [
        ("holm", 1),
        ("bonferroni", 1),
        ("sidak", 1),
        ("holm-sidak", 1),
        ("hochberg", 1),
        ("generalized-holm", 5),
        ("generalized-bonferroni", 3),
        ("generalized-hochberg", 2),
        ("hommel", 1),
        ("fdr_bh", 1),
        ("fdr_by", 1),
    ],
)
@pytest.mark.parametrize("shape", [(37, 29), (240_007,)])
@pytest.mark.filterwarnings("ignore::mtcert.certify.segmentation.NotACertificateWarning")
def test_threaded_equals_serial_and_adjust(threaded, guess_dtype, hits_dtype, n, method, k, shape):
    rng = np.random.default_rng([n, k, len(shape), np.dtype(hits_dtype).itemsize])
    guess, hits = _image(rng, shape, n, guess_dtype, hits_dtype)
    tau, alpha = 0.75, 0.01
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=k)
    assert threaded == [3]

    labels, n_rej = _serial(guess, hits, n, tau, alpha, method, k)
    np.testing.assert_array_equal(cert.labels, labels)
    assert cert.labels.dtype == labels.dtype
    assert cert.n_certified == n_rej

    table = greater_pvalue_table(n, tau)
    ref = adjust(table[hits.astype(np.int64)], method, alpha=alpha, k=k)
    np.testing.assert_array_equal(cert.reject, ref.reject)
    np.testing.assert_array_equal(
        cert.labels, np.where(ref.reject, guess.astype(np.int64), ABSTAIN)
    )
    np.testing.assert_array_equal(cert.pvalues, table[hits.astype(np.int64)])
    assert 0 < cert.n_certified < hits.size  # the test is not vacuous


def test_threaded_nothing_certified_with_full_uint8_range(threaded):
    # n = 255: the threshold n + 1 = 256 does not fit the uint8 copy
    rng = np.random.default_rng(5)
    hits = rng.integers(0, 150, 5000).astype(np.uint8)
    guess = rng.integers(0, 3, 5000)
    cert = segcertify_hits(guess, hits, 255, tau=0.75, alpha=0.001)
    assert threaded == [3]
    assert cert.n_certified == 0
    assert np.all(cert.labels == ABSTAIN)


def test_threaded_everything_certified(threaded):
    hits = np.full(3000, 100)
    guess = np.arange(3000) % 7
    cert = segcertify_hits(guess, hits, 100, tau=0.75, alpha=0.001)
    assert threaded == [3]
    assert cert.n_certified == 3000
    np.testing.assert_array_equal(cert.labels, guess)


def test_threaded_holm_sidak_near_critical_value_uses_adjust(threaded, monkeypatch):
    """A Holm–Šidák p-value within rounding of its critical value: ``adjust`` decides."""
    n, tau, m = 100, 0.75, 3000
    table = greater_pvalue_table(n, tau)
    hits = np.full(m, 95)
    hits[:7] = 80
    alpha = float(-np.expm1(m * np.log1p(-table[95])))  # rank 1's critical value, to rounding
    guess = np.arange(m) % 4
    calls = fallback_calls(monkeypatch)
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="holm-sidak")
    assert threaded == [3] and calls == ["holm-sidak"]
    ref = adjust(table[hits], "holm-sidak", alpha=alpha).reject
    np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
    assert cert.n_certified == ref.sum()


@pytest.mark.parametrize("bad", [-1, 101, 2**40])
@pytest.mark.parametrize("where", [0, 1234, 2999])
def test_threaded_out_of_range_hits_raise(threaded, bad, where):
    hits = np.full(3000, 90, dtype=np.int64)
    hits[where] = bad
    with pytest.raises(ValueError, match="hits must lie in"):
        segcertify_hits(np.zeros(3000, np.int64), hits, 100, tau=0.75, alpha=0.001)
    # the histogram pass counts the bad entry (whichever thread holds it); no certificate


@pytest.mark.parametrize("hits_dtype", [np.int64, np.uint8])
def test_threaded_negative_guess_raises(threaded, hits_dtype):
    guess = np.zeros(3000, np.int64)
    guess[2500] = -3
    hits = np.full(3000, 95, dtype=hits_dtype)
    with pytest.raises(ValueError, match="non-negative labels"):
        segcertify_hits(guess, hits, 100, tau=0.75, alpha=0.001)
    # the labelling pass counts the negative guess; no certificate is returned


@pytest.mark.parametrize("hits_dtype", [np.int64, np.uint8, np.int8])
def test_threaded_hommel_and_its_boundary_fallback(threaded, monkeypatch, hits_dtype):
    """Hommel on the threaded path decides as ``adjust``, also at a boundary.

    int64 and uint8 hits take the fused path, int8 the converting one.
    """
    rng = np.random.default_rng(11)
    n, tau = 100, 0.75
    hits = np.maximum(near_boundary_hits(rng, n, tau, 0.01, 5000), 60).astype(hits_dtype)
    guess = rng.integers(0, 7, hits.size)
    calls = fallback_calls(monkeypatch)
    for alpha in (0.01, 0.05, 0.2):
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="hommel")
        ref = adjust_reject(hits, n, tau, alpha)
        np.testing.assert_array_equal(cert.labels, np.where(ref, guess, ABSTAIN))
        assert 0 < cert.n_certified < hits.size
    assert threaded == [3, 3, 3] and calls == []
    # p_(m) = alpha exactly: the reject-all boundary, handed to adjust
    alpha = float(pvalues_ref(hits.min(), n, tau))
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method="hommel")
    np.testing.assert_array_equal(cert.reject, adjust_reject(hits, n, tau, alpha))
    assert threaded == [3, 3, 3, 3] and calls == ["hommel"]


def test_threaded_path_not_used_for_small_or_batched_input(monkeypatch):
    calls = []
    monkeypatch.setattr(certify_mod, "_one_family_threaded", lambda *a: calls.append(a))
    hits = np.full((4, 500), 100)
    segcertify_hits(np.zeros_like(hits), hits, 100, tau=0.75, alpha=0.001)
    monkeypatch.setattr(_tunables, "CERTIFY_MIN_CHUNK", 16)
    segcertify_hits(np.zeros_like(hits), hits, 100, tau=0.75, alpha=0.001, axis=-1)
    segcertify_hits(
        np.zeros_like(hits), hits, 100, tau=0.75, alpha=0.001, method="generalized-sidak", k=2
    )
    assert calls == []


# --- mtcert._threads -------------------------------------------------------


@pytest.mark.parametrize(("size", "workers"), [(0, 1), (7, 1), (10, 3), (1001, 2), (97, 5)])
def test_map_chunks_covers_range_once_in_order(size, workers):
    seen = np.zeros(size, np.int64)
    busy = [threading.Lock() for _ in range(workers)]

    def fn(worker, lo, hi):
        # the same worker id is never used by two threads at once
        assert busy[worker].acquire(blocking=False)
        try:
            seen[lo:hi] += 1
            return lo, hi
        finally:
            busy[worker].release()

    out = _threads.map_chunks(fn, size, workers)
    assert seen.tolist() == [1] * size
    assert out[0][0] == 0 and out[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(out))


def test_map_chunks_propagates_errors():
    def fn(worker, lo, hi):
        if lo > 0:
            raise RuntimeError("boom")
        return 0

    with pytest.raises(RuntimeError, match="boom"):
        _threads.map_chunks(fn, 100, 2)


def test_workers_for():
    assert _threads.workers_for(10, 100) == 1
    assert 1 <= _threads.workers_for(10**9, 1) <= (os.cpu_count() or 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_map_chunks_after_fork():
    """A forked child inherits the pool object but not its threads: it must make its own."""

    def slow(worker, lo, hi):
        time.sleep(0.05)  # releases the GIL: the helper thread takes chunks meanwhile
        return threading.get_ident()

    assert len(set(_threads.map_chunks(slow, 100, 2))) == 2
    pid = os.fork()
    if pid == 0:  # child: must never return into pytest
        ok = False
        try:
            ok = len(set(_threads.map_chunks(slow, 100, 2))) == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
