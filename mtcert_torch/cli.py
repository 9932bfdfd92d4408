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
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from mtcert._validation import check_positive_int
from mtcert.certify import segcertify_hits

from .adapter import IMAGENET_MEAN, IMAGENET_STD, SegmentationAdapter
from .certifier import Certifier, certify_one
from .data import CITYSCAPES_PALETTE, open_dataset
from .noise import NoiseModel
from .results import ResultsWriter, default_palette, save_figure, write_summary


def load_model(
    spec: str, *, num_classes: int | None = None, checkpoint=None, kwargs=None
) -> torch.nn.Module:
    """Build a model from a registry name or ``module.path:callable`` and load a checkpoint.

    Registry names are those of :func:`mtcert_torch.models.list_models` (HRNetV2
    variants, PointNet++); any other model is given as ``module.path:callable``.
    The callable is called as ``callable(num_classes=num_classes, **kwargs)``
    (without ``num_classes`` when it is None, as for point-cloud models).  The
    checkpoint goes through :func:`mtcert_torch.models.load_checkpoint`: a bare
    state dict or ``{"state_dict": ...}``, keys optionally prefixed ``module.``
    and/or ``model.``, loaded strictly with ``weights_only=True``.
    """
    from .models import get_model, list_models, load_checkpoint

    kwargs = dict(kwargs or {})
    if ":" in spec:
        mod_name, attr = spec.split(":", 1)
        try:
            factory = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"--model {spec!r}: cannot import {attr} from {mod_name}: {exc}"
            ) from None
    elif spec in list_models():

        def factory(**kw):
            return get_model(spec, **kw)

    else:
        raise ValueError(
            f"--model {spec!r} is neither a registered model ({', '.join(list_models())}) "
            "nor module.path:callable"
        )
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--model {spec!r} did not return a torch.nn.Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def image_seed(seed: int, name: str) -> int:
    """A per-image (or per-cloud) noise seed from the run seed and the name (order-independent)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


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


def _distributed(device: torch.device):
    """(rank, world, initialised_here) from torchrun's environment (NCCL for CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    return dist.get_rank(), dist.get_world_size(), False


def certify_command(args) -> int:
    # Fail before any output is written: mtcert validates tau, alpha, n, method and k.
    NoiseModel(args.noise, args.sigma)
    check_positive_int(args.n0, "n0")
    check_positive_int(args.every, "--every")
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")
    segcertify_hits(np.zeros(1, np.int64), np.zeros(1, np.int64), args.n, tau=args.tau,
                    alpha=args.alpha, method=args.method, k=args.k)  # fmt: skip
    device = torch.device(args.device)
    rank, world, owned = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    num_classes = args.num_classes
    ds = open_dataset(
        args.data,
        num_classes=num_classes or 19,
        layout=args.layout,
        **(
            {"split": args.split, "every": args.every}
            if _is_cityscapes(args)
            else {"ignore_index": args.ignore_index}
        ),
    )
    num_classes = num_classes or ds.num_classes
    model_kwargs = _json_kwargs(args.model_kwargs)
    if args.align_corners is not None and ":" not in args.model:
        # Registry models (HRNetV2) resize inside the network too: one setting for both.
        model_kwargs.setdefault("align_corners", args.align_corners)
    config = {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "checkpoint": None if args.checkpoint is None else str(Path(args.checkpoint).resolve()),
        "data": str(Path(args.data).resolve()),
        "num_classes": num_classes,
        "noise": args.noise,
        "sigma": args.sigma,
        "tau": args.tau,
        "n0": args.n0,
        "n": args.n,
        "alpha": args.alpha,
        "method": args.method,
        "k": args.k,
        "seed": args.seed,
        "scales": list(args.scale),
        "flip": args.flip,
        "align_corners": args.align_corners,
        "autocast": args.autocast,
        "ignore_index": args.ignore_index,
        "layout": args.layout,
    }
    model = (
        load_model(
            args.model,
            num_classes=num_classes,
            checkpoint=args.checkpoint,
            kwargs=config["model_kwargs"],
        )
        .to(device)
        .eval()
    )
    writer = ResultsWriter(args.out, config, rank=rank)
    done = writer.done()
    names = ds.names
    every = 1 if _is_cityscapes(args) else args.every  # Cityscapes applies it itself
    order = list(range(len(ds)))[::every][: args.limit]
    todo = [i for i in order[rank::world] if names[i] not in done]

    align = args.align_corners
    if align is None:
        align = bool(getattr(model, "align_corners", False))
    adapter = SegmentationAdapter(
        model,
        num_classes=num_classes,
        mean=args.mean,
        std=args.std,
        scales=args.scale,
        flip=args.flip,
        align_corners=align,
        autocast=args.autocast,
    ).to(device)
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    certifier = Certifier(
        adapter, noise=args.noise, batch_size=args.batch_size, memory_budget=budget, device=device
    )
    palette = CITYSCAPES_PALETTE if num_classes == 19 else default_palette(num_classes)
    figure_names = set(names[i] for i in order[: args.figures])

    def certify_image(i):
        name, image, target = ds[i]
        certifier.manual_seed(image_seed(args.seed, name))
        rec, cert, base = certify_one(
            certifier,
            name,
            image,
            target,
            ignore_index=args.ignore_index,
            **_certify_options(args),
        )
        if name in figure_names:
            save_figure(
                writer.out / "figures" / f"{name}.png",
                image.numpy(),
                target.numpy(),
                cert.labels,
                palette,
                base=base,
                title=f"R={cert.radius:.3f} abstain={cert.abstain_rate:.1%}",
            )
        return rec

    _certify_loop(todo, certify_image, writer, unit="img", args=args, rank=rank, world=world)
    records = _gather(writer, rank, world, owned)
    if rank == 0:
        write_summary(writer.out, records)
        print((writer.out / "summary.md").read_text(), end="")
    return 0


def _certify_options(args) -> dict:
    """The SEGCERTIFY settings both commands pass on for every item."""
    return {
        "sigma": args.sigma,
        "tau": args.tau,
        "n0": args.n0,
        "n": args.n,
        "alpha": args.alpha,
        "method": args.method,
        "k": args.k,
        "base": not args.no_base,
    }


def _certify_loop(todo, certify_item, writer: ResultsWriter, *, unit, args, rank, world) -> None:
    """The resumable loop of both commands: certify each item, append its record at once.

    ``certify_item(i)`` returns the record of item ``i``; a record is flushed to
    disk as soon as it exists, so an interrupted run loses nothing finished.
    """
    from tqdm.auto import tqdm

    bar = tqdm(
        todo,
        desc=f"certify[{rank}]" if world > 1 else "certify",
        unit=unit,
        disable=args.no_progress or rank != 0,
        file=sys.stderr,
    )
    for i in bar:
        rec = certify_item(i)
        writer.append(rec)
        bar.set_postfix(acc=f"{rec['cert_acc']:.3f}", abstain=f"{rec['abstain_rate']:.3f}")


def _gather(writer: ResultsWriter, rank: int, world: int, owned: bool) -> list[dict]:
    """All records of the run (on rank 0; the others get their own share)."""
    if world <= 1:
        return writer.all_records()
    import torch.distributed as dist

    gathered = [None] * world
    dist.all_gather_object(gathered, writer.own_records())
    # Union with the files on disk: records of earlier runs with another world size.
    by_name = {r["name"]: r for r in writer.all_records()} if rank == 0 else {}
    by_name.update((r["name"], r) for part in gathered for r in part)
    if owned:
        dist.destroy_process_group()
    return list(by_name.values())


def certify_pointcloud_command(args) -> int:
    """``certify-pointcloud``: SEGCERTIFY every ShapeNet-part cloud of a split (Table 2)."""
    from .pointcloud import PointCloudAdapter, PointCloudCertifier
    from .pointcloud_eval import (
        CLOUD_CSV_FIELDS,
        CLOUD_RESUME_KEYS,
        certify_cloud,
        write_cloud_summary,
    )
    from .shapenet import ShapeNetPart

    # Fail before any output is written: mtcert validates tau, alpha, n, method and k.
    NoiseModel("gaussian" if args.smoothing == "rotation" else args.smoothing, args.sigma)
    check_positive_int(args.n0, "n0")
    check_positive_int(args.votes, "--votes")
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")
    segcertify_hits(np.zeros(1, np.int64), np.zeros(1, np.int64), args.n, tau=args.tau,
                    alpha=args.alpha, method=args.method, k=args.k)  # fmt: skip
    device = torch.device(args.device)
    rank, world, owned = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    if not Path(args.data).is_dir():
        raise ValueError(
            f"--data {args.data!r} is not a folder (expected "
            "shapenetcore_partanno_segmentation_benchmark_v0_normal)"
        )
    normals = not args.no_normals
    # The certifier normalises each sampled cloud itself (paper §6.3), so the
    # loader does not (ShapeNetPart's normalize=False).
    ds = ShapeNetPart(
        args.data,
        args.split,
        npoints=args.npoints,
        normals=normals,
        seed=args.seed,
        categories=args.categories,
    )
    model_kwargs = _json_kwargs(args.model_kwargs)
    model_kwargs.setdefault("normals", normals)
    config = {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "checkpoint": None if args.checkpoint is None else str(Path(args.checkpoint).resolve()),
        "data": str(Path(args.data).resolve()),
        "split": args.split,
        "categories": args.categories,
        "npoints": args.npoints,
        "normals": normals,
        "smoothing": args.smoothing,
        "axis": args.axis,
        "sigma": args.sigma,
        "tau": args.tau,
        "n0": args.n0,
        "n": args.n,
        "alpha": args.alpha,
        "method": args.method,
        "k": args.k,
        "votes": args.votes,
        "seed": args.seed,
    }
    model = load_model(args.model, checkpoint=args.checkpoint, kwargs=model_kwargs)
    adapter = PointCloudAdapter(model.to(device).eval(), votes=args.votes)
    budget = None if args.memory_budget is None else int(args.memory_budget * 2**20)
    certifier = PointCloudCertifier(
        adapter,
        smoothing=args.smoothing,
        axis=args.axis,
        batch_size=args.batch_size,
        memory_budget=budget,
        device=device,
    )
    writer = ResultsWriter(
        args.out,
        config,
        rank=rank,
        stem="per_cloud",
        fields=CLOUD_CSV_FIELDS,
        resume_keys=CLOUD_RESUME_KEYS,
        figures=False,
    )
    done = writer.done()
    order = list(range(len(ds)))[: args.limit]
    # Names are read from the split list, not the shape files: skipping costs nothing.
    names = ds.names
    todo = [i for i in order[rank::world] if names[i] not in done]

    def certify_item(i):
        name, points, category, labels = ds[i]
        certifier.manual_seed(image_seed(args.seed, name))
        rec, _, _ = certify_cloud(
            certifier,
            name,
            points,
            category,
            labels,
            **_certify_options(args),
        )
        return rec

    _certify_loop(todo, certify_item, writer, unit="cloud", args=args, rank=rank, world=world)
    records = _gather(writer, rank, world, owned)
    if rank == 0:
        write_cloud_summary(writer.out, records)
        print((writer.out / "summary.md").read_text(), end="")
    return 0


def _is_cityscapes(args) -> bool:
    return args.layout == "cityscapes" or (
        args.layout == "auto" and (Path(args.data) / "leftImg8bit").is_dir()
    )


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
