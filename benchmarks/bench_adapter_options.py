"""The image adapter with and without channels_last and torch.compile, in fp32 and autocast.

For each precision and each combination of ``channels_last`` and ``compile``
(:class:`~mtcert_torch.SegmentationAdapter` options), on one batch of images:

* first call: the adapter's first ``labels`` call (torch.compile compiles here);
* network: the bare network on a normalised batch, as the adapter runs it;
* adapter: ``SegmentationAdapter.labels`` (resize, normalise, network, upsample, argmax);
* end to end: ``StreamingSampler.counts`` over ``--samples`` noisy copies (noise
  draws, adapter, counting on the device), per noisy copy.

Times are the best of ``--repeat`` calls after the first.  Prints a markdown
table row by row and writes the table to ``--out``.  Run stand-alone::

    python benchmarks/bench_adapter_options.py [--device cuda] [--model hrnetv2_w48]
        [--height 1024] [--width 2048] [--scale 0.25] [--batch 8] [--samples 32]
        [--autocast bf16] [--compile-backend inductor] [--out table.md]

The default (``--model tiny`` on the CPU) is a quick check of the script itself.
"""

from __future__ import annotations

import argparse
import itertools
import time

import pytest

torch = pytest.importorskip("torch")

from mtcert_torch.data.synthetic import TinySegNet  # noqa: E402
from mtcert_torch.models import get_model  # noqa: E402
from mtcert_torch.noise import NoiseModel  # noqa: E402
from mtcert_torch.sampler import StreamingSampler  # noqa: E402
from mtcert_torch.tasks.adapter import SegmentationAdapter  # noqa: E402

HEADER = (
    "| precision | channels_last | compile | first call (s) | network (ms/batch) "
    "| adapter (ms/batch) | end to end (ms/sample) |\n|---|---|---|---|---|---|---|"
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device: torch.device, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _network(name: str, num_classes: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    net = (
        TinySegNet(num_classes, 16) if name == "tiny" else get_model(name, num_classes=num_classes)
    )
    return net.eval().to(device)


def measure(args, precision, channels_last, compiled) -> str:
    """One table row: the four timings of one configuration."""
    device = torch.device(args.device)
    adapter = SegmentationAdapter(
        _network(args.model, args.num_classes, device),
        num_classes=args.num_classes,
        scales=args.scale,
        autocast=None if precision == "fp32" else precision,
        channels_last=channels_last,
        compile=args.compile_backend if compiled else False,
    )
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch, 3, args.height, args.width, device=device, generator=g)
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        adapter.labels(x)
        _sync(device)
        first = time.perf_counter() - start
        adapter_s = _best(lambda: adapter.labels(x), device, args.repeat)
        # the network's own input: resized and normalised as the adapter does it
        size = adapter.scales[0]
        h, w = max(1, int(size * args.height + 0.5)), max(1, int(size * args.width + 0.5))
        z = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear") if size != 1 else x
        z = (z - adapter.mean) / adapter.std
        if channels_last:
            z = z.contiguous(memory_format=torch.channels_last)

        def network():
            with adapter._autocast(z):
                adapter._network(z)

        network_s = _best(network, device, args.repeat)
    sampler = StreamingSampler(
        adapter.labels,
        num_classes=args.num_classes,
        noise=NoiseModel("gaussian", 0.25),
        generator=torch.Generator(device=device).manual_seed(1),
        batch_size=args.batch,
    )
    sampler.counts(x[0], args.batch)  # warm-up (and the compile of the sampler's batch)
    end_to_end = _best(lambda: sampler.counts(x[0], args.samples), device, 1) / args.samples
    return (
        f"| {precision} | {'yes' if channels_last else 'no'} | "
        f"{args.compile_backend if compiled else 'no'} | {first:.2f} | {network_s * 1e3:.1f} "
        f"| {adapter_s * 1e3:.1f} | {end_to_end * 1e3:.2f} |"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="tiny", help="'tiny' or a mtcert_torch model name")
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--autocast",
        nargs="*",
        default=None,
        help="reduced precisions to run beside fp32 (default: bf16 on CUDA, none on CPU)",
    )
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    if args.autocast is None:
        args.autocast = ["bf16"] if args.device.startswith("cuda") else []
    title = (
        f"{args.model}, {args.batch} x 3 x {args.height} x {args.width}, scale {args.scale}, "
        f"{args.device}"
        + (
            f" ({torch.cuda.get_device_name(args.device)})"
            if args.device.startswith("cuda")
            else ""
        )
    )
    lines = [f"Adapter options: {title}", "", HEADER]
    print("\n".join(lines), flush=True)
    for precision, channels_last, compiled in itertools.product(
        ["fp32", *args.autocast], (False, True), (False, True)
    ):
        try:
            row = measure(args, precision, channels_last, compiled)
        except Exception as exc:  # one failing configuration must not lose the others
            row = f"| {precision} | {channels_last} | {compiled} | failed: {exc!r:.120} |||| "
        print(row, flush=True)
        lines.append(row)
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
