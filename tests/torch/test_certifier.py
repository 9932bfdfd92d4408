"""Certifier: wiring to mtcert, FWER soundness through the whole plugin, metrics."""

import numpy as np
import pytest
import torch
from scipy import stats

from mtcert.certify.metrics import CertifiedSegmentationMetrics
from mtcert_torch.certifier import Certifier
from mtcert_torch.metrics import segmentation_tally
from mtcert_torch.runs.loop import certify_items
from mtcert_torch.runs.summary import summarize
from mtcert_torch.sampler import StreamingSampler
from mtcert_torch.settings import Settings
from mtcert_torch.task import TensorTask
from mtcert_torch.tasks.adapter import SegmentationAdapter

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


class BatchSharedNoiseSampler(StreamingSampler):
    """The bug of the paper's released sampler: one noise draw reused for the whole batch."""

    def _labels(self, image, b):
        eps = self.noise.sample(image.shape, generator=self.generator, device=image.device)
        return self.classify((image + eps).unsqueeze(0).expand(b, *image.shape))


def constant_net(label, c=3):
    net = torch.nn.Conv2d(3, c, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.bias[label] = 10.0
    return net


def test_constant_model_certifies_everything_with_paper_radius():
    cert = Certifier(SegmentationAdapter(constant_net(2), num_classes=3), seed=1).certify(
        torch.rand(3, 5, 7), sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001
    )
    assert cert.labels.shape == (5, 7) and (cert.labels == 2).all()
    assert (cert.hits == 100).all() and cert.abstain_rate == 0.0
    # R = σ Φ⁻¹(τ) = 0.1686 (paper App. C)
    assert cert.radius == pytest.approx(0.25 * stats.norm.ppf(0.75))
    assert "radius=0.1686" in repr(cert)


def test_laplace_radius():
    c = Certifier(SegmentationAdapter(constant_net(0), num_classes=3), noise="laplace")
    cert = c.certify(torch.rand(3, 4, 4), sigma=0.5, tau=0.9, n0=5, n=50, alpha=0.01)
    assert cert.radius == pytest.approx(-0.5 * np.log(2 * (1 - 0.9)))


def SharedNoiseCertifier(*args, **kwargs):
    """A certifier running on the broken (batch-shared noise) sampler, injected."""
    return Certifier(*args, sampler=BatchSharedNoiseSampler, **kwargs)


def false_certification_rate(certifier_cls, reps=150, alpha=0.1):
    """Pixel label 1 iff the N(0, 1) noise there exceeds Φ⁻¹(0.25): P(1) = 0.75 = τ
    (the boundary of H0) and P(0) = 0.25 < τ, so every certified pixel is a type-I
    error and the fraction of images with any certified pixel must be ≤ α (Holm
    controls the FWER; observed ≈ 0.08 at α = 0.1)."""
    t = float(stats.norm.isf(0.75))
    bad = 0
    for rep in range(reps):
        c = certifier_cls(lambda x: (x[:, 0] > t).long(), num_classes=2, batch_size=50, seed=rep)
        cert = c.certify(torch.zeros(1, 8, 8), sigma=1.0, tau=0.75, n0=10, n=100, alpha=alpha)
        bad += bool((cert.labels >= 0).any())
    return bad / reps


def test_fwer_controlled_end_to_end_and_check_catches_shared_noise():
    # 150 reps: with a true FWER ≤ 0.1 the rate exceeds 0.2 with probability < 1e-3
    # (binomial tail); batch-shared noise (the paper code's bug) certifies almost always.
    assert false_certification_rate(Certifier) <= 0.2
    assert false_certification_rate(SharedNoiseCertifier) > 0.5


def test_predict_base_and_smoothed():
    c = Certifier(SegmentationAdapter(constant_net(1), num_classes=3))
    img = torch.rand(3, 4, 4)
    assert (c.predict(img) == 1).all()
    assert (c.predict(img, sigma=0.5, n=20) == 1).all()
    assert (c.predict(img, sigma=0.5, n=20, alpha=0.01) == 1).all()
    # a coin-flip pixel: majority vote returns a label, Cohen's PREDICT abstains
    coin = Certifier(lambda x: (x[:, 0] > 0).long(), num_classes=2, batch_size=50)
    assert (coin.predict(torch.zeros(1, 1, 1), sigma=1.0, n=100, alpha=0.001) == -1).all()


def test_certifier_validation():
    c = Certifier(SegmentationAdapter(constant_net(1), num_classes=3))
    img = torch.rand(3, 4, 4)
    kw = dict(sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001)
    for bad, match in (
        ({"tau": 0.4}, "tau"),
        ({"alpha": 0.0}, "alpha"),
        ({"n": 0}, "n"),
        ({"n0": 1.5}, "n0"),
        ({"sigma": -1.0}, "sigma"),
    ):
        with pytest.raises(ValueError, match=match):
            c.certify(img, **{**kw, **bad})
    with pytest.raises(ValueError, match="image"):
        c.certify(torch.rand(4, 4), **kw)
    with pytest.raises(ValueError, match="num_classes"):
        Certifier(lambda x: x)
    with pytest.raises(ValueError, match="noise"):
        Certifier(lambda x: x, num_classes=2, noise="cauchy")
    with pytest.raises(ValueError, match="belong to the task"):
        Certifier(TensorTask(lambda x: x, num_classes=2), num_classes=2)


def test_generator_instead_of_seed_reproduces_integer_seed():
    c = Certifier(lambda x: (x[:, 0] > 0).long(), num_classes=2, batch_size=7, seed=3)
    g = torch.Generator().manual_seed(3)
    d = Certifier(lambda x: (x[:, 0] > 0).long(), num_classes=2, batch_size=7, seed=g)
    assert d.generator is g
    kw = dict(sigma=1.0, tau=0.6, n0=5, n=30, alpha=0.1)
    a, b = c.certify(torch.zeros(1, 3, 3), **kw), d.certify(torch.zeros(1, 3, 3), **kw)
    np.testing.assert_array_equal(a.hits, b.hits)
    np.testing.assert_array_equal(a.guess, b.guess)
    # the one certificate type: the same fields for every modality
    assert a.labels.shape == a.pvalues.shape == a.abstained.shape == (3, 3)
    np.testing.assert_array_equal(a.abstained, a.labels < 0)
    assert a.seconds == a.seconds_sampling + a.seconds_statistics


def naive_stats(pred, target, num_classes, ignore=255):
    """Plain-Python reference for segmentation_tally."""
    inter = [0] * num_classes
    union = [0] * num_classes
    valid = correct = 0
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist(), strict=True):
        if t == ignore:
            continue
        valid += 1
        correct += p == t
    for c in range(num_classes):
        P = {
            i
            for i, (p, t) in enumerate(zip(pred.ravel(), target.ravel(), strict=True))
            if p == c and t != ignore
        }
        G = {i for i, t in enumerate(target.ravel()) if t == c}
        inter[c], union[c] = len(P & G), len(P | G)
    return valid, correct, inter, union


def test_metrics_against_naive_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pred = rng.integers(-1, 4, size=(6, 7))
        target = rng.integers(0, 4, size=(6, 7))
        target[rng.random((6, 7)) < 0.2] = 255
        s = segmentation_tally(torch.as_tensor(pred), torch.as_tensor(target), 4)
        valid, correct, inter, union = naive_stats(pred, target, 4)
        assert (s.valid, s.correct) == (valid, correct)
        assert s.intersection.tolist() == inter and s.union.tolist() == union
        assert s.abstained == int((pred == -1).sum())


def test_device_counts_accumulate_in_core_and_errors():
    m = CertifiedSegmentationMetrics(2)
    m.add(segmentation_tally(torch.tensor([[0, 0], [1, -1]]), torch.tensor([[0, 1], [1, 255]]), 2))
    m.add(segmentation_tally(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]), 2))
    out = m.compute()
    assert out.accuracy == pytest.approx(4 / 5)
    # image 1: IoU0 = 1/2, IoU1 = 1/2; image 2: IoU1 = 1 (class 0 absent: skipped)
    assert out.mean_iou == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    # the one abstained pixel has an ignored target: not counted (as mtcert.certify.metrics)
    assert out.abstain_rate == 0.0
    with pytest.raises(ValueError, match="target"):
        segmentation_tally(torch.tensor([0]), torch.tensor([7]), 2)
    with pytest.raises(ValueError, match="pred"):
        segmentation_tally(torch.tensor([5]), torch.tensor([1]), 2)
    with pytest.raises(ValueError, match="shapes"):
        segmentation_tally(torch.tensor([0, 1]), torch.tensor([1]), 2)
    with pytest.raises(ValueError, match="collides"):
        segmentation_tally(torch.tensor([0, 1]), torch.tensor([1, 1]), 2, ignore_index=1)


def test_dataset_loop_and_summary():
    c = Certifier(SegmentationAdapter(constant_net(1), num_classes=3), batch_size=32)
    data = [(f"im{i}", torch.rand(3, 4, 4), torch.full((4, 4), i % 2)) for i in range(3)]
    settings = Settings(sigma=0.25, tau=0.75, n0=5, n=40, alpha=0.01)
    out = list(certify_items(c, data, settings, skip={"im0"}, ignore_index=255))
    assert [r.record["name"] for r in out] == ["im1", "im2"]
    rows = summarize([r.record for r in out])
    assert rows[0]["model"] == "base model" and rows[0]["acc"] == pytest.approx(0.5)
    assert rows[1]["acc"] == pytest.approx(0.5) and rows[1]["abstain"] == 0.0
    # im1: IoU_1 = 1; im2 (all 0, predicted all 1): IoU_0 = IoU_1 = 0 -> mean 1/3
    assert rows[1]["miou"] == pytest.approx(1 / 3)


def test_metrics_agree_with_mtcert_metrics():

    rng = np.random.default_rng(1)
    ours, core, half = (CertifiedSegmentationMetrics(5) for _ in range(3))
    for i in range(10):
        pred = rng.integers(-1, 5, size=(9, 11))
        target = rng.integers(0, 5, size=(9, 11))
        target[rng.random((9, 11)) < 0.15] = 255
        counts = segmentation_tally(torch.as_tensor(pred), torch.as_tensor(target), 5)
        ours.add(counts)
        (half if i % 2 else core).update(pred, target)
    a, b = ours.compute(), core.merge(half).compute()  # shards combine by a sum of counts
    assert a.accuracy == pytest.approx(b.accuracy, rel=1e-12)
    assert a.mean_iou == pytest.approx(b.mean_iou, rel=1e-12)
    assert a.abstain_rate == pytest.approx(b.abstain_rate, rel=1e-12)
    np.testing.assert_allclose(a.pooled_iou, b.pooled_iou, rtol=1e-12)
    assert a.n_inputs == b.n_inputs == 10


def test_automatic_batch_reused_and_still_shrinks():
    limit = {"b": 8}

    def classify(x):
        if x.shape[0] > limit["b"]:
            raise torch.cuda.OutOfMemoryError("simulated")
        return torch.zeros((x.shape[0], *x.shape[2:]), dtype=torch.long)

    c = Certifier(classify, num_classes=2, memory_budget=2**40)
    kw = dict(sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001)
    cert = c.certify(torch.zeros(3, 4, 4), **kw)
    assert (cert.labels == 0).all() and c.last_batch_size == 8
    limit["b"] = 3  # less memory now: the cached automatic size must shrink, not fail
    c.certify(torch.zeros(3, 4, 4), **kw)
    assert c.last_batch_size <= 3
    fixed = Certifier(classify, num_classes=2, batch_size=8)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        fixed.certify(torch.zeros(3, 4, 4), **kw)


# -- bad states that used to certify silently ----------------------------------------------
def _nan_net():
    net = constant_net(1)
    with torch.no_grad():
        net.weight.fill_(float("nan"))
    return net


@pytest.mark.parametrize(
    "make",
    [
        lambda: SegmentationAdapter(_nan_net(), num_classes=3),
        lambda: SegmentationAdapter(_nan_net(), num_classes=3, scales=(0.5, 1.0), flip=True),
        lambda: TensorTask(_nan_net(), num_classes=3),
        lambda: TensorTask(
            lambda z: torch.full((z.shape[0], 3, 4, 4), float("inf")), num_classes=3
        ),
    ],
)
def test_non_finite_scores_stop_certification(make):
    from mtcert_torch.task import NonFiniteOutputError

    with pytest.raises(NonFiniteOutputError, match="non-finite score"):
        Certifier(make(), batch_size=16).certify(torch.rand(3, 4, 4), **CERT_SMALL)


def test_non_finite_scores_stop_a_run_naming_the_item():
    from mtcert_torch.items import Item
    from mtcert_torch.runs.loop import evaluate
    from mtcert_torch.task import NonFiniteOutputError

    items = [Item("img_a", torch.rand(3, 4, 4), np.zeros((4, 4), int))]
    certifier = Certifier(SegmentationAdapter(_nan_net(), num_classes=3), batch_size=16)
    with pytest.raises(NonFiniteOutputError, match="item 'img_a'"):
        evaluate(certifier, items, Settings(sigma=0.25, n0=4, n=20))


def test_integer_images_are_scaled_by_their_type_or_refused():
    net = constant_net(1)
    img = (torch.rand(3, 6, 6) * 255).round().to(torch.uint8)

    def certify(x):
        c = Certifier(SegmentationAdapter(net, num_classes=3), batch_size=16, seed=3)
        return c.certify(x, **CERT_SMALL)

    as_float = certify(img.float() / 255)
    for x in (img, (img.to(torch.int32) * 257).to(torch.uint16)):  # 0..255 -> 0..65535
        np.testing.assert_array_equal(certify(x).hits, as_float.hits)
    for dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.bool):
        with pytest.raises(ValueError, match=r"image has dtype .* whose scale is unknown"):
            certify(img.to(dtype))


def test_float_images_outside_the_unit_range_are_refused():
    """sigma and the radius are in units of [0, 1] pixel values: a float 0..255 image (or a
    NaN) is refused, naming the image, before any forward pass; the bounds themselves pass."""
    certifier = Certifier(SegmentationAdapter(constant_net(1), num_classes=3), batch_size=8)
    for bad in (torch.full((3, 4, 4), 128.0), torch.full((3, 4, 4), -0.01),
                torch.full((3, 4, 4), float("nan"))):  # fmt: skip
        with pytest.raises(ValueError, match=r"image has float values outside \[0, 1\]"):
            certifier.certify(bad, **CERT_SMALL)
    edges = torch.zeros(3, 4, 4)
    edges[0] = 1.0
    assert (certifier.certify(edges, **CERT_SMALL).labels == 1).all()


def test_eval_mode_for_each_call_with_the_mode_restored():
    net = torch.nn.Sequential(constant_net(1), torch.nn.Dropout2d(0.9))
    certifier = Certifier(SegmentationAdapter(net, num_classes=3), batch_size=16, seed=0)
    net.train()
    cert = certifier.certify(torch.rand(3, 4, 4), **CERT_SMALL)
    assert (cert.labels == 1).all() and cert.hits.min() == CERT_SMALL["n"]
    assert net.training and net[1].training


# -- per-component radii --------------------------------------------------------------------
def test_radii_option_is_the_core_certificate_on_the_same_counts():
    from mtcert.certify.radii import certify_radii

    rng = torch.Generator().manual_seed(0)

    def noisy_net(z):  # a per-pixel threshold: some pixels stable, some not
        return torch.stack([z[:, 0] * 0, z[:, 0] + torch.linspace(-1, 1, 16).reshape(4, 4)], 1)

    task = TensorTask(noisy_net, num_classes=2)
    x = torch.rand(3, 4, 4, generator=rng)
    plain = Certifier(task, batch_size=32, seed=7).certify(x, **CERT_SMALL)
    assert plain.radii_certificate is None and plain.radii is None
    cert = Certifier(task, batch_size=32, seed=7, radii=True).certify(x, **CERT_SMALL)
    np.testing.assert_array_equal(cert.hits, plain.hits)  # same draws, same SEGCERTIFY
    np.testing.assert_array_equal(cert.labels, plain.labels)
    want = certify_radii(cert.guess, cert.hits, CERT_SMALL["n"], alpha=CERT_SMALL["alpha"],
                         sigma=CERT_SMALL["sigma"])  # fmt: skip
    np.testing.assert_allclose(cert.radii, want.radii, rtol=1e-12)
    np.testing.assert_array_equal(cert.radii_certificate.labels, want.labels)
    assert 0 < want.n_certified < 16  # a mixed image: the test can see a difference
    off = Certifier(task, batch_size=32, seed=7, radii=True).certify(x, radii=False, **CERT_SMALL)
    assert off.radii is None
    with pytest.raises(ValueError, match="radii"):
        Certifier(task, radii="yes")


CERT_SMALL = dict(sigma=0.25, tau=0.75, n0=10, n=60, alpha=0.01)
