"""The certify commands on hostile input: nothing lost, nothing silently wrong, one line.

Guards: the counts file a run writes is finished at its end and stays in progress when the
run is cut; a replaced checkpoint is refused on resume; two images or shapes of one name
are refused naming both; a planted ``.lock`` link is never written through; absurd sizes
and unusable values are one error line naming the argument; a damaged ``config.json``, a
record without a string name, a last record without its newline and undecodable bytes in
the record file neither crash a resume nor ``repair``; a counts file of other settings is
refused before ``config.json`` is written.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mtcert.cli import main as core_main
from mtcert.stored.counts import CountsWriter, read_counts
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.loop import evaluate
from tests.helpers.shapenet import CHAIR, cloud_args, shape, write_dataset

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), root / "tiny.pt")
    torch.save(TinySegNet(3, 4).state_dict(), root / "other.pt")
    x, y = make_shapes(3, 8, seed=0)
    write_folder_dataset(root / "data", x, y)

    def args(out, *extra, checkpoint=None):
        return ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
                '{"width": 4}', "--num-classes", "3", "--checkpoint",
                str(checkpoint or root / "tiny.pt"), "--data", str(root / "data"), "--sigma",
                "0.25", "--n0", "2", "--n", "4", "--alpha", "0.1", "--out", str(out),
                "--batch-size", "8", "--no-progress", "--figures", "0", *extra]  # fmt: skip

    return root, args


def one_line_error(capsys, argv, *words, run=main):
    """Run ``argv``; assert exit 2 and one stderr line holding ``words``."""
    try:
        code = run(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_the_run_finishes_its_counts_and_a_cut_run_leaves_them_in_progress(
    env, tmp_path, capsys, monkeypatch
):
    """A counts file did not know whether its run was complete: a run cut short was read
    as a shorter run."""
    import mtcert_torch.runs.loop as loop

    _, args = env
    out = tmp_path / "cut"
    real, calls = loop.certify_item, []

    def cut_on_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "certify_item", cut_on_second)
    assert main(args(out, "--save-counts")) == 130
    with pytest.raises(ValueError, match="incomplete: 1 of 3 items"):
        read_counts(out)
    capsys.readouterr()
    one_line_error(capsys, ["recertify", str(out), "--out", str(tmp_path / "re")], "--partial",
                   run=core_main)  # fmt: skip
    monkeypatch.setattr(loop, "certify_item", real)
    assert main(args(out, "--save-counts")) == 0
    assert len(read_counts(out)) == 3
    finished = (out / "counts.mtcounts").read_bytes()
    assert main(args(out, "--save-counts")) == 0  # nothing to do: still finished, unchanged
    assert (out / "counts.mtcounts").read_bytes() == finished
    assert core_main(["recertify", str(out), "--out", str(tmp_path / "re")]) == 0


def test_a_replaced_checkpoint_is_refused_on_resume(env, tmp_path, capsys):
    """config.json held only the checkpoint's path: overwriting the file and rerunning
    merged the records of two models into one summary."""
    root, args = env
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes((root / "tiny.pt").read_bytes())
    out = tmp_path / "run"
    assert main(args(out, "--limit", "1", checkpoint=ckpt)) == 0
    before = (out / "per_image.jsonl").read_text()
    torch.save(torch.load(root / "tiny.pt"), ckpt)  # other bytes, the same weights: resumes
    assert main(args(out, "--limit", "2", checkpoint=ckpt)) == 0
    before = (out / "per_image.jsonl").read_text()
    ckpt.write_bytes((root / "other.pt").read_bytes())  # the same path, other weights
    capsys.readouterr()
    one_line_error(capsys, args(out, checkpoint=ckpt), "model_sha256", "weights differ")
    assert (out / "per_image.jsonl").read_text() == before


def test_two_items_of_one_name_are_refused_naming_both(env, tmp_path, capsys):
    """``shape_0000.jpg`` beside ``shape_0000.png`` shared one record (one dropped); a split
    listing a shape twice wrote its record twice."""
    _, args = env
    data = tmp_path / "data"
    x, y = make_shapes(2, 8, seed=0)
    write_folder_dataset(data, x, y)
    Image.open(data / "images" / "shape_0000.png").save(data / "images" / "shape_0000.jpg")
    argv = args(tmp_path / "o")
    argv[argv.index("--data") + 1] = str(data)
    one_line_error(capsys, argv, "shape_0000.jpg", "shape_0000.png", "share the name")
    assert not (tmp_path / "o").exists()
    shapes = {(CHAIR, "c1"): shape(40, [12, 13], seed=1)}
    split = {"train": [], "val": [], "test": [(CHAIR, "c1"), (CHAIR, "c1")]}
    cloud = write_dataset(tmp_path / "shapenet", shapes, splits=split)
    one_line_error(capsys, cloud_args(cloud, tmp_path / "p"), "entries 0 and 1 both list")
    with pytest.raises(ValueError, match="occurs twice"):
        evaluate(None, [("a", None, None), ("a", None, None)], None)


def test_a_planted_lock_link_is_never_written_through(env, tmp_path, capsys):
    """``ln -s ~/victim out/.lock`` made certify (and repair) truncate the victim."""
    _, args = env
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    one_line_error(capsys, args(out), "lock file .lock")
    one_line_error(capsys, ["repair", "--out", str(out)], "lock file .lock")
    assert victim.read_text() == "precious"


def _deep_hierarchy(path):
    tree = '{"root": ' + '[{"n": ' * 600 + '["a", "b", "c"]' + "}]" * 600 + "}"
    path.write_text('{"classes": ["a", "b", "c"], "tree": ' + tree + "}")
    return str(path)


IMAGE_MISUSES = {
    "memory budget inf": (["--memory-budget", "inf"], "--memory-budget"),
    "memory budget 1e400": (["--memory-budget", "1e400"], "--memory-budget"),
    "device meta": (["--device", "meta"], "--device"),
    "model kwargs a bad value": (["--model-kwargs", '{"width": -1}'], "--model-kwargs"),
    "hierarchy nested 600 deep": (["--hierarchy", "DEEP"], "nested too deeply"),
    "out empty": (["--out", ""], "--out"),
}


@pytest.mark.parametrize("case", list(IMAGE_MISUSES))
def test_image_misuse_is_one_line(env, tmp_path, capsys, monkeypatch, case):
    """Each ended in a traceback (OverflowError, RuntimeError, RecursionError) or, for
    ``--out ""``, wrote into the current folder."""
    _, args = env
    monkeypatch.chdir(tmp_path)
    extra, word = IMAGE_MISUSES[case]
    extra = [_deep_hierarchy(tmp_path / "deep.json") if e == "DEEP" else e for e in extra]
    argv = args(tmp_path / "out")
    if extra[0] in argv:  # replace a value the base command sets
        argv[argv.index(extra[0]) + 1] = extra[1]
    else:
        argv += extra
    one_line_error(capsys, argv, word)
    assert sorted(os.listdir(tmp_path)) in ([], ["deep.json"])


def test_an_image_too_large_to_decode_is_one_line(env, tmp_path, capsys, monkeypatch):
    """A 20000 x 20000 image ended in PIL's DecompressionBombError (the limit is lowered
    here so that the test needs no such file)."""
    _, args = env
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 16)
    one_line_error(capsys, args(tmp_path / "o"), "cannot read image", "decompression bomb")


CLOUD_MISUSES = {
    "npoints 1e9": (["--npoints", "1000000000"], "--npoints"),
    "more centres than points": (["--model-kwargs", '{"npoints": [100000, 4]}'],
                                 "--model-kwargs"),
    "memory budget inf": (["--memory-budget", "inf"], "--memory-budget"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CLOUD_MISUSES))
def test_pointcloud_misuse_is_one_line(setup, tmp_path, capsys, case):
    """``--npoints 1000000000`` was killed by the OOM killer; more centres than points ran
    for minutes; ``--memory-budget inf`` ended in OverflowError."""
    _, root, _ = setup
    extra, word = CLOUD_MISUSES[case]
    argv = cloud_args(root, tmp_path / "o")
    if extra[0] in argv:
        argv[argv.index(extra[0]) + 1] = extra[1]
    else:
        argv += extra
    one_line_error(capsys, argv, word)


@pytest.mark.parametrize("content", ["[]", '"x"', "null", "{oops", b"\xff\xfe"])
def test_a_damaged_config_json_is_one_line(env, tmp_path, capsys, content):
    """``config.json`` holding ``[]``, ``"x"`` or ``null`` ended in a traceback."""
    _, args = env
    out = tmp_path / "o"
    out.mkdir()
    path = out / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    one_line_error(capsys, args(out), "config.json", "not a JSON object")


@pytest.mark.parametrize("name", [["x"], 7, "", None])
def test_a_record_without_a_string_name_is_reported_and_repaired(env, tmp_path, capsys, name):
    """A record with ``"name": ["x"]`` ended in TypeError in resume and in repair;
    ``"name": 7`` redid the work, then failed writing the summary."""
    _, args = env
    out = tmp_path / "o"
    assert main(args(out, "--limit", "2")) == 0
    path = out / "per_image.jsonl"
    first, second = path.read_text().splitlines()
    record = json.loads(first)
    record["name"] = name
    path.write_text("\n".join([json.dumps(record), second, ""]))
    capsys.readouterr()
    one_line_error(capsys, args(out), "line 1", "repair --out")
    assert main(["repair", "--out", str(out)]) == 0
    assert "moved lines: 1" in capsys.readouterr().out
    assert main(args(out)) == 0
    names = sorted(json.loads(line)["name"] for line in path.read_text().splitlines())
    assert names == ["shape_0000", "shape_0001", "shape_0002"]


def test_a_last_record_without_its_newline_resumes(env, tmp_path, capsys):
    """A last record complete but for its newline broke the next resume after all the
    work was done (exit 2)."""
    _, args = env
    out = tmp_path / "o"
    assert main(args(out, "--limit", "1")) == 0
    path = out / "per_image.jsonl"
    path.write_text(path.read_text().rstrip("\n"))
    assert main(args(out, "--limit", "2")) == 0
    assert main(args(out)) == 0
    assert len(path.read_text().splitlines()) == 3
    assert capsys.readouterr().out.splitlines()[-1].endswith("| 3 |")


def test_repair_handles_undecodable_bytes(env, tmp_path, capsys):
    """``repair`` failed on non-UTF-8 bytes in ``per_image.jsonl`` although certify's
    message sends the user to it."""
    _, args = env
    out = tmp_path / "o"
    assert main(args(out, "--limit", "2")) == 0
    path = out / "per_image.jsonl"
    first, second = path.read_bytes().splitlines()
    path.write_bytes(first + b"\n\xff\xfe\x00garbage\n" + second + b"\n\xff")  # and a torn tail
    capsys.readouterr()
    one_line_error(capsys, args(out), "line 2", "repair --out")
    assert main(["repair", "--out", str(out)]) == 0
    assert "moved lines: 2, 4" in capsys.readouterr().out
    assert main(args(out)) == 0
    assert len(path.read_text().splitlines()) == 3


def test_counts_of_other_settings_are_refused_before_config_json(env, tmp_path, capsys):
    """A run refused because of a mismatching counts file had already written config.json."""
    _, args = env
    out = tmp_path / "o"
    settings = dict(sigma=0.5, noise="gaussian", n0=2, n=4, seed=0, model="x", num_classes=3)
    with CountsWriter(out / "counts.mtcounts", settings) as w:
        w.add("x", guess=np.zeros(2, int), hits=np.zeros(2, int), target=np.zeros(2, int))
    one_line_error(capsys, args(out, "--save-counts"), "different settings")
    assert sorted(os.listdir(out)) == ["counts.mtcounts"]
