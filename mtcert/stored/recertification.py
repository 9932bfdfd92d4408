"""Certify once, decide many: SEGCERTIFY at any τ, α, method and k from stored counts.

A certify run's forward passes yield, per component, the guessed label and
its hit count among ``n`` testing samples (:mod:`mtcert.stored.counts`).  Everything
after that is a function of these counts, so the Table-1 summary at another
threshold τ, level α, multiple-testing method or k-FWER parameter k costs
milliseconds per item instead of a new run of the model.

Every row of :func:`recertify` is **its own certificate** at its own (τ, α,
method, k): a separate claim, each holding with probability at least 1 − α on
its own.  The rows are not simultaneous — picking the best-looking row after
the fact and reporting it at its α overstates the confidence (that would be a
multiple-testing problem across rows).  The guessing samples stay out of the
test: only the hit counts of the ``n`` independent testing samples enter the
p-values, exactly as in a direct run.

The decisions are :func:`mtcert.certify.segmentation.segcertify_hits`, the metrics
:class:`mtcert.certify.metrics.CertifiedSegmentationMetrics` over per-item
:class:`~mtcert.certify.metrics.SegmentationTally`.  Those counts are read off one
per-item histogram of (hit count, guess, target) for every setting at once:
FWER and k-FWER procedures certify exactly the components with ``hits >= h``
for one threshold h per item, so the counts at h are suffix sums.  Items are
visited in name order, so a summary is the same bytes whatever order the run
finished its items in.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator

import numpy as np
import pandas as pd

from mtcert.certify.metrics import (
    CertifiedSegmentationMetrics,
    SegmentationTally,
    segmentation_tally,
)
from mtcert.certify.segmentation import SegmentationCertificate, segcertify_hits
from mtcert.stats.multitest import FDR_METHODS, KFWER_METHODS
from mtcert.stats.radius import NOISE_RADII, certified_radius
from mtcert.stats.validation import check_alpha, check_positive_int, check_tau
from mtcert.stored.counts import CountsItem, StoredCounts, read_counts

__all__ = ["decide", "plot_radius_curves", "radius_curve", "recertify"]

#: Columns of :func:`recertify` (``run`` first when several runs are given).
COLUMNS = (
    "noise", "sigma", "n0", "n", "tau", "alpha", "method", "k", "radius",
    "acc", "miou", "abstain", "pooled_miou", "inst_miou", "class_miou", "items", "pixels",
)  # fmt: skip


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
    """

    def __init__(self, item: CountsItem, n: int, num_classes: int, ignore_index):
        c = num_classes
        hits = item.hits.ravel().astype(np.int64)
        guess = item.guess.ravel().astype(np.int64)
        target = item.target.ravel()
        valid = np.ones(hits.shape, bool) if ignore_index is None else target != ignore_index
        hv, gv, tv = hits[valid], guess[valid], target[valid].astype(np.int64)
        right = gv == tv

        def at_least(x):  # x[h] -> sum over hit values >= h, one extra row (h = n + 1) of 0
            out = np.zeros((n + 2, *x.shape[1:]), np.int64)
            out[:-1] = np.cumsum(x[::-1], axis=0)[::-1]
            return out

        self._pred = at_least(np.bincount(hv * c + gv, minlength=(n + 1) * c).reshape(n + 1, c))
        cells = hv[right] * c + gv[right]
        self._inter = at_least(np.bincount(cells, minlength=(n + 1) * c).reshape(n + 1, c))
        self._all = at_least(np.bincount(hits, minlength=n + 1))
        self._valid = at_least(np.bincount(hv, minlength=n + 1))
        self._area_g = np.bincount(tv, minlength=c)
        self.components = hits.size
        self.n_valid = hv.size

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


def _decisions(counts: StoredCounts, combos) -> list[tuple]:
    """Per item ``(counts_at, meta, keys)``: per combination the threshold h (its
    counts in ``counts_at[h]``), or where there is none, and for FDR methods, the
    counts of the certificate's labels themselves.  Only these few counts are
    kept per item, never its pixels."""
    c, n, ignore = counts.num_classes, counts.n, counts.ignore_index
    out = []
    for batch in _batches(counts):
        guess = np.stack([item.guess.ravel() for item in batch])
        hits = np.stack([item.hits.ravel() for item in batch])
        sweeps = [_ThresholdCounts(item, n, c, ignore) for item in batch]
        keys: list[list] = [[] for _ in batch]
        for tau, alpha, method, k in combos:
            cert = segcertify_hits(
                guess, hits, n, tau=tau, alpha=alpha, method=method, k=k, axis=-1
            )
            exact = method.lower() not in FDR_METHODS
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
    rows = []
    for score, (tau, alpha, method, k) in zip(scores, combos, strict=True):
        rows.append(
            {
                "noise": s["noise"],
                "sigma": s["sigma"],
                "n0": s["n0"],
                "n": n,
                "tau": tau,
                "alpha": alpha,
                "method": method,
                "k": k,
                "radius": _radius_at(s, tau),
                "acc": score.accuracy,
                "miou": score.mean_iou,
                "abstain": score.abstain_rate,
                "pooled_miou": score.pooled_mean_iou,
                "inst_miou": score.instance_miou,
                "class_miou": score.class_miou,
                "items": score.n_inputs,
                "pixels": score.n_pixels,
            }
        )
    return rows


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
        with ``parts`` metadata, NaN otherwise); ``items`` and ``pixels``.

    Notes
    -----
    Each row is a separate certificate at its own (τ, α): with probability at
    least 1 − α *that row's* certified pixels are correct in the sense of
    SEGCERTIFY.  The rows do not hold jointly.  The guessing samples are not
    stored and play no part in any test.

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
    """Certified accuracy and mIoU against the radius R(τ), from stored counts.

    SEGCERTIFY certifies every non-abstained component at one radius, R =
    σΦ⁻¹(τ) for Gaussian noise (ℓ2) or R = −σ ln(2(1 − τ)) for Laplace noise
    (ℓ1).  Sweeping τ traces the randomized-smoothing "certified accuracy at
    radius R" curve (Cohen et al., Fig. 1) for segmentation.  Each point is a
    separate certificate at level α (see :func:`recertify`).

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


def plot_radius_curves(curves: pd.DataFrame, *, y: str = "acc", ax=None, title: str | None = None):
    """Plot :func:`radius_curve` output: ``y`` against the radius, one line per run.

    Parameters
    ----------
    curves : pandas.DataFrame
        Output of :func:`radius_curve` (a ``run`` column gives one line per run;
        otherwise one line labelled by noise and σ).
    y : {"acc", "miou", "abstain"}
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from mtcert.plotting import pyplot

    if y not in ("acc", "miou", "abstain"):
        raise ValueError(f"y must be one of 'acc', 'miou', 'abstain'; got {y!r}")
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
    else:
        fig = ax.figure
    groups = curves.groupby("run", sort=False) if "run" in curves else [(None, curves)]
    for label, curve in groups:
        first = curve.iloc[0]
        name = label or f"{first['noise']} σ={first['sigma']:g}"
        ax.plot(curve["radius"], curve[y], marker=".", label=f"{name} ({first['method']})")
    norms = {"gaussian": "ℓ2", "laplace": "ℓ1", "uniform": "ℓ1", "rotation": "angle"}
    kinds = sorted({norms.get(v, str(v)) for v in curves["noise"]})
    ax.set_xlabel(f"radius R ({', '.join(kinds)})")
    ax.set_ylabel({"acc": "certified pixel accuracy", "miou": "certified mIoU"}.get(y, y))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
