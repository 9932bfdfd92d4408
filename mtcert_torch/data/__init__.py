"""Data: readers for segmentation data sets in their real formats.

:mod:`~mtcert_torch.data.images` (image folders, Cityscapes and Pascal-Context
label maps), :mod:`~mtcert_torch.data.shapenet` (ShapeNet-part point clouds) and
:mod:`~mtcert_torch.data.synthetic` (small generated data sets and a tiny
network for demos and tests).  Data modules import torch, numpy, Pillow, the core's
validation and the plugin's items (:mod:`mtcert_torch.items`) only.
"""

from mtcert_torch.data.images import (
    CityscapesDataset,
    FolderDataset,
    SegmentationDataset,
    open_dataset,
)

__all__ = ["CityscapesDataset", "FolderDataset", "SegmentationDataset", "open_dataset"]
