"""Certification algorithms: SEGCERTIFY, its baselines, metrics and the hierarchy.

Decisions from class counts.  Modules here import :mod:`mtcert.stats` and each
other (:mod:`mtcert.certify.labels` at the bottom), never the stored-counts,
simulation or command-line layers, and never torch.

- :mod:`mtcert.certify.segmentation`: SEGCERTIFY (:func:`segcertify`,
  :func:`segcertify_hits`, :class:`SegmentationCertificate`);
- :mod:`mtcert.certify.cohen`: Cohen et al.'s PREDICT / CERTIFY and the paper's
  baselines JOINTCLASS and INDIVCLASS;
- :mod:`mtcert.certify.metrics`: certified accuracy and mIoU accumulators;
- :mod:`mtcert.certify.hierarchy`: adaptive hierarchical certification;
- :mod:`mtcert.certify.labels`: :data:`ABSTAIN`.
"""

from mtcert.certify.labels import ABSTAIN
from mtcert.certify.segmentation import (
    FAST_METHODS,
    MAX_N,
    NOISE_MODELS,
    NotACertificateWarning,
    SegmentationCertificate,
    segcertify,
    segcertify_hits,
)

__all__ = [
    "ABSTAIN",
    "FAST_METHODS",
    "MAX_N",
    "NOISE_MODELS",
    "NotACertificateWarning",
    "SegmentationCertificate",
    "segcertify",
    "segcertify_hits",
]
