"""mtcert_torch: certify PyTorch models with SEGCERTIFY, for any modality.

One :class:`Certifier` runs SEGCERTIFY's two sampling stages over a
:class:`~mtcert_torch.task.Task` — what a modality adds: the input, where the
noise goes, how outputs become labels, which radius the noise certifies.
Images (:class:`ImageTask` with a :class:`SegmentationAdapter`) and point
clouds (:class:`PointCloudTask`, coordinate noise or rotations) are two tasks;
:class:`TensorTask` smooths any tensor input.  :func:`evaluate` is the one
evaluation loop (per-item seeds, base predictions, metrics, resumable result
files, ``torch.distributed`` sharding) behind the command-line interface
(``python -m mtcert_torch certify ...``) and :mod:`mtcert_torch.runs.jobs`.
:class:`Smooth` offers locuslab/smoothing's ``predict``/``certify`` for
classifiers and segmenters.  Architectures live in :mod:`mtcert_torch.models`
(HRNetV2, PointNet++).  All statistics are done by the core :mod:`mtcert`,
which never imports torch.

The public face: it re-exports the layers below it (base modules, tasks, certifier,
settings, smoothing facade, run loop and summary) and is imported only by the command
line.
"""

from mtcert import __version__
from mtcert_torch.certifier import Certificate, Certifier
from mtcert_torch.items import Item, Items
from mtcert_torch.noise import NoiseModel
from mtcert_torch.runs.loop import Evaluation, ItemResult, certify_item, evaluate
from mtcert_torch.runs.summary import summarize
from mtcert_torch.sampler import StreamingSampler
from mtcert_torch.settings import Settings
from mtcert_torch.smooth import Smooth
from mtcert_torch.task import Smoothed, Task, TensorTask
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.tasks.image import ImageTask
from mtcert_torch.tasks.pointcloud import PointCloudTask

__all__ = [
    "Certificate",
    "Certifier",
    "Evaluation",
    "ImageTask",
    "Item",
    "ItemResult",
    "Items",
    "NoiseModel",
    "PointCloudTask",
    "SegmentationAdapter",
    "Settings",
    "Smooth",
    "Smoothed",
    "StreamingSampler",
    "Task",
    "TensorTask",
    "__version__",
    "certify_item",
    "evaluate",
    "summarize",
]
