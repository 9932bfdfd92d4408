"""Certify once, decide many: SEGCERTIFY at any τ, α, method and k from stored counts.

A certify run's forward passes yield, per component, the guessed label and
its hit count among ``n`` testing samples (:mod:`mtcert.stored.counts`).  Everything
after that is a function of these counts, so the Table-1 summary at another
threshold τ, level α, multiple-testing method or k-FWER parameter k costs
milliseconds per item instead of a new run of the model.

What a row promises.  Each item (image, point cloud) is its own family, tested
by its own multiple-testing procedure: a row's certificate holds **per item** —
with probability at least 1 − α the certified pixels *of one image* are all
correct (FWER; with k > 1, fewer than k of them are false: k-FWER) — never
"every certified pixel of the row", which pools all images.  Over I items the
expected number of items with a false certificate is at most α·I.  Every row is
**its own certificate** at its own (τ, α, method, k): the rows do not hold
jointly, and picking the best-looking row after the fact (lowest τ, highest α,
largest k) and reporting it at its α overstates the confidence (that choice is
itself a multiple comparison).  The tables carry this in their ``error_rate``,
``guarantee`` and ``scope`` columns (:mod:`mtcert.certify.guarantees`).  The
guessing samples stay out of the test: only the hit counts of the ``n``
independent testing samples enter the p-values, exactly as in a direct run.

:func:`joint_radius_curve` is the one curve of certified accuracy against radius
that holds for all its radii at once (per item): each component's own radius
from :func:`mtcert.certify.radii.certify_radii`; :func:`radius_curve` is the per-τ
curve, one certificate per point.

The decisions are :func:`mtcert.certify.segmentation.segcertify_hits`'s, the metrics
:class:`mtcert.certify.metrics.CertifiedSegmentationMetrics` over per-item
:class:`~mtcert.certify.metrics.SegmentationTally`.  One pass over an item's
pixels counts them by (hit count, guess, target); everything after that works
on these n + 1 rows, whatever the image size.  Within an item the p-values take
at most n + 1 values, one per hit count, so the procedures of the counting
path (:data:`~mtcert.certify.segmentation.FAST_METHODS`) decide from the hit
histogram alone, with the very kernel that decides on the pixels (identical
decisions; any other method, or a Holm–Šidák / Hommel near-tie, is decided on
the pixels).  These procedures (and the joint radii at each radius) certify
exactly the components with ``hits >= h`` for one threshold h per item, so the
counts at h are suffix sums.  Items are visited in name order, so a summary is
the same bytes whatever order the run finished its items in.
"""

from __future__ import annotations

import itertools
import numbers
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from mtcert._kernels.certify import decide_families, tally_by_hits, use_histogram
from mtcert.certify.guarantees import error_rate, promise, radii_promise, scope
from mtcert.certify.metrics import (
    CertifiedSegmentationMetrics,
    SegmentationTally,
    segmentation_tally,
)
from mtcert.certify.radii import RADII_METHODS, joint_bound_table
from mtcert.certify.segmentation import (
    FAST_METHODS,
    NotACertificateWarning,
    SegmentationCertificate,
    _family_constant,
    _pvalue_table,
    segcertify_hits,
)
from mtcert.stats.methods import canonical_method, resolve_method
from mtcert.stats.multitest import FDR_METHODS, KFWER_METHODS
from mtcert.stats.radius import NOISE_RADII, certified_radius
from mtcert.stats.validation import check_alpha, check_positive_int, check_tau
from mtcert.stored.counts import CountsItem, StoredCounts, read_counts

__all__ = ["decide", "joint_radius_curve", "plot_radius_curves", "radius_curve", "recertify"]

#: Columns of :func:`recertify` (``run`` first when several runs are given).  The last
#: three say what a row promises (:mod:`mtcert.certify.guarantees`): its error rate, the
#: guarantee per family (one image, one point cloud) and that it holds alone.
COLUMNS = (
    "noise", "sigma", "n0", "n", "tau", "alpha", "method", "k", "radius",
    "acc", "miou", "abstain", "pooled_miou", "inst_miou", "class_miou", "items", "pixels",
    "error_rate", "guarantee", "scope",
)  # fmt: skip

#: Prefix of the ``method`` of :func:`joint_radius_curve`'s rows (``joint-holm``, ...).
JOINT_METHOD = "joint-"


def family_of(counts: StoredCounts) -> str:
    """What one family of a run is, for the written results: ``"image"``, ``"point cloud"``
    or ``"item"``, read off the settings a certify run of :mod:`mtcert_torch` records."""
    s = counts.settings
    if "npoints" in s or "smoothing" in s:
        return "point cloud"
    if "scales" in s or "layout" in s:
        return "image"
    return "item"


def _values(x, name: str) -> list:
    if isinstance(x, str | numbers.Number):
        return [x]
    out = list(x)
    if not out:
        raise ValueError(f"{name} is empty: give at least one value")
    return out


def _combinations(tau, alpha, method, k) -> list[tuple[float, float, str, int]]:
    """Validated (τ, α, method, k) combinations; k applies to the k-FWER methods only."""
    taus = [check_tau(t) for t in _values(tau, "tau")]
    alphas = [check_alpha(a) for a in _values(alpha, "alpha")]
    ks = [check_positive_int(v, "k") for v in _values(k, "k")]
    methods = _values(method, "method")
    for m in methods:
        if not isinstance(m, str):
            raise ValueError(f"method must be a string naming a procedure; got {m!r}")
    combos = []
    for m in dict.fromkeys(methods):
        for t, a in itertools.product(dict.fromkeys(taus), dict.fromkeys(alphas)):
            for kk in dict.fromkeys(ks) if m.lower() in KFWER_METHODS else (1,):
                combos.append((t, a, m, kk))
    return combos


def decide(
    counts, *, tau: float, alpha: float, method: str = "holm", k: int = 1
) -> Iterator[tuple[CountsItem, SegmentationCertificate]]:
    """Re-decide every stored item at one setting; yield ``(item, certificate)``.

    Parameters
    ----------
    counts : StoredCounts, path, folder or sequence of paths
        Stored counts (see :func:`mtcert.stored.counts.read_counts`).
    tau, alpha, method, k
        As in :func:`mtcert.certify.segmentation.segcertify_hits`.

    Yields
    ------
    item : mtcert.stored.counts.CountsItem
    certificate : mtcert.certify.segmentation.SegmentationCertificate
        The same certificate a direct run at these settings issues from the
        same counts (identical labels).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from mtcert.stored.counts import CountsWriter
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> w = CountsWriter(folder / "rank0.mtcounts", {"sigma": 0.5, "noise": "laplace", "n0": 8,
    ...                  "n": 100, "seed": 1, "model": "m", "num_classes": 3})
    >>> w.add("img", guess=[0, 1, 2], hits=[100, 80, 60], target=[0, 1, 1]); w.finish()
    >>> path = folder  # a folder: every *.mtcounts file in it
    >>> [(item.name, cert.labels) for item, cert in decide(path, tau=0.75, alpha=0.01)]
    [('img', array([ 0, -1, -1]))]
    """
    counts = read_counts(counts)
    for item in counts:
        yield (
            item,
            segcertify_hits(
                item.guess, item.hits, counts.n, tau=tau, alpha=alpha, method=method, k=k
            ),
        )


def _radius_at(settings: dict, tau: float) -> float:
    # NaN for a noise family without a closed-form radius
    if settings["noise"] not in NOISE_RADII:
        return float("nan")
    return float(certified_radius(tau, settings["sigma"], settings["noise"]))


class _ThresholdCounts:
    """Per-class counts of one item at every hit threshold, from one pass over its pixels.

    Every FWER / k-FWER procedure rejects a set ``{hits >= h}`` (the p-values fall
    with the hits and adjusted p-values are monotone in the raw ones), so a
    certificate's labels are ``guess`` where ``hits >= h`` and ABSTAIN elsewhere;
    the metrics' counts at ``h`` are suffix sums over hit values.  Equal to
    :func:`mtcert.certify.metrics.segmentation_tally` of the certificate's labels (tested).
    ``histogram[h]`` is the number of the item's components with ``h`` hits: all
    that the counting-path decisions need (:func:`_thresholds`).
    """

    def __init__(self, item: CountsItem, n: int, num_classes: int, ignore_index):
        c = num_classes
        every, valid = np.zeros(n + 1, np.int64), np.zeros(n + 1, np.int64)
        pred, inter = np.zeros((n + 1, c), np.int64), np.zeros((n + 1, c), np.int64)
        area = np.zeros(c, np.int64)
        use_ignore = ignore_index is not None
        tally_by_hits(
            item.hits.ravel(), item.guess.ravel(), item.target.ravel(),
            int(ignore_index) if use_ignore else 0, use_ignore, every, valid, pred, inter, area,
        )  # fmt: skip

        def at_least(x):  # x[h] -> sum over hit values >= h, one extra row (h = n + 1) of 0
            out = np.zeros((n + 2, *x.shape[1:]), np.int64)
            out[:-1] = np.cumsum(x[::-1], axis=0)[::-1]
            return out

        self.histogram = every
        self._pred = at_least(pred)
        self._inter = at_least(inter)
        self._all = at_least(every)
        self._valid = at_least(valid)
        self._area_g = area
        self.components = item.hits.size
        self.n_valid = int(self._valid[0])

    def threshold(self, n_certified: int) -> int | None:
        """A hit threshold certifying exactly ``n_certified`` components (None: there is none)."""
        found = np.flatnonzero(self._all == n_certified)
        return int(found[0]) if found.size else None

    def counts(self, h: int) -> SegmentationTally:
        inter = self._inter[h]
        return SegmentationTally(
            components=self.components,
            valid=self.n_valid,
            correct=int(inter.sum()),
            abstained=self.components - int(self._all[h]),
            abstained_valid=self.n_valid - int(self._valid[h]),
            intersection=inter,
            union=self._pred[h] + self._area_g - inter,
        )


# Items of one shape are decided together, one family per row (``axis=-1``),
# in batches of at most this many components.
_BATCH_COMPONENTS = 1 << 22


def _batches(counts: StoredCounts) -> Iterator[list[CountsItem]]:
    """Consecutive items (name order) of equal shape, up to :data:`_BATCH_COMPONENTS`."""
    batch: list[CountsItem] = []
    for item in counts:
        if batch and (
            item.guess.shape != batch[0].guess.shape
            or (len(batch) + 1) * item.guess.size > _BATCH_COMPONENTS
        ):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _thresholds(hist: np.ndarray, n: int, tau, alpha, method, k) -> np.ndarray | None:
    """Per family (row of the hit histograms ``hist``) its rejection threshold h, or None.

    The decision :func:`~mtcert.certify.segmentation.segcertify_hits` takes on the
    families stacked along ``axis=-1``, from their histograms alone: the same
    kernel (:func:`mtcert._kernels.certify.decide_families` runs the counting
    path's decision) on the same p-value table and constants, so the same
    thresholds.  None where segcertify_hits would not take the counting path
    with the full table (a method outside
    :data:`~mtcert.certify.segmentation.FAST_METHODS`, families too small for
    the table) or hands a family to ``adjust`` (a Holm–Šidák or Hommel near-tie):
    the caller then decides on the pixels.
    """
    name, k = resolve_method(method, k)
    n_fam, m = hist.shape[0], int(hist[0].sum())
    if name not in FAST_METHODS or not use_histogram(n_fam * m, n):
        return None
    code = FAST_METHODS[name]
    const = _family_constant(code, alpha, m)
    thr, _ = decide_families(hist, _pvalue_table(n, tau), m, alpha, float(k), code, const)
    return None if (thr < 0).any() else thr


def _warn_not_certificates(method: str) -> None:
    if canonical_method(method) in FDR_METHODS:
        warnings.warn(
            f"method {method!r} controls the false discovery rate, not the family-wise "
            "error rate: its rows are not certificates (see their error_rate column)",
            NotACertificateWarning,
            stacklevel=5,
        )


def _decisions(counts: StoredCounts, combos) -> list[tuple]:
    """Per item ``(counts_at, meta, keys)``: per combination the threshold h (its
    counts in ``counts_at[h]``), or where there is none, and for FDR methods
    outside the counting path, the counts of the certificate's labels themselves.
    Only these few counts are kept per item, never its pixels.

    Each item's hit histogram is built once; a combination on the counting path
    is then decided from the histograms alone (:func:`_thresholds`), any other
    on the pixels by :func:`~mtcert.certify.segmentation.segcertify_hits`."""
    c, n, ignore = counts.num_classes, counts.n, counts.ignore_index
    for method in dict.fromkeys(method for _, _, method, _ in combos):
        _warn_not_certificates(method)
    out = []
    for batch in _batches(counts):
        sweeps = [_ThresholdCounts(item, n, c, ignore) for item in batch]
        hist = np.stack([sweep.histogram for sweep in sweeps])
        keys: list[list] = [[] for _ in batch]
        pixels = None
        for tau, alpha, method, k in combos:
            thr = _thresholds(hist, n, tau, alpha, method, k)
            if thr is not None:
                for b in range(len(batch)):
                    keys[b].append(int(thr[b]))
                continue
            if pixels is None:
                pixels = (
                    np.stack([item.guess.ravel() for item in batch]),
                    np.stack([item.hits.ravel() for item in batch]),
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotACertificateWarning)  # warned above
                cert = segcertify_hits(
                    *pixels, n, tau=tau, alpha=alpha, method=method, k=k, axis=-1
                )
            exact = canonical_method(method) not in FDR_METHODS
            for b, (item, sweep) in enumerate(zip(batch, sweeps, strict=True)):
                h = sweep.threshold(int(cert.n_certified[b])) if exact else None
                if h is None:
                    h = segmentation_tally(
                        cert.labels[b].reshape(item.target.shape), item.target,
                        num_classes=c, ignore_index=ignore,
                    )  # fmt: skip
                keys[b].append(h)
        for item, sweep, key in zip(batch, sweeps, keys, strict=True):
            parts = item.meta.get("parts")
            meta = {"group": item.meta.get("group"), "parts": parts and tuple(parts)}
            counts_at = {h: sweep.counts(h) for h in {h for h in key if isinstance(h, int)}}
            out.append((counts_at, meta, key))
    return out


def _one_run(counts: StoredCounts, combos) -> list[dict]:
    s, n = counts.settings, counts.n
    family = family_of(counts)
    decided = _decisions(counts, combos)
    # Combinations that certify the same pixels of every item have the same scores:
    # accumulate once per group (e.g. generalized Holm at k = 1 and Holm).
    groups: dict[tuple, list[int]] = {}
    for j in range(len(combos)):
        key = tuple(k[j] if isinstance(k[j], int) else ("labels", j) for _, _, k in decided)
        groups.setdefault(key, []).append(j)
    scores: list = [None] * len(combos)
    for members in groups.values():
        # the counts below leave ignored components out already
        acc = CertifiedSegmentationMetrics(counts.num_classes, ignore_index=None)
        for counts_at, meta, keys in decided:
            found = keys[members[0]]
            acc.add(counts_at[found] if isinstance(found, int) else found, **meta)
        for j in members:
            scores[j] = acc.compute()
    return [
        _row(s, n, tau, alpha, method, k, score, error_rate(method, k),
             promise(method, alpha, k, family=family), scope())
        for score, (tau, alpha, method, k) in zip(scores, combos, strict=True)
    ]  # fmt: skip


def _row(settings, n, tau, alpha, method, k, score, error, guarantee, scope_) -> dict:
    """One table row (:data:`COLUMNS`) from a setting and its accumulated scores."""
    return {
        "noise": settings["noise"],
        "sigma": settings["sigma"],
        "n0": settings["n0"],
        "n": n,
        "tau": tau,
        "alpha": alpha,
        "method": method,
        "k": k,
        "radius": _radius_at(settings, tau),
        "acc": score.accuracy,
        "miou": score.mean_iou,
        "abstain": score.abstain_rate,
        "pooled_miou": score.pooled_mean_iou,
        "inst_miou": score.instance_miou,
        "class_miou": score.class_miou,
        "items": score.n_inputs,
        "pixels": score.n_pixels,
        "error_rate": error,
        "guarantee": guarantee,
        "scope": scope_,
    }


def _runs(counts) -> dict[str, StoredCounts]:
    """One run, or a mapping ``label -> counts`` / a list of runs (labelled by path)."""
    if isinstance(counts, dict):
        return {str(label): read_counts(c) for label, c in counts.items()}
    if isinstance(counts, list) and len(counts) > 1:
        return {str(c): read_counts(c) for c in counts}
    return {"": read_counts(counts[0] if isinstance(counts, list) else counts)}


def recertify(counts, *, tau, alpha, method="holm", k=1) -> pd.DataFrame:
    """Table-1 summary at every (τ, α, method, k) combination, from stored counts.

    Parameters
    ----------
    counts : StoredCounts, path, folder, list of runs, or dict ``label -> run``
        One run (a counts file, a folder of per-rank files, a
        :class:`~mtcert.stored.counts.StoredCounts`); a list of several runs; or a
        dict naming them.  With several runs a ``run`` column comes first.
    tau : float or sequence of float
        Thresholds in [1/2, 1).
    alpha : float or sequence of float
        Levels in (0, 1).
    method : str or sequence of str, default "holm"
        Procedures accepted by :func:`mtcert.certify.segmentation.segcertify_hits`.
    k : int or sequence of int, default 1
        k-FWER parameters; they apply to the k-FWER methods
        (:data:`mtcert.stats.multitest.KFWER_METHODS`) only, every other method runs
        once with k = 1.

    Returns
    -------
    pandas.DataFrame
        One row per run and combination, columns :data:`COLUMNS`: the run's
        ``noise, sigma, n0, n``; the row's ``tau, alpha, method, k`` and its
        certified ``radius`` (σΦ⁻¹(τ) for Gaussian noise, the ℓ1 radius
        −σ ln(2(1 − τ)) for Laplace); ``acc`` (certified pixel accuracy),
        ``miou`` (paper App. A.1), ``abstain`` (fraction abstained), as
        fractions of the non-ignored pixels; ``pooled_miou`` (data-set mIoU
        from summed intersections and unions); ``inst_miou`` and
        ``class_miou`` (ShapeNet-part instance / class mIoU, for items stored
        with ``parts`` metadata, NaN otherwise); ``items`` and ``pixels``;
        ``error_rate`` (``FWER``, ``k-FWER (k=...)`` or ``FDR (no certificate)``),
        ``guarantee`` (the row's promise per family, e.g. ``per image:
        P(a false certified pixel) <= 0.001 (FWER)``) and ``scope`` (this row
        alone).

    Notes
    -----
    Each image (item) is its own family.  A row's promise is per image: with
    probability at least 1 − α the certified pixels of *each image* are correct
    in the sense of SEGCERTIFY (with k > 1: fewer than k false per image) — not
    every certified pixel of the row at once; over I images the expected number
    of images with a false certificate is at most α·I.  Each row is a separate
    certificate at its own (τ, α, method, k); the rows do not hold jointly.  The
    guessing samples are not stored and play no part in any test.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from mtcert.stored.counts import CountsWriter
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.mtcounts"
    >>> settings = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0,
    ...                 model="demo", num_classes=3)
    >>> with CountsWriter(path, settings) as w:
    ...     w.add("img", guess=[0, 1, 2, 2], hits=[100, 80, 97, 60], target=[0, 1, 2, 1])
    >>> df = recertify(path, tau=[0.6, 0.75], alpha=0.001, method=["holm", "bonferroni"])
    >>> df[["tau", "method", "acc", "abstain"]]
        tau      method   acc  abstain
    0  0.60        holm  0.75     0.25
    1  0.75        holm  0.50     0.50
    2  0.60  bonferroni  0.75     0.25
    3  0.75  bonferroni  0.50     0.50
    """
    combos = _combinations(tau, alpha, method, k)
    runs = _runs(counts)
    frames = []
    for label, run in runs.items():
        df = pd.DataFrame(_one_run(run, combos), columns=list(COLUMNS))
        if len(runs) > 1:
            df.insert(0, "run", label)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


#: Default τ grid of :func:`radius_curve`: from radius 0 (τ = 1/2) to τ = 0.99.
DEFAULT_CURVE_TAU = tuple(np.round(np.linspace(0.5, 0.99, 50), 4))


def radius_curve(
    counts, *, alpha: float = 0.001, method: str = "holm", k: int = 1, tau=DEFAULT_CURVE_TAU
) -> pd.DataFrame:
    """Certified accuracy and mIoU against the radius R(τ), one certificate per point.

    SEGCERTIFY certifies every non-abstained component at one radius, R =
    σΦ⁻¹(τ) for Gaussian noise (ℓ2) or R = −σ ln(2(1 − τ)) for Laplace noise
    (ℓ1).  Sweeping τ traces the randomized-smoothing "certified accuracy at
    radius R" curve (Cohen et al., Fig. 1) for segmentation.  Each point is a
    separate certificate at level α, per image (see :func:`recertify`): the
    points do not hold jointly, so a component's largest radius read off this
    curve is **not** certified at α (the union over the points fails more
    often).  For per-component radii that hold jointly use
    :func:`joint_radius_curve`.

    Parameters
    ----------
    counts : as in :func:`recertify` (several runs give one curve each)
    alpha, method, k : one setting
    tau : sequence of float, default 50 values from 0.5 to 0.99

    Returns
    -------
    pandas.DataFrame
        :func:`recertify`'s columns, sorted by run and radius.
    """
    df = recertify(counts, tau=tau, alpha=alpha, method=method, k=k)
    keys = ["run", "radius"] if "run" in df else ["radius"]
    return df.sort_values(keys, kind="stable", ignore_index=True)


def _joint_rows(counts: StoredCounts, taus, alpha: float, tau_min: float, method) -> list[dict]:
    """:func:`joint_radius_curve` rows of one run: one radii certificate per item, read at
    every R(τ).  A component is certified at R(τ) iff its joint bound p̲ >= τ (R is
    increasing) and p̲ > τ_min; p̲ rises with the hits, so that is ``hits >= h`` for one
    threshold h per item and τ, read off the item's bound table."""
    c, n, ignore = counts.num_classes, counts.n, counts.ignore_index
    metrics = [CertifiedSegmentationMetrics(c, ignore_index=None) for _ in taus]
    for item in counts:
        # the family is the item: its bound table depends on its size (and, for Holm,
        # on how many of its components reach the cap)
        table = joint_bound_table(item.hits.ravel(), n, alpha, method)
        floor = int(np.searchsorted(table, tau_min, side="right"))
        sweep = _ThresholdCounts(item, n, c, ignore)
        parts = item.meta.get("parts")
        meta = {"group": item.meta.get("group"), "parts": parts and tuple(parts)}
        for j, t in enumerate(taus):
            h = max(int(np.searchsorted(table, t, side="left")), floor)
            metrics[j].add(sweep.counts(h), **meta)
    family = family_of(counts)
    return [
        _row(counts.settings, n, t, alpha, JOINT_METHOD + method, 1, acc.compute(), "FWER",
             radii_promise(alpha, family=family), scope(joint_radii=True))
        for t, acc in zip(taus, metrics, strict=True)
    ]  # fmt: skip


def joint_radius_curve(
    counts, *, alpha: float = 0.001, tau=DEFAULT_CURVE_TAU, tau_min: float = 0.5, method="holm"
) -> pd.DataFrame:
    """Certified accuracy against radius from one certificate per item that holds for all radii.

    Every component of an item gets its own radius from
    :func:`mtcert.certify.radii.certify_radii` (``method``: the capped Holm
    closed test, or Clopper–Pearson at α / m for ``"bonferroni"``; m the item's
    components); the curve's point at radius R(τ) counts the components
    certified at R(τ) or more.  With probability at least 1 − α, *per item*,
    every component is certified correctly at every radius of the curve at
    once — unlike :func:`radius_curve`, whose points are separate certificates.
    The Bonferroni point at τ equals the Bonferroni-SEGCERTIFY point at τ
    (duality of the binomial test and the bound); the Holm point lies between
    that and the Holm-SEGCERTIFY point at τ, which holds for that point alone.

    Parameters
    ----------
    counts : as in :func:`recertify` (several runs give one curve each)
    alpha : float, default 0.001
        Joint level per item.
    tau : sequence of float, default 50 values from 0.5 to 0.99
        The radii R(τ) at which the curve is read (the same x values as
        :func:`radius_curve`).
    tau_min : float, default 0.5
        Components whose bound is at most ``tau_min`` abstain.
    method : {"holm", "bonferroni"}, default "holm"
        The radii procedure (:func:`mtcert.certify.radii.certify_radii`).

    Returns
    -------
    pandas.DataFrame
        :func:`recertify`'s columns, ``method`` = ``"joint-holm"`` (or
        ``"joint-bonferroni"``), sorted by run and radius; ``tau`` is the
        point's τ (its radius is R(τ)).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from mtcert.stored.counts import CountsWriter
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.mtcounts"
    >>> settings = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0,
    ...                 model="demo", num_classes=3)
    >>> with CountsWriter(path, settings) as w:
    ...     w.add("img", guess=[0, 1, 2, 2], hits=[100, 80, 97, 60], target=[0, 1, 2, 1])
    >>> joint_radius_curve(path, alpha=0.001, tau=[0.5, 0.75, 0.85])[["radius", "acc"]].round(3)
       radius   acc
    0   0.000  0.75
    1   0.169  0.50
    2   0.259  0.50
    """
    alpha = check_alpha(alpha)
    tau_min = check_tau(tau_min, "tau_min")
    if method not in RADII_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, RADII_METHODS))}; got {method!r}"
        )
    taus = list(dict.fromkeys(check_tau(t) for t in _values(tau, "tau")))
    runs = _runs(counts)
    frames = []
    for label, run in runs.items():
        rows = _joint_rows(run, taus, alpha, tau_min, method)
        df = pd.DataFrame(rows, columns=list(COLUMNS))
        if len(runs) > 1:
            df.insert(0, "run", label)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    keys = ["run", "radius"] if "run" in df else ["radius"]
    return df.sort_values(keys, kind="stable", ignore_index=True)


def plot_radius_curves(curves: pd.DataFrame, *, y: str = "acc", ax=None, title: str | None = None):
    """Plot :func:`radius_curve` / :func:`joint_radius_curve` output: ``y`` against the radius.

    One line per run and method, in the project's style (:mod:`mtcert.plotting`):
    per-τ curves dashed with a marker at each point (each point its own
    certificate), drawn over the joint radius curves, which are solid and wide
    (all points one certificate).  Each
    line is a step that takes, between two radii of the τ grid, the value at
    the larger one: the accuracy certified for every radius up to it, so the
    curve never shows more than a certificate covers, and it falls vertically
    right after the largest radius of the grid that was certified.  The title states the
    settings (σ, n0, n, α and the τ grid) unless ``title`` is given, the legend
    each line's n and α, and the caption the family (per image) and the error
    rate of each kind of line, and that per-τ points do not hold jointly.

    Parameters
    ----------
    curves : pandas.DataFrame
        Output of :func:`radius_curve` and/or :func:`joint_radius_curve`
        (concatenate them to draw both; a ``run`` column gives one line per
        run; otherwise lines are labelled by noise and σ).
    y : {"acc", "miou", "abstain"}
    ax : matplotlib Axes, optional
        Draw into this axes (its figure keeps its layout); a new figure otherwise.
    title : str, optional
        Replaces the title of settings.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> curve = pd.DataFrame({"noise": "gaussian", "sigma": 0.25, "n0": 10, "n": 100,
    ...                       "alpha": 0.001, "method": "holm", "k": 1,
    ...                       "tau": [0.5, 0.75, 0.9], "radius": [0.0, 0.169, 0.32],
    ...                       "acc": [0.95, 0.9, 0.0]})
    >>> fig = plot_radius_curves(curve)
    >>> fig.axes[0].lines[0].get_drawstyle()
    'steps-pre'
    """
    from mtcert.plotting import add_legend, curve_style, pyplot, style_axes, wrap_title

    if y not in ("acc", "miou", "abstain"):
        raise ValueError(f"y must be one of 'acc', 'miou', 'abstain'; got {y!r}")
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 4.6), layout="constrained")
    else:
        fig = ax.figure
    keys = ["run", "method"] if "run" in curves else ["method"]
    notes = {}
    for i, (_, curve) in enumerate(curves.groupby(keys, sort=False)):
        first = curve.iloc[0]
        label = first["run"] if "run" in curves else ""
        name = label or f"{first['noise']} σ={first['sigma']:g}"
        setting = f"n={first['n']}, α={first['alpha']:g}"
        style = curve_style(i)
        if first["method"].startswith(JOINT_METHOD):
            style.update(linestyle="-", linewidth=2.6, marker="", alpha=0.8, zorder=2)
            kind = f"joint radii ({first['method'][len(JOINT_METHOD) :]})"
            notes["joint"] = (
                "joint radii: one certificate per image for all radii at once "
                f"(FWER {first['alpha']:g} per image)"
            )
        else:
            style.update(linestyle="--", linewidth=1.2, zorder=3)  # drawn over joint curves
            k = f" k={first['k']}" if first["k"] != 1 else ""
            kind = f"{first['method']}{k} per τ"
            rate = first.get("error_rate", "FWER")
            notes["per"] = (
                f"per τ: each point its own certificate ({rate} per image); "
                "points do not hold jointly"
            )
        ax.plot(
            curve["radius"], curve[y], label=f"{name}: {kind}, {setting}", drawstyle="steps-pre",
            markersize=4, markerfacecolor="none", **style,
        )  # fmt: skip
    norms = {"gaussian": "ℓ2", "laplace": "ℓ1", "uniform": "ℓ1", "rotation": "angle"}
    kinds = sorted({norms.get(v, str(v)) for v in curves["noise"]})
    ylabel = {"acc": "certified pixel accuracy", "miou": "certified mIoU"}.get(y, "abstain rate")
    style_axes(ax, xlabel=f"radius R ({', '.join(kinds)})", ylabel=ylabel)
    caption = "\n".join(notes[k] for k in ("joint", "per") if k in notes)
    add_legend(ax, caption=caption)
    if title is None:  # the settings the lines share (several values where they differ)
        parts = [
            f"{name} = {', '.join(f'{v:g}' for v in sorted(set(curves[col])))}"
            for col, name in (("sigma", "σ"), ("n0", "n0"), ("n", "n"), ("alpha", "α"))
        ]
        taus = sorted(set(curves["tau"]))
        parts.append(f"τ from {taus[0]:g} to {taus[-1]:g} ({len(taus)} values)")
        title = f"{ylabel} against the radius: {', '.join(parts)}"
    ax.set_title(wrap_title(title, 70), fontsize="medium")
    return fig
