"""mtcert_torch: certify PyTorch segmentation models with SEGCERTIFY.

Noise models, a streaming independent sampler, a multi-scale segmentation
adapter, the certifier and its dataset loop, data loaders, training helpers
a command-line interface (``python -m mtcert_torch certify ...``), model
architectures in :mod:`mtcert_torch.models` (HRNetV2, PointNet++) and point-cloud
certification with coordinate noise or rotation smoothing
(:mod:`mtcert_torch.pointcloud`).  All
statistics are done by the core :mod:`mtcert`, which never imports torch.
"""

from mtcert._version import __version__

from .adapter import SegmentationAdapter
from .certifier import Certifier, ImageCertificate, certify_dataset, summarize
from .noise import NoiseModel
from .pointcloud import PointCloudAdapter, PointCloudCertificate, PointCloudCertifier
from .sampler import StreamingSampler

__all__ = [
    "Certifier",
    "ImageCertificate",
    "NoiseModel",
    "PointCloudAdapter",
    "PointCloudCertificate",
    "PointCloudCertifier",
    "SegmentationAdapter",
    "StreamingSampler",
    "__version__",
    "certify_dataset",
    "summarize",
]
