"""Noise models and the streaming sampler: independence, exact counts, batching."""

import numpy as np
import pytest
import torch
from scipy import stats

from mtcert_torch.noise import NoiseModel
from mtcert_torch.sampler import (
    CPU_MAX_BATCH,
    StreamingSampler,
    estimate_batch_size,
)

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def threshold_classifier(t):
    """Label 1 at a coordinate iff the (noisy) input there exceeds t."""
    return lambda x: (x > t).long()


class BatchSharedNoiseSampler(StreamingSampler):
    """The bug of the paper's released sampler: one noise draw reused for the whole batch."""

    def _labels(self, image, b):
        eps = self.noise.sample(image.shape, generator=self.generator, device=image.device)
        return self.classify((image + eps).unsqueeze(0).expand(b, *image.shape))


def binomial_moments_ok(sampler_cls, *, n=100, batch_size=10, components=20000, seed=1):
    """Hits of a component with success probability p must be exactly Bin(n, p).

    The classifier outputs 1 iff the N(0, 1) noise at a coordinate exceeds t, so
    with guess = 1 the hit counts of the ``components`` coordinates are i.i.d.
    Bin(n, p), p = 1 - Φ(t).  We compare their sample mean and variance with
    n p and n p (1 - p).  Tolerances: mean within 5 standard errors; variance
    within 8 % (the relative s.e. of a sample variance of 20 000 near-normal
    values is about 1 %, so 8 % is a false alarm rate far below 1e-9, while
    batch-shared noise inflates the variance by the batch size, here 10×).
    """
    t = 0.3
    p = float(stats.norm.sf(t))
    g = torch.Generator().manual_seed(seed)
    s = sampler_cls(
        threshold_classifier(t),
        num_classes=2,
        noise=NoiseModel("gaussian", 1.0),
        generator=g,
        batch_size=batch_size,
    )
    hits = s.hits(torch.zeros(components), torch.ones(components, dtype=torch.long), n).numpy()
    mean_ok = abs(hits.mean() - n * p) < 5 * np.sqrt(n * p * (1 - p) / components)
    var_ok = abs(hits.var(ddof=1) / (n * p * (1 - p)) - 1) < 0.08
    return mean_ok and var_ok


def test_hit_counts_are_binomial():
    assert binomial_moments_ok(StreamingSampler)


def test_binomial_check_catches_batch_shared_noise():
    assert not binomial_moments_ok(BatchSharedNoiseSampler)


def test_noise_differs_across_batch_and_batches():
    seen = []

    def record(x):
        seen.append(x.clone())
        return torch.zeros(x.shape, dtype=torch.long)

    g = torch.Generator().manual_seed(0)
    s = StreamingSampler(
        record, num_classes=1, noise=NoiseModel("gaussian", 0.5), generator=g, batch_size=4
    )
    s.counts(torch.zeros(3, 5, 5), 10)
    x = torch.cat(seen)
    assert x.shape[0] == 10 and [len(b) for b in seen] == [4, 4, 2]
    flat = x.reshape(10, -1)
    # every pair of copies differs in every coordinate (continuous noise)
    for i in range(10):
        for j in range(i + 1, 10):
            assert bool((flat[i] != flat[j]).all())


def test_guess_and_test_stages_are_independent():
    # Same seed stream, consecutive stages: the n0 counts and the n hits of each
    # component must be uncorrelated.  |corr| < 0.05 is ~7 standard errors at
    # 20 000 components; reusing the guessing draws would give corr ≈ 1.
    comps, num = 20000, 30
    g = torch.Generator().manual_seed(3)
    s = StreamingSampler(
        threshold_classifier(0.0),
        num_classes=2,
        noise=NoiseModel("gaussian", 1.0),
        generator=g,
        batch_size=7,
    )
    image = torch.zeros(comps)
    c0 = s.counts(image, num)[1].numpy()
    hits = s.hits(image, torch.ones(comps, dtype=torch.long), num).numpy()
    assert abs(np.corrcoef(c0, hits)[0, 1]) < 0.05


@pytest.mark.parametrize("kind, ref", [("gaussian", stats.norm), ("laplace", stats.laplace)])
def test_noise_distribution(kind, ref):
    g = torch.Generator().manual_seed(5)
    scale = 0.3
    x = NoiseModel(kind, scale).sample((50000,), generator=g).double().numpy()
    # KS false-alarm rate 1e-4
    assert stats.kstest(x, ref(scale=scale).cdf).pvalue > 1e-4
    assert np.isfinite(x).all()


def test_noise_validation():
    with pytest.raises(ValueError, match="noise"):
        NoiseModel("uniform", 1.0)
    with pytest.raises(ValueError, match="sigma"):
        NoiseModel("gaussian", 0.0)
    with pytest.raises(ValueError, match="sigma"):
        NoiseModel("gaussian", float("nan"))


def test_counts_exact_with_uneven_batches():
    # A deterministic classifier (label = coordinate index mod 3) gives exact counts.
    g = torch.Generator().manual_seed(0)
    s = StreamingSampler(
        lambda x: (torch.arange(x.shape[-1]) % 3).expand(x.shape[0], -1),
        num_classes=3,
        noise=NoiseModel("gaussian", 1.0),
        generator=g,
        batch_size=6,
    )
    c = s.counts(torch.zeros(7), 17)
    expected = torch.zeros(3, 7, dtype=torch.int32)
    expected[torch.arange(7) % 3, torch.arange(7)] = 17
    assert torch.equal(c, expected)
    assert s.stats.samples == 17 and s.stats.batch_sizes == [6, 6, 5]


def test_same_seed_reproduces_counts():
    def run():
        g = torch.Generator().manual_seed(11)
        s = StreamingSampler(
            threshold_classifier(0.2),
            num_classes=2,
            noise=NoiseModel("laplace", 0.5),
            generator=g,
            batch_size=5,
        )
        return s.counts(torch.zeros(40), 23)

    assert torch.equal(run(), run())


def test_label_range_and_shape_checked():
    g = torch.Generator().manual_seed(0)
    s = StreamingSampler(
        lambda x: torch.full(x.shape, 5, dtype=torch.long),
        num_classes=3,
        noise=NoiseModel("gaussian", 1.0),
        generator=g,
        batch_size=2,
    )
    with pytest.raises(ValueError, match=r"outside \[0, 3\) for 8 component"):
        s.counts(torch.zeros(4), 3)
    # a negative label in a later batch only: caught by the final check of the spare bin
    calls = []

    def late_negative(x):
        calls.append(1)
        out = torch.zeros(x.shape, dtype=torch.long)
        out[0, 1] = -1 if len(calls) == 3 else 0
        return out

    s.classify = late_negative
    with pytest.raises(ValueError, match=r"outside \[0, 3\) for 1 component"):
        s.counts(torch.zeros(4), 6)
    assert len(calls) == 3
    s = StreamingSampler(
        lambda x: x, num_classes=3, noise=NoiseModel("gaussian", 1.0), generator=g, batch_size=2
    )
    with pytest.raises(ValueError, match="integer labels"):
        s.counts(torch.zeros(4), 3)
    s.classify = lambda x: x > 0
    with pytest.raises(ValueError, match="integer labels"):
        s.counts(torch.zeros(4), 3)
    s.classify = lambda x: (x > 0).to(torch.int32)  # any integer dtype is fine
    assert int(s.counts(torch.zeros(4), 3).sum()) == 12
    with pytest.raises(ValueError, match="num"):
        s.counts(torch.zeros(4), 0)
    with pytest.raises(ValueError, match="batch_size"):
        StreamingSampler(
            lambda x: x, num_classes=3, noise=NoiseModel("gaussian", 1.0), generator=g, batch_size=0
        )


def test_auto_batch_size_respects_budget():
    image = torch.zeros(3, 32, 32)
    per_sample = 4 * (4 * image.numel() + 3 * 5 * 32 * 32)
    b = estimate_batch_size(lambda x: x, image, 5, memory_budget=10 * per_sample)
    assert b == 10
    assert estimate_batch_size(lambda x: x, image, 5, memory_budget=1) == 1
    assert estimate_batch_size(lambda x: x, image, 5, memory_budget=2**40) == CPU_MAX_BATCH


def test_out_of_memory_halves_automatic_batch():
    calls = []

    def classify(x):
        calls.append(x.shape[0])
        if x.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("simulated")
        return torch.zeros(x.shape, dtype=torch.long)

    g = torch.Generator().manual_seed(0)
    s = StreamingSampler(
        classify,
        num_classes=2,
        noise=NoiseModel("gaussian", 1.0),
        generator=g,
        memory_budget=4 * 16 * 10**6,
    )
    c = s.counts(torch.zeros(4), 50)
    assert int(c.sum()) == 4 * 50 and s.batch_size <= 4
    # a batch size given by the user is never changed silently
    s = StreamingSampler(
        classify, num_classes=2, noise=NoiseModel("gaussian", 1.0), generator=g, batch_size=8
    )
    with pytest.raises(torch.cuda.OutOfMemoryError):
        s.counts(torch.zeros(4), 50)
