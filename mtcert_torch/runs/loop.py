"""The one evaluation loop: certify a data set item by item, for every modality.

:func:`evaluate` is what both CLI commands and the Python API run.  Per item
it reseeds the certifier from the run seed and the item's name
(:func:`item_seed`: results do not depend on order, sharding or resumption),
runs SEGCERTIFY, optionally the base model on the clean input, computes the
per-item counts on the device (:func:`mtcert_torch.metrics.segmentation_counts`)
and appends one record to the result files (:class:`~mtcert_torch.runs.store.ResultsWriter`).
Under ``torch.distributed`` the items are sharded over the ranks and rank 0
summarises every record (:func:`mtcert_torch.runs.store.summarize`).

Extension point: ``hooks`` are called as ``hook(item, result)`` after each
item is certified and before its record is written; a returned dict is merged
into the record (e.g. a path to stored counts), and the hook may write files
of its own.  :class:`ItemResult` carries the certificate, the base prediction
and the task's prepared input.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtcert.certify.segmentation import segcertify_hits
from mtcert.stats.validation import check_positive_int
from mtcert.stored.counts import CountsWriter
from mtcert_torch.certifier import Certificate, Certifier
from mtcert_torch.metrics import segmentation_counts
from mtcert_torch.noise import NoiseModel
from mtcert_torch.runs.counts import check_complete, store_item
from mtcert_torch.runs.store import ResultsWriter, summarize

__all__ = [
    "Evaluation",
    "Item",
    "ItemResult",
    "Items",
    "Settings",
    "certify_item",
    "certify_items",
    "distributed_context",
    "evaluate",
    "item_seed",
]


@dataclass(frozen=True)
class Item:
    """One item of a data set.

    Attributes
    ----------
    name : str
        Unique within the data set (records are keyed by it).
    input :
        What the task's ``prepare`` takes (an image; ``(points, category)``).
    target : array_like ``(*components)``
        Ground-truth labels.
    group : str, optional
        For class-averaged metrics (the ShapeNet-part class mIoU: the category).
    parts : (start, stop), optional
        Label range scored by the ShapeNet-part IoU (:func:`mtcert.certify.metrics.part_iou`).
    fields : dict
        Extra record fields (e.g. ``{"category": "Chair"}``).
    """

    name: str
    input: object
    target: object
    group: str | None = None
    parts: tuple[int, int] | None = None
    fields: dict = field(default_factory=dict)


class Items(Sequence):
    """A lazy data set: item names up front, items loaded on access.

    ``Items(names, load)`` with ``load(i) -> Item``; skipping a finished item
    (resumption, sharding) costs nothing.  Plain ``(name, input, target)``
    triples are wrapped by :meth:`from_triples`.
    """

    def __init__(self, names: Sequence[str], load: Callable[[int], Item]):
        self.names = list(names)
        self._load = load

    @classmethod
    def from_triples(cls, data) -> Items:
        """Items of a data set of ``(name, input, target)`` triples (with ``.names`` if lazy)."""
        if hasattr(data, "names") and hasattr(data, "__getitem__"):
            return cls(data.names, lambda i: Item(*data[i]))
        items = [Item(*t) for t in data]
        return cls([it.name for it in items], items.__getitem__)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):
        return self._load(i)


def _as_items(data) -> Items:
    if isinstance(data, Items):
        return data
    if isinstance(data, Sequence) and data and isinstance(data[0], Item):
        return Items([it.name for it in data], data.__getitem__)
    return Items.from_triples(data)


@dataclass(frozen=True)
class Settings:
    """SEGCERTIFY settings of a run (paper Algorithm 2)."""

    sigma: float
    tau: float = 0.75
    n0: int = 10
    n: int = 100
    alpha: float = 0.001
    method: str = "holm"
    k: int = 1

    def validate(self, noise: str = "gaussian") -> Settings:
        """Check every value before any output is written (mtcert validates τ, α, n,
        method and k; σ by the noise model)."""
        NoiseModel(noise, self.sigma)
        check_positive_int(self.n0, "n0")
        self.canonical_method()
        return self

    def canonical_method(self) -> str:
        """The FWER method's canonical name (aliases resolved by mtcert)."""
        zero = np.zeros(1, np.int64)
        kw = {"tau": self.tau, "alpha": self.alpha, "method": self.method, "k": self.k}
        return segcertify_hits(zero, zero, self.n, **kw).method

    def kwargs(self) -> dict:
        return {
            "sigma": self.sigma,
            "tau": self.tau,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
            "method": self.method,
            "k": self.k,
        }


def item_seed(seed: int, name: str) -> int:
    """The noise seed of one item: a hash of the run seed and the item's name.

    Examples
    --------
    >>> item_seed(0, "a") == item_seed(0, "a") != item_seed(1, "a")
    True
    """
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class ItemResult:
    """What :func:`certify_item` returns: the JSON-serialisable ``record``, the
    :class:`~mtcert_torch.certifier.Certificate`, the base model's labels on the
    clean input (None without ``base``) and the ground truth as an array."""

    record: dict
    certificate: Certificate
    base: np.ndarray | None
    target: np.ndarray


def _count_fields(prefix: str, counts, parts) -> dict:
    """Record fields of one prediction's counts (``cert_*`` or ``base_*``)."""
    out = {
        f"{prefix}_correct": counts.correct,
        f"{prefix}_acc": counts.correct / counts.valid if counts.valid else float("nan"),
    }
    if parts is not None:
        out[f"{prefix}_part_iou"] = counts.part_iou(parts)
    return out


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

    ``seed``: reseed the certifier with :func:`item_seed` ``(seed, item.name)``
    first (the loop does; leave None to continue the certifier's stream).
    The record holds the per-item counts behind the summary columns for the
    certified labels (``cert_*``) and, with ``base``, for the base model on the
    clean input (``base_*``), the settings and timings.
    """
    if seed is not None:
        certifier.manual_seed(item_seed(seed, item.name))
    cert = certifier.certify(item.input, **settings.kwargs())
    target = torch.as_tensor(np.asarray(item.target))
    nc = certifier.num_classes
    c = segmentation_counts(torch.from_numpy(cert.labels), target, nc, ignore_index=ignore_index)
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
        **_count_fields("cert", c, item.parts),
        abstain_rate=c.abstained_valid / c.valid if c.valid else float("nan"),
        seconds_sampling=cert.seconds_sampling,
        seconds_statistics=cert.seconds_statistics,
        seconds=cert.seconds,
        cert_intersection=c.intersection.tolist(),
        cert_union=c.union.tolist(),
    )
    pred = None
    if base:
        t0 = time.perf_counter()
        pred = certifier.predict(item.input)
        rec["seconds_base"] = time.perf_counter() - t0
        b = segmentation_counts(torch.from_numpy(pred), target, nc, ignore_index=ignore_index)
        rec.update(
            **_count_fields("base", b, item.parts),
            base_intersection=b.intersection.tolist(),
            base_union=b.union.tolist(),
        )
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
    """Certify every item of ``data`` (:class:`Items`, a sequence of :class:`Item`,
    or ``(name, input, target)`` triples) with per-item seeds; yield the results.

    Items whose name is in ``skip`` are passed over (resumption).  No files
    are written; :func:`evaluate` adds result files, sharding and the summary.
    """
    items = _as_items(data)
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


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns.

    ``records``: every record of the output folder (all ranks, earlier runs
    included) on rank 0, this rank's own otherwise; ``rows``: the summary
    rows (rank 0 only, else empty); ``rank``.
    """

    records: list
    rows: list
    rank: int


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

    Parameters
    ----------
    certifier : Certifier
    data : Items, sequence of Item, or (name, input, target) triples
    settings : Settings
    writer : ResultsWriter, optional
        Result files to append to and resume from (finished names are
        skipped); without one nothing is written.
    seed : int
        Run seed; item ``name`` uses :func:`item_seed` ``(seed, name)``.
    base : bool
        Also run the base model on the clean input (the "base model" row).
    ignore_index : int, optional
        Target value left out of the metrics.
    limit : int, optional
        Only the first ``limit`` items.
    hooks : sequence of callables
        ``hook(item, result) -> dict | None`` per certified item (see the
        module docstring).
    progress : bool
        A progress bar on stderr (rank 0).
    counts : mtcert.stored.counts.CountsWriter, optional
        Store each item's guess, hits and ground truth for re-deciding without
        the model (:mod:`mtcert_torch.runs.counts`,
        :func:`mtcert.stored.recertification.recertify`).

    Under an initialised ``torch.distributed`` process group rank ``r`` of
    ``W`` certifies items ``r, r + W, …`` into its own record file; after a
    barrier rank 0 summarises every record of the folder.
    """
    items = _as_items(data)
    unit = "items" if writer is None else writer.unit  # the summary's item count column
    rank, world = distributed_context()
    done = writer.done() if writer is not None else set()
    order = list(range(len(items)))[:limit]
    todo = [i for i in order[rank::world] if items.names[i] not in done]
    if counts is not None:
        check_complete(counts, done & {items.names[i] for i in order[rank::world]})
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
    if world > 1:
        torch.distributed.barrier()
    if writer is None:
        records = own
    elif world > 1 and rank != 0:
        records = writer.own_records()
    else:
        records = writer.all_records()
    if rank != 0:
        return Evaluation(records, [], rank)
    if writer is not None:
        rows = writer.write_summary(records)
    else:
        rows = summarize(records, unit=unit)
    return Evaluation(records, rows, rank)


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
