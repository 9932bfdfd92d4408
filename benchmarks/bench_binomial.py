"""pytest-benchmark: binom_test against scipy.stats.binom.sf (``make bench``)."""

import numpy as np
import pytest
import scipy.stats as st

from mtcert import binom_test

M = 10**6


@pytest.fixture(scope="module")
def shared_counts():
    return np.random.default_rng(0).binomial(100, 0.9, M)


@pytest.fixture(scope="module")
def per_element():
    rng = np.random.default_rng(1)
    n = rng.integers(50, 150, M)
    return rng.binomial(n, 0.8), n


@pytest.mark.benchmark(group="binom-shared-n")
def test_mtcert_shared_n(benchmark, shared_counts):
    benchmark(binom_test, shared_counts, 100, 0.75)


@pytest.mark.benchmark(group="binom-shared-n")
def test_scipy_shared_n(benchmark, shared_counts):
    benchmark(st.binom.sf, shared_counts - 1, 100, 0.75)


@pytest.mark.benchmark(group="binom-per-element")
def test_mtcert_per_element(benchmark, per_element):
    k, n = per_element
    benchmark(binom_test, k, n, 0.75)


@pytest.mark.benchmark(group="binom-per-element")
def test_scipy_per_element(benchmark, per_element):
    k, n = per_element
    benchmark(st.binom.sf, k - 1, n, 0.75)
