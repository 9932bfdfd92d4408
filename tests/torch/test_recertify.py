"""Stored counts of real runs: a tiny trained model's counts, decided again, equal direct runs.

``--save-counts`` on the image and point-cloud commands, resumption with stored
counts, and :func:`mtcert.stored.recertification.recertify` on what they wrote
(the core side, on synthetic counts, is tests/core/test_recertify.py).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from mtcert.cli import main
from mtcert.stored.counts import read_counts
from mtcert.stored.recertification import decide, recertify
from mtcert_torch.cli import main as torch_main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.models import pointnet2_part_seg_msg
from mtcert_torch.runs.jobs import certify_images
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise
from tests.helpers.shapenet import shape, write_dataset

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """TinySegNet trained briefly with σ = 0.25 on synthetic shapes, 4 test images."""
    torch.manual_seed(0)
    x, y = make_shapes(32, 20, seed=0)
    net = TinySegNet(3, 8)
    train_with_noise(SegmentationAdapter(net, num_classes=3), x, y, sigma=0.25, steps=15, seed=0)
    root = tmp_path_factory.mktemp("demo")
    torch.save(net.state_dict(), root / "tiny.pt")
    xt, yt = make_shapes(4, 20, seed=1)
    write_folder_dataset(root / "data", xt, yt)
    return root


def _direct_run(root, out, *, tau, save_counts, labels=None, **kw):
    def capture(item, result):
        if labels is not None:
            labels[item.name] = result.certificate.labels

    return certify_images(
        model="mtcert_torch.data.synthetic:TinySegNet", model_kwargs={"width": 8}, num_classes=3,
        checkpoint=root / "tiny.pt", data=root / "data", out=out, sigma=0.25, tau=tau, n0=8,
        n=60, alpha=1e-3, batch_size=30, figures=0, base=False, progress=False,
        save_counts=save_counts, hooks=[capture], **kw,
    )  # fmt: skip


def test_stored_counts_reproduce_direct_runs_bit_for_bit(demo_data, tmp_path):
    labels: dict = {}
    ev = _direct_run(demo_data, tmp_path / "a", tau=0.75, save_counts=True, labels=labels)
    counts = read_counts(tmp_path / "a")
    assert counts.names == sorted(labels) and counts.settings["model_kwargs"] == {"width": 8}
    for item, cert in decide(counts, tau=0.75, alpha=1e-3):
        np.testing.assert_array_equal(cert.labels, labels[item.name])
    # one stored run, decided at two thresholds == two direct runs (same seeds, same samples)
    ev_hi = _direct_run(demo_data, tmp_path / "b", tau=0.9, save_counts=False)
    table = recertify(tmp_path / "a", tau=[0.75, 0.9], alpha=1e-3, method="holm")
    for (_, row), direct in zip(table.iterrows(), (ev.rows[-1], ev_hi.rows[-1]), strict=True):
        for ours, theirs in (("acc", "acc"), ("miou", "miou"), ("abstain", "abstain")):
            assert row[ours] == direct[theirs]  # bit for bit
        assert row["radius"] == direct["radius"] and row["items"] == 4


def test_save_counts_resumes_and_refuses_a_partial_file(demo_data, tmp_path):
    _direct_run(demo_data, tmp_path / "r", tau=0.75, save_counts=True, limit=2)
    assert read_counts(tmp_path / "r").names == ["shape_0000", "shape_0001"]
    # a run killed after storing counts but before writing its record: the item is redone
    jsonl = tmp_path / "r" / "per_image.jsonl"
    jsonl.write_text(jsonl.read_text().splitlines(keepends=True)[0])
    _direct_run(demo_data, tmp_path / "r", tau=0.75, save_counts=True)
    assert len(read_counts(tmp_path / "r")) == 4
    # results started without stored counts cannot grow a partial counts file
    _direct_run(demo_data, tmp_path / "s", tau=0.75, save_counts=False, limit=1)
    with pytest.raises(ValueError, match="lacks 1 item"):
        _direct_run(demo_data, tmp_path / "s", tau=0.75, save_counts=True)


def test_cli_save_counts_flag(demo_data, tmp_path):
    out = tmp_path / "cli"
    argv = [
        "certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
        '{"width": 8}', "--num-classes", "3", "--checkpoint", str(demo_data / "tiny.pt"),
        "--data", str(demo_data / "data"), "--sigma", "0.25", "--n0", "8", "--n", "30",
        "--out", str(out), "--limit", "2", "--figures", "0", "--no-progress", "--save-counts",
    ]  # fmt: skip
    assert torch_main(argv) == 0
    assert (out / "counts.mtcounts").is_file() and len(read_counts(out)) == 2
    assert main(["recertify", str(out), "--out", str(tmp_path / "re")]) == 0


def test_pointcloud_save_counts_recertify_to_the_direct_summary(tmp_path):
    """certify-pointcloud --save-counts: recertify gives the run's summary bit for bit.

    Accuracy, mIoU, instance and class mIoU (the paper's Table 2 columns), abstentions.
    """
    chair, plane = "03001627", "02691156"
    root = write_dataset(tmp_path / "shapenet", {
        (chair, "c1"): shape(96, [12, 13, 14, 15], seed=1),
        (chair, "c2"): shape(80, [12, 14], seed=2),
        (plane, "a1"): shape(128, [0, 1, 2, 3], seed=3),
    })  # fmt: skip
    torch.manual_seed(0)
    ckpt = tmp_path / "pn2.pth"
    torch.save(pointnet2_part_seg_msg(npoints=(16, 4)).state_dict(), ckpt)
    out = tmp_path / "pc"
    argv = [
        "certify-pointcloud", "--model-kwargs", '{"npoints": [16, 4]}', "--data", str(root),
        "--checkpoint", str(ckpt), "--out", str(out), "--sigma", "0.25", "--tau", "0.6",
        "--alpha", "0.2", "--n0", "2", "--n", "16", "--votes", "1", "--npoints", "64",
        "--batch-size", "4", "--no-progress", "--no-base", "--save-counts",
    ]  # fmt: skip
    assert torch_main(argv) == 0
    counts = read_counts(out)
    assert counts.settings["noise"] == "gaussian" and counts.ignore_index is None
    assert {tuple(it.meta["parts"]) for it in counts} == {(0, 4), (12, 16)}
    with (out / "summary.csv").open() as f:
        (direct,) = list(csv.DictReader(f))
    row = recertify(out, tau=0.6, alpha=0.2).iloc[0]
    for ours, theirs in (("acc", "acc"), ("miou", "miou"), ("inst_miou", "inst_miou"),
                         ("class_miou", "class_miou"), ("abstain", "abstain")):  # fmt: skip
        assert row[ours] == float(direct[theirs])
