"""Point-cloud smoothing: where the noise goes, rotations, independence, certificates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.transform import Rotation

from mtcert_torch.certifier import Certifier
from mtcert_torch.models import PointNet2Adapter, pointnet2_part_seg_msg
from mtcert_torch.models.pointnet2 import pointnet2_batch_size
from mtcert_torch.tasks.pointcloud import (
    PointCloudTask,
    axis_rotation_matrix,
    euler_rotation_matrix,
    normalize_point_cloud,
    rotate_point_cloud,
)

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


TASK_OPTIONS = ("num_classes", "smoothing", "axis", "normalize")


def PointCloudCertifier(model, **kwargs):
    """The one Certifier over a PointCloudTask (task options split from certifier options)."""
    task = {k: kwargs.pop(k) for k in TASK_OPTIONS if k in kwargs}
    return Certifier(PointCloudTask(model, **task), **kwargs)


class Spy:
    """A base classifier that records every cloud it is shown; labels from ``rule``."""

    def __init__(self, rule=None):
        self.seen = []
        self.rule = rule

    def __call__(self, points, category):
        self.seen.append(points.clone())
        if self.rule is None:
            return torch.zeros(points.shape[:2], dtype=torch.long)
        return self.rule(points).long()

    @property
    def clouds(self):
        return torch.cat(self.seen)


def cloud(n=30, seed=0, normals=True):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(n, 3, generator=g) * 2 + 3
    if not normals:
        return xyz
    nrm = torch.randn(n, 3, generator=g)
    return torch.cat([xyz, nrm / nrm.norm(dim=1, keepdim=True)], 1)


# ------------------------------------------------------------------- geometry
def test_normalize():
    p = cloud()
    out, center, scale = normalize_point_cloud(p)
    torch.testing.assert_close(out[:, :3].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert float(out[:, :3].norm(dim=1).max()) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(out[:, 3:], p[:, 3:])
    torch.testing.assert_close(out[:, :3] * scale + center, p[:, :3])
    with pytest.raises(ValueError, match="coincide"):
        normalize_point_cloud(torch.ones(5, 3))


def test_rotation_matrices_match_scipy():
    angles = np.random.default_rng(0).uniform(-3, 3, size=(20, 3))
    got = euler_rotation_matrix(torch.as_tensor(angles)).numpy()
    np.testing.assert_allclose(got, Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-12)
    axis = np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])
    theta = np.linspace(-4, 4, 9)
    got = axis_rotation_matrix(torch.as_tensor(axis), torch.as_tensor(theta)).numpy()
    want = Rotation.from_rotvec(theta[:, None] * axis).as_matrix()
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_rotation_preserves_norms_and_rotates_normals():
    p = normalize_point_cloud(cloud().double())[0]
    R = euler_rotation_matrix(
        torch.randn(5, 3, generator=torch.Generator().manual_seed(1)).double()
    )
    out = rotate_point_cloud(p, R)
    assert out.shape == (5, 30, 6)
    torch.testing.assert_close(out[..., :3].norm(dim=-1), p[:, :3].norm(dim=-1).expand(5, -1))
    torch.testing.assert_close(out[..., 3:].norm(dim=-1), torch.ones(5, 30, dtype=torch.float64))
    # The angle between a point and its normal is unchanged, and normals are R n.
    torch.testing.assert_close(
        (out[..., :3] * out[..., 3:]).sum(-1), (p[:, :3] * p[:, 3:]).sum(-1).expand(5, -1)
    )
    for b in range(5):
        torch.testing.assert_close(out[b, :, 3:], p[:, 3:] @ R[b].T)
        torch.testing.assert_close(out[b, :, :3], p[:, :3] @ R[b].T)
    assert rotate_point_cloud(p[:, :3], R).shape == (5, 30, 3)


# ------------------------------------------------------------------- where the noise goes
@pytest.mark.parametrize(
    ("smoothing", "sd", "radius"),
    [
        ("gaussian", 0.5, 0.5 * stats.norm.ppf(0.8)),
        ("laplace", 0.5 * math.sqrt(2), -0.5 * math.log(2 * (1 - 0.8))),
    ],
)
def test_coordinate_noise_on_xyz_only(smoothing, sd, radius):
    spy = Spy()
    c = PointCloudCertifier(spy, num_classes=2, smoothing=smoothing, batch_size=16, seed=3)
    p = cloud(40)
    c.counts((p, 0), sigma=0.5, num=64)
    seen = spy.clouds
    clean = normalize_point_cloud(p)[0]
    assert seen.shape == (64, 40, 6)
    assert torch.equal(seen[..., 3:], clean[:, 3:].expand(64, -1, -1))  # normals exact
    eps = (seen[..., :3] - clean[:, :3]).flatten().double()
    # 7 680 draws of s.d. ``sd``: mean within 5 s.e.; s.d. within 8 % (relative s.e. of the
    # sample s.d. about 0.8 % for Gaussian, 1.3 % for Laplace noise).
    assert abs(float(eps.mean())) < 5 * sd / math.sqrt(eps.numel())
    assert float(eps.std()) == pytest.approx(sd, rel=0.08)
    cert = c.certify((p, 0), sigma=0.5, tau=0.8, n0=4, n=60, alpha=0.1)
    assert cert.radius == pytest.approx(radius)
    assert (cert.labels == 0).all()  # a constant model: 0.8^60 < 0.1 / 40, all certified


def test_normalize_off_and_xyz_only_model():
    spy = Spy()
    c = PointCloudCertifier(spy, num_classes=2, normalize=False, batch_size=4)
    p = cloud(10, normals=False)
    c.counts((p, 0), sigma=1e-3, num=4)
    torch.testing.assert_close(spy.clouds, p.expand(4, -1, -1), atol=0.02, rtol=0)
    # Automatic batches on CPU: at most CPU_MAX_BATCH copies per call of the model.
    auto = PointCloudCertifier(spy, num_classes=2)
    auto.counts((p, 0), sigma=0.1, num=40)
    assert auto.stats.batch_sizes == [16, 16, 8] and auto.stats.samples == 40


def test_hit_counts_are_binomial_under_coordinate_noise():
    """Per-point hits must be Bin(n, p): noise independent across samples and batches.

    The rule labels a point 1 iff its x-coordinate noise exceeds t σ, so with
    guess 1 each of the 1 500 points has hits ~ Bin(n, p), p = 1 − Φ(t),
    independently.  Mean within 5 s.e.; variance within 10 % (relative s.e.
    of the variance about 3.7 %); a batch-shared draw would multiply the
    variance by the batch size (10).
    """
    sigma, t, n = 0.3, 0.4, 80
    p = cloud(1500, seed=4, normals=False)
    clean = p.clone()
    spy = Spy(rule=lambda x: (x[..., 0] - clean[:, 0]) > t * sigma)
    c = PointCloudCertifier(spy, num_classes=2, normalize=False, batch_size=10, seed=11)
    hits = c.counts((p, 0), sigma=sigma, num=n)[1].numpy()  # hits of label 1
    q = float(stats.norm.sf(t))
    assert abs(hits.mean() - n * q) < 5 * math.sqrt(n * q * (1 - q) / hits.size)
    assert hits.var(ddof=1) / (n * q * (1 - q)) == pytest.approx(1.0, abs=0.10)


# ------------------------------------------------------------------- rotation smoothing
def kabsch(x, clean):
    """The rotation matrix taking the ``clean`` points to the points of ``x`` (least squares)."""
    u, _, vt = np.linalg.svd(x[:, :3].double().numpy().T @ clean[:, :3].double().numpy())
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def recovered_euler(seen, clean):
    """Euler angles of the rotation taking ``clean`` to each recorded cloud."""
    return np.array([Rotation.from_matrix(kabsch(x, clean)).as_euler("xyz") for x in seen])


def test_rotation_smoothing_three_axes():
    spy = Spy()
    sigma = 0.2
    c = PointCloudCertifier(spy, num_classes=2, smoothing="rotation", batch_size=25, seed=2)
    p = cloud(12)
    c.counts((p, 0), sigma=sigma, num=400)
    clean = normalize_point_cloud(p)[0]
    seen = spy.clouds
    # Rigid: point norms, normal norms and point·normal unchanged; normals rotated with points.
    torch.testing.assert_close(
        seen[..., :3].norm(dim=-1), clean[:, :3].norm(dim=-1).expand(400, -1)
    )
    torch.testing.assert_close(
        (seen[..., :3] * seen[..., 3:]).sum(-1),
        (clean[:, :3] * clean[:, 3:]).sum(-1).expand(400, -1),
        atol=1e-5,
        rtol=0,
    )
    angles = recovered_euler(seen, clean)
    for b in range(0, 400, 97):
        R = torch.as_tensor(Rotation.from_euler("xyz", angles[b]).as_matrix(), dtype=torch.float32)
        torch.testing.assert_close(seen[b, :, 3:], clean[:, 3:] @ R.T, atol=1e-5, rtol=0)
    # ε ~ N(0, σ² I₃): each coordinate passes a KS test, covariance ≈ σ² I (s.e. ≈ 0.07 σ²).
    for j in range(3):
        assert stats.kstest(angles[:, j], "norm", args=(0, sigma)).pvalue > 1e-4
    cov = np.cov(angles.T) / sigma**2
    np.testing.assert_allclose(cov, np.eye(3), atol=0.3)


def test_rotation_draws_independent_within_batches():
    """One angle per sample, independent: per-batch counts of ε > 0 are Bin(20, 1/2).

    50 batches of 20: the sample variance of the counts has 49·s²/5 ~ χ²₄₉, so
    s² ∈ [2, 10] has a false-alarm rate of about 2e-5; one draw shared by a
    batch would make every count 0 or 20 (variance ≈ 100).  Consecutive
    draws must also be uncorrelated (|r| < 4/√1000, false alarm 6e-5).
    """
    spy = Spy()
    c = PointCloudCertifier(spy, num_classes=2, smoothing="rotation", axis="z", batch_size=20)
    p = cloud(6)
    c.counts((p, 0), sigma=0.3, num=1000)
    clean = normalize_point_cloud(p)[0]
    seen = spy.clouds
    # Angle of point 0 about z, relative to the clean one.
    eps = torch.atan2(seen[:, 0, 1], seen[:, 0, 0]) - torch.atan2(clean[0, 1], clean[0, 0])
    eps = ((eps + math.pi) % (2 * math.pi) - math.pi).numpy()
    assert stats.kstest(eps, "norm", args=(0, 0.3)).pvalue > 1e-4
    per_batch = (eps > 0).reshape(50, 20).sum(1)
    assert 2 <= per_batch.var(ddof=1) <= 10
    assert abs(np.corrcoef(eps[:-1], eps[1:])[0, 1]) < 4 / math.sqrt(1000)
    # The z coordinates never move under rotations about z.
    torch.testing.assert_close(seen[..., 2], clean[:, 2].expand(1000, -1))


@pytest.mark.parametrize("axis", ["x", [1.0, 2.0, -0.5]])
def test_single_axis_rotated_input_is_shifted_angles(axis):
    """Smoothing R(θ) x with seed s sees R(ε_i + θ) x: the certificate transfers exactly."""
    theta = 0.37
    p = cloud(15, seed=6)
    u = (
        torch.tensor([1.0, 0.0, 0.0])
        if axis == "x"
        else torch.tensor(axis) / torch.tensor(axis).norm()
    )
    R_theta = axis_rotation_matrix(u, torch.tensor(theta))
    rotated = rotate_point_cloud(p, R_theta[None])[0]
    runs = {}
    for name, pts in (("plain", p), ("rotated", rotated)):
        spy = Spy()
        c = PointCloudCertifier(
            spy, num_classes=2, smoothing="rotation", axis=axis, batch_size=7, seed=9
        )
        c.counts((pts, 0), sigma=0.25, num=30)
        runs[name] = spy.clouds
    clean = normalize_point_cloud(p)[0]
    # Recover ε_i from the plain run (the same seed draws the same ε_i in both runs).
    axis_np = u.double().numpy()
    eps = [
        float(Rotation.from_matrix(kabsch(x, clean)).as_rotvec() @ axis_np) for x in runs["plain"]
    ]
    eps = torch.tensor(eps)
    want = rotate_point_cloud(clean, axis_rotation_matrix(u, eps + theta))
    torch.testing.assert_close(runs["rotated"], want, atol=2e-5, rtol=0)


def test_three_axis_rotations_do_not_compose_additively():
    """The caveat: R(θ) then Euler smoothing is not the Euler distribution shifted by θ."""
    theta = torch.tensor([0.4, -0.3, 0.5], dtype=torch.float64)
    eps = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.25
    composed = euler_rotation_matrix(eps) @ euler_rotation_matrix(theta)
    shifted = euler_rotation_matrix(eps + theta)
    assert float((composed - shifted).abs().amax(dim=(1, 2)).min()) > 1e-3
    u = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    torch.testing.assert_close(
        axis_rotation_matrix(u, eps[:, 0]) @ axis_rotation_matrix(u, theta[0]),
        axis_rotation_matrix(u, eps[:, 0] + theta[0]),
    )


# ------------------------------------------------------------------- certificates
@pytest.fixture(scope="module")
def adapter():
    torch.manual_seed(0)
    return PointNet2Adapter(pointnet2_part_seg_msg(npoints=(16, 4)), votes=2, seed=1)


def test_certify_pointnet_gaussian(adapter):
    p = cloud(64, seed=2)
    kw = dict(sigma=0.25, tau=0.75, n0=8, n=24, alpha=0.01)
    a = PointCloudCertifier(adapter, batch_size=16, seed=5).certify((p, "Chair"), **kw)
    b = PointCloudCertifier(adapter, batch_size=16, seed=5).certify((p, 4), **kw)
    assert np.array_equal(a.guess, b.guess) and np.array_equal(a.hits, b.hits)
    assert a.labels.shape == (64,) and a.info["category"] == 4
    assert a.radius == pytest.approx(0.25 * stats.norm.ppf(0.75))
    assert ((a.guess >= 12) & (a.guess < 16)).all()
    certified = a.labels[a.labels >= 0]
    assert ((certified >= 12) & (certified < 16)).all()
    assert ((a.hits >= 0) & (a.hits <= 24)).all()
    np.testing.assert_array_equal(a.labels >= 0, a.statistics.reject)
    np.testing.assert_array_equal(a.labels < 0, a.abstained)
    assert np.mean(a.labels == a.guess) == pytest.approx(1 - a.abstain_rate)
    assert "Certificate(shape=(64,), noise=gaussian(0.25)" in repr(a)
    assert a.info["scale"] > 0 and a.info["center"].shape == (3,)
    base = PointCloudCertifier(adapter).predict((p, 4))
    assert base.shape == (64,) and ((base >= 12) & (base < 16)).all()


def test_certify_rotation_radius_and_xyz_only_model():
    net = pointnet2_part_seg_msg(normals=False, npoints=(8, 4))
    c = PointCloudCertifier(
        PointNet2Adapter(net, votes=1), smoothing="rotation", axis="z", batch_size=10
    )
    cert = c.certify((cloud(32), 15), sigma=0.125, tau=0.75, n0=5, n=10, alpha=0.1)
    assert cert.radius == pytest.approx(0.125 * stats.norm.ppf(0.75))
    assert cert.info["axis"] == (0.0, 0.0, 1.0) and "noise=rotation axis=0,0,1(" in repr(cert)
    assert ((cert.guess >= 47) & (cert.guess < 50)).all()


def test_pointnet_batch_size_heuristic():
    net = pointnet2_part_seg_msg()
    full = pointnet2_batch_size(net, 2048)
    assert 1 <= full < pointnet2_batch_size(net, 128) <= 16
    assert pointnet2_batch_size(net, 2048, memory_budget=1) == 1


def test_fwer_at_the_null_boundary():
    """Every point's guessed label has probability exactly τ (H0 true at its boundary).

    Then any certified point is a false certificate, and the rate of
    repetitions with at least one must stay below α = 0.1.  In 150 seeded
    repetitions, more than 27 such repetitions has probability < 1e-3 under
    Bin(150, 0.1).
    """
    tau, sigma, m = 0.75, 0.5, 25
    t = sigma * stats.norm.ppf(1 - tau)  # P(noise > t) = τ
    p = cloud(m, seed=8, normals=False)
    clean = p.clone()
    spy_rule = Spy(rule=lambda x: (x[..., 0] - clean[:, 0]) > t)
    c = PointCloudCertifier(spy_rule, num_classes=2, normalize=False, batch_size=60)
    bad = 0
    for rep in range(150):
        spy_rule.seen.clear()
        cert = c.manual_seed(rep).certify((p, 0), sigma=sigma, tau=tau, n0=20, n=100, alpha=0.1)
        bad += bool((cert.labels >= 0).any())
    assert bad <= 27


def test_bad_inputs(adapter):
    spy = Spy()
    with pytest.raises(ValueError, match="num_classes is required"):
        PointCloudCertifier(spy)
    with pytest.raises(ValueError, match="smoothing must be one of"):
        PointCloudCertifier(spy, num_classes=2, smoothing="uniform")
    with pytest.raises(ValueError, match="axis is only used"):
        PointCloudCertifier(spy, num_classes=2, axis="z")
    with pytest.raises(ValueError, match="axis must be one of"):
        PointCloudCertifier(spy, num_classes=2, smoothing="rotation", axis="w")
    with pytest.raises(ValueError, match="non-zero 3-vector"):
        PointCloudCertifier(spy, num_classes=2, smoothing="rotation", axis=[0, 0, 0])
    with pytest.raises(ValueError, match="model must be"):
        PointCloudCertifier(3, num_classes=2)
    c = PointCloudCertifier(spy, num_classes=2)
    for bad, msg in (
        (torch.zeros(5, 4), r"\(N, 3\) or \(N, 6\)"),
        (torch.zeros(0, 3), r"\(N, 3\) or \(N, 6\)"),
        (torch.full((5, 3), float("nan")), "finite"),
        (torch.zeros(5, 3, dtype=torch.bool), "real numbers"),
    ):
        with pytest.raises(ValueError, match=msg):
            c.counts((bad, 0), sigma=0.1, num=2)
    with pytest.raises(ValueError, match="sigma"):
        c.counts((cloud(), 0), sigma=0.0, num=2)
    with pytest.raises(ValueError, match="tau"):
        c.certify((cloud(), 0), sigma=0.1, tau=0.3, n0=2, n=2, alpha=0.1)
    ca = PointCloudCertifier(adapter)
    with pytest.raises(ValueError, match="uses normals"):
        ca.counts((cloud(normals=False), 0), sigma=0.1, num=2)
    with pytest.raises(ValueError, match="category"):
        ca.counts((cloud(), 16), sigma=0.1, num=2)
    with pytest.raises(ValueError, match="category"):
        ca.counts((cloud(), "Sofa"), sigma=0.1, num=2)
    with pytest.raises(ValueError, match="PointNet2PartSegMsg"):
        PointNet2Adapter(torch.nn.Linear(3, 3))
