"""Forward passes against certified rate on the demo model: fixed n, two-stage, sequential.

The plugin's side of ``passes_study.py``: the demo's TinySegNet (trained
with Gaussian noise, sigma = 0.25, on synthetic shapes, as
the segmentation demo of ``python -m mtcert run`` does) certified on held-out 32 x 32 images
(N = 1024 pixels, 3 classes) by ``certify_images`` -- the command's own code
path -- at the same tau = 0.75, alpha = 0.001, Holm, n0 = 10, with

* fixed n (the paper's n = 100, and n = 1000);
* ``--adaptive-n two-stage:...``: 16 fresh pilot copies, n planned per image
  (reference: the fixed n, tolerance 0.01), at most the fixed n;
* ``--adaptive-n sequential:...``: eight geometric looks from the floor to
  1.5 x the fixed n, mixture and schedule bounds, ``settle = 0.01``.

Per setting and method: passes per image (mean +- 1.96 s.e., median, min,
max: guessing + pilot + testing copies), certified rate (pixels certified /
pixels) and its paired difference to fixed n (the same images), and certified
accuracy.  Every image is seeded by name, so the methods see the same images
and independent noise.

    python benchmarks/passes_demo.py            # 48 test images, a few minutes on 2 cores
    python benchmarks/passes_demo.py --images 12 --quick   # n = 100 only
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.jobs import certify_images
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise

SIGMA, TAU, ALPHA, N0 = 0.25, 0.75, 0.001, 10


def methods(n):
    budget = int(1.5 * n)
    return [
        (f"fixed n={n}", None),
        ("two-stage", f"two-stage:pilot=16,max={n}"),
        ("sequential mixture", f"sequential:max={budget},settle=0.01"),
        ("sequential schedule", f"sequential:max={budget},bound=schedule,settle=0.01"),
    ]


def ci(x):
    x = np.asarray(x, float)
    return x.mean(), 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--quick", action="store_true", help="the n = 100 setting only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="passes-demo-") as tmp:
        table = run(Path(tmp), args)
    print(f"demo TinySegNet, {args.images} images of 32 x 32 (N = 1024), sigma = {SIGMA}, "
          f"tau = {TAU}, alpha = {ALPHA}, Holm, n0 = {N0}")  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string(index=False))


def run(root, args):
    """Train, certify with every method, and return the table's rows."""
    torch.manual_seed(args.seed)
    x, y = make_shapes(96, 32, seed=args.seed)
    net = TinySegNet(num_classes=3)
    train_with_noise(
        SegmentationAdapter(net, num_classes=3), x, y, sigma=SIGMA, steps=60, seed=args.seed
    )
    torch.save(net.state_dict(), root / "tiny.pt")
    xt, yt = make_shapes(args.images, 32, seed=args.seed + 1)
    data = write_folder_dataset(root / "data", xt, yt)
    rows = []
    for n in (100,) if args.quick else (100, 1000):
        base = None
        for label, spec in methods(n):
            t0 = time.perf_counter()
            out = root / f"n{n}-{label.replace(' ', '-').replace('=', '')}"
            certify_images(
                model="mtcert_torch.data.synthetic:TinySegNet", num_classes=3,
                checkpoint=root / "tiny.pt", data=data, layout="folder", sigma=SIGMA, tau=TAU,
                n0=N0, n=n, alpha=ALPHA, out=out, batch_size=100, seed=args.seed, figures=0,
                base=False, progress=False, adaptive_n=spec,
            )  # fmt: skip
            per = pd.read_csv(out / "per_image.csv").sort_values("name")
            passes = per["passes"].to_numpy() if spec else np.full(len(per), N0 + n)
            rate = 1.0 - per["abstained"].to_numpy() / per["pixels"].to_numpy()
            base = rate if base is None else base
            (mp, hp), (mr, hr), (md, hd) = ci(passes), ci(rate), ci(rate - base)
            acc = per["cert_correct"].sum() / per["valid"].sum()
            rows.append({
                "setting": f"n={n}", "method": label, "adaptive_n": spec or "-",
                "passes": f"{mp:.1f} ± {hp:.1f}", "median": float(np.median(passes)),
                "min": int(passes.min()), "max": int(passes.max()),
                "rate": f"{mr:.4f} ± {hr:.4f}", "rate - fixed": f"{md:+.4f} ± {hd:.4f}",
                "cert. acc.": round(float(acc), 4), "fewer passes": f"{(N0 + n) / mp:.2f}x",
                "seconds": round(time.perf_counter() - t0, 1),
            })  # fmt: skip
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
