"""Stored counts from the evaluation loop (``--save-counts``) with the core's writer.

:func:`mtcert_torch.runs.loop.evaluate` takes a :class:`mtcert.stored.counts.CountsWriter`
as ``counts``: after each certified item it appends the item's guess, the hit
counts of its ``n`` testing samples and the ground truth (a point cloud's
``group``/``parts`` as metadata) *before* the item's record is written.  An
item already stored — a run killed between the two writes, then resumed — is
compared with the stored one instead: per-item seeds make the counts
identical, and any difference is an error, never a silent mix.  The loop
announces how many items the file is to hold and finishes it (its closing
frame) when the run is complete; a run cut short leaves it in progress.  The
stored counts are re-decided without the model by
:func:`mtcert.stored.recertification.recertify` (``python -m mtcert recertify OUT``).

With ``adaptive_n`` each item is stored with its own ``n``
(:func:`counts_settings`; the file records the mode as ``sampling``).

Imports the core's stored counts and the plugin's ``adaptive_n`` parser.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtcert.stored.counts import SUFFIX, CountsWriter, read_counts
from mtcert_torch.adaptive import AdaptiveN

__all__ = [
    "check_complete",
    "check_counts",
    "counts_path",
    "counts_settings",
    "open_counts",
    "store_item",
]


def counts_path(out, rank: int = 0) -> Path:
    """``<out>/counts.mtcounts`` (rank 0) or ``<out>/counts.rank<r>.mtcounts``."""
    return Path(out) / (f"counts{SUFFIX}" if rank == 0 else f"counts.rank{rank}{SUFFIX}")


def counts_settings(config: dict, *, noise: str, num_classes: int, ignore_index) -> dict:
    """The settings of a CLI run's counts: ``config`` (every result-changing setting,
    the model's identity included) plus ``noise``, ``num_classes`` and ``ignore_index``.

    With ``adaptive_n`` the counts have per-item n: ``sampling`` is its mode and ``n``
    its budget (the most testing samples an item may use); without it the settings are
    those of a fixed-n run, as before the option existed.
    """
    out = {**config, "noise": noise, "num_classes": num_classes, "ignore_index": ignore_index}
    spec = out.pop("adaptive_n", None)
    if spec is not None:
        spec = AdaptiveN.parse(spec)
        out.update(adaptive_n=spec.text, sampling=spec.mode, n=spec.budget(config["n"]))
    return out


def check_counts(out, settings: dict, rank: int = 0) -> None:
    """Refuse a counts file in ``out`` that is damaged or of other ``settings``, before
    the run writes anything (nothing is written here)."""
    path = counts_path(out, rank)
    if path.exists():
        CountsWriter.check(path, settings)


def open_counts(out, settings: dict, rank: int = 0) -> CountsWriter:
    """The counts writer of a CLI run (settings from :func:`counts_settings`)."""
    return CountsWriter(counts_path(out, rank), settings)


def check_complete(counts: CountsWriter, finished) -> None:
    """Refuse a counts file that lacks items the result files already hold."""
    missing = sorted(set(finished) - counts.stored_names)
    if missing:
        raise ValueError(
            f"{counts.path} lacks {len(missing)} item(s) already in the result files "
            f"(e.g. {missing[0]!r}): the run was started without stored counts; "
            "use a new output folder"
        )


def store_item(counts: CountsWriter, item, result) -> None:
    """Append one certified item (see the module docstring)."""
    cert = result.certificate
    if item.name in counts.stored_names:
        old = read_counts(counts.path, partial=True)[item.name]  # the run's own, in progress
        pairs = ((old.guess, cert.guess), (old.hits, cert.hits), (old.target, result.target))
        if old.n != cert.n or not all(np.array_equal(a, b) for a, b in pairs):
            raise ValueError(f"{counts.path}: item {item.name!r} is stored with other counts")
        return
    meta = {}
    if item.group is not None:
        meta["group"] = item.group
    if item.parts is not None:
        meta["parts"] = [int(v) for v in item.parts]
    n = None if cert.adaptive_n is None else cert.n  # per-item n only with adaptive_n
    counts.add(item.name, guess=cert.guess, hits=cert.hits, target=result.target, meta=meta, n=n)
