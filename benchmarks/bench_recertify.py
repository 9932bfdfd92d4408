"""Certify once, decide many: a 3 τ × 2 α × 3 methods sweep on stored counts vs the certify run.

Two settings:

* ``--setting demo`` (default, CPU): trains the demo's TinySegNet on synthetic
  shapes, certifies the test images while storing their counts (the run whose
  time the sweep is compared with), then re-decides the stored counts at
  τ ∈ {0.6, 0.75, 0.9} × α ∈ {1e-3, 1e-4} × {holm, bonferroni,
  generalized-holm}.  Prints both times and their ratio, measured in the same run.
* ``--setting cityscapes``: synthetic stored counts at Cityscapes resolution
  (1024 × 2048, 19 classes, n = 100), swept by this tree and by an older one
  (``--old``, a commit; its ``mtcert/`` is unpacked with ``git archive`` into a
  temporary folder) in the same run, each in its own process.  Per tree: the
  whole sweep per image, the cost per setting (the 18-setting sweep less a
  1-setting sweep, over 17) and the one-off cost per image (reading the item
  and counting its pixels: the 1-setting sweep less one setting).  The two
  tables must be identical (checked); the timings go to
  ``benchmarks/results/recertify.md``, with the paper's 70 s of forward passes
  per image for scale (a reported number, not measured here).

Run stand-alone::

    python benchmarks/bench_recertify.py [--setting demo|cityscapes] [--images 12] [--old 50a6c46]

or through pytest-benchmark (``pytest benchmarks/bench_recertify.py --benchmark-enable``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mtcert.stored.counts import CountsWriter
from mtcert.stored.recertification import recertify

SWEEP = dict(
    tau=[0.6, 0.75, 0.9], alpha=[1e-3, 1e-4], method=["holm", "bonferroni", "generalized-holm"]
)
ONE_SETTING = dict(tau=0.75, alpha=1e-3, method="holm")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "recertify.md"
#: The tree before the sweep decided from per-image histograms.
OLD_COMMIT = "50a6c46"
PAPER_SECONDS_PER_IMAGE = 70.0  # Fischer et al. 2021, Table 1 (HRNetV2, n = 100, RTX 2080 Ti)


def synthetic_counts(path, *, images=2, shape=(1024, 2048), num_classes=19, n=100, seed=0):
    """Stored counts shaped like a certify run on ``images`` images (no model)."""
    rng = np.random.default_rng(seed)
    settings = dict(
        sigma=0.25, noise="gaussian", n0=10, n=n, seed=seed, model="synthetic",
        num_classes=num_classes,
    )  # fmt: skip
    with CountsWriter(path, settings, compresslevel=1) as w:
        for i in range(images):
            # piecewise-constant maps (blocks of 32x32) like segmentation labels
            blocks = (shape[0] // 32, shape[1] // 32)
            target = np.kron(rng.integers(0, num_classes, blocks), np.ones((32, 32), int))
            guess = np.where(rng.random(shape) < 0.1, rng.integers(0, num_classes, shape), target)
            hits = rng.binomial(n, rng.beta(12, 1, shape))
            w.add(f"img{i:04d}", guess=guess, hits=hits, target=target)
    return path


def sweep_seconds(path) -> tuple[float, int]:
    """Best of 5 sweeps (after one warm-up that compiles the numba kernels)."""
    from _timing import best_of

    return best_of(lambda: recertify(path, **SWEEP), repeat=5), len(recertify(path, **SWEEP))


def certify_demo_with_counts(out: Path, *, images=12, size=32, n0=10, n=100, steps=60):
    """Train the demo's TinySegNet, then time ``certify --save-counts`` on ``images`` images.

    Returns the certify run's seconds (model loading, forward passes, decisions,
    result files and stored counts; the base-model row and figures left out)
    and the output folder.
    """
    import torch

    from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
    from mtcert_torch.runs.jobs import certify_images
    from mtcert_torch.tasks.adapter import SegmentationAdapter
    from mtcert_torch.training import train_with_noise

    torch.manual_seed(0)
    x_train, y_train = make_shapes(96, size, seed=0)
    net = TinySegNet(num_classes=3)
    train_with_noise(SegmentationAdapter(net, num_classes=3), x_train, y_train, sigma=0.25,
                     steps=steps, seed=0)  # fmt: skip
    torch.save(net.state_dict(), out / "tiny.pt")
    data = write_folder_dataset(out / "data", *make_shapes(images, size, seed=1))
    t0 = time.perf_counter()
    certify_images(
        model="mtcert_torch.data.synthetic:TinySegNet", num_classes=3, checkpoint=out / "tiny.pt",
        data=data, out=out / "certify", sigma=0.25, tau=0.75, n0=n0, n=n, alpha=1e-3,
        batch_size=100, figures=0, base=False, progress=False, save_counts=True,
    )  # fmt: skip
    return time.perf_counter() - t0, out / "certify"


def test_sweep_cityscapes_image(benchmark, tmp_path):
    path = synthetic_counts(tmp_path / "c.mtcounts", images=1)
    benchmark.pedantic(recertify, args=(path,), kwargs=SWEEP, rounds=1, iterations=1)


def test_sweep_demo_size(benchmark, tmp_path):
    path = synthetic_counts(tmp_path / "d.mtcounts", images=12, shape=(32, 32), num_classes=3)
    benchmark(recertify, path, **SWEEP)


def tree_timings(path, images, table_out) -> dict:
    """This process's tree: seconds of the full sweep and of one setting (best of 5).

    The sweep's table is pickled to ``table_out``."""
    from _timing import best_of

    images = int(images)
    full = best_of(lambda: recertify(path, **SWEEP), repeat=5)
    one = best_of(lambda: recertify(path, **ONE_SETTING), repeat=5)
    recertify(path, **SWEEP).to_pickle(table_out)
    per_setting = (full - one) / (len(recertify(path, **SWEEP)) - 1) / images
    return {
        "sweep_per_image": full / images,
        "per_setting": per_setting,
        "one_off": one / images - per_setting,
    }


def compare_trees(tmp: Path, images: int, old: str) -> str:
    """Old tree against this one on the same stored counts; the Markdown table."""
    import pandas as pd

    path = synthetic_counts(tmp / "c.mtcounts", images=images)
    from _timing import in_tree, unpack_tree

    old_root = unpack_tree(old, tmp / "old")
    before = in_tree(old_root, "bench_recertify", "tree_timings", path, images, tmp / "old.pkl")
    after = in_tree(ROOT, "bench_recertify", "tree_timings", path, images, tmp / "new.pkl")
    tables = [pd.read_pickle(tmp / f"{t}.pkl") for t in ("old", "new")]
    pd.testing.assert_frame_equal(*tables, check_exact=True)
    rows = [
        ("sweep of 18 settings, per image", "sweep_per_image"),
        ("per setting, per image", "per_setting"),
        ("one-off per image (read + count pixels)", "one_off"),
    ]
    lines = [
        f"recertify at 1024x2048 (19 classes, n = 100, {images} synthetic images, "
        f"{path.stat().st_size / images / 1e6:.2f} MB stored each), best of 5, "
        f"{os.cpu_count()} CPUs; tables identical",
        "",
        f"| | {old} | this tree | ratio |",
        "|---|---:|---:|---:|",
    ]
    for label, key in rows:
        a, b = before[key], after[key]
        lines.append(f"| {label} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {a / b:.1f}x |")
    share = 100 * after["sweep_per_image"] / PAPER_SECONDS_PER_IMAGE
    lines.append("")
    lines.append(
        f"The whole sweep per image is {share:.3f} % of the paper's "
        f"{PAPER_SECONDS_PER_IMAGE:.0f} s of forward passes per image (reported, not measured)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setting", choices=("demo", "cityscapes"), default="demo")
    parser.add_argument("--images", type=int, help="images (default: 12 demo, 2 cityscapes)")
    parser.add_argument("--old", default=OLD_COMMIT, help="commit to compare with (cityscapes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.setting == "demo":
            images = args.images or 12
            run_s, path = certify_demo_with_counts(tmp, images=images)
            sweep_s, rows = sweep_seconds(path)
            print(f"certify run with stored counts: {images} images in {run_s:.3f} s")
            print(f"sweep, {rows} rows (3 tau x 2 alpha x 3 methods), best of 5: {sweep_s:.4f} s")
            print(f"ratio sweep / certify run: {100 * sweep_s / run_s:.3f} %")
        else:
            table = compare_trees(tmp, args.images or 2, args.old)
            print(table)
            RESULTS.parent.mkdir(exist_ok=True)
            RESULTS.write_text(table)
            print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
