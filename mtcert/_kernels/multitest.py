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
:func:`unpack_sorted` repairs with a budgeted insertion sort (a row that blows
the budget is reported so the caller can fall back to a stable argsort).

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
def pack_keys(p, idxbits, keys):
    """Write ``(leading value bits << idxbits) | index`` for every entry of ``p``."""
    bits = p.view(np.uint64)
    ib = np.uint64(idxbits)
    shift = np.uint64(idxbits - 2)
    F, M = p.shape
    for r in range(F):
        for i in range(M):
            x = p[r, i]
            if x != x:
                b = _NAN_BITS
            elif x == 0.0:  # also maps -0.0 (sign bit set) to the bottom
                b = np.uint64(0)
            else:
                b = bits[r, i]
            keys[r, i] = ((b >> shift) << ib) | np.uint64(i)


@tiered
@njit(cache=True)
def unpack_sorted(keys, idxbits, p, m_eff, order, s):
    """Turn sorted packed keys into ``order`` and exactly sorted values ``s``.

    ``order`` may be ``keys.view(np.int64)`` (each slot is read before written).
    Returns a boolean array: False for rows whose near-tie repair exceeded its
    budget (their ``order``/``s`` are then unusable).
    """
    F, M = keys.shape
    mask = np.uint64((1 << idxbits) - 1)
    ok = np.ones(F, dtype=np.bool_)
    for r in range(F):
        for i in range(M):
            j = np.int64(keys[r, i] & mask)
            order[r, i] = j
            s[r, i] = p[r, j]
        # Values sharing the kept leading bits came out in index order:
        # insertion sort restores value order (NaNs sit after m_eff).
        n = m_eff[r]
        budget = 8 * M + 64
        moves = 0
        for i in range(1, n):
            v = s[r, i]
            if not (v < s[r, i - 1]):
                continue
            o = order[r, i]
            j = i - 1
            while j >= 0 and s[r, j] > v:
                s[r, j + 1] = s[r, j]
                order[r, j + 1] = order[r, j]
                j -= 1
                moves += 1
            s[r, j + 1] = v
            order[r, j + 1] = o
            if moves > budget:
                ok[r] = False
                break
    return ok


# --------------------------------------------------------------------------
# Procedures on one sorted family s[0:m]; each writes the adjusted values a[0:m]
# (clipped to 1) and the decisions rj[0:m] in sorted order.  Floating-point
# operations follow statsmodels 0.15 multipletests term by term so that
# decisions are identical and adjusted values agree to rounding.
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _step_down_lr(s, n, m, alpha, k, a):
    """Generalized Holm (LR 2005, Thm 2.2); k = 1 is Holm (1979).

    ``s`` holds the ``n <= m`` smallest of the family's m p-values (the caller
    has shown that the others have adjusted value 1 and are not rejected).
    """
    ka = k * alpha
    nrej = n
    for i in range(n):
        if s[i] > ka / lr_divisor(i + 1, m, k):
            nrej = i
            break
    run = -np.inf
    for i in range(n):
        v = s[i] * lr_divisor(i + 1, m, k) / k
        if v > run:
            run = v
        a[i] = min(run, 1.0)
    return nrej


@njit(cache=True, error_model="numpy")
def _step_up_lr(s, m, alpha, k, a):
    """Generalized Hochberg (Sarkar 2008); k = 1 is Hochberg (1988)."""
    ka = k * alpha
    nrej = 0
    for i in range(m - 1, -1, -1):
        if s[i] <= ka / lr_divisor(i + 1, m, k):
            nrej = i + 1
            break
    run = np.inf
    for i in range(m - 1, -1, -1):
        v = s[i] * lr_divisor(i + 1, m, k) / k
        if v < run:
            run = v
        a[i] = min(run, 1.0)
    return nrej


@njit(cache=True, error_model="numpy")
def _holm_sidak_adjusted(s, m, a):
    """Holm–Šidák step-down adjusted values (the caller counts the rejections: it compares
    with statsmodels' critical values only as far as the first failure)."""
    run = -np.inf
    for i in range(m):
        # the C library's log1p/expm1 in both tiers (numpy's may be SIMD routines);
        # p = 1 written out, since math.log1p(-1) raises where numba returns -inf
        v = 1.0 if s[i] >= 1.0 else -math.expm1((m - i) * math.log1p(-s[i]))
        if v > run:
            run = v
        a[i] = min(run, 1.0)


@njit(cache=True, error_model="numpy")
def _bh_count(s, m, alpha, cm):
    # Largest r with p_(r) <= (r/m)/cm * alpha (BH step-up; cm = 1 for BH).
    for i in range(m - 1, -1, -1):
        if s[i] <= ((i + 1) / m) / cm * alpha:
            return i + 1
    return 0


@njit(cache=True, error_model="numpy")
def _bh_adjusted(s, m, cm, a):
    run = np.inf
    for i in range(m - 1, -1, -1):
        v = s[i] / (((i + 1) / m) / cm)
        if v < run:
            run = v
        a[i] = min(run, 1.0)


@njit(cache=True, error_model="numpy")
def _fdr_bh(s, m, alpha, cm, a):
    """Benjamini–Hochberg (cm = 1) or Benjamini–Yekutieli (cm = sum 1/l)."""
    nrej = _bh_count(s, m, alpha, cm)
    _bh_adjusted(s, m, cm, a)
    return nrej


@njit(cache=True, error_model="numpy")
def _fdr_twostage(s, m, alpha, bky, maxiter, a):
    """BH / BKY two-stage (Benjamini, Krieger & Yekutieli 2006, Def. 6), as statsmodels."""
    fact = 1.0 + alpha if bky else 1.0
    alpha_prime = alpha / fact
    # every count reads s before the adjusted values are written: ``a`` may be ``s``
    r1 = _bh_count(s, m, alpha_prime, 1.0)
    ri = r1
    ntests0 = float(m)
    if not (r1 == 0 or r1 == m):
        ri_old = r1
        for it in range(maxiter):
            ntests0 = float(m) - ri_old
            alpha_star = alpha_prime * m / ntests0  # inf when ntests0 == 0, as numpy
            ri = _bh_count(s, m, alpha_star, 1.0)
            if it >= maxiter - 1 or ri == ri_old:
                break
            ri_old = ri
    _bh_adjusted(s, m, 1.0, a)
    if r1 == 0 or r1 == m:
        for i in range(m):
            a[i] = min(a[i] * fact, 1.0)
    else:
        f1 = ntests0 * 1.0 / m
        for i in range(m):
            v = a[i] * f1
            if bky:
                v = v * (1.0 + alpha)
            a[i] = min(v, 1.0)
    return ri


@njit(cache=True, error_model="numpy")
def _fdr_gbs(s, m, alpha, a, rj):
    """Gavrilov, Benjamini & Sarkar (2009) adaptive step-down, statsmodels' adjusted values."""
    run = -np.inf
    for i in range(m):
        r = i + 1
        v = (m + 1.0 - r) / r * s[i] / (1.0 - s[i])  # 1/0 -> inf for p = 1
        if v > run:
            run = v
        a[i] = run
    run = np.inf
    for i in range(m - 1, -1, -1):
        if a[i] < run:
            run = a[i]
        a[i] = min(run, 1.0)
        rj[i] = a[i] <= alpha
    return -1


@njit(cache=True, error_model="numpy")
def _hommel(s, m, alpha, a, rj, cim, hull, dq):
    """Hommel (1988) adjusted p-values in O(m log m) after sorting.

    Closed testing with Simes tests (as statsmodels): with
    ``cim(j) = min_{l=1..j} j * p_(m-j+l) / l`` (Simes p-value of the j largest),
    ``a_i = max( max_{j >= m-i+1} cim(j), max_{j <= m-i} min(j p_i, cim(j)) )``.
    cim(j)/j is the smallest slope from (m - j, 0) to the points (t, p_(t)),
    t > m - j: a tangent to their lower convex hull, found by binary search
    (Meijer, Krebs & Goeman 2019 use the same geometry).  cim(j)/j decreases in
    j, so ``j p_i <= cim(j)`` holds on a prefix of j, and the second maximum is
    that prefix's end times p_i or a sliding-window maximum of cim.
    """
    # cim[j] for j = 1..m (index 0 unused); hull holds 1-based positions,
    # hull[0] the rightmost point, hull[h-1] the leftmost.
    h = 0
    for q in range(m - 1, -1, -1):
        t = q + 1
        yt = s[t - 1]
        while h >= 2:
            ta = hull[h - 1]
            tb = hull[h - 2]
            ya = s[ta - 1]
            yb = s[tb - 1]
            # keep A only if it lies strictly below the segment from t to B
            if (ya - yt) * (tb - ta) >= (yb - ya) * (ta - t):
                h -= 1
            else:
                break
        hull[h] = t
        h += 1
        # vertices from left (u = 0 -> hull[h-1]) to right; slope from (q, 0) is unimodal
        lo = 0
        hi = h - 1
        while lo < hi:
            mid = (lo + hi) // 2
            t1 = hull[h - 1 - mid]
            t2 = hull[h - 2 - mid]
            if s[t2 - 1] / (t2 - q) < s[t1 - 1] / (t1 - q):
                lo = mid + 1
            else:
                hi = mid
        tb = hull[h - 1 - lo]
        j = m - q
        cim[j] = j * s[tb - 1] / (tb - q)
    # A_i = max_{j >= m - i} cim[j] (0-based i; 1-based rank i + 1), then the second
    # term, i increasing: L = min(ptr, m - i - 1) with ptr the prefix end, window
    # (L, m - i - 1] of cim handled by a monotone deque moving left.  One pass: s[i]
    # is read before a[i] is written, so ``a`` may be ``s``.
    run = -np.inf
    jj = m
    ptr = m
    head = 0
    tail = 0
    nxt = m
    for i in range(m):
        while jj >= m - i:
            if cim[jj] > run:
                run = cim[jj]
            jj -= 1
        ai = run
        hi_j = m - i - 1  # j <= m - i for 1-based i
        if hi_j >= 1:
            p = s[i]
            while ptr >= 1 and not (ptr * p <= cim[ptr]):
                ptr -= 1
            L = min(ptr, hi_j)
            best = L * p if L >= 1 else -np.inf
            lo_j = L + 1
            while nxt >= lo_j and nxt >= 1:
                while tail > head and cim[dq[tail - 1]] <= cim[nxt]:
                    tail -= 1
                dq[tail] = nxt
                tail += 1
                nxt -= 1
            while head < tail and dq[head] > hi_j:
                head += 1
            if head < tail and cim[dq[head]] > best:
                best = cim[dq[head]]
            if best > ai:
                ai = best
        a[i] = min(ai, 1.0)
        rj[i] = a[i] <= alpha
    return -1


# --------------------------------------------------------------------------
# One driver per procedure, each running it on every row of sorted values and
# scattering the results: a call compiles only the procedure it needs (one
# driver for all of them would compile Hommel's hull for a Holm call).
#
# For procedures whose rejections are the first ``nrej[r]`` sorted values
# (every one but Hommel and GBS), ``out_rej`` is not written: no tie straddles
# the end of that prefix, so the caller rejects ``p <= thr[r]`` in the
# original order, sequentially, instead of scattering.  Hommel and GBS decide
# ``adjusted <= alpha`` element by element; they get ``nrej[r] = -1`` and
# their decisions are scattered into ``out_rej``.  Rows with ``m_eff[r] < 0``
# are skipped (the caller fills them).
# --------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _finish_row(r, n, m, pr, orow, a, rj, out_adj, out_rej, nrej, thr, in_place):
    """Scatter row r's adjusted values (and decisions when ``n < 0``); NaN tail.

    ``pr`` is the row of p-values in input order (``thr[r]`` is the largest
    rejected one).  ``in_place``: ``a`` is ``out_adj[r]`` itself, in sorted
    order, its tail ``a[m:]`` the row's NaNs (the sorted values it overwrote);
    it is permuted into input order along the cycles of ``orow``, which marks
    the visited slots by complementing them (``orow`` is scratch afterwards).
    """
    nrej[r] = n
    if n >= 0:
        thr[r] = pr[orow[n - 1]] if n > 0 else -1.0
    else:
        for i in range(m):
            out_rej[r, orow[i]] = rj[i]
    M = orow.shape[0]
    for i in range(m, M):
        out_rej[r, orow[i]] = False
    if not in_place:
        for i in range(m):
            out_adj[r, orow[i]] = a[i]
        for i in range(m, M):
            out_adj[r, orow[i]] = np.nan
        return
    for start in range(M):
        if orow[start] < 0:
            continue
        v = a[start]
        j = start
        while True:
            dst = orow[j]
            orow[j] = ~dst
            if dst == start:
                a[start] = v
                break
            w = a[dst]
            a[dst] = v
            v = w
            j = dst


@njit(cache=True)
def _row_buffer(s, r, a, in_place):
    """Where row r's adjusted values go: over its sorted values, or a scratch row."""
    return s[r] if in_place else a


@tiered
@njit(cache=True, error_model="numpy")
def holm_rows(s, order, p, m_eff, m_tot, alpha, k, out_adj, out_rej, nrej, thr, in_place):
    """(Generalized) Holm; ``m_tot[r]`` is the family size, above ``m_eff[r]`` when
    only the candidates were sorted."""
    a = np.empty(0 if in_place else s.shape[1])
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _step_down_lr(s[r], m, m_tot[r], alpha, k, ar) if m > 0 else 0
            _finish_row(r, n, m, p[r], order[r], ar, ar, out_adj, out_rej, nrej, thr, in_place)


@tiered
@njit(cache=True, error_model="numpy")
def hochberg_rows(s, order, p, m_eff, alpha, k, out_adj, out_rej, nrej, thr, in_place):
    """(Generalized) Hochberg."""
    a = np.empty(0 if in_place else s.shape[1])
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _step_up_lr(s[r], m, alpha, k, ar) if m > 0 else 0
            _finish_row(r, n, m, p[r], order[r], ar, ar, out_adj, out_rej, nrej, thr, in_place)


@tiered
@njit(cache=True, error_model="numpy")
def holm_sidak_rows(s, order, p, m_eff, n_rejected, out_adj, out_rej, nrej, thr, in_place):
    """Holm–Šidák, with each row's number of rejections ``n_rejected[r]`` decided by the caller."""
    a = np.empty(0 if in_place else s.shape[1])
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            if m > 0:
                _holm_sidak_adjusted(s[r], m, ar)
            _finish_row(
                r, n_rejected[r], m, p[r], order[r], ar, ar, out_adj, out_rej, nrej, thr, in_place
            )


@tiered
@njit(cache=True, error_model="numpy")
def bh_rows(s, order, p, m_eff, alpha, cm, out_adj, out_rej, nrej, thr, in_place):
    """Benjamini–Hochberg (``cm[r] = 1``) or Benjamini–Yekutieli (``cm[r] = sum 1/l``)."""
    a = np.empty(0 if in_place else s.shape[1])
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _fdr_bh(s[r], m, alpha, cm[r], ar) if m > 0 else 0
            _finish_row(r, n, m, p[r], order[r], ar, ar, out_adj, out_rej, nrej, thr, in_place)


@tiered
@njit(cache=True, error_model="numpy")
def twostage_rows(s, order, p, m_eff, alpha, bky, maxiter, out_adj, out_rej, nrej, thr, in_place):
    """Two-stage BH (``bky`` False) or BKY (True), ``maxiter`` iterations."""
    a = np.empty(0 if in_place else s.shape[1])
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _fdr_twostage(s[r], m, alpha, bky, maxiter, ar) if m > 0 else 0
            _finish_row(r, n, m, p[r], order[r], ar, ar, out_adj, out_rej, nrej, thr, in_place)


@tiered
@njit(cache=True, error_model="numpy")
def gbs_rows(s, order, p, m_eff, alpha, out_adj, out_rej, nrej, thr, in_place):
    """Gavrilov, Benjamini & Sarkar's adaptive step-down (element-wise decisions)."""
    a = np.empty(0 if in_place else s.shape[1])
    rj = np.empty(s.shape[1], dtype=np.bool_)
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _fdr_gbs(s[r], m, alpha, ar, rj) if m > 0 else -1
            _finish_row(r, n, m, p[r], order[r], ar, rj, out_adj, out_rej, nrej, thr, in_place)


@tiered
@njit(cache=True, error_model="numpy")
def hommel_rows(s, order, p, m_eff, alpha, out_adj, out_rej, nrej, thr, in_place, hull, dq):
    """Hommel (element-wise decisions), O(m log m) per row; ``hull`` and ``dq`` are
    integer scratch of M + 1 entries (int32 where M allows: less memory)."""
    M = s.shape[1]
    a = np.empty(0 if in_place else M)
    rj = np.empty(M, dtype=np.bool_)
    cim = np.empty(M + 1)
    for r in range(s.shape[0]):
        m = m_eff[r]
        if m >= 0:
            ar = _row_buffer(s, r, a, in_place)
            n = _hommel(s[r], m, alpha, ar, rj, cim, hull, dq) if m > 0 else -1
            _finish_row(r, n, m, p[r], order[r], ar, rj, out_adj, out_rej, nrej, thr, in_place)


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
def key_permute(keys, shift, group_of_bucket, starts, sizes):
    """Counting-sort pass in place: move every key into its group (contiguous, ordered
    key ranges), swapping each misplaced key into the next free slot of its group.

    Saves :func:`key_scatter`'s second buffer, at the price of a chain of dependent
    random accesses (several times slower once the keys exceed the caches)."""
    sh = np.uint64(shift)
    ptr = starts.copy()
    for g in range(starts.size):
        end = starts[g] + sizes[g]
        while ptr[g] < end:
            x = keys[ptr[g]]
            d = group_of_bucket[np.int64(x >> sh)]
            if d == g:
                ptr[g] += 1
            else:
                keys[ptr[g]] = keys[ptr[d]]
                keys[ptr[d]] = x
                ptr[d] += 1


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
