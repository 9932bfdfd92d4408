"""Certification runs from plain values: what ``python -m mtcert_torch`` does, as functions.

:func:`certify_images` (``certify``) and :func:`certify_pointclouds`
(``certify-pointcloud``) build the model, the task and the certifier, write
``config.json`` with every setting that changes results, and call the one
evaluation loop (:func:`mtcert_torch.evaluation.evaluate`).  Both take keyword
values, so scripts, the demo and the CLI call them alike; both accept
``hooks`` (see :mod:`mtcert_torch.evaluation`) for per-item extra outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mtcert._validation import check_positive_int

from .adapter import IMAGENET_MEAN, IMAGENET_STD, SegmentationAdapter
from .certifier import Certifier
from .data import CITYSCAPES_PALETTE, open_dataset
from .evaluation import (
    Evaluation,
    Item,
    Items,
    Settings,
    distributed_context,
    evaluate,
    init_distributed,
)
from .image import ImageTask
from .pointcloud import PointCloudTask
from .results import CLOUD_FILES, IMAGE_FILES, ResultsWriter, default_palette, save_figure
from .stored_counts import open_counts

__all__ = ["certify_images", "certify_pointclouds", "load_model"]


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


def _resolved(path) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _budget(memory_budget_mib: float | None) -> int | None:
    if memory_budget_mib is None:
        return None
    if not memory_budget_mib > 0:
        raise ValueError(f"--memory-budget must be > 0 MiB; got {memory_budget_mib}")
    return max(1, int(memory_budget_mib * 2**20))


def _finish(owned: bool) -> None:
    if owned:
        torch.distributed.destroy_process_group()


def certify_images(
    *,
    model: str,
    data,
    out,
    sigma: float,
    model_kwargs: dict | None = None,
    checkpoint=None,
    num_classes: int | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    align_corners: bool | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    autocast: str | None = None,
    layout: str = "auto",
    split: str = "val",
    every: int = 1,
    ignore_index: int = 255,
    limit: int | None = None,
    noise: str = "gaussian",
    tau: float = 0.75,
    n0: int = 10,
    n: int = 100,
    alpha: float = 0.001,
    method: str = "holm",
    k: int = 1,
    seed: int = 0,
    device="cpu",
    batch_size: int | None = None,
    memory_budget: float | None = None,
    figures: int = 4,
    base: bool = True,
    progress: bool = True,
    hooks: Sequence[Callable] = (),
    save_counts: bool = False,
) -> Evaluation:
    """Certify a segmentation model on a folder of images (``python -m mtcert_torch certify``).

    Arguments are the command's options (``memory_budget`` in MiB); the
    result files go to ``out`` (see :mod:`mtcert_torch.results`).  Returns
    the :class:`~mtcert_torch.evaluate.Evaluation`; rank 0 has the summary rows.
    """
    settings = Settings(sigma, tau, n0, n, alpha, method, k).validate(noise)
    check_positive_int(every, "--every")
    if limit is not None:
        check_positive_int(limit, "--limit")
    if num_classes is not None:
        check_positive_int(num_classes, "--num-classes")
    if figures < 0:
        raise ValueError(f"--figures must be >= 0; got {figures}")
    budget = _budget(memory_budget)
    cityscapes = layout == "cityscapes" or (
        layout == "auto" and (Path(data) / "leftImg8bit").is_dir()
    )
    ds = open_dataset(
        data,
        num_classes=num_classes or 19,
        layout=layout,
        **({"split": split, "every": every} if cityscapes else {"ignore_index": ignore_index}),
    )
    num_classes = num_classes or ds.num_classes
    model_kwargs = dict(model_kwargs or {})
    if align_corners is not None and ":" not in model:
        # Registry models (HRNetV2) resize inside the network too: one setting for both.
        model_kwargs.setdefault("align_corners", align_corners)
    config = {
        "model": model,
        "model_kwargs": model_kwargs,
        "checkpoint": _resolved(checkpoint),
        "data": _resolved(data),
        "layout": layout,
        "split": split,
        "every": every,
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "scales": list(scales),
        "flip": flip,
        "align_corners": align_corners,
        "mean": list(mean),
        "std": list(std),
        "autocast": autocast,
        "noise": noise,
        **settings.kwargs(),
        "seed": seed,
    }
    ResultsWriter.check_config(out, config)  # refuse a mismatching folder before any work
    device, owned = init_distributed(torch.device(device))
    net = load_model(model, num_classes=num_classes, checkpoint=checkpoint, kwargs=model_kwargs)
    net = net.to(device).eval()
    align = align_corners if align_corners is not None else bool(getattr(net, "align_corners", 0))
    adapter = SegmentationAdapter(net, num_classes=num_classes, mean=mean, std=std, scales=scales,
                                  flip=flip, align_corners=align, autocast=autocast)  # fmt: skip
    task = ImageTask(adapter.to(device), noise=noise)
    certifier = Certifier(task, batch_size=batch_size, memory_budget=budget, device=device)
    writer = ResultsWriter(out, config, rank=distributed_context()[0], **IMAGE_FILES)
    every_here = 1 if cityscapes else every  # Cityscapes applies it itself
    order = list(range(len(ds)))[::every_here]
    items = Items([ds.names[i] for i in order], lambda j: Item(*ds[order[j]]))
    palette = CITYSCAPES_PALETTE if num_classes == 19 else default_palette(num_classes)
    figure_names = set(items.names[:figures])

    def figure(item, result):
        if item.name in figure_names:
            cert = result.certificate
            save_figure(
                writer.out / "figures" / f"{item.name}.png",
                item.input.numpy(),
                result.target,
                cert.labels,
                palette,
                base=result.base,
                title=f"R={cert.radius:.3f} abstain={cert.abstain_rate:.1%}",
            )

    counts = None
    if save_counts:
        counts = open_counts(out, config, noise=noise, num_classes=num_classes,
                             ignore_index=ignore_index, rank=writer.rank)  # fmt: skip
    try:
        return evaluate(certifier, items, settings, writer=writer, seed=seed, base=base,
                        ignore_index=ignore_index, limit=limit, hooks=[figure, *hooks],
                        progress=progress, counts=counts)  # fmt: skip
    finally:
        if counts is not None:
            counts.close()
        _finish(owned)


def certify_pointclouds(
    *,
    data,
    out,
    sigma: float,
    model: str = "pointnet2_part_seg_msg",
    model_kwargs: dict | None = None,
    checkpoint=None,
    votes: int = 3,
    split: str = "test",
    categories: Sequence[str] | None = None,
    npoints: int = 2048,
    normals: bool = True,
    limit: int | None = None,
    smoothing: str = "gaussian",
    axis: str | None = None,
    tau: float = 0.75,
    n0: int = 100,
    n: int = 1000,
    alpha: float = 0.001,
    method: str = "holm",
    k: int = 1,
    seed: int = 0,
    device="cpu",
    batch_size: int | None = None,
    memory_budget: float | None = None,
    base: bool = True,
    progress: bool = True,
    hooks: Sequence[Callable] = (),
    save_counts: bool = False,
) -> Evaluation:
    """SEGCERTIFY every ShapeNet-part cloud of a split (``certify-pointcloud``, Table 2).

    Arguments are the command's options (``memory_budget`` in MiB).  The
    model is a registry name or ``module.path:callable`` returning a
    :class:`~mtcert_torch.models.PointNet2PartSegMsg`.
    """
    from .models import PointNet2Adapter, PointNet2PartSegMsg
    from .shapenet import ShapeNetPart, evaluation_items

    settings = Settings(sigma, tau, n0, n, alpha, method, k).validate(
        "gaussian" if smoothing == "rotation" else smoothing
    )
    check_positive_int(votes, "--votes")
    if limit is not None:
        check_positive_int(limit, "--limit")
    budget = _budget(memory_budget)
    if not Path(data).is_dir():
        raise ValueError(
            f"--data {str(data)!r} is not a folder (expected "
            "shapenetcore_partanno_segmentation_benchmark_v0_normal)"
        )
    # The task normalises each sampled cloud itself (paper §6.3), so the loader does not.
    ds = ShapeNetPart(
        data, split, npoints=npoints, normals=normals, seed=seed, categories=categories
    )
    model_kwargs = dict(model_kwargs or {})
    model_kwargs.setdefault("normals", normals)
    config = {
        "model": model,
        "model_kwargs": model_kwargs,
        "checkpoint": _resolved(checkpoint),
        "data": _resolved(data),
        "split": split,
        "categories": None if categories is None else list(categories),
        "npoints": npoints,
        "normals": normals,
        "votes": votes,
        "smoothing": smoothing,
        "axis": axis,
        **settings.kwargs(),
        "seed": seed,
    }
    ResultsWriter.check_config(out, config)  # refuse a mismatching folder before any work
    device, owned = init_distributed(torch.device(device))
    net = load_model(model, checkpoint=checkpoint, kwargs=model_kwargs)
    if not isinstance(net, PointNet2PartSegMsg):
        raise ValueError(f"--model {model!r} did not return a PointNet2PartSegMsg")
    task = PointCloudTask(PointNet2Adapter(net.to(device).eval(), votes=votes),
                          smoothing=smoothing, axis=axis)  # fmt: skip
    certifier = Certifier(task, batch_size=batch_size, memory_budget=budget, device=device)
    writer = ResultsWriter(out, config, rank=distributed_context()[0], **CLOUD_FILES)

    items = evaluation_items(ds)
    counts = None
    if save_counts:
        counts = open_counts(out, config, noise=smoothing, num_classes=certifier.num_classes,
                             ignore_index=None, rank=writer.rank)  # fmt: skip
    try:
        return evaluate(certifier, items, settings, writer=writer, seed=seed, base=base,
                        limit=limit, hooks=hooks, progress=progress, counts=counts)  # fmt: skip
    finally:
        if counts is not None:
            counts.close()
        _finish(owned)
