"""Every written result of a certify run says what it promises: the family (one image, one
point cloud), the error rate (FWER, or k-FWER with its k) and that rows do not hold jointly;
``--radii`` adds per-pixel radii (summary rows, records, radius maps).  Read from the files."""

import csv
import json

import pytest
import torch
from PIL import Image

from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.jobs import certify_images

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("written")
    torch.manual_seed(0)
    torch.save(TinySegNet(3, 8).state_dict(), root / "tiny.pt")
    return root, write_folder_dataset(root / "data", *make_shapes(3, 12, seed=1))


def _run(root, data, out, **extra):
    options = dict(
        model="mtcert_torch.data.synthetic:TinySegNet", model_kwargs={"width": 8},
        num_classes=3, checkpoint=root / "tiny.pt", data=data, out=out, sigma=0.25, tau=0.6,
        n0=4, n=30, alpha=0.01, batch_size=34, figures=1, progress=False,
    )  # fmt: skip
    options.update(extra)
    return certify_images(**options)


def test_summary_per_image_csv_and_figures_state_family_error_rate_and_scope(data, tmp_path):
    root, folder = data
    out = tmp_path / "run"
    _run(root, folder, out, radii=True)
    md = (out / "summary.md").read_text()
    assert md.startswith("| model | σ | R | acc. | mIoU | %∅ | t [s] | guarantee | images |")
    assert "per image: P(a false certified pixel) <= 0.01 (FWER)" in md
    assert "this row alone: rows do not hold jointly" in md
    assert "none: not certified" in md  # the base model's row
    with (out / "summary.csv").open() as f:
        rows = {r["model"].split()[0]: r for r in csv.DictReader(f)}
    assert rows["SegCertify"]["guarantee"].startswith("per image: P(a false certified pixel)")
    with (out / "summary.csv").open() as f:
        joint = [r for r in csv.DictReader(f) if r["model"].startswith("JointRadii")]
    assert len(joint) == 4  # R(0.5) = 0, R(0.6) (the run's own tau), R(0.75), R(0.9)
    for r in joint:
        assert (
            "P(a pixel certified beyond its radius) <= 0.01 (FWER, all radii jointly)"
            in (r["guarantee"])
        )
        assert "not jointly with other rows" in r["guarantee"]
    accs = [float(r["acc"]) for r in joint]
    assert accs == sorted(accs, reverse=True) and all(r["images"] == "3" for r in joint)
    with (out / "per_image.csv").open() as f:
        per_image = list(csv.DictReader(f))
    assert {r["guarantee"] for r in per_image} == {
        "this image alone, P(a false certified pixel) <= 0.01 (FWER)"
    }
    assert all(float(r["radii_max"]) >= 0 for r in per_image)
    rec = json.loads((out / "per_image.jsonl").read_text().splitlines()[0])
    assert len(rec["radii_correct"]) == len(rec["radii_at"]) == 4
    # the figure: a radius-map panel and the caption, also as the PNG's text
    (png,) = (out / "figures").iterdir()
    with Image.open(png) as im:
        text = im.text["Description"]
        width = im.size[0]
    assert "this image alone is the family" in text and "(FWER)" in text
    assert "own radii: per image" in text and "all radii jointly" in text
    plain = tmp_path / "plain"
    _run(root, folder, plain)
    (png,) = (plain / "figures").iterdir()
    with Image.open(png) as im:
        assert im.size[0] < width and "own radii" not in im.text["Description"]
    assert "JointRadii" not in (plain / "summary.md").read_text()


def test_k_fwer_rows_say_k(data, tmp_path):
    root, folder = data
    out = tmp_path / "k"
    _run(root, folder, out, method="generalized-holm", k=3, figures=0)
    md = (out / "summary.md").read_text()
    assert "per image: P(3 or more false certified pixels) <= 0.01 (k-FWER (k=3))" in md
    with (out / "per_image.csv").open() as f:
        assert next(csv.DictReader(f))["guarantee"].endswith("(k-FWER (k=3))")


def test_cli_radii_flag_and_non_finite_normalisation_refused(data, tmp_path, capsys):
    root, folder = data
    base = [
        "certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
        '{"width": 8}', "--num-classes", "3", "--checkpoint", str(root / "tiny.pt"), "--data",
        str(folder), "--sigma", "0.25", "--n0", "4", "--n", "30", "--batch-size", "34",
        "--figures", "0", "--no-progress", "--limit", "1",
    ]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "r"), "--radii"]) == 0
    assert "JointRadii" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["radii"] is True
    for flag, value in (("--mean", "nan,0.5,0.5"), ("--std", "inf,1,1")):
        with pytest.raises(SystemExit) as e:
            main([*base, "--out", str(tmp_path / "bad"), flag, value])
        assert e.value.code == 2 and f"{flag} must be finite" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
