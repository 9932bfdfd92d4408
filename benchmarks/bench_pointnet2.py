"""PointNet++ MSG part segmentation: time per cloud and vote (eval mode, no grad).

Run stand-alone to print a table::

    python benchmarks/bench_pointnet2.py [--threads N] [--batch B] [--points P] [--device cpu]

or through pytest-benchmark (``pytest benchmarks/bench_pointnet2.py --benchmark-enable``).
One "vote" is one forward pass (farthest-point sampling included); a SEGCERTIFY run
costs ``(n0 + n) * votes`` of them per cloud.  The time per cloud is the batch time
divided by the batch size, best of ``repeat`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from mtcert_torch.models import PointNet2Adapter
from mtcert_torch.models.pointnet2 import farthest_point_sample, pointnet2_part_seg_msg


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_cloud(*, points=2048, batch=4, repeat=3, device="cpu", normals=True) -> float:
    """Best-of-``repeat`` time of one vote per cloud, in seconds."""
    torch.manual_seed(0)
    adapter = PointNet2Adapter(pointnet2_part_seg_msg(normals=normals).to(device), votes=1)
    x = torch.randn(batch, points, 6 if normals else 3, device=device)
    best = float("inf")
    with torch.inference_mode():
        adapter.labels(x, 0)
        _sync(device)
        for _ in range(repeat):
            start = time.perf_counter()
            adapter.labels(x, 0)
            _sync(device)
            best = min(best, time.perf_counter() - start)
    return best / batch


def test_fps_2048_to_512(benchmark):
    torch.set_num_threads(_usable_cores())
    xyz = torch.randn(8, 2048, 3)
    g = torch.Generator().manual_seed(0)
    idx = benchmark.pedantic(
        farthest_point_sample, args=(xyz, 512), kwargs={"generator": g}, rounds=3
    )
    assert idx.shape == (8, 512)


def test_forward_cpu_512_points(benchmark):
    torch.set_num_threads(_usable_cores())
    adapter = PointNet2Adapter(pointnet2_part_seg_msg(), votes=1)
    x = torch.randn(1, 512, 6)
    with torch.inference_mode():
        out = benchmark.pedantic(adapter.labels, args=(x, 4), rounds=2, warmup_rounds=1)
    assert out.shape == (1, 512)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=_usable_cores())
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"PointNet++ MSG part segmentation, {args.points} points, device={args.device}, "
        f"threads={torch.get_num_threads()}, batch={args.batch}, torch {torch.__version__}"
    )
    print(f"{'normals':<10}{'s / cloud / vote':>18}{'clouds / s':>12}")
    for normals in (True, False):
        t = seconds_per_cloud(
            points=args.points,
            batch=args.batch,
            repeat=args.repeat,
            device=args.device,
            normals=normals,
        )
        print(f"{normals!s:<10}{t:>18.4f}{1 / t:>12.2f}")


if __name__ == "__main__":
    main()
