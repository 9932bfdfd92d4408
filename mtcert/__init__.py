"""mtcert: multiple testing for certified robustness.

Exact binomial tests, FWER / k-FWER / FDR procedures with adjusted p-values,
and the SEGCERTIFY family of certification algorithms (Fischer, Baader & Vechev,
ICML 2021).  The core never imports torch; see :mod:`mtcert_torch` for models.

Sub-modules (each an attribute of :mod:`mtcert`): :mod:`mtcert.binomial`,
:mod:`mtcert.multitest`, :mod:`mtcert.certify` (SEGCERTIFY), :mod:`mtcert.cohen`
(Cohen et al.'s PREDICT/CERTIFY and the paper's baselines), :mod:`mtcert.radius`,
:mod:`mtcert.metrics`, and, loaded on first use, :mod:`mtcert.oracle`,
:mod:`mtcert.power`, :mod:`mtcert.plotting`, :mod:`mtcert.testing` and
:mod:`mtcert.hierarchy` (adaptive hierarchical certification).
"""

from mtcert import binomial, certify, cohen, metrics, multitest, radius
from mtcert._version import __version__
from mtcert.binomial import binom_test, clopper_pearson, greater_pvalue_table
from mtcert.certify import ABSTAIN, SegmentationCertificate, segcertify, segcertify_hits
from mtcert.cohen import indivclass, jointclass
from mtcert.hierarchy import ClassHierarchy, hierarchical_segcertify
from mtcert.multitest import (
    FDR_METHODS,
    FWER_METHODS,
    KFWER_METHODS,
    METHODS,
    AdjustResult,
    adjust,
    multipletests,
)

# Power-study names pull in pandas (and plotting matplotlib); load them on first use.
_LAZY_MODULES = ("oracle", "plotting", "power", "testing")
_LAZY = {
    "BinaryOracle": "mtcert.oracle",
    "MultiClassOracle": "mtcert.oracle",
    "run_grid": "mtcert.power",
    "run_preset": "mtcert.power",
    "check_error_rate": "mtcert.testing",
    **dict.fromkeys(("CountsWriter", "read_counts"), "mtcert.counts"),
    **dict.fromkeys(("recertify", "radius_curve"), "mtcert.recertification"),
    "plan_samples": "mtcert.planning",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"mtcert.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtcert' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_LAZY_MODULES})


__all__ = [
    "ABSTAIN",
    "FDR_METHODS",
    "FWER_METHODS",
    "KFWER_METHODS",
    "METHODS",
    "AdjustResult",
    "BinaryOracle",
    "ClassHierarchy",
    "CountsWriter",
    "MultiClassOracle",
    "SegmentationCertificate",
    "__version__",
    "adjust",
    "binom_test",
    "binomial",
    "certify",
    "check_error_rate",
    "clopper_pearson",
    "cohen",
    "greater_pvalue_table",
    "hierarchical_segcertify",
    "indivclass",
    "jointclass",
    "metrics",
    "multipletests",
    "multitest",
    "oracle",
    "plan_samples",
    "plotting",
    "power",
    "radius",
    "radius_curve",
    "read_counts",
    "recertify",
    "run_grid",
    "run_preset",
    "segcertify",
    "segcertify_hits",
    "testing",
]
