"""PGD attacks (paper App. C.1) and the empirical check of certificates under attack.

The projections are compared with closed forms and an independent bisection; the attacks
with feasibility (ball and box) and their effect on a tiny model trained like the demo's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from mtcert_torch.attacks import (
    _random_start,
    attack_certificate,
    pgd_point_cloud,
    pgd_segmentation,
    project_l1,
    project_l2,
    segmentation_log_probs,
)
from mtcert_torch.certifier import Certifier
from mtcert_torch.data.synthetic import TinySegNet, make_shapes
from mtcert_torch.settings import Settings
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise

pytestmark = pytest.mark.torch
TOL = 1e-5  # float32 relative slack on norms


@pytest.fixture(scope="module")
def demo():
    """TinySegNet trained with σ = 0.25 noise as mtcert_torch.runs.demo.run_demo trains it
    (smaller images and training set, as in tests/test_torch_e2e.py)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_train, y_train = make_shapes(64, 24, seed=0)
    x_test, y_test = make_shapes(2, 24, seed=1)
    adapter = SegmentationAdapter(TinySegNet(num_classes=3), num_classes=3)
    train_with_noise(adapter, x_train, y_train, sigma=0.25, steps=60, seed=0)
    return adapter.eval(), x_test, y_test


def accuracy(adapter, x, y):
    with torch.no_grad():
        return float((adapter.labels(x) == y).float().mean())


# -- projections ------------------------------------------------------------------------------


def test_project_l2_closed_form():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(6, 3, 4, 5, generator=g, dtype=torch.float64)
    delta[:3] *= 10  # outside the ball
    delta[3:] *= 0.01  # inside
    out = project_l2(delta, 1.5)
    norms = delta.flatten(1).norm(dim=1)
    for b in range(6):
        want = delta[b] * 1.5 / norms[b] if norms[b] > 1.5 else delta[b]
        torch.testing.assert_close(out[b], want)
    with pytest.raises(ValueError, match="radius"):
        project_l2(delta, 0.0)


def l1_projection_by_bisection(v: np.ndarray, radius: float) -> np.ndarray:
    """argmin ||x - v||_2 s.t. ||x||_1 <= radius: soft thresholding, theta found by bisection."""
    if np.abs(v).sum() <= radius:
        return v
    lo, hi = 0.0, np.abs(v).max()
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.maximum(np.abs(v) - mid, 0).sum() > radius:
            lo = mid
        else:
            hi = mid
    return np.sign(v) * np.maximum(np.abs(v) - hi, 0)


def test_project_l1_against_bisection_and_optimality():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(8, 2, 7)) * rng.uniform(0.05, 3, size=(8, 1, 1))
    out = project_l1(torch.from_numpy(v), 2.0).numpy()
    for b in range(8):
        want = l1_projection_by_bisection(v[b].ravel(), 2.0).reshape(v[b].shape)
        np.testing.assert_allclose(out[b], want, atol=1e-10)
        assert np.abs(out[b]).sum() <= 2.0 + 1e-10
        # no feasible point is closer (random points of the ball)
        y = rng.laplace(size=(500, v[b].size))
        y *= (2.0 * rng.random((500, 1))) / np.abs(y).sum(1, keepdims=True)
        d_best = np.linalg.norm(v[b].ravel() - out[b].ravel())
        assert (np.linalg.norm(v[b].ravel() - y, axis=1) >= d_best - 1e-12).all()
    small = torch.tensor([[0.5, -0.25]], dtype=torch.float64)
    torch.testing.assert_close(project_l1(small, 2.0), small)
    torch.testing.assert_close(
        project_l1(torch.tensor([[3.0, 1.0, -0.5]]), 2.0), torch.tensor([[2.0, 0.0, 0.0]])
    )


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_random_start_is_uniform_in_the_ball(norm):
    """For a uniform point of a d-dimensional ball, (||x|| / R)^d is U(0, 1) (any norm)."""
    g = torch.Generator().manual_seed(2)
    d, R = 3, 0.7
    x = _random_start(torch.zeros(4000, d, dtype=torch.float64), R, norm, g)
    r = x.norm(p=2 if norm == "l2" else 1, dim=1).numpy()
    assert (r <= R * (1 + 1e-12)).all()
    assert stats.kstest((r / R) ** d, "uniform").pvalue > 1e-4
    # the direction is symmetric: every coordinate has mean ~0
    assert np.abs(x.mean(0).numpy()).max() < 4 * R / np.sqrt(4000)
    # with a mask only the marked coordinates move, uniformly in their own ball
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    x = _random_start(torch.zeros(4000, 5, dtype=torch.float64), R, norm, g, mask)
    assert (x[:, 3:] == 0).all()
    r = x.norm(p=2 if norm == "l2" else 1, dim=1).numpy()
    assert stats.kstest((r / R) ** 3, "uniform").pvalue > 1e-4


# -- attacks on images ------------------------------------------------------------------------


def test_pgd_stays_in_ball_and_box_and_lowers_accuracy(demo):
    adapter, x, y = demo
    g = torch.Generator().manual_seed(3)
    R = 2.0
    adv = pgd_segmentation(adapter, x, y, radius=R, steps=10, generator=g)
    assert adv.shape == x.shape and float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= R * (1 + TOL)
    noise = torch.randn(x.shape, generator=g)
    rand = (x + R * noise / noise.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)).clamp(0, 1)
    clean, attacked, random = (
        accuracy(adapter, x, y),
        accuracy(adapter, adv, y),
        accuracy(adapter, rand, y),
    )
    print(f"accuracy clean {clean:.3f}, random {random:.3f}, PGD {attacked:.3f}")
    assert attacked < clean - 0.1 and attacked < random - 0.1
    # against its own clean prediction (no target) the attack also bites
    adv2 = pgd_segmentation(adapter, x, radius=R, steps=10, generator=g)
    with torch.no_grad():
        agree = float((adapter.labels(adv2) == adapter.labels(x)).float().mean())
    assert agree < 0.9


def test_pgd_l1_stays_in_ball_and_box_and_lowers_accuracy(demo):
    adapter, x, y = demo
    R = 40.0
    adv = pgd_segmentation(
        adapter, x, y, radius=R, steps=10, norm="l1", sparsity=0.05,
        generator=torch.Generator().manual_seed(4),
    )  # fmt: skip
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).flatten(1).norm(p=1, dim=1).max()) <= R * (1 + TOL)
    assert accuracy(adapter, adv, y) < accuracy(adapter, x, y) - 0.1


def test_pgd_raw_gradient_and_no_random_start_and_training_mode_restored(demo):
    adapter, x, y = demo
    adapter.train()
    try:
        adv = pgd_segmentation(
            adapter, x[:1], y[:1], radius=1.0, steps=3, step_size=50.0, normalize=False,
            random_start=False,
        )  # fmt: skip
        assert adapter.training
    finally:
        adapter.eval()
    assert float((adv - x[:1]).flatten(1).norm()) <= 1.0 * (1 + TOL)
    assert float((adv - x[:1]).abs().max()) > 0


def test_log_probs_of_a_multiscale_adapter_match_its_probabilities():
    torch.manual_seed(5)
    adapter = SegmentationAdapter(
        torch.nn.Conv2d(3, 4, 3, padding=1), num_classes=4, scales=(0.5, 1.0), flip=True
    ).eval()
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(
            segmentation_log_probs(adapter, x).exp(), adapter.probabilities(x)
        )
    # the attack runs through every scale and flip
    adv = pgd_segmentation(adapter, x, radius=0.5, steps=3, generator=torch.Generator())
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= 0.5 * (1 + TOL)
    # a plain callable returning logits is accepted too
    net = torch.nn.Conv2d(3, 2, 1)
    adv = pgd_segmentation(net, x, radius=0.5, steps=2, generator=torch.Generator())
    assert adv.shape == x.shape


def test_pgd_input_errors(demo):
    adapter, x, y = demo
    with pytest.raises(ValueError, match="norm"):
        pgd_segmentation(adapter, x, y, radius=1.0, norm="linf")
    with pytest.raises(ValueError, match="radius"):
        pgd_segmentation(adapter, x, y, radius=-1.0)
    with pytest.raises(ValueError, match="steps"):
        pgd_segmentation(adapter, x, y, radius=1.0, steps=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd_segmentation(adapter, x * 255, y, radius=1.0)
    with pytest.raises(ValueError, match="target must have shape"):
        pgd_segmentation(adapter, x, y[:, :5], radius=1.0)
    with pytest.raises(ValueError, match="sparsity"):
        pgd_segmentation(adapter, x, y, radius=1.0, norm="l1", sparsity=2.0)


# -- point clouds -------------------------------------------------------------------------------


def test_pgd_point_cloud_moves_only_xyz_within_the_ball():
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    pts = torch.randn(3, 64, 6)
    with torch.no_grad():
        target = net(pts).argmax(-1)
    R = 0.5
    adv = pgd_point_cloud(net, pts, target, radius=R, steps=10,
                          generator=torch.Generator().manual_seed(7))  # fmt: skip
    assert torch.equal(adv[..., 3:], pts[..., 3:])
    assert float((adv - pts)[..., :3].flatten(1).norm(dim=1).max()) <= R * (1 + TOL)

    def loss(p):
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(p).transpose(1, 2), target))

    assert loss(adv) > loss(pts)
    adv1 = pgd_point_cloud(net, pts, target, radius=R, steps=5, norm="l1")
    assert float((adv1 - pts)[..., :3].flatten(1).norm(p=1, dim=1).max()) <= R * (1 + TOL)
    with pytest.raises(ValueError, match="points must have shape"):
        pgd_point_cloud(net, pts[..., :2], target, radius=R)
    with pytest.raises(ValueError, match="target must have shape"):
        pgd_point_cloud(net, pts, target[:, :3], radius=R)


# -- the empirical check of the certificate -----------------------------------------------------


def test_certified_pixels_do_not_flip_within_the_radius(demo):
    """Within R no certified pixel's smoothed label changes; at 30 R they do (positive control)."""
    adapter, x, y = demo
    certifier = Certifier(adapter, batch_size=110, seed=0)
    settings = Settings(sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001)
    res = attack_certificate(
        certifier, x[0], y[0].numpy(), settings, steps=20,
        generator=torch.Generator().manual_seed(8),
    )  # fmt: skip
    print(res)
    assert res.certified > 300 and res.perturbation <= res.radius * (1 + TOL)
    assert res.radius == pytest.approx(0.25 * stats.norm.ppf(0.75))
    lo, hi = res.flip_interval
    assert res.flipped == 0 and lo == 0 and 0 < hi < 0.015
    assert res.base_acc_attacked <= res.base_acc_clean
    far = attack_certificate(
        certifier, x[0], y[0].numpy(), settings, steps=20, radius_factor=30.0,
        generator=torch.Generator().manual_seed(9),
    )  # fmt: skip
    print(far)
    assert far.flip_interval[0] > 0.01  # flips are measurable when the promise does not apply
    assert far.base_acc_drop > 0.2
    assert far.adversarial.shape == x[0].shape and far.base_attacked.shape == (24, 24)
