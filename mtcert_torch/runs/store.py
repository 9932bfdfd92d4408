"""Resumable result files of a certification run, the Table-1 summary and Fig.-1 figures.

Layout of an output folder::

    config.json             every setting that changes results (a resumed run must match
                            all of them)
    per_image.jsonl         one JSON record per finished image (the source of truth)
    per_image.csv           the scalar columns of the same records
    summary.csv, summary.md the paper's Table 1 columns (acc., mIoU, %∅, t)
    figures/<name>.png      input | ground truth | certified prediction (abstain white)

Each record is appended and flushed (``fsync``) as soon as its image is done,
so an interrupted run loses at most the image in flight; on restart the
finished names are skipped and a torn last line is dropped.  Under
``torch.distributed`` every rank writes its own ``per_image.rank<r>.jsonl``.
The point-cloud command uses the same writer with ``per_cloud.*`` files, its own
columns and its Table-2 summary (:data:`CLOUD_FILES`).  :func:`summarize` turns
the records of any modality into summary rows through
:class:`mtcert.certify.metrics.CertifiedSegmentationMetrics`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mtcert.certify.metrics import CertifiedSegmentationMetrics, SegmentationCounts

#: Scalar columns of ``per_image.csv`` (the JSONL records also hold per-class counts).
CSV_FIELDS = (
    "name", "height", "width", "noise", "sigma", "tau", "n0", "n", "alpha", "method", "k",
    "radius", "pixels", "valid", "cert_correct", "abstained", "abstained_valid", "cert_acc",
    "abstain_rate", "base_correct", "base_acc", "seconds_sampling", "seconds_statistics",
    "seconds", "seconds_base",
)  # fmt: skip
#: Scalar columns of ``per_cloud.csv`` (the JSONL records also hold per-part counts).
CLOUD_CSV_FIELDS = (
    "name", "category", "points", "smoothing", "axis", "sigma", "tau", "n0", "n", "alpha",
    "method", "k", "radius", "cert_correct", "abstained", "cert_acc", "abstain_rate",
    "cert_part_iou", "base_correct", "base_acc", "base_part_iou", "seconds_sampling",
    "seconds_statistics", "seconds", "seconds_base",
)  # fmt: skip


#: How to repair a folder whose record file holds a damaged line (docs/torch.md).
REPAIR_COMMAND = "python -m mtcert_torch repair --out {out}"


def _read_jsonl(path: Path, *, repair: bool = False) -> list[dict]:
    """Records of one file.  A torn (unparseable) last line — a write cut short —
    is skipped, and with ``repair`` (only for the caller's own file) cut from disk.
    A damaged line anywhere else is an error naming its line number and the
    repair command (:func:`repair_results`)."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines(keepends=True)
    records = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "name" not in rec:
                raise ValueError("not a record")
            records.append(rec)
        except ValueError:  # json.JSONDecodeError is a ValueError
            if i != len(lines) - 1 or line.endswith("\n"):
                raise ValueError(
                    f"{path}: line {i + 1} is not a JSON record (a torn or edited line); "
                    f"repair with: {REPAIR_COMMAND.format(out=path.parent)}"
                ) from None
            if repair:
                with path.open("r+b") as f:
                    f.truncate(len("".join(lines[:i]).encode()))
    return records


def _unique(records: list[dict]) -> list[dict]:
    """One record per name (the first), whatever a hand-edited file holds."""
    seen: set = set()
    out = []
    for r in records:
        if r["name"] not in seen:
            seen.add(r["name"])
            out.append(r)
    return out


class FolderLock:
    """An exclusive, non-blocking lock on an output folder (``fcntl.flock`` on a lock file).

    The operating system releases it when the process ends, however it ends,
    so a lock file left behind by a killed run is stale and simply taken over;
    the file records the holder's pid and host for the error message.  Where
    ``fcntl`` does not exist (Windows) no lock is taken.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ValueError(
                f"--out {self.path.parent} is in use by another run ({holder}); wait for it "
                "to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def repair_results(out) -> list[str]:
    """Repair the record files of output folder ``out``; return one line per file.

    Lines that are not JSON records (torn or edited) and repeated names are
    moved to ``<file>.corrupt`` (kept for inspection); the record file and its
    CSV are rewritten.  A rerun of the certify command then redoes the items
    whose records were removed.  Takes the folder's lock.
    """
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is not a folder")
    lock = FolderLock(out / ".lock").acquire()
    try:
        report = []
        seen: set = set()
        for path in sorted(out.glob("*.jsonl")):
            good, bad = [], []
            for i, line in enumerate(path.read_text().splitlines(), 1):
                try:
                    rec = json.loads(line)
                    ok = isinstance(rec, dict) and "name" in rec and rec["name"] not in seen
                except ValueError:
                    ok = False
                if ok:
                    seen.add(rec["name"])
                    good.append(line)
                else:
                    bad.append(i)
                    with path.with_suffix(".jsonl.corrupt").open("a") as f:
                        f.write(line + "\n")
            if bad:
                tmp = path.with_suffix(".jsonl.tmp")
                tmp.write_text("".join(g + "\n" for g in good))
                os.replace(tmp, path)
                _rewrite_csv(path)
            lines = ", ".join(map(str, bad)) or "none"
            report.append(f"{path.name}: kept {len(good)} records; moved lines: {lines}")
        return report
    finally:
        lock.release()


def _rewrite_csv(jsonl: Path) -> None:
    fields = CLOUD_CSV_FIELDS if jsonl.name.startswith("per_cloud") else CSV_FIELDS
    with jsonl.with_suffix(".csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(_read_jsonl(jsonl))


class ResultsWriter:
    """Append-only per-item results with resumption (see module docstring).

    Parameters
    ----------
    out : path
        The output folder (created).
    config : dict
        Every setting that changes results (JSON-serialisable).  A folder that
        holds a ``config.json`` is resumed only if *every* entry is equal.
    rank : int
        This process's rank (rank ``r > 0`` writes ``<stem>.rank<r>.jsonl``).
    stem, fields, figures, unit, columns :
        Record file stem, CSV columns, whether to create ``figures/``, the
        summary's item-count column and its table columns; the defaults are
        the image run's (:data:`IMAGE_FILES`; :data:`CLOUD_FILES` for clouds).
    """

    def __init__(
        self,
        out,
        config: dict,
        *,
        rank: int = 0,
        stem: str = "per_image",
        fields: tuple[str, ...] = CSV_FIELDS,
        figures: bool = True,
        unit: str = "images",
        columns=None,
    ):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        # One writer per folder (per rank): a second run refuses instead of doubling records.
        self.lock = FolderLock(self.out / (".lock" if rank == 0 else f".lock.rank{rank}"))
        self.lock.acquire()
        try:
            if figures:
                (self.out / "figures").mkdir(exist_ok=True)
            self.rank = rank
            self.stem = stem
            self.fields = tuple(fields)
            self.unit = unit
            self.columns = TABLE1_COLUMNS if columns is None else columns
            config = self.check_config(self.out, config)
            cfg_path = self.out / "config.json"
            if not cfg_path.is_file() and rank == 0:
                # atomic: other ranks may read it at the same moment
                tmp = cfg_path.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
                os.replace(tmp, cfg_path)
            self.jsonl = self.out / (f"{stem}.jsonl" if rank == 0 else f"{stem}.rank{rank}.jsonl")
            self.csv = self.jsonl.with_suffix(".csv")
            own = _unique(_read_jsonl(self.jsonl, repair=True))
            # Rewrite the CSV from the JSON records so the two always agree after a restart.
            with self.csv.open("w", newline="") as f:
                w = csv.DictWriter(f, self.fields, extrasaction="ignore")
                w.writeheader()
                w.writerows(own)
        except BaseException:
            self.lock.release()
            raise

    @staticmethod
    def check_config(out, config: dict) -> dict:
        """Raise ValueError if folder ``out`` holds results of other settings; return
        ``config`` as JSON sees it (tuples become lists)."""
        config = json.loads(json.dumps(config))
        cfg_path = Path(out) / "config.json"
        if cfg_path.is_file():
            old = json.loads(cfg_path.read_text())
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            if diff:
                raise ValueError(
                    f"{out} holds results of a run with different settings "
                    f"({', '.join(f'{k}: {old.get(k)!r} vs {config.get(k)!r}' for k in diff)}); "
                    "choose another --out"
                )
        return config

    def close(self) -> None:
        """Release the folder's lock (also released when the process ends)."""
        self.lock.release()

    def done(self) -> set[str]:
        """Names finished by any rank (all ``<stem>*.jsonl`` files in the folder)."""
        return {r["name"] for r in self.all_records()}

    def all_records(self) -> list[dict]:
        """Every record of the folder, one per name."""
        recs = []
        for p in sorted(self.out.glob(f"{self.stem}*.jsonl")):
            recs.extend(_read_jsonl(p))
        return _unique(recs)

    def own_records(self) -> list[dict]:
        return _unique(_read_jsonl(self.jsonl))

    def append(self, record: dict) -> None:
        """Append one record to the JSONL and CSV files and force it to disk."""
        for path, line in (
            (self.jsonl, json.dumps(record) + "\n"),
            (self.csv, None),
        ):
            with path.open("a", newline="") as f:
                if line is not None:
                    f.write(line)
                else:
                    csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(record)
                f.flush()
                os.fsync(f.fileno())

    def write_summary(self, records: list[dict]) -> list[dict]:
        """Write ``summary.csv`` and ``summary.md``; return the rows."""
        return write_summary(self.out, records, unit=self.unit, columns=self.columns)


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


#: Table-1 columns: (key of a :func:`summarize` row, Markdown header, number format).
TABLE1_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".2f"), ("radius", "R", ".2f"),
    ("acc", "acc.", ".2f"), ("miou", "mIoU", ".2f"), ("abstain", "%∅", ".2f"),
    ("t", "t [s]", ".3f"), ("images", "images", None),
)  # fmt: skip


#: Table-2 columns: (key of a :func:`summarize` row, Markdown header, number format).
TABLE2_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".3f"), ("radius", "R", ".3f"),
    ("acc", "acc", ".2f"), ("miou", "mIoU", ".2f"), ("inst_miou", "inst. mIoU", ".2f"),
    ("class_miou", "class mIoU", ".2f"), ("abstain", "%∅", ".2f"), ("t", "t [s]", ".2f"),
    ("clouds", "clouds", None),
)  # fmt: skip
#: :class:`ResultsWriter` presets of the two commands.
IMAGE_FILES = {"stem": "per_image", "fields": CSV_FIELDS, "figures": True, "unit": "images",
               "columns": TABLE1_COLUMNS}  # fmt: skip
CLOUD_FILES = {"stem": "per_cloud", "fields": CLOUD_CSV_FIELDS, "figures": False,
               "unit": "clouds", "columns": TABLE2_COLUMNS}  # fmt: skip


def _counts(r: dict, prefix: str) -> SegmentationCounts:
    abstained = r["abstained"] if prefix == "cert" else 0
    return SegmentationCounts(
        components=r["components"],
        valid=r["valid"],
        correct=r[f"{prefix}_correct"],
        abstained=abstained,
        abstained_valid=r["abstained_valid"] if prefix == "cert" else 0,
        intersection=np.asarray(r[f"{prefix}_intersection"], np.int64),
        union=np.asarray(r[f"{prefix}_union"], np.int64),
    )


class _Row:
    """Accumulates one summary row: the core's metrics over per-item counts, and times."""

    def __init__(self, radius=None):
        self.metrics: CertifiedSegmentationMetrics | None = None
        self.seconds: list[float] = []
        self.radius = radius

    def add(self, r: dict, prefix: str, seconds: float) -> None:
        counts = _counts(r, prefix)
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


def summarize(records, *, unit: str = "images") -> list[dict]:
    """Summary rows (paper Tables 1 and 2) from per-item records of any modality.

    One "base model" row (when the records have base statistics) and one
    SEGCERTIFY row per (noise, σ, τ, n0, n, α, method, k) setting, with the
    keys ``model, sigma, radius, acc, miou, inst_miou, class_miou, abstain, t``
    and ``unit`` (the item count).  ``acc``: certified accuracy pooled over
    all scored components; ``miou``: App. A.1's mIoU over (item, class) pairs
    with a non-empty union; ``inst_miou``/``class_miou``: ShapeNet-part
    instance and class mIoU (items with ``parts``; NaN otherwise);
    ``abstain``: abstained / scored components; ``t``: seconds per item.
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
        rows.append(g.row(setting_name(key), key[1], unit))
    from mtcert_torch.hierarchy import (
        hierarchy_rows,  # adaptive rows and CIG when records carry them
    )

    return hierarchy_rows(records, rows, unit)


def setting_key(r: dict) -> tuple:
    """``(noise, sigma, tau, n0, n, alpha, method, k)`` of a record: one summary row each."""
    return (r["noise"], r["sigma"], r["tau"], r["n0"], r["n"], r["alpha"], r["method"], r["k"])


def setting_name(key: tuple, algorithm: str = "SegCertify") -> str:
    """The summary's model column for a :func:`setting_key`."""
    noise, _, tau, n0, n, alpha, method, k = key
    kfwer = f" k={k}" if k != 1 else ""
    return f"{algorithm} {method}{kfwer} {noise} n0={n0} n={n} tau={tau:g} alpha={alpha:g}"


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


def write_summary(out, records: list[dict], *, unit="images", columns=TABLE1_COLUMNS) -> list[dict]:
    """Write ``summary.csv`` and ``summary.md`` (:func:`summarize` rows, ``columns``);
    return the rows."""
    # Sorted by name: the same items give the same bytes whatever order they finished in.
    rows = summarize(sorted(records, key=lambda r: r["name"]), unit=unit)
    if rows and "cig" in rows[0]:  # hierarchical runs: CIG after the abstain rate
        at = [c[0] for c in columns].index("abstain") + 1
        columns = (*columns[:at], ("cig", "CIG", ".2f"), *columns[at:])
    write_table(out, rows, columns)
    return rows


def colorize(
    labels: np.ndarray, palette, *, abstain=(255, 255, 255), ignore=(0, 0, 0)
) -> np.ndarray:
    """RGB image of a label map: palette colours, abstain (−1) white, anything else black."""
    labels = np.asarray(labels)
    pal = np.asarray(palette, dtype=np.uint8)
    out = np.empty((*labels.shape, 3), dtype=np.uint8)
    out[...] = ignore
    ok = (labels >= 0) & (labels < len(pal))
    out[ok] = pal[labels[ok]]
    out[labels == -1] = abstain
    return out


#: Qualitative colours (matplotlib's tab10) for the first classes of a generic dataset.
TAB10 = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip


def default_palette(num_classes: int) -> np.ndarray:
    """tab10 colours, then fixed pseudo-random ones (never pure white, the abstain colour)."""
    rng = np.random.default_rng(12345)
    extra = rng.integers(20, 230, size=(max(0, num_classes - len(TAB10)), 3))
    return np.concatenate([np.asarray(TAB10), extra])[:num_classes].astype(np.uint8)


def save_figure(
    path, image, target, certified, palette, *, base=None, title: str = "", input_title="input"
) -> None:
    """Fig.-1-style panel: input | ground truth | [base prediction |] certified (abstain white)."""
    img = (np.clip(np.asarray(image).transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    panels = [(input_title, img), ("ground truth", colorize(target, palette))]
    if base is not None:
        panels.append(("base model", colorize(base, palette)))
    panels.append(("certified (abstain white)", colorize(certified, palette)))
    h, w = img.shape[:2]
    scale = max(1, 128 // max(h, 1))  # tiny images are enlarged so the figure is legible
    pad, head = 4, 14
    canvas = Image.new(
        "RGB", (len(panels) * (w * scale + pad) + pad, h * scale + head + pad), "gray"
    )
    draw = ImageDraw.Draw(canvas)
    for i, (name, arr) in enumerate(panels):
        x = pad + i * (w * scale + pad)
        canvas.paste(Image.fromarray(arr).resize((w * scale, h * scale), Image.NEAREST), (x, head))
        draw.text((x, 1), name, fill="white")
    if title:
        draw.text((pad, h * scale + head - 12), title, fill="white")
    canvas.save(path)
