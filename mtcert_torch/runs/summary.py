"""The summary of a run: paper Tables 1 and 2 from per-item records of any modality.

:func:`summarize` turns records into rows: one "base model" row (when the records
have base statistics) and one SEGCERTIFY row per setting
(:func:`mtcert_torch.settings.setting_key`), accumulated by the core's
:class:`mtcert.certify.metrics.CertifiedSegmentationMetrics` from each record's
counts (:func:`mtcert_torch.runs.store.record_counts`).  Hooks that add fields of
their own (:class:`mtcert_torch.items.ItemHook`, e.g. adaptive hierarchical
certification) add their rows and columns; the summary names none of them.
:func:`write_summary` writes ``summary.csv`` and ``summary.md``
(:func:`write_table`).

Imports the core's metrics, the plugin's items and settings, and the record layout
of :mod:`mtcert_torch.runs.store`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtcert.certify.metrics import CertifiedSegmentationMetrics
from mtcert_torch.items import ItemHook
from mtcert_torch.runs.store import TABLE1_COLUMNS, record_counts
from mtcert_torch.settings import setting_key, setting_name, setting_sigma

__all__ = ["summarize", "write_summary", "write_table"]


class _Row:
    """Accumulates one summary row: the core's metrics over per-item counts, and times."""

    def __init__(self, radius=None):
        self.metrics: CertifiedSegmentationMetrics | None = None
        self.seconds: list[float] = []
        self.radius = radius

    def add(self, r: dict, prefix: str, seconds: float) -> None:
        counts = record_counts(r, prefix)
        if self.metrics is None:
            self.metrics = CertifiedSegmentationMetrics(len(counts.union), ignore_index=None)
        parts = r.get("parts")
        self.metrics.add(
            counts, group=r.get("group"), parts=None if parts is None else tuple(parts)
        )
        self.seconds.append(seconds)

    def row(self, model: str, sigma, unit: str) -> dict:
        s = self.metrics.compute()
        return {
            "model": model,
            "sigma": sigma,
            "radius": self.radius,
            "acc": s.accuracy,
            "miou": s.mean_iou,
            "inst_miou": s.instance_miou,
            "class_miou": s.class_miou,
            "abstain": s.abstain_rate,
            "t": float(np.mean(self.seconds)),
            unit: s.n_inputs,
        }


def summarize(records, *, unit: str = "images", hooks: Sequence = ()) -> list[dict]:
    """Summary rows (paper Tables 1 and 2) from per-item records of any modality.

    One "base model" row (when the records have base statistics) and one
    SEGCERTIFY row per (noise, σ, τ, n0, n, α, method, k) setting, with the
    keys ``model, sigma, radius, acc, miou, inst_miou, class_miou, abstain, t``
    and ``unit`` (the item count).  ``acc``: certified accuracy pooled over
    all scored components; ``miou``: App. A.1's mIoU over (item, class) pairs
    with a non-empty union; ``inst_miou``/``class_miou``: ShapeNet-part
    instance and class mIoU (items with ``parts``; NaN otherwise);
    ``abstain``: abstained / scored components; ``t``: seconds per item.
    Every :class:`~mtcert_torch.items.ItemHook` of ``hooks`` then adds the rows
    of its own record fields (e.g.
    :func:`mtcert_torch.hierarchy.hierarchy_hook`: adaptive rows and CIG).
    """
    groups: dict = {}
    base = None
    for r in records:
        groups.setdefault(setting_key(r), _Row(r["radius"])).add(r, "cert", r["seconds"])
        if "base_correct" in r:
            base = base or _Row()
            base.add(r, "base", r["seconds_base"])
    rows = [] if base is None else [base.row("base model", None, unit)]
    for key, g in groups.items():
        rows.append(g.row(setting_name(key), setting_sigma(key), unit))
    for hook in hooks:
        if isinstance(hook, ItemHook):
            rows = hook.summary_rows(records, rows, unit)
    return rows


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def write_table(out, rows: list[dict], columns, *, name: str = "summary") -> None:
    """Write ``rows`` to ``<name>.csv`` and, formatted, ``<name>.md`` in folder ``out``.

    ``columns`` is a sequence of ``(key, header, format)``; a ``None`` format
    prints the value as is, missing or NaN numbers print as ``-``.
    """
    out = Path(out)
    with (out / f"{name}.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, [c[0] for c in columns], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = [
        "| " + " | ".join(c[1] for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in rows:
        cells = (str(r[k]) if spec is None else _fmt(r[k], spec) for k, _, spec in columns)
        lines.append("| " + " | ".join(cells) + " |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def write_summary(
    out, records: list[dict], *, unit="images", columns=TABLE1_COLUMNS, hooks: Sequence = ()
) -> list[dict]:
    """Write ``summary.csv`` and ``summary.md`` (:func:`summarize` rows, ``columns`` and
    the hooks' columns); return the rows."""
    # Sorted by name: the same items give the same bytes whatever order they finished in.
    rows = summarize(sorted(records, key=lambda r: r["name"]), unit=unit, hooks=hooks)
    for hook in hooks:
        if isinstance(hook, ItemHook):
            columns = hook.summary_columns(rows, columns)
    write_table(out, rows, columns)
    return rows
