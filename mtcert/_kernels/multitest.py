"""Numba kernels for :mod:`mtcert.stats.multitest` (no validation inside; callers validate).

Layout: every kernel works on C-contiguous 2-D arrays of shape ``(F, M)``, one
family per row.  ``m_eff[r]`` is the number of leading (sorted) entries of row
``r`` that take part in the family; entries past it are NaN (``nan_policy``
"omit") and get adjusted value NaN and reject False.  A row with
``m_eff[r] < 0`` is skipped entirely (the caller fills it).

Sorting trick: ``np.argsort`` of 1e7 floats is ~3x slower than ``np.sort`` on
this class of CPU.  For p-values in [0, 1] the IEEE-754 bit pattern is
monotone in the value and has its two top bits clear, so the value's leading
bits and the element's index fit into one ``uint64`` key; ``np.sort`` of those
keys gives the order up to values that agree on the kept leading bits, which
:func:`unpack_order` repairs with a budgeted insertion sort (a row that blows
the budget is reported so the caller can fall back to a stable argsort).

Memory: the keys are sorted in the output array of adjusted values, the order
is int32 where the family size allows, and the procedures read each value
through the order (``p[o[i]]``) and write its adjusted value straight to its
place in the output: no array of sorted values, no second scatter.

Imports numpy, numba, :mod:`mtcert._jit` and the kernels of
:mod:`mtcert._kernels.binomial` and :mod:`mtcert._kernels.methods` only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mtcert._jit import tiered
from mtcert._kernels.binomial import upper_tail_by_sums
from mtcert._kernels.methods import lr_divisor

_NAN_BITS = np.uint64((1 << 62) - 1)  # above the bits of 1.0 (0x3FF0...)


@tiered
@njit(cache=True)
def pack_keys(p, index, idxbits, keys):
    """Write ``(leading value bits << idxbits) | i`` for the i-th value of every row.

    The i-th value of row r is ``p[r, index[i]]`` (``index`` empty: ``p[r, i]``);
    ``keys`` is (F, number of values).
    """
    bits = p.view(np.uint64)
    ib = np.uint64(idxbits)
    shift = np.uint64(idxbits - 2)
    F, n = keys.shape
    mapped = index.shape[0] != 0
    for r in range(F):
        for i in range(n):
            j = index[i] if mapped else i
            x = p[r, j]
            if x != x:
                b = _NAN_BITS
            elif x == 0.0:  # also maps -0.0 (sign bit set) to the bottom
                b = np.uint64(0)
            else:
                b = bits[r, j]
            keys[r, i] = ((b >> shift) << ib) | np.uint64(i)


@tiered
@njit(cache=True)
def unpack_order(keys, idxbits, p, m_eff, index, order):
    """Turn sorted packed keys into each row's exact ascending order of ``p``.

    ``order[r, i]`` is the position in row r of its i-th smallest value: the
    key's index, mapped through ``index`` unless that is empty.  Values sharing
    the kept leading bits came out in index order: an insertion sort on
    ``p[r, order[r, i]]`` restores value order (NaNs sit after ``m_eff[r]``).
    Returns a boolean array: False for rows whose near-tie repair exceeded its
    budget (their ``order`` is then unusable).
    """
    F, n_keys = keys.shape
    mask = np.uint64((1 << idxbits) - 1)
    mapped = index.shape[0] != 0
    ok = np.ones(F, dtype=np.bool_)
    for r in range(F):
        pr = p[r]
        o = order[r]
        n = m_eff[r]
        budget = 8 * n_keys + 64
        moves = 0
        top = 0.0  # the largest value so far
        for i in range(n_keys):
            j = np.int64(keys[r, i] & mask)
            oi = index[j] if mapped else j
            o[i] = oi
            if i >= n:
                continue  # the NaNs, last
            v = pr[oi]
            if i == 0 or not (v < top):
                top = v
                continue
            j = i - 1
            while j >= 0 and pr[o[j]] > v:
                o[j + 1] = o[j]
                j -= 1
                moves += 1
            o[j + 1] = oi
            if moves > budget:
                ok[r] = False
                break
    return ok


# --------------------------------------------------------------------------
# Procedures on one family: ``pr`` is its row of p-values in input order and
# ``o`` its ascending order (``pr[o[i]]`` the (i+1)-th smallest, i < m).  Each
# writes the adjusted values (clipped to 1) straight into the output row
# ``out`` at ``o[i]``: no array of sorted values and no second scatter.
# Floating-point operations follow statsmodels 0.15 multipletests term by
# term so that decisions are identical and adjusted values agree to rounding.
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _step_down_lr(pr, o, n, m, alpha, k, out):
    """Generalized Holm (LR 2005, Thm 2.2); k = 1 is Holm (1979).

    ``o`` orders the ``n <= m`` smallest of the family's m p-values (the caller
    has shown that the others have adjusted value 1 and are not rejected).
    """
    ka = k * alpha
    nrej = n
    for i in range(n):
        if pr[o[i]] > ka / lr_divisor(i + 1, m, k):
            nrej = i
            break
    run = -np.inf
    for i in range(n):
        v = pr[o[i]] * lr_divisor(i + 1, m, k) / k
        if v > run:
            run = v
        out[o[i]] = min(run, 1.0)
    return nrej


@njit(cache=True, error_model="numpy")
def _step_up_lr(pr, o, m, alpha, k, out):
    """Generalized Hochberg (Sarkar 2008); k = 1 is Hochberg (1988).  One pass from the
    largest value: the decision (the first value from the top within its critical
    value) and the adjusted values (a running minimum)."""
    ka = k * alpha
    nrej = 0
    run = np.inf
    for i in range(m - 1, -1, -1):
        x = pr[o[i]]
        if nrej == 0 and x <= ka / lr_divisor(i + 1, m, k):
            nrej = i + 1
        v = x * lr_divisor(i + 1, m, k) / k
        if v < run:
            run = v
        out[o[i]] = min(run, 1.0)
    return nrej


# Sorted values gathered per block of this many before an expensive per-value
# computation: the gathers then overlap (a gather feeding a log1p and an expm1
# directly stalls on each cache miss).
_GATHER_BLOCK = 1024


@njit(cache=True, error_model="numpy")
def _holm_sidak_adjusted(pr, o, m, out):
    """Holm–Šidák step-down adjusted values (the caller counts the rejections: it compares
    with statsmodels' critical values only as far as the first failure)."""
    run = -np.inf
    buf = np.empty(min(m, _GATHER_BLOCK))
    for lo in range(0, m, _GATHER_BLOCK):
        hi = min(m, lo + _GATHER_BLOCK)
        for i in range(lo, hi):
            buf[i - lo] = pr[o[i]]
        for i in range(lo, hi):
            x = buf[i - lo]
            # the C library's log1p/expm1 in both tiers (numpy's may be SIMD routines);
            # p = 1 written out, since math.log1p(-1) raises where numba returns -inf
            v = 1.0 if x >= 1.0 else -math.expm1((m - i) * math.log1p(-x))
            if v > run:
                run = v
            out[o[i]] = min(run, 1.0)


@njit(cache=True, error_model="numpy")
def _bh_count(pr, o, m, alpha, cm):
    # Largest r with p_(r) <= (r/m)/cm * alpha (BH step-up; cm = 1 for BH).
    for i in range(m - 1, -1, -1):
        if pr[o[i]] <= ((i + 1) / m) / cm * alpha:
            return i + 1
    return 0


@njit(cache=True, error_model="numpy")
def _fdr_bh(pr, o, m, alpha, cm, out):
    """Benjamini–Hochberg (cm = 1) or Benjamini–Yekutieli (cm = sum 1/l).  One pass
    from the largest value: the count of :func:`_bh_count` and the adjusted values."""
    nrej = 0
    run = np.inf
    for i in range(m - 1, -1, -1):
        x = pr[o[i]]
        if nrej == 0 and x <= ((i + 1) / m) / cm * alpha:
            nrej = i + 1
        v = x / (((i + 1) / m) / cm)
        if v < run:
            run = v
        out[o[i]] = min(run, 1.0)
    return nrej


@njit(cache=True, error_model="numpy")
def _fdr_twostage(pr, o, m, alpha, bky, maxiter, out):
    """BH / BKY two-stage (Benjamini, Krieger & Yekutieli 2006, Def. 6), as statsmodels."""
    fact = 1.0 + alpha if bky else 1.0
    alpha_prime = alpha / fact
    r1 = _bh_count(pr, o, m, alpha_prime, 1.0)
    ri = r1
    ntests0 = float(m)
    if not (r1 == 0 or r1 == m):
        ri_old = r1
        for it in range(maxiter):
            ntests0 = float(m) - ri_old
            alpha_star = alpha_prime * m / ntests0  # inf when ntests0 == 0, as numpy
            ri = _bh_count(pr, o, m, alpha_star, 1.0)
            if it >= maxiter - 1 or ri == ri_old:
                break
            ri_old = ri
    _fdr_bh(pr, o, m, alpha, 1.0, out)  # its adjusted values (cm = 1)
    if r1 == 0 or r1 == m:
        for i in range(m):
            out[o[i]] = min(out[o[i]] * fact, 1.0)
    else:
        f1 = ntests0 * 1.0 / m
        for i in range(m):
            v = out[o[i]] * f1
            if bky:
                v = v * (1.0 + alpha)
            out[o[i]] = min(v, 1.0)
    return ri


@njit(cache=True, error_model="numpy")
def _fdr_gbs(pr, o, m, out):
    """Gavrilov, Benjamini & Sarkar (2009) adaptive step-down, statsmodels' adjusted values
    (the caller rejects ``adjusted <= alpha`` element by element)."""
    run = -np.inf
    for i in range(m):
        r = i + 1
        x = pr[o[i]]
        v = (m + 1.0 - r) / r * x / (1.0 - x)  # 1/0 -> inf for p = 1
        if v > run:
            run = v
        out[o[i]] = run
    run = np.inf
    for i in range(m - 1, -1, -1):
        v = out[o[i]]
        if v < run:
            run = v
        out[o[i]] = min(run, 1.0)
    return -1


@njit(cache=True, error_model="numpy")
def _simes_at(pr, o, w, m, q):
    """cim(m - q) (the Simes value of the m - q largest values) from its tangent point
    ``w[2 q]``: the same operations, so the same bits, as when it was found."""
    tb = w[2 * q]
    return (m - q) * pr[o[tb - 1]] / (tb - q)


@njit(cache=True, error_model="numpy")
def _hommel(pr, o, m, w, a):
    """Hommel (1988) adjusted p-values in O(m log m), in sorted order, into ``a[:m]``.

    Closed testing with Simes tests (as statsmodels): with
    ``cim(j) = min_{l=1..j} j * p_(m-j+l) / l`` (Simes p-value of the j largest),
    ``a_i = max( max_{j >= m-i+1} cim(j), max_{j <= m-i} min(j p_i, cim(j)) )``.
    cim(j)/j is the smallest slope from (m - j, 0) to the points (t, p_(t)),
    t > m - j: a tangent to their lower convex hull, found by binary search
    (Meijer, Krebs & Goeman 2019 use the same geometry).  cim(j)/j decreases in
    j, so ``j p_i <= cim(j)`` holds on a prefix of j, and the second maximum is
    that prefix's end times p_i or the maximum of cim over a window of j whose
    two ends only move down.

    Memory: ``w`` is the family's row of the float64 output seen as int32 pairs
    (2 M entries); the sorted values are read through the order (``pr[o[t - 1]]``,
    a block of 1024 gathered at a time, 8 KiB) and never copied whole.  Bytes per
    test: 8 (the output) + 4 (the caller's int32 order), nothing else, as every
    quantity below takes one int32 per test and two never share an entry:

    - pass 1 (q = m-1 .. 0): the tangent point of q, from which cim(m - q) is
      recomputed bit for bit (:func:`_simes_at`), goes to ``w[2 q]``; the hull's
      stack (at most m - q points) lives in the odd entries ``w[2 k + 1]``;
    - pass 2 (i = 0 .. m-1): the winner of the second maximum for rank i
      (``-L`` for L p_i, ``q >= i + 1`` for cim(m - q) of the window, 0 for
      none) goes to ``w[2 i + 1]``; the window (q from i + 1 up) keeps its
      suffix maxima, a two-stack queue, in the odd entries of q > i, not yet
      written; the even entries (all tangent points) stay, as the prefix's end
      may look at any cim;
    - pass 3 (i = 0 .. m-1): a_i from the running maximum and the winner; it
      reads only entries of q >= i, and then overwrites the pair of i with the
      float64 a_i.

    With the in-place scatter after it (:func:`_scatter_in_place`: one int64
    per 8192 tests), Hommel holds 12 bytes per test, 1.5x the float64 input,
    below the 2x of the adjust call's budget (the dense version held 24: the
    sorted values' float64 Simes values and an int32 hull beside the output and
    the order).
    """
    # pass 1: hull[k] is w[2 k + 1]; hull[0] the rightmost point, hull[h-1] the leftmost
    h = 0
    buf = np.empty(min(m, _GATHER_BLOCK))  # the values of a block of ranks, gathered
    for q in range(m - 1, -1, -1):
        if q % _GATHER_BLOCK == _GATHER_BLOCK - 1 or q == m - 1:
            for u in range(q - q % _GATHER_BLOCK, q + 1):
                buf[u % _GATHER_BLOCK] = pr[o[u]]
        t = q + 1
        yt = buf[q % _GATHER_BLOCK]
        while h >= 2:
            ta = w[2 * h - 1]
            tb = w[2 * h - 3]
            ya = pr[o[ta - 1]]
            yb = pr[o[tb - 1]]
            # keep A only if it lies strictly below the segment from t to B
            if (ya - yt) * (tb - ta) >= (yb - ya) * (ta - t):
                h -= 1
            else:
                break
        w[2 * h + 1] = t
        h += 1
        # vertices from left (u = 0 -> hull[h-1]) to right; slope from (q, 0) is unimodal
        lo = 0
        hi = h - 1
        while lo < hi:
            mid = (lo + hi) // 2
            t1 = w[2 * (h - 1 - mid) + 1]
            t2 = w[2 * (h - 2 - mid) + 1]
            if pr[o[t2 - 1]] / (t2 - q) < pr[o[t1 - 1]] / (t1 - q):
                lo = mid + 1
            else:
                hi = mid
        w[2 * q] = w[2 * (h - 1 - lo) + 1]
    # pass 2: L = min(ptr, m - i - 1) with ptr the prefix end (in j), window of q
    # [i + 1, m - L - 1]: a front [i + 1, mid) with suffix argmaxima in w[2 q + 1]
    # and a back [mid, top) with its maximum (bmax at bq), refilled into the front
    # when the front runs out.  Ties go to the larger q, as a monotone deque would.
    ptr = m
    cptr = _simes_at(pr, o, w, m, m - ptr)
    top = 0  # the q < top have entered the queue (front or back)
    mid = 0
    bmax = -np.inf
    bq = 0
    for i in range(m):
        if i % _GATHER_BLOCK == 0:
            for u in range(i, min(m, i + _GATHER_BLOCK)):
                buf[u - i] = pr[o[u]]
        code = 0
        hi_j = m - i - 1  # j <= m - i for 1-based i
        if hi_j >= 1:
            p = buf[i % _GATHER_BLOCK]
            while ptr >= 1 and not (ptr * p <= cptr):
                ptr -= 1
                if ptr >= 1:
                    cptr = _simes_at(pr, o, w, m, m - ptr)
            L = min(ptr, hi_j)
            best = L * p if L >= 1 else -np.inf
            if L >= 1:
                code = -L
            lo_q = i + 1
            hi_q = m - L - 1
            if lo_q <= hi_q:
                if top < lo_q:
                    top = lo_q  # entries below the window are never looked at
                    mid = lo_q
                    bmax = -np.inf
                while top <= hi_q:  # the back grows
                    c = _simes_at(pr, o, w, m, top)
                    if c >= bmax:
                        bmax = c
                        bq = top
                    top += 1
                if mid <= lo_q:  # the front ran out: refill it from the back
                    run = -np.inf
                    arg = 0
                    for q in range(hi_q, lo_q - 1, -1):
                        c = _simes_at(pr, o, w, m, q)
                        if c > run:
                            run = c
                            arg = q
                        w[2 * q + 1] = arg
                    mid = hi_q + 1
                    bmax = -np.inf
                wq = w[2 * lo_q + 1]
                wmax = _simes_at(pr, o, w, m, wq)
                if mid <= hi_q and bmax >= wmax:
                    wmax = bmax
                    wq = bq
                if wmax > best:
                    best = wmax
                    code = wq
        w[2 * i + 1] = code
    # pass 3: A_i = max_{j >= m - i} cim(j) (a running maximum), then the winner
    run = -np.inf
    for i in range(m):
        if i % _GATHER_BLOCK == 0:
            for u in range(i, min(m, i + _GATHER_BLOCK)):
                buf[u - i] = pr[o[u]]
        c = _simes_at(pr, o, w, m, i)
        if c > run:
            run = c
        ai = run
        code = w[2 * i + 1]
        if code != 0:
            best = -code * buf[i % _GATHER_BLOCK] if code < 0 else _simes_at(pr, o, w, m, code)
            if best > ai:
                ai = best
        a[i] = min(ai, 1.0)


# Entries per block of the scatter below: a block of the output (64 KiB) and of the
# order (32 KiB) stay in cache while its cycles are followed.
_SCATTER_BLOCK = 1 << 13


@njit(cache=True)
def _scatter_in_place(row, o):
    """``row[o[i]] = row[i]`` for every i at once, without a copy; ``o`` is used up.

    Following the permutation's cycles directly chases one cache miss after
    another, so first, as in an in-place (American flag) radix sort, the pairs
    ``(row[i], o[i])`` are swapped into the block of 8192 entries that holds
    their destination (one slot to fill per block: the writes are sequential),
    then each block's cycles are followed in cache, entries marked visited by
    flipping the bits of their ``o`` (``~o[i] < 0``).
    """
    n = o.shape[0]
    bs = _SCATTER_BLOCK
    nb = (n + bs - 1) // bs
    if nb > 1:
        fill = np.arange(0, nb * bs, bs)  # the next slot to settle in each block
        for b in range(nb):
            end = min((b + 1) * bs, n)
            x = fill[b]
            while x < end:
                d = o[x] // bs
                if d == b:
                    x += 1
                    continue
                y = fill[d]  # all before it in block d are settled
                fill[d] = y + 1
                v = row[x]
                row[x] = row[y]
                row[y] = v
                k = o[x]
                o[x] = o[y]
                o[y] = k
            fill[b] = end
    for start in range(n):
        if o[start] < 0:
            continue
        v = row[start]
        j = start
        while True:
            k = o[j]
            o[j] = ~k
            if k == start:
                row[k] = v
                break
            nxt = row[k]
            row[k] = v
            v = nxt
            j = k


# --------------------------------------------------------------------------
# One driver per procedure, each running it on every row and finishing the
# row: a call compiles only the procedure it needs (one driver for all of
# them would compile Hommel's hull for a Holm call).
#
# For procedures whose rejections are the first ``nrej[r]`` sorted values
# (every one but Hommel and GBS), the caller rejects ``p <= thr[r]`` in the
# original order (no tie straddles the end of that prefix).  Hommel and GBS
# get ``nrej[r] = -1``: the caller rejects ``adjusted <= alpha`` element by
# element.  Rows with ``m_eff[r] < 0`` are skipped (the caller fills them).
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _finish_row(r, n, m, pr, o, out_adj, nrej, thr):
    """Row r's count ``n`` and largest rejected p-value ``thr[r]``; NaN past ``m``."""
    nrej[r] = n
    if n >= 0:
        thr[r] = pr[o[n - 1]] if n > 0 else -1.0
    for i in range(m, o.shape[0]):
        out_adj[r, o[i]] = np.nan


@tiered
@njit(cache=True, error_model="numpy")
def holm_rows(order, p, m_eff, m_tot, alpha, k, out_adj, nrej, thr):
    """(Generalized) Holm; ``m_tot[r]`` is the family size, above ``m_eff[r]`` when
    only the candidates were sorted."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            n = _step_down_lr(p[r], o, m, m_tot[r], alpha, k, out_adj[r]) if m > 0 else 0
            _finish_row(r, n, m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def hochberg_rows(order, p, m_eff, alpha, k, out_adj, nrej, thr):
    """(Generalized) Hochberg."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            n = _step_up_lr(p[r], o, m, alpha, k, out_adj[r]) if m > 0 else 0
            _finish_row(r, n, m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def holm_sidak_rows(order, p, m_eff, n_rejected, out_adj, nrej, thr):
    """Holm–Šidák, with each row's number of rejections ``n_rejected[r]`` decided by the caller."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            if m > 0:
                _holm_sidak_adjusted(p[r], o, m, out_adj[r])
            _finish_row(r, n_rejected[r], m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def bh_rows(order, p, m_eff, alpha, cm, out_adj, nrej, thr):
    """Benjamini–Hochberg (``cm[r] = 1``) or Benjamini–Yekutieli (``cm[r] = sum 1/l``)."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            n = _fdr_bh(p[r], o, m, alpha, cm[r], out_adj[r]) if m > 0 else 0
            _finish_row(r, n, m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def twostage_rows(order, p, m_eff, alpha, bky, maxiter, out_adj, nrej, thr):
    """Two-stage BH (``bky`` False) or BKY (True), ``maxiter`` iterations."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            n = _fdr_twostage(p[r], o, m, alpha, bky, maxiter, out_adj[r]) if m > 0 else 0
            _finish_row(r, n, m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def gbs_rows(order, p, m_eff, out_adj, nrej, thr):
    """Gavrilov, Benjamini & Sarkar's adaptive step-down (element-wise decisions)."""
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            n = _fdr_gbs(p[r], o, m, out_adj[r]) if m > 0 else -1
            _finish_row(r, n, m, p[r], o, out_adj, nrej, thr)


@tiered
@njit(cache=True, error_model="numpy")
def hommel_rows(order, p, m_eff, out_adj, nrej, thr, work):
    """Hommel (element-wise decisions), O(m log m) per row, in the output and the order.

    ``work`` is ``out_adj`` seen as int32 (shape (F, 2 M)) where M < 2^31, else
    one int64 row of 2 M entries used by every row: :func:`_hommel` leaves the
    adjusted values of row r in sorted order in ``out_adj[r, :m]`` and
    :func:`_scatter_in_place` moves them to their places, using up ``order``.
    """
    for r in range(order.shape[0]):
        m = m_eff[r]
        if m >= 0:
            o = order[r]
            row = out_adj[r]
            if m > 0:
                _hommel(p[r], o, m, work[min(r, work.shape[0] - 1)], row)
            row[m:] = np.nan  # the omitted (NaN) p-values, moved with the rest
            _scatter_in_place(row, o)
            nrej[r] = -1


@tiered
@njit(cache=True)
def binade_counts(p):
    """Counts of p-values per binary exponent (IEEE biased exponent 0..1023), then NaNs."""
    bits = p.view(np.uint64)
    hist = np.zeros(1025, dtype=np.int64)
    for i in range(p.size):
        x = p[i]
        if x != x:
            hist[1024] += 1
        elif x == 0.0:
            hist[0] += 1
        else:
            hist[np.int64(bits[i] >> np.uint64(52))] += 1
    return hist


@tiered
@njit(cache=True)
def key_histogram(keys, shift, nbuckets):
    """Counts of ``keys >> shift`` (most significant digit of the packed keys)."""
    hist = np.zeros(nbuckets, dtype=np.int64)
    sh = np.uint64(shift)
    for i in range(keys.size):
        hist[np.int64(keys[i] >> sh)] += 1
    return hist


@tiered
@njit(cache=True)
def bucket_groups(hist, target):
    """Group consecutive buckets into groups of about ``target`` keys: the group of
    each bucket (int32) and each group's size."""
    group_of_bucket = np.empty(hist.size, dtype=np.int32)
    sizes = np.zeros(hist.sum() // target + 1, dtype=np.int64)
    before = 0
    for b in range(hist.size):
        g = before // target
        group_of_bucket[b] = g
        sizes[g] += hist[b]
        before += hist[b]
    return group_of_bucket, sizes


@tiered
@njit(cache=True)
def key_scatter(keys, shift, group_of_bucket, starts, out):
    """Counting-sort pass: move every key to its group (contiguous, ordered key ranges)."""
    sh = np.uint64(shift)
    ptr = starts.copy()
    for i in range(keys.size):
        x = keys[i]
        g = group_of_bucket[np.int64(x >> sh)]
        out[ptr[g]] = x
        ptr[g] += 1


@tiered
@njit(cache=True)
def key_partition(keys, shift, group_of_bucket, split):
    """Move the keys whose group is below ``split`` to the front, in place (one
    sequential two-pointer pass); returns their number."""
    sh = np.uint64(shift)
    i = 0
    j = keys.size - 1
    while True:
        while i <= j and group_of_bucket[np.int64(keys[i] >> sh)] < split:
            i += 1
        while i <= j and group_of_bucket[np.int64(keys[j] >> sh)] >= split:
            j -= 1
        if i >= j:
            return i
        x = keys[i]
        keys[i] = keys[j]
        keys[j] = x
        i += 1
        j -= 1


@tiered
@njit(cache=True, nogil=True)
def generalized_sidak_adjusted(p, m_rows, k, out):
    """``out[r, i] = P(Bin(m_rows[r], p[r, i]) >= k)`` (Guo & Romano 2007), NaN kept.

    ``k`` is a float so that any k >= 1 is exact: a family of fewer than k
    tests cannot hold k false rejections, and its adjusted values are 0.
    """
    F, M = p.shape
    for r in range(F):
        m = float(m_rows[r])
        for i in range(M):
            x = p[r, i]
            if x != x:
                out[r, i] = np.nan
            else:
                out[r, i] = upper_tail_by_sums(k, m, x)
