"""ShapeNet-part (``shapenetcore_partanno_segmentation_benchmark_v0_normal``) on disk.

The layout read here is the one distributed with PointNet++ and used by the
paper (§6.3)::

    root/
        synsetoffset2category.txt          # "Airplane\\t02691156", one category a line
        train_test_split/
            shuffled_train_file_list.json  # ["shape_data/02691156/<token>", ...]
            shuffled_val_file_list.json
            shuffled_test_file_list.json
        02691156/<token>.txt               # one point a line: x y z nx ny nz part_label
        ...

Part labels in the files are global (0–49); each of the 16 object categories
owns a contiguous range of them (:data:`PART_RANGES`).  The object category is
an input of the segmentation model (a one-hot vector), so every item carries
its category index.  :func:`evaluation_items` makes the evaluation loop's items
of a split.  This module needs only numpy, the core's validation and the plugin's
items (:mod:`mtcert_torch.items`); the tensors for a model are made by
:mod:`mtcert_torch.tasks.pointcloud`.

References
----------
.. [1] L. Yi et al., "A Scalable Active Framework for Region Annotation in 3D
   Shape Collections", SIGGRAPH Asia 2016 (the ShapeNet-part benchmark).
.. [2] C. R. Qi, L. Yi, H. Su, L. J. Guibas, "PointNet++: Deep Hierarchical
   Feature Learning on Point Sets in a Metric Space", NeurIPS 2017.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mtcert.stats.validation import check_option, check_positive_int
from mtcert_torch.items import Item, Items

__all__ = [
    "CATEGORIES",
    "NUM_PARTS",
    "PARTS_PER_CATEGORY",
    "PART_RANGES",
    "SPLITS",
    "SYNSETS",
    "ShapeNetPart",
    "ShapeNetPartItem",
    "category_index",
    "evaluation_items",
    "part_to_category",
    "read_categories",
    "read_shape",
    "read_split",
]

#: The 16 object categories, in the order of ``synsetoffset2category.txt``; a
#: category's position here is the index of its one-hot input to the model.
CATEGORIES = (
    "Airplane",
    "Bag",
    "Cap",
    "Car",
    "Chair",
    "Earphone",
    "Guitar",
    "Knife",
    "Lamp",
    "Laptop",
    "Motorbike",
    "Mug",
    "Pistol",
    "Rocket",
    "Skateboard",
    "Table",
)
#: ShapeNetCore synset id (the data folder name) of each category.
SYNSETS = dict(
    zip(
        CATEGORIES,
        (
            "02691156",
            "02773838",
            "02954340",
            "02958343",
            "03001627",
            "03261776",
            "03467517",
            "03624134",
            "03636649",
            "03642806",
            "03790512",
            "03797390",
            "03948459",
            "04099429",
            "04225987",
            "04379243",
        ),
        strict=True,
    )
)
#: Number of parts of each category, in :data:`CATEGORIES` order.
PARTS_PER_CATEGORY = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)
#: Half-open global part-label range ``(start, stop)`` of each category.
PART_RANGES = tuple(
    (int(a), int(b))
    for a, b in zip(
        np.cumsum((0, *PARTS_PER_CATEGORY[:-1])), np.cumsum(PARTS_PER_CATEGORY), strict=True
    )
)
NUM_PARTS = PART_RANGES[-1][1]  # 50
SPLITS = ("train", "val", "test", "trainval")


def category_index(category) -> int:
    """Index in :data:`CATEGORIES` of a category given by name, synset id or index.

    >>> category_index("Chair"), category_index("03001627"), category_index(4)
    (4, 4, 4)
    """
    if isinstance(category, (int, np.integer)) and not isinstance(category, bool):
        if 0 <= int(category) < len(CATEGORIES):
            return int(category)
    elif isinstance(category, str):
        if category in SYNSETS:
            return CATEGORIES.index(category)
        for i, name in enumerate(CATEGORIES):
            if SYNSETS[name] == category:
                return i
    raise ValueError(
        f"category must be one of {', '.join(CATEGORIES)}, a synset id or an index in "
        f"[0, {len(CATEGORIES)}); got {category!r}"
    )


def part_to_category() -> np.ndarray:
    """Category index of each of the 50 global part labels (int64, length 50).

    >>> part_to_category()[[0, 4, 49]].tolist()
    [0, 1, 15]
    """
    return np.repeat(np.arange(len(CATEGORIES)), PARTS_PER_CATEGORY)


def _require_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"{what} not found: {path!r}")


def read_categories(root) -> dict[str, str]:
    """Read ``synsetoffset2category.txt``: ``{category name: synset id}`` in file order.

    Blank lines are skipped.  Every other line must be ``<name> <synset>``
    (tab or spaces) with a name from :data:`CATEGORIES`; a subset of the 16
    categories is allowed.

    Raises
    ------
    ValueError
        If the file is missing, a line is malformed, a name is unknown or
        listed twice.
    """
    path = os.path.join(os.fspath(root), "synsetoffset2category.txt")
    _require_file(path, "category file")
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{lineno}: expected '<category> <synset>', got {line.rstrip()!r}"
                )
            name, synset = fields
            if name not in SYNSETS:
                raise ValueError(
                    f"{path}:{lineno}: unknown category {name!r}; expected one of "
                    f"{', '.join(CATEGORIES)}"
                )
            if name in out:
                raise ValueError(f"{path}:{lineno}: category {name!r} listed twice")
            out[name] = synset
    if not out:
        raise ValueError(f"{path}: no categories listed")
    return out


def read_split(root, split: str = "test") -> list[tuple[str, str]]:
    """Shapes of a split as ``(synset, token)`` pairs, in the json file's order.

    ``split="trainval"`` concatenates the train and val lists.  Entries look
    like ``"shape_data/02691156/1a04e3eab45ca15dd86060f189eb133"``; only the
    last two path components are used, and a shape listed twice is refused.
    """
    split = check_option(split, "split", SPLITS)
    if split == "trainval":
        train, val = read_split(root, "train"), read_split(root, "val")
        both = sorted(set(train) & set(val))
        if both:
            raise ValueError(f"shape {'/'.join(both[0])} is listed in both the train and val split")
        return train + val
    path = os.path.join(os.fspath(root), "train_test_split", f"shuffled_{split}_file_list.json")
    _require_file(path, f"{split} split file")
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid json: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a json list of shape paths")
    out: dict = {}  # (synset, token) -> entry index; a shape listed twice would run twice
    for i, entry in enumerate(entries):
        parts = entry.strip("/").split("/") if isinstance(entry, str) else []
        if len(parts) < 2 or not all(parts[-2:]):
            raise ValueError(f"{path}: entry {i} is not '<...>/<synset>/<token>': {entry!r}")
        key = (parts[-2], parts[-1])
        if key in out:
            raise ValueError(f"{path}: entries {out[key]} and {i} both list {'/'.join(key)}")
        out[key] = i
    return list(out)


def read_shape(path, *, num_parts: int = NUM_PARTS) -> tuple[np.ndarray, np.ndarray]:
    """Read one shape file: float32 ``points (M, 6)`` (xyz, normal), int64 ``labels (M,)``.

    Every line must hold seven numbers ``x y z nx ny nz part_label`` with a
    finite geometry and an integer label in ``[0, num_parts)``.

    Raises
    ------
    ValueError
        If the file is missing or empty, or naming the first bad line and why.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "s.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("0 0 0 0 0 1 12\\n1 0 0 0 0 1 13\\n")
    >>> points, labels = read_shape(path)
    >>> points.shape, labels.tolist()
    ((2, 6), [12, 13])
    """
    path = os.fspath(path)
    _require_file(path, "shape file")
    num_parts = check_positive_int(num_parts, "num_parts")
    with open(path, encoding="utf-8") as f:
        lines = [(i, line) for i, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no points")
    data = np.empty((len(lines), 7), dtype=np.float64)
    for row, (lineno, line) in enumerate(lines):
        fields = line.split()
        if len(fields) != 7:
            raise ValueError(
                f"{path}:{lineno}: expected 7 numbers 'x y z nx ny nz part_label', "
                f"got {len(fields)}"
            )
        try:
            data[row] = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
    bad = ~np.isfinite(data[:, :6]).all(1)
    if bad.any():
        raise ValueError(f"{path}:{lines[int(np.argmax(bad))][0]}: non-finite coordinate")
    label = data[:, 6]
    bad = (label != np.round(label)) | (label < 0) | (label >= num_parts)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{path}:{lines[row][0]}: part label must be an integer in [0, {num_parts}); "
            f"got {label[row]:g}"
        )
    return data[:, :6].astype(np.float32), label.astype(np.int64)


class ShapeNetPartItem(NamedTuple):
    """One shape: ``name`` ("synset/token"), ``points`` float32 ``(P, 6)`` or ``(P, 3)``,
    ``category`` (index into :data:`CATEGORIES`) and global part ``labels`` int64 ``(P,)``."""

    name: str
    points: np.ndarray
    category: int
    labels: np.ndarray


class ShapeNetPart(Sequence):
    """The shapes of one split, read lazily.

    Parameters
    ----------
    root : path
        The ``shapenetcore_partanno_segmentation_benchmark_v0_normal`` folder.
    split : {"train", "val", "test", "trainval"}
    npoints : int or None, default 2048
        Points per shape.  A shape with at least ``npoints`` points is
        sub-sampled without replacement, a smaller one with replacement (the
        reference PointNet++ loader always samples with replacement);
        ``None`` keeps every point in file order.  The choice is seeded by
        ``seed`` and the shape's name, so a shape gets the same points whenever
        and through whichever split or category filter it is read.
    normals : bool, default True
        Keep the normal vectors (6 columns) or only xyz (3 columns).
    normalize : bool, default False
        Centre and scale the *whole* shape to the unit sphere before
        sub-sampling, as the reference PointNet++ loader does.  Leave it off
        when the certifier normalises the sampled points itself (its default,
        following the paper's "centred ... scaled such that the point furthest
        away from the origin has distance 1" on the 2048 input points).
    seed : int, default 0
    categories : sequence of str, optional
        Keep only these categories (names).

    Raises
    ------
    ValueError
        For a missing category/split file, a split entry whose category is
        not listed in ``synsetoffset2category.txt``, or (when read) a missing or
        malformed shape file or a label outside its category's part range.

    Examples
    --------
    >>> data = ShapeNetPart("/path/to/shapenetcore_partanno_segmentation_benchmark_v0_normal")
    ... # doctest: +SKIP
    >>> name, points, category, labels = data[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        root,
        split: str = "test",
        *,
        npoints: int | None = 2048,
        normals: bool = True,
        normalize: bool = False,
        seed: int = 0,
        categories: Sequence[str] | None = None,
    ):
        self.root = os.fspath(root)
        self.split = check_option(split, "split", SPLITS)
        self.npoints = None if npoints is None else check_positive_int(npoints, "npoints")
        self.normals = bool(normals)
        self.normalize = bool(normalize)
        self.seed = check_positive_int(seed, "seed", minimum=0)
        listed = {s: c for c, s in read_categories(self.root).items()}
        cats = {c: s for s, c in listed.items()}
        if categories is not None:
            categories = [CATEGORIES[category_index(c)] for c in categories]
            missing = [c for c in categories if c not in cats]
            if missing:
                raise ValueError(
                    f"categories {missing} are not listed in synsetoffset2category.txt"
                )
            cats = {c: cats[c] for c in categories}
        by_synset = {s: c for c, s in cats.items()}
        self._items = []
        for synset, token in read_split(self.root, self.split):
            if synset not in listed:
                raise ValueError(
                    f"{split} split lists {synset}/{token}, but synset {synset} is not in "
                    "synsetoffset2category.txt"
                )
            if synset in by_synset:
                self._items.append((synset, token, category_index(by_synset[synset])))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def names(self) -> list[str]:
        """Item names ``"<synset>/<token>"`` in order, without reading any shape file."""
        return [f"{synset}/{token}" for synset, token, _ in self._items]

    def __getitem__(self, index: int) -> ShapeNetPartItem:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer; got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} shapes")
        index = int(index) % len(self)
        synset, token, cat = self._items[index]
        path = os.path.join(self.root, synset, token + ".txt")
        points, labels = read_shape(path)
        lo, hi = PART_RANGES[cat]
        outside = (labels < lo) | (labels >= hi)
        if outside.any():
            raise ValueError(
                f"{path}: part label {int(labels[np.argmax(outside)])} is outside the "
                f"{CATEGORIES[cat]} part range [{lo}, {hi})"
            )
        if self.normalize:
            xyz = points[:, :3] - points[:, :3].mean(0)
            scale = np.sqrt((xyz**2).sum(1)).max()
            if not scale > 0:
                raise ValueError(f"{path}: all points coincide; cannot scale to the unit sphere")
            points[:, :3] = xyz / scale
        if self.npoints is not None:
            # Seeded by the shape's name, so a shape gets the same points in every
            # split, category filter, shard or order of reading.
            rng = np.random.default_rng([self.seed, zlib.crc32(f"{synset}/{token}".encode())])
            m = len(labels)
            choice = rng.choice(m, self.npoints, replace=m < self.npoints)
            points, labels = points[choice], labels[choice]
        if not self.normals:
            points = np.ascontiguousarray(points[:, :3])
        return ShapeNetPartItem(f"{synset}/{token}", points, cat, labels)

    def __repr__(self) -> str:
        return (
            f"ShapeNetPart(root={self.root!r}, split={self.split!r}, shapes={len(self)}, "
            f"npoints={self.npoints}, normals={self.normals})"
        )


def evaluation_items(dataset: ShapeNetPart) -> Items:
    """The shapes of ``dataset`` as evaluation items, loaded lazily: input
    ``(points, category)``, target the part labels, grouped by category name
    and scored over the category's parts (instance and class mIoU).
    """

    def load(i: int) -> Item:
        name, points, category, labels = dataset[i]
        cat = CATEGORIES[category]
        parts = PART_RANGES[category]
        return Item(name, (points, category), labels, group=cat, parts=parts,
                    fields={"category": cat})  # fmt: skip

    # Names come from the split list, not the shape files: skipping costs nothing.
    return Items(dataset.names, load)
