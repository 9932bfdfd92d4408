"""Streaming-sampler throughput (noisy samples per second) and where certification time goes.

Two settings:

* ``--setting tiny`` (default, CPU): :class:`~mtcert_torch.data.synthetic.TinySegNet`
  on 3×64×64 images — the sampler's own overhead (noise draws, counting) shows.
* ``--setting paper`` (CUDA): HRNetV2-W48 at scale 0.25 on 1024×2048 inputs with
  n0 = 10, n = 100, α = 0.001, τ = 0.75 — the setting the paper reports as
  70 s per image on an RTX 2080 Ti (Table 1).  Prints seconds per image split
  into sampling (forward passes) and statistics (mtcert.segcertify_hits).

Run stand-alone::

    python benchmarks/bench_torch_sampler.py [--setting tiny|paper] [--device cuda]
        [--batch-size B] [--autocast bf16] [--images 3]

or through pytest-benchmark (``pytest benchmarks/bench_torch_sampler.py --benchmark-enable``,
CPU tiny setting only).
"""

from __future__ import annotations

import argparse
import os
import time

import pytest

torch = pytest.importorskip("torch")

from mtcert_torch.certifier import Certifier  # noqa: E402
from mtcert_torch.data.synthetic import TinySegNet  # noqa: E402
from mtcert_torch.noise import NoiseModel  # noqa: E402
from mtcert_torch.sampler import StreamingSampler  # noqa: E402
from mtcert_torch.tasks.adapter import SegmentationAdapter  # noqa: E402
from mtcert_torch.tasks.image import ImageTask  # noqa: E402


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def tiny_sampler(batch_size=50, size=64, device="cpu"):
    torch.manual_seed(0)
    adapter = SegmentationAdapter(TinySegNet(19, 16), num_classes=19).to(device).eval()
    g = torch.Generator(device=device).manual_seed(0)
    sampler = StreamingSampler(
        adapter.labels, num_classes=19, noise=NoiseModel("gaussian", 0.25), generator=g,
        batch_size=batch_size,
    )  # fmt: skip
    return sampler, torch.rand(3, size, size, device=device)


def tiny_certifier(sampler) -> Certifier:
    """The same model and batch size through the one Certifier (image task + sampler)."""
    adapter = sampler.classify.__self__
    return Certifier(ImageTask(adapter), batch_size=sampler.batch_size, seed=0)


@pytest.mark.parametrize("stage", ["counts", "hits"])
def test_sampler_throughput_tiny_cpu(benchmark, stage):
    torch.set_num_threads(_cores())
    sampler, image = tiny_sampler()
    guess = torch.zeros(image.shape[1:], dtype=torch.long)
    if stage == "counts":
        out = benchmark.pedantic(sampler.counts, args=(image, 100), rounds=3, warmup_rounds=1)
        assert int(out.sum()) == 100 * image[0].numel()
    else:
        out = benchmark.pedantic(sampler.hits, args=(image, guess, 100), rounds=3, warmup_rounds=1)
        assert int(out.max()) <= 100


def forward_only_rate(sampler, image, num=200) -> float:
    """Samples per second of the classifier alone on pre-drawn inputs (no noise, no counting)."""
    b = sampler.batch_size
    x = image.unsqueeze(0).expand(b, *image.shape).contiguous()
    with torch.inference_mode():
        sampler.classify(x)
        _sync(image.device)
        t0 = time.perf_counter()
        for _ in range(max(1, num // b)):
            sampler.classify(x)
        _sync(image.device)
    return max(1, num // b) * b / (time.perf_counter() - t0)


def _rate(fn, batch: int, device, repeat: int = 3) -> float:
    """Images per second of ``fn`` on a batch of ``batch`` (best of ``repeat``, after a warm-up)."""
    best = float("inf")
    with torch.inference_mode():
        fn()
        for _ in range(repeat):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return batch / best


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_tiny(args) -> None:
    sampler, image = tiny_sampler(args.batch_size or 50, args.size, args.device)
    certifier = tiny_certifier(sampler)
    sampler.counts(image, sampler.batch_size)  # warm-up
    rate = fwd = full = 0.0
    for _ in range(args.repeats):  # best of N, interleaved: the machine may be shared
        sampler.stats.__init__()
        sampler.counts(image, 500)
        rate = max(rate, sampler.stats.samples_per_second)
        fwd = max(fwd, forward_only_rate(sampler, image, 500))
        certifier.stats.__init__()
        certifier.counts(image, sigma=0.25, num=500)
        full = max(full, certifier.stats.samples_per_second)
    print(
        f"TinySegNet 3x{args.size}x{args.size}, batch {sampler.batch_size}, {args.device}, "
        f"{torch.get_num_threads()} threads: {fwd:,.0f}/s forward only; "
        f"{rate:,.0f} noisy samples/s through the sampler "
        f"(overhead {100 * (fwd / rate - 1):.1f} %), "
        f"{full:,.0f}/s through the Certifier (overhead {100 * (fwd / full - 1):.1f} %)"
    )


def run_paper(args) -> None:
    from mtcert_torch.models import get_model

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = get_model("hrnetv2_w48", num_classes=19).to(device).eval()
    adapter = SegmentationAdapter(model, num_classes=19, scales=0.25, autocast=args.autocast)
    certifier = Certifier(adapter, batch_size=args.batch_size, seed=0, device=device)
    image = torch.rand(3, args.height, args.width, device=device)
    certifier.certify(image, sigma=0.25, tau=0.75, n0=2, n=2, alpha=0.001)  # warm-up
    times = []
    for _ in range(args.images):
        cert = certifier.certify(image, sigma=0.25, tau=0.75, n0=args.n0, n=args.n, alpha=0.001)
        times.append((cert.seconds_sampling, cert.seconds_statistics))
    samp = sum(t[0] for t in times) / len(times)
    stat = sum(t[1] for t in times) / len(times)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    # Where sampling time goes: the network alone on the downscaled batch, then the
    # adapter (resize, normalise, network, upsample the logits, argmax) on the full one.
    b = certifier.last_batch_size
    x = torch.rand(b, 3, args.height, args.width, device=device)
    small = torch.nn.functional.interpolate(x, scale_factor=0.25, mode="bilinear")

    def network():
        with adapter._autocast(small):
            return model((small - adapter.mean) / adapter.std)

    net_rate = _rate(network, b, device)
    adapter_rate = _rate(lambda: adapter.labels(x), b, device)
    print(
        f"HRNetV2-W48, scale 0.25, {args.height}x{args.width}, n0={args.n0}, n={args.n}, {device}"
        f"{', autocast ' + args.autocast if args.autocast else ''}, "
        f"batch {certifier.last_batch_size}:\n"
        f"  {samp + stat:.2f} s per image = {samp:.2f} s sampling "
        f"({(args.n0 + args.n) / samp:.1f} samples/s) + {stat:.3f} s statistics; "
        f"peak GPU memory {mem:.1f} GiB\n"
        f"  network alone {net_rate:.1f} images/s; adapter (resize, network, upsampling, "
        f"argmax) {adapter_rate:.1f} images/s at batch {b}\n"
        f"  paper (RTX 2080 Ti, Table 1): 70 s per image"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=("tiny", "paper"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=_cores())
    parser.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    parser.add_argument("--autocast", choices=("bf16", "fp16"), default=None)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="tiny setting: best of N")
    parser.add_argument("--size", type=int, default=64, help="tiny setting: image side")
    parser.add_argument("--height", type=int, default=1024, help="paper setting")
    parser.add_argument("--width", type=int, default=2048, help="paper setting")
    parser.add_argument("--n0", type=int, default=10, help="paper setting")
    parser.add_argument("--n", type=int, default=100, help="paper setting")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    (run_tiny if args.setting == "tiny" else run_paper)(args)


if __name__ == "__main__":
    main()
