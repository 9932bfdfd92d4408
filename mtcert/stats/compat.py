"""Drop-in replacements for statsmodels' multiple-testing functions.

:func:`multipletests`, :func:`fdrcorrection`, :func:`fdrcorrection_twostage`,
:func:`local_fdr_correction` and :func:`local_fdr` take statsmodels' signatures,
method aliases and return values, so that code written for
``statsmodels.stats.multitest`` runs unchanged on the kernels of
:func:`mtcert.stats.multitest.adjust`.  Each name drops in *alone*: statsmodels'
own functions call each other (its two-stage FDR calls ``fdrcorrection`` at
levels up to and beyond 1), so these accept whatever statsmodels accepts --
any real ``alpha``, lists, float32 -- where :func:`~mtcert.stats.multitest.adjust`
validates strictly.

Imports numpy, scipy (lazily, for ``"lfdr"``), the code table
:mod:`mtcert._kernels.methods` and :mod:`mtcert.stats.methods`,
:mod:`mtcert.stats.multitest` and :mod:`mtcert.stats.validation`.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mtcert._kernels import methods as _codes
from mtcert.stats.methods import LFDR_ALIASES, canonical_method
from mtcert.stats.multitest import adjust_families
from mtcert.stats.validation import as_probabilities, check_option

__all__ = [
    "LocalFDRCorrectionResult",
    "fdrcorrection",
    "fdrcorrection_twostage",
    "local_fdr",
    "local_fdr_correction",
    "multipletests",
]


def _any_alpha(alpha) -> float:
    """statsmodels' ``alpha``: any real number (a level of 1 or more rejects everything).

    statsmodels never checks it, and its two-stage FDR passes ``alpha * m / m0``
    on to ``fdrcorrection``, which reaches 1 when few nulls remain.
    """
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"alpha must be a real number; got {alpha!r}")
    return float(alpha)


def _out_dtype(pvals, method: str) -> np.dtype:
    """The dtype statsmodels returns: a float32 input stays float32 where its arithmetic
    never meets a float64 array (Bonferroni, Šidák, Hommel), float64 otherwise."""
    dtype = getattr(pvals, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        if method in ("bonferroni", "sidak", "hommel"):
            return dtype
    return np.dtype(np.float64)


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


class LocalFDRCorrectionResult(NamedTuple):
    """Result of :func:`local_fdr_correction` (statsmodels' named tuple).

    Attributes
    ----------
    fdr : ndarray of float64
        Estimated tail false discovery rate of each p-value, in input order.
    lfdr : ndarray of float64
        Estimated local false discovery rate of each p-value, in input order.
    """

    fdr: np.ndarray
    lfdr: np.ndarray


def local_fdr_correction(
    pvals: ArrayLike, null_proportion: float = 1.0, is_sorted: bool = False
) -> LocalFDRCorrectionResult:
    """Drop-in replacement for ``statsmodels.stats.multitest.local_fdr_correction``.

    Tail and local false discovery rates from the Grenander estimate of the
    p-values' distribution: its least concave majorant ``F`` (LCM) of the
    empirical distribution function and the LCM's left slope ``f``.  By Bayes'
    rule ``fdr(t) = min(1, pi0 t / F(t))`` and ``lfdr(t) = min(1, pi0 / f(t))``.
    ``multipletests(..., method="lfdr")`` rejects where ``lfdr <= alpha``.

    Parameters
    ----------
    pvals : array_like, 1-D
        p-values in [0, 1].
    null_proportion : float, default 1.0
        Estimate ``pi0`` of the proportion of true nulls (1: conservative).
    is_sorted : bool, default False
        The p-values are sorted ascending (not checked, as statsmodels).

    Returns
    -------
    LocalFDRCorrectionResult
        ``(fdr, lfdr)``, both in the order of ``pvals``.

    Notes
    -----
    Tied p-values are one support point with their multiplicity.  A NaN
    p-value makes every value NaN (as ``nan_policy="propagate"``).  p-values of
    exactly 0 are a point mass (local and tail FDR 0), where statsmodels'
    estimate divides by a zero gap.  References: Grenander (1956); Strimmer
    (2008), *BMC Bioinformatics* 9:303.

    Examples
    --------
    >>> from mtcert.stats.compat import local_fdr_correction
    >>> res = local_fdr_correction([0.001, 0.01, 0.02, 0.5, 0.9])
    >>> res.lfdr.round(3)
    array([0.005, 0.045, 0.05 , 1.   , 1.   ])
    """
    from scipy.optimize import isotonic_regression

    p = as_probabilities(pvals, "pvals")
    if p.ndim != 1:
        raise ValueError(f"pvals must be 1-dimensional; got shape {p.shape}")
    pi0 = _any_alpha(null_proportion)
    if p.size == 0 or np.isnan(p).any():
        nan = np.full(p.shape, np.nan)
        return LocalFDRCorrectionResult(nan, nan.copy())
    order = None if is_sorted else np.argsort(p, kind="stable")
    s = p if is_sorted else p[order]
    values, counts = np.unique(s, return_counts=True)
    widths = np.diff(values, prepend=0.0)
    # the LCM's slopes: the decreasing weighted isotonic regression of each gap's
    # mass per width; a p-value of 0 is a point mass (infinite slope)
    zero = int(values[0] == 0.0)
    slopes = np.full(values.size, np.inf)
    cdf = np.full(values.size, counts[0] / p.size)  # the LCM at each support point
    if values.size > zero:
        mass = counts[zero:] / (p.size * widths[zero:])
        slopes[zero:] = isotonic_regression(mass, weights=widths[zero:], increasing=False).x
        cdf[zero:] = cdf[0] * zero + np.cumsum(slopes[zero:] * widths[zero:])
    with np.errstate(divide="ignore", invalid="ignore"):
        lfdr = np.minimum(1.0, pi0 / np.repeat(slopes, counts))
        fdr = np.minimum(1.0, pi0 * s / np.repeat(cdf, counts))
    fdr[s == 0.0] = 0.0
    if not is_sorted:
        lfdr[order], fdr[order] = lfdr.copy(), fdr.copy()
    return LocalFDRCorrectionResult(fdr, lfdr)


def local_fdr(
    zscores: ArrayLike,
    null_proportion: float = 1.0,
    null_pdf=None,
    deg: int = 7,
    nbins: int = 30,
    alpha: float = 0,
) -> np.ndarray:
    """Drop-in replacement for ``statsmodels.stats.multitest.local_fdr`` (Efron 2008).

    The marginal density ``f`` of the z-scores is fitted by a Poisson regression
    of histogram counts on a polynomial of degree ``deg`` in the bin centres
    (Lindsey's method); the local FDR of ``z`` is ``pi0 f0(z) / f(z)``, clipped
    to [0, 1].

    Parameters
    ----------
    zscores : array_like, 1-D
        The z-scores.
    null_proportion : float, default 1.0
        Assumed proportion ``pi0`` of true nulls.
    null_pdf : callable, optional
        Density ``f0`` of the null z-scores; standard normal if None.
    deg : int, default 7
        Degree of the polynomial for the log-density.
    nbins : int, default 30
        Number of histogram bin edges (``nbins - 1`` bins), as statsmodels.
    alpha : float, default 0
        Ridge penalty of the Poisson regression (statsmodels'
        ``fit_regularized(L1_wt=0, alpha=alpha)``: the mean log-likelihood
        minus ``alpha / 2`` times the squared coefficients); 0 is the maximum
        likelihood fit.

    Returns
    -------
    ndarray of float64
        The local FDR of each z-score.

    Notes
    -----
    The fit is Newton's method on the (penalised) Poisson log-likelihood from
    the least-squares start statsmodels uses, run to convergence; statsmodels
    uses IRLS (the same optimum) or, with a penalty, BFGS (the same optimum to
    its tolerance).  Reference: B. Efron (2008), Microarrays, empirical Bayes
    and the two-groups model, *Statistical Science* 23(1), 1-22.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> from mtcert.stats.compat import local_fdr
    >>> z = np.r_[norm.ppf(np.linspace(0.001, 0.999, 1000)), np.linspace(3, 4, 20)]
    >>> fdr = local_fdr(z)
    >>> bool(fdr[:500].mean() > 0.9), bool(fdr[-5:].max() < 0.2)
    (True, True)
    """
    z = np.asarray(zscores, dtype=np.float64)
    bins = np.linspace(z.min(), z.max(), nbins)
    counts = np.histogram(z, bins)[0].astype(np.float64)
    centres = (bins[:-1] + bins[1:]) / 2
    design = np.vander(centres, deg + 1)
    sd = design.std(0)
    scaled = sd > 1e-8  # the constant column keeps its scale
    design[:, scaled] /= sd[scaled]
    start = np.linalg.lstsq(design, np.log1p(counts), rcond=None)[0]
    beta = _poisson_fit(design, counts, float(alpha), start)
    full = np.vander(z, deg + 1)
    full[:, scaled] /= sd[scaled]
    density = np.exp(full @ beta) / (z.size * (bins[1] - bins[0]))
    null = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) if null_pdf is None else null_pdf(z)
    return np.clip(null_proportion * null / density, 0, 1)


def _poisson_fit(x: np.ndarray, y: np.ndarray, alpha: float, beta: np.ndarray) -> np.ndarray:
    """Maximise ``loglik(beta) / n - alpha / 2 |beta|^2`` of a log-link Poisson model.

    Newton's method with step halving (the objective is concave, so each
    accepted step increases it); stops when a step changes it by < 1e-12.
    """
    n = y.size

    def objective(b):
        eta = x @ b
        return (y @ eta - np.exp(eta).sum()) / n - alpha / 2 * b @ b

    value = objective(beta)
    for _ in range(100):
        mu = np.exp(x @ beta)
        grad = x.T @ (y - mu) / n - alpha * beta
        hess = (x.T * mu) @ x / n + alpha * np.eye(beta.size)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        for _ in range(50):
            new = objective(beta + step)
            if new >= value:
                break
            step /= 2
        beta = beta + step
        gain, value = new - value, new
        if abs(gain) <= 1e-12 * max(1.0, abs(value)):
            break
    return beta


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
        Error rate, usually in (0, 1); any real number is accepted.
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
    Any real ``alpha`` is taken, as statsmodels takes it (its two-stage FDR
    calls ``fdrcorrection`` at levels of 1 and more); float32 p-values give
    statsmodels' dtypes (Bonferroni and Šidák computed in float32 as there).
    Deliberate differences from statsmodels: bad input raises ``ValueError``
    (p-values outside [0, 1], pvals not 1-D, unknown method); a NaN p-value
    makes every corrected value NaN and every decision False
    (``nan_policy="propagate"`` of :func:`adjust`) for every method,
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
    alpha = _any_alpha(alpha)
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
    dtype = _out_dtype(pvals, method)
    if lfdr:
        adj = local_fdr_correction(p, is_sorted=bool(is_sorted)).lfdr
        rej = adj <= alpha
    elif dtype != np.float64 and method in ("bonferroni", "sidak") and m > 0:
        # statsmodels' float32 arithmetic: its Python-float thresholds and factors
        # are cast to the p-values' dtype (numpy's promotion rules)
        low = p.astype(dtype)
        if method == "bonferroni":
            rej, adj = low <= alphac_bonf, low * float(m)
        else:
            rej, adj = low <= alphac_sidak, -np.expm1(m * np.log1p(-low))
        adj = np.minimum(adj, dtype.type(1))
    else:
        p2d = np.ascontiguousarray(p.reshape(1, -1))
        m_eff = np.array([-1 if np.isnan(p).any() else m], dtype=np.int64)
        code = _codes.CODES[method]
        adj, rej = adjust_families(p2d, code, alpha, 1, maxiter, m_eff, is_sorted=bool(is_sorted))
        adj, rej = adj[0].astype(dtype, copy=False), rej[0]
        if alpha >= 1.0 and method in ("holm", "fdr_gbs") and m > 0:
            rej = _unclipped_reject(p, method, alpha, bool(is_sorted))
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
        FDR level, usually in (0, 1); any real number is accepted.
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
        FDR level, usually in (0, 1); any real number is accepted.
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
    alpha = _any_alpha(alpha)
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


def _unclipped_reject(p: np.ndarray, method: str, alpha: float, is_sorted: bool) -> np.ndarray:
    """Holm's and Gavrilov–Benjamini–Sarkar's decisions at ``alpha >= 1``, as statsmodels.

    statsmodels compares their adjusted p-values with ``alpha`` *before*
    clipping them to 1, so a level of 1 or more does not reject every hypothesis.
    """
    order = np.arange(p.size) if is_sorted else np.argsort(p, kind="stable")
    s = p[order]
    i = np.arange(1, s.size + 1)
    if method == "holm":
        raw = np.maximum.accumulate(s * i[::-1])
    else:
        with np.errstate(divide="ignore"):
            q = (s.size + 1.0 - i) / i * s / (1.0 - s)
        raw = np.minimum.accumulate(np.maximum.accumulate(q)[::-1])[::-1]
    reject = np.empty(p.size, dtype=bool)
    reject[order] = raw <= alpha
    return reject


def _bh_rejections(sorted_p: np.ndarray, alpha: float) -> int:
    """Number of Benjamini–Hochberg rejections at ``alpha`` (statsmodels' operations)."""
    m = sorted_p.size
    below = np.flatnonzero(sorted_p <= np.arange(1, m + 1) / float(m) * alpha)
    return int(below[-1]) + 1 if below.size else 0
