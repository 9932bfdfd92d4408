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


# -- locuslab behaviour: eval mode per call, the model's dtype, torch's global seed ----------
def _dropout_classifier():
    """Class 1 in eval mode; with dropout active the logits are often both zero (class 0)."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.9))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([0.0, 3.0]))
    return net


def test_eval_mode_for_every_call_and_the_callers_mode_restored():
    net = _dropout_classifier()
    smoothed = Smooth(net, num_classes=2, sigma=0.5, seed=0)
    net.train()  # switched back after the facade was built, as a training script would
    label, radius = smoothed.certify(torch.zeros(2), n0=10, n=100, alpha=0.001, batch_size=50)
    # all 100 copies say 1: Cohen's bound 0.001 ** (1 / 100), radius 0.5 Φ⁻¹ of it
    assert label == 1 and radius == pytest.approx(0.5 * stats.norm.ppf(0.001 ** (1 / 100)))
    assert smoothed.predict(torch.zeros(2), n=100, alpha=0.001, batch_size=50) == 1
    assert net.training and net[1].training  # restored
    # a BatchNorm model in training mode cannot classify one input; in eval mode it can
    bn = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with torch.no_grad():
        bn[0].bias.copy_(torch.tensor([0.0, 3.0]))
    bn.train()
    before = bn[1].running_mean.clone()
    label, _ = Smooth(bn, num_classes=2, sigma=0.5, seed=0).certify(
        torch.zeros(2), n0=10, n=100, alpha=0.001, batch_size=50
    )
    assert label == 1 and bn.training and torch.equal(bn[1].running_mean, before)


class _Recorder(torch.nn.Module):
    """A linear segmenter that records the dtypes it is called with."""

    def __init__(self, dtype):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1).to(dtype)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.tensor([0.0, 4.0]))
        self.seen = set()

    def forward(self, z):
        self.seen.add(z.dtype)
        return self.conv(z)


@pytest.mark.parametrize("input_dtype", [torch.float64, torch.float32, torch.uint8])
def test_a_float64_model_gets_float64_inputs_and_noise(input_dtype):
    net = _Recorder(torch.float64)
    smoothed = Smooth(net, num_classes=2, sigma=0.25, seed=0)
    x = torch.zeros(3, 4, 4, dtype=input_dtype)
    assert smoothed.certifier.prepare(x).center.dtype == torch.float64  # noise drawn in it
    labels, radius = smoothed.certify(x, n0=10, n=50, alpha=0.01, batch_size=20)
    assert (labels == 1).all() and radius == pytest.approx(0.25 * stats.norm.ppf(0.75))
    assert net.seen == {torch.float64}


def test_a_bfloat16_model_gets_float32_noise_cast_to_its_dtype():
    net = _Recorder(torch.bfloat16)
    smoothed = Smooth(net, num_classes=2, sigma=0.25, seed=0)
    assert smoothed.certifier.prepare(torch.zeros(3, 4, 4)).center.dtype == torch.float32
    labels, _ = smoothed.certify(torch.zeros(3, 4, 4), n0=10, n=50, alpha=0.01, batch_size=20)
    assert (labels == 1).all() and net.seen == {torch.bfloat16}


def test_seed_none_follows_torchs_global_generator_and_an_int_seed_does_not():
    x = torch.full((3,), 0.3)

    def certify(seed=None):
        s = Smooth(coin, num_classes=2, sigma=0.5, seed=seed)
        return s.certify(x, n0=20, n=200, alpha=0.01, batch_size=64)

    results = {}
    for g in (1, 2, 3, 4):
        torch.manual_seed(g)
        results[g] = certify()
    torch.manual_seed(1)
    assert certify() == results[1]  # reproducible under the global seed
    assert len(set(results.values())) > 1  # and the global seed matters
    torch.manual_seed(1)
    a = certify(seed=5)
    torch.manual_seed(2)
    assert certify(seed=5) == a  # a private generator ignores it


@pytest.mark.parametrize("batch_size", [2.7, 0, -3, "8", True])
def test_batch_size_must_be_a_positive_integer(batch_size):
    smoothed = Smooth(coin, num_classes=2, sigma=0.5, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        smoothed.certify(torch.zeros(2), n0=10, n=100, alpha=0.01, batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        smoothed.predict(torch.zeros(2), n=100, alpha=0.01, batch_size=batch_size)
    assert smoothed.predict(torch.zeros(2), n=10, alpha=0.01, batch_size=np.int64(5)) in (-1, 0, 1)


def test_a_nan_network_is_refused_not_certified_as_class_zero():
    from mtcert_torch.task import NonFiniteOutputError

    net = torch.nn.Linear(2, 3)
    with torch.no_grad():
        net.weight.fill_(float("nan"))
    smoothed = Smooth(net, num_classes=3, sigma=0.5, seed=0)
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        smoothed.certify(torch.zeros(2), n0=10, n=100, alpha=0.001, batch_size=50)
