"""mtcert_torch: certify PyTorch segmentation models with SEGCERTIFY.

Noise models, a streaming independent sampler, a multi-scale segmentation
adapter, the certifier and its dataset loop, data loaders, training helpers
and a command-line interface (``python -m mtcert_torch certify ...``).  All
statistics are done by the core :mod:`mtcert`, which never imports torch.
"""

from .adapter import SegmentationAdapter
from .certifier import Certifier, ImageCertificate, certify_dataset, summarize
from .noise import NoiseModel
from .sampler import StreamingSampler

__all__ = [
    "Certifier",
    "ImageCertificate",
    "NoiseModel",
    "SegmentationAdapter",
    "StreamingSampler",
    "certify_dataset",
    "summarize",
]
