"""``torchrun`` without a shared folder: each rank writes its own files into its own
``--out`` (``{rank}`` placeholder), rank 0 gathers every rank's records over the
process group (gloo on CPU) and its ``per_image.csv`` and summary equal those of one
process that certified every image; a rank resumes from its own files alone."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtcert.stored.counts import read_counts
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.loop import check_same_settings, rank_folder
from mtcert_torch.runs.store import ResultsWriter

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[2]
NAMES = [f"shape_{i:04d}" for i in range(5)]
#: Columns that time the run: they differ between any two runs.
TIMES = {"seconds", "seconds_sampling", "seconds_statistics", "seconds_base", "t"}

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with gloo is not available",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), root / "tiny.pt")
    x, y = make_shapes(len(NAMES), 12, seed=0)
    write_folder_dataset(root / "data", x, y)

    def args(out):
        return ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
                '{"width": 4}', "--num-classes", "3", "--checkpoint", str(root / "tiny.pt"),
                "--data", str(root / "data"), "--sigma", "0.25", "--n0", "4", "--n", "16",
                "--alpha", "0.1", "--out", str(out), "--batch-size", "16", "--no-progress",
                "--figures", "1", "--radii", "--save-counts"]  # fmt: skip

    return args


def torchrun(args, timeout=120):
    """``python -m torch.distributed.run --nproc-per-node 2`` of ``python -m mtcert_torch``.

    ``--`` ends torchrun's own options: without it torchrun reads ``--n`` as an
    ambiguous abbreviation of its ``--nnodes``, ``--nproc-per-node``, ...
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "mtcert_torch", "--", *args]  # fmt: skip
    environ = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def table(path):
    """A CSV file's rows without the timing columns."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(f)]


def names(jsonl):
    return [json.loads(line)["name"] for line in jsonl.read_text().splitlines()]


@needs_gloo
@pytest.mark.slow  # two torchrun launches of two processes each
def test_torchrun_separate_folders_equal_one_process_and_resume(env, tmp_path):
    args = env
    single = tmp_path / "single"
    assert main(args(single)) == 0
    out = torchrun(args(tmp_path / "rank{rank}"))
    assert "SegCertify holm" in out and "JointRadii" in out  # rank 0 prints the summary
    r0, r1 = tmp_path / "rank0", tmp_path / "rank1"
    assert not (tmp_path / "rank{rank}").exists()
    # each rank's own files, in its own folder; the run-wide files on rank 0 only
    assert names(r0 / "per_image.rank0.jsonl") == NAMES[0::2]
    assert names(r1 / "per_image.rank1.jsonl") == NAMES[1::2]
    assert [row["name"] for row in table(r1 / "per_image.rank1.csv")] == NAMES[1::2]
    for folder in (r0, r1):  # each folder can be resumed on its own
        assert json.loads((folder / "config.json").read_text()) == json.loads(
            (single / "config.json").read_text()
        )
    assert not (r1 / "summary.csv").exists() and not (r1 / "per_image.csv").exists()
    assert sorted(p.name for p in (r0 / "figures").iterdir()) == ["shape_0000.png"]
    # rank 0's summary and per-image table equal those of one process, row for row
    assert [row["name"] for row in table(r0 / "per_image.csv")] == NAMES
    assert table(r0 / "per_image.csv") == table(single / "per_image.csv")
    assert table(r0 / "summary.csv") == table(single / "summary.csv")
    rows = table(r0 / "summary.csv")
    assert rows[1]["guarantee"].startswith("per image: P(a false certified pixel) <= 0.1 (FWER)")
    assert rows[1]["images"] == "5"
    # stored counts: one file per rank, together the single run's
    stored = read_counts([r0 / "counts.mtcounts", r1 / "counts.rank1.mtcounts"])
    alone = read_counts(single / "counts.mtcounts")
    assert sorted(stored.names) == NAMES
    for name in NAMES:
        a, b = stored[name], alone[name]
        assert (a.guess == b.guess).all() and (a.hits == b.hits).all()

    # resume: rank 1 lost its last record; only that image is certified again
    own0 = (r0 / "per_image.rank0.jsonl").read_bytes()
    lines1 = (r1 / "per_image.rank1.jsonl").read_text().splitlines(keepends=True)
    (r1 / "per_image.rank1.jsonl").write_text(lines1[0])
    (r0 / "summary.csv").unlink()
    (r0 / "per_image.csv").unlink()
    out = torchrun(args(tmp_path / "rank{rank}"))
    assert "SegCertify holm" in out
    assert (r0 / "per_image.rank0.jsonl").read_bytes() == own0
    again = (r1 / "per_image.rank1.jsonl").read_text().splitlines(keepends=True)
    assert again[0] == lines1[0] and len(again) == 2 and again[1] != lines1[1]
    assert table(r0 / "per_image.csv") == table(single / "per_image.csv")
    assert table(r0 / "summary.csv") == table(single / "summary.csv")


def test_rank_folder_placeholder(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_folder("runs/cs-{rank}") == "runs/cs-0"
    assert rank_folder(Path("runs/{rank}/cs")) == Path("runs/0/cs")
    assert rank_folder("runs/cs") == "runs/cs"
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun's environment, before the group exists
    monkeypatch.setenv("RANK", "3")
    assert rank_folder("runs/cs-{rank}") == "runs/cs-3"


def test_writer_names_files_by_rank_when_several(tmp_path):
    one = ResultsWriter(tmp_path / "a", {"x": 1})
    assert one.jsonl.name == "per_image.jsonl" and one.csv.name == "per_image.csv"
    one.close()
    for rank in (0, 1):  # two ranks in one folder never write the same file
        w = ResultsWriter(tmp_path / "b", {"x": 1}, rank=rank, world=2)
        assert w.jsonl.name == f"per_image.rank{rank}.jsonl"
        assert w.csv.name == f"per_image.rank{rank}.csv"
        w.close()
    assert json.loads((tmp_path / "b" / "config.json").read_text()) == {"x": 1}
    with pytest.raises(ValueError, match="rank"):
        ResultsWriter(tmp_path / "c", {"x": 1}, rank=2, world=2)


def _settings_worker(rank, store, configs, out):
    """Rank ``rank`` of two: check its ``configs`` in turn; write what each check said."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    said = []
    try:
        for config in configs[rank]:
            try:
                check_same_settings(config, local=("checkpoint", "data"))
                said.append("ok")
            except ValueError as exc:
                said.append(str(exc))
    finally:
        dist.destroy_process_group()
    Path(out, f"{rank}.json").write_text(json.dumps(said))


@needs_gloo
@pytest.mark.slow  # two processes start torch
def test_ranks_with_other_weights_are_refused(tmp_path):
    base = {"sigma": 0.25, "checkpoint": "/a/tiny.pt", "data": "/a/data", "model_sha256": "ab"}
    moved = {**base, "checkpoint": "/b/tiny.pt", "data": "/b/data"}  # another machine's paths
    other = {**moved, "model_sha256": "cd"}  # another checkpoint
    configs = ([base, base], [moved, other])
    mp.spawn(_settings_worker, args=(tmp_path / "store", configs, tmp_path), nprocs=2)
    for rank in (0, 1):
        said = json.loads((tmp_path / f"{rank}.json").read_text())
        assert said[0] == "ok"
        assert "model_sha256: rank 0 'ab' vs rank 1 'cd'" in said[1], said[1]
        assert "checkpoint" not in said[1].split("(")[1].split(")")[0]
