"""pytest-benchmark: adjust against statsmodels multipletests (``make bench``)."""

import warnings

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests as sm_multipletests

from mtcert.stats.multitest import adjust

M = 10**6


def sm(p, method):
    # statsmodels' Holm branch calls gc.collect(): counted here too, as users pay it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return sm_multipletests(p, alpha=0.05, method=method)


@pytest.fixture(scope="module")
def pvalues():
    """A realistic mix: 20% strong signals (tiny p-values), the rest uniform nulls."""
    rng = np.random.default_rng(0)
    p = rng.random(M)
    p[: M // 5] *= 1e-6
    return rng.permutation(p)


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "hommel"])
@pytest.mark.benchmark(group="adjust-1e6")
def test_mtcert_adjust(benchmark, pvalues, method):
    benchmark(adjust, pvalues, method)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
@pytest.mark.benchmark(group="adjust-1e6")
def test_statsmodels_multipletests(benchmark, pvalues, method):
    benchmark(sm, pvalues, method)


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
@pytest.mark.benchmark(group="adjust-rows")
def test_mtcert_adjust_many_families(benchmark, pvalues, method):
    """1000 families of 1000 tests (axis=1), e.g. repetitions of a power study."""
    benchmark(adjust, pvalues.reshape(1000, -1), method, axis=1)
