"""The resume guard: every setting that changes results is in config.json and compared.

Found as a new user would: ``--limit 1``, then ``--limit 2 --mean 0.9,0.9,0.9 --std 1,1,1``
used to exit 0 and pool both settings into one summary.
"""

import json

import pytest
import torch

from mtcert_torch.cli import main
from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from tests.helpers.shapenet import cloud_args

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    torch.manual_seed(0)
    torch.save(TinySegNet(3, 4).state_dict(), root / "tiny.pt")
    x, y = make_shapes(2, 8, seed=0)
    write_folder_dataset(root / "data", x, y)
    torch.save(TinySegNet(3, 4).state_dict(), root / "other.pt")

    def args(*extra):
        return ["certify", "--model", "mtcert_torch.data.synthetic:TinySegNet", "--model-kwargs",
                '{"width": 4}', "--num-classes", "3", "--checkpoint", str(root / "tiny.pt"),
                "--data", str(root / "data"), "--sigma", "0.25", "--n0", "2", "--n", "4",
                "--alpha", "0.1", "--out", str(root / "run"), "--batch-size", "8",
                "--no-progress", "--figures", "0", *extra]  # fmt: skip

    assert main(args("--limit", "1")) == 0
    return root, args


# One changed value per option class of the image command.
IMAGE_CHANGES = [
    ("--model-kwargs", '{"width": 5}'), ("--scale", "0.5"), ("--flip", None),
    ("--align-corners", None), ("--mean", "0.9,0.9,0.9"), ("--std", "1,1,1"),
    ("--every", "2"), ("--noise", "laplace"), ("--sigma", "0.5"), ("--tau", "0.8"),
    ("--n0", "3"), ("--n", "5"), ("--alpha", "0.2"), ("--method", "bonferroni"),
    ("--k", "2 --method generalized-holm"),
    ("--seed", "1"), ("--ignore-index", "254"), ("--num-classes", "4"), ("--autocast", "bf16"),
    ("--split", "train"), ("--adaptive-n", "sequential:max=8"),
]  # fmt: skip


@pytest.mark.parametrize(("option", "value"), IMAGE_CHANGES, ids=[c[0] for c in IMAGE_CHANGES])
def test_image_resume_refuses_every_changed_setting(image_run, capsys, option, value):
    root, args = image_run
    before = (root / "run" / "per_image.jsonl").read_text()
    change = [option] if value is None else [option, *value.split()]
    if option == "--model-kwargs":
        argv = args("--limit", "2")
        argv[argv.index(option) + 1] = value
    else:
        argv = args("--limit", "2", *change)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "different settings" in err
    assert (root / "run" / "per_image.jsonl").read_text() == before


def test_image_resume_refuses_another_checkpoint_and_keeps_k_in_csv(image_run, capsys):
    root, args = image_run
    argv = args("--limit", "2")
    argv[argv.index("--checkpoint") + 1] = str(root / "other.pt")
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "checkpoint" in capsys.readouterr().err
    config = json.loads((root / "run" / "config.json").read_text())
    keys = ("mean", "std", "split", "every", "scales", "flip", "align_corners", "noise", "sigma",
            "tau", "n0", "n", "alpha", "method", "k", "seed", "model_kwargs")  # fmt: skip
    assert all(key in config for key in keys)
    header = (root / "run" / "per_image.csv").read_text().splitlines()[0].split(",")
    assert "k" in header and header.index("k") == header.index("method") + 1
    # the same settings resume (an explicit --layout equal to the detected one included)
    assert main(args("--limit", "2", "--layout", "folder")) == 0


CLOUD_CHANGES = [("--split", "train"), ("--smoothing", "rotation"), ("--votes", "2"),
                 ("--npoints", "32"), ("--categories", "Chair")]  # fmt: skip


@pytest.mark.parametrize(("option", "value"), CLOUD_CHANGES, ids=[c[0] for c in CLOUD_CHANGES])
def test_pointcloud_resume_refuses_changed_setting(setup, tmp_path_factory, capsys, option, value):
    _, root, _ = setup
    out = tmp_path_factory.getbasetemp() / "cloud_guard"
    if not (out / "config.json").exists():
        assert main(cloud_args(root, out, "--limit", "1", "--no-base")) == 0
    with pytest.raises(SystemExit) as e:
        main(cloud_args(root, out, "--limit", "1", "--no-base", option, value))
    assert e.value.code == 2 and "different settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cloud_args(root, out, "--limit", "1", "--no-base", "--smoothing", "rotation",
                        "--axis", "z"))  # fmt: skip
    assert "axis" in capsys.readouterr().err
