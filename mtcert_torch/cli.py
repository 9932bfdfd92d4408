"""``python -m mtcert_torch certify``: certify a segmentation model on a folder of images.

``python -m mtcert_torch certify-pointcloud`` does the same for ShapeNet-part
point clouds (paper Table 2; see ``docs/pointcloud.md``).

Example (the paper's Table 1 setting, scale 0.25)::

    python -m mtcert_torch certify --model hrnetv2_w48 --checkpoint hrnet_cs.pth \\
        --data /data/cityscapes --sigma 0.25 --tau 0.75 --n0 10 --n 100 --alpha 0.001 \\
        --scale 0.25 --out results/cs --device cuda --limit 100

Under ``torchrun --nproc_per_node K`` the images are sharded over the K
processes (``torch.distributed``; gloo on CPU, NCCL on CUDA) and rank 0 writes
the gathered summary.  See :mod:`mtcert_torch.results` for the output files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .adapter import IMAGENET_MEAN, IMAGENET_STD
from .runs import certify_images, certify_pointclouds

SAVE_COUNTS_HELP = (
    "also store guess, hits and ground truth per item in OUT/counts.mtcounts, to re-decide "
    "at other tau/alpha/method/k without the model (python -m mtcert recertify OUT)"
)


def _json_kwargs(text: str) -> dict:
    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--model-kwargs must be a JSON object: {exc}") from None
    if not isinstance(out, dict):
        raise ValueError(f"--model-kwargs must be a JSON object; got {text!r}")
    return out


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mtcert_torch", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("certify", help="certify a segmentation model on a dataset (SEGCERTIFY)")
    m = c.add_argument_group("model")
    m.add_argument("--model", required=True, help="registry name or module.path:callable")
    m.add_argument("--model-kwargs", default="{}", help="JSON keyword arguments for the model")
    m.add_argument("--checkpoint", help="state dict to load (strict)")
    m.add_argument("--num-classes", type=int, default=None, help="default: 19 (Cityscapes)")
    m.add_argument("--scale", type=_floats, default=(1.0,), help="scale(s), comma separated")
    m.add_argument("--flip", action="store_true", help="average with horizontal flips")
    m.add_argument(
        "--align-corners",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bilinear resizes in the adapter and, for registry models, inside the network "
        "(default: the model's own align_corners, else off)",
    )
    m.add_argument("--mean", type=_floats, default=IMAGENET_MEAN)
    m.add_argument("--std", type=_floats, default=IMAGENET_STD)
    m.add_argument("--autocast", choices=("bf16", "fp16"), default=None)
    d = c.add_argument_group("data")
    d.add_argument("--data", required=True, help="Cityscapes root or folder with images/ labels/")
    d.add_argument("--layout", choices=("auto", "cityscapes", "folder"), default="auto")
    d.add_argument("--split", default="val", help="Cityscapes split")
    d.add_argument("--every", type=int, default=1, help="keep every k-th image")
    d.add_argument("--ignore-index", type=int, default=255)
    d.add_argument("--limit", type=int, default=None, help="certify the first N images only")
    s = c.add_argument_group("certification")
    s.add_argument("--noise", choices=("gaussian", "laplace"), default="gaussian")
    s.add_argument("--sigma", type=float, required=True)
    s.add_argument("--tau", type=float, default=0.75)
    s.add_argument("--n0", type=int, default=10)
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--alpha", type=float, default=0.001)
    s.add_argument("--method", default="holm", help="FWER method of mtcert.adjust")
    s.add_argument("--k", type=int, default=1, help="k-FWER (error budget k - 1)")
    s.add_argument("--seed", type=int, default=0)
    r = c.add_argument_group("run")
    r.add_argument("--out", required=True)
    r.add_argument("--device", default="cpu")
    r.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    r.add_argument("--memory-budget", type=float, default=None, help="MiB per batch (auto mode)")
    r.add_argument("--figures", type=int, default=4, help="Fig.-1 panels for the first N images")
    r.add_argument("--no-base", action="store_true", help="skip the base-model row")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--save-counts", action="store_true", help=SAVE_COUNTS_HELP)
    _add_pointcloud_parser(sub)
    return parser


def _add_pointcloud_parser(sub) -> None:
    c = sub.add_parser(
        "certify-pointcloud",
        help="certify a point-cloud part segmenter on ShapeNet-part (SEGCERTIFY, Table 2)",
    )
    m = c.add_argument_group("model")
    m.add_argument(
        "--model",
        default="pointnet2_part_seg_msg",
        help="registry name or module.path:callable returning a PointNet2PartSegMsg",
    )
    m.add_argument(
        "--model-kwargs",
        default="{}",
        help="JSON keyword arguments, e.g. '{\"npoints\": [512, 128]}'",
    )
    m.add_argument("--checkpoint", help="state dict or upstream best_model.pth (strict)")
    m.add_argument("--votes", type=int, default=3, help="forward passes averaged per call")
    d = c.add_argument_group("data")
    d.add_argument(
        "--data", required=True, help="shapenetcore_partanno_segmentation_benchmark_v0_normal"
    )
    d.add_argument("--split", default="test", choices=("train", "val", "test", "trainval"))
    d.add_argument("--categories", nargs="+", default=None, help="category names (default: all)")
    d.add_argument("--npoints", type=int, default=2048, help="points per cloud")
    d.add_argument("--no-normals", action="store_true", help="xyz only (model and data)")
    d.add_argument("--limit", type=int, default=None, help="certify the first N clouds only")
    s = c.add_argument_group("certification")
    s.add_argument("--smoothing", choices=("gaussian", "laplace", "rotation"), default="gaussian")
    s.add_argument(
        "--axis",
        choices=("x", "y", "z"),
        default=None,
        help="rotation smoothing about one axis (default: three Euler angles)",
    )
    s.add_argument("--sigma", type=float, required=True)
    s.add_argument("--tau", type=float, default=0.75)
    s.add_argument("--n0", type=int, default=100, help="guess samples (Table 2: 100)")
    s.add_argument("--n", type=int, default=1000, help="test samples (Table 2: 1000 or 10000)")
    s.add_argument("--alpha", type=float, default=0.001)
    s.add_argument("--method", default="holm", help="FWER method of mtcert.adjust")
    s.add_argument("--k", type=int, default=1, help="k-FWER (error budget k - 1)")
    s.add_argument("--seed", type=int, default=0, help="noise, FPS and sub-sampling seed")
    r = c.add_argument_group("run")
    r.add_argument("--out", required=True)
    r.add_argument("--device", default="cpu")
    r.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    r.add_argument("--memory-budget", type=float, default=None, help="MiB per batch (auto mode)")
    r.add_argument("--no-base", action="store_true", help="skip the base-model row")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--save-counts", action="store_true", help=SAVE_COUNTS_HELP)


def certify_command(args) -> int:
    """``certify``: the options as values to :func:`mtcert_torch.runs.certify_images`."""
    ev = certify_images(
        model=args.model,
        model_kwargs=_json_kwargs(args.model_kwargs),
        checkpoint=args.checkpoint,
        num_classes=args.num_classes,
        scales=args.scale,
        flip=args.flip,
        align_corners=args.align_corners,
        mean=args.mean,
        std=args.std,
        autocast=args.autocast,
        data=args.data,
        layout=args.layout,
        split=args.split,
        every=args.every,
        ignore_index=args.ignore_index,
        limit=args.limit,
        noise=args.noise,
        sigma=args.sigma,
        tau=args.tau,
        n0=args.n0,
        n=args.n,
        alpha=args.alpha,
        method=args.method,
        k=args.k,
        seed=args.seed,
        out=args.out,
        device=args.device,
        batch_size=args.batch_size,
        memory_budget=args.memory_budget,
        figures=args.figures,
        base=not args.no_base,
        progress=not args.no_progress,
        save_counts=args.save_counts,
    )
    return _print_summary(ev, args.out)


def certify_pointcloud_command(args) -> int:
    """``certify-pointcloud``: the options as values to
    :func:`mtcert_torch.runs.certify_pointclouds`."""
    ev = certify_pointclouds(
        model=args.model,
        model_kwargs=_json_kwargs(args.model_kwargs),
        checkpoint=args.checkpoint,
        votes=args.votes,
        data=args.data,
        split=args.split,
        categories=args.categories,
        npoints=args.npoints,
        normals=not args.no_normals,
        limit=args.limit,
        smoothing=args.smoothing,
        axis=args.axis,
        sigma=args.sigma,
        tau=args.tau,
        n0=args.n0,
        n=args.n,
        alpha=args.alpha,
        method=args.method,
        k=args.k,
        seed=args.seed,
        out=args.out,
        device=args.device,
        batch_size=args.batch_size,
        memory_budget=args.memory_budget,
        base=not args.no_base,
        progress=not args.no_progress,
        save_counts=args.save_counts,
    )
    return _print_summary(ev, args.out)


def _print_summary(ev, out) -> int:
    if ev.rank == 0:
        print((Path(out) / "summary.md").read_text(), end="")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "certify":
            return certify_command(args)
        if args.command == "certify-pointcloud":
            return certify_pointcloud_command(args)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    return 1
