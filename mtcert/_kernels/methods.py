"""The one table of multiple-testing method codes shared by every numba kernel.

Python code resolves a user's method name (aliases included) once, in
:func:`mtcert.stats.methods.resolve_method`, and hands the kernels the integer code
from :data:`CODES`; a kernel compares against the constants below and never
sees a name.  Lehmann & Romano's step-wise constants, which the k-FWER kernels
of :mod:`mtcert._kernels.multitest` and :mod:`mtcert._kernels.certify` share,
live here too, so that the formula is written once; so do the per-family
constants that :mod:`mtcert.stats.multitest` and :mod:`mtcert.certify.segmentation` both need as
the same floats (Šidák's critical value, Benjamini–Yekutieli's sum).

Imports numpy and numba only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BONFERRONI = 0
SIDAK = 1
HOLM = 2
HOLM_SIDAK = 3
HOCHBERG = 4
HOMMEL = 5
FDR_BH = 6
FDR_BY = 7
FDR_TSBH = 8
FDR_TSBKY = 9
FDR_GBS = 10
GENERALIZED_BONFERRONI = 11
GENERALIZED_HOLM = 12
GENERALIZED_HOCHBERG = 13
GENERALIZED_SIDAK = 14

#: Canonical method name -> kernel code.
CODES = {
    "bonferroni": BONFERRONI,
    "sidak": SIDAK,
    "holm": HOLM,
    "holm-sidak": HOLM_SIDAK,
    "hochberg": HOCHBERG,
    "hommel": HOMMEL,
    "fdr_bh": FDR_BH,
    "fdr_by": FDR_BY,
    "fdr_tsbh": FDR_TSBH,
    "fdr_tsbky": FDR_TSBKY,
    "fdr_gbs": FDR_GBS,
    "generalized-bonferroni": GENERALIZED_BONFERRONI,
    "generalized-holm": GENERALIZED_HOLM,
    "generalized-hochberg": GENERALIZED_HOCHBERG,
    "generalized-sidak": GENERALIZED_SIDAK,
}


@njit(cache=True, nogil=True, error_model="numpy")
def lr_divisor(r, m, k):
    """``m + k - max(r, k)``: Lehmann & Romano (2005, Thm 2.2) constant at 1-based rank r.

    The k-FWER critical value at rank r is ``k * alpha / lr_divisor(r, m, k)``.
    Written as ``m - max(r - k, 0)`` with ``k`` a float, so that any k (even
    beyond int64, where ``m + k`` would wrap) gives the exact integer: for
    k >= r the divisor is m.
    """
    return float(m) - max(float(r) - k, 0.0)


def sidak_critical(alpha: float, m: int) -> np.float64:
    """Šidák's single-step critical value ``1 - (1 - alpha)**(1/m)``, statsmodels' operations."""
    return 1 - np.power((1.0 - alpha), 1.0 / m)


# numpy's pairwise summation halves a contiguous array at a multiple of 8 until a
# block has at most 128 entries; splitting the same way down to this size and
# summing each piece with np.sum reproduces it bit for bit with a piece's memory.
_HARMONIC_PIECE = 1 << 13


def harmonic_sum(m: int, lo: int = 0) -> np.float64:
    """Benjamini–Yekutieli's constant ``sum_{l=1..m} 1/l``, summed as statsmodels sums it
    (numpy's pairwise sum of the array ``1.0 / arange(1, m + 1)``), without that array.

    ``lo`` offsets the terms (``sum_{l=lo+1..lo+m} 1/l``): the halves of the recursion.
    """
    if m > _HARMONIC_PIECE:
        half = m // 2 - (m // 2) % 8
        return harmonic_sum(half, lo) + harmonic_sum(m - half, lo + half)
    terms = np.arange(lo + 1, lo + m + 1, dtype=np.float64)
    return np.sum(np.divide(1.0, terms, out=terms))
