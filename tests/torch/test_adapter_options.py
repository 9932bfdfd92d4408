"""SegmentationAdapter's GPU-speed options, checked on the CPU: channels_last and torch.compile.

Both change how the network runs, never what it is given: the labels must match
the plain adapter's on a tiny network, and the noise stream (hence the counts)
must be the same draw for draw.
"""

import pytest
import torch

from mtcert_torch.noise import NoiseModel
from mtcert_torch.sampler import StreamingSampler
from mtcert_torch.tasks.adapter import SegmentationAdapter

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

C = 4


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, C, 1)
    ).eval()


def adapters(scales=1.0, **options):
    """The plain adapter and one with ``options``, on two copies of the same network."""
    return (
        SegmentationAdapter(tiny_net(), num_classes=C, scales=scales),
        SegmentationAdapter(tiny_net(), num_classes=C, scales=scales, **options),
    )


@pytest.mark.parametrize("scales", [1.0, (0.5, 1.0)])
def test_channels_last_same_labels(scales):
    plain, fast = adapters(scales, channels_last=True)
    assert fast.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(3, 3, 12, 16)
    with torch.inference_mode():
        torch.testing.assert_close(fast.logits(x), plain.logits(x), rtol=1e-5, atol=1e-6)
        assert torch.equal(fast.labels(x), plain.labels(x))


def test_compile_same_labels_and_first_call_timed():
    pytest.importorskip("torch._dynamo")
    plain, fast = adapters(compile="aot_eager")  # the compiled path without a C++ build
    assert fast.compile_backend == "aot_eager" and fast.compile_seconds is None
    x = torch.rand(2, 3, 8, 8)
    with torch.inference_mode():
        first = fast.labels(x)
        assert fast.compile_seconds is not None and fast.compile_seconds > 0
        seconds = fast.compile_seconds
        assert torch.equal(first, plain.labels(x))
        assert torch.equal(fast.labels(x), first)  # the cached graph
    assert fast.compile_seconds == seconds  # timed once: the first call
    # the compiled wrapper is not a submodule: state_dict and parameters unchanged
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert len(list(fast.parameters())) == len(list(plain.parameters()))


def test_compile_off_by_default_and_bad_values_refused():
    adapter = SegmentationAdapter(tiny_net(), num_classes=C)
    assert adapter.compile_backend is None and not adapter.channels_last
    assert callable(adapter.compile)  # torch.nn.Module.compile is not shadowed
    assert SegmentationAdapter(tiny_net(), num_classes=C, compile=True).compile_backend == (
        "inductor"
    )
    for bad in ("", 1, None):
        with pytest.raises(ValueError, match="compile"):
            SegmentationAdapter(tiny_net(), num_classes=C, compile=bad)


@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_noise_stream_unchanged_by_the_options(noise):
    # Same seed, same batches: the generator ends in the same state and the
    # counts agree, so every option sees the same float32 noise draws.
    image = torch.rand(3, 10, 12)
    runs = []
    for options in ({}, {"channels_last": True}, {"compile": "eager"}):
        adapter = SegmentationAdapter(tiny_net(), num_classes=C, **options)
        seen = []

        def classify(z, adapter=adapter, seen=seen):
            seen.append(z.clone())
            return adapter.labels(z)

        g = torch.Generator().manual_seed(11)
        sampler = StreamingSampler(
            classify, num_classes=C, noise=NoiseModel(noise, 0.25), generator=g, batch_size=4
        )
        counts = sampler.counts(image, 10)  # batches of 4, 4, 2
        runs.append((counts, torch.cat(seen), g.get_state()))
    counts0, noisy0, state0 = runs[0]
    assert noisy0.dtype == torch.float32 and noisy0.shape == (10, 3, 10, 12)
    for counts, noisy, state in runs[1:]:
        assert torch.equal(noisy, noisy0) and torch.equal(state, state0)
        assert torch.equal(counts, counts0)
