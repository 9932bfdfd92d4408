"""End to end on CPU: train a tiny net with noise on synthetic shapes, certify it,
check the certificate empirically; the CLI with resumption; torch.distributed (gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mtcert.certify.metrics import CertifiedSegmentationMetrics
from mtcert_torch.certifier import Certifier
from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[2]
SIZE = 24
CERT = dict(sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """TinySegNet trained for 60 steps with σ = 0.25 noise (about 10 s on one core)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = make_shapes(64, SIZE, seed=0)
    net = TinySegNet(3, 16)
    adapter = SegmentationAdapter(net, num_classes=3)
    train_with_noise(adapter, x, y, sigma=0.25, steps=60, batch_size=16, lr=1e-2, seed=0)
    root = tmp_path_factory.mktemp("e2e")
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, root / "tiny.pt"
    )
    xt, yt = make_shapes(6, SIZE, seed=1)
    write_folder_dataset(root / "data", xt, yt)
    return adapter, xt, yt, root


def boundary_mask(target):
    """Pixels whose 3x3 neighbourhood holds more than one class."""
    t = target.float()[None, None]
    return (F.max_pool2d(t, 3, 1, 1) != -F.max_pool2d(-t, 3, 1, 1))[0, 0].numpy()


def test_certified_accuracy_close_to_base_and_abstentions_on_boundaries(trained):
    adapter, xt, yt, _ = trained
    c = Certifier(adapter, batch_size=110, seed=0)
    base, cert_m = CertifiedSegmentationMetrics(3), CertifiedSegmentationMetrics(3)
    on_b = off_b = n_b = n_off = 0
    certified_correct = certified = 0
    for x, y in zip(xt, yt, strict=True):
        cert = c.certify(x, **CERT)
        cert_m.update(cert.labels, y.numpy())
        base.update(c.predict(x), y.numpy())
        a = cert.labels < 0
        b = boundary_mask(y)
        on_b += a[b].sum()
        n_b += b.sum()
        off_b += a[~b].sum()
        n_off += (~b).sum()
        certified_correct += (cert.labels[~a] == y.numpy()[~a]).sum()
        certified += (~a).sum()
    base_acc, cert_acc = base.compute().accuracy, cert_m.compute().accuracy
    # Measured: base 0.95-0.97, certified 0.87-0.92 with ~10 % abstentions on 24x24
    # images where a third of all pixels lie next to a boundary.
    assert base_acc > 0.9
    assert cert_acc > base_acc - 0.12
    # Abstention replaces errors: certified pixels are more accurate than the base model.
    assert certified_correct / certified >= base_acc
    # Abstentions concentrate on class boundaries (measured ~50 % vs ~1 %).
    assert on_b / n_b > 10 * off_b / n_off
    assert on_b / (on_b + off_b) > 0.75


def test_certified_pixels_keep_label_under_random_l2_perturbations(trained):
    # Empirical check of the guarantee: for δ uniform on the ℓ2 sphere of radius R the
    # smoothed prediction (majority of 200 noisy samples) at x + δ keeps the certified
    # label.  Random directions are far from worst case, so we require ≥ 99 % of the
    # certified pixels to agree (Monte Carlo majority errors included).
    adapter, xt, _, _ = trained
    c = Certifier(adapter, batch_size=100, seed=1)
    g = torch.Generator().manual_seed(2)
    agree = total = 0
    for x in xt[:2]:
        cert = c.certify(x, **CERT)
        ok = cert.labels >= 0
        for _ in range(2):
            d = torch.randn(x.shape, generator=g)
            d *= cert.radius / d.norm()
            smoothed = c.predict(x + d, sigma=CERT["sigma"], n=200)
            agree += (smoothed[ok] == cert.labels[ok]).sum()
            total += ok.sum()
    assert total > 0 and agree / total >= 0.99


def cli_args(root, out, *extra):
    return [
        "certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
        '{"width": 16}', "--num-classes", "3", "--checkpoint", str(root / "tiny.pt"),
        "--data", str(root / "data"), "--sigma", "0.25", "--tau", "0.75", "--n0", "10",
        "--n", "100", "--alpha", "0.001", "--out", str(out), "--batch-size", "64",
        "--no-progress", "--figures", "2", *extra,
    ]  # fmt: skip


def records(out):
    recs = []
    for p in sorted(Path(out).glob("per_image*.jsonl")):
        recs += [json.loads(line) for line in p.read_text().splitlines()]
    drop = ("seconds", "seconds_sampling", "seconds_statistics", "seconds_base")
    return {r["name"]: {k: v for k, v in r.items() if k not in drop} for r in recs}


def test_cli_outputs_resumption_and_determinism(trained, tmp_path, capsys):
    _, _, _, root = trained
    out = tmp_path / "run"
    assert main(cli_args(root, out, "--limit", "2")) == 0
    first = (out / "per_image.jsonl").read_text().splitlines()
    assert len(first) == 2
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "shape_0000.png", "shape_0001.png"]  # fmt: skip
    assert "| base model |" in (out / "summary.md").read_text()
    # an interrupted write leaves a torn line: it is dropped and the image redone
    with (out / "per_image.jsonl").open("a") as f:
        f.write('{"name": "shape_0002", "hei')
    assert main(cli_args(root, out, "--limit", "4")) == 0
    lines = (out / "per_image.jsonl").read_text().splitlines()
    assert lines[:2] == first and len(lines) == 4
    csv_rows = (out / "per_image.csv").read_text().splitlines()
    assert len(csv_rows) == 5 and csv_rows[0].startswith("name,")
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and summary[1].startswith("base model") and summary[2].endswith(",4")
    # per-image seeds: a resumed run equals an uninterrupted one exactly
    fresh = tmp_path / "fresh"
    assert main(cli_args(root, fresh, "--limit", "4")) == 0
    assert records(out) == records(fresh)
    assert "SegCertify holm" in capsys.readouterr().out
    # a different setting may not resume into the same folder
    with pytest.raises(SystemExit) as e:
        main(cli_args(root, out, "--limit", "4", "--sigma", "0.5"))
    assert e.value.code == 2 and "different settings" in capsys.readouterr().err
    for bad, msg in (("--tau", "tau"), ("--alpha", "alpha"), ("--n", "n"), ("--method", "method")):
        value = {"--method": "holmes"}.get(bad, "0")
        with pytest.raises(SystemExit):
            main(cli_args(root, tmp_path / "bad", bad, value))
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit) as e:
        main(cli_args(root, tmp_path / "x", "--model", "no_such_module:Net"))
    assert e.value.code == 2 and "cannot import" in capsys.readouterr().err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes start torch
def test_torch_distributed_gloo_two_processes(trained, tmp_path):
    _, _, _, root = trained
    out = tmp_path / "dist"
    env = {
        **os.environ,
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "mtcert_torch", *cli_args(root, out, "--limit", "5")]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert "SegCertify holm" in results[0][0] and results[1][0] == ""
    dist_recs = records(out)
    assert sorted(dist_recs) == [f"shape_{i:04d}" for i in range(5)]
    rank1 = (out / "per_image.rank1.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["name"] for x in rank1) == ["shape_0001", "shape_0003"]
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[2].endswith(",5")
    # sharding changes nothing: identical to a single-process run
    single = tmp_path / "single"
    assert main(cli_args(root, single, "--limit", "5")) == 0
    assert records(single) == dist_recs
    assert (single / "summary.csv").read_text().splitlines()[2].split(",")[:6] == (
        summary[2].split(",")[:6]
    )


def test_cli_registry_model_upstream_checkpoint_multiscale_flip(trained, tmp_path, capsys):
    # --model by registry name with a checkpoint in the upstream HRNet training layout
    # ({"state_dict": ...}, keys prefixed "model.", loss weights): the wiring, not accuracy.
    from mtcert_torch.models import get_model

    _, _, _, root = trained
    torch.manual_seed(3)
    net = get_model("hrnetv2_w18_small_v1", num_classes=3)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    state["loss.criterion.weight"] = torch.ones(3)
    torch.save({"epoch": 7, "state_dict": state}, tmp_path / "upstream.pth.tar")
    args = [
        "certify", "--model", "hrnetv2_w18_small_v1", "--num-classes", "3",
        "--checkpoint", str(tmp_path / "upstream.pth.tar"), "--align-corners",
        "--data", str(root / "data"), "--sigma", "0.25", "--n0", "2", "--n", "6",
        "--alpha", "0.01", "--out", str(tmp_path / "hr"), "--limit", "1", "--no-progress",
        "--scale", "0.5,1.0", "--flip", "--figures", "0",
    ]  # fmt: skip
    assert main(args) == 0
    rec = json.loads((tmp_path / "hr" / "per_image.jsonl").read_text())
    assert rec["n"] == 6 and rec["pixels"] == SIZE * SIZE
    cfg = json.loads((tmp_path / "hr" / "config.json").read_text())
    assert cfg["scales"] == [0.5, 1.0] and cfg["flip"] is True
    assert cfg["model_kwargs"] == {"align_corners": True}  # reaches the network too
    with pytest.raises(SystemExit):
        main([*args[:2], "hrnetv2_w999", *args[3:], "--out", str(tmp_path / "other")])
    assert "neither a registered model" in capsys.readouterr().err
    # a checkpoint of another width is refused with the key differences listed
    wide = {
        f"model.{k}": v for k, v in get_model("hrnetv2_w18", num_classes=3).state_dict().items()
    }
    torch.save({"state_dict": wide}, tmp_path / "w18.pth")
    bad = list(args)
    bad[args.index("--checkpoint") + 1] = str(tmp_path / "w18.pth")
    bad[args.index("--out") + 1] = str(tmp_path / "bad")
    with pytest.raises(SystemExit):
        main(bad)
    assert "checkpoint does not match HRNetV2" in capsys.readouterr().err


def test_run_demo_small(tmp_path):
    from mtcert_torch.runs.demo import run_demo

    out = tmp_path / "demo"
    kw = dict(n_train=16, n_test=2, size=16, steps=3, n=10, progress=False)
    assert run_demo(out, **kw) == 0
    assert run_demo(out, **kw) == 0  # a second run replaces the first one's results
    assert len((out / "certify" / "per_image.jsonl").read_text().splitlines()) == 2
    assert (out / "certify" / "summary.md").is_file()
    assert len(list((out / "certify" / "figures").glob("*.png"))) == 2
    # the demo closes the loop: its stored counts are re-decided without the model
    decide = out / "decide"
    for name in ("sweep.csv", "sweep.md", "radius_curve.csv", "plan.csv"):
        assert (decide / name).is_file(), name
    sweep = pd.read_csv(decide / "sweep.csv")
    direct = pd.read_csv(out / "certify" / "summary.csv").iloc[-1]  # the SEGCERTIFY row
    same = sweep[(sweep.tau == 0.75) & (sweep.method == "holm")].iloc[0]
    assert same.acc == direct.acc and same.abstain == direct.abstain  # bit for bit
    assert set(sweep.tau) == {0.6, 0.75, 0.9} and set(sweep.method) == {"holm", "bonferroni"}
