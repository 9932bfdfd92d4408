"""A copied run folder resumes and takes ``--save-counts``: ``config.json`` records a path
beside the run folder relative to it, any other path absolute; other data is still refused."""

import json
import shutil

import pandas as pd
import pytest
import torch

from mtcert.stored.counts import read_counts
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset

pytestmark = pytest.mark.torch


def _project(folder, seed=0):
    """A folder holding a data set and a checkpoint, as the demo writes them."""
    torch.manual_seed(0)
    folder.mkdir(parents=True)
    torch.save(TinySegNet(3, 4).state_dict(), folder / "tiny.pt")
    x, y = make_shapes(3, 8, seed=seed)
    write_folder_dataset(folder / "data", x, y)
    return folder


def _certify(project, out, *extra):
    argv = ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
            '{"width": 4}', "--num-classes", "3", "--checkpoint", str(project / "tiny.pt"),
            "--data", str(project / "data"), "--sigma", "0.25", "--n0", "2", "--n", "4",
            "--alpha", "0.1", "--out", str(out), "--batch-size", "8", "--no-progress",
            "--figures", "0", *extra]  # fmt: skip
    return main(argv)


def test_a_copied_project_is_extended_with_save_counts(tmp_path, capsys):
    project = _project(tmp_path / "project")
    assert _certify(project, project / "run", "--save-counts", "--limit", "2") == 0
    printed = capsys.readouterr()  # the summary; on stderr, what its t [s] holds
    assert printed.out == (project / "run" / "summary.md").read_text()
    assert "note: t [s] is the mean time per image (sampling and statistics) over 2 images" in (
        printed.err
    )
    config = json.loads((project / "run" / "config.json").read_text())
    assert config["data"] == "../data" and config["checkpoint"] == "../tiny.pt"
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(project, copy)
    assert _certify(copy, copy / "run", "--save-counts") == 0  # accepted: the third item added
    counts = read_counts(copy / "run" / "counts.mtcounts")
    assert len(counts) == 3 and counts.settings["data"] == "../data"
    before = pd.read_csv(project / "run" / "per_image.csv")
    after = pd.read_csv(copy / "run" / "per_image.csv")
    assert len(before) == 2 and len(after) == 3
    cols = ["name", "cert_correct", "abstained", "base_correct"]  # the copied records kept
    pd.testing.assert_frame_equal(before[cols], after[cols].iloc[:2])
    capsys.readouterr()


def test_a_copied_run_folder_resumes_with_the_same_data_and_refuses_other_data(tmp_path, capsys):
    project = _project(tmp_path / "inputs")
    run = tmp_path / "results" / "deep" / "run"
    assert _certify(project, run, "--save-counts") == 0
    assert json.loads((run / "config.json").read_text())["data"] == str(project / "data")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert _certify(project, copy, "--save-counts") == 0  # the same absolute paths: accepted
    assert len(read_counts(copy / "counts.mtcounts")) == 3
    other = _project(tmp_path / "other", seed=1)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        _certify(other, copy, "--save-counts")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "data:" in err and "recorded relative to the run folder" in err
