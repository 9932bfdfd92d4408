"""The one evaluation loop: certify a data set item by item, for every modality.

:func:`evaluate` is what both CLI commands and the Python API run.  Per item
it reseeds the certifier from the run seed and the item's name
(:func:`mtcert_torch.items.item_seed`: results do not depend on order, sharding or
resumption), runs SEGCERTIFY, optionally the base model on the clean input,
computes the per-item counts on the device
(:func:`mtcert_torch.metrics.segmentation_tally`) and appends one record to the
result files (:class:`~mtcert_torch.runs.store.ResultsWriter`).  Under
``torch.distributed`` the items are sharded over the ranks, each rank writes its
own files (in its own folder or a shared one: :func:`rank_folder`), and rank 0
gathers every rank's records over the process group and summarises them
(:mod:`mtcert_torch.runs.summary`): no folder need be shared.

Extension point: ``hooks`` are called as ``hook(item, result)`` after each
item is certified and before its record is written; a returned dict is merged
into the record, and the hook may write files of its own.  A hook derived from
:class:`mtcert_torch.items.ItemHook` also adds the summary rows and columns of
its fields.  :class:`ItemResult` carries the certificate, the base prediction
and the ground truth.

Imports the certifier, the plugin's base modules and settings, the core's stored
counts, and the files of a run (:mod:`~mtcert_torch.runs.store`,
:mod:`~mtcert_torch.runs.summary`, :mod:`~mtcert_torch.runs.counts`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtcert.stored.counts import CountsWriter
from mtcert_torch.certifier import Certificate, Certifier
from mtcert_torch.items import Item, Items, item_seed
from mtcert_torch.metrics import segmentation_tally
from mtcert_torch.runs.counts import check_complete, store_item
from mtcert_torch.runs.store import ResultsWriter, count_fields, count_vectors, unique_records
from mtcert_torch.runs.summary import summarize, write_summary
from mtcert_torch.settings import Settings
from mtcert_torch.task import NonFiniteOutputError

__all__ = [
    "Evaluation",
    "ItemResult",
    "certify_item",
    "certify_items",
    "check_same_settings",
    "distributed_context",
    "evaluate",
    "init_distributed",
    "rank_folder",
]


@dataclass(frozen=True)
class ItemResult:
    """What :func:`certify_item` returns: the JSON-serialisable ``record``, the
    :class:`~mtcert_torch.certifier.Certificate`, the base model's labels on the
    clean input (None without ``base``) and the ground truth as an array."""

    record: dict
    certificate: Certificate
    base: np.ndarray | None
    target: np.ndarray


def certify_item(
    certifier: Certifier,
    item: Item,
    settings: Settings,
    *,
    seed: int | None = None,
    base: bool = True,
    ignore_index: int | None = None,
) -> ItemResult:
    """Certify one item; return its record, certificate and base prediction.

    ``seed``: reseed the certifier with :func:`~mtcert_torch.items.item_seed` ``(seed, item.name)``
    first (the loop does; leave None to continue the certifier's stream).
    The record holds the per-item counts behind the summary columns for the
    certified labels (``cert_*``) and, with ``base``, for the base model on the
    clean input (``base_*``), the settings and timings.
    """
    if seed is not None:
        certifier.manual_seed(item_seed(seed, item.name))
    try:
        cert = certifier.certify(item.input, **settings.kwargs())
    except NonFiniteOutputError as exc:  # stop the run, naming the item
        raise NonFiniteOutputError(f"item {item.name!r}: {exc}") from None
    target = torch.as_tensor(np.asarray(item.target))
    nc = certifier.num_classes
    c = segmentation_tally(torch.from_numpy(cert.labels), target, nc, ignore_index=ignore_index)
    rec = {"name": item.name, **item.fields, **certifier.task.record(cert.info)}
    if item.group is not None:
        rec["group"] = item.group
    if item.parts is not None:
        rec["parts"] = [int(v) for v in item.parts]
    rec.update(noise=cert.noise, **settings.kwargs(), radius=cert.radius)
    rec.update(
        components=c.components,
        valid=c.valid,
        abstained=c.abstained,
        abstained_valid=c.abstained_valid,
        **count_fields("cert", c, item.parts),
        abstain_rate=c.abstained_valid / c.valid if c.valid else float("nan"),
        seconds_sampling=cert.seconds_sampling,
        seconds_statistics=cert.seconds_statistics,
        seconds=cert.seconds,
        **count_vectors("cert", c),
    )
    pred = None
    if base:
        t0 = time.perf_counter()
        pred = certifier.predict(item.input)
        rec["seconds_base"] = time.perf_counter() - t0
        b = segmentation_tally(torch.from_numpy(pred), target, nc, ignore_index=ignore_index)
        rec.update(**count_fields("base", b, item.parts), **count_vectors("base", b))
    return ItemResult(rec, cert, pred, target.numpy())


def certify_items(
    certifier: Certifier,
    data,
    settings: Settings,
    *,
    seed: int = 0,
    skip: Iterable[str] = (),
    base: bool = True,
    ignore_index: int | None = None,
) -> Iterator[ItemResult]:
    """Certify every item of ``data`` (:class:`~mtcert_torch.items.Items`, a sequence of
    :class:`~mtcert_torch.items.Item`, or ``(name, input, target)`` triples) with per-item
    seeds; yield the results.

    Items whose name is in ``skip`` are passed over (resumption).  No files
    are written; :func:`evaluate` adds result files, sharding and the summary.
    """
    items = Items.of(data)
    skip = set(skip)
    for i, name in enumerate(items.names):
        if name not in skip:
            yield certify_item(
                certifier, items[i], settings, seed=seed, base=base, ignore_index=ignore_index
            )


def distributed_context() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def check_same_settings(config: dict, *, local: Sequence[str] = ()) -> None:
    """Refuse a ``torch.distributed`` run whose ranks differ in a setting that changes
    results (a ValueError on every rank, naming the settings); nothing to check alone.

    ``config``: this rank's ``config.json`` entries (the model's digest included);
    ``local``: entries that may differ between machines (the checkpoint's and the data's
    paths).  Rank 0 would otherwise summarise the images of different models as one.
    """
    world = distributed_context()[1]
    if world == 1:
        return
    mine = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in set(local)}
    every: list = [None] * world
    torch.distributed.all_gather_object(every, mine)
    ref = every[0]
    diff = [
        f"{k}: rank 0 {ref.get(k)!r} vs rank {r} {other.get(k)!r}"
        for r, other in enumerate(every)
        for k in sorted(set(ref) | set(other))
        if other.get(k) != ref.get(k)
    ]
    if diff:
        raise ValueError(
            f"the ranks of this run differ in settings that change results ({'; '.join(diff)}): "
            "every machine needs the same checkpoint, data and options"
        )


#: The placeholder of an output folder that each rank replaces with its rank.
RANK_PLACEHOLDER = "{rank}"


def rank_folder(out):
    """This process's output folder: ``out`` with ``{rank}`` replaced by its rank.

    The rank is the initialised process group's, else torchrun's ``RANK`` when
    ``WORLD_SIZE`` > 1, else 0; ``out`` without the placeholder is returned as
    given (a folder on each machine's own disk, or one folder that all ranks
    share: their files carry their rank).

    Examples
    --------
    >>> print(rank_folder("results/cs-{rank}"))  # a single process is rank 0
    results/cs-0
    """
    text = os.fspath(out)
    if RANK_PLACEHOLDER not in text:
        return out
    rank, world = distributed_context()
    if world == 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # before init_distributed
        rank = int(os.environ.get("RANK", "0"))
    text = text.replace(RANK_PLACEHOLDER, str(rank))
    return text if isinstance(out, str) else type(out)(text)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns.

    ``records``: on rank 0 every record of the run (every rank's output folder,
    earlier runs included), in the order of the data set; on another rank this
    rank's own; ``rows``: the summary rows (rank 0 only, else empty); ``rank``;
    ``out``: this rank's output folder (None without a writer).
    """

    records: list
    rows: list
    rank: int
    out: Path | None = None


def evaluate(
    certifier: Certifier,
    data,
    settings: Settings,
    *,
    writer: ResultsWriter | None = None,
    seed: int = 0,
    base: bool = True,
    ignore_index: int | None = None,
    limit: int | None = None,
    hooks: Sequence[Callable[[Item, ItemResult], dict | None]] = (),
    progress: bool = False,
    counts: CountsWriter | None = None,
) -> Evaluation:
    """Certify a data set with resumable result files, sharding and a summary.

    Under an initialised ``torch.distributed`` process group rank ``r`` of
    ``W`` certifies items ``r, r + W, …`` into its own record file (resuming from
    its own folder); after a barrier every rank sends the records of its folder
    to rank 0 (``gather_object``), which writes the run-wide ``<stem>.csv`` and
    the summary from them: the same rows as a single process that certified
    every item.

    Parameters
    ----------
    certifier : Certifier
    data : Items, sequence of Item, or (name, input, target) triples
    settings : Settings
    writer : ResultsWriter, optional
        Result files to append to and resume from (finished names are
        skipped); without one nothing is written.
    seed : int
        Run seed; item ``name`` uses :func:`~mtcert_torch.items.item_seed` ``(seed, name)``.
    base : bool
        Also run the base model on the clean input (the "base model" row).
    ignore_index : int, optional
        Target value left out of the metrics.
    limit : int, optional
        Only the first ``limit`` items.
    hooks : sequence of callables
        ``hook(item, result) -> dict | None`` per certified item; an
        :class:`~mtcert_torch.items.ItemHook` also adds its summary rows and
        columns (see the module docstring).
    progress : bool
        A progress bar on stderr (rank 0).
    counts : mtcert.stored.counts.CountsWriter, optional
        Store each item's guess, hits and ground truth for re-deciding without
        the model (:mod:`mtcert_torch.runs.counts`,
        :func:`mtcert.stored.recertification.recertify`); finished (closed) when
        every item of this rank is stored.
    """
    items = Items.of(data)
    seen: set = set()
    for name in items.names:  # the resume key: a repeated name would drop or double an item
        if name in seen:
            raise ValueError(f"item name {name!r} occurs twice: names must be unique in a run")
        seen.add(name)
    unit = "items" if writer is None else writer.unit  # the summary's item count column
    rank, world = distributed_context()
    finished = writer.finished_names() if writer is not None else set()
    order = list(range(len(items)))[:limit]
    mine = order[rank::world]
    todo = [i for i in mine if items.names[i] not in finished]
    if counts is not None:
        check_complete(counts, finished & {items.names[i] for i in mine})
        counts.expect(len(mine))
    from tqdm.auto import tqdm

    bar = tqdm(
        todo,
        desc=f"certify[{rank}]" if world > 1 else "certify",
        unit=unit.rstrip("s") or "item",
        disable=not progress or rank != 0,
        file=sys.stderr,
    )
    own = []
    for i in bar:
        item = items[i]
        result = certify_item(
            certifier, item, settings, seed=seed, base=base, ignore_index=ignore_index
        )
        if counts is not None:
            store_item(counts, item, result)
        for hook in hooks:
            extra = hook(item, result)
            if extra:
                result.record.update(extra)
        if writer is not None:
            writer.append(result.record)
        own.append(result.record)
        rec = result.record
        bar.set_postfix(acc=f"{rec['cert_acc']:.3f}", abstain=f"{rec['abstain_rate']:.3f}")
    if counts is not None:
        counts.finish()  # every item of this rank is stored: the file is complete
    out = None if writer is None else writer.out
    if world > 1:
        torch.distributed.barrier()  # every rank's files are complete (a folder may be shared)
    records = _run_records(own if writer is None else writer.all_records(), items.names, world)
    if rank != 0:
        return Evaluation(own if writer is None else writer.own_records(), [], rank, out)
    if writer is not None:
        writer.write_run_csv(records)
        rows = write_summary(writer.out, records, unit=unit, columns=writer.columns, hooks=hooks)
    else:
        rows = summarize(records, unit=unit, hooks=hooks)
    return Evaluation(records, rows, rank, out)


def _run_records(mine: list, names: Sequence[str], world: int) -> list | None:
    """Every rank's ``mine`` on rank 0 (None elsewhere): one record per name, in the order
    of ``names`` (records of other names last, as they came)."""
    if world > 1:
        parts = [None] * world if torch.distributed.get_rank() == 0 else None
        torch.distributed.gather_object(mine, parts, dst=0)
        if parts is None:
            return None
        mine = [r for part in parts for r in part]
    index = {name: i for i, name in enumerate(names)}
    # ranks sharing a folder each send it: a record per name
    return sorted(unique_records(mine), key=lambda r: index.get(r["name"], len(index)))


def init_distributed(device: torch.device) -> tuple[torch.device, bool]:
    """Join torchrun's process group if ``WORLD_SIZE`` > 1 (NCCL for CUDA, else gloo).

    Returns the device to use (this rank's GPU) and whether the group was
    created here (then the caller destroys it when done).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device, False
    import torch.distributed as dist

    owned = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owned = True
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    return device, owned
