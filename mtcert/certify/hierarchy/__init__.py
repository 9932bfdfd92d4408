"""Adaptive hierarchical certification (Anani, Lorenz, Schiele & Fritz, ICML 2024).

Where flat SEGCERTIFY abstains on a pixel torn between "car" and "truck", the
adaptive algorithm can certify "vehicle" instead: fewer abstentions, and still
a guarantee.  The fine classes are the leaves of a :class:`ClassHierarchy`;
every coarser node stands for the set of fine classes below it.

Per component the algorithm

1. looks at the class counts of the ``n0`` *guessing* samples and chooses a
   level (:class:`GapRule`, the paper's rule, or :class:`ShareRule`) and the
   modal node at that level (:func:`select_nodes`);
2. counts the *hits* of that node among ``n`` independent *testing* samples:
   samples whose fine label lies under the node (:func:`node_hits`);
3. hands the nodes and hits to :func:`mtcert.certify.segmentation.segcertify_hits`
   unchanged: one-sided binomial test of ``H0: P(label under node) <= tau``
   per component and FWER (or k-FWER) control over all of them.

Soundness is inherited from SEGCERTIFY: the level and node of every component
are functions of the guessing samples only, so, conditionally on those
samples, each hypothesis is fixed before the testing samples are drawn and
its hit count is ``Bin(n, p_node)``.  The p-values are valid conditionally,
the FWER procedure controls the error conditionally, hence also
unconditionally.  Choosing the level from the testing samples would break
this (the test-suite shows such a mutant failing).

The Certified Information Gain (:func:`information_gain`,
:func:`certified_information_gain`) scores a certified node ``v`` that
contains the true fine class with ``log C - log |leaves(v)|`` (``C`` fine
classes): a fine class gains ``log C``, the root gains nothing; abstentions
and wrong nodes gain 0.  Normalised by ``log C`` (as the paper reports it) a
flat certificate's CIG equals its certified accuracy.

Modules: :mod:`~mtcert.certify.hierarchy.tree` (the hierarchy),
:mod:`~mtcert.certify.hierarchy.rules` (level selection),
:mod:`~mtcert.certify.hierarchy.algorithm` (the certificate) and
:mod:`~mtcert.certify.hierarchy.information` (CIG).  Power on oracles is
:mod:`mtcert.sim.hierarchy`.

References
----------
.. [1] A. Anani, T. Lorenz, B. Schiele, M. Fritz, "Adaptive Hierarchical
   Certification for Segmentation using Randomized Smoothing", ICML 2024
   (arXiv:2402.08400).
.. [2] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, Algorithm 2.
.. [3] M. Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
   Understanding", CVPR 2016 (cityscapesScripts ``labels.py``: the categories).
"""

from mtcert.certify.hierarchy.algorithm import (
    HierarchicalCertificate,
    hierarchical_segcertify,
    node_hits,
)
from mtcert.certify.hierarchy.information import certified_information_gain, information_gain
from mtcert.certify.hierarchy.rules import GapRule, ShareRule, select_nodes
from mtcert.certify.hierarchy.tree import (
    CITYSCAPES,
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_CLASSES,
    ClassHierarchy,
)

__all__ = [
    "CITYSCAPES",
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_CLASSES",
    "ClassHierarchy",
    "GapRule",
    "HierarchicalCertificate",
    "ShareRule",
    "certified_information_gain",
    "hierarchical_segcertify",
    "information_gain",
    "node_hits",
    "select_nodes",
]
