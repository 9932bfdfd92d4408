"""Certification runs from plain values: what ``python -m mtcert_torch`` does, as functions.

:func:`certify_images` (``certify``) and :func:`certify_pointclouds`
(``certify-pointcloud``) build the model, the task and the certifier, write
``config.json`` with every setting that changes results (the model's weights
too, as :func:`model_digest`), and call the one evaluation loop
(:func:`mtcert_torch.runs.loop.evaluate`).  Every check that can refuse a run
comes before its first file is written.  Both take the
command's options as keyword values (:data:`mtcert_torch.settings.IMAGE_OPTIONS`,
:data:`~mtcert_torch.settings.CLOUD_OPTIONS`: names, defaults and meaning), so
scripts, the demo and the CLI call them alike; both accept ``hooks`` (see
:mod:`mtcert_torch.runs.loop`) for per-item extra outputs.

Imports everything below the runs (certifier, tasks, data, models, settings,
hierarchy) and the other modules of :mod:`mtcert_torch.runs`; never the command line.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mtcert._files import folder_path
from mtcert.stats.methods import FDR_METHODS
from mtcert.stats.validation import check_positive_int
from mtcert_torch.adaptive import AdaptiveN
from mtcert_torch.certifier import Certifier
from mtcert_torch.data.images import open_dataset
from mtcert_torch.data.shapenet import ShapeNetPart, evaluation_items
from mtcert_torch.hierarchy import hierarchy_hook, load_hierarchy
from mtcert_torch.items import Item, Items
from mtcert_torch.runs.counts import check_counts, counts_settings, open_counts
from mtcert_torch.runs.figures import (
    ATTACK_FIELDS,
    attack_figures_hook,
    class_names,
    figure_hook,
    run_palette,
)
from mtcert_torch.runs.loop import (
    Evaluation,
    check_same_settings,
    distributed_context,
    evaluate,
    init_distributed,
    rank_folder,
)
from mtcert_torch.runs.store import CLOUD_FILES, IMAGE_FILES, ResultsWriter
from mtcert_torch.runs.summary import passes_hook, radii_hook
from mtcert_torch.settings import CLOUD_OPTIONS, IMAGE_OPTIONS, Settings
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.tasks.image import ImageTask
from mtcert_torch.tasks.pointcloud import PointCloudTask

__all__ = [
    "certify_images",
    "certify_pointclouds",
    "check_device",
    "load_model",
    "model_digest",
    "relocatable",
]

#: Largest ``--scale``: beyond it a resize would allocate absurd memory.
MAX_SCALE = 8.0
#: Largest ``--npoints`` (ShapeNet-part shapes hold a few thousand points).
MAX_NPOINTS = 100_000


def load_model(
    spec: str, *, num_classes: int | None = None, checkpoint=None, kwargs=None
) -> torch.nn.Module:
    """Build a model from a registry name or ``module.path:callable`` and load a checkpoint.

    Registry names are those of ``mtcert_torch.models.list_models()`` (HRNetV2
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
    except Exception as exc:  # keywords it does not take (TypeError), values it refuses (any)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--model {spec!r} rejected --model-kwargs {kwargs}: {reason}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"--model {spec!r} did not return a torch.nn.Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes, values): what ``config.json``
    records, so that a resumed run refuses a replaced checkpoint (or other weights)."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        t = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name} {t.dtype} {tuple(value.shape)}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_device(spec) -> torch.device:
    """``spec`` as a usable device, or ValueError naming ``--device``."""
    try:
        device = torch.device(spec)
        # a device that holds data: one value there and back (``meta`` holds none)
        torch.ones(1, device=device).add(1).to("cpu")
    except Exception as exc:  # RuntimeError, AssertionError ("not compiled with CUDA"), ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--device {str(spec)!r} cannot be used here: {reason}") from None
    return device


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


def _budget(memory_budget_mib: float | None) -> int | None:
    if memory_budget_mib is None:
        return None
    if not (memory_budget_mib > 0 and math.isfinite(memory_budget_mib)):
        raise ValueError(f"--memory-budget must be finite and > 0 MiB; got {memory_budget_mib}")
    return max(1, int(memory_budget_mib * 2**20))


def relocatable(config: dict, out, options) -> dict:
    """``config`` with its paths (``--data``, ``--checkpoint``) recorded so that a copied run
    folder can be resumed or extended (``--save-counts``).

    A path inside the folder that holds the run folder (the demo's ``data/`` and
    ``tiny.pt`` beside ``certify/``) is recorded relative to the run folder, so the
    folder holding both can be copied or moved as a whole; any other path stays
    absolute, so the run folder alone can be copied anywhere.  A resumed folder keeps
    the form its ``config.json`` already has when the path is the same in that form.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> option = SimpleNamespace(name="data", path=True)
    >>> relocatable({"data": "/p/data"}, "/p/run", [option])
    {'data': '../data'}
    >>> relocatable({"data": "/data/cs"}, "/p/run", [option])
    {'data': '/data/cs'}
    """
    base = folder_path(out).resolve()  # as Option.recorded resolves the paths
    try:
        old = json.loads((base / "config.json").read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict):
        old = {}
    config = dict(config)
    for option in options:
        value = config.get(option.name)
        if not option.path or value is None:
            continue
        relative = os.path.relpath(value, base)
        if old.get(option.name) in (value, relative):  # resumed: the form it has
            config[option.name] = old[option.name]
        elif Path(value).is_relative_to(base.parent):
            config[option.name] = relative
    return config


#: Record columns that only some runs fill, by the option that fills them: left out of the
#: other runs' CSV (the JSON records keep every key).
_OPTIONAL_COLUMNS = {"radii": ("radii_max", "radii_median"), "adaptive_n": ("adaptive_n", "passes")}


def _run_files(preset: dict, opt, extra: tuple = ()) -> dict:
    """``preset`` (:data:`IMAGE_FILES`, :data:`CLOUD_FILES`) with the CSV columns of this run:
    ``extra`` added, the optional columns of options that are off left out."""
    unused = {c for name, cols in _OPTIONAL_COLUMNS.items() if not getattr(opt, name) for c in cols}
    return {**preset, "fields": tuple(f for f in (*preset["fields"], *extra) if f not in unused)}


def _open_files(out, config: dict, files: dict, counts: dict | None):
    """The run's result files and, with ``counts`` (the keywords of
    :func:`~mtcert_torch.runs.counts.counts_settings`), its counts writer.

    A counts file of other settings is refused before ``config.json`` is written, as
    are ranks of a ``torch.distributed`` run with different settings (the paths of
    checkpoint and data aside: they may differ between machines).
    """
    check_same_settings(config, local=("checkpoint", "data"))
    rank, world = distributed_context()
    settings = None if counts is None else counts_settings(config, **counts)
    if settings is not None:
        check_counts(out, settings, rank)
    writer = ResultsWriter(out, config, rank=rank, world=world, **files)
    try:
        return writer, None if settings is None else open_counts(out, settings, rank)
    except BaseException:
        writer.close()
        raise


def _finish(owned: bool) -> None:
    if owned:
        torch.distributed.destroy_process_group()


def certify_images(*, hooks: Sequence[Callable] = (), **options) -> Evaluation:
    """Certify a segmentation model on a folder of images (``python -m mtcert_torch certify``).

    ``options`` are the command's options as keyword values, with the same
    names and defaults (:data:`mtcert_torch.settings.IMAGE_OPTIONS`;
    ``memory_budget`` in MiB); ``model``, ``data``, ``out`` and ``sigma`` are
    required.  ``attack_figures``: attack the first N images within the
    certified radius (:func:`mtcert_torch.runs.figures.attack_figures_hook`).
    ``hierarchy``: ``"cityscapes"``, a JSON file or a
    :class:`mtcert.certify.hierarchy.ClassHierarchy`; also certify adaptively
    within it (:func:`mtcert_torch.hierarchy.hierarchy_hook`).  ``hooks`` are
    further evaluation-loop hooks.  The result files go to ``out`` (see
    :mod:`mtcert_torch.runs.store`); under ``torchrun`` a ``{rank}`` in it is
    replaced by each process's rank (:func:`~mtcert_torch.runs.loop.rank_folder`).  Returns the
    :class:`~mtcert_torch.runs.loop.Evaluation`; rank 0 has the summary rows.
    """
    opt = IMAGE_OPTIONS.resolve(options)
    opt.out = rank_folder(opt.out)  # "{rank}": a folder per rank
    settings = check_settings(Settings.of(opt), opt.noise, opt.allow_fdr)
    if opt.adaptive_n is not None:  # before any output: radii need a fixed-n test
        AdaptiveN.parse(opt.adaptive_n).check_radii(opt.radii)
    check_positive_int(opt.every, "--every")
    if opt.limit is not None:
        check_positive_int(opt.limit, "--limit")
    if opt.num_classes is not None:
        check_positive_int(opt.num_classes, "--num-classes")
        if 0 <= opt.ignore_index < opt.num_classes:
            raise ValueError(
                f"--ignore-index {opt.ignore_index} is a real class in [0, {opt.num_classes}): its "
                "pixels would vanish from the metrics"
            )
    if opt.figures < 0:
        raise ValueError(f"--figures must be >= 0; got {opt.figures}")
    if opt.attack_figures < 0:
        raise ValueError(f"--attack-figures must be >= 0; got {opt.attack_figures}")
    for s in opt.scales:
        if not 0 < s <= MAX_SCALE:
            raise ValueError(f"--scale values must lie in (0, {MAX_SCALE}]; got {s:g}")
    for flag, values in (("--mean", opt.mean), ("--std", opt.std)):
        if not all(math.isfinite(v) for v in values):  # NaN or inf: the network sees no image
            raise ValueError(f"{flag} must be finite numbers; got {','.join(map(str, values))}")
    budget = _budget(opt.memory_budget)
    device = check_device(opt.device)
    cityscapes = opt.layout == "cityscapes" or (
        opt.layout == "auto" and (Path(opt.data) / "leftImg8bit").is_dir()
    )
    ds = open_dataset(
        opt.data,
        num_classes=opt.num_classes or 19,
        layout=opt.layout,
        **(
            {"split": opt.split, "every": opt.every}
            if cityscapes
            else {"ignore_index": opt.ignore_index}
        ),
    )
    num_classes = opt.num_classes or ds.num_classes
    tree = None if opt.hierarchy is None else load_hierarchy(opt.hierarchy, num_classes)
    model_kwargs = dict(opt.model_kwargs or {})
    if opt.align_corners is not None and ":" not in opt.model:
        # Registry models (HRNetV2) resize inside the network too: one setting for both.
        model_kwargs.setdefault("align_corners", opt.align_corners)
    config = IMAGE_OPTIONS.config(
        opt,
        model_kwargs=model_kwargs,
        layout="cityscapes" if cityscapes else "folder",
        num_classes=num_classes,
        hierarchy=None if tree is None else {"classes": tree.classes, "tree": tree.tree},
    )
    config = relocatable(config, opt.out, IMAGE_OPTIONS)
    # refuse a mismatching folder before any work: the options, then the model's weights
    ResultsWriter.check_config(opt.out, config, ignore=("model_sha256",))
    net = load_model(opt.model, num_classes=num_classes, checkpoint=opt.checkpoint,
                     kwargs=model_kwargs)  # fmt: skip
    config["model_sha256"] = model_digest(net)  # a replaced checkpoint is another model
    ResultsWriter.check_config(opt.out, config)
    device, owned = init_distributed(device)
    net = net.to(device).eval()
    align = opt.align_corners
    if align is None:
        align = bool(getattr(net, "align_corners", 0))
    adapter = SegmentationAdapter(net, num_classes=num_classes, mean=opt.mean, std=opt.std,
                                  scales=opt.scales, flip=opt.flip, align_corners=align,
                                  autocast=opt.autocast, channels_last=bool(opt.channels_last),
                                  compile=opt.compile or False)  # fmt: skip
    task = ImageTask(adapter.to(device), noise=opt.noise)
    certifier = Certifier(task, batch_size=opt.batch_size, memory_budget=budget, device=device,
                          radii=opt.radii)  # fmt: skip
    counted = dict(noise=opt.noise, num_classes=num_classes, ignore_index=opt.ignore_index)
    # the attack's fields are columns of per_image.csv too
    files = _run_files(IMAGE_FILES, opt, ATTACK_FIELDS if opt.attack_figures else ())
    writer, counts = _open_files(opt.out, config, files, counted if opt.save_counts else None)
    every_here = 1 if cityscapes else opt.every  # Cityscapes applies it itself
    order = list(range(len(ds)))[::every_here]
    items = Items([ds.names[i] for i in order], lambda j: Item(*ds[order[j]]))
    palette, names = run_palette(num_classes), class_names(num_classes)
    extra = [figure_hook(writer.out / "figures", items.names[: opt.figures], palette,
                         class_names=names)]  # fmt: skip
    if opt.radii:
        extra.append(radii_hook(certifier, ignore_index=opt.ignore_index, family="image"))
    if opt.adaptive_n is not None:
        extra.append(passes_hook())
    if opt.attack_figures:
        extra.append(attack_figures_hook(
            certifier, settings, names=items.names[: opt.attack_figures], seed=opt.seed,
            palette=palette, folder=writer.out / "figures-attack", ignore_index=opt.ignore_index,
            class_names=names,
        ))  # fmt: skip
    if tree is not None:
        name = opt.hierarchy if isinstance(opt.hierarchy, str) else "custom"
        extra.append(hierarchy_hook(certifier, tree, settings, name=Path(name).stem, seed=opt.seed,
                                    ignore_index=opt.ignore_index))  # fmt: skip
    try:
        return evaluate(certifier, items, settings, writer=writer, seed=opt.seed, base=opt.base,
                        ignore_index=opt.ignore_index, limit=opt.limit, hooks=[*extra, *hooks],
                        progress=opt.progress, counts=counts)  # fmt: skip
    finally:
        writer.close()
        if counts is not None:
            counts.close()
        _finish(owned)


def certify_pointclouds(*, hooks: Sequence[Callable] = (), **options) -> Evaluation:
    """SEGCERTIFY every ShapeNet-part cloud of a split (``certify-pointcloud``, Table 2).

    ``options`` are the command's options as keyword values, with the same
    names and defaults (:data:`mtcert_torch.settings.CLOUD_OPTIONS`;
    ``memory_budget`` in MiB); ``data``, ``out`` and ``sigma`` are required.
    The model is a registry name or ``module.path:callable`` returning a
    :class:`~mtcert_torch.models.PointNet2PartSegMsg`.  ``hooks`` are further
    evaluation-loop hooks.
    """
    from mtcert_torch.models import PointNet2Adapter, PointNet2PartSegMsg

    opt = CLOUD_OPTIONS.resolve(options)
    opt.out = rank_folder(opt.out)  # "{rank}": a folder per rank
    noise = "gaussian" if opt.smoothing == "rotation" else opt.smoothing
    settings = check_settings(Settings.of(opt), noise, opt.allow_fdr)
    if opt.adaptive_n is not None:  # before any output: radii need a fixed-n test
        AdaptiveN.parse(opt.adaptive_n).check_radii(opt.radii)
    check_positive_int(opt.votes, "--votes")
    check_positive_int(opt.npoints, "--npoints", maximum=MAX_NPOINTS)
    if opt.limit is not None:
        check_positive_int(opt.limit, "--limit")
    budget = _budget(opt.memory_budget)
    device = check_device(opt.device)
    if not Path(opt.data).is_dir():
        raise ValueError(
            f"--data {str(opt.data)!r} is not a folder (expected "
            "shapenetcore_partanno_segmentation_benchmark_v0_normal)"
        )
    # The task normalises each sampled cloud itself (paper §6.3), so the loader does not.
    ds = ShapeNetPart(
        opt.data, opt.split, npoints=opt.npoints, normals=opt.normals, seed=opt.seed,
        categories=opt.categories,
    )  # fmt: skip
    model_kwargs = dict(opt.model_kwargs or {})
    model_kwargs.setdefault("normals", opt.normals)
    config = relocatable(CLOUD_OPTIONS.config(opt, model_kwargs=model_kwargs), opt.out,
                         CLOUD_OPTIONS)  # fmt: skip
    # refuse a mismatching folder before any work: the options, then the model's weights
    ResultsWriter.check_config(opt.out, config, ignore=("model_sha256",))
    net = load_model(opt.model, checkpoint=opt.checkpoint, kwargs=model_kwargs)
    if not isinstance(net, PointNet2PartSegMsg):
        raise ValueError(f"--model {opt.model!r} did not return a PointNet2PartSegMsg")
    if net.sa1.npoint > opt.npoints:  # it would sample more centres than a cloud has points
        raise ValueError(
            f"--model-kwargs: the model samples {net.sa1.npoint} centres, more than the "
            f"{opt.npoints} points of a cloud (--npoints)"
        )
    config["model_sha256"] = model_digest(net)  # a replaced checkpoint is another model
    ResultsWriter.check_config(opt.out, config)
    device, owned = init_distributed(device)
    task = PointCloudTask(PointNet2Adapter(net.to(device).eval(), votes=opt.votes),
                          smoothing=opt.smoothing, axis=opt.axis)  # fmt: skip
    certifier = Certifier(task, batch_size=opt.batch_size, memory_budget=budget, device=device,
                          radii=opt.radii)  # fmt: skip
    counted = dict(noise=opt.smoothing, num_classes=certifier.num_classes, ignore_index=None)
    files = _run_files(CLOUD_FILES, opt)
    writer, counts = _open_files(opt.out, config, files, counted if opt.save_counts else None)
    extra = []
    if opt.radii:
        extra.append(radii_hook(certifier, family="point cloud"))
    if opt.adaptive_n is not None:
        extra.append(passes_hook())

    items = evaluation_items(ds)
    try:
        return evaluate(certifier, items, settings, writer=writer, seed=opt.seed, base=opt.base,
                        limit=opt.limit, hooks=[*extra, *hooks], progress=opt.progress,
                        counts=counts)  # fmt: skip
    finally:
        writer.close()
        if counts is not None:
            counts.close()
        _finish(owned)
