"""A run's figures as printed and its attack results in per_image.csv and summary.md.

A tiny attacked run on synthetic shapes: the attack's per-image fields become CSV
columns and a summary row whose numbers are recomputed here from the JSON records (the
flip rate's interval against scipy's beta quantiles); a run without an attack has none
of them.  The panels are read back with PIL (dpi, size, caption text) and inspected
through their matplotlib objects (legend entries, panel titles, abstain drawn white).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from mtcert.plotting import pyplot
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.figures import (
    ATTACK_FIELDS,
    class_names,
    default_palette,
    panel_figure,
    run_palette,
)
from mtcert_torch.runs.store import repair_results
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise

pytestmark = pytest.mark.torch
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A noise-trained TinySegNet on 16 x 16 shapes and a test folder of three images."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("figs")
    x, y = make_shapes(48, 16, seed=0)
    net = TinySegNet(3, 16)
    train_with_noise(SegmentationAdapter(net, num_classes=3), x, y, sigma=0.25, steps=40, seed=0)
    torch.save(net.state_dict(), root / "tiny.pt")
    write_folder_dataset(root / "data", *make_shapes(3, 16, seed=1))
    return root


def _certify(root, out, *extra):
    argv = [
        "certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--num-classes", "3",
        "--checkpoint", str(root / "tiny.pt"), "--data", str(root / "data"), "--layout",
        "folder", "--sigma", "0.25", "--n", "50", "--out", str(out), "--batch-size", "60",
        "--no-progress", *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    with (out / "per_image.csv").open() as f:
        rows = list(csv.DictReader(f))
    return records, rows


def _md_rows(path):
    lines = path.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
            for ln in lines[2:]]  # fmt: skip


def test_attack_results_are_columns_and_a_summary_row(root, capsys):
    out = root / "attacked"
    records, rows = _certify(root, out, "--attack-figures", "2", "--figures", "1")
    assert set(ATTACK_FIELDS) <= set(rows[0])
    by_name = {r["name"]: r for r in records}
    attacked = [r for r in rows if r["attack_flipped"] != ""]
    assert len(attacked) == 2 and len(rows) == 3
    for row in attacked:
        for field in ATTACK_FIELDS:
            assert float(row[field]) == pytest.approx(by_name[row["name"]][field])
    assert all(row[f] == "" for row in rows if row not in attacked for f in ATTACK_FIELDS)

    recs = [r for r in records if "attack_flipped" in r]
    certified = sum(r["attack_certified"] for r in recs)
    flipped = sum(r["attack_flipped"] for r in recs)
    valid = sum(r["valid"] for r in recs)
    (row,) = [r for r in _md_rows(out / "summary.md") if r["model"].startswith("PGD attack")]
    assert row["model"].endswith("holm gaussian n0=10 n=50 tau=0.75 alpha=0.001")
    assert row["images"] == "2" and row["R"] == f"{recs[0]['radius']:.2f}"
    assert row["attacked certified px"] == str(certified) and row["flipped"] == str(flipped)
    assert row["flipped (sig.)"] == str(sum(r["attack_flipped_significant"] for r in recs))
    # two-sided 95 % Clopper-Pearson interval from beta quantiles (scipy)
    lo = 0.0 if flipped == 0 else stats.beta.ppf(0.025, flipped, certified - flipped + 1)
    hi = 1.0 if flipped == certified else stats.beta.ppf(0.975, flipped + 1, certified - flipped)
    assert row["flip rate, 95% CP"] == f"{flipped / certified:.3g} [{lo:.3g}, {hi:.3g}]"
    clean = sum(r["attack_base_acc_clean"] * r["valid"] for r in recs) / valid
    assert row["base acc. clean"] == f"{clean:.3f}"
    attacked_acc = sum(r["attack_base_acc"] * r["valid"] for r in recs) / valid
    assert row["base acc. attacked"] == f"{attacked_acc:.3f}"
    # the family and error rate named as on the SEGCERTIFY row
    assert row["guarantee"].startswith("per image: P(a false certified pixel) <= 0.001 (FWER)")
    others = [r for r in _md_rows(out / "summary.md") if not r["model"].startswith("PGD")]
    assert all(r["flipped"] == "-" for r in others)
    with (out / "summary.csv").open() as f:
        (summary,) = [r for r in csv.DictReader(f) if r["model"].startswith("PGD attack")]
    assert int(summary["attack_flipped"]) == flipped

    # the attack figure: print resolution, what each panel is, the numbers in its text
    with Image.open(out / "figures-attack" / "shape_0000.png") as im:
        (w, h), dpi, text = im.size, im.info["dpi"], im.text["Description"]
    assert dpi[0] >= 149.9 and w >= 1500 and h >= 500
    assert "PGD (100 steps) within the certified ℓ2 radius" in text.replace("\n", " ")
    assert f"of {by_name['shape_0000']['attack_certified']}" in text
    assert "this image alone is the family" in text
    with Image.open(out / "figures" / "shape_0000.png") as im:
        assert im.info["dpi"][0] >= 149.9 and "certified radius R =" in im.text["Description"]

    # a repaired folder keeps the attack's columns
    with (out / "per_image.jsonl").open("a") as f:
        f.write('{"torn": \n')
    repair_results(out)
    with (out / "per_image.csv").open() as f:
        assert set(ATTACK_FIELDS) <= set(next(csv.DictReader(f)))


def test_a_run_without_attack_has_no_attack_columns(root):
    out = root / "plain"
    _, rows = _certify(root, out, "--figures", "0")
    assert not any(key.startswith("attack_") for key in rows[0])
    md = (out / "summary.md").read_text()
    assert "flipped" not in md and "PGD" not in md


def test_columns_of_options_that_are_off_are_left_out(root):
    """A fixed-n run without radii has no radii, passes or adaptive_n columns; the
    options that fill them bring them; a repair keeps the run's own columns."""
    plain = {"radii_max", "radii_median", "passes", "adaptive_n"}
    _, rows = _certify(root, root / "fixed", "--figures", "0")
    assert plain.isdisjoint(rows[0]) and "cert_acc" in rows[0]
    repair_results(root / "fixed")
    with (root / "fixed" / "per_image.csv").open() as f:
        assert plain.isdisjoint(next(csv.DictReader(f)))
    _, rows = _certify(root, root / "radii", "--figures", "0", "--radii")
    assert {"radii_max", "radii_median"} <= set(rows[0]) and "passes" not in rows[0]
    assert all(r["radii_max"] != "" for r in rows)
    _, rows = _certify(root, root / "adaptive", "--figures", "0", "--adaptive-n",
                       "two-stage:pilot=8,max=60")  # fmt: skip
    assert {"adaptive_n", "passes"} <= set(rows[0]) and "radii_max" not in rows[0]
    assert all(int(r["passes"]) > 0 for r in rows)


def test_panels_legend_titles_and_abstain_white():
    target = np.array([[0, 1, 2, 255]] * 4)
    certified = np.array([[0, 1, -1, -1]] * 4)
    fig = panel_figure(
        np.full((3, 4, 4), 0.5), target, certified, default_palette(3), base=target.clip(0, 2),
        input_title="attacked input", base_title="base model on the attacked input",
        caption=["certified labels: this image alone is the family"],
    )  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "(a) attacked input" and titles[1] == "(b) ground truth"
    assert titles[2].replace("\n", " ") == "(c) base model on the attacked input"
    assert titles[3].replace("\n", " ") == "(d) certified (abstain white)"
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["class 0", "class 1", "class 2", "abstain", "unlabelled"]
    assert legend.get_title().get_text() == "certified labels: this image alone is the family"
    shown = fig.axes[3].images[0].get_array()
    assert (np.asarray(shown)[:, 2:] == 255).all()  # abstained pixels drawn white
    swatch = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles,
                                              strict=True)}  # fmt: skip
    assert tuple(swatch["abstain"].get_facecolor()[:3]) == (1.0, 1.0, 1.0)
    pyplot().close(fig)


def test_cityscapes_runs_name_their_classes():
    assert class_names(19)[:3] == ("road", "sidewalk", "building")
    assert class_names(3) == ("class 0", "class 1", "class 2")
    fig = panel_figure(np.zeros((3, 2, 2)), np.array([[0, 13], [13, 0]]),
                       np.array([[0, 13], [-1, 0]]), run_palette(19))  # fmt: skip
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["road", "car", "abstain"]
    # without a base prediction the panels are lettered in order all the same
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes]
    assert titles == ["(a) input", "(b) ground truth", "(c) certified (abstain white)"]
    pyplot().close(fig)
