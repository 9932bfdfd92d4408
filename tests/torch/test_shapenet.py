"""ShapeNet-part loader: the category/part table and the on-disk formats, on tiny files."""

from __future__ import annotations

import numpy as np
import pytest

from mtcert_torch.data.shapenet import (
    CATEGORIES,
    NUM_PARTS,
    PART_RANGES,
    SYNSETS,
    ShapeNetPart,
    category_index,
    part_to_category,
    read_categories,
    read_shape,
    read_split,
)
from tests.helpers.shapenet import CATEGORY_FILE, shape, write_dataset

# The reference PointNet++ code's table (yanx27/Pointnet_Pointnet2_pytorch,
# test_partseg.py ``seg_classes``), transcribed independently of the package.
UPSTREAM_SEG_CLASSES = {
    "Earphone": [16, 17, 18],
    "Motorbike": [30, 31, 32, 33, 34, 35],
    "Rocket": [41, 42, 43],
    "Car": [8, 9, 10, 11],
    "Laptop": [28, 29],
    "Cap": [6, 7],
    "Skateboard": [44, 45, 46],
    "Mug": [36, 37],
    "Guitar": [19, 20, 21],
    "Bag": [4, 5],
    "Lamp": [24, 25, 26, 27],
    "Table": [47, 48, 49],
    "Airplane": [0, 1, 2, 3],
    "Pistol": [38, 39, 40],
    "Chair": [12, 13, 14, 15],
    "Knife": [22, 23],
}


def test_table_matches_upstream():
    assert len(CATEGORIES) == 16 and NUM_PARTS == 50
    assert list(CATEGORIES) == sorted(UPSTREAM_SEG_CLASSES)  # the one-hot order is alphabetical
    for name, (a, b) in zip(CATEGORIES, PART_RANGES, strict=True):
        assert list(range(a, b)) == UPSTREAM_SEG_CLASSES[name]
    owner = part_to_category()
    for label in range(50):
        assert UPSTREAM_SEG_CLASSES[CATEGORIES[owner[label]]].count(label) == 1
    assert [tuple(line.split("\t")) for line in CATEGORY_FILE.splitlines()] == list(SYNSETS.items())


def test_category_index():
    assert category_index("Table") == 15
    assert category_index("02691156") == 0
    assert category_index(np.int64(3)) == 3
    for bad in ("Sofa", 16, -1, True, 2.0):
        with pytest.raises(ValueError, match="category"):
            category_index(bad)


def test_read_shape_roundtrip(tmp_path):
    rows = shape(40, [12, 13, 14, 15])
    np.savetxt(tmp_path / "a.txt", rows, fmt="%.6f %.6f %.6f %.6f %.6f %.6f %d")
    points, labels = read_shape(tmp_path / "a.txt")
    assert points.dtype == np.float32 and points.shape == (40, 6)
    assert labels.dtype == np.int64
    np.testing.assert_allclose(points, rows[:, :6], atol=1e-6)
    np.testing.assert_array_equal(labels, rows[:, 6])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no points"),
        ("0 0 0 0 0 1 3\n0 0 0 0 1 3\n", r"a\.txt:2: expected 7 numbers"),
        ("0 0 0 0 0 1 3\n0 0 x 0 0 1 3\n", r"a\.txt:2: not a number"),
        ("0 0 nan 0 0 1 3\n", r"a\.txt:1: non-finite"),
        ("0 0 0 0 0 1 3.5\n", "integer in"),
        ("0 0 0 0 0 1 50\n", r"\[0, 50\)"),
        ("0 0 0 0 0 1 -1\n", "part label"),
    ],
)
def test_read_shape_bad_rows(tmp_path, text, message):
    (tmp_path / "a.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_shape(tmp_path / "a.txt")


def test_read_shape_missing(tmp_path):
    with pytest.raises(ValueError, match="shape file not found"):
        read_shape(tmp_path / "nope.txt")


def test_categories_and_split(tmp_path):
    root = write_dataset(
        tmp_path / "d",
        {("03001627", "c1"): shape(8, [12]), ("02691156", "a1"): shape(8, [0])},
        splits={"train": [("03001627", "c1")], "val": [("02691156", "a1")], "test": []},
    )
    assert read_categories(root) == SYNSETS
    assert read_split(root, "train") == [("03001627", "c1")]
    assert read_split(root, "trainval") == [("03001627", "c1"), ("02691156", "a1")]
    assert read_split(root, "test") == []
    with pytest.raises(ValueError, match="split must be one of"):
        read_split(root, "dev")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Airplane 02691156 extra\n", "expected '<category> <synset>'"),
        ("Sofa 01234567\n", "unknown category 'Sofa'"),
        ("Bag 02773838\nBag 02773838\n", "listed twice"),
        ("\n\n", "no categories"),
    ],
)
def test_bad_category_file(tmp_path, content, message):
    (tmp_path / "synsetoffset2category.txt").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_categories(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(ValueError, match="category file not found"):
        read_categories(tmp_path)
    with pytest.raises(ValueError, match="test split file not found"):
        read_split(tmp_path, "test")
    split_dir = tmp_path / "train_test_split"
    split_dir.mkdir()
    (split_dir / "shuffled_test_file_list.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid json"):
        read_split(tmp_path, "test")
    (split_dir / "shuffled_test_file_list.json").write_text('["nofolder"]')
    with pytest.raises(ValueError, match="entry 0"):
        read_split(tmp_path, "test")


def test_dataset_items(tmp_path):
    chair = shape(30, [12, 13, 15], seed=1)
    plane = shape(5, [0, 3], seed=2)
    root = write_dataset(tmp_path / "d", {("03001627", "c1"): chair, ("02691156", "a1"): plane})
    data = ShapeNetPart(root, "test", npoints=16, seed=3)
    assert len(data) == 2
    name, points, cat, labels = data[0]
    assert name == "03001627/c1" and cat == CATEGORIES.index("Chair")
    assert points.shape == (16, 6) and labels.shape == (16,)
    # Without replacement from 30 points: 16 distinct rows of the file, labels alongside.
    rows = {tuple(np.round(r, 4)) for r in chair}
    picked = [tuple(np.round(np.r_[p, lab], 4)) for p, lab in zip(points, labels, strict=True)]
    assert len(set(picked)) == 16 and set(picked) <= rows
    # A 5-point shape is sampled with replacement; reading twice gives the same item.
    _, p1, cat1, l1 = data[1]
    assert cat1 == 0 and p1.shape == (16, 6) and set(l1.tolist()) <= {0, 3}
    np.testing.assert_array_equal(data[1].points, p1)
    assert data[-1].name == "02691156/a1"
    with pytest.raises(IndexError):
        data[2]
    # npoints=None keeps the file order, normals=False drops the normals.
    full = ShapeNetPart(root, "test", npoints=None, normals=False)[0]
    np.testing.assert_allclose(full.points, chair[:, :3], atol=1e-5)
    np.testing.assert_array_equal(full.labels, chair[:, 6])
    # normalize=True: the whole shape is centred and scaled to the unit sphere.
    norm = ShapeNetPart(root, "test", npoints=None, normalize=True)[0].points[:, :3]
    np.testing.assert_allclose(norm.mean(0), 0, atol=1e-5)
    assert np.linalg.norm(norm, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    only = ShapeNetPart(root, "test", categories=["Airplane"], npoints=16, seed=3)
    assert len(only) == 1 and only[0].category == 0
    np.testing.assert_array_equal(only[0].points, p1)  # same points through a filter
    other = ShapeNetPart(root, "test", npoints=16, seed=4)[1].points
    assert not np.array_equal(other, p1)


def test_dataset_errors(tmp_path):
    root = write_dataset(tmp_path / "d", {("03001627", "c1"): shape(6, [0, 1])})
    with pytest.raises(ValueError, match=r"outside the Chair part range \[12, 16\)"):
        ShapeNetPart(root, "test")[0]
    (root / "03001627" / "c1.txt").unlink()
    with pytest.raises(ValueError, match="shape file not found"):
        ShapeNetPart(root, "test")[0]
    few = write_dataset(
        tmp_path / "e", {("03001627", "c1"): shape(6, [12])}, categories="Airplane 02691156\n"
    )
    with pytest.raises(ValueError, match="synset 03001627 is not in"):
        ShapeNetPart(few, "test")
    with pytest.raises(ValueError, match="not listed"):
        ShapeNetPart(few, "train", categories=["Chair"])
    with pytest.raises(ValueError, match="npoints"):
        ShapeNetPart(root, "test", npoints=0)
