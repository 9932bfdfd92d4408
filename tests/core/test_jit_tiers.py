"""Tiered kernels (mtcert._jit): both tiers give bit-identical results; the policy holds.

Every public entry point that reaches a tiered kernel is run twice on the same
inputs, once with every kernel interpreted (policy "never") and once with every
kernel compiled ("always"), and the outputs are compared byte for byte (NaN
positions and signed zeros included).  The inputs cover the branches the
kernels take: ties, zeros, ones and NaNs for the multiple-testing procedures,
deep binomial tails summed in log space, both SEGCERTIFY family strategies
(histogram and sort) and the direct table for large n.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import types
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.dispatcher import Dispatcher

import mtcert
import mtcert.certify.segmentation
import mtcert.stats.binomial
import mtcert.stats.multitest
from mtcert import _jit, _threads, _tunables
from mtcert._kernels import binomial as binomial_kernels
from mtcert._kernels import certify as certify_kernels
from mtcert._kernels import multitest as multitest_kernels
from mtcert.certify.segmentation import FAST_METHODS, NotACertificateWarning
from mtcert.stats.multitest import KFWER_METHODS, METHODS


def in_tier(mode, fn):
    with _jit.policy(mode):
        return fn()


def assert_identical(a, b, where=""):
    if isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, where
    assert a.tobytes() == b.tobytes(), f"{where}: tiers differ\n{a}\n{b}"


def adjusted_reject(res):
    return res.adjusted, res.reject


def both_tiers(fn, where=""):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotACertificateWarning)
        interpreted = in_tier("never", fn)
        compiled = in_tier("always", fn)
    assert_identical(interpreted, compiled, where)
    return compiled


def pvalue_families(rng, shape):
    """P-values with ties, exact zeros and ones, tiny values and NaNs."""
    p = rng.random(shape) ** rng.choice([1, 3, 8])
    flat = p.reshape(-1)
    ties = rng.random(flat.size) < 0.3
    flat[ties] = rng.choice([0.001, 0.01, 0.2, 0.5], ties.sum())
    flat[rng.random(flat.size) < 0.03] = 0.0
    flat[rng.random(flat.size) < 0.03] = 1.0
    flat[rng.random(flat.size) < 0.03] = 1e-300
    return p


@pytest.mark.parametrize("method", METHODS)
def test_adjust_identical_in_both_tiers(method):
    rng = np.random.default_rng(sum(map(ord, method)))
    ks = (1, 2, 5) if method in KFWER_METHODS else (1,)
    for shape, axis in (((1,), None), ((7,), None), ((300,), None), ((3, 40), 1), ((2000,), None)):
        p = pvalue_families(rng, shape)
        for k in ks:
            for alpha in (0.05, 0.5):
                res = both_tiers(
                    lambda p=p, k=k, alpha=alpha, axis=axis: adjusted_reject(
                        mtcert.adjust(p, method, alpha=alpha, k=k, axis=axis)
                    ),
                    f"{method} {shape} k={k} alpha={alpha}",
                )
                assert res[0].shape == shape
        p[..., ::5] = np.nan  # NaN policies: omitted or propagated
        for policy in ("omit", "propagate"):
            both_tiers(
                lambda p=p, policy=policy, axis=axis: adjusted_reject(
                    mtcert.adjust(p, method, k=ks[-1], nan_policy=policy, axis=axis)
                ),
                f"{method} {shape} NaN {policy}",
            )


def test_multipletests_identical_in_both_tiers():
    p = pvalue_families(np.random.default_rng(3), (500,))
    for method in ("holm", "hommel", "fdr_tsbky", "fdr_gbs", "lfdr"):
        both_tiers(lambda method=method: mtcert.multipletests(p, method=method)[:2], method)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_binom_test_identical_in_both_tiers(alternative):
    rng = np.random.default_rng(7)
    n = rng.integers(1, 3000, 800)
    k = rng.integers(0, n + 1)
    p = rng.uniform(0.01, 0.99, 800)
    # deep tails (summed in log space) and the issue-10 two-sided case
    k = np.concatenate([k, [38, 11, 1100, 0, 5000], rng.integers(0, 40, 50)])
    n = np.concatenate([n, [1167, 1167, 1167, 5000, 5000], np.full(50, 1200)])
    p = np.concatenate([p, [0.5, 0.4966, 0.5, 0.9, 0.1], np.full(50, 0.5)])
    out = both_tiers(lambda: mtcert.binom_test(k, n, p, alternative=alternative), alternative)
    assert np.all((out >= 0) & (out <= 1))
    both_tiers(lambda: mtcert.binom_test(k[:1], n[:1], p[:1], alternative=alternative))


def test_pvalue_table_and_shared_n_gather_identical_in_both_tiers():
    for n, tau in ((1, 0.5), (100, 0.75), (5000, 0.99)):
        both_tiers(lambda n=n, tau=tau: mtcert.greater_pvalue_table(n, tau), f"table {n}")
    k = np.random.default_rng(0).integers(0, 101, 3000)
    both_tiers(lambda: mtcert.binom_test(k, 100, 0.75))


@pytest.mark.parametrize("method", [*FAST_METHODS, "generalized-sidak", "fdr_tsbh"])
def test_segcertify_identical_in_both_tiers(method):
    rng = np.random.default_rng(sum(map(ord, method)) + 1)
    k = 2 if method.startswith("generalized") else 1
    for n, shape, axis in (
        (100, (64, 64), None),  # one family, histogram
        (5000, (3, 50), 1),  # families smaller than n: sorted
        (10**7, (20,), None),  # the direct table (few components, large n)
    ):
        hits = rng.binomial(n, rng.choice([0.9, 0.99, 0.999]), shape)
        guess = rng.integers(0, 19, shape)
        for hits_dtype in (np.int64, np.uint16 if n < 2**16 else np.int64, np.float64):
            args = (guess, hits.astype(hits_dtype), n)

            def run(args=args, axis=axis):
                cert = mtcert.segcertify_hits(
                    *args, tau=0.75, alpha=0.001, method=method, k=k, axis=axis
                )
                return cert.labels, np.asarray(cert.n_certified), cert.pvalues

            both_tiers(run, f"{method} n={n} {shape} {np.dtype(hits_dtype)}")
    counts0 = rng.multinomial(10, [0.3, 0.4, 0.3], size=(30, 30))
    counts = rng.multinomial(100, [0.9, 0.05, 0.05], size=(30, 30))
    both_tiers(
        lambda: mtcert.segcertify(counts0, counts, tau=0.75, alpha=0.01, method=method).labels,
        f"{method} from counts",
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 0.05, 5e-324, 1e-300, float("nan")])),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(METHODS),
)
def test_adjust_tiers_agree_on_arbitrary_pvalues(values, method):
    p = np.array(values)
    for policy in ("omit", "propagate"):
        both_tiers(
            lambda policy=policy: adjusted_reject(mtcert.adjust(p, method, nan_policy=policy))
        )


# -- the mechanism and the policy ------------------------------------------------------


KERNEL_MODULES = [binomial_kernels, certify_kernels, multitest_kernels]


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_python_twins_never_call_compiled_code(module):
    n_tiered = 0
    for name, value in vars(module).items():
        if isinstance(value, _jit.TieredKernel):
            n_tiered += 1
            assert value.python is _jit._python_twin(value.dispatcher), name
            value = value.dispatcher
        if isinstance(value, Dispatcher):
            twin = _jit._python_twin(value)
            assert twin.__code__ is value.py_func.__code__, name
            leaks = [
                g
                for g, v in twin.__globals__.items()
                if isinstance(v, Dispatcher | _jit.TieredKernel)
            ]
            assert not leaks, f"{name}'s twin would call compiled {leaks}"
    assert n_tiered, f"{module.__name__} declares no tiered kernel"


@njit(cache=False)
def _running_max(x, out):
    m = -np.inf
    for i in range(x.size):
        m = max(m, x[i])
        out[i] = m
    return x.size


def _fresh_kernel():
    return _jit.TieredKernel(njit(cache=False)(_running_max.py_func))


def test_auto_interprets_small_calls_and_compiles_large_or_repeated_ones(monkeypatch):
    assert _jit.get_mode() == "auto"
    kernel = _fresh_kernel()
    x = np.random.default_rng(0).random(100)
    out = np.empty_like(x)
    assert kernel(x, out) == 100
    np.testing.assert_array_equal(out, np.maximum.accumulate(x))
    assert not kernel.dispatcher.signatures and not kernel.compiled
    assert kernel.seconds_interpreted > 0
    big = np.random.default_rng(1).random(_tunables.INTERPRET_MAX_SIZE + 1)
    kernel(big, np.empty_like(big))
    assert kernel.dispatcher.signatures and kernel.compiled
    assert kernel(x, out) == 100  # compiled from now on
    # the budget: once spent, a small call compiles too
    kernel = _fresh_kernel()
    monkeypatch.setattr(_tunables, "INTERPRET_BUDGET_S", 0.0)
    kernel(x, out)  # interpreted (nothing spent yet), spends a little
    assert not kernel.compiled
    kernel(x, out)
    assert kernel.compiled and kernel.dispatcher.signatures
    assert "compiled" in repr(kernel)


def test_policies_never_and_always():
    big = np.random.default_rng(1).random(_tunables.INTERPRET_MAX_SIZE + 1)
    kernel = _fresh_kernel()
    in_tier("never", lambda: kernel(big, np.empty_like(big)))
    assert not kernel.dispatcher.signatures
    kernel = _fresh_kernel()
    in_tier("always", lambda: kernel(big[:3], np.empty(3)))
    assert kernel.dispatcher.signatures
    with pytest.raises(ValueError, match="mode must be one of auto, always, never"):
        _jit.set_mode("sometimes")


def test_environment_variable_sets_the_policy_and_is_checked():
    code = "import mtcert._jit as j; print(j.get_mode())"
    env = {"MTCERT_JIT": "Always", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "always"
    env["MTCERT_JIT"] = "fast"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "MTCERT_JIT must be one of auto, always, never" in out.stderr


def test_kernels_are_declared_tiered_where_defined():
    kernel = binomial_kernels.greater_elementwise
    assert isinstance(kernel, _jit.TieredKernel)
    assert kernel.__name__ == "greater_elementwise" and kernel.__doc__
    assert kernel.__module__ == "mtcert._kernels.binomial"
    # wrapped once: the callers hold the very object the kernel module defines
    assert mtcert.stats.binomial.greater_elementwise is kernel
    assert mtcert.certify.segmentation.certify_families is certify_kernels.certify_families
    # the callers never hold a kernel that skips the tiers
    for caller in (mtcert.stats.binomial, mtcert.stats.multitest, mtcert.certify.segmentation):
        plain = [name for name, v in vars(caller).items() if isinstance(v, Dispatcher)]
        assert not plain, f"{caller.__name__} calls {plain} without tiers"


def test_tiered_kernels_call_tiered_kernels_compiled():
    # certify_families calls use_histogram, itself tiered: numba types it as its dispatcher
    assert isinstance(certify_kernels.use_histogram, _jit.TieredKernel)
    hits = np.array([[3, 1, 2]])
    labels, copy = np.empty((1, 3), np.int64), np.empty((1, 3), np.int64)
    table = mtcert.greater_pvalue_table(3, 0.5)
    args = (np.zeros((1, 3), np.int64), hits, table, 0.5, 1.0, 2, 1.0, -1, labels, copy)
    interpreted = in_tier("never", lambda: certify_kernels.certify_families(*args))
    compiled = in_tier("always", lambda: certify_kernels.certify_families(*args))
    assert certify_kernels.certify_families.dispatcher.signatures
    assert_identical(interpreted, compiled)


def test_policy_holds_per_thread():
    """Two threads hold different policies at the same time; neither sees the other's."""
    x = np.random.default_rng(2).random(50)
    kernels = {"never": _fresh_kernel(), "always": _fresh_kernel()}
    both_inside = threading.Barrier(2, timeout=60)

    def run(mode):
        with _jit.policy(mode):
            both_inside.wait()
            out = np.empty_like(x)
            kernels[mode](x, out)
            seen = _jit.get_mode()
            both_inside.wait()  # the other thread is still inside its own block
        return seen, out

    with ThreadPoolExecutor(2) as pool:
        futures = {mode: pool.submit(run, mode) for mode in kernels}
        results = {mode: f.result() for mode, f in futures.items()}
    assert results["never"][0] == "never" and results["always"][0] == "always"
    assert not kernels["never"].dispatcher.signatures and not kernels["never"].compiled
    assert kernels["always"].dispatcher.signatures and kernels["always"].compiled
    np.testing.assert_array_equal(results["never"][1], results["always"][1])
    assert _jit.get_mode() == "auto"


def test_set_mode_sets_the_default_of_every_thread():
    previous = _jit.set_mode("never")
    try:
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(_jit.get_mode).result() == "never"
        with _jit.policy("always"):  # a block still overrides the default
            assert _jit.get_mode() == "always"
        assert _jit.get_mode() == "never"
    finally:
        assert _jit.set_mode(previous) == "never"
    assert _jit.get_mode() == "auto"


def test_helper_threads_follow_the_callers_policy():
    helper_ran = threading.Event()

    def chunk(worker, lo, hi):
        if worker == 0:
            helper_ran.wait(timeout=30)  # let a pool thread take a chunk first
        else:
            helper_ran.set()
        return worker, _jit.get_mode()

    with _jit.policy("never"):
        results = _threads.map_chunks(chunk, 12, 3)
    assert any(worker != 0 for worker, _ in results)
    assert {mode for _, mode in results} == {"never"}


def test_interpreted_time_is_counted_exactly_across_threads(monkeypatch):
    # every perf_counter reading advances a per-thread clock by 1: each call spends 1 s
    clock = threading.local()

    def perf_counter():
        clock.now = getattr(clock, "now", 0) + 1
        return float(clock.now)

    monkeypatch.setattr(_jit, "time", types.SimpleNamespace(perf_counter=perf_counter))
    kernel = _fresh_kernel()
    x = np.arange(5.0)

    def calls(_):
        with _jit.policy("never"):
            for _ in range(500):
                kernel(x, np.empty_like(x))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(calls, range(4)))
    assert kernel.seconds_interpreted == 4 * 500
