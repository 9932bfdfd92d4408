"""mtcert: multiple testing for certified robustness.

Exact binomial tests, FWER / k-FWER / FDR procedures with adjusted p-values,
and the SEGCERTIFY family of certification algorithms (Fischer, Baader & Vechev,
ICML 2021).  The core never imports torch; see :mod:`mtcert_torch` for models.

Sub-modules: :mod:`mtcert.binomial`, :mod:`mtcert.multitest`, :mod:`mtcert.certify`
(SEGCERTIFY), :mod:`mtcert.cohen` (Cohen et al.'s PREDICT/CERTIFY and the paper's
baselines), :mod:`mtcert.radius`, :mod:`mtcert.metrics`, :mod:`mtcert.oracle`,
:mod:`mtcert.power`, :mod:`mtcert.plotting` and :mod:`mtcert.testing`.
"""

from mtcert import metrics, radius
from mtcert.binomial import binom_test, clopper_pearson, greater_pvalue_table
from mtcert.certify import ABSTAIN, SegmentationCertificate, segcertify, segcertify_hits
from mtcert.cohen import indivclass, jointclass
from mtcert.multitest import (
    FDR_METHODS,
    FWER_METHODS,
    KFWER_METHODS,
    METHODS,
    AdjustResult,
    adjust,
    multipletests,
)

__version__ = "0.1.0"

# Power-study names pull in pandas; load them on first use.
_LAZY = {
    "BinaryOracle": "mtcert.oracle",
    "MultiClassOracle": "mtcert.oracle",
    "run_grid": "mtcert.power",
    "run_preset": "mtcert.power",
    "check_error_rate": "mtcert.testing",
    **dict.fromkeys(("CountsWriter", "read_counts"), "mtcert.counts"),
    **dict.fromkeys(("recertify", "radius_curve"), "mtcert.recertify"),
    "plan_samples": "mtcert.planning",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtcert' has no attribute {name!r}")


__all__ = [
    "ABSTAIN",
    "FDR_METHODS",
    "FWER_METHODS",
    "KFWER_METHODS",
    "METHODS",
    "AdjustResult",
    "BinaryOracle",
    "CountsWriter",
    "MultiClassOracle",
    "SegmentationCertificate",
    "__version__",
    "adjust",
    "binom_test",
    "check_error_rate",
    "clopper_pearson",
    "greater_pvalue_table",
    "indivclass",
    "jointclass",
    "metrics",
    "multipletests",
    "plan_samples",
    "radius",
    "radius_curve",
    "read_counts",
    "recertify",
    "run_grid",
    "run_preset",
    "segcertify",
    "segcertify_hits",
]
