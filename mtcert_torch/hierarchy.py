"""Adaptive hierarchical certification of images in the evaluation loop.

The torch side of :mod:`mtcert.certify.hierarchy`: the :class:`~mtcert_torch.Certifier`
draws the class counts of ``n0`` guessing and ``n`` further noisy copies, the
core chooses every pixel's node from the first and tests it on the second
(:func:`mtcert.certify.hierarchy.hierarchical_segcertify`).  :func:`hierarchy_hook`
runs it beside flat SEGCERTIFY for every item of
:func:`~mtcert_torch.runs.loop.evaluate` (fresh noise, the same settings) and
adds its rows to the summary (:func:`hierarchy_rows`): certified accuracy
(the certified node contains the truth), abstain rate and Certified
Information Gain (CIG) for flat and adaptive certification, and a CIG column.

Imports the core's hierarchy, the plugin's items (seeds, the hook base) and
settings (the summary's setting names); never the run loop.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mtcert.certify.hierarchy import (
    CITYSCAPES,
    ClassHierarchy,
    HierarchicalCertificate,
    hierarchical_segcertify,
    information_gain,
)
from mtcert.certify.labels import ABSTAIN
from mtcert_torch.items import ItemHook, item_seed
from mtcert_torch.settings import setting_key, setting_name, setting_sigma

__all__ = ["certify_hierarchical", "hierarchy_hook", "hierarchy_rows", "load_hierarchy"]


def load_hierarchy(spec, num_classes: int) -> ClassHierarchy:
    """``"cityscapes"`` (the built-in 19-class hierarchy), a JSON file path or a hierarchy.

    Raises ``ValueError`` when its number of fine classes is not ``num_classes``.
    """
    if isinstance(spec, ClassHierarchy):
        h = spec
    elif spec == "cityscapes":
        h = CITYSCAPES
    elif isinstance(spec, str | Path):
        h = ClassHierarchy.from_json(spec)
    else:
        raise TypeError(
            f"hierarchy must be 'cityscapes', a JSON path or a ClassHierarchy; got {spec!r}"
        )
    if h.n_classes != num_classes:
        raise ValueError(
            f"--hierarchy has {h.n_classes} fine classes but the model has {num_classes}"
        )
    return h


def certify_hierarchical(
    certifier, x, hierarchy: ClassHierarchy, settings, *, rule=None
) -> HierarchicalCertificate:
    """Adaptive hierarchical SEGCERTIFY of one input.

    Two independent stretches of the certifier's noise stream give the class
    counts of ``settings.n0`` guessing and ``settings.n`` testing copies; the
    rest is :func:`mtcert.certify.hierarchy.hierarchical_segcertify` (``rule`` as
    there).  The radius is the flat certificate's, ``certifier.task.radius``.
    """
    counts0 = certifier.counts(x, sigma=settings.sigma, num=settings.n0)
    counts = certifier.counts(x, sigma=settings.sigma, num=settings.n)
    return hierarchical_segcertify(
        np.moveaxis(counts0.cpu().numpy(), 0, -1),
        np.moveaxis(counts.cpu().numpy(), 0, -1),
        hierarchy,
        tau=settings.tau,
        alpha=settings.alpha,
        method=settings.method,
        k=settings.k,
        rule=rule,
    )


def _scores(nodes, target, valid, hierarchy) -> tuple[int, int, float]:
    """Correct (node contains the truth), abstained and summed normalised gain over valid pixels."""
    correct = hierarchy.contains(nodes, target) & valid
    gain = float(np.where(correct, information_gain(nodes, hierarchy), 0.0).sum())
    return int(correct.sum()), int(((nodes == ABSTAIN) & valid).sum()), gain


class _HierarchyHook(ItemHook):
    """Adaptive certification beside flat SEGCERTIFY, and its summary rows and column."""

    def __init__(self, certifier, hierarchy, settings, name, seed, rule, ignore_index):
        self.certifier = certifier
        self.hierarchy = hierarchy
        self.settings = settings
        self.name = name
        self.seed = seed
        self.rule = rule
        self.ignore_index = ignore_index

    def __call__(self, item, result) -> dict:
        t0 = time.perf_counter()
        h = self.hierarchy
        self.certifier.manual_seed(item_seed(self.seed, f"{item.name}#hierarchy"))
        hc = certify_hierarchical(self.certifier, item.input, h, self.settings, rule=self.rule)
        target = np.asarray(result.target)
        ignore = self.ignore_index
        valid = np.ones(target.shape, bool) if ignore is None else target != ignore
        correct, abstained, gain = _scores(hc.labels, target, valid, h)
        _, _, flat_gain = _scores(result.certificate.labels, target, valid, h)
        certified_levels = hc.levels[hc.labels != ABSTAIN]
        return {
            "hierarchy": self.name,
            "hier_correct": correct,
            "hier_abstained_valid": abstained,
            "hier_cig_sum": gain,
            "cert_cig_sum": flat_gain,
            "hier_level_counts": np.bincount(certified_levels, minlength=h.n_levels).tolist(),
            "hier_seconds": time.perf_counter() - t0,
        }

    def summary_rows(self, records, rows, unit):
        return hierarchy_rows(records, rows, unit)

    def summary_columns(self, rows, columns):
        """A CIG column after the abstain rate, where the rows carry CIG."""
        if not rows or "cig" not in rows[0]:
            return columns
        at = [c[0] for c in columns].index("abstain") + 1
        return (*columns[:at], ("cig", "CIG", ".2f"), *columns[at:])


def hierarchy_hook(certifier, hierarchy: ClassHierarchy, settings, *, name: str, seed: int = 0,
                   rule=None, ignore_index: int | None = 255) -> ItemHook:  # fmt: skip
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook: adaptive certification beside flat.

    Adds to every record ``hierarchy`` (``name``), ``hier_correct``,
    ``hier_abstained_valid``, ``hier_cig_sum`` and ``hier_level_counts``
    (certified pixels per level) for the adaptive certificate, ``cert_cig_sum``
    for the loop's flat certificate (both CIG sums normalised, over valid
    pixels), and ``hier_seconds``.  The adaptive certificate uses the same
    settings and its own noise stream, seeded from ``seed`` and the item's name
    (so its results do not depend on other hooks).  Its summary rows are
    :func:`hierarchy_rows`, with a CIG column after the abstain rate.
    """
    return _HierarchyHook(certifier, hierarchy, settings, name, seed, rule, ignore_index)


def hierarchy_rows(records, rows: list[dict], unit: str = "images") -> list[dict]:
    """Summary rows with CIG: ``rows`` (from :func:`mtcert_torch.runs.summary.summarize`)
    plus one "AdaptiveCertify" row per setting and hierarchy of ``records``.

    Every row gets a ``cig`` key: the flat SEGCERTIFY rows their certificate's
    CIG, the adaptive rows theirs, the base-model row None.  Records without
    hierarchical fields leave ``rows`` unchanged (no ``cig`` key).
    """
    groups: dict = {}
    for r in records:
        if "hier_correct" not in r:
            continue
        g = groups.setdefault((setting_key(r), r["hierarchy"]), {
            "valid": 0, "correct": 0, "abstained": 0, "cig": 0.0, "flat_cig": 0.0, "t": [],
            "radius": r["radius"],
        })  # fmt: skip
        g["valid"] += r["valid"]
        g["correct"] += r["hier_correct"]
        g["abstained"] += r["hier_abstained_valid"]
        g["cig"] += r["hier_cig_sum"]
        g["flat_cig"] += r["cert_cig_sum"]
        g["t"].append(r["hier_seconds"])
    if not groups:
        return rows
    out = [dict(row, cig=None) for row in rows]
    for (key, name), g in groups.items():
        valid = g["valid"] or float("nan")
        flat, sigma = setting_name(key), setting_sigma(key)
        for row in out:
            if row["model"] == flat and row["sigma"] == sigma:
                row["cig"] = g["flat_cig"] / valid
        out.append({
            "model": f"{setting_name(key, 'AdaptiveCertify')} [{name}]", "sigma": sigma,
            "radius": g["radius"], "acc": g["correct"] / valid, "miou": float("nan"),
            "inst_miou": float("nan"), "class_miou": float("nan"),
            "abstain": g["abstained"] / valid, "cig": g["cig"] / valid,
            "t": float(np.mean(g["t"])), unit: len(g["t"]),
        })  # fmt: skip
    return out
