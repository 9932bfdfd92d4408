"""A tiny ShapeNet-part tree on disk, and the point-cloud command line that runs on it.

Plain numpy and files (no torch): the loader's tests, the point-cloud command's
tests and the recertification tests write their data sets with these.
"""

from __future__ import annotations

import json

import numpy as np

CHAIR, PLANE = "03001627", "02691156"
#: A PointNet++ small enough for a CPU test (``--model-kwargs``).
TINY = '{"npoints": [16, 4]}'
#: synsetoffset2category.txt as the ShapeNet-part release writes it.
CATEGORY_FILE = """Airplane\t02691156
Bag\t02773838
Cap\t02954340
Car\t02958343
Chair\t03001627
Earphone\t03261776
Guitar\t03467517
Knife\t03624134
Lamp\t03636649
Laptop\t03642806
Motorbike\t03790512
Mug\t03797390
Pistol\t03948459
Rocket\t04099429
Skateboard\t04225987
Table\t04379243
"""


def write_dataset(root, shapes, *, categories=CATEGORY_FILE, splits=None):
    """Write a tiny dataset: ``shapes`` maps (synset, token) to an (M, 7) array."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "synsetoffset2category.txt").write_text(categories)
    for (synset, token), rows in shapes.items():
        (root / synset).mkdir(exist_ok=True)
        np.savetxt(root / synset / f"{token}.txt", rows, fmt="%.6f %.6f %.6f %.6f %.6f %.6f %d")
    split_dir = root / "train_test_split"
    split_dir.mkdir(exist_ok=True)
    splits = splits or {"train": list(shapes), "val": [], "test": list(shapes)}
    for name, items in splits.items():
        entries = [f"shape_data/{s}/{t}" for s, t in items]
        (split_dir / f"shuffled_{name}_file_list.json").write_text(json.dumps(entries))
    return root


def shape(m, labels, seed=0):
    """``m`` points (x, y, z, normal, part label) with labels drawn from ``labels``."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((m, 7))
    rows[:, :3] = rng.normal(size=(m, 3)) * 3 + 5
    n = rng.normal(size=(m, 3))
    rows[:, 3:6] = n / np.linalg.norm(n, axis=1, keepdims=True)
    rows[:, 6] = rng.choice(labels, size=m)
    return np.round(rows, 6)


def cloud_args(root, out, *extra, ckpt=None):
    """``certify-pointcloud`` on the tiny model: data ``root``, results ``out``."""
    args = ["certify-pointcloud", "--model-kwargs", TINY, "--data", str(root), "--out", str(out),
            "--sigma", "0.25", "--tau", "0.6", "--alpha", "0.2", "--n0", "2", "--n", "16",
            "--votes", "1", "--npoints", "64",
            "--batch-size", "4", "--no-progress", *extra]  # fmt: skip
    if ckpt is not None:
        args += ["--checkpoint", str(ckpt)]
    return args
