"""``python -m mtcert_torch``: every misuse is one stderr line and exit 2; interrupts keep
results (exit 130); one writer per output folder; damaged record files are reported and
repaired; help shows a default for every option."""

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mtcert
from mtcert_torch.cli import build_parser, main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.store import ResultsWriter
from tests.helpers.shapenet import cloud_args

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[2]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), root / "tiny.pt")
    x, y = make_shapes(3, 8, seed=0)
    write_folder_dataset(root / "data", x, y)
    (root / "notes.txt").write_text("these are not weights\n")
    (root / "garbage.pt").write_bytes(os.urandom(300))
    (root / "evil.pt").write_bytes(pickle.dumps(Evil(), protocol=2))
    (root / "evil4.pt").write_bytes(pickle.dumps(Evil(), protocol=4))
    (root / "afile").write_text("x")

    def args(out, *extra, checkpoint="tiny.pt"):
        return ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
                '{"width": 4}', "--num-classes", "3", "--checkpoint", str(root / checkpoint),
                "--data", str(root / "data"), "--sigma", "0.25", "--n0", "2", "--n", "4",
                "--alpha", "0.1", "--out", str(out), "--batch-size", "8", "--no-progress",
                "--figures", "0", *extra]  # fmt: skip

    return root, args


def one_line_error(capsys, argv, *words):
    """Run ``argv``; assert exit 2 and one stderr line holding ``words``."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


MISUSES = {
    "text checkpoint": (dict(checkpoint="notes.txt"), [], "checkpoint"),
    "garbage checkpoint": (dict(checkpoint="garbage.pt"), [], "checkpoint"),
    "malicious checkpoint": (dict(checkpoint="evil.pt"), [], "refused checkpoint", "system"),
    "malicious checkpoint protocol 4": (dict(checkpoint="evil4.pt"), [], "checkpoint"),
    "device bogus": ({}, ["--device", "bogus"], "--device"),
    "device cuda:7": ({}, ["--device", "cuda:7"], "--device"),
    "model builtins:print": ({}, ["--model", "builtins:print"], "--model"),
    "model kwargs rejected": ({}, ["--model-kwargs", '{"depth": 3}'], "--model-kwargs"),
    "model kwargs not json": ({}, ["--model-kwargs", "{width"], "--model-kwargs"),
    "num classes negative": ({}, ["--num-classes", "-3"], "--num-classes"),
    "num classes zero": ({}, ["--num-classes", "0"], "--num-classes"),
    "scale huge": ({}, ["--scale", "1e6"], "--scale"),
    "ignore index is a class": ({}, ["--ignore-index", "1"], "--ignore-index"),
    "figures negative": ({}, ["--figures", "-1"], "--figures"),
    "memory budget zero": ({}, ["--memory-budget", "0"], "--memory-budget"),
    "memory budget negative": ({}, ["--memory-budget", "-5"], "--memory-budget"),
    "every zero": ({}, ["--every", "0"], "--every"),
    "limit zero": ({}, ["--limit", "0"], "--limit"),
    "fdr method": ({}, ["--method", "fdr_bh"], "false discovery rate", "--allow-fdr"),
    "fdr alias": ({}, ["--method", "fdr_i"], "--allow-fdr"),
    "sigma not a number": ({}, ["--sigma", "x"], "--sigma"),
}


@pytest.mark.parametrize("case", list(MISUSES))
def test_image_misuse_is_one_line_and_exit_2(env, tmp_path, capsys, case):
    _, args = env
    kw, extra, *words = MISUSES[case]
    if case == "device cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has eight GPUs")
    one_line_error(capsys, args(tmp_path / "out", *extra, **kw), *words)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_cuda_on_a_cpu_build(env, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    _, args = env
    one_line_error(capsys, args(tmp_path / "out", "--device", "cuda"), "--device")


def test_out_is_a_file_or_below_one(env, capsys):
    root, args = env
    one_line_error(capsys, args(root / "afile"), "--out", "file")
    one_line_error(capsys, args(root / "afile" / "sub"), "--out", "file")


def test_pointcloud_run_given_an_image_model(setup, tmp_path, capsys):
    _, data, _ = setup
    argv = cloud_args(data, tmp_path / "o", "--model", "mtcert_torch.data.synthetic:TinySegNet")
    one_line_error(capsys, argv, "--model")
    argv = cloud_args(data, tmp_path / "o", "--model", "hrnetv2_w18_small_v1")
    one_line_error(capsys, argv, "--model")


def test_allow_fdr_runs(env, tmp_path, capsys):
    _, args = env
    assert main(args(tmp_path / "fdr", "--method", "fdr_bh", "--allow-fdr", "--limit", "1")) == 0
    assert "SegCertify fdr_bh" in capsys.readouterr().out


def test_interrupt_keeps_results_and_exits_130(env, tmp_path, capsys, monkeypatch):
    import mtcert_torch.runs.loop as evaluation

    _, args = env
    real, calls = evaluation.certify_item, []

    def interrupted_on_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(evaluation, "certify_item", interrupted_on_second)
    out = tmp_path / "int"
    assert main(args(out)) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and str(out) in err
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(evaluation, "certify_item", real)
    assert main(args(out)) == 0  # resumes: the lock was released
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 3


def test_second_writer_refused_and_stale_lock_taken_over(env, tmp_path, capsys):
    _, args = env
    out = tmp_path / "locked"
    assert main(args(out, "--limit", "1")) == 0
    config = json.loads((out / "config.json").read_text())
    holder = ResultsWriter(out, config)  # another writer holds the folder
    try:
        one_line_error(capsys, args(out), "in use by another run", f"pid {os.getpid()}")
    finally:
        holder.close()
    # A lock file left by a killed run holds no lock: the next run proceeds.
    (out / ".lock").write_text("pid 999999999 on a-dead-host")
    assert main(args(out)) == 0
    assert len((out / "per_image.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow  # a second process starts torch
def test_concurrent_process_holds_the_lock(env, tmp_path, capsys):
    _, args = env
    out = tmp_path / "concurrent"
    out.mkdir()
    code = (
        "import sys, time; from mtcert_torch.runs.store import FolderLock; "
        f"FolderLock(__import__('pathlib').Path({str(out)!r}) / '.lock').acquire(); "
        "print('locked', flush=True); time.sleep(60)"
    )
    env_vars = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env_vars)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "locked"
        one_line_error(capsys, args(out), "in use by another run")
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.1)
    assert main(args(out, "--limit", "1")) == 0  # released when that process died


def test_records_unique_torn_line_reported_and_repaired(env, tmp_path, capsys):
    _, args = env
    out = tmp_path / "edit"
    assert main(args(out)) == 0
    path = out / "per_image.jsonl"
    lines = path.read_text().splitlines()
    # A record duplicated by hand counts once.
    path.write_text("\n".join([lines[0], *lines, ""]))
    capsys.readouterr()
    assert main(args(out)) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("| 3 |")
    # A torn line in the middle of the file: reported with its number and the repair command.
    path.write_text("\n".join([lines[0], lines[1][:20], lines[2], ""]))
    err = one_line_error(capsys, args(out), "line 2", "repair --out")
    assert main(["repair", "--out", str(out)]) == 0
    assert "moved lines: 2" in capsys.readouterr().out
    assert (out / "per_image.jsonl.corrupt").read_text() == lines[1][:20] + "\n"
    assert main(args(out)) == 0  # the removed image is certified again
    again = [json.loads(x)["name"] for x in path.read_text().splitlines()]
    assert sorted(again) == sorted(json.loads(x)["name"] for x in lines)
    assert "python -m mtcert_torch repair" in err


@pytest.mark.slow  # a process starts torch
def test_help_version_and_prog():
    parser = build_parser()
    assert parser.prog == "python -m mtcert_torch"
    for command in ("certify", "certify-pointcloud", "repair"):
        sub = parser._subparsers._group_actions[0].choices[command]
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                text = sub.formatter_class("x")._get_help_string(action)
                assert action.help and ("(default" in text or "(required)" in text), action.dest
    out = subprocess.run([sys.executable, "-m", "mtcert_torch", "--version"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    assert (
        out.returncode == 0 and out.stdout.strip() == f"python -m mtcert_torch {mtcert.__version__}"
    )
