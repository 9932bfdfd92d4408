"""Multiple-testing procedures with adjusted p-values: FWER, k-FWER and FDR.

:func:`adjust` is the validated, vectorised entry point; :func:`multipletests`
is a drop-in replacement for ``statsmodels.stats.multitest.multipletests``
(same signature, method aliases and 4-tuple).  The numerical work happens in
:mod:`mtcert._kernels.multitest`.

Which error rate each method controls, and under which dependence between the
p-values (m tests, k >= 1):

=========================  ============================  ==============================
method                     controls                      dependence
=========================  ============================  ==============================
bonferroni                 FWER                          any
sidak                      FWER                          independence (or PRD orthants)
holm                       FWER                          any
holm-sidak                 FWER                          independence
hochberg                   FWER                          PRDS / MTP2 (Sarkar 2008)
hommel                     FWER                          PRDS / MTP2 (Sarkar 2008)
fdr_bh                     FDR                           PRDS
fdr_by                     FDR                           any
fdr_tsbh, fdr_tsbky        FDR                           independence
fdr_gbs                    FDR                           independence
generalized-bonferroni     k-FWER                        any (Lehmann & Romano 2005, 2.1)
generalized-holm           k-FWER                        any (Lehmann & Romano 2005, 2.2)
generalized-hochberg       k-FWER                        MTP2 (Sarkar 2008)
generalized-sidak          k-FWER                        independence (Guo & Romano 2007)
=========================  ============================  ==============================

The k-FWER is P(at least k false rejections); k = 1 is the FWER.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from mtcert import _tunables
from mtcert._jit import tiered
from mtcert._kernels import methods as _codes
from mtcert._kernels import multitest as _multitest_kernels
from mtcert.validation import (
    as_probabilities,
    check_alpha,
    check_nan_policy,
    check_option,
)

__all__ = [
    "FDR_METHODS",
    "FWER_METHODS",
    "KFWER_METHODS",
    "METHODS",
    "AdjustResult",
    "adjust",
    "canonical_method",
    "fdrcorrection",
    "fdrcorrection_twostage",
    "multipletests",
    "resolve_method",
]

# small calls run the kernels' Python source until compiling pays (mtcert._jit)
_k = tiered(_multitest_kernels)

FWER_METHODS = ("bonferroni", "sidak", "holm", "holm-sidak", "hochberg", "hommel")
KFWER_METHODS = (
    "generalized-bonferroni",
    "generalized-holm",
    "generalized-hochberg",
    "generalized-sidak",
)
FDR_METHODS = ("fdr_bh", "fdr_by", "fdr_tsbh", "fdr_tsbky", "fdr_gbs")
METHODS = FWER_METHODS + FDR_METHODS + KFWER_METHODS

# statsmodels 0.15 aliases (multitest._alias_list), scipy's
# false_discovery_control names ("bh", "by") and our canonical names.
_ALIASES = {
    **{a: "bonferroni" for a in ("b", "bonf", "bonferroni")},
    **{a: "sidak" for a in ("s", "sidak")},
    **{a: "holm" for a in ("h", "holm")},
    **{a: "holm-sidak" for a in ("hs", "holm-sidak")},
    **{a: "hochberg" for a in ("sh", "simes-hochberg", "hochberg")},
    **{a: "hommel" for a in ("ho", "hommel")},
    **{a: "fdr_bh" for a in ("fdr_bh", "fdr_i", "fdr_p", "fdri", "fdrp", "bh")},
    **{a: "fdr_by" for a in ("fdr_by", "fdr_n", "fdr_c", "fdrn", "fdrcorr", "by")},
    **{a: "fdr_tsbh" for a in ("fdr_tsbh", "fdr_2sbh")},
    **{a: "fdr_tsbky" for a in ("fdr_tsbky", "fdr_2sbky", "fdr_twostage")},
    "fdr_gbs": "fdr_gbs",
    **{name: name for name in KFWER_METHODS},
}
# statsmodels' local-FDR support line: only in multipletests (not a procedure
# with a level, so adjust does not offer it).
_LFDR_ALIASES = ("lfdr", "lfdr_sl")


def canonical_method(method: str) -> str:
    """Canonical name of a multiple-testing method, aliases resolved.

    Accepts every name in :data:`METHODS`, statsmodels' aliases (``"h"``,
    ``"hs"``, ``"fdr_i"``, ...) and scipy's ``"bh"`` / ``"by"``
    (:func:`scipy.stats.false_discovery_control`), case-insensitively.  Every
    public function that takes a method resolves it here, once.

    Raises
    ------
    ValueError
        If ``method`` names no method; the message lists the valid names.

    Examples
    --------
    >>> canonical_method("Holm"), canonical_method("h"), canonical_method("bh")
    ('holm', 'holm', 'fdr_bh')
    """
    name = method.lower() if isinstance(method, str) else None
    if name not in _ALIASES:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, METHODS))} "
            f"(or a statsmodels/scipy alias such as 'hs', 'fdr_i', 'bh'); got {method!r}"
        )
    return _ALIASES[name]


def check_k(k: int, method: str) -> int:
    """Validate the k of a k-FWER for the canonical ``method``.

    Any integer ``k >= 1`` is accepted for the k-FWER methods and is applied
    exactly, however large (a family of m < k tests cannot hold k false
    rejections; the kernels take k as a float and never form ``m + k``);
    classical methods require ``k = 1``.

    Raises
    ------
    ValueError
        Naming ``k`` if it is not an integer >= 1, too large for a float, or
        not 1 for a method that is not a k-FWER method.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k}")
    if k != 1 and method not in KFWER_METHODS:
        raise ValueError(
            f"k must be 1 for method {method!r} (k is the k of a k-FWER; use one of "
            f"{', '.join(map(repr, KFWER_METHODS))}); got k={k}"
        )
    try:
        float(k)
    except OverflowError:
        raise ValueError(
            f"k must be below 1.8e308; got an integer with {len(str(k))} digits"
        ) from None
    return k


def resolve_method(method: str, k: int = 1) -> tuple[str, int]:
    """``(canonical_method(method), check_k(k, ...))``: the one entry point for both."""
    method = canonical_method(method)
    return method, check_k(k, method)


@dataclass(frozen=True, repr=False)
class AdjustResult:
    """Result of :func:`adjust`.

    Attributes
    ----------
    reject : ndarray of bool
        The procedure's decisions, same shape as the p-values.
    adjusted : ndarray of float64
        Adjusted p-values (clipped to 1), same shape; NaN where the p-value was
        NaN or its family was poisoned (``nan_policy="propagate"``).
    method : str
        Canonical method name.
    alpha : float
        Level at which ``reject`` was decided.
    k : int
        k of the k-FWER (1 for FWER and FDR methods).
    n_tests : int or ndarray of int
        Family size m (per family when ``axis`` is given).  With
        ``nan_policy="omit"`` NaNs are not counted.
    n_rejected : int or ndarray of int
        Number of rejections (per family when ``axis`` is given).
    """

    reject: np.ndarray
    adjusted: np.ndarray
    method: str
    alpha: float
    k: int
    n_tests: int | np.ndarray
    n_rejected: int | np.ndarray
    axis: int | None = field(default=None)

    def __repr__(self) -> str:
        def show(name, value):
            if not isinstance(value, np.ndarray):
                return f"{name}={value!r}"
            prefix = f"    {name}="
            body = np.array2string(
                value, separator=", ", threshold=6, edgeitems=3, precision=4, prefix=prefix
            )
            return f"{name}={body}"

        head = ", ".join(
            show(n, getattr(self, n)) for n in ("method", "alpha", "k", "n_tests", "n_rejected")
        )
        return (
            f"AdjustResult({head},\n"
            f"    {show('reject', self.reject)},\n"
            f"    {show('adjusted', self.adjusted)})"
        )


def _bucket_sort(keys: np.ndarray, out: np.ndarray) -> None:
    """Sort packed keys into ``out``: one counting-sort pass on the leading bits, then
    np.sort per group.

    np.sort of 10^7 keys costs about twice as much per element as sorting cache-sized
    pieces, and one histogram plus one scatter pass is cheaper than the difference.
    """
    shift = _tunables.BUCKET_SHIFT
    nb = 1 << (64 - shift)
    hist = _k.key_histogram(keys, shift, nb)
    before = np.cumsum(hist) - hist
    group_of_bucket = (before // _tunables.BUCKET_TARGET).astype(np.int32)
    sizes = np.bincount(group_of_bucket, weights=hist).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    _k.key_scatter(keys, shift, group_of_bucket, starts, out)
    for a, n in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        out[a : a + n].sort()


def _sort_rows(p2d: np.ndarray, m_eff: np.ndarray, s: np.ndarray | None = None):
    """Order and sorted values per row (NaNs last), via packed-key np.sort.

    ``s`` (F, M) float64 receives the sorted values; :func:`_family` passes its
    output array, whose rows are overwritten only after each row's procedure has
    read them, which saves a buffer of M floats.  The bucket sort's second key
    buffer is ``s`` too: unpacking reads each key before writing that slot.
    """
    F, M = p2d.shape
    idxbits = max(2, (M - 1).bit_length())
    keys = np.empty((F, M), dtype=np.uint64)
    _k.pack_keys(p2d, idxbits, keys)
    if s is None:
        s = np.empty((F, M))
    order = keys.view(np.int64)
    if F == 1 and M >= _tunables.BUCKET_MIN:
        sorted_keys = s.view(np.uint64)
        _bucket_sort(keys[0], sorted_keys[0])
    else:
        keys.sort(axis=1)
        sorted_keys = keys
    ok = _k.unpack_sorted(sorted_keys, idxbits, p2d, m_eff, order, s)
    for r in np.flatnonzero(~ok):  # many distinct near-equal values: exact argsort
        order[r] = np.argsort(p2d[r], kind="stable")
        s[r] = p2d[r, order[r]]
    return order, s


def _holm_sidak_critical(alpha: float, m: int, stop: int) -> np.ndarray:
    """``1 - (1 - alpha)**(1 / (m - i))`` for i = 0..stop-1, statsmodels' operations, in place."""
    c = np.arange(m, m - stop, -1, dtype=np.float64)
    np.divide(1.0, c, out=c)
    np.power(1.0 - alpha, c, out=c)
    np.subtract(1, c, out=c)
    return c


def _holm_sidak_rejections(s: np.ndarray, m_eff: np.ndarray, alpha: float) -> np.ndarray:
    """Holm–Šidák's number of rejections per row of sorted values: the first rank whose
    value exceeds its critical value.  The critical values (a ``pow`` each) are computed
    on growing prefixes only as far as that rank, which is usually far below m."""
    n_rej = np.zeros(m_eff.size, dtype=np.int64)
    for r in np.flatnonzero(m_eff > 0):
        m = int(m_eff[r])
        start, stop = 0, min(m, _tunables.HOLM_SIDAK_PREFIX)
        while True:
            crit = _holm_sidak_critical(alpha, m - start, stop - start)
            fails = s[r, start:stop] > crit
            if fails.any():
                n_rej[r] = start + int(np.argmax(fails))
                break
            if stop == m:
                n_rej[r] = m
                break
            start, stop = stop, min(m, 4 * stop)
    return n_rej


def _per_m(m_eff: np.ndarray, fn, width: int) -> np.ndarray:
    """Row-wise array built by ``fn(m)`` once per distinct family size."""
    out = np.empty((m_eff.size, width))
    for m in np.unique(m_eff[m_eff > 0]):
        rows = m_eff == m
        out[rows, : int(m)] = fn(int(m))
    return out


def _holm_candidates(p: np.ndarray, m: int, k: float):
    """Indices of the p-values whose (generalized) Holm adjusted value may be below 1.

    At rank i the adjusted value is at least c_i p_(i) with c_i = (m + k - max(i, k))/k
    >= (m - i + 1)/k (LR 2005, Thm 2.2), and i <= #{p <= p_(i)}.  So every p-value in
    the binade [2^e, 2^(e+1)) adjusts to 1 (and is not rejected, alpha < 1) once
    (m - #{p < 2^(e+1)} + 1) 2^e / k > 1; by monotonicity so does everything above.
    A histogram of exponents finds the lowest such binade in one pass, and only the
    p-values below it need sorting -- typically the signals, a small part of m.
    Returns None when that would not save much.
    """
    hist = _k.binade_counts(p)
    at_most = np.cumsum(hist[:1024])  # number of p-values with exponent <= e
    low = np.ldexp(1.0, np.arange(1024) - 1023)
    low[0] = 0.0  # binade 0 holds 0 and the subnormals
    ok = (m - at_most + 1) * low >= k * (1 + 1e-9)  # margin: rounding cannot undo it
    if not ok.any():
        return None
    e0 = int(np.argmax(ok))
    if at_most[e0 - 1] > 0.6 * m:
        return None
    return np.flatnonzero(p < low[e0])


def _family(p2d, method, alpha, k, maxiter, m_eff, is_sorted=False):
    """Adjusted values and decisions for each row of ``p2d`` (rows with m_eff < 0 skipped)."""
    F, M = p2d.shape
    k = float(k)  # the kernels take k as a float: exact for any k (see lr_divisor)
    adj = np.empty((F, M))
    rej = np.empty((F, M), dtype=bool)
    if method in ("bonferroni", "sidak", "generalized-bonferroni", "generalized-sidak"):
        # single-step: no sorting needed; m is per row under nan_policy="omit"
        m = np.where(m_eff > 0, m_eff, 1).astype(np.float64)[:, None]
        bonf = method in ("bonferroni", "generalized-bonferroni")
        # critical values with statsmodels' scalar operations, once per family size
        # (LR 2005 Thm 2.1: k*alpha/m; k = 1 is Bonferroni bit for bit)
        thr = _per_m(
            m_eff,
            (lambda mm: (k * alpha) / float(mm))
            if bonf
            else (lambda mm: _codes.sidak_critical(alpha, mm)),
            1,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            # in place in adj (no temporaries the size of the input), same operations
            if bonf:
                np.less_equal(p2d, thr, out=rej)
                np.multiply(p2d, m, out=adj)
                np.divide(adj, k, out=adj)
                np.minimum(adj, 1.0, out=adj)
            elif method == "sidak" or k == 1:
                np.less_equal(p2d, thr, out=rej)
                np.negative(p2d, out=adj)
                np.log1p(adj, out=adj)
                np.multiply(m, adj, out=adj)
                np.expm1(adj, out=adj)
                np.negative(adj, out=adj)
                np.minimum(adj, 1.0, out=adj)
            else:
                # Guo & Romano (2007): under independence the number of true nulls
                # with p <= c is stochastically <= Bin(m, c); the adjusted value is
                # P(Bin(m, p) >= k) and rejection is adjusted <= alpha.
                # (< k tests: no k false rejections are possible, adjusted value 0)
                _k.generalized_sidak_adjusted(p2d, m[:, 0], k, adj)
                np.less_equal(adj, alpha, out=rej)
        np.copyto(adj, np.nan, where=np.isnan(p2d))
    else:
        code = _codes.CODES[method]
        m_sorted = m_eff
        cand = None
        if (
            code in (_codes.HOLM, _codes.GENERALIZED_HOLM)
            and F == 1
            and not is_sorted
            and m_eff[0] > 0
        ):
            cand = _holm_candidates(p2d[0], int(m_eff[0]), k)
        if cand is not None:  # only the candidates need ordering; the rest adjust to 1
            adj.fill(1.0)
            order, s = _sort_rows(p2d[:, cand], np.array([cand.size]))
            order = cand[order]
            m_sorted = np.array([cand.size])
        elif is_sorted:
            order = np.ascontiguousarray(np.broadcast_to(np.arange(M, dtype=np.int64), (F, M)))
            s = p2d
        else:
            order, s = _sort_rows(p2d, m_eff, adj)
        nrej = np.full(F, -1, dtype=np.int64)
        thr = np.full(F, -1.0)
        out = (adj, rej, nrej, thr)
        # one kernel per procedure: a call compiles only the one it needs
        if code in (_codes.HOLM, _codes.GENERALIZED_HOLM):
            _k.holm_rows(s, order, m_sorted, m_eff, alpha, k, *out)
        elif code in (_codes.HOCHBERG, _codes.GENERALIZED_HOCHBERG):
            _k.hochberg_rows(s, order, m_eff, alpha, k, *out)
        elif code == _codes.HOLM_SIDAK:
            # statsmodels' critical values, computed with the same numpy calls
            n_rejected = _holm_sidak_rejections(s, m_eff, alpha)
            _k.holm_sidak_rows(s, order, m_eff, n_rejected, *out)
        elif code in (_codes.FDR_BH, _codes.FDR_BY):
            cm = np.ones(F)
            if code == _codes.FDR_BY:
                cm = _per_m(m_eff, _codes.harmonic_sum, 1)[:, 0]
            _k.bh_rows(s, order, m_eff, alpha, cm, *out)
        elif code in (_codes.FDR_TSBH, _codes.FDR_TSBKY):
            _k.twostage_rows(s, order, m_eff, alpha, code == _codes.FDR_TSBKY, maxiter, *out)
        elif code == _codes.FDR_GBS:
            _k.gbs_rows(s, order, m_eff, alpha, *out)
        else:
            _k.hommel_rows(s, order, m_eff, alpha, *out)
        if code not in (_codes.HOMMEL, _codes.FDR_GBS):
            if is_sorted:  # positional, as statsmodels (input order trusted)
                np.less(np.arange(M), nrej[:, None], out=rej)
            else:
                np.less_equal(p2d, thr[:, None], out=rej)
        if cand is not None and m_eff[0] < M:  # nan_policy="omit": NaNs were not candidates
            np.copyto(adj, np.nan, where=np.isnan(p2d))
    skipped = m_eff < 0
    if skipped.any():
        adj[skipped] = np.nan
        rej[skipped] = False
    return adj, rej


def adjust(
    pvalues: ArrayLike,
    method: str = "holm",
    *,
    alpha: float = 0.05,
    k: int = 1,
    nan_policy: str = "propagate",
    axis: int | None = None,
) -> AdjustResult:
    """Adjust p-values for multiple testing and decide which hypotheses to reject.

    Parameters
    ----------
    pvalues : array_like
        p-values in [0, 1], any shape.
    method : str, default "holm"
        One of :data:`METHODS` (statsmodels' aliases such as ``"hs"`` or
        ``"fdr_i"`` are accepted too, case-insensitively):

        - ``"bonferroni"``: reject p <= alpha/m.  FWER, any dependence.
        - ``"sidak"``: reject p <= 1 - (1 - alpha)^(1/m).  FWER under
          independence (Šidák 1967).
        - ``"holm"``: step-down with alpha/(m - i + 1).  FWER, any dependence
          (Holm 1979).
        - ``"holm-sidak"``: step-down with 1 - (1 - alpha)^(1/(m - i + 1)).
          FWER under independence.
        - ``"hochberg"`` (alias ``"simes-hochberg"``): step-up with
          alpha/(m - i + 1).  FWER under PRDS/MTP2 (Hochberg 1988, Sarkar 2008).
        - ``"hommel"``: closed Simes tests.  FWER under PRDS/MTP2 (Hommel 1988);
          computed in O(m log m) after sorting.
        - ``"fdr_bh"``: Benjamini–Hochberg step-up.  FDR under PRDS.
        - ``"fdr_by"``: Benjamini–Yekutieli.  FDR, any dependence.
        - ``"fdr_tsbh"``, ``"fdr_tsbky"``: two-stage adaptive step-up
          (Benjamini, Krieger & Yekutieli 2006), statsmodels' definition with
          ``maxiter=1``; the adjusted values are specific to ``alpha``.  FDR
          under independence.
        - ``"fdr_gbs"``: adaptive step-down of Gavrilov, Benjamini & Sarkar
          (2009) with statsmodels' adjusted values.  FDR under independence.
        - ``"generalized-bonferroni"``: reject p <= k alpha/m.  k-FWER, any
          dependence (Lehmann & Romano 2005, Thm 2.1).  k = 1 is Bonferroni.
        - ``"generalized-holm"``: step-down with k alpha/m for i <= k and
          k alpha/(m + k - i) for i > k (1-based rank i).  k-FWER, any
          dependence (Lehmann & Romano 2005, Thm 2.2).  k = 1 is Holm.
        - ``"generalized-hochberg"``: step-up with the same critical values.
          k-FWER under MTP2 (Sarkar 2008).  k = 1 is Hochberg.
        - ``"generalized-sidak"``: single step, reject when
          P(Bin(m, p) >= k) <= alpha.  k-FWER under independence (Guo &
          Romano 2007).  k = 1 is Šidák.
    alpha : float, default 0.05
        Level in (0, 1) of the error rate.
    k : int, default 1
        The k of the k-FWER (>= 1); classical methods require k = 1.  k larger
        than the family size is allowed: no family of m < k tests can contain
        k false rejections, and the formulas are applied as written.
    nan_policy : {"propagate", "omit", "raise"}, default "propagate"
        ``"propagate"``: a family containing a NaN gets NaN adjusted values and
        no rejection (its size and ranks are unknown).  ``"omit"``: NaNs are
        not tests: they are dropped from their family (m counts the non-NaN
        p-values) and get NaN adjusted value and reject False.  ``"raise"``:
        ``ValueError``.  The same for every method.
    axis : int or None, default None
        None: all p-values form ONE family.  An int: every 1-D slice along that
        axis is its own family (vectorised over families).

    Returns
    -------
    AdjustResult
        ``reject``, ``adjusted`` (same shape as ``pvalues``), ``method``,
        ``alpha``, ``k``, ``n_tests`` and ``n_rejected`` (int, or an array over
        families when ``axis`` is given).

    Notes
    -----
    The adjusted p-value of a hypothesis is the smallest level at which the
    procedure rejects it (step-down values are running maxima, step-up values
    running minima, clipped to 1); for k-FWER methods, at the given k.
    ``reject`` is computed from each procedure's critical values with exactly
    statsmodels' floating-point operations, so decisions match statsmodels;
    it equals ``adjusted <= alpha`` except possibly when the two differ by
    rounding at the boundary.  Ties get equal adjusted values.

    References
    ----------
    .. [1] S. Holm (1979). A simple sequentially rejective multiple test
       procedure. Scand. J. Statist. 6, 65-70.
    .. [2] Y. Hochberg (1988). A sharper Bonferroni procedure for multiple
       tests of significance. Biometrika 75, 800-802.
    .. [3] G. Hommel (1988). A stagewise rejective multiple test procedure
       based on a modified Bonferroni test. Biometrika 75, 383-386.
    .. [4] Y. Benjamini, Y. Hochberg (1995). Controlling the false discovery
       rate. JRSS B 57, 289-300.
    .. [5] Y. Benjamini, D. Yekutieli (2001). The control of the false
       discovery rate in multiple testing under dependency. Ann. Statist. 29.
    .. [6] Y. Benjamini, A. Krieger, D. Yekutieli (2006). Adaptive linear
       step-up procedures that control the FDR. Biometrika 93, 491-507.
    .. [7] J. Gavrilov, Y. Benjamini, S. Sarkar (2009). An adaptive step-down
       procedure with proven FDR control under independence. Ann. Statist. 37.
    .. [8] E. Lehmann, J. Romano (2005). Generalizations of the familywise
       error rate. Ann. Statist. 33, 1138-1154.
    .. [9] S. Sarkar (2008). Generalizing Simes' test and Hochberg's stepup
       procedure. Ann. Statist. 36, 337-363.
    .. [10] W. Guo, J. Romano (2007). A generalized Sidak-Holm procedure and
       control of generalized error rates under independence. Stat. Appl.
       Genet. Mol. Biol. 6(1), Art. 3.
    .. [11] R. Meijer, T. Krebs, J. Goeman (2019). Hommel's procedure in
       linear time. Biometrical Journal 61, 73-82.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.multitest import adjust
    >>> res = adjust([0.01, 0.04, 0.03, 0.005], "holm", alpha=0.05)
    >>> res.reject
    array([ True, False, False,  True])
    >>> res.adjusted
    array([0.03, 0.06, 0.06, 0.02])
    >>> adjust([0.01, 0.04, 0.03, 0.005], "fdr_bh").n_rejected
    4
    >>> adjust([0.001, 0.02, 0.04], "generalized-holm", k=2).reject
    array([ True,  True,  True])

    Each row its own family:

    >>> adjust(np.array([[0.01, 0.02], [0.2, 0.01]]), "bonferroni", axis=1).n_rejected
    array([2, 1])
    """
    method, k = resolve_method(method, k)
    alpha = check_alpha(alpha)
    nan_policy = check_nan_policy(nan_policy)
    p = as_probabilities(pvalues, "pvalues", allow_nan=nan_policy != "raise")
    if axis is None:
        p2d = np.ascontiguousarray(p.reshape(1, -1))
        moved_shape = None
    else:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be None or an int; got {axis!r}")
        if not -p.ndim <= axis < p.ndim:
            raise ValueError(f"axis {axis} is out of bounds for pvalues with {p.ndim} dim(s)")
        axis = int(axis) % p.ndim
        moved = np.moveaxis(p, axis, -1)
        moved_shape = moved.shape
        p2d = np.ascontiguousarray(moved.reshape(math.prod(moved_shape[:-1]), moved_shape[-1]))
    F, M = p2d.shape
    m_eff = np.full(F, M, dtype=np.int64)
    n_tests = m_eff.copy()
    if nan_policy != "raise":
        nan = np.isnan(p2d)
        if F == 1:
            has = np.array([nan.any()])
        else:
            has = nan.any(axis=1)
        if has.any():
            if nan_policy == "omit":
                m_eff = M - nan.sum(axis=1)
                n_tests = m_eff.copy()
            else:
                m_eff[has] = -1
    adj, rej = _family(p2d, method, alpha, k, 1, m_eff)
    n_rej = rej.sum(axis=1)
    if moved_shape is None:
        adj = adj.reshape(p.shape)
        rej = rej.reshape(p.shape)
        n_tests, n_rej = int(n_tests[0]), int(n_rej[0])
    else:
        adj = np.moveaxis(adj.reshape(moved_shape), -1, axis)
        rej = np.moveaxis(rej.reshape(moved_shape), -1, axis)
        n_tests = n_tests.reshape(moved_shape[:-1])
        n_rej = n_rej.reshape(moved_shape[:-1])
    return AdjustResult(
        reject=rej,
        adjusted=adj,
        method=method,
        alpha=alpha,
        k=k,
        n_tests=n_tests,
        n_rejected=n_rej,
        axis=axis,
    )


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
    >>> from mtcert.multitest import multipletests
    >>> reject, corrected, a_sidak, a_bonf = multipletests([0.01, 0.02, 0.3], method="h")
    >>> reject
    array([ True,  True, False])
    >>> corrected
    array([0.03, 0.04, 0.3 ])
    """
    lfdr = isinstance(method, str) and method.lower() in _LFDR_ALIASES
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
        adj, rej = _family(p2d, method, alpha, 1, maxiter, m_eff, is_sorted=bool(is_sorted))
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
    >>> from mtcert.multitest import fdrcorrection
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
    >>> from mtcert.multitest import fdrcorrection_twostage
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
