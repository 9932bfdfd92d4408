"""The plugin's tests: skipped here, once, where torch cannot be imported; shared fixtures.

Nothing at module level imports torch: this file is read even where torch is missing.
"""

import importlib.util

import pytest

from tests.helpers.shapenet import CHAIR, PLANE, shape, write_dataset

if importlib.util.find_spec("torch") is None:
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config):
    if importlib.util.find_spec("torch") is None:
        return "tests/torch: skipped (torch is not importable)"
    return None


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny ShapeNet-part tree and an untrained tiny PointNet++: ``(tmp, root, ckpt)``.

    For the ``certify-pointcloud`` tests (:func:`tests.helpers.shapenet.cloud_args`).
    """
    import torch

    from mtcert_torch.models import pointnet2_part_seg_msg

    tmp = tmp_path_factory.mktemp("pc")
    root = write_dataset(
        tmp / "shapenet",
        {
            (CHAIR, "c1"): shape(96, [12, 13, 14, 15], seed=1),
            (CHAIR, "c2"): shape(80, [12, 14], seed=2),
            (PLANE, "a1"): shape(128, [0, 1, 2, 3], seed=3),
        },
    )
    torch.manual_seed(0)
    net = pointnet2_part_seg_msg(npoints=(16, 4))
    ckpt = tmp / "best_model.pth"
    # The reference train_partseg.py layout.
    torch.save({"epoch": 1, "model_state_dict": net.state_dict(), "optimizer_state_dict": {}}, ckpt)
    return tmp, root, ckpt
