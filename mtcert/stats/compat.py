"""Drop-in replacements for statsmodels' multiple-testing functions.

:func:`multipletests`, :func:`fdrcorrection` and :func:`fdrcorrection_twostage`
take statsmodels' signatures, method aliases and return tuples, so that code
written for ``statsmodels.stats.multitest`` runs unchanged on the kernels of
:func:`mtcert.stats.multitest.adjust`.

Imports numpy, scipy (lazily, for ``"lfdr"``), the code table
:mod:`mtcert._kernels.methods` and :mod:`mtcert.stats.methods`,
:mod:`mtcert.stats.multitest` and :mod:`mtcert.stats.validation`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

from mtcert._kernels import methods as _codes
from mtcert.stats.methods import LFDR_ALIASES, canonical_method
from mtcert.stats.multitest import adjust_families
from mtcert.stats.validation import as_probabilities, check_alpha, check_option

__all__ = ["fdrcorrection", "fdrcorrection_twostage", "multipletests"]


def _check_maxiter(maxiter, m: int) -> int:
    """statsmodels' ``maxiter`` (int >= -1, bool or None) as an iteration count <= m + 1.

    The two-stage iteration stops by itself within m steps (its rejection count
    only grows), so any larger count, however large, means "iterate fully".
    """
    if maxiter is None:
        maxiter = -1
    if isinstance(maxiter, (bool, np.bool_)):
        maxiter = int(maxiter)
    if not isinstance(maxiter, numbers.Integral) or maxiter < -1:
        raise ValueError(f"maxiter must be an int >= -1, a bool or None; got {maxiter!r}")
    return m if maxiter == -1 else min(int(maxiter), m + 1)


def _lfdr_support_line(p: np.ndarray, is_sorted: bool) -> np.ndarray:
    """statsmodels' ``"lfdr"``: local FDR from the Grenander density estimate, clipped to 1.

    The density of the p-values is estimated by the slopes of the least concave
    majorant of their empirical distribution function (Grenander 1956): the
    decreasing weighted isotonic regression of each gap's mass per width.  With
    all nulls true (null proportion 1) the local FDR of p is 1 / density(p).
    NaN p-values make every value NaN (as ``nan_policy="propagate"``).
    """
    from scipy.optimize import isotonic_regression

    if p.size == 0:
        return np.empty(0)
    if np.isnan(p).any():
        return np.full(p.shape, np.nan)
    order = None if is_sorted else np.argsort(p, kind="stable")
    s = p if is_sorted else p[order]
    values, counts = np.unique(s, return_counts=True)
    widths = np.diff(values, prepend=0.0)
    # p-values of exactly 0 are a point mass (infinite density, local FDR 0);
    # statsmodels raises there, the majorant simply starts above the origin.
    zero = int(values[0] == 0.0)
    slopes = np.full(values.size, np.inf)
    if values.size > zero:
        mass = counts[zero:] / (p.size * widths[zero:])
        slopes[zero:] = isotonic_regression(mass, weights=widths[zero:], increasing=False).x
    with np.errstate(divide="ignore"):
        lfdr = np.minimum(1.0, 1.0 / np.repeat(slopes, counts))
    if is_sorted:
        return lfdr
    out = np.empty_like(lfdr)
    out[order] = lfdr
    return out


def multipletests(
    pvals: ArrayLike,
    alpha: float = 0.05,
    method: str = "hs",
    maxiter: int | bool | None = 1,
    is_sorted: bool = False,
    returnsorted: bool = False,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Drop-in replacement for ``statsmodels.stats.multitest.multipletests``.

    Same signature, method names and aliases (``b``, ``bonf``, ``s``, ``h``,
    ``hs``, ``sh``, ``ho``, ``fdr_i``, ``fdr_n``, ``fdr_2sbh``, ...; ``lfdr`` is
    not offered), same 4-tuple and same results: identical decisions and
    adjusted p-values equal to rounding, including ties, zeros, ones, sorted
    and empty input.  Faster for large m; Hommel is O(m log m) instead of
    O(m^2).  The k-FWER methods of :func:`adjust` are accepted too (with k = 1).

    Parameters
    ----------
    pvals : array_like, 1-D
        Uncorrected p-values in [0, 1].
    alpha : float, default 0.05
        Error rate in (0, 1).
    method : str, default "hs"
        Method name or statsmodels alias (case-insensitive); see :func:`adjust`.
    maxiter : int, bool or None, default 1
        Iterations of ``fdr_tsbh`` / ``fdr_tsbky`` as in statsmodels: 1 is the
        two-stage method, 0 a single stage, -1 or None iterate up to m times
        (bools count as 0/1, as statsmodels' code does).  Ignored otherwise.
    is_sorted : bool, default False
        The p-values are already sorted ascending (not checked, as statsmodels).
    returnsorted : bool, default False
        Return the results in sorted order.

    Returns
    -------
    reject : ndarray of bool
    pvals_corrected : ndarray of float64
    alphacSidak : float
        1 - (1 - alpha)^(1/m) (NaN for empty input).
    alphacBonf : float
        alpha / m (NaN for empty input).

    Notes
    -----
    Deliberate differences from statsmodels: bad input raises ``ValueError``
    (p-values outside [0, 1], alpha outside (0, 1), pvals not 1-D, unknown
    method); a NaN p-value makes every corrected value NaN and every decision
    False (``nan_policy="propagate"`` of :func:`adjust`) for every method,
    where statsmodels' result depends on the method and on where ``argsort``
    puts the NaN.

    Examples
    --------
    >>> from mtcert.stats.compat import multipletests
    >>> reject, corrected, a_sidak, a_bonf = multipletests([0.01, 0.02, 0.3], method="h")
    >>> reject
    array([ True,  True, False])
    >>> corrected
    array([0.03, 0.04, 0.3 ])
    """
    lfdr = isinstance(method, str) and method.lower() in LFDR_ALIASES
    method = "lfdr" if lfdr else canonical_method(method)
    alpha = check_alpha(alpha)
    p = as_probabilities(pvals, "pvals")
    if p.ndim != 1:
        raise ValueError(f"pvals must be 1-dimensional; got shape {p.shape}")
    m = p.size
    maxiter = _check_maxiter(maxiter, m)
    if m > 0:
        alphac_sidak = _codes.sidak_critical(alpha, m)
        alphac_bonf = alpha / float(m)
    else:
        alphac_sidak = alphac_bonf = math.nan
    if lfdr:
        adj = _lfdr_support_line(p, bool(is_sorted))
        rej = adj <= alpha
    else:
        p2d = np.ascontiguousarray(p.reshape(1, -1))
        m_eff = np.array([-1 if np.isnan(p).any() else m], dtype=np.int64)
        code = _codes.CODES[method]
        adj, rej = adjust_families(p2d, code, alpha, 1, maxiter, m_eff, is_sorted=bool(is_sorted))
        adj, rej = adj[0], rej[0]
    if returnsorted and not is_sorted:
        order = np.argsort(p, kind="stable")
        adj, rej = adj[order], rej[order]
    return rej, adj, alphac_sidak, alphac_bonf


def fdrcorrection(
    pvals: ArrayLike, alpha: float = 0.05, method: str = "indep", is_sorted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Drop-in replacement for ``statsmodels.stats.multitest.fdrcorrection``.

    Parameters
    ----------
    pvals : array_like, 1-D
        p-values in [0, 1].
    alpha : float, default 0.05
        FDR level in (0, 1).
    method : {"indep", "i", "p", "poscorr", "negcorr", "n"}, default "indep"
        ``"indep"``/``"i"``/``"p"``/``"poscorr"``: Benjamini–Hochberg (FDR
        under independence or PRDS); ``"negcorr"``/``"n"``:
        Benjamini–Yekutieli (any dependence).
    is_sorted : bool, default False
        The p-values are sorted ascending (not checked, as statsmodels).

    Returns
    -------
    rejected : ndarray of bool
    pvals_corrected : ndarray of float64

    Examples
    --------
    >>> from mtcert.stats.compat import fdrcorrection
    >>> reject, corrected = fdrcorrection([0.01, 0.02, 0.04, 0.5])
    >>> reject
    array([ True,  True, False, False])
    >>> corrected
    array([0.04      , 0.04      , 0.05333333, 0.5       ])
    """
    names = {"i": "fdr_bh", "indep": "fdr_bh", "p": "fdr_bh", "poscorr": "fdr_bh"}
    names |= {"n": "fdr_by", "negcorr": "fdr_by"}
    check_option(method, "method", tuple(names))
    reject, corrected, _, _ = multipletests(
        pvals, alpha=alpha, method=names[method], is_sorted=is_sorted
    )
    return reject, corrected


def fdrcorrection_twostage(
    pvals: ArrayLike,
    alpha: float = 0.05,
    method: str = "bky",
    maxiter: int | bool | None = 1,
    iter: None = None,  # statsmodels' removed keyword, refused
    is_sorted: bool = False,
) -> tuple[np.ndarray, np.ndarray, int, list[float]]:
    """Drop-in replacement for ``statsmodels.stats.multitest.fdrcorrection_twostage``.

    The (iterated) two-stage linear step-up procedure of Benjamini, Krieger &
    Yekutieli (2006, Definition 6) with an estimate of the number of true nulls.

    Parameters
    ----------
    pvals : array_like, 1-D
        p-values in [0, 1].
    alpha : float, default 0.05
        FDR level in (0, 1).
    method : {"bky", "bh"}, default "bky"
        ``"bky"``: Definition 6 of BKY 2006 (first stage at alpha / (1 + alpha));
        ``"bh"``: the two-stage method of Benjamini & Hochberg.
    maxiter : int, bool or None, default 1
        1: two stages; 0: one stage; -1 or None: iterate to convergence.
    iter : None
        Removed keyword kept for statsmodels compatibility: anything else raises
        ``TypeError``.
    is_sorted : bool, default False
        The p-values are sorted ascending (not checked, as statsmodels).

    Returns
    -------
    rejected : ndarray of bool
    pvals_corrected : ndarray of float64
        Specific to ``alpha``: reject where ``pvals_corrected <= alpha``.
    m0 : int
        Estimated number of true nulls, ``m`` minus the number of rejections.
    alpha_stages : list of float
        The level of each linear step-up stage that was run.

    Examples
    --------
    >>> from mtcert.stats.compat import fdrcorrection_twostage
    >>> reject, corrected, m0, stages = fdrcorrection_twostage([0.01, 0.02, 0.04, 0.5])
    >>> reject, m0
    (array([ True,  True,  True, False]), 1)
    """
    if iter is not None:
        raise TypeError("iter is no longer accepted (as in statsmodels); use maxiter")
    check_option(method, "method", ("bky", "bh"))
    alpha = check_alpha(alpha)
    reject, corrected, _, _ = multipletests(
        pvals,
        alpha=alpha,
        method="fdr_tsbky" if method == "bky" else "fdr_tsbh",
        maxiter=maxiter,
        is_sorted=is_sorted,
    )
    m = reject.size
    n_rej = int(reject.sum())
    # The stages statsmodels reports: alpha' first, then one alpha* per iteration
    # run, each from the previous stage's rejection count.
    alpha_prime = alpha / (1.0 + alpha) if method == "bky" else alpha
    stages = [alpha_prime]
    p = (
        np.sort(as_probabilities(pvals, "pvals"))
        if not is_sorted
        else as_probabilities(pvals, "pvals")
    )
    r_old = _bh_rejections(p, alpha_prime)
    n_iter = _check_maxiter(maxiter, m)
    if 0 < r_old < m:
        for it in range(n_iter):
            with np.errstate(divide="ignore"):  # all rejected: alpha* = inf, as statsmodels
                stages.append(alpha_prime * m / np.float64(m - r_old))
            r = _bh_rejections(p, stages[-1])
            if it >= n_iter - 1 or r == r_old:
                break
            r_old = r
    return reject, corrected, m - n_rej, stages


def _bh_rejections(sorted_p: np.ndarray, alpha: float) -> int:
    """Number of Benjamini–Hochberg rejections at ``alpha`` (statsmodels' operations)."""
    m = sorted_p.size
    below = np.flatnonzero(sorted_p <= np.arange(1, m + 1) / float(m) * alpha)
    return int(below[-1]) + 1 if below.size else 0
