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

Every row says what it promises in its ``guarantee`` column (in both files, before
the item count): the family (one image, one point cloud), the error rate (FWER, or
k-FWER with its k) and that the row holds alone — the rows do not hold jointly,
and a row's pixels are certified per image, never all at once
(:mod:`mtcert.certify.guarantees`).  :func:`radii_hook` (``--radii``) records the
per-component radii certificate's certified accuracy at a few radii, which become
"JointRadii" rows that hold jointly with each other.

:func:`passes_hook` (``--adaptive-n``) records each item's forward passes and adds
their mean and spread to the SEGCERTIFY rows.

Imports the core's metrics and promise wording, the plugin's items and settings,
and the record layout of :mod:`mtcert_torch.runs.store`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtcert.certify.guarantees import promise, radii_promise, scope
from mtcert.certify.metrics import CertifiedSegmentationMetrics
from mtcert_torch.items import ItemHook
from mtcert_torch.runs.store import FAMILY_OF_UNIT, IMAGE_FILES, TABLE1_COLUMNS, record_counts
from mtcert_torch.settings import SETTING_KEY, setting_key, setting_name, setting_sigma

__all__ = [
    "RADII_TAUS",
    "passes_hook",
    "radii_hook",
    "row_guarantee",
    "summarize",
    "timing_note",
    "write_summary",
    "write_table",
]

#: The τ whose radii R(τ) the "JointRadii" summary rows report (with the run's own τ).
RADII_TAUS = (0.5, 0.6, 0.75, 0.9)
#: The summary's guarantee column: (key, header, format).
GUARANTEE_COLUMN = ("guarantee", "guarantee", None)


def row_guarantee(method: str, alpha: float, k: int = 1, *, family: str = "image") -> str:
    """A SEGCERTIFY row's ``guarantee`` cell: the promise per family and that it holds alone.

    Examples
    --------
    >>> for part in row_guarantee("holm", 0.001).split("; "):
    ...     print(part)
    per image: P(a false certified pixel) <= 0.001 (FWER)
    this row alone: rows do not hold jointly
    """
    return f"{promise(method, alpha, k, family=family)}; {scope()}"


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
    Every row gets a ``guarantee`` (:func:`row_guarantee`; the base model's:
    not certified); a hook's row without one gets its setting's, when the
    records hold one setting.
    """
    groups: dict = {}
    base = None
    family = FAMILY_OF_UNIT.get(unit, "item")
    for r in records:
        groups.setdefault(setting_key(r), _Row(r["radius"])).add(r, "cert", r["seconds"])
        if "base_correct" in r:
            base = base or _Row()
            base.add(r, "base", r["seconds_base"])
    rows = (
        []
        if base is None
        else [dict(base.row("base model", None, unit), guarantee="none: not certified")]
    )
    for key, g in groups.items():
        s = dict(zip(SETTING_KEY, key, strict=True))
        text = row_guarantee(s["method"], s["alpha"], s["k"], family=family)
        rows.append(dict(g.row(setting_name(key), setting_sigma(key), unit), guarantee=text))
    for hook in hooks:
        if isinstance(hook, ItemHook):
            rows = hook.summary_rows(records, rows, unit)
    if len(groups) == 1:  # hook rows of the run's one setting (e.g. adaptive certification)
        for row in rows:
            row.setdefault("guarantee", text)
    for row in rows:
        row.setdefault("guarantee", "-")
    return rows


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def write_table(out, rows: list[dict], columns, *, name: str = "summary") -> None:
    """Write ``rows`` to ``<name>.csv`` and, formatted, ``<name>.md`` in folder ``out``.

    ``columns`` is a sequence of ``(key, header, format)``; a ``None`` format
    prints the value as is; missing values and NaN numbers print as ``-``.
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
        # a column another hook added is "-" in the rows without it
        cells = (
            str(r.get(k, "-")) if spec is None else _fmt(r.get(k), spec) for k, _, spec in columns
        )
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
    if GUARANTEE_COLUMN not in columns:  # before the item count, which stays last
        columns = (*columns[:-1], GUARANTEE_COLUMN, columns[-1])
    write_table(out, rows, columns)
    return rows


class _RadiiHook(ItemHook):
    """Certified accuracy of the per-component radii certificate at a few radii."""

    def __init__(self, certifier, taus, ignore_index, family):
        self.certifier = certifier
        self.taus = taus
        self.ignore_index = ignore_index
        self.family = family

    def __call__(self, item, result) -> dict:
        cert = result.certificate
        joint = cert.radii_certificate
        if joint is None:
            raise ValueError("radii_hook needs a Certifier built with radii=True")
        target = np.asarray(result.target)
        valid = (
            np.ones(target.shape, bool)
            if self.ignore_index is None
            else (target != self.ignore_index)
        )
        right = valid & (joint.labels == target)
        taus = sorted({*self.taus, cert.tau})
        radii = [self.certifier.task.radius(t, cert.sigma) for t in taus]
        at = [joint.certified & (joint.radii >= r) for r in radii]
        certified = joint.radii[joint.certified & valid]
        return {
            "radii_alpha": cert.alpha,
            "radii_taus": taus,
            "radii_at": radii,
            "radii_correct": [int((right & a).sum()) for a in at],
            "radii_abstained_valid": [int((valid & ~a).sum()) for a in at],
            "radii_max": float(certified.max()) if certified.size else 0.0,
            "radii_median": float(np.median(certified)) if certified.size else 0.0,
        }

    def summary_rows(self, records, rows, unit):
        groups: dict = {}
        for r in records:
            if "radii_correct" in r:
                key = (setting_key(r), tuple(r["radii_taus"]))
                groups.setdefault(key, []).append(r)
        out = list(rows)
        for (key, taus), recs in groups.items():
            s = dict(zip(SETTING_KEY, key, strict=True))
            valid = sum(r["valid"] for r in recs) or float("nan")
            text = f"{radii_promise(s['alpha'], family=self.family)}; {scope(joint_radii=True)}"
            name = f"JointRadii {s['noise']} n0={s['n0']} n={s['n']} alpha={s['alpha']:g}"
            for j, _ in enumerate(taus):
                radius = recs[0]["radii_at"][j]
                out.append({
                    "model": f"{name} R>={radius:.3g}", "sigma": s["sigma"], "radius": radius,
                    "acc": sum(r["radii_correct"][j] for r in recs) / valid,
                    "miou": float("nan"), "inst_miou": float("nan"),
                    "class_miou": float("nan"),
                    "abstain": sum(r["radii_abstained_valid"][j] for r in recs) / valid,
                    "t": float("nan"), unit: len(recs), "guarantee": text,
                })  # fmt: skip
        return out


def radii_hook(certifier, *, ignore_index=None, taus=RADII_TAUS, family: str = "image") -> ItemHook:
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook for ``--radii``: from each
    certificate's per-component radii (``Certifier(..., radii=True)``) the record gains
    ``radii_taus``, ``radii_at`` (the radii R(τ) for ``taus`` and the run's τ),
    ``radii_correct`` and ``radii_abstained_valid`` (valid components certified correctly /
    not certified at R or more), ``radii_max`` and ``radii_median`` (of the certified valid
    components).  Its summary rows, "JointRadii ... R>=r", give the certified accuracy at
    each radius; they all come from one certificate per item and hold jointly with each
    other (per item), unlike the SEGCERTIFY rows at different τ.
    """
    return _RadiiHook(certifier, tuple(taus), ignore_index, family)


# -- passes per item (adaptive n) --------------------------------------------------------------
#: The passes columns: mean per item, and min / quartiles / max.
PASSES_COLUMNS = (
    ("passes", "passes", ".1f"),
    ("passes_spread", "passes min/q25/median/q75/max", None),
)


class _PassesHook(ItemHook):
    """Noisy copies drawn per item (``n0 + pilot + n``) when n differs between items."""

    def __call__(self, item, result) -> dict:
        return {"passes": int(result.certificate.passes)}

    def summary_rows(self, records, rows, unit):
        groups: dict = {}
        for r in records:
            if "passes" in r:
                groups.setdefault(setting_name(setting_key(r)), []).append(r["passes"])
        for row in rows:
            passes = groups.get(row["model"])
            if passes:
                q = np.percentile(passes, [0, 25, 50, 75, 100])
                row["passes"] = float(np.mean(passes))
                row["passes_spread"] = "/".join(f"{v:g}" for v in q)
            row.setdefault("passes", None)
            row.setdefault("passes_spread", "-")
        return rows

    def summary_columns(self, rows, columns):
        if not any(r.get("passes") is not None for r in rows):
            return columns
        return (*columns[:-1], *PASSES_COLUMNS, columns[-1])


def passes_hook() -> ItemHook:
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook for ``--adaptive-n``: each record
    gains ``passes`` (noisy copies drawn for the item: guessing, pilot and testing; the
    ``passes`` column of ``per_image.csv``), and each SEGCERTIFY row of the summary its
    mean (``passes``) and spread (``passes_spread``: min, quartiles, max over items)."""
    return _PassesHook()


def timing_note(folder, files: dict = IMAGE_FILES) -> str | None:
    """What the summary's ``t [s]`` is, and whether a one-off start-up cost is in it.

    ``t [s]`` is the mean over the items of a run folder's record file (sampling and
    statistics per item, from its CSV).  The note gives the first item's time and the
    others' median; when the first is well above them (a kernel compiled or loaded
    from numba's cache, the first forward passes), also the mean without it.  None for
    fewer than two items.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "per_image.csv").write_text("name,seconds\\na,2.5\\nb,0.2\\nc,0.3\\n")
    >>> print(timing_note(folder))  # doctest: +NORMALIZE_WHITESPACE
    t [s] is the mean time per image (sampling and statistics) over 3 images: the first took
    2.5 s, the others 0.25 s (median); the first includes a one-off start-up cost (kernels
    compiled or loaded, first forward passes): 0.25 s per image without it
    """
    path = Path(folder) / f"{files['stem']}.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f) if r.get("seconds")]
    if len(seconds) < 2:
        return None
    unit = files["unit"].removesuffix("s")
    first, rest = seconds[0], seconds[1:]
    median = statistics.median(rest)
    text = (
        f"t [s] is the mean time per {unit} (sampling and statistics) over {len(seconds)} "
        f"{unit}s: the first took {first:.3g} s, the others {median:.3g} s (median)"
    )
    if first > 2.0 * median + 0.05:
        text += (
            "; the first includes a one-off start-up cost (kernels compiled or loaded, first "
            f"forward passes): {statistics.fmean(rest):.3g} s per {unit} without it"
        )
    return text
