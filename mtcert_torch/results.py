"""Resumable result files of a certification run, the Table-1 summary and Fig.-1 figures.

Layout of an output folder::

    config.json             the run's parameters (a resumed run must match them)
    per_image.jsonl         one JSON record per finished image (the source of truth)
    per_image.csv           the scalar columns of the same records
    summary.csv, summary.md the paper's Table 1 columns (acc., mIoU, %∅, t)
    figures/<name>.png      input | ground truth | certified prediction (abstain white)

Each record is appended and flushed (``fsync``) as soon as its image is done,
so an interrupted run loses at most the image in flight; on restart the
finished names are skipped and a torn last line is dropped.  Under
``torch.distributed`` every rank writes its own ``per_image.rank<r>.jsonl``.
The point-cloud command uses the same writer with ``per_cloud.*`` files, its own
columns and :func:`write_table` for its Table-2 summary.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .certifier import summarize

CSV_FIELDS = (
    "name", "height", "width", "noise", "sigma", "tau", "n0", "n", "alpha", "method", "radius",
    "pixels", "valid", "cert_correct", "abstained", "abstained_valid", "cert_acc", "abstain_rate",
    "base_correct", "base_acc", "seconds_sampling", "seconds_statistics", "seconds",
    "seconds_base",
)  # fmt: skip
#: Parameters that must agree between a run and the run it resumes.
RESUME_KEYS = ("model", "model_kwargs", "checkpoint", "data", "num_classes", "noise", "sigma",
               "tau", "n0", "n", "alpha", "method", "k", "seed", "scales", "flip",
               "align_corners", "autocast", "ignore_index")  # fmt: skip


def _read_jsonl(path: Path, *, repair: bool = False) -> list[dict]:
    """Records of one file.  A torn (unparseable) last line — a write cut short —
    is skipped, and with ``repair`` (only for the caller's own file) cut from disk."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines(keepends=True)
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise ValueError(f"{path}: corrupt record on line {i + 1}") from None
            if repair:
                with path.open("r+b") as f:
                    f.truncate(len("".join(lines[:i]).encode()))
    return records


class ResultsWriter:
    """Append-only per-image results with resumption (see module docstring)."""

    def __init__(
        self,
        out,
        config: dict,
        *,
        rank: int = 0,
        stem: str = "per_image",
        fields: tuple[str, ...] = CSV_FIELDS,
        resume_keys: tuple[str, ...] = RESUME_KEYS,
        figures: bool = True,
    ):
        """``stem`` names the record files (``<stem>.jsonl``, ``<stem>.csv``), ``fields``
        their CSV columns and ``resume_keys`` the config entries a resumed run must
        match; the defaults are the image run's."""
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        if figures:
            (self.out / "figures").mkdir(exist_ok=True)
        self.rank = rank
        self.stem = stem
        self.fields = tuple(fields)
        cfg_path = self.out / "config.json"
        if cfg_path.is_file():
            old = json.loads(cfg_path.read_text())
            diff = [k for k in resume_keys if old.get(k) != config.get(k)]
            if diff:
                raise ValueError(
                    f"{self.out} holds results of a run with different settings "
                    f"({', '.join(f'{k}: {old.get(k)!r} vs {config.get(k)!r}' for k in diff)}); "
                    "choose another --out"
                )
        elif rank == 0:
            # atomic: other ranks may read it at the same moment
            tmp = cfg_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
            os.replace(tmp, cfg_path)
        self.jsonl = self.out / (f"{stem}.jsonl" if rank == 0 else f"{stem}.rank{rank}.jsonl")
        self.csv = self.jsonl.with_suffix(".csv")
        own = _read_jsonl(self.jsonl, repair=True)
        # Rewrite the CSV from the JSON records so the two always agree after a restart.
        with self.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(own)

    def done(self) -> set[str]:
        """Names finished by any rank (all ``<stem>*.jsonl`` files in the folder)."""
        return {r["name"] for r in self.all_records()}

    def all_records(self) -> list[dict]:
        recs = []
        for p in sorted(self.out.glob(f"{self.stem}*.jsonl")):
            recs.extend(_read_jsonl(p))
        return recs

    def own_records(self) -> list[dict]:
        return _read_jsonl(self.jsonl)

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


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


#: Table-1 columns: (key of a :func:`summarize` row, Markdown header, number format).
TABLE1_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".2f"), ("radius", "R", ".2f"),
    ("acc", "acc.", ".2f"), ("miou", "mIoU", ".2f"), ("abstain", "%∅", ".2f"),
    ("t", "t [s]", ".3f"), ("images", "images", None),
)  # fmt: skip


def write_table(out, rows: list[dict], columns, *, name: str = "summary") -> None:
    """Write ``rows`` to ``<name>.csv`` and, formatted, ``<name>.md`` in folder ``out``.

    ``columns`` is a sequence of ``(key, header, format)``; a ``None`` format
    prints the value as is, missing or NaN numbers print as ``-``.
    """
    out = Path(out)
    with (out / f"{name}.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, [c[0] for c in columns])
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


def write_summary(out, records: list[dict]) -> list[dict]:
    """Write ``summary.csv`` and ``summary.md`` (paper Table 1 columns); return the rows."""
    # Sorted by name: the same images give the same bytes whatever order they finished in.
    rows = summarize(sorted(records, key=lambda r: r["name"]))
    write_table(out, rows, TABLE1_COLUMNS)
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


def save_figure(path, image, target, certified, palette, *, base=None, title: str = "") -> None:
    """Fig.-1-style panel: input | ground truth | [base prediction |] certified (abstain white)."""
    img = (np.clip(np.asarray(image).transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    panels = [("input", img), ("ground truth", colorize(target, palette))]
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
