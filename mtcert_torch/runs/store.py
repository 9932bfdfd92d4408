"""The files of a certification run: resumable records, their layout, and the lock.

Layout of an output folder::

    config.json             every setting that changes results (a resumed run must match
                            all of them)
    per_image.jsonl         one JSON record per finished image (the source of truth)
    per_image.csv           the scalar columns of the same records (with each image's
                            guarantee: its certificate holds for that image alone; with
                            an attack, the attack's columns too); at the end of a run,
                            every record of the run in data-set order
    summary.csv, summary.md the paper's Table 1 columns (acc., mIoU, %∅, t) and each
                            row's guarantee (family, error rate, rows not joint)
    figures/<name>.png      input | ground truth | base | certified (abstain white)
    figures-attack/<name>.png   the same for an attacked input (``--attack-figures``)

Each record is appended and flushed (``fsync``) as soon as its image is done,
so an interrupted run loses at most the image in flight; on restart the
finished names are skipped and a torn last line is dropped.  Under
``torch.distributed`` with ``W`` > 1 processes rank ``r`` writes its records to
``per_image.rank<r>.jsonl`` and ``per_image.rank<r>.csv`` (rank 0 too), so ranks
that share a folder never write the same file, and each rank resumes from its own
files; rank 0 alone writes the run-wide ``per_image.csv`` and the summary, from
every rank's records gathered over the process group (no folder need be shared).
The point-cloud command uses the same writer with ``per_cloud.*`` files, its own
columns and its Table-2 summary (:data:`CLOUD_FILES`).  One record holds the
per-item :class:`mtcert.certify.metrics.SegmentationTally` of the certified and
the base prediction under the prefixes ``cert_`` and ``base_``
(:func:`count_fields`, read back by :func:`record_counts`); the summary is
computed from them by :mod:`mtcert_torch.runs.summary`, the figures drawn by
:mod:`mtcert_torch.runs.figures`.

Imports the core (metrics; the output-folder check and the folder lock of
:mod:`mtcert._files`) and the run options (:mod:`mtcert_torch.settings`: the
settings' columns); no other module of :mod:`mtcert_torch.runs`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from mtcert._files import FolderLock, folder_path, output_folder
from mtcert.certify.guarantees import promise
from mtcert.certify.metrics import SegmentationTally
from mtcert_torch.settings import SETTING_FIELDS, SETTING_KEY

__all__ = [
    "CLOUD_CSV_FIELDS",
    "CLOUD_FILES",
    "CSV_FIELDS",
    "FAMILY_OF_UNIT",
    "IMAGE_FILES",
    "TABLE1_COLUMNS",
    "TABLE2_COLUMNS",
    "FolderLock",
    "ResultsWriter",
    "count_fields",
    "count_vectors",
    "record_counts",
    "repair_results",
    "unique_records",
]

#: Scalar columns of ``per_image.csv`` (the JSONL records also hold per-class counts).
CSV_FIELDS = (
    "name", "height", "width", *SETTING_KEY, "radius", "pixels", "valid", "cert_correct",
    "abstained", "abstained_valid", "cert_acc", "abstain_rate", "base_correct", "base_acc",
    "seconds_sampling", "seconds_statistics", "seconds", "seconds_base", "guarantee",
    "radii_max", "radii_median", "passes",
)  # fmt: skip
#: Scalar columns of ``per_cloud.csv`` (the JSONL records also hold per-part counts).
CLOUD_CSV_FIELDS = (
    "name", "category", "points", "smoothing", "axis", *SETTING_FIELDS, "radius", "cert_correct",
    "abstained", "cert_acc", "abstain_rate", "cert_part_iou", "base_correct", "base_acc",
    "base_part_iou", "seconds_sampling", "seconds_statistics", "seconds", "seconds_base",
    "guarantee", "radii_max", "radii_median", "passes",
)  # fmt: skip
#: Table-1 columns: (key of a summary row, Markdown header, number format).
TABLE1_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".2f"), ("radius", "R", ".2f"),
    ("acc", "acc.", ".2f"), ("miou", "mIoU", ".2f"), ("abstain", "%∅", ".2f"),
    ("t", "t [s]", ".3f"), ("images", "images", None),
)  # fmt: skip
#: Table-2 columns: (key of a summary row, Markdown header, number format).
TABLE2_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".3f"), ("radius", "R", ".3f"),
    ("acc", "acc", ".2f"), ("miou", "mIoU", ".2f"), ("inst_miou", "inst. mIoU", ".2f"),
    ("class_miou", "class mIoU", ".2f"), ("abstain", "%∅", ".2f"), ("t", "t [s]", ".2f"),
    ("clouds", "clouds", None),
)  # fmt: skip
#: The family of a run's items (one certificate each), by its item-count unit.
FAMILY_OF_UNIT = {"images": "image", "clouds": "point cloud", "items": "item"}


def csv_row(record: dict, unit: str) -> dict:
    """A record as its CSV row, with ``guarantee``: what its certificate promises for this
    one item (family and error rate; each row holds alone)."""
    if not {"method", "alpha", "k"} <= record.keys():
        return record
    family = FAMILY_OF_UNIT.get(unit, "item")
    text = promise(record["method"], record["alpha"], record["k"], family=family)
    return {**record, "guarantee": f"this {family} alone, {text.split(': ', 1)[1]}"}


#: :class:`ResultsWriter` presets of the two commands.
IMAGE_FILES = {"stem": "per_image", "fields": CSV_FIELDS, "unit": "images",
               "columns": TABLE1_COLUMNS}  # fmt: skip
CLOUD_FILES = {"stem": "per_cloud", "fields": CLOUD_CSV_FIELDS, "unit": "clouds",
               "columns": TABLE2_COLUMNS}  # fmt: skip


# -- the counts in a record -----------------------------------------------------------------
def count_fields(prefix: str, counts: SegmentationTally, parts=None) -> dict:
    """The scalar record fields of one prediction's counts (``prefix``: ``cert``, ``base``).

    ``<prefix>_correct``, ``<prefix>_acc`` and, with ``parts``, ``<prefix>_part_iou``;
    the per-class vectors are ``<prefix>_intersection`` and ``<prefix>_union``
    (:func:`count_vectors`).  Components, valid and abstained counts are stored once,
    unprefixed: they belong to the certified prediction (the base model never abstains).
    """
    out = {
        f"{prefix}_correct": counts.correct,
        f"{prefix}_acc": counts.correct / counts.valid if counts.valid else float("nan"),
    }
    if parts is not None:
        out[f"{prefix}_part_iou"] = counts.part_iou(parts)
    return out


def count_vectors(prefix: str, counts: SegmentationTally) -> dict:
    """The per-class record fields of one prediction's counts (see :func:`count_fields`)."""
    return {
        f"{prefix}_intersection": counts.intersection.tolist(),
        f"{prefix}_union": counts.union.tolist(),
    }


def record_counts(record: dict, prefix: str) -> SegmentationTally:
    """The counts of one prediction read back from a record (:func:`count_fields`)."""
    cert = prefix == "cert"
    return SegmentationTally(
        components=record["components"],
        valid=record["valid"],
        correct=record[f"{prefix}_correct"],
        abstained=record["abstained"] if cert else 0,
        abstained_valid=record["abstained_valid"] if cert else 0,
        intersection=np.asarray(record[f"{prefix}_intersection"], np.int64),
        union=np.asarray(record[f"{prefix}_union"], np.int64),
    )


#: What a changed ``config.json`` entry that is not an option means.
_HINTS = {
    "model_sha256": "the model's weights differ (a replaced --checkpoint file, or a model "
    "without --checkpoint, initialised at random)",
    **dict.fromkeys(
        ("data", "checkpoint"),
        "a path in the folder holding the run folder is recorded relative to the run folder, "
        "any other absolute (copy the run folder together with such files, or give the same "
        "path)",
    ),
}
#: How to repair a folder whose record file holds a damaged line (docs/torch.md).
REPAIR_COMMAND = "python -m mtcert_torch repair --out {out}"


def _record(line: bytes):
    """The record on one line of a record file, or None for a line that is not one
    (torn, edited, undecodable, or without a name to key it)."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # json.JSONDecodeError, UnicodeDecodeError
        return None
    ok = isinstance(rec, dict) and isinstance(rec.get("name"), str) and rec["name"]
    return rec if ok else None


def _read_jsonl(path: Path, *, repair: bool = False) -> list[dict]:
    """Records of one file.  A torn last line — a write cut short — is skipped, and
    with ``repair`` (only for the caller's own file) cut from disk; a complete last
    record that lacks its newline gets it, so that the next record starts a line of
    its own.  A damaged line anywhere else is an error naming its line number and the
    repair command (:func:`repair_results`)."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    records = []
    for i, line in enumerate(lines):
        rec = _record(line)
        if rec is not None:
            records.append(rec)
        elif i != len(lines) - 1 or line.endswith(b"\n"):
            raise ValueError(
                f"{path}: line {i + 1} is not a JSON record (a torn or edited line); "
                f"repair with: {REPAIR_COMMAND.format(out=path.parent)}"
            )
        elif repair:
            with path.open("r+b") as f:
                f.truncate(len(data) - len(line))
    if repair and records and lines and not lines[-1].endswith(b"\n") and _record(lines[-1]):
        with path.open("ab") as f:
            f.write(b"\n")
    return records


def unique_records(records) -> list[dict]:
    """One record per name (the first), whatever a hand-edited file holds."""
    seen: set = set()
    out = []
    for r in records:
        if r["name"] not in seen:
            seen.add(r["name"])
            out.append(r)
    return out


def repair_results(out) -> list[str]:
    """Repair the record files of output folder ``out``; return one line per file.

    Lines that are not JSON records (torn, edited, undecodable, without a
    string name) and repeated names are moved to ``<file>.corrupt`` (kept for
    inspection); the record file and its CSV are rewritten.  A rerun of the
    certify command then redoes the items whose records were removed.  Takes
    the folder's lock.
    """
    out = folder_path(out)
    if not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is not a folder")
    lock = FolderLock(out / ".lock").acquire()
    try:
        report = []
        seen: set = set()
        stems = (CLOUD_FILES["stem"], IMAGE_FILES["stem"])
        for path in sorted(p for stem in stems for p in out.glob(f"{stem}*.jsonl")):
            good, bad = [], []
            for i, line in enumerate(path.read_bytes().splitlines(), 1):
                rec = _record(line)
                if rec is not None and rec["name"] not in seen:
                    seen.add(rec["name"])
                    good.append(line)
                else:
                    bad.append(i)
                    with path.with_suffix(".jsonl.corrupt").open("ab") as f:
                        f.write(line + b"\n")
            if bad:
                tmp = path.with_suffix(".jsonl.tmp")
                tmp.write_bytes(b"".join(g + b"\n" for g in good))
                os.replace(tmp, path)
                _rewrite_csv(path)
            lines = ", ".join(map(str, bad)) or "none"
            report.append(f"{path.name}: kept {len(good)} records; moved lines: {lines}")
        return report
    finally:
        lock.release()


def _write_csv(path: Path, records, fields, unit: str) -> None:
    """Write ``records`` as the rows of CSV file ``path`` (atomically: a reader sees the
    old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(csv_row(r, unit) for r in records)
    os.replace(tmp, path)


def _rewrite_csv(jsonl: Path) -> None:
    preset = next(p for p in (CLOUD_FILES, IMAGE_FILES) if jsonl.name.startswith(p["stem"]))
    fields, path = preset["fields"], jsonl.with_suffix(".csv")
    if path.is_file():  # keep the run's columns (an attack's added, unused ones left out)
        with path.open(newline="") as f:
            header = next(csv.reader(f), None)
        if header and header[0] == "name":  # a header of ours: the run chose its columns
            fields = header
    _write_csv(path, _read_jsonl(jsonl), fields, preset["unit"])


class ResultsWriter:
    """Append-only per-item results with resumption (see module docstring).

    The folder is created (:func:`mtcert._files.output_folder`: a file or an
    unwritable place is refused, naming ``--out``).

    Parameters
    ----------
    out : path
        The output folder (created).
    config : dict
        Every setting that changes results (JSON-serialisable).  A folder that
        holds a ``config.json`` is resumed only if *every* entry is equal.
    rank, world : int
        This process's rank and the number of processes: with ``world`` > 1 the
        records go to ``<stem>.rank<rank>.jsonl`` and ``<stem>.rank<rank>.csv``, else to
        ``<stem>.jsonl`` and ``<stem>.csv``.
    stem, fields, unit, columns :
        Record file stem, CSV columns, the summary's item-count column and its
        table columns; the defaults are the image run's (:data:`IMAGE_FILES`;
        :data:`CLOUD_FILES` for clouds).
    """

    def __init__(
        self,
        out,
        config: dict,
        *,
        rank: int = 0,
        world: int = 1,
        stem: str = "per_image",
        fields: tuple[str, ...] = CSV_FIELDS,
        unit: str = "images",
        columns: tuple = TABLE1_COLUMNS,
    ):
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, world={world}); got {rank}")
        self.out = output_folder(out)
        # One writer per folder (per rank): a second run refuses instead of doubling records.
        self.lock = FolderLock(self.out / (".lock" if rank == 0 else f".lock.rank{rank}"))
        self.lock.acquire()
        try:
            self.rank = rank
            self.stem = stem
            self.fields = tuple(fields)
            self.unit = unit
            self.columns = columns
            config = self.check_config(self.out, config)
            cfg_path = self.out / "config.json"
            if not cfg_path.is_file():  # every rank: its folder may be its own
                # atomic, under a name of this process: other ranks sharing the folder may
                # read or write it (the same settings) at the same moment
                tmp = self.out / f".config.json.{os.getpid()}.tmp"
                tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
                os.replace(tmp, cfg_path)
            self.jsonl = self.out / (f"{stem}.jsonl" if world == 1 else f"{stem}.rank{rank}.jsonl")
            self.csv = self.jsonl.with_suffix(".csv")
            own = unique_records(_read_jsonl(self.jsonl, repair=True))
            # Rewrite the CSV from the JSON records so the two always agree after a restart.
            _write_csv(self.csv, own, self.fields, unit)
        except BaseException:
            self.lock.release()
            raise

    @staticmethod
    def check_config(out, config: dict, *, ignore: tuple = ()) -> dict:
        """Raise ValueError if folder ``out`` holds results of other settings; return
        ``config`` as JSON sees it (tuples become lists).  ``ignore``: keys not known
        yet (a run checks its options before it builds the model, then again)."""
        config = json.loads(json.dumps(config))
        cfg_path = folder_path(out) / "config.json"
        if cfg_path.is_file():
            try:
                old = json.loads(cfg_path.read_bytes().decode("utf-8"))
            except (ValueError, RecursionError):
                old = None
            if not isinstance(old, dict):
                raise ValueError(
                    f"{cfg_path} is not a JSON object of settings (damaged or edited): the "
                    "settings of the results in that folder are unknown; choose another --out"
                )
            keys = (set(old) | set(config)) - set(ignore)
            diff = sorted(k for k in keys if old.get(k) != config.get(k))
            if diff:
                hints = [_HINTS[k] for k in diff if k in _HINTS]
                raise ValueError(
                    f"{out} holds results of a run with different settings "
                    f"({', '.join(f'{k}: {old.get(k)!r} vs {config.get(k)!r}' for k in diff)}); "
                    f"{''.join(h + '; ' for h in hints)}choose another --out"
                )
        return config

    def close(self) -> None:
        """Release the folder's lock (also released when the process ends)."""
        self.lock.release()

    def finished_names(self) -> set[str]:
        """Names finished by any rank (all ``<stem>*.jsonl`` files in the folder)."""
        return {r["name"] for r in self.all_records()}

    def all_records(self) -> list[dict]:
        """Every record of the folder, one per name."""
        recs = []
        for p in sorted(self.out.glob(f"{self.stem}*.jsonl")):
            recs.extend(_read_jsonl(p))
        return unique_records(recs)

    def own_records(self) -> list[dict]:
        """The records of this writer's own file (this rank's), one per name."""
        return unique_records(_read_jsonl(self.jsonl))

    def write_run_csv(self, records) -> Path:
        """Write ``<stem>.csv`` of the folder with ``records`` as its rows (the run-wide
        table that rank 0 writes at the end of a run); return its path."""
        path = self.out / f"{self.stem}.csv"
        _write_csv(path, records, self.fields, self.unit)
        return path

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
                    row = csv_row(record, self.unit)
                    csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(row)
                f.flush()
                os.fsync(f.fileno())
