"""Training helpers: noise augmentation and the per-pixel consistency loss (App. B.3)."""

import math

import pytest
import torch

from mtcert_torch.data.synthetic import TinySegNet, make_shapes
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import (
    consistency_loss,
    gaussian_augment,
    noisy_training_step,
)

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def naive_consistency(logits, target, lam, eta, ignore=255):
    """Jeong & Shin's loss written out pixel by pixel (plain Python floats)."""
    m = len(logits)
    B, C, H, W = logits[0].shape
    total, count = 0.0, 0
    for b in range(B):
        for y in range(H):
            for x in range(W):
                t = int(target[b, y, x])
                if t == ignore:
                    continue
                probs = []
                for lg in logits:
                    z = [float(v) for v in lg[b, :, y, x]]
                    mx = max(z)
                    e = [math.exp(v - mx) for v in z]
                    s = sum(e)
                    probs.append([v / s for v in e])
                ce = sum(-math.log(p[t]) for p in probs) / m
                pm = [sum(p[c] for p in probs) / m for c in range(C)]
                kl = sum(sum(pm[c] * math.log(pm[c] / p[c]) for c in range(C)) for p in probs) / m
                ent = -sum(v * math.log(v) for v in pm)
                total += ce + lam * kl + eta * ent
                count += 1
    return total / count


def test_consistency_loss_matches_naive():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(2, 4, 3, 3, generator=g) for _ in range(3)]
    target = torch.randint(0, 4, (2, 3, 3), generator=g)
    target[0, 0, 0] = 255
    got = float(consistency_loss(logits, target, lam=1.0, eta=0.5))
    assert got == pytest.approx(naive_consistency(logits, target, 1.0, 0.5), rel=1e-5)
    # m = 1: plain cross entropy with ignore_index
    ce = torch.nn.functional.cross_entropy(logits[0], target, ignore_index=255)
    assert float(consistency_loss(logits[:1], target)) == pytest.approx(float(ce), rel=1e-6)
    with pytest.raises(ValueError, match="logits"):
        consistency_loss([], target)


def test_gaussian_augment_no_clipping():
    x = torch.zeros(20000)
    y = gaussian_augment(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert y.min() < 0 and abs(float(y.std()) - 0.5) < 0.02
    with pytest.raises(ValueError, match="sigma"):
        gaussian_augment(x, 0.0)


def test_training_step_reduces_loss():
    images, labels = make_shapes(8, 16, seed=0)
    torch.manual_seed(0)
    adapter = SegmentationAdapter(TinySegNet(3, 8), num_classes=3)
    opt = torch.optim.Adam(adapter.parameters(), lr=2e-2)
    g = torch.Generator().manual_seed(0)
    losses = [
        noisy_training_step(
            adapter, opt, images, labels, sigma=0.25, m=2, lam=1.0, eta=0.5, generator=g
        )
        for _ in range(15)
    ]
    assert losses[-1] < 0.8 * losses[0]
