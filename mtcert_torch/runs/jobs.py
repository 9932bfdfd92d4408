"""Certification runs from plain values: what ``python -m mtcert_torch`` does, as functions.

:func:`certify_images` (``certify``) and :func:`certify_pointclouds`
(``certify-pointcloud``) build the model, the task and the certifier, write
``config.json`` with every setting that changes results, and call the one
evaluation loop (:func:`mtcert_torch.runs.loop.evaluate`).  Both take keyword
values, so scripts, the demo and the CLI call them alike; both accept
``hooks`` (see :mod:`mtcert_torch.runs.loop`) for per-item extra outputs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mtcert import FDR_METHODS
from mtcert.stats.validation import check_positive_int
from mtcert_torch.attacks import attack_figures_hook
from mtcert_torch.certifier import Certifier
from mtcert_torch.data.images import CITYSCAPES_PALETTE, open_dataset
from mtcert_torch.hierarchy import hierarchy_hook, load_hierarchy
from mtcert_torch.runs.counts import open_counts
from mtcert_torch.runs.loop import (
    Evaluation,
    Item,
    Items,
    Settings,
    distributed_context,
    evaluate,
    init_distributed,
)
from mtcert_torch.runs.store import (
    CLOUD_FILES,
    IMAGE_FILES,
    ResultsWriter,
    default_palette,
    save_figure,
)
from mtcert_torch.tasks.adapter import IMAGENET_MEAN, IMAGENET_STD, SegmentationAdapter
from mtcert_torch.tasks.image import ImageTask
from mtcert_torch.tasks.pointcloud import PointCloudTask

__all__ = ["certify_images", "certify_pointclouds", "check_device", "check_output", "load_model"]

#: Largest ``--scale``: beyond it a resize would allocate absurd memory.
MAX_SCALE = 8.0


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
    from mtcert_torch.models import get_model, list_models, load_checkpoint

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
    if not callable(factory):
        raise ValueError(f"--model {spec!r} is not callable")
    try:
        model = factory(**kwargs)
    except TypeError as exc:  # keyword arguments the model does not take
        raise ValueError(f"--model {spec!r} rejected --model-kwargs {kwargs}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--model {spec!r} did not return a torch.nn.Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def check_device(spec) -> torch.device:
    """``spec`` as a usable device, or ValueError naming ``--device``."""
    try:
        device = torch.device(spec)
        torch.empty(1, device=device)
    except Exception as exc:  # RuntimeError, AssertionError ("not compiled with CUDA"), ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--device {str(spec)!r} cannot be used here: {reason}") from None
    return device


def check_output(out) -> Path:
    """Refuse an ``--out`` that cannot become a writable folder, without creating it."""
    out = Path(out)
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == out else f"lies below the file {str(probe)!r}"
        raise ValueError(f"--out {str(out)!r} {what}; choose a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r}: {str(probe)!r} is not writable")
    return out


def check_settings(settings: Settings, noise: str, allow_fdr: bool) -> Settings:
    """Validate the SEGCERTIFY settings; refuse FDR methods unless ``allow_fdr``."""
    settings.validate(noise)
    if not allow_fdr:
        if settings.canonical_method() in FDR_METHODS:
            raise ValueError(
                f"--method {settings.method!r} controls the false discovery rate, not the "
                "family-wise error: it bounds the expected fraction of wrongly certified "
                "components, so the certificate would not hold for all of them jointly with "
                "probability 1 - alpha; pass --allow-fdr to run it anyway"
            )
    return settings


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
    attack_figures: int = 0,
    hierarchy=None,
    base: bool = True,
    progress: bool = True,
    hooks: Sequence[Callable] = (),
    allow_fdr: bool = False,
    save_counts: bool = False,
) -> Evaluation:
    """Certify a segmentation model on a folder of images (``python -m mtcert_torch certify``).

    ``attack_figures``: attack the first N images within the certified radius
    (:func:`mtcert_torch.attacks.attack_figures_hook`).  ``hierarchy``:
    ``"cityscapes"``, a JSON file or a :class:`mtcert.certify.hierarchy.ClassHierarchy`;
    also certify adaptively within it (:func:`mtcert_torch.hierarchy.hierarchy_hook`).

    Arguments are the command's options (``memory_budget`` in MiB); the
    result files go to ``out`` (see :mod:`mtcert_torch.runs.store`).  Returns
    the :class:`~mtcert_torch.evaluate.Evaluation`; rank 0 has the summary rows.
    """
    settings = check_settings(Settings(sigma, tau, n0, n, alpha, method, k), noise, allow_fdr)
    check_positive_int(every, "--every")
    if limit is not None:
        check_positive_int(limit, "--limit")
    if num_classes is not None:
        check_positive_int(num_classes, "--num-classes")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"--ignore-index {ignore_index} is a real class in [0, {num_classes}): its "
                "pixels would vanish from the metrics"
            )
    if figures < 0:
        raise ValueError(f"--figures must be >= 0; got {figures}")
    if attack_figures < 0:
        raise ValueError(f"--attack-figures must be >= 0; got {attack_figures}")
    for s in scales:
        if not 0 < s <= MAX_SCALE:
            raise ValueError(f"--scale values must lie in (0, {MAX_SCALE}]; got {s:g}")
    budget = _budget(memory_budget)
    check_output(out)
    device = check_device(device)
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
    tree = None if hierarchy is None else load_hierarchy(hierarchy, num_classes)
    model_kwargs = dict(model_kwargs or {})
    if align_corners is not None and ":" not in model:
        # Registry models (HRNetV2) resize inside the network too: one setting for both.
        model_kwargs.setdefault("align_corners", align_corners)
    config = {
        "model": model,
        "model_kwargs": model_kwargs,
        "checkpoint": _resolved(checkpoint),
        "data": _resolved(data),
        "layout": "cityscapes" if cityscapes else "folder",
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
        "hierarchy": None if tree is None else {"classes": tree.classes, "tree": tree.tree},
    }
    ResultsWriter.check_config(out, config)  # refuse a mismatching folder before any work
    device, owned = init_distributed(device)
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

    extra = []
    if attack_figures:
        extra.append(attack_figures_hook(
            certifier, settings, names=items.names[:attack_figures], seed=seed, palette=palette,
            folder=writer.out / "figures-attack", ignore_index=ignore_index,
        ))  # fmt: skip
    if tree is not None:
        name = hierarchy if isinstance(hierarchy, str) else "custom"
        extra.append(hierarchy_hook(certifier, tree, settings, name=Path(name).stem, seed=seed,
                                    ignore_index=ignore_index))  # fmt: skip
    counts = None
    if save_counts:
        counts = open_counts(out, config, noise=noise, num_classes=num_classes,
                             ignore_index=ignore_index, rank=writer.rank)  # fmt: skip
    try:
        return evaluate(certifier, items, settings, writer=writer, seed=seed, base=base,
                        ignore_index=ignore_index, limit=limit,
                        hooks=[figure, *extra, *hooks], progress=progress,
                        counts=counts)  # fmt: skip
    finally:
        writer.close()
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
    allow_fdr: bool = False,
    save_counts: bool = False,
) -> Evaluation:
    """SEGCERTIFY every ShapeNet-part cloud of a split (``certify-pointcloud``, Table 2).

    Arguments are the command's options (``memory_budget`` in MiB).  The
    model is a registry name or ``module.path:callable`` returning a
    :class:`~mtcert_torch.models.PointNet2PartSegMsg`.
    """
    from mtcert_torch.data.shapenet import ShapeNetPart, evaluation_items
    from mtcert_torch.models import PointNet2Adapter, PointNet2PartSegMsg

    noise = "gaussian" if smoothing == "rotation" else smoothing
    settings = check_settings(Settings(sigma, tau, n0, n, alpha, method, k), noise, allow_fdr)
    check_positive_int(votes, "--votes")
    check_positive_int(npoints, "--npoints")
    if limit is not None:
        check_positive_int(limit, "--limit")
    budget = _budget(memory_budget)
    check_output(out)
    device = check_device(device)
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
    device, owned = init_distributed(device)
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
        writer.close()
        if counts is not None:
            counts.close()
        _finish(owned)
