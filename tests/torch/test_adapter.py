"""SegmentationAdapter: where the noise goes, scales, flips, upsampling, autocast."""

import pytest
import torch
import torch.nn.functional as F

from mtcert_torch.noise import NoiseModel
from mtcert_torch.sampler import StreamingSampler
from mtcert_torch.tasks.adapter import IMAGENET_MEAN, IMAGENET_STD, SegmentationAdapter

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


class Recorder(torch.nn.Module):
    """Records its (normalised) input and returns a fixed 1x1 conv of it at half resolution."""

    def __init__(self, c=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, c, 1)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return self.conv(x)[..., ::2, ::2]


def test_noise_added_in_pixel_space_before_normalisation_without_clipping():
    net = Recorder()
    adapter = SegmentationAdapter(net, num_classes=4)
    image = torch.rand(3, 6, 6)
    g = torch.Generator().manual_seed(0)
    s = StreamingSampler(
        adapter.labels, num_classes=4, noise=NoiseModel("gaussian", 2.0), generator=g, batch_size=3
    )
    s.counts(image, 3)
    seen = net.inputs[0]
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    pixels = seen * std + mean  # undo the normalisation: this is x + eps
    eps = NoiseModel("gaussian", 2.0).sample(
        (3, 3, 6, 6), generator=torch.Generator().manual_seed(0)
    )
    assert torch.allclose(pixels, image + eps, atol=1e-5)
    # σ = 2 noise leaves [0, 1] often: nothing was clipped
    assert pixels.min() < -1 and pixels.max() > 2


def test_single_scale_labels_are_argmax_of_bilinear_upsampled_logits():
    net = Recorder()
    x = torch.rand(2, 3, 8, 10)
    for ac in (False, True):
        adapter = SegmentationAdapter(net, num_classes=4, align_corners=ac)
        logits = net((x - adapter.mean) / adapter.std)
        ref = F.interpolate(logits, size=(8, 10), mode="bilinear", align_corners=ac)
        assert torch.allclose(adapter.logits(x), ref)
        assert torch.equal(adapter.labels(x), ref.argmax(1))


def test_multiscale_flip_averages_softmax_as_reference():
    net = Recorder(5)
    scales = (0.5, 1.0, 1.5)
    adapter = SegmentationAdapter(net, num_classes=5, scales=scales, flip=True)
    x = torch.rand(2, 3, 12, 16)
    ref = torch.zeros(2, 5, 12, 16)
    for s in scales:
        size = (int(s * 12 + 0.5), int(s * 16 + 0.5))
        xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        for flip in (False, True):
            inp = xs.flip(-1) if flip else xs
            out = net((inp - adapter.mean) / adapter.std)
            out = out.flip(-1) if flip else out
            ref += F.interpolate(out, size=(12, 16), mode="bilinear", align_corners=False).softmax(
                1
            )
    ref /= 6
    assert torch.allclose(adapter.probabilities(x), ref, atol=1e-6)
    assert torch.equal(adapter.labels(x), ref.argmax(1))


def test_autocast_runs_and_returns_float_labels_shape():
    net = Recorder()
    x = torch.rand(2, 3, 8, 8)
    out = SegmentationAdapter(net, num_classes=4, autocast="bf16").labels(x)
    assert out.shape == (2, 8, 8) and out.dtype == torch.int64


def test_adapter_validation():
    net = Recorder()
    with pytest.raises(ValueError, match="autocast"):
        SegmentationAdapter(net, num_classes=4, autocast="fp8")
    with pytest.raises(ValueError, match="scales"):
        SegmentationAdapter(net, num_classes=4, scales=())
    with pytest.raises(ValueError, match="scales"):
        SegmentationAdapter(net, num_classes=4, scales=(0.5, -1.0))
    with pytest.raises(ValueError, match="logits"):
        SegmentationAdapter(net, num_classes=7).labels(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="images"):
        SegmentationAdapter(net, num_classes=4).labels(torch.rand(3, 4, 4))


def test_normalisation_buffers_follow_a_model_moved_before_or_after_wrapping():
    # The adapter's mean/std start on the wrapped model's device (a model moved to the GPU
    # first, then wrapped, used to fail with "Expected all tensors to be on the same
    # device"); "meta" stands in for the GPU here.
    net = torch.nn.Conv2d(3, 4, 1, device="meta")
    adapter = SegmentationAdapter(net, num_classes=4)
    assert adapter.mean.device.type == "meta" and adapter.std.device.type == "meta"
    assert adapter.device.type == "meta"
    out = adapter.logits(torch.empty(2, 3, 8, 8, device="meta"))
    assert out.shape == (2, 4, 8, 8) and out.device.type == "meta"
    # Moved after wrapping: the inputs follow the model, the buffers follow the inputs.
    cpu_net = torch.nn.Conv2d(3, 4, 1)
    adapter = SegmentationAdapter(cpu_net, num_classes=4)
    cpu_net.to("meta")
    assert adapter.logits(torch.empty(1, 3, 4, 4, device="meta")).device.type == "meta"


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"std": (float("inf"),) * 3}, "std must be finite"),
        ({"std": (0.0, 1.0, 1.0)}, "std must be finite and positive"),
        ({"mean": (float("nan"), 0.0, 0.0)}, "mean must be finite"),
    ],
)
def test_normalisation_must_be_finite(kw, match):
    # std = inf or a NaN mean turns every image into the same input: refuse it when built
    with pytest.raises(ValueError, match=match):
        SegmentationAdapter(torch.nn.Conv2d(3, 2, 1), num_classes=2, **kw)
