"""Multiple-testing procedures with adjusted p-values: FWER, k-FWER and FDR.

:func:`adjust` is the validated, vectorised entry point; the method names and
aliases come from :mod:`mtcert.stats.methods`, the drop-in replacements for
statsmodels' functions (:func:`~mtcert.stats.compat.multipletests`, ...) live in
:mod:`mtcert.stats.compat`.  The numerical work happens in
:mod:`mtcert._kernels.multitest`.  A method name becomes its procedure code
(:data:`mtcert._kernels.methods.CODES`) once, in :func:`adjust`; everything
below it (:func:`adjust_families`, the kernels) works on the code.

Imports numpy, the kernels (:mod:`mtcert._kernels.multitest`, the code table
:mod:`mtcert._kernels.methods`), :mod:`mtcert._tunables` and
:mod:`mtcert.stats.methods` / :mod:`mtcert.stats.validation`.

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

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from mtcert import _tunables
from mtcert._kernels import methods as _codes
from mtcert._kernels.multitest import (
    bh_rows,
    binade_counts,
    bucket_groups,
    gbs_rows,
    generalized_sidak_adjusted,
    hochberg_rows,
    holm_rows,
    holm_sidak_rows,
    hommel_rows,
    key_histogram,
    key_partition,
    key_scatter,
    pack_keys,
    twostage_rows,
    unpack_order,
)
from mtcert.stats.families import check_axis, family_shape, from_families, to_families
from mtcert.stats.methods import (
    FDR_METHODS,
    FWER_METHODS,
    KFWER_METHODS,
    METHODS,
    canonical_method,
    resolve_method,
)
from mtcert.stats.validation import (
    as_probabilities,
    check_alpha,
    check_nan_policy,
)

__all__ = [
    "FDR_METHODS",
    "FWER_METHODS",
    "KFWER_METHODS",
    "METHODS",
    "AdjustResult",
    "adjust",
    "canonical_method",
    "resolve_method",
]


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
    axis : int, tuple of int or None
        The family axes as given, made non-negative (a tuple sorted): None
        when all p-values formed one family.
    """

    reject: np.ndarray
    adjusted: np.ndarray
    method: str
    alpha: float
    k: int
    n_tests: int | np.ndarray
    n_rejected: int | np.ndarray
    axis: int | tuple[int, ...] | None = field(default=None)

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


def _bucket_sort(keys: np.ndarray) -> None:
    """Sort packed keys in place: one counting pass on the leading bits, then np.sort
    per cache-sized group, with scratch for at most half of the keys.

    np.sort of 10^7 keys costs about twice as much per element as sorting cache-sized
    pieces, and one histogram plus one scatter pass is cheaper than the difference.
    The groups (contiguous key ranges) are cut into parts of at most half the keys;
    a sequential partition pass brings each part's keys together, which are then
    scattered by group into the scratch, sorted there and copied back (a single
    group larger than the scratch is sorted where it lies).  About M / 8 buckets
    (up to 2^18: 10 exponent and 8 mantissa bits of the p-value), so that the
    bucket tables stay small next to the keys.
    """
    m = keys.size
    bits = min(18, max(4, m.bit_length() - 3))
    shift = 64 - bits
    group_of_bucket, sizes = bucket_groups(
        key_histogram(keys, shift, 1 << bits), _tunables.BUCKET_TARGET
    )
    starts = np.cumsum(sizes) - sizes
    cap = (m + 1) // 2
    scratch = np.empty(cap, dtype=np.uint64)
    n_groups = sizes.size
    size_of = sizes.tolist()
    g = lo = 0
    while g < n_groups:
        end, total = g + 1, size_of[g]
        while end < n_groups and total + size_of[end] <= cap:
            total += size_of[end]
            end += 1
        part = keys[lo : lo + total]
        if end < n_groups:
            key_partition(keys[lo:], shift, group_of_bucket, end)
        if total <= cap:
            key_scatter(part, shift, group_of_bucket, starts - lo, scratch)
            for a, n in zip(starts[g:end].tolist(), size_of[g:end], strict=True):
                if n > 1:
                    scratch[a - lo : a - lo + n].sort()
            part[:] = scratch[:total]
        else:
            part.sort()
        g, lo = end, lo + total


def _order_rows(p2d: np.ndarray, m_eff: np.ndarray, buf: np.ndarray, index=None) -> np.ndarray:
    """Each row's exact ascending order of ``p2d`` (NaNs last), via packed-key np.sort.

    The keys are packed and sorted in ``buf`` (a float64 array of at least as many
    entries per row; :func:`adjust_families` passes its output array); the order is
    int32 where the row length allows.  ``index``: order only ``p2d[0, index]`` (one
    row), reported as positions in the row.
    """
    F, M = p2d.shape
    if index is None:
        index = np.empty(0, dtype=np.int64)
    n = index.size or M
    idxbits = max(2, (n - 1).bit_length())
    keys = buf.view(np.uint64)[:, :n]
    pack_keys(p2d, index, idxbits, keys)
    if F == 1 and n >= _tunables.BUCKET_MIN:
        _bucket_sort(keys[0])
    else:
        keys.sort(axis=1)
    order = np.empty((F, n), dtype=np.int32 if M < 2**31 else np.int64)
    ok = unpack_order(keys, idxbits, p2d, m_eff, index, order)
    for r in np.flatnonzero(~ok):  # many distinct near-equal values: exact argsort
        if index.size:
            order[r] = index[np.argsort(p2d[r, index], kind="stable")]
        else:
            order[r] = np.argsort(p2d[r], kind="stable")
    return order


def _holm_sidak_critical(alpha: float, m: int, stop: int) -> np.ndarray:
    """``1 - (1 - alpha)**(1 / (m - i))`` for i = 0..stop-1, statsmodels' operations, in place."""
    c = np.arange(m, m - stop, -1, dtype=np.float64)
    np.divide(1.0, c, out=c)
    np.power(1.0 - alpha, c, out=c)
    np.subtract(1, c, out=c)
    return c


def _holm_sidak_rejections(p2d: np.ndarray, order: np.ndarray, m_eff: np.ndarray, alpha: float):
    """Holm–Šidák's number of rejections per row: the first rank whose value exceeds its
    critical value.  The critical values (a ``pow`` each) are computed on growing
    prefixes only as far as that rank, which is usually far below m; each step covers
    at most m / 16 ranks (bounded work arrays)."""
    n_rej = np.zeros(m_eff.size, dtype=np.int64)
    for r in np.flatnonzero(m_eff > 0):
        m = int(m_eff[r])
        step = max(_tunables.HOLM_SIDAK_PREFIX, m // 16)
        start, stop = 0, min(m, _tunables.HOLM_SIDAK_PREFIX)
        while True:
            crit = _holm_sidak_critical(alpha, m - start, stop - start)
            fails = p2d[r, order[r, start:stop]] > crit
            if fails.any():
                n_rej[r] = start + int(np.argmax(fails))
                break
            if stop == m:
                n_rej[r] = m
                break
            start, stop = stop, min(m, stop + min(3 * stop, step))
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
    hist = binade_counts(p)
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


# procedures with one critical value per family: decided without sorting
_SINGLE_STEP = (
    _codes.BONFERRONI,
    _codes.SIDAK,
    _codes.GENERALIZED_BONFERRONI,
    _codes.GENERALIZED_SIDAK,
)


def adjust_families(p2d, code, alpha, k, maxiter, m_eff, is_sorted=False):
    """Adjusted values and decisions for each row of ``p2d``: :func:`adjust` after validation.

    The internal entry point for callers that have validated their input and
    resolved the method already (:func:`adjust`, :mod:`mtcert.stats.compat`,
    SEGCERTIFY's general path).

    Parameters
    ----------
    p2d : ndarray of float64, shape (F, M)
        C-contiguous p-values in [0, 1] (or NaN), one family per row.
    code : int
        The procedure's code in :data:`mtcert._kernels.methods.CODES`.
    alpha : float
        Validated level.
    k : int or float
        Validated k of the k-FWER (1 otherwise).
    maxiter : int
        Iterations of the two-stage procedures (see :func:`~mtcert.stats.compat.multipletests`).
    m_eff : ndarray of int64, shape (F,)
        Family size per row (the non-NaN entries under ``nan_policy="omit"``);
        a row with ``m_eff < 0`` is skipped (NaN adjusted values, no rejection).
    is_sorted : bool, default False
        Each row is sorted ascending (decisions by position, as statsmodels).

    Returns
    -------
    adjusted : ndarray of float64, shape (F, M)
    reject : ndarray of bool, shape (F, M)
    """
    F, M = p2d.shape
    k = float(k)  # the kernels take k as a float: exact for any k (see lr_divisor)
    adj = np.empty((F, M))
    if code in _SINGLE_STEP:
        rej = np.empty((F, M), dtype=bool)
        # single-step: no sorting needed; m is per row under nan_policy="omit"
        m = np.where(m_eff > 0, m_eff, 1).astype(np.float64)[:, None]
        bonf = code in (_codes.BONFERRONI, _codes.GENERALIZED_BONFERRONI)
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
            elif code == _codes.SIDAK or k == 1:
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
                generalized_sidak_adjusted(p2d, m[:, 0], k, adj)
                np.less_equal(adj, alpha, out=rej)
        np.copyto(adj, np.nan, where=np.isnan(p2d))
    else:
        # Sorting procedures: the order (int32 where M allows) is all they keep besides
        # the output; the sort keys live in ``adj`` until the procedure overwrites them.
        m_sorted = m_eff
        order = None
        if is_sorted:
            order = np.empty((F, M), dtype=np.int32 if M < 2**31 else np.int64)
            order[:] = np.arange(M, dtype=order.dtype)
        elif code in (_codes.HOLM, _codes.GENERALIZED_HOLM) and F == 1 and m_eff[0] > 0:
            cand = _holm_candidates(p2d[0], int(m_eff[0]), k)
            if cand is not None:  # only the candidates need ordering; the rest adjust to 1
                m_sorted = np.array([cand.size])
                if cand.size:
                    order = _order_rows(p2d, m_sorted, adj, cand)
                else:
                    order = np.empty((1, 0), dtype=np.int32)
                del cand
                adj.fill(1.0)
        if order is None:
            order = _order_rows(p2d, m_eff, adj)
        nrej = np.full(F, -1, dtype=np.int64)
        thr = np.full(F, -1.0)
        out = (adj, nrej, thr)
        # one kernel per procedure: a call compiles only the one it needs
        if code in (_codes.HOLM, _codes.GENERALIZED_HOLM):
            holm_rows(order, p2d, m_sorted, m_eff, alpha, k, *out)
        elif code in (_codes.HOCHBERG, _codes.GENERALIZED_HOCHBERG):
            hochberg_rows(order, p2d, m_eff, alpha, k, *out)
        elif code == _codes.HOLM_SIDAK:
            # statsmodels' critical values, computed with the same numpy calls
            n_rejected = _holm_sidak_rejections(p2d, order, m_eff, alpha)
            holm_sidak_rows(order, p2d, m_eff, n_rejected, *out)
        elif code in (_codes.FDR_BH, _codes.FDR_BY):
            cm = np.ones(F)
            if code == _codes.FDR_BY:
                cm = _per_m(m_eff, _codes.harmonic_sum, 1)[:, 0]
            bh_rows(order, p2d, m_eff, alpha, cm, *out)
        elif code in (_codes.FDR_TSBH, _codes.FDR_TSBKY):
            twostage_rows(order, p2d, m_eff, alpha, code == _codes.FDR_TSBKY, maxiter, *out)
        elif code == _codes.FDR_GBS:
            gbs_rows(order, p2d, m_eff, *out)
        else:
            # in the output seen as int32 pairs (one int64 scratch row past 2^31 tests)
            work = adj.view(np.int32) if order.dtype == np.int32 else np.empty((1, 2 * M), np.int64)
            hommel_rows(order, p2d, m_eff, *out, work)
            del work
        del order
        rej = np.empty((F, M), dtype=bool)
        if code in (_codes.HOMMEL, _codes.FDR_GBS):
            # element-wise decisions; NaN (omitted) entries compare False
            np.less_equal(adj, alpha, out=rej)
        elif is_sorted:  # positional, as statsmodels (input order trusted)
            np.less(np.arange(M), nrej[:, None], out=rej)
        else:
            np.less_equal(p2d, thr[:, None], out=rej)
        if m_sorted is not m_eff and m_eff[0] < M:  # nan_policy="omit": NaNs not candidates
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
    axis : int, tuple of int or None, default None
        None: all p-values form ONE family.  An int: every 1-D slice along that
        axis is its own family (vectorised over families).  A tuple: as in
        numpy's reductions, the axes given together form one family and the
        other axes index the families, e.g. ``axis=(1, 2)`` on p-values of
        shape ``(B, H, W)`` makes ``B`` families of ``H * W`` tests (see
        :func:`mtcert.stats.families.check_axis`).

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
    >>> from mtcert.stats.multitest import adjust
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

    A batch of two 2 x 2 p-value maps, each map one family:

    >>> maps = np.array([[[0.01, 0.02], [0.2, 0.01]], [[0.5, 0.001], [0.03, 0.02]]])
    >>> adjust(maps, "holm", axis=(1, 2)).n_rejected
    array([3, 1])
    """
    method, k = resolve_method(method, k)
    alpha = check_alpha(alpha)
    nan_policy = check_nan_policy(nan_policy)
    p = as_probabilities(pvalues, "pvalues", allow_nan=nan_policy != "raise")
    axis = check_axis(axis, p.ndim)
    p2d = to_families(p, axis)
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
    adj, rej = adjust_families(p2d, _codes.CODES[method], alpha, k, 1, m_eff)
    n_rej = rej.sum(axis=1)
    adj = from_families(adj, p.shape, axis)
    rej = from_families(rej, p.shape, axis)
    if axis is None:
        n_tests, n_rej = int(n_tests[0]), int(n_rej[0])
    else:
        n_tests = n_tests.reshape(family_shape(p.shape, axis))
        n_rej = n_rej.reshape(family_shape(p.shape, axis))
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
