"""HRNetV2 forward time per image, by default on the CPU at 256×512 (eval mode, no grad).

Run stand-alone to print a table::

    python benchmarks/bench_hrnet.py [--threads N] [--batch B] [--repeat R] [--device cpu]
        [--height 256] [--width 512]

or through pytest-benchmark (``pytest benchmarks/bench_hrnet.py --benchmark-enable``).
The thread count defaults to the number of usable cores; the time per image is the
batch time divided by the batch size, best of ``repeat`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import time

import pytest
import torch

from mtcert_torch.models import get_model

SIZE = (256, 512)
MODELS = ("hrnetv2_w18_small_v1", "hrnetv2_w18_small_v2", "hrnetv2_w48")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _setup(name: str, batch: int, device: str = "cpu", size: tuple[int, int] = SIZE):
    torch.manual_seed(0)
    model = get_model(name).eval().to(device)
    x = torch.rand(batch, 3, *size, device=device)
    return model, x


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_image(
    name: str, *, batch: int = 1, repeat: int = 3, device: str = "cpu", size=SIZE
) -> float:
    """Best-of-``repeat`` forward time per image in seconds, after a warm-up pass."""
    model, x = _setup(name, batch, device, tuple(size))
    best = float("inf")
    with torch.inference_mode():
        model(x)
        _sync(device)
        for _ in range(repeat):
            start = time.perf_counter()
            model(x)
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return best / batch


@pytest.mark.parametrize("name", ["hrnetv2_w18_small_v1", "hrnetv2_w48"])
def test_forward_cpu_256x512(benchmark, name):
    torch.set_num_threads(_usable_cores())
    model, x = _setup(name, batch=1)
    with torch.inference_mode():
        out = benchmark.pedantic(model, args=(x,), rounds=3, warmup_rounds=1)
    assert out.shape == (1, 19, SIZE[0] // 4, SIZE[1] // 4)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=_usable_cores())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--height", type=int, default=SIZE[0])
    parser.add_argument("--width", type=int, default=SIZE[1])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = (args.height, args.width)
    print(
        f"HRNetV2 forward at {size[0]}x{size[1]}, device={args.device}, "
        f"threads={torch.get_num_threads()}, batch={args.batch}, torch {torch.__version__}"
    )
    print(f"{'model':<24}{'params (M)':>12}{'s / image':>12}{'images / s':>12}")
    for name in args.models:
        params = sum(p.numel() for p in get_model(name).parameters()) / 1e6
        t = seconds_per_image(
            name, batch=args.batch, repeat=args.repeat, device=args.device, size=size
        )
        print(f"{name:<24}{params:>12.2f}{t:>12.4f}{1 / t:>12.1f}")


if __name__ == "__main__":
    main()
