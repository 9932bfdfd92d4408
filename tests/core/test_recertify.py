"""recertify / decide / radius_curve against independent references (scipy, plain loops)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtcert.cli import main
from mtcert.stored.counts import CountsWriter, read_counts
from mtcert.stored.recertification import (
    COLUMNS,
    decide,
    plot_radius_curves,
    radius_curve,
    recertify,
)
from tests.helpers.naive_multitest import naive_adjust

C = 4
SETTINGS = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0, model="m", num_classes=C)


def _make_run(path, *, seed=0, items=5, shape=(12, 10), settings=SETTINGS):
    """Counts of a plausible run: confident interiors, uncertain edges, some ignored pixels."""
    rng = np.random.default_rng(seed)
    n = settings["n"]
    with CountsWriter(path, settings) as w:
        for i in range(items):
            target = rng.integers(0, C, shape)
            target[rng.random(shape) < 0.05] = 255
            wrong = rng.random(shape) < 0.15
            guess = np.where(wrong, rng.integers(0, C, shape), np.where(target == 255, 0, target))
            p = np.clip(rng.beta(8, 1, shape), 0, 1)
            w.add(f"img{i:02d}", guess=guess, hits=rng.binomial(n, p), target=target)
    return path


def _reference_labels(guess, hits, n, tau, alpha, method):
    """The plain step-down definitions on scipy p-values: an independent decision path."""
    guess, hits = guess.astype(np.int64), hits.astype(np.int64)  # stored as uint8
    pv = stats.binom.sf(hits.ravel() - 1, n, tau)
    reject = np.array(naive_adjust(list(pv), method, alpha=alpha)[0]).reshape(hits.shape)
    return np.where(reject, guess, -1)


def _reference_scores(pairs):
    """Accuracy, paper mIoU (mean over defined (image, class) IoUs) and abstention, by loops."""
    correct = valid = abstained = 0
    ious = []
    for labels, target in pairs:
        v = target != 255
        valid += v.sum()
        correct += (v & (labels == target)).sum()
        abstained += (v & (labels == -1)).sum()
        for c in range(C):
            inter = (v & (labels == c) & (target == c)).sum()
            union = (v & ((labels == c) | (target == c))).sum()
            if union:
                ious.append(inter / union)
    return correct / valid, np.mean(ious), abstained / valid


@pytest.fixture
def run(tmp_path):
    return _make_run(tmp_path / "run.mtcounts")


def test_decide_matches_reference_labels(run):
    for method, sm in (("holm", "holm"), ("bonferroni", "bonferroni")):
        for item, cert in decide(run, tau=0.75, alpha=1e-3, method=method):
            ref = _reference_labels(item.guess, item.hits, 100, 0.75, 1e-3, sm)
            np.testing.assert_array_equal(cert.labels, ref)


def test_table_matches_independent_reference(run):
    df = recertify(run, tau=[0.6, 0.75, 0.9], alpha=[1e-3, 1e-4], method=["holm", "bonferroni"])
    assert list(df.columns) == list(COLUMNS) and len(df) == 12
    counts = read_counts(run)
    for row in df.itertuples():
        pairs = [
            (_reference_labels(it.guess, it.hits, 100, row.tau, row.alpha, row.method), it.target)
            for it in counts
        ]
        acc, miou, abstain = _reference_scores(pairs)
        assert row.acc == pytest.approx(acc, abs=1e-12)
        assert row.miou == pytest.approx(miou, abs=1e-12)
        assert row.abstain == pytest.approx(abstain, abs=1e-12)
        assert row.radius == pytest.approx(0.25 * stats.norm.ppf(row.tau), rel=1e-12)
        assert (row.items, row.pixels) == (5, sum((it.target != 255).sum() for it in counts))
    # Holm certifies a superset of Bonferroni at the same (tau, alpha)
    h = df[df.method == "holm"].reset_index()
    b = df[df.method == "bonferroni"].reset_index()
    assert (h.abstain <= b.abstain).all() and (h.acc >= b.acc).all()
    # a higher threshold or a smaller alpha never certifies more
    for _, g in h.groupby("alpha"):
        assert g.sort_values("tau").abstain.is_monotonic_increasing


def test_k_applies_to_kfwer_methods_only(run):
    df = recertify(
        run, tau=[0.6, 0.75, 0.9], alpha=[1e-3, 1e-4],
        method=["holm", "bonferroni", "generalized-holm"], k=[1, 10],
    )  # fmt: skip
    assert len(df) == 3 * 2 * (1 + 1 + 2)
    assert set(df[df.method != "generalized-holm"].k) == {1}
    # generalized Holm with k = 1 is Holm, row for row
    cols = ["tau", "alpha", "acc", "miou", "abstain"]
    g1 = df[(df.method == "generalized-holm") & (df.k == 1)][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(g1, df[df.method == "holm"][cols].reset_index(drop=True))
    g10 = df[(df.method == "generalized-holm") & (df.k == 10)].reset_index()
    assert (g10.abstain.to_numpy() <= g1.abstain.to_numpy()).all()


def test_laplace_radius_and_several_runs(tmp_path):
    a = _make_run(tmp_path / "a.mtcounts", seed=1)
    lap = {**SETTINGS, "noise": "laplace", "sigma": 0.5}
    b = _make_run(tmp_path / "b.mtcounts", seed=2, settings=lap)
    df = recertify({"gauss": a, "laplace": b}, tau=[0.75, 0.9], alpha=1e-3)
    assert list(df.columns[:2]) == ["run", "noise"]
    lap_rows = df[df.run == "laplace"]
    np.testing.assert_allclose(lap_rows.radius, -0.5 * np.log(2 * (1 - lap_rows.tau)), rtol=1e-12)
    curve = radius_curve([a, b], tau=[0.5, 0.6, 0.75, 0.9])
    assert (
        len(curve) == 8
        and curve.groupby("run").radius.apply(lambda r: r.is_monotonic_increasing).all()
    )
    assert curve.radius.min() == 0.0  # tau = 1/2 is radius 0
    fig = plot_radius_curves(curve)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="y must be"):
        plot_radius_curves(curve, y="nope")


@pytest.mark.parametrize("method", ["holm", "bonferroni", "hochberg", "hommel", "sidak", "fdr_bh"])
def test_unsigned_stored_guesses_abstain_as_abstain(method):
    """Stored guesses are uint8: abstained components must read -1, never 255 (regression)."""
    from mtcert.certify.segmentation import segcertify_hits

    cert = segcertify_hits(
        np.array([1, 2, 3], np.uint8), np.array([100, 10, 100], np.uint8), 100,
        tau=0.75, alpha=0.01, method=method,
    )  # fmt: skip
    np.testing.assert_array_equal(cert.labels, [1, -1, 3])
    np.testing.assert_array_equal(cert.reject, [True, False, True])


@pytest.mark.parametrize(
    ("method", "k"),
    [("holm", 1), ("bonferroni", 1), ("generalized-holm", 3), ("generalized-bonferroni", 2),
     ("hochberg", 1), ("hommel", 1), ("fdr_bh", 1)],
)  # fmt: skip
def test_threshold_counts_equal_counts_of_the_labels(tmp_path, method, k):
    """The per-item histogram path gives the counts of the certificate's label map."""
    from mtcert.certify.metrics import segmentation_tally
    from mtcert.certify.segmentation import segcertify_hits
    from mtcert.stored.recertification import _ThresholdCounts

    settings = {**SETTINGS, "num_classes": 6, "ignore_index": None, "n": 40}
    rng = np.random.default_rng(5)
    with CountsWriter(tmp_path / "p.mtcounts", settings) as w:
        for i in range(6):  # "point clouds": no ignored points, part ranges per category
            target = rng.integers(0, 3, 50) + 3 * (i % 2)
            guess = np.where(rng.random(50) < 0.8, target, rng.integers(0, 6, 50))
            w.add(f"c{i}", guess=guess, hits=rng.binomial(40, rng.beta(6, 1, 50)), target=target,
                  meta={"group": "ab"[i % 2], "parts": [3 * (i % 2), 3 * (i % 2) + 3]})  # fmt: skip
    counts = read_counts(tmp_path / "p.mtcounts")
    part_ious = {"a": [], "b": []}
    for tau in (0.5, 0.7, 0.9):
        for item in counts:
            cert = segcertify_hits(
                item.guess, item.hits, 40, tau=tau, alpha=0.05, method=method, k=k
            )
            ref = segmentation_tally(cert.labels, item.target, num_classes=6, ignore_index=None)
            sweep = _ThresholdCounts(item, 40, 6, None)
            got = sweep.counts(sweep.threshold(cert.n_certified))
            for field in ("components", "valid", "correct", "abstained", "abstained_valid"):
                assert getattr(got, field) == getattr(ref, field)
            np.testing.assert_array_equal(got.intersection, ref.intersection)
            np.testing.assert_array_equal(got.union, ref.union)
            if tau == 0.7:
                part_ious[item.meta["group"]].append(ref.part_iou(tuple(item.meta["parts"])))
    row = recertify(counts, tau=0.7, alpha=0.05, method=method, k=k).iloc[0]
    assert row["inst_miou"] == pytest.approx(np.mean(part_ious["a"] + part_ious["b"]), abs=1e-12)
    class_miou = np.mean([np.mean(part_ious["a"]), np.mean(part_ious["b"])])
    assert row["class_miou"] == pytest.approx(class_miou, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(tau=0.4, alpha=1e-3), "tau"),
        (dict(tau=[], alpha=1e-3), "tau is empty"),
        (dict(tau=0.75, alpha=0.0), "alpha"),
        (dict(tau=0.75, alpha=1e-3, k=0), "k"),
        (dict(tau=0.75, alpha=1e-3, method="nope"), "method"),
        (dict(tau=0.75, alpha=1e-3, method=3), "method"),
    ],
)
def test_bad_options(run, kwargs, match):
    with pytest.raises(ValueError, match=match):
        recertify(run, **kwargs)


def test_cli_writes_table(run, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "recertify", str(run), "--tau", "0.6,0.75,0.9", "--alpha", "1e-3,1e-4",
        "--method", "holm,bonferroni,generalized-holm", "--k", "1,10", "--out", str(out),
        "--curve", "--curve-tau", "0.5,0.75,0.9",
    ]  # fmt: skip
    assert main(argv) == 0
    table = pd.read_csv(out / "recertify.csv")
    expected = recertify(
        run, tau=[0.6, 0.75, 0.9], alpha=[1e-3, 1e-4],
        method=["holm", "bonferroni", "generalized-holm"], k=[1, 10],
    )  # fmt: skip
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)
    md = (out / "recertify.md").read_text().splitlines()
    assert md[0].startswith("| noise | sigma |") and len(md) == 2 + 24
    assert (out / "recertify-radius_curve.csv").is_file()
    assert (out / "recertify-radius_curve.png").is_file()
    assert "separate certificate" in capsys.readouterr().out
    # a second run never replaces the first: it takes the next free name
    assert main(argv) == 0
    assert (out / "recertify-2.csv").is_file() and (out / "recertify-2.md").is_file()
    pd.testing.assert_frame_equal(pd.read_csv(out / "recertify-2.csv"), table)
    assert main([*argv, "--name", "recertify"]) == 2  # taken: refused without --overwrite
    assert main([*argv, "--name", "recertify", "--overwrite"]) == 0


def test_cli_unwritable_out_refused_before_work(run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["recertify", str(run), "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


@pytest.mark.parametrize(
    "extra", [["--tau", "0.3"], ["--tau", "a,b"], ["--method", "nope"], ["--k", "0"]]
)
def test_cli_errors_exit_2(run, tmp_path, extra, capsys):
    with pytest.raises(SystemExit) if extra == ["--tau", "a,b"] else _nullcontext():
        assert main(["recertify", str(run), "--out", str(tmp_path), *extra]) == 2
    assert "error" in capsys.readouterr().err


def test_cli_missing_file(tmp_path, capsys):
    assert main(["recertify", str(tmp_path / "none.mtcounts"), "--out", str(tmp_path)]) == 2
    assert "no counts file" in capsys.readouterr().err


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# -- what the written results promise, and the joint radius curve ------------------------------
def test_joint_curve_is_one_radii_certificate_per_item_and_bonferroni_per_point(run):
    from mtcert.stored.recertification import joint_radius_curve

    taus = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
    for method in ("holm", "bonferroni"):
        _check_joint_curve(run, taus, method)
    joint = joint_radius_curve(run, alpha=1e-3, tau=taus, method="bonferroni")
    holm_joint = joint_radius_curve(run, alpha=1e-3, tau=taus)
    assert (holm_joint.acc.to_numpy() >= joint.acc.to_numpy()).all()
    # each Bonferroni point equals the Bonferroni-SEGCERTIFY point at that tau; the Holm
    # radii lie between it and Holm-SEGCERTIFY (which holds per point)
    bonf = recertify(run, tau=taus[1:], alpha=1e-3, method=["bonferroni", "holm"])
    b = bonf[bonf.method == "bonferroni"].reset_index(drop=True)
    cols = ["tau", "acc", "miou", "abstain"]
    pd.testing.assert_frame_equal(joint[cols].iloc[1:].reset_index(drop=True), b[cols])
    h = bonf[bonf.method == "holm"].reset_index(drop=True)
    mid = holm_joint.acc.to_numpy()[1:]
    assert (h.acc.to_numpy() >= mid).all() and (mid >= b.acc.to_numpy()).all()
    with pytest.raises(ValueError, match="method"):
        joint_radius_curve(run, method="sidak")


def _check_joint_curve(run, taus, method):
    from mtcert.certify.radii import certify_radii
    from mtcert.stored.recertification import joint_radius_curve

    joint = joint_radius_curve(run, alpha=1e-3, tau=taus, method=method)
    assert list(joint.columns) == list(COLUMNS) and (joint.method == f"joint-{method}").all()
    assert joint.radius.is_monotonic_increasing and joint.abstain.is_monotonic_increasing
    # independent path: certify_radii per item, labels at each radius, tallies by loops
    counts = read_counts(run)
    certs = [
        (certify_radii(it.guess, it.hits, 100, alpha=1e-3, sigma=0.25, method=method), it)
        for it in counts
    ]
    for row in joint.itertuples():
        pairs = [(np.where(c.p_lower >= row.tau, c.labels, -1), it.target) for c, it in certs]
        acc, miou, abstain = _reference_scores(pairs)
        assert (row.acc, row.miou, row.abstain) == pytest.approx((acc, miou, abstain), abs=1e-12)
        assert row.guarantee == (
            "per item: P(a component certified beyond its radius) <= 0.001 "
            "(FWER, all radii jointly)"
        )


def test_written_tables_state_family_error_rate_and_scope(tmp_path, capsys):
    """recertify.csv / .md and the curve files say per image, FWER or k-FWER with k, and
    that rows do not hold jointly; stdout says the same."""
    image_run = _make_run(tmp_path / "img.mtcounts", settings={**SETTINGS, "scales": [1.0]})
    out = tmp_path / "out"
    argv = [
        "recertify", str(image_run), "--tau", "0.6,0.75", "--alpha", "1e-3",
        "--method", "holm,generalized-holm", "--k", "1,10", "--out", str(out), "--curve",
        "--curve-tau", "0.5,0.75,0.9",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "recertify.csv")
    assert set(table.error_rate) == {"FWER", "k-FWER (k=10)"}
    assert table.guarantee.str.startswith("per image: ").all()
    assert (table.scope == "this row alone: rows do not hold jointly").all()
    k10 = table[table.k == 10].guarantee.iloc[0]
    assert k10 == "per image: P(10 or more false certified pixels) <= 0.001 (k-FWER (k=10))"
    md = (out / "recertify.md").read_text()
    for text in ("k-FWER (k=10)", "per image: P(a false certified pixel) <= 0.001 (FWER)",
                 "rows do not hold jointly"):  # fmt: skip
        assert text in md
    assert "Each image is its own family" in printed and "alpha x 5" in printed
    assert "separate certificate" in printed and "k-FWER" in printed
    per_tau = pd.read_csv(out / "recertify-radius_curve.csv")
    joint = pd.read_csv(out / "recertify-joint_radius_curve.csv")
    assert (per_tau.scope == "this row alone: rows do not hold jointly").all()
    assert joint.scope.str.startswith("jointly over all radii").all()
    assert joint.guarantee.str.contains("per image").all()


def test_plot_draws_joint_and_per_tau_curves_with_a_caption(run):
    from mtcert.stored.recertification import joint_radius_curve

    taus = [0.5, 0.6, 0.75, 0.9]
    both = pd.concat(
        [radius_curve(run, tau=taus), joint_radius_curve(run, tau=taus)], ignore_index=True
    )
    fig = plot_radius_curves(both)
    lines = fig.axes[0].lines
    assert len(lines) == 2 and {ln.get_linestyle() for ln in lines} == {"-", "--"}
    caption = fig.legends[0].get_title().get_text()  # the caption heads the legend
    assert "points do not hold jointly" in caption and "all radii at once" in caption
    assert "FWER 0.001 per image" in caption
