"""mtcert: multiple testing for certified robustness.

Exact binomial tests, FWER / k-FWER / FDR procedures with adjusted p-values,
and the SEGCERTIFY family of certification algorithms (Fischer, Baader & Vechev,
ICML 2021).  The core never imports torch; see :mod:`mtcert_torch` for models.

The package is layered; each layer imports only the layers below it:

=========================  ===========================================================
:mod:`mtcert.cli`          command lines (``python -m mtcert ...``)
:mod:`mtcert.stored`       stored counts: file format, recertification, planning
:mod:`mtcert.sim`          synthetic oracles, power studies, property-test strategies
:mod:`mtcert.certify`      SEGCERTIFY, Cohen's baselines, metrics, hierarchies
:mod:`mtcert.stats`        binomial tests, multiple-testing procedures, radii
``mtcert._kernels``        compiled kernels (through ``mtcert._jit``)
=========================  ===========================================================

:mod:`mtcert.plotting` draws the figures of the power studies.  The modules
most used are also attributes of this package under their short names:
``mtcert.binomial``, ``mtcert.multitest``, ``mtcert.radius`` (in :mod:`mtcert.stats`),
``mtcert.cohen``, ``mtcert.metrics``, ``mtcert.hierarchy`` (in :mod:`mtcert.certify`)
and, loaded on first use, ``mtcert.oracle``, ``mtcert.power``, ``mtcert.testing``
(in :mod:`mtcert.sim`) and ``mtcert.plotting``.
"""

from mtcert import certify
from mtcert._version import __version__
from mtcert.certify import (
    ABSTAIN,
    SegmentationCertificate,
    cohen,
    metrics,
    segcertify,
    segcertify_hits,
)
from mtcert.certify.cohen import indivclass, jointclass
from mtcert.certify.hierarchy import ClassHierarchy, hierarchical_segcertify
from mtcert.certify.radii import RadiiCertificate, certify_radii
from mtcert.certify.sequential import (
    SequentialCertificate,
    certification_floor,
    sequential_segcertify,
)
from mtcert.stats import binomial, multitest, radius
from mtcert.stats.binomial import binom_test, clopper_pearson, greater_pvalue_table
from mtcert.stats.compat import multipletests
from mtcert.stats.multitest import (
    FDR_METHODS,
    FWER_METHODS,
    KFWER_METHODS,
    METHODS,
    AdjustResult,
    adjust,
)

# Power-study names pull in pandas (and plotting matplotlib); load them on first use.
_LAZY_MODULES = {
    "hierarchy": "mtcert.certify.hierarchy",
    "oracle": "mtcert.sim.oracle",
    "plotting": "mtcert.plotting",
    "power": "mtcert.sim.power",
    "testing": "mtcert.sim.testing",
}
_LAZY = {
    "BinaryOracle": "mtcert.sim.oracle",
    "MultiClassOracle": "mtcert.sim.oracle",
    "run_grid": "mtcert.sim.power",
    "run_preset": "mtcert.sim.power",
    "check_error_rate": "mtcert.sim.testing",
    **dict.fromkeys(("CountsWriter", "read_counts"), "mtcert.stored.counts"),
    **dict.fromkeys(
        ("recertify", "radius_curve", "joint_radius_curve"), "mtcert.stored.recertification"
    ),
    "plan_samples": "mtcert.stored.planning",
    **dict.fromkeys(("two_stage_segcertify", "plan_image_n"), "mtcert.stored.adaptive"),
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
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
    "RadiiCertificate",
    "SegmentationCertificate",
    "SequentialCertificate",
    "__version__",
    "adjust",
    "binom_test",
    "binomial",
    "certification_floor",
    "certify",
    "certify_radii",
    "check_error_rate",
    "clopper_pearson",
    "cohen",
    "greater_pvalue_table",
    "hierarchical_segcertify",
    "hierarchy",
    "indivclass",
    "joint_radius_curve",
    "jointclass",
    "metrics",
    "multipletests",
    "multitest",
    "oracle",
    "plan_image_n",
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
    "sequential_segcertify",
    "testing",
    "two_stage_segcertify",
]
