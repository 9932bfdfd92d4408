"""recertify decides from per-item hit histograms: the same rows as deciding every pixel.

The reference decides each item on its pixels with ``segcertify_hits`` (one
family per item, as a direct run does) and scores the label maps with
``CertifiedSegmentationMetrics``; the rows of ``recertify`` must equal it
exactly, for every method (the counting-path ones from the histograms, the
others through the pixel fallback) at many settings.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtcert import _jit
from mtcert._kernels import certify as kernels
from mtcert.certify.metrics import CertifiedSegmentationMetrics, segmentation_tally
from mtcert.certify.segmentation import (
    FAST_METHODS,
    NotACertificateWarning,
    _family_constant,
    _pvalue_table,
    segcertify_hits,
)
from mtcert.stats.methods import KFWER_METHODS, METHODS
from mtcert.stored import recertification
from mtcert.stored.counts import CountsWriter, read_counts
from mtcert.stored.recertification import recertify

C = 4
SCORES = ["acc", "miou", "abstain", "pooled_miou", "inst_miou", "class_miou", "items", "pixels"]


def _write(path, *, n=100, items=4, shape=(9, 7), seed=0, ignore=255, confident=8.0):
    """Random stored counts: confident and doubtful components, some ignored targets."""
    rng = np.random.default_rng(seed)
    settings_ = dict(sigma=0.25, noise="gaussian", n0=10, n=n, seed=seed, model="m",
                     num_classes=C, ignore_index=ignore)  # fmt: skip
    with CountsWriter(path, settings_) as w:
        for i in range(items):
            target = rng.integers(0, C, shape)
            if ignore is not None:
                target[rng.random(shape) < 0.1] = ignore
            guess = np.where(rng.random(shape) < 0.2, rng.integers(0, C, shape), target % C)
            hits = rng.binomial(n, rng.beta(confident, 1, shape))
            meta = {"group": "ab"[i % 2], "parts": [0, 2 + i % 2]}
            w.add(f"img{i:02d}", guess=guess, hits=hits, target=target, meta=meta)
    return path


def _pixel_rows(path, combos):
    """Every item decided on its pixels, its label map scored: the reference rows."""
    counts = read_counts(path)
    rows = []
    for tau, alpha, method, k in combos:
        acc = CertifiedSegmentationMetrics(C, ignore_index=None)  # left out by the tallies
        for item in counts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotACertificateWarning)
                cert = segcertify_hits(
                    item.guess, item.hits, counts.n, tau=tau, alpha=alpha, method=method, k=k
                )
            tally = segmentation_tally(
                cert.labels, item.target, num_classes=C, ignore_index=counts.ignore_index
            )
            acc.add(tally, group=item.meta["group"], parts=tuple(item.meta["parts"]))
        s = acc.compute()
        rows.append([s.accuracy, s.mean_iou, s.abstain_rate, s.pooled_mean_iou,
                     s.instance_miou, s.class_miou, s.n_inputs, s.n_pixels])  # fmt: skip
    return pd.DataFrame(rows, columns=SCORES)


def _combos(df):
    return list(zip(df.tau, df.alpha, df.method, df.k, strict=True))


def _assert_rows_equal(got, want):
    pd.testing.assert_frame_equal(
        got[SCORES].reset_index(drop=True), want, check_dtype=False, check_exact=True
    )


def _sweep(path, methods, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotACertificateWarning)
        return recertify(path, method=list(methods), **kw)


def test_every_method_equals_the_pixel_path_at_many_settings(tmp_path):
    path = _write(tmp_path / "r.mtcounts")
    df = _sweep(path, METHODS, tau=[0.5, 0.6, 0.75, 0.9, 0.97],
                alpha=[0.2, 1e-2, 1e-4], k=[1, 3])  # fmt: skip
    assert len(df) == 5 * 3 * (len(METHODS) + len(KFWER_METHODS))
    _assert_rows_equal(df, _pixel_rows(path, _combos(df)))


def test_no_ignore_index_and_narrow_n(tmp_path):
    path = _write(tmp_path / "p.mtcounts", n=12, shape=(40,), ignore=None, items=5, confident=3)
    df = _sweep(path, METHODS, tau=[0.5, 0.7], alpha=[0.3, 0.05], k=[1, 2])
    _assert_rows_equal(df, _pixel_rows(path, _combos(df)))


def test_pixel_fallback_gives_the_same_rows(tmp_path, monkeypatch):
    """Where the histogram decision declines (a near-tie), the pixels decide: same rows."""
    path = _write(tmp_path / "r.mtcounts", seed=3)
    kw = dict(tau=[0.6, 0.8], alpha=[0.05, 1e-3], k=[1, 4])
    fast = _sweep(path, FAST_METHODS, **kw)

    def declines(hist, *args):
        return np.full(hist.shape[0], -1, np.int64), np.zeros(hist.shape[0], np.int64)

    monkeypatch.setattr(recertification, "decide_families", declines)
    pd.testing.assert_frame_equal(_sweep(path, FAST_METHODS, **kw), fast)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    m=st.integers(1, 30),
    items=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    tau=st.sampled_from([0.5, 0.55, 0.75, 0.9]),
    alpha=st.sampled_from([0.5, 0.1, 1e-3]),
    method=st.sampled_from(METHODS),
    k=st.integers(1, 4),
)
def test_property_histogram_rows_equal_pixel_rows(n, m, items, seed, tau, alpha, method, k):
    import tempfile
    from pathlib import Path

    k = k if method in KFWER_METHODS else 1
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "h.mtcounts", n=n, shape=(m,), items=items, seed=seed,
                      confident=float(seed % 7 + 1))  # fmt: skip
        df = _sweep(path, [method], tau=tau, alpha=alpha, k=k)
        _assert_rows_equal(df, _pixel_rows(path, _combos(df)))


@pytest.mark.parametrize("method", sorted(FAST_METHODS))
def test_decide_families_equals_the_counting_path_on_pixels(method):
    """Histogram decisions are the certify kernel's own, near-ties (-1) included."""
    rng = np.random.default_rng(7)
    n, m = 50, 400
    hits = rng.binomial(n, rng.beta(6, 1, (6, m))).astype(np.int64)
    hits[0] = n  # one family of ties only
    hist = np.stack([np.bincount(row, minlength=n + 1) for row in hits])
    code = FAST_METHODS[method]
    for tau, alpha in ((0.5, 0.3), (0.75, 1e-3), (0.9, 0.05)):
        table = _pvalue_table(n, tau)
        const = _family_constant(code, alpha, m)
        thr, n_rej = kernels.decide_families(hist, table, m, alpha, 2.0, code, const)
        for f in range(hits.shape[0]):
            labels = np.empty((1, m), np.int64)
            copy = np.empty((1, m), np.int64)
            want, _, _, undecided = kernels.certify_families(
                np.zeros((1, m), np.int64), hits[f : f + 1], table, alpha, 2.0, code, const,
                -1, labels, copy,
            )  # fmt: skip
            if undecided:
                assert thr[f] == -1
            else:
                assert n_rej[f] == want[0] == np.count_nonzero(hits[f] >= thr[f])


def test_both_tiers_give_the_same_rows(tmp_path):
    path = _write(tmp_path / "t.mtcounts", n=30, shape=(6, 5), items=3)
    kw = dict(tau=[0.5, 0.75], alpha=[0.1, 1e-3], method=["holm", "hommel", "fdr_by"])
    with _jit.policy("never"):
        slow = _sweep(path, kw.pop("method"), **kw)
    with _jit.policy("always"):
        fast = _sweep(path, ["holm", "hommel", "fdr_by"], **kw)
    pd.testing.assert_frame_equal(slow, fast)


def test_fdr_rows_warn_once_per_method(tmp_path):
    path = _write(tmp_path / "w.mtcounts", items=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recertify(path, tau=[0.6, 0.75], alpha=1e-3, method=["holm", "fdr_bh", "bh"])
    fdr = [w for w in caught if issubclass(w.category, NotACertificateWarning)]
    assert len(fdr) == 2 and all("fdr" in str(w.message) or "bh" in str(w.message) for w in fdr)
    assert all(w.filename == __file__ for w in fdr)
