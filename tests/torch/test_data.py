"""Datasets: folder layout, Cityscapes layout and train ids, Pascal-Context map, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from mtcert_torch.data.images import (
    CITYSCAPES_ID_TO_TRAINID,
    CityscapesDataset,
    FolderDataset,
    open_dataset,
    pascal_context_label_map,
)

pytestmark = pytest.mark.torch


def save_rgb(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def save_label(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def test_folder_dataset_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(5, 6, 3))
    lab = rng.integers(0, 3, size=(5, 6))
    lab[0, 0] = 255
    save_rgb(tmp_path / "images" / "a.png", img)
    save_label(tmp_path / "labels" / "a.png", lab)
    ds = open_dataset(tmp_path, num_classes=3)
    assert isinstance(ds, FolderDataset) and len(ds) == 1 and ds.names == ["a"]
    name, image, target = ds[0]
    assert name == "a" and image.shape == (3, 5, 6) and image.dtype == torch.float32
    assert torch.allclose(image, torch.from_numpy(img).permute(2, 0, 1).float() / 255)
    assert torch.equal(target, torch.from_numpy(lab))
    # resize on load: bilinear image, nearest labels
    name, image, target = FolderDataset(
        tmp_path / "images", tmp_path / "labels", num_classes=3, size=(10, 12)
    )[0]
    assert image.shape == (3, 10, 12) and set(target.unique().tolist()) <= {0, 1, 2, 255}


def test_cityscapes_layout_maps_to_train_ids(tmp_path):
    raw = np.array([[7, 8, 0], [26, 33, 4]])  # road, sidewalk, unlabeled, car, bicycle, static
    for city, stem in (("aachen", "aachen_000000_000019"), ("bonn", "bonn_000001_000019")):
        save_rgb(
            tmp_path / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", np.zeros((2, 3, 3))
        )
        save_label(tmp_path / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", raw)
    ds = open_dataset(tmp_path, num_classes=19)
    assert isinstance(ds, CityscapesDataset) and ds.num_classes == 19
    assert ds.names == ["aachen_000000_000019", "bonn_000001_000019"]
    _, _, target = ds[1]
    assert target.tolist() == [[0, 1, 255], [13, 18, 255]]
    assert len(CITYSCAPES_ID_TO_TRAINID) == 19
    assert sorted(CITYSCAPES_ID_TO_TRAINID.values()) == list(range(19))
    assert len(CityscapesDataset(tmp_path, every=2)) == 1


def test_pascal_context_map_ignores_background():
    lut = pascal_context_label_map()
    assert lut[0] == 255 and lut[1] == 0 and lut[59] == 58 and lut[60] == 255


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="images folder not found"):
        FolderDataset(tmp_path / "images", tmp_path / "labels", num_classes=3)
    save_rgb(tmp_path / "images" / "a.png", np.zeros((4, 4, 3)))
    (tmp_path / "labels").mkdir()
    with pytest.raises(ValueError, match=r"no label for image a\.png"):
        open_dataset(tmp_path, num_classes=3)
    save_label(tmp_path / "labels" / "a.png", np.zeros((4, 5)))
    with pytest.raises(ValueError, match="size"):
        open_dataset(tmp_path, num_classes=3)[0]
    save_label(tmp_path / "labels" / "a.png", np.full((4, 4), 7))
    with pytest.raises(ValueError, match="outside"):
        open_dataset(tmp_path, num_classes=3)[0]
    save_rgb(tmp_path / "labels" / "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="single-channel"):
        open_dataset(tmp_path, num_classes=3)[0]
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        open_dataset(tmp_path, num_classes=3)[0]
    with pytest.raises(ValueError, match="empty"):
        FolderDataset(tmp_path / "labels" / "..", tmp_path / "labels", num_classes=3)
    with pytest.raises(ValueError, match="Cityscapes folder not found"):
        open_dataset(tmp_path, num_classes=19, layout="cityscapes")
    with pytest.raises(ValueError, match="layout"):
        open_dataset(tmp_path, num_classes=3, layout="coco")


def test_figure_colours_abstain_white_ignore_black(tmp_path):
    from mtcert_torch.runs.figures import colorize, default_palette, save_panels

    pal = default_palette(3)
    rgb = colorize(np.array([[0, 1], [-1, 255]]), pal)
    assert rgb[0, 0].tolist() == pal[0].tolist() and rgb[0, 1].tolist() == pal[1].tolist()
    assert rgb[1, 0].tolist() == [255, 255, 255] and rgb[1, 1].tolist() == [0, 0, 0]
    assert not (default_palette(30) == 255).all(axis=1).any()
    assert not (default_palette(30) == 0).all(axis=1).any()  # black: unlabelled
    path = tmp_path / "fig.png"
    save_panels(
        path,
        np.random.default_rng(0).random((3, 8, 8)),
        np.zeros((8, 8), int),
        -np.ones((8, 8), int),
        pal,
        base=np.zeros((8, 8), int),
        title="R=0.17",
    )
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    # four panels side by side at 150 dpi: the base panel (all class 0) in its colour, the
    # certified panel (all abstained) white
    h, w = arr.shape[:2]
    assert w > 2 * h and w >= 1500
    rows = slice(int(0.4 * h), int(0.5 * h))
    assert (arr[rows, int(0.58 * w) : int(0.68 * w)] == pal[0]).all()
    assert (arr[rows, int(0.83 * w) : int(0.93 * w)] == 255).all()
