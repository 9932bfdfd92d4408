"""Point-cloud certification cloud by cloud: per-cloud records and the paper's Table 2.

The point-cloud twin of :func:`mtcert_torch.certifier.certify_one`,
:func:`~mtcert_torch.certifier.certify_dataset` and
:func:`~mtcert_torch.certifier.summarize`, used by
``python -m mtcert_torch certify-pointcloud``.  Counts come from
:func:`mtcert_torch.metrics.segmentation_stats` (abstained points count as
wrong and belong to no predicted part); the summary reports

* ``acc``: certified per-point accuracy pooled over all points (Table 2 "acc");
* ``miou``: App. A.1's mIoU, IoU averaged over every (cloud, part) pair whose
  union is non-empty (the definition of the image table);
* ``inst_miou`` / ``class_miou``: the usual ShapeNet-part instance and class
  mIoU (:func:`mtcert_torch.metrics.part_iou`: only the category's parts, an
  absent part counts 1);
* ``abstain``: abstained points / points (Table 2 "%∅"), ``t``: seconds per cloud.

The paper's Table 2 reports acc, %∅ and t only; both mIoU conventions are
given so results can be compared with either literature.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from .metrics import SegmentationMetrics, part_iou, segmentation_stats
from .pointcloud import PointCloudCertificate, PointCloudCertifier
from .shapenet import CATEGORIES, PART_RANGES, category_index

#: Scalar columns of ``per_cloud.csv`` (the JSONL records also hold per-part counts).
CLOUD_CSV_FIELDS = (
    "name", "category", "points", "smoothing", "axis", "sigma", "tau", "n0", "n", "alpha",
    "method", "k", "radius", "cert_correct", "abstained", "cert_acc", "abstain_rate",
    "cert_part_iou", "base_correct", "base_acc", "base_part_iou", "seconds_sampling",
    "seconds_statistics", "seconds", "seconds_base",
)  # fmt: skip
#: Parameters that must agree between a point-cloud run and the run it resumes.
CLOUD_RESUME_KEYS = (
    "model", "model_kwargs", "checkpoint", "data", "split", "categories", "npoints", "normals",
    "smoothing", "axis", "sigma", "tau", "n0", "n", "alpha", "method", "k", "votes", "seed",
)  # fmt: skip
#: Table-2 columns: (key of a :func:`summarize_clouds` row, Markdown header, number format).
TABLE2_COLUMNS = (
    ("model", "model", None), ("sigma", "σ", ".3f"), ("radius", "R", ".3f"),
    ("acc", "acc", ".2f"), ("miou", "mIoU", ".2f"), ("inst_miou", "inst. mIoU", ".2f"),
    ("class_miou", "class mIoU", ".2f"), ("abstain", "%∅", ".2f"), ("t", "t [s]", ".2f"),
    ("clouds", "clouds", None),
)  # fmt: skip


def _stats(pred, target, num_classes: int, category: int) -> dict:
    # Point labels have no ignore value: every point is scored.
    s = segmentation_stats(pred, target, num_classes, ignore_index=-(2**31))
    s["part_iou"] = part_iou(s["intersection"], s["union"], PART_RANGES[category])
    return s


def certify_cloud(
    certifier: PointCloudCertifier,
    name: str,
    points,
    category,
    labels,
    *,
    sigma: float,
    tau: float,
    n0: int,
    n: int,
    alpha: float,
    method: str = "holm",
    k: int = 1,
    base: bool = True,
) -> tuple[dict, PointCloudCertificate, np.ndarray | None]:
    """Certify one ShapeNet-part cloud; return ``(record, certificate, base_prediction)``.

    ``record`` (JSON-serialisable) holds the per-cloud counts behind the
    Table-2 columns for the certified labels (``cert_*``) and, when ``base``,
    for the base model on the clean cloud (``base_*``), the shape's part IoU
    (:func:`mtcert_torch.metrics.part_iou`) and timings.  ``labels`` are the
    ground-truth part labels ``(N,)`` (global, 0–49).

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.models import pointnet2_part_seg_msg
    >>> from mtcert_torch.pointcloud import PointCloudAdapter
    >>> net = pointnet2_part_seg_msg(npoints=(16, 4))
    >>> certifier = PointCloudCertifier(PointCloudAdapter(net, votes=1), batch_size=8)
    >>> rec, cert, base = certify_cloud(certifier, "c", torch.randn(64, 6), "Chair",
    ...     np.full(64, 12), sigma=0.25, tau=0.75, n0=4, n=8, alpha=0.01)
    >>> rec["points"], rec["category"], round(rec["radius"], 4), base.shape
    (64, 'Chair', 0.1686, (64,))
    """
    cert = certifier.certify(
        points, category, sigma=sigma, tau=tau, n0=n0, n=n, alpha=alpha, method=method, k=k
    )
    cat = category_index(category)
    c = _stats(cert.labels, labels, certifier.num_classes, cat)
    npts = c["pixels"]
    rec = {
        "name": name,
        "category": CATEGORIES[cat],
        "points": npts,
        "smoothing": certifier.smoothing,
        "axis": None if cert.axis is None else list(cert.axis),
        "sigma": float(sigma),
        "tau": float(tau),
        "n0": n0,
        "n": n,
        "alpha": float(alpha),
        "method": method,
        "k": k,
        "radius": cert.radius,
        "cert_correct": c["correct"],
        "abstained": c["abstained"],
        "cert_acc": c["correct"] / npts,
        "abstain_rate": c["abstained"] / npts,
        "cert_part_iou": c["part_iou"],
        "seconds_sampling": cert.seconds_sampling,
        "seconds_statistics": cert.seconds_statistics,
        "seconds": cert.seconds_sampling + cert.seconds_statistics,
        "cert_intersection": c["intersection"].tolist(),
        "cert_union": c["union"].tolist(),
    }
    pred = None
    if base:
        t0 = time.perf_counter()
        pred = certifier.predict(points, category)
        rec["seconds_base"] = time.perf_counter() - t0
        b = _stats(pred, labels, certifier.num_classes, cat)
        rec["base_correct"] = b["correct"]
        rec["base_acc"] = b["correct"] / npts
        rec["base_part_iou"] = b["part_iou"]
        rec["base_intersection"] = b["intersection"].tolist()
        rec["base_union"] = b["union"].tolist()
    return rec, cert, pred


def certify_clouds(
    certifier: PointCloudCertifier,
    dataset: Iterable,
    *,
    skip: Iterable[str] = (),
    **kwargs,
) -> Iterator[tuple[dict, PointCloudCertificate, np.ndarray | None]]:
    """Certify every ``(name, points, category, labels)`` item with :func:`certify_cloud`.

    Items whose name is in ``skip`` are passed over (resumption); keyword
    arguments go to :func:`certify_cloud`.  Aggregate with :func:`summarize_clouds`.
    """
    skip = set(skip)
    for name, points, category, labels in dataset:
        if name not in skip:
            yield certify_cloud(certifier, name, points, category, labels, **kwargs)


class _Group:
    """Accumulates one Table-2 row."""

    def __init__(self, radius=None):
        self.metrics = SegmentationMetrics(0)
        self.seconds: list[float] = []
        self.shape_iou: list[float] = []
        self.by_category: dict[str, list[float]] = {}
        self.radius = radius

    def add(self, r: dict, prefix: str, abstained: int, seconds: float) -> None:
        self.metrics.add(
            {
                "pixels": r["points"],
                "valid": r["points"],
                "correct": r[f"{prefix}_correct"],
                "abstained": abstained,
                "abstained_valid": abstained,
                "intersection": r[f"{prefix}_intersection"],
                "union": r[f"{prefix}_union"],
            }
        )
        self.seconds.append(seconds)
        iou = r[f"{prefix}_part_iou"]
        self.shape_iou.append(iou)
        self.by_category.setdefault(r["category"], []).append(iou)

    def row(self, model: str, sigma) -> dict:
        s = self.metrics.compute()
        return {
            "model": model,
            "sigma": sigma,
            "radius": self.radius,
            "acc": s["accuracy"],
            "miou": s["miou"],
            "inst_miou": float(np.mean(self.shape_iou)),
            "class_miou": float(np.mean([np.mean(v) for v in self.by_category.values()])),
            "abstain": s["abstain_rate"],
            "t": float(np.mean(self.seconds)),
            "clouds": s["images"],
        }


def summarize_clouds(records: Iterable[dict]) -> list[dict]:
    """Table-2 rows (model, σ, R, acc, mIoU, inst./class mIoU, %∅, t) from per-cloud records.

    One "base model" row (when the records have base statistics) and one
    SEGCERTIFY row per (smoothing, axis, σ, τ, n0, n, α, method, k) setting;
    see the module docstring for the columns.
    """
    groups: dict = {}
    base = None
    for r in records:
        axis = None if r["axis"] is None else tuple(r["axis"])
        key = (r["smoothing"], axis, r["sigma"], r["tau"], r["n0"], r["n"], r["alpha"],
               r["method"], r["k"])  # fmt: skip
        groups.setdefault(key, _Group(r["radius"])).add(r, "cert", r["abstained"], r["seconds"])
        if "base_correct" in r:
            base = base or _Group()
            base.add(r, "base", 0, r["seconds_base"])
    rows = [] if base is None else [base.row("base model", None)]
    for (smoothing, axis, sigma, tau, n0, n, alpha, method, k), g in groups.items():
        ax = "" if axis is None else f" axis={','.join(f'{a:g}' for a in axis)}"
        kfwer = f" k={k}" if k != 1 else ""
        model = (
            f"SegCertify {method}{kfwer} {smoothing}{ax} n0={n0} n={n} tau={tau:g} alpha={alpha:g}"
        )
        rows.append(g.row(model, sigma))
    return rows


def write_cloud_summary(out, records: list[dict]) -> list[dict]:
    """Write ``summary.csv`` and ``summary.md`` (:data:`TABLE2_COLUMNS`); return the rows."""
    from .results import write_table

    # Sorted by name: the same clouds give the same bytes whatever order they finished in.
    rows = summarize_clouds(sorted(records, key=lambda r: r["name"]))
    write_table(out, rows, TABLE2_COLUMNS)
    return rows
