"""pytest-benchmark: SEGCERTIFY fast path vs scipy + statsmodels (``make bench``)."""

import numpy as np
import pytest
import scipy.stats as st
from statsmodels.stats.multitest import multipletests

from mtcert.certify import ABSTAIN, segcertify, segcertify_hits

N = 1024 * 2048
n, TAU, ALPHA = 100, 0.75, 0.001


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(2021)
    guess = rng.integers(0, 19, N)
    p = np.where(rng.random(N) < 0.85, 0.99, rng.uniform(0.3, 0.95, N))
    return guess, rng.binomial(n, p)


@pytest.mark.benchmark(group="segcertify-1024x2048")
@pytest.mark.parametrize(
    ("method", "k"), [("holm", 1), ("bonferroni", 1), ("generalized-holm", 10)]
)
def test_mtcert_segcertify_hits(benchmark, image, method, k):
    guess, hits = image
    benchmark(segcertify_hits, guess, hits, n, tau=TAU, alpha=ALPHA, method=method, k=k)


@pytest.mark.benchmark(group="segcertify-1024x2048")
def test_scipy_statsmodels_holm(benchmark, image):
    guess, hits = image

    def run():
        reject = multipletests(st.binom.sf(hits - 1, n, TAU), alpha=ALPHA, method="holm")[0]
        return np.where(reject, guess, ABSTAIN)

    benchmark.pedantic(run, rounds=3, iterations=1)


@pytest.mark.benchmark(group="segcertify-general-path")
@pytest.mark.parametrize("method", ["hochberg", "holm-sidak"])
def test_mtcert_general_path(benchmark, image, method):
    guess, hits = image
    benchmark.pedantic(
        segcertify_hits,
        args=(guess, hits, n),
        kwargs={"tau": TAU, "alpha": ALPHA, "method": method},
        rounds=3,
        iterations=1,
    )


@pytest.mark.benchmark(group="segcertify-batched")
def test_mtcert_batched_repetitions(benchmark):
    """Power-study shape: 600 repetitions of N = 1000 components, one family each."""
    rng = np.random.default_rng(0)
    hits = rng.binomial(1000, 0.97, size=(600, 1000))
    guess = np.zeros_like(hits)
    benchmark(segcertify_hits, guess, hits, 1000, tau=TAU, alpha=ALPHA, axis=-1)


@pytest.mark.benchmark(group="segcertify-counts")
def test_mtcert_segcertify_from_counts(benchmark):
    """From (H, W, C) class counts, 512 x 1024 pixels and 19 classes."""
    rng = np.random.default_rng(1)
    probs = np.full(19, 0.01)
    probs[3] = 0.82
    counts0 = rng.multinomial(10, probs, size=(512, 1024))
    counts = rng.multinomial(n, probs, size=(512, 1024))
    benchmark(segcertify, counts0, counts, tau=TAU, alpha=ALPHA)
