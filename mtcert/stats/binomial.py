"""Exact binomial tests and Clopper–Pearson confidence bounds.

These are the per-component statistics of randomized smoothing: SEGCERTIFY tests
H0: p_A <= tau with the one-sided p-value P(X >= n_A) for X ~ Bin(n, tau)
(``alternative="greater"``), Cohen's PREDICT uses the two-sided test of n_A out of
n_A + n_B at 1/2, and Cohen's CERTIFY the one-sided Clopper–Pearson lower bound.

Imports numpy, scipy, the kernels of :mod:`mtcert._kernels.binomial`,
:mod:`mtcert._tunables`, :mod:`mtcert._threads` and :mod:`mtcert.stats.validation`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from mtcert import _tunables
from mtcert._kernels.binomial import (
    BETAINC,
    BETAINCC,
    gather_by_n,
    greater_elementwise,
    less_elementwise,
    two_sided_elementwise,
)
from mtcert._threads import map_chunks, workers_for
from mtcert.stats.validation import as_counts, as_probabilities, check_alpha, check_option

__all__ = ["binom_test", "clopper_pearson", "greater_pvalue_table"]

ALTERNATIVES = ("greater", "less", "two-sided")


def _elementwise(alternative: str, k: np.ndarray, n: np.ndarray, p: np.ndarray, out: np.ndarray):
    """Run the elementwise kernel, in nogil chunks on a thread pool for large inputs."""

    def run(_worker, lo, hi):
        part = [a if a.size == 1 else a[lo:hi] for a in (k, n, p)]
        if alternative == "greater":
            greater_elementwise(*part, out[lo:hi], BETAINC, BETAINCC)
        elif alternative == "less":
            less_elementwise(*part, out[lo:hi], BETAINC, BETAINCC)
        else:
            two_sided_elementwise(*part, out[lo:hi], BETAINC, BETAINCC)

    map_chunks(run, out.size, workers_for(out.size, _tunables.BINOMIAL_MIN_CHUNK))


def _validated_knp(k, n, p):
    k = as_counts(k, "k")
    n = as_counts(n, "n")
    p = as_probabilities(p, "p", allow_nan=False)
    if n.size and n.min() < 1:
        raise ValueError("n must be a positive integer (number of trials >= 1)")
    try:
        shape = np.broadcast_shapes(k.shape, n.shape, p.shape)
    except ValueError:
        raise ValueError(
            f"k, n and p cannot be broadcast together: shapes {k.shape}, {n.shape}, {p.shape}"
        ) from None
    if k.size and n.size:
        if n.size == 1:
            if k.max() > n.flat[0]:
                raise ValueError(f"k must not exceed n; found k = {int(k.max())} > n = {n.flat[0]}")
        elif np.any(k > n):
            raise ValueError("k must not exceed n (found k > n after broadcasting)")
    return k, n, p, shape


def _flat(a: np.ndarray, shape) -> np.ndarray:
    """A size-1 array stays size 1 (the kernel broadcasts it); others are expanded."""
    if a.size == 1:
        return a.reshape(1)
    return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)


def _shared_p_tables(n_flat: np.ndarray, size: int):
    """Plan the table path for a shared p: the distinct n values and table offsets.

    Returns ``(present, offsets)`` — the distinct n values and, indexed by n, the
    start of each n's table in the concatenation — or ``None`` when the tables
    (sum of n + 1 over distinct n) would not be much smaller than the input.
    """
    if n_flat.size == 1:
        if 2 * (int(n_flat[0]) + 1) > size:  # Python ints: n + 1 may not fit in int64
            return None
        present = n_flat
    else:
        n_max = int(n_flat.max())
        if 2 * (n_max + 1) > size:  # even the bincount would cost as much as the tests
            return None
        present = np.flatnonzero(np.bincount(n_flat, minlength=n_max + 1))
    lengths = present + 1
    if 2 * int(lengths.sum()) > size:
        return None
    offsets = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    offsets[present] = np.cumsum(lengths) - lengths
    return present, offsets


def _pvalue_tables(present: np.ndarray, p: float, alternative: str) -> np.ndarray:
    """Concatenated p-value tables, ``k = 0..n`` for each n in ``present``."""
    lengths = present + 1
    starts = np.cumsum(lengths) - lengths
    ns = np.repeat(present, lengths)
    ks = np.arange(ns.size, dtype=np.int64) - np.repeat(starts, lengths)
    out = np.empty(ns.size)
    _elementwise(alternative, ks, ns, np.array([p]), out)
    return out


def greater_pvalue_table(n: int, p: float) -> np.ndarray:
    """Table of upper-tail probabilities ``P(X >= j)``, ``j = 0..n``, for X ~ Bin(n, p).

    Every one-sided SEGCERTIFY p-value for ``n`` samples and threshold ``p`` is an
    entry of this table, so a whole image of p-values is a gather from it.

    Parameters
    ----------
    n : int
        Number of trials, ``n >= 1``.
    p : float
        Success probability under the null, in [0, 1].

    Returns
    -------
    ndarray of shape (n + 1,)
        Non-increasing; entry 0 is exactly 1.

    Examples
    --------
    >>> from mtcert.stats.binomial import greater_pvalue_table
    >>> greater_pvalue_table(3, 0.5)
    array([1.   , 0.875, 0.5  , 0.125])
    """
    _, n_arr, p_arr, _ = _validated_knp(0, n, p)
    if n_arr.size != 1 or p_arr.size != 1:
        raise ValueError("n and p must be scalars for greater_pvalue_table")
    return _pvalue_tables(n_arr.reshape(1), float(p_arr.flat[0]), "greater")


def binom_test(
    k: ArrayLike, n: ArrayLike, p: ArrayLike, *, alternative: str = "greater"
) -> np.ndarray | np.float64:
    """Exact binomial test p-values, vectorised over ``k``, ``n`` and ``p``.

    .. warning::
       The default is the **one-sided** ``alternative="greater"``, P(X >= k):
       the test SEGCERTIFY and CERTIFY need.  scipy's ``binomtest`` (and the
       old ``scipy.stats.binom_test``) default to ``"two-sided"``; code ported
       from scipy must pass ``alternative="two-sided"`` to get the same numbers.

    Parameters
    ----------
    k : array_like of int
        Number of successes, ``0 <= k <= n``.
    n : array_like of int
        Number of trials, ``n >= 1``.
    p : array_like of float
        Success probability under the null hypothesis, in [0, 1].
    alternative : {'greater', 'less', 'two-sided'}, optional
        ``'greater'`` (default) gives P(X >= k) for X ~ Bin(n, p): the test of
        H0: p_true <= p that SEGCERTIFY uses.  ``'less'`` gives P(X <= k).
        ``'two-sided'`` sums the probabilities of all outcomes no more likely
        than ``k`` (relative tolerance 1e-7), as :func:`scipy.stats.binomtest`
        does, but exactly also where the opposite tail's pmf underflows (there
        scipy drops that tail and returns up to half the p-value).

    Returns
    -------
    ndarray or numpy.float64
        p-values with the broadcast shape of ``k``, ``n`` and ``p`` (a numpy
        scalar when all three are scalars).

    Notes
    -----
    One-sided tails are exact sums of the pmf, never ``1 - cdf``.  Where the
    tail beyond ``k`` needs at most a few hundred terms to converge (``n p (1 -
    p)`` up to about 2000, or ``k`` far from the mean), it is summed from
    Loader's pmf at ``k`` (for ``k`` on the near side of the mean: one minus
    the opposite tail, then below 1/2); elsewhere it is the regularised
    incomplete beta function (Boost's ``ibeta``, as used by
    ``scipy.stats.binom.sf``).  The two agree to about 1e-13 relative.  Below
    1e-200, where ``ibeta`` loses relative accuracy or underflows to 0 (e.g.
    P(X >= 1129) for Bin(1167, 1/2) = 1.9e-280), the tail is always summed in
    log space, so p-values keep their relative accuracy down to the smallest
    normal double (where scipy returns 0) and ``n`` may reach 2^53.  When ``n``
    and ``p`` are scalars and there are more tests than ``n + 1``, the p-values
    are computed once per possible outcome and gathered, which makes
    image-sized inputs memory-bound.  The same holds per distinct ``n`` when
    only ``p`` is shared and the ``n`` take few distinct values.

    References
    ----------
    .. [1] Fischer, Baader & Vechev (2021). Scalable Certified Segmentation via
       Randomized Smoothing. ICML. Algorithm 2.
    .. [2] Loader, C. (2000). Fast and accurate computation of binomial
       probabilities (the pmf the tails are summed from, and the two-sided
       case's search for the opposite tail).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert import binom_test
    >>> print(f"{binom_test(9, 10, 0.5):.12g}")  # P(X >= 9) = 11/1024, X ~ Bin(10, 1/2)
    0.0107421875
    >>> binom_test([0, 5, 10], 10, 0.5, alternative="two-sided")
    array([0.00195312, 1.        , 0.00195312])
    """
    check_option(alternative, "alternative", ALTERNATIVES)
    k, n, p, shape = _validated_knp(k, n, p)
    size = int(np.prod(shape))
    if size == 0:
        return np.empty(shape)
    out = np.empty(size)
    k_flat, n_flat = _flat(k, shape), _flat(n, shape)
    tables = _shared_p_tables(n_flat, size) if p.size == 1 else None
    if tables is not None:
        # Fast path: with p shared, a test takes one of n + 1 values per distinct n;
        # compute each once, then gather (memory-bound for image-sized inputs).
        present, offsets = tables
        table = _pvalue_tables(present, float(p.flat[0]), alternative)
        gather_by_n(table, offsets, n_flat, k_flat, out)
    else:
        _elementwise(alternative, k_flat, n_flat, _flat(p, shape), out)
    return out.reshape(shape)[()]


def clopper_pearson(
    k: ArrayLike,
    n: ArrayLike,
    *,
    alpha: float | None = None,
    confidence_level: float | None = None,
    alternative: str = "two-sided",
) -> tuple[np.ndarray | np.float64, np.ndarray | np.float64]:
    """Exact (Clopper–Pearson) confidence bounds for a binomial proportion.

    Parameters
    ----------
    k : array_like of int
        Number of successes, ``0 <= k <= n``.
    n : array_like of int
        Number of trials, ``n >= 1``.
    alpha : float, optional
        Significance level in (0, 1); the coverage is at least ``1 - alpha``.
        Default 0.05 (when ``confidence_level`` is not given either).
    confidence_level : float, optional
        The same as ``1 - alpha``, spelt as scipy's
        ``BinomTestResult.proportion_ci(confidence_level=...)``; give one of the two.
    alternative : {'two-sided', 'greater', 'less'}, optional
        ``'two-sided'`` (default): the interval of
        ``statsmodels.stats.proportion.proportion_confint(k, n, alpha, method="beta")``,
        with ``alpha / 2`` in each tail.  ``'greater'``: the one-sided lower bound
        at level ``alpha`` (upper end 1) — the bound Cohen et al.'s CERTIFY uses.
        ``'less'``: the one-sided upper bound (lower end 0).  These follow scipy's
        ``BinomTestResult.proportion_ci`` convention; note that statsmodels'
        ``alternative="larger"`` means the opposite (it returns an *upper* bound).

    Returns
    -------
    low, high : ndarray or numpy.float64
        Bounds with the broadcast shape of ``k`` and ``n``.

    Notes
    -----
    The lower bound is the ``alpha``-quantile of Beta(k, n - k + 1) (0 when
    ``k = 0``), the upper bound the ``1 - alpha``-quantile of Beta(k + 1, n - k)
    (1 when ``k = n``).

    References
    ----------
    .. [1] Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or
       fiducial limits illustrated in the case of the binomial. Biometrika 26(4).
    .. [2] Cohen, Rosenfeld & Kolter (2019). Certified Adversarial Robustness via
       Randomized Smoothing. ICML. Algorithm CERTIFY.

    Examples
    --------
    >>> from mtcert import clopper_pearson
    >>> low, high = clopper_pearson(95, 100, alpha=0.001, alternative="greater")
    >>> round(float(low), 4), float(high)
    (0.8446, 1.0)

    scipy's spelling gives scipy's interval:

    >>> low, high = clopper_pearson(7, 10, confidence_level=0.95)
    >>> round(float(low), 4), round(float(high), 4)
    (0.3475, 0.9333)
    """
    check_option(alternative, "alternative", ("two-sided", "greater", "less"))
    if confidence_level is not None:
        if alpha is not None:
            raise ValueError("give alpha or confidence_level (= 1 - alpha), not both")
        alpha = 1.0 - check_alpha(confidence_level, "confidence_level")
    alpha = check_alpha(0.05 if alpha is None else alpha)
    k, n, _, shape = _validated_knp(k, n, 0.5)
    k = np.broadcast_to(k, shape).astype(np.float64)
    n = np.broadcast_to(n, shape).astype(np.float64)
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    with np.errstate(all="ignore"):
        low = np.where(k == 0, 0.0, special.betaincinv(k, n - k + 1.0, tail))
        high = np.where(k == n, 1.0, special.betainccinv(k + 1.0, n - k, tail))
    if alternative == "greater":
        high = np.ones(shape)
    elif alternative == "less":
        low = np.zeros(shape)
    return low[()], high[()]
