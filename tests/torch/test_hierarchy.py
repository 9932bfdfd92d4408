"""Hierarchical certification and attack figures in the certify command (torch side)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtcert.certify.hierarchy import CITYSCAPES, ClassHierarchy, hierarchical_segcertify
from mtcert_torch.certifier import Certifier
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.hierarchy import certify_hierarchical, hierarchy_rows, load_hierarchy
from mtcert_torch.settings import Settings
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise

pytestmark = pytest.mark.torch
SHAPES = {"classes": ["background", "disc", "square"],
          "tree": {"background": ["background"], "shape": ["disc", "square"]}}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A noise-trained TinySegNet on 16 x 16 shapes, its test folder and a hierarchy file."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hier")
    x, y = make_shapes(48, 16, seed=0)
    net = TinySegNet(3, 16)
    train_with_noise(SegmentationAdapter(net, num_classes=3), x, y, sigma=0.25, steps=40, seed=0)
    torch.save(net.state_dict(), root / "tiny.pt")
    write_folder_dataset(root / "data", *make_shapes(3, 16, seed=1))
    (root / "shapes.json").write_text(json.dumps(SHAPES))
    return root


def argv(root, out, *extra):
    return [
        "certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--num-classes", "3",
        "--checkpoint", str(root / "tiny.pt"), "--data", str(root / "data"), "--layout",
        "folder", "--sigma", "0.25", "--n", "50", "--out", str(out), "--batch-size", "60",
        "--figures", "0", "--no-progress", *extra,
    ]  # fmt: skip


def test_certify_with_hierarchy_and_attack_figures(run, capsys):
    out = run / "out"
    extra = ("--hierarchy", str(run / "shapes.json"), "--attack-figures", "2")
    assert main(argv(run, out, *extra)) == 0
    summary = (out / "summary.md").read_text()
    assert "| CIG |" in summary and "AdaptiveCertify holm" in summary and "[shapes]" in summary
    records = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    assert len(records) == 3
    assert sorted(p.name for p in (out / "figures-attack").iterdir()) == [
        "shape_0000.png", "shape_0001.png"
    ]  # fmt: skip
    attacked = [r for r in records if "attack_flipped" in r]
    assert len(attacked) == 2
    for r in attacked:
        assert 0 <= r["attack_flipped"] <= r["attack_certified"] <= r["valid"]
        assert r["attack_radius"] == pytest.approx(r["radius"])
    # the summary rows are the pooled per-image counts
    import csv

    rows = {r["model"].split()[0]: r for r in csv.DictReader((out / "summary.csv").open())}
    valid = sum(r["valid"] for r in records)
    adaptive = rows["AdaptiveCertify"]
    assert float(adaptive["acc"]) == pytest.approx(sum(r["hier_correct"] for r in records) / valid)
    assert float(adaptive["abstain"]) == pytest.approx(
        sum(r["hier_abstained_valid"] for r in records) / valid
    )
    assert float(adaptive["cig"]) == pytest.approx(sum(r["hier_cig_sum"] for r in records) / valid)
    flat = rows["SegCertify"]
    assert float(flat["cig"]) == pytest.approx(float(flat["acc"]))  # flat CIG = certified acc
    assert rows["base"]["cig"] == ""
    # a resume with another hierarchy is refused; a mismatching or unreadable one is a usage error
    other = run / "other.json"
    other.write_text(json.dumps({**SHAPES, "tree": {"all": ["background", "disc", "square"]}}))
    for spec, message in (
        (str(other), "different settings"),
        ("cityscapes", "19 fine classes"),
        (str(run / "missing.json"), "cannot read"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv(run, out, "--hierarchy", spec))
        assert exc.value.code == 2 and message in capsys.readouterr().err


def test_certify_hierarchical_draws_two_independent_stretches(run):
    net = TinySegNet(3, 16)
    net.load_state_dict(torch.load(run / "tiny.pt"))
    certifier = Certifier(SegmentationAdapter(net, num_classes=3), batch_size=60, seed=3)
    x, _ = make_shapes(1, 16, seed=1)
    settings = Settings(sigma=0.25, n0=10, n=50)
    h = ClassHierarchy(**SHAPES)
    hc = certify_hierarchical(certifier, x[0], h, settings)
    # the same two stretches of the same stream, drawn by hand
    certifier.manual_seed(3)
    c0 = certifier.counts(x[0], sigma=0.25, num=10).numpy()
    c = certifier.counts(x[0], sigma=0.25, num=50).numpy()
    assert not np.array_equal(c0 * 5, c)  # fresh draws, not the guessing ones again
    ref = hierarchical_segcertify(np.moveaxis(c0, 0, -1), np.moveaxis(c, 0, -1), h, tau=0.75,
                                  alpha=0.001)  # fmt: skip
    np.testing.assert_array_equal(hc.labels, ref.labels)


def test_load_hierarchy_and_rows_without_hierarchical_records(run):
    assert load_hierarchy("cityscapes", 19) is CITYSCAPES
    assert load_hierarchy(run / "shapes.json", 3).names[-1] == "shape"
    with pytest.raises(ValueError, match="19 fine classes"):
        load_hierarchy("cityscapes", 3)
    with pytest.raises(TypeError):
        load_hierarchy(3, 3)
    rows = [{"model": "base model"}]
    assert hierarchy_rows([{"name": "a"}], rows) is rows
