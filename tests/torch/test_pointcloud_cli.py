"""``python -m mtcert_torch certify-pointcloud`` on a tiny ShapeNet-part tree and PointNet++."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import norm

from mtcert.certify.metrics import part_iou, segmentation_tally
from mtcert_torch.certifier import Certifier
from mtcert_torch.cli import main
from mtcert_torch.data.shapenet import ShapeNetPart, evaluation_items
from mtcert_torch.models import PointNet2Adapter, pointnet2_part_seg_msg
from mtcert_torch.runs.loop import certify_item, certify_items
from mtcert_torch.runs.store import CLOUD_CSV_FIELDS
from mtcert_torch.runs.summary import summarize
from mtcert_torch.settings import Settings
from mtcert_torch.tasks.pointcloud import PointCloudTask
from tests.helpers.shapenet import CHAIR, PLANE
from tests.helpers.shapenet import cloud_args as _args

pytestmark = pytest.mark.torch

NAMES = [f"{PLANE}/a1", f"{CHAIR}/c1", f"{CHAIR}/c2"]  # sorted


def _records(out):
    return [json.loads(line) for line in (out / "per_cloud.jsonl").read_text().splitlines()]


def _strip(records):
    """Records without timings, by name."""
    return {r["name"]: {k: v for k, v in r.items() if "seconds" not in k} for r in records}


@pytest.fixture(scope="module")
def first_run(setup):
    tmp, root, ckpt = setup
    out = tmp / "run"
    assert main(_args(root, out, ckpt=ckpt)) == 0
    return out


def test_files_and_summary(setup, first_run, capsys):
    out = first_run
    recs = _records(out)
    assert sorted(r["name"] for r in recs) == NAMES
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["n0"] == 2 and cfg["smoothing"] == "gaussian" and cfg["normals"] is True
    with (out / "per_cloud.csv").open() as f:
        rows = list(csv.DictReader(f))
    # the radii and adaptive-n columns are left out of a run without those options
    fields = tuple(
        f
        for f in CLOUD_CSV_FIELDS
        if f not in {"radii_max", "radii_median", "adaptive_n", "passes"}
    )
    assert tuple(rows[0]) == fields and [r["name"] for r in rows] == [r["name"] for r in recs]
    for r in recs:
        assert r["points"] == 64 and r["category"] == (
            "Chair" if CHAIR in r["name"] else "Airplane"
        )
        assert r["radius"] == pytest.approx(0.25 * norm.ppf(0.6))
        assert r["cert_correct"] + r["abstained"] <= 64
        assert r["cert_acc"] == r["cert_correct"] / 64 and r["abstain_rate"] == r["abstained"] / 64
        lo, hi = (12, 16) if r["category"] == "Chair" else (0, 4)
        for p in ("cert", "base"):
            # The shape IoU, written out plainly: parts absent from both count 1.
            ious = [
                r[f"{p}_intersection"][c] / r[f"{p}_union"][c] if r[f"{p}_union"][c] else 1.0
                for c in range(lo, hi)
            ]
            assert r[f"{p}_part_iou"] == pytest.approx(sum(ious) / len(ious))
            # predictions stay in the category's parts: no counts elsewhere
            assert sum(r[f"{p}_union"]) == sum(r[f"{p}_union"][lo:hi])
    summary = (out / "summary.md").read_text().splitlines()
    assert summary[0].startswith("| model | σ | R | acc | mIoU | inst. mIoU | class mIoU | %∅ |")
    assert len(summary) == 4 and "base model" in summary[2] and "SegCertify holm" in summary[3]
    with (out / "summary.csv").open() as f:
        base, cert = list(csv.DictReader(f))
    pts = 64 * len(recs)
    assert float(cert["acc"]) == pytest.approx(sum(r["cert_correct"] for r in recs) / pts)
    assert float(cert["abstain"]) == pytest.approx(sum(r["abstained"] for r in recs) / pts)
    assert float(base["acc"]) == pytest.approx(sum(r["base_correct"] for r in recs) / pts)
    assert float(cert["inst_miou"]) == pytest.approx(np.mean([r["cert_part_iou"] for r in recs]))
    chairs = [r["cert_part_iou"] for r in recs if r["category"] == "Chair"]
    plane = [r["cert_part_iou"] for r in recs if r["category"] == "Airplane"]
    assert float(cert["class_miou"]) == pytest.approx((np.mean(chairs) + plane[0]) / 2)
    pairs = [
        i / u
        for r in recs
        for i, u in zip(r["cert_intersection"], r["cert_union"], strict=True)
        if u
    ]
    assert float(cert["miou"]) == pytest.approx(np.mean(pairs))
    assert int(cert["clouds"]) == 3 and float(cert["t"]) > 0


def test_resume_skips_finished_clouds(setup, first_run, capsys, monkeypatch):
    _, root, ckpt = setup
    import mtcert_torch.runs.loop as ev

    before = (first_run / "per_cloud.jsonl").read_text()
    summary = (first_run / "summary.md").read_text()

    def boom(*a, **k):
        raise AssertionError("a finished cloud was certified again")

    monkeypatch.setattr(ev, "certify_item", boom)
    capsys.readouterr()
    assert main(_args(root, first_run, ckpt=ckpt)) == 0
    assert (first_run / "per_cloud.jsonl").read_text() == before
    assert (first_run / "summary.md").read_text() == summary
    assert capsys.readouterr().out == summary


def test_deterministic_and_order_independent(setup, first_run):
    tmp, root, ckpt = setup
    out = tmp / "resumed"
    # One cloud first, the rest in a resumed run: per-cloud seeds make it equal to one run.
    assert main(_args(root, out, "--limit", "1", ckpt=ckpt)) == 0
    assert len(_records(out)) == 1
    assert main(_args(root, out, ckpt=ckpt)) == 0
    assert _strip(_records(out)) == _strip(_records(first_run))
    other = tmp / "seed1"
    assert main(_args(root, other, "--seed", "1", "--limit", "1", ckpt=ckpt)) == 0
    (rec,) = _strip(_records(other)).items()
    assert rec[1] != _strip(_records(first_run))[rec[0]]


def test_matches_library_call(setup, first_run):
    # The CLI's record of a cloud is the library's certify_item with the run seed.
    _, root, ckpt = setup
    net = pointnet2_part_seg_msg(npoints=(16, 4), checkpoint=ckpt)
    certifier = Certifier(PointCloudTask(PointNet2Adapter(net, votes=1)), batch_size=4)
    item = evaluation_items(ShapeNetPart(root, npoints=64, seed=0))[2]
    settings = Settings(sigma=0.25, tau=0.6, n0=2, n=16, alpha=0.2, method="holm")
    rec = certify_item(certifier, item, settings, seed=0).record
    assert _strip([rec]) == {item.name: _strip(_records(first_run))[item.name]}


def test_certify_items_skips(setup):
    _, root, _ = setup
    net = pointnet2_part_seg_msg(npoints=(16, 4))
    certifier = Certifier(PointCloudTask(PointNet2Adapter(net, votes=1)), batch_size=4)
    data = ShapeNetPart(root, npoints=32)
    items = evaluation_items(data)
    settings = Settings(sigma=0.25, tau=0.75, n0=2, n=4, alpha=0.1)
    out = list(certify_items(certifier, items, settings, skip=[data.names[0]], base=False))
    assert [r.record["name"] for r in out] == data.names[1:]
    assert all(r.certificate.labels.shape == (32,) and r.base is None for r in out)


def test_changed_settings_refused(setup, first_run, capsys):
    _, root, ckpt = setup
    with pytest.raises(SystemExit) as e:
        main(_args(root, first_run, "--sigma", "0.5", ckpt=ckpt))
    assert e.value.code == 2
    assert "different settings" in capsys.readouterr().err


def test_rotation_single_axis_without_normals(setup):
    tmp, root, _ = setup
    out = tmp / "rot"
    args = _args(root, out, "--smoothing", "rotation", "--axis", "z", "--no-normals",
                 "--categories", "Airplane", "--no-base")  # fmt: skip
    assert main(args) == 0
    (rec,) = _records(out)
    assert rec["name"] == NAMES[0] and rec["axis"] == [0.0, 0.0, 1.0]
    assert "base_correct" not in rec
    rows = summarize([rec], unit="clouds")
    assert len(rows) == 1 and "rotation axis=0,0,1" in rows[0]["model"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n0", "0"], "n0"),
        (["--alpha", "1.5"], "alpha"),
        (["--axis", "z"], "axis"),
        (["--categories", "Sofa"], "Sofa"),
        (["--model", "nope"], "nope"),
    ],
)
def test_bad_arguments(setup, tmp_path, capsys, extra, message):
    _, root, _ = setup
    with pytest.raises(SystemExit) as e:
        main(_args(root, tmp_path / "out", *extra))
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(_args(tmp_path / "nowhere", tmp_path / "out"))
    assert e.value.code == 2 and "--data" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        main(_args(tmp_path / "empty", tmp_path / "out"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "not found" in err and "synsetoffset2category.txt" in err
    assert not (tmp_path / "out").exists()


def test_part_iou_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lo, hi = (12, 16)
        target = rng.integers(lo, hi, size=30)
        pred = np.where(rng.random(30) < 0.2, -1, rng.integers(lo, hi, size=30))
        s = segmentation_tally(pred, target, num_classes=50, ignore_index=None)
        ious = []
        for c in range(lo, hi):
            p = {i for i in range(30) if pred[i] == c}
            g = {i for i in range(30) if target[i] == c}
            ious.append(len(p & g) / len(p | g) if p | g else 1.0)
        assert part_iou(s.intersection, s.union, (lo, hi)) == pytest.approx(np.mean(ious))
    with pytest.raises(ValueError, match="parts"):
        part_iou([1, 2], [1, 2], (1, 5))
