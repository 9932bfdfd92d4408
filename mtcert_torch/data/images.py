"""Segmentation datasets read with PIL and numpy (no torchvision).

Every dataset yields ``(name, image, target)``: ``image`` a float32 tensor
``(3, H, W)`` in [0, 1] pixel space (the space the smoothing noise lives in),
``target`` an int64 tensor ``(H, W)`` of train ids with ``ignore_index`` (255)
for pixels that are not evaluated.

* :class:`FolderDataset` — ``images/`` and ``labels/`` folders matched by file
  stem, with an optional label map.
* :class:`CityscapesDataset` — the official layout
  ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/*_gtFine_labelIds.png``; the 34 label ids are mapped
  to the 19 train ids (all others to 255), as in the Cityscapes scripts and
  HRNet.
* Pascal-Context: the paper evaluates the 59 foreground classes and ignores
  background.  Store label PNGs with 0 = background and 1..59 = classes and use
  ``FolderDataset(..., label_map=pascal_context_label_map())``: 0 → 255 and
  c → c − 1.  (The paper resizes Pascal images to 480×480 before segmentation;
  pass ``size=(480, 480)``.)

Imports numpy, torch and Pillow only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IGNORE_INDEX = 255
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Cityscapes label id → train id (cityscapesScripts ``labels.py``); others → 255.
CITYSCAPES_ID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
#: Train-id colours of the Cityscapes palette (for figures).
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip


def lookup_table(mapping: dict, *, default: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry uint8 lookup table from a ``{raw label: train id}`` dict."""
    lut = np.full(256, default, dtype=np.int64)
    for k, v in mapping.items():
        lut[int(k)] = int(v)
    return lut


def cityscapes_label_map() -> np.ndarray:
    """Lookup table: Cityscapes label ids → 19 train ids, everything else → 255."""
    return lookup_table(CITYSCAPES_ID_TO_TRAINID)


def pascal_context_label_map(num_classes: int = 59) -> np.ndarray:
    """Lookup table for Pascal-Context 59-class evaluation: 0 (background) → 255, c → c − 1."""
    return lookup_table({c: c - 1 for c in range(1, num_classes + 1)})


def read_image(path: Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """RGB image as a float32 ``(3, H, W)`` tensor in [0, 1]; ``size=(H, W)`` resizes (bilinear)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise ValueError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def read_label(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Single-channel label PNG as an int64 array (nearest-neighbour resize to ``size``)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(
                    f"label image {path} must be single-channel (mode L, P or I); got {im.mode}"
                )
            if size is not None:
                im = im.resize((size[1], size[0]), Image.NEAREST)
            return np.asarray(im).astype(np.int64)
    except FileNotFoundError:
        raise ValueError(f"label file not found: {path}") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read label {path}: {exc}") from None


class SegmentationDataset:
    """Base class: a list of ``(name, image_path, label_path)`` triples, names unique.

    Images larger than Pillow's decompression-bomb limit are refused when read.
    """

    def __init__(
        self,
        items: Sequence[tuple[str, Path, Path]],
        *,
        num_classes: int,
        label_map: np.ndarray | None = None,
        ignore_index: int = IGNORE_INDEX,
        size: tuple[int, int] | None = None,
    ):
        if not items:
            raise ValueError("the dataset is empty: no image/label pairs found")
        first: dict = {}
        for name, ipath, _ in items:  # the name keys results and resumption: one per image
            if name in first:
                raise ValueError(
                    f"images {first[name]} and {ipath} share the name {name!r}; names must be "
                    "unique (rename or remove one)"
                )
            first[name] = ipath
        self.items = list(items)
        self.num_classes = int(num_classes)
        self.label_map = None if label_map is None else np.asarray(label_map, dtype=np.int64)
        self.ignore_index = int(ignore_index)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.items]

    def __getitem__(self, i: int):
        name, ipath, lpath = self.items[i]
        image = read_image(ipath, self.size)
        label = read_label(lpath, self.size)
        if label.shape != tuple(image.shape[1:]):
            raise ValueError(
                f"{name}: label {lpath} has size {label.shape} but image {ipath} has "
                f"{tuple(image.shape[1:])}"
            )
        if self.label_map is not None:
            if label.min() < 0 or label.max() >= len(self.label_map):
                raise ValueError(f"{name}: raw label ids outside the label map in {lpath}")
            label = self.label_map[label]
        bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
        if bad.any():
            raise ValueError(
                f"{name}: label {lpath} holds ids outside [0, {self.num_classes}) other than "
                f"ignore_index={self.ignore_index}: {sorted(set(label[bad].tolist()))[:5]}"
            )
        return name, image, torch.from_numpy(label)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


class FolderDataset(SegmentationDataset):
    """Images and label PNGs in two folders, paired by file stem.

    Parameters
    ----------
    images, labels : path
        Folders with the RGB images and the single-channel label PNGs.  A label
        may carry a suffix after the image stem (``label_suffix``, e.g.
        ``"_gtFine_labelIds"``).
    num_classes : int
        Labels must lie in ``[0, num_classes)`` or equal ``ignore_index``
        (after ``label_map``).
    label_map : array of int, optional
        Lookup table applied to raw label values (see :func:`pascal_context_label_map`).
    size : (H, W), optional
        Resize images (bilinear) and labels (nearest) on load.
    """

    def __init__(
        self,
        images,
        labels,
        *,
        num_classes: int,
        label_suffix: str = "",
        label_map=None,
        ignore_index: int = IGNORE_INDEX,
        size=None,
    ):
        images, labels = Path(images), Path(labels)
        for p, what in ((images, "images"), (labels, "labels")):
            if not p.is_dir():
                raise ValueError(f"{what} folder not found: {p}")
        items = []
        for ipath in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            lpath = labels / f"{ipath.stem}{label_suffix}.png"
            if not lpath.is_file():
                raise ValueError(f"no label for image {ipath.name}: expected {lpath}")
            items.append((ipath.stem, ipath, lpath))
        super().__init__(
            items,
            num_classes=num_classes,
            label_map=label_map,
            ignore_index=ignore_index,
            size=size,
        )


class CityscapesDataset(SegmentationDataset):
    """Cityscapes ``leftImg8bit`` / ``gtFine`` layout with the 19 train ids.

    ``every`` keeps every k-th image of the sorted list (the paper evaluates
    every 5th test image).
    """

    def __init__(self, root, *, split: str = "val", every: int = 1):
        root = Path(root)
        img_root = root / "leftImg8bit" / split
        gt_root = root / "gtFine" / split
        for p in (img_root, gt_root):
            if not p.is_dir():
                raise ValueError(f"Cityscapes folder not found: {p}")
        items = []
        for ipath in sorted(img_root.glob("*/*_leftImg8bit.png")):
            stem = ipath.name[: -len("_leftImg8bit.png")]
            lpath = gt_root / ipath.parent.name / f"{stem}_gtFine_labelIds.png"
            if not lpath.is_file():
                raise ValueError(f"no ground truth for {ipath.name}: expected {lpath}")
            items.append((stem, ipath, lpath))
        super().__init__(items[::every], num_classes=19, label_map=cityscapes_label_map())


def open_dataset(root, *, num_classes: int, layout: str = "auto", **kwargs) -> SegmentationDataset:
    """Open ``root`` as Cityscapes (``leftImg8bit/`` + ``gtFine/``) or as a folder
    dataset (``images/`` + ``labels/``); ``layout="auto"`` decides by the folders present."""
    root = Path(root)
    if layout == "auto":
        layout = "cityscapes" if (root / "leftImg8bit").is_dir() else "folder"
    if layout == "cityscapes":
        return CityscapesDataset(root, **kwargs)
    if layout == "folder":
        return FolderDataset(root / "images", root / "labels", num_classes=num_classes, **kwargs)
    raise ValueError(f"layout must be one of 'auto', 'cityscapes', 'folder'; got {layout!r}")
