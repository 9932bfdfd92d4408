"""The locuslab-style facade: Cohen's PREDICT/CERTIFY for classifiers, SEGCERTIFY for segmenters."""

import numpy as np
import pytest
import torch
from scipy import stats

from mtcert.certify.cohen import certify as cohen_certify
from mtcert_torch import Certifier, Smooth, TensorTask

pytestmark = pytest.mark.torch


def coin(x):
    """Logits of a two-class classifier: class 1 iff the first coordinate is positive."""
    one = (x.reshape(x.shape[0], -1)[:, 0] > 0).float()
    return torch.stack([1 - one, one], 1)


def test_classifier_certify_is_cohen_on_independent_counts():
    x = torch.full((3,), 0.3)
    label, radius = Smooth(coin, num_classes=2, sigma=0.5, seed=4).certify(
        x, n0=20, n=200, alpha=0.01, batch_size=64
    )
    # The same draws by hand: n0 copies, then n fresh copies, one generator stream.
    c = Certifier(TensorTask(coin, num_classes=2), batch_size=64, seed=4)
    counts0 = c.counts(x, sigma=0.5, num=20).numpy()
    counts = c.counts(x, sigma=0.5, num=200).numpy()
    want = cohen_certify(counts0, counts, alpha=0.01, sigma=0.5)
    assert label == int(want.label) == 1
    assert radius == pytest.approx(float(want.radius))
    # P(class 1) = Φ(0.6) = 0.73: the radius is below σ Φ⁻¹(0.73) with high probability
    assert 0 < radius < 0.5 * stats.norm.ppf(stats.norm.cdf(0.6))


def test_classifier_abstains_with_radius_zero_and_certify_is_sound():
    """At p = ½ exactly, any certificate is false: its rate must stay below α.

    200 seeded runs at α = 0.1: more than 32 false certificates has
    probability < 1e-3 under Bin(200, 0.1).  PREDICT must abstain mostly too.
    """
    x = torch.zeros(2)
    bad = abstain = 0
    for seed in range(200):
        smoothed = Smooth(coin, num_classes=2, sigma=1.0, seed=seed)
        label, radius = smoothed.certify(x, n0=10, n=100, alpha=0.1, batch_size=110)
        bad += label != Smooth.ABSTAIN
        if label == Smooth.ABSTAIN:
            assert radius == 0.0
        abstain += smoothed.predict(x, n=100, alpha=0.1, batch_size=110) == -1
    assert bad <= 32
    assert abstain >= 150


def test_segmenter_certify_is_segcertify():
    net = torch.nn.Conv2d(3, 4, 1)
    x = torch.rand(3, 5, 6)
    smoothed = Smooth(net, num_classes=4, sigma=0.25, tau=0.6, seed=2)
    assert not smoothed.is_classifier(x)
    labels, radius = smoothed.certify(x, n0=10, n=50, alpha=0.01, batch_size=20)
    want = Certifier(TensorTask(net, num_classes=4), batch_size=20, seed=2).certify(
        x, sigma=0.25, tau=0.6, n0=10, n=50, alpha=0.01
    )
    np.testing.assert_array_equal(labels, want.labels)
    assert radius == pytest.approx(0.25 * stats.norm.ppf(0.6)) == want.radius
    assert smoothed.predict(x, n=20, alpha=0.01, batch_size=20).shape == (5, 6)
