"""The core's commands and files on hostile input: one error line (exit 2) or the right
result, never a traceback, a silently short read, an overwritten output or a file outside
the folder written through a planted link.

Guards: crafted counts files in ``recertify`` and ``plan --pilot``; a truncated run refused
unless ``--partial``; ``plan --pilot`` on the rank files of one run; two ``recertify`` runs
on one ``--out``; absurd sizes (``demo --m``, ``plan --N``); an empty ``--out``; the folder
lock's links and stale holders; hierarchy input (a target outside it, a file nested deep).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from mtcert import cli
from mtcert._files import FolderLock, output_name
from mtcert.certify.hierarchy import ClassHierarchy, certified_information_gain
from mtcert.stored.counts import CountsWriter
from tests.helpers.counts import CRAFTED, SETTINGS, finished_run, write_crafted


def _run(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("case", CRAFTED)
def test_recertify_and_plan_refuse_crafted_files_in_one_line(tmp_path, capsys, case):
    """22 of 119 crafted files ended in a traceback in recertify, 18 in plan."""
    path = write_crafted(tmp_path / "c.mtcounts", case)
    code, _, err = _run(["recertify", str(path), "--out", str(tmp_path / "r")], capsys)
    _one_line(code, err)
    argv = ["plan", "--pilot", str(path), "--n", "10,20", "--out", str(tmp_path / "p"),
            "--no-plot"]  # fmt: skip
    code, _, err = _run(argv, capsys)
    _one_line(code, err)
    assert not list((tmp_path / "r").glob("recertify*")) and not list((tmp_path / "p").glob("*"))


def test_a_truncated_run_is_refused_unless_partial(tmp_path, capsys):
    """``head -c 5000 counts.mtcounts > t.mtcounts; recertify t.mtcounts`` reported fewer
    items, exit 0, no warning."""
    full = finished_run(tmp_path / "run.mtcounts")
    cut = tmp_path / "t.mtcounts"
    cut.write_bytes(full[: full.index(b"img09")])
    out = tmp_path / "o"
    code, _, err = _run(["recertify", str(cut), "--out", str(out)], capsys)
    _one_line(code, err, "incomplete: 9 of 12 items", "--partial")
    code, _, err = _run(["recertify", str(cut), "--out", str(out), "--partial"], capsys)
    assert code == 0 and "note:" in err and "9 of 12" in err
    assert pd.read_csv(out / "recertify.csv")["items"].tolist() == [9]
    argv = ["plan", "--pilot", str(cut), "--n", "10,20", "--out", str(out), "--no-plot"]
    _one_line(*_run(argv, capsys)[::2], "incomplete")
    assert _run([*argv, "--partial"], capsys)[0] == 0


def test_plan_reads_the_rank_files_of_one_run(tmp_path, capsys):
    """``plan --pilot rank0.mtcounts rank1.mtcounts`` was refused ("dtype <U42")."""
    rng = np.random.default_rng(0)
    for rank in (0, 1):
        with CountsWriter(tmp_path / f"rank{rank}.mtcounts", SETTINGS) as w:
            for i in range(3):
                w.add(f"r{rank}i{i}", guess=np.ones(50, int), hits=rng.binomial(100, 0.9, 50),
                      target=np.ones(50, int))  # fmt: skip
    files = [str(tmp_path / f"rank{r}.mtcounts") for r in (0, 1)]
    argv = ["plan", "--n", "10,20", "--out", str(tmp_path / "o"), "--no-plot", "--reps", "5"]
    code, _, err = _run([*argv, "--pilot", *files, "--name", "files"], capsys)
    assert code == 0, err
    assert _run([*argv, "--pilot", str(tmp_path), "--name", "folder"], capsys)[0] == 0
    files, folder = (pd.read_csv(tmp_path / "o" / f"{n}.csv") for n in ("files", "folder"))
    pd.testing.assert_frame_equal(files, folder)


def test_two_recertify_runs_on_one_out_never_overwrite(tmp_path, capsys, monkeypatch):
    """Two recertify runs on one --out both printed ``-> recertify-3.csv``: one result lost.
    Here the other run finishes while this one works: each keeps its own name."""
    import mtcert.stored.recertification as recertification

    finished_run(tmp_path / "run.mtcounts", k=2)
    out = tmp_path / "o"
    real = recertification.recertify

    def meanwhile(*args, **kwargs):
        (out / "recertify.csv").write_text("the other run's table\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(recertification, "recertify", meanwhile)
    code, text, err = _run(["recertify", str(tmp_path / "run.mtcounts"), "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "recertify.csv").read_text() == "the other run's table\n"
    assert "recertify-2.csv" in text and len(pd.read_csv(out / "recertify-2.csv")) == 1


def test_output_names_are_claimed_atomically(tmp_path):
    suffixes = (".csv", ".md")
    assert output_name(tmp_path, None, "r", suffixes, claim=True) == "r"
    assert output_name(tmp_path, None, "r", suffixes, claim=True) == "r-2"
    assert (tmp_path / "r.csv").exists() and (tmp_path / "r-2.csv").exists()
    assert output_name(tmp_path, "x", "r", suffixes, claim=True) == "x"
    with pytest.raises(ValueError, match="exists"):
        output_name(tmp_path, "x", "r", suffixes, claim=True)


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["demo", "--m", "1000000000000"], "--m"),
        (["plan", "--beta", "30,1.5", "--N", "100000000000", "--no-plot"], "--N"),
        (["recertify", "x.mtcounts", "--out", ""], "--out"),
        (["plan", "--beta", "30,1.5", "--N", "10", "--out", ""], "--out"),
    ],
)
def test_absurd_sizes_and_an_empty_out_are_named(tmp_path, capsys, monkeypatch, argv, word):
    """``demo --m 1e12`` and ``plan --N 1e11`` ended in MemoryError; ``--out ""`` wrote into
    the current folder."""
    monkeypatch.chdir(tmp_path)
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "o")] if argv[0] == "plan" else argv
    code, _, err = _run(argv, capsys)
    _one_line(code, err, word)
    assert os.listdir(tmp_path) in ([], ["o"])


def test_the_folder_lock_never_writes_through_a_link(tmp_path):
    """``ln -s ~/victim out/.lock`` made certify and repair truncate the victim."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for planted in ("symlink", "hardlink", "folder"):
        out = tmp_path / planted
        out.mkdir()
        lock = out / ".lock"
        if planted == "symlink":
            lock.symlink_to(victim)
        elif planted == "hardlink":
            os.link(victim, lock)
        else:
            lock.mkdir()
        with pytest.raises(ValueError, match=r"lock file \.lock is"):
            FolderLock(lock).acquire()
        assert victim.read_text() == "precious"


def test_a_stale_lock_is_taken_over_with_one_line(tmp_path, capsys):
    """A lock left by a dead run was taken over without a word."""
    (tmp_path / ".lock").write_text("pid 999999999 on a-dead-host")
    lock = FolderLock(tmp_path / ".lock").acquire()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taking over" in err and "pid 999999999" in err
    with pytest.raises(ValueError, match=f"in use by another run \\(pid {os.getpid()}"):
        FolderLock(tmp_path / ".lock").acquire()
    lock.release()
    FolderLock(tmp_path / ".lock").acquire().release()  # released cleanly: nothing to say
    assert capsys.readouterr().err == ""


def test_hierarchy_input_is_checked(tmp_path):
    """A target outside the hierarchy scored 0.0; a JSON file nested ~600 deep ended in
    RecursionError."""
    h = ClassHierarchy(["a", "b", "c", "d"], {"ab": ["a", "b"], "cd": ["c", "d"]})
    with pytest.raises(ValueError, match=r"target must lie in \[0, 4\)"):
        certified_information_gain([0, 4], [0, 9], h)
    assert certified_information_gain([0, 4], [0, 255], h) == 1.0
    path = tmp_path / "deep.json"
    tree = '{"root": ' + '[{"n": ' * 600 + '["a"]' + "}]" * 600 + "}"
    path.write_text('{"classes": ["a"], "tree": ' + tree + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        ClassHierarchy.from_json(path)
    deep = ["a"]
    for i in range(300):
        deep = [{f"n{i}": deep}]
    with pytest.raises(ValueError, match="deeper than"):
        ClassHierarchy(["a"], {"root": deep})
    assert json.loads(ClassHierarchy.cityscapes().to_json())["classes"][0] == "road"
