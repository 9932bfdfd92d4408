"""Counting kernels for SEGCERTIFY (no validation here; see :mod:`mtcert.certify.segmentation`).

Within one family every p-value is a gather ``table[hits]`` from the n+1 entry
table ``table[j] = P(Bin(n, tau) >= j)``, which is non-increasing in ``j``.  A
step-wise procedure therefore only needs, for each distinct p-value, how many
hypotheses carry it: a histogram of the hit counts.  Walking the table from
``j = n`` (smallest p) downwards visits the p-values in ascending order, so the
rank of the first member of each tie group is "1 + the number of hypotheses
with a strictly smaller p-value" -- exactly the quantity a sort would give.
The rejection set is then ``hits >= threshold`` for one threshold per family:
O(N + n) work, no sort, no float array of p-values.  Families much smaller
than n are sorted instead of histogrammed (O(m log m), memory O(m)).

A large single family is split into chunks by the wrapper: partial
histograms per thread (:func:`histogram_chunk`), one decision
(:func:`decide_histogram`), then labels per chunk (:func:`label_chunk`); the
batched path :func:`certify_families` runs the same pieces serially, and
:func:`decide_families` decides families from their histograms alone (stored
counts re-decided at many settings).

Method codes come from the one table :mod:`mtcert._kernels.methods`; the
counting path takes ``BONFERRONI``, ``SIDAK``, ``HOLM``, ``HOLM_SIDAK``,
``HOCHBERG``, ``HOMMEL``, ``FDR_BH``, ``FDR_BY`` and the generalized
Bonferroni, Holm and Hochberg, with ``k`` as a float (exact for any k, see
``lr_divisor``).

Imports numpy, numba, :mod:`mtcert._jit`, :mod:`mtcert._kernels.methods` and
:mod:`mtcert._tunables` only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mtcert._jit import tiered
from mtcert._kernels.methods import (
    BONFERRONI,
    FDR_BH,
    FDR_BY,
    GENERALIZED_BONFERRONI,
    GENERALIZED_HOCHBERG,
    HOCHBERG,
    HOLM_SIDAK,
    HOMMEL,
    SIDAK,
    lr_divisor,
)
from mtcert._tunables import HIST_MIN_FILL, HIST_SPLIT_MIN


@tiered
@njit(cache=True, nogil=True)
def histogram_chunk(hits, n, part, copy):
    """Add the hit counts of ``hits`` to the histogram ``part``; copy them to ``copy``.

    ``part`` is (4, n + 1) int64, accumulated into (not cleared).  Entries
    outside [0, n] are not counted but returned as the number of bad entries
    (``copy`` is then meaningless).  ``copy`` is either empty (no copy) or as
    long as ``hits``: copying wide hits into the narrow copy here lets the
    labelling pass read the copy instead of re-reading ``hits``.
    """
    m = hits.shape[0]
    do_copy = copy.shape[0] != 0
    n_bad = 0
    start = 0
    if m >= HIST_SPLIT_MIN:
        start = m - m % 4
        for i in range(0, start, 4):
            for lane in range(4):
                h = hits[i + lane]
                if do_copy:
                    copy[i + lane] = h
                if h < 0 or h > n:
                    n_bad += 1
                else:
                    part[lane, h] += 1
    for i in range(start, m):
        h = hits[i]
        if do_copy:
            copy[i] = h
        if h < 0 or h > n:
            n_bad += 1
        else:
            part[0, h] += 1
    return n_bad


@njit(cache=True, nogil=True)
def _histogram_levels(part, n, levels, counts):
    """Distinct hit values, decreasing, with their counts summed over the rows of ``part``."""
    n_levels = 0
    for j in range(n, -1, -1):
        c = 0
        for r in range(part.shape[0]):
            c += part[r, j]
        if c > 0:
            levels[n_levels] = j
            counts[n_levels] = c
            n_levels += 1
    return n_levels


@njit(cache=True, nogil=True)
def _sorted_levels(row, n, buf, levels, counts, copy):
    """:func:`histogram_chunk` + :func:`_histogram_levels` by sorting (for small families).

    Returns ``(n_levels, n_bad)``; always copies ``row`` into ``copy``.
    """
    m = row.shape[0]
    n_bad = 0
    size = 0
    for i in range(m):
        h = row[i]
        copy[i] = h
        if h < 0 or h > n:
            n_bad += 1
        else:
            buf[size] = h
            size += 1
    vals = np.sort(buf[:size])
    n_levels = 0
    i = size - 1
    while i >= 0:
        v = vals[i]
        c = 0
        while i >= 0 and vals[i] == v:
            c += 1
            i -= 1
        levels[n_levels] = v
        counts[n_levels] = c
        n_levels += 1
    return n_levels, n_bad


# Absolute margin (32 ulp of 1) around a Holm-Sidak critical value 1 - x within
# which this kernel's ``pow`` and ``adjust``'s ``np.power`` (possibly a SIMD
# routine), each a few ulp from the exact x, might disagree on
# ``p <= critical``: such a family is handed to ``adjust`` instead.
_SIDAK_MARGIN = 2.0**-48

# Hommel is decided here only when its rejection set is the same at the levels
# alpha (1 - d) and alpha (1 + d), d = _HOMMEL_MARGIN (see _hommel); otherwise
# the family goes to ``adjust``.  The set grows with the level and this
# kernel's comparisons are each two roundings from exact, so agreement means
# that the exact set is constant on the whole band: no exact Hommel-adjusted
# p-value lies within a relative ~d of alpha, and any computation of them
# accurate to well below d decides ``adjusted <= alpha`` as exact arithmetic
# does.  ``adjust``'s adjusted values are maxima of Simes p-values j p_(t) / l,
# each two or three roundings from exact, chosen by hull and binary-search
# comparisons that can only err between candidates a few ulp apart (against
# exact rational arithmetic we measured at most 1.6 ulp).  d = 2**-30 leaves a
# factor of about 4 million over the ulp (2**-52), yet a family falls back only
# when one of its adjusted values lies within 1e-9 (relative) of alpha.
_HOMMEL_MARGIN = 2.0**-30
# Below this alpha the products and quotients of the Hommel kernel could be
# subnormal (absolute rather than relative rounding): left to ``adjust``.
_HOMMEL_MIN_ALPHA = 2.0**-960


@njit(cache=True, nogil=True, error_model="numpy")
def _critical(code, rank, m, alpha, k, const):
    """Critical value at the 1-based ``rank`` among ``m`` (same operations as ``adjust``)."""
    if code == SIDAK:
        return const
    if code == HOLM_SIDAK:
        return 1 - (1.0 - alpha) ** (1.0 / float(m - rank + 1))
    if code == BONFERRONI or code == GENERALIZED_BONFERRONI:
        return k * alpha / float(m)
    if code == FDR_BH or code == FDR_BY:
        return (rank / m) / const * alpha
    return k * alpha / lr_divisor(rank, m, k)  # (generalized) Holm and Hochberg


@njit(cache=True, nogil=True)
def _merge_ties(levels, counts, n_levels, table):
    """Merge neighbouring levels with equal p-values into one, in place; returns their number.

    Levels whose p-values are equal in floating point (underflow to 0,
    rounding to 1) form one tie group, kept as its lowest hit level (the
    rejection threshold if the group is rejected) with the summed count.
    """
    n_groups = 0
    for i in range(n_levels):
        if n_groups > 0 and table[levels[i]] == table[levels[n_groups - 1]]:
            levels[n_groups - 1] = levels[i]
            counts[n_groups - 1] += counts[i]
        else:
            levels[n_groups] = levels[i]
            counts[n_groups] = counts[i]
            n_groups += 1
    return n_groups


@njit(cache=True, nogil=True, error_model="numpy")
def _forbids(j, c, v, a):
    """Whether a tie group with ``c`` p-values above it and value ``v`` forbids Hommel's ``j``.

    ``j (a - v) >= c a``, written as ``(j - c) a >= j v`` so that each side is
    one rounding from exact (no cancellation in ``a - v``).
    """
    return float(j - c) * a >= float(j) * v


@njit(cache=True, nogil=True, error_model="numpy")
def _first_forbidden(v, c, m, a):
    """Smallest ``j`` in (c, m] that a tie group forbids at level ``a``, else ``m + 1``.

    The returned ``j`` is forbidden (or ``m + 1``) and ``j - 1`` is not (or is
    ``c``), by :func:`_forbids` itself: the estimate from ``c a / (a - v)``
    only saves steps.
    """
    if v > a or (v == a and c > 0):
        return m + 1  # j (a - v) < c a for every j
    if c == 0:
        return 1
    bound = c * a / (a - v)  # forbidden iff j >= bound
    if bound > m:
        j = m + 1
    else:
        j = max(c + 1, np.int64(np.ceil(bound)))
    while j > c + 1 and _forbids(j - 1, c, v, a):
        j -= 1
    while j <= m and not _forbids(j, c, v, a):
        j += 1
    return j


@njit(cache=True, nogil=True, error_model="numpy")
def _hommel_at(levels, counts, n_groups, table, m, a):
    """Hommel's rejections at level ``a`` from merged tie groups: ``(thr, n_rejected)``.

    Hommel (1988) with p_(1) <= ... <= p_(m): J = {j : p_(m-j+l) > l a / j for
    l = 1..j}; reject all if J is empty, else exactly the p <= a / max J.  The
    condition at position i reads p_(i) > a - (m - i) a / j, which only gets
    stricter as j grows while more positions enter: J = {1, ..., j* }.  Within
    a tie group only its last position b matters; with c = m - b p-values above
    it and value v the group forbids every j > c with j (a - v) >= c a.  So j*
    is one less than the smallest j any group forbids (capped at m): O(groups).
    """
    first = m + 1
    n_below = 0
    for g in range(n_groups):
        v = table[levels[g]]
        if v > a:
            break  # p-values only grow: no later group forbids anything
        n_below += counts[g]
        first = min(first, _first_forbidden(v, m - n_below, m, a))
    j_star = first - 1
    thr = table.shape[0]
    n_rej = 0
    for g in range(n_groups):  # ascending p: the rejected groups are a prefix
        if j_star > 0 and table[levels[g]] > a / j_star:
            break
        thr = levels[g]
        n_rej += counts[g]
    return thr, n_rej


@njit(cache=True, nogil=True, error_model="numpy")
def _hommel(levels, counts, n_groups, table, m, alpha):
    """Hommel's ``(thr, n_rejected)``, or ``(-1, 0)`` near a boundary (see ``_HOMMEL_MARGIN``).

    The rejection set only grows with the level, and each comparison of
    :func:`_hommel_at` is within two roundings of exact: when the sets at
    ``alpha (1 -+ margin)`` agree, the exact set is that one on the whole band.
    """
    if alpha < _HOMMEL_MIN_ALPHA:
        return -1, 0
    thr, n_rej = _hommel_at(levels, counts, n_groups, table, m, alpha * (1.0 - _HOMMEL_MARGIN))
    thr_hi, n_hi = _hommel_at(levels, counts, n_groups, table, m, alpha * (1.0 + _HOMMEL_MARGIN))
    if thr != thr_hi or n_rej != n_hi:
        return -1, 0
    return thr, n_rej


@njit(cache=True, nogil=True, error_model="numpy")
def _decide(levels, counts, n_levels, table, m, alpha, k, code, const):
    """Rejection threshold of one family from its hit levels (decreasing = ascending p).

    Critical values for the 1-based rank r among m sorted p-values, with the
    same floating-point operations as :mod:`mtcert.stats.multitest` (and
    statsmodels) so that the decisions are identical:

    - (generalized) Bonferroni: reject p_(r) iff p_(r) <= k alpha / m;
      Sidak: iff p_(r) <= ``const`` (computed by the caller as ``adjust`` does)
    - (generalized) Holm (Holm 1979; Lehmann & Romano 2005, Thms 2.1, 2.2):
      reject p_(1..R), R the largest rank with p_(r) <= k alpha / (m + k -
      max(r, k)) for every r <= R; Holm-Sidak: the same with
      1 - (1 - alpha)^(1/(m - r + 1))
    - (generalized) Hochberg (step-up): reject p_(1..R), R the largest rank
      with p_(R) <= k alpha / (m + k - max(R, k)); Benjamini-Hochberg and
      -Yekutieli: the same with (R / m) / ``const`` alpha, ``const`` = 1 or
      sum_{l <= m} 1/l (computed by the caller as ``adjust`` does)
    - Hommel: :func:`_hommel`.

    Ties: the critical values grow with the rank, so a group of equal p-values
    at ranks r..r+t-1 passes at some rank iff it passes at its last (step-up)
    and passes at every rank iff it passes at its first (step-down): groups
    are rejected whole.  Levels whose p-values are equal in floating point
    are one group (:func:`_merge_ties`; ``levels`` and ``counts`` are
    overwritten).

    Returns ``(thr, n_rejected)``: reject exactly ``hits >= thr``; ``thr = -1``
    when a Holm-Sidak p-value lies within ``_SIDAK_MARGIN`` of its critical
    value or Hommel's decision is within ``_HOMMEL_MARGIN`` of changing (the
    caller must decide the family with ``adjust``).
    """
    n_groups = _merge_ties(levels, counts, n_levels, table)
    if code == HOMMEL:
        return _hommel(levels, counts, n_groups, table, m, alpha)
    step_up = code == HOCHBERG or code == GENERALIZED_HOCHBERG or code == FDR_BH or code == FDR_BY
    thr = table.shape[0]
    n_rej = 0
    n_below = 0  # hypotheses with a strictly smaller p-value
    for g in range(n_groups):
        lo = levels[g]
        p = table[lo]
        count = counts[g]
        rank = n_below + count if step_up else n_below + 1
        crit = _critical(code, rank, m, alpha, k, const)
        if code == HOLM_SIDAK and abs(p - crit) <= _SIDAK_MARGIN:
            return -1, 0
        n_below += count
        if p <= crit:
            thr = lo
            n_rej = n_below
        elif not step_up:
            # p-values only grow from here, and step-down (and a single step,
            # whose critical value is constant) stops at the first failure
            break
    return thr, n_rej


@tiered
@njit(cache=True, nogil=True)
def decide_histogram(part, table, m, alpha, k, code, const):
    """Rejection threshold of one family of ``m`` from its (partial) histograms.

    ``part`` is (R, n + 1): the family's histogram is the sum of its rows (one
    row per lane and chunk).  Returns ``(thr, n_rejected)`` as :func:`_decide`.
    """
    n = table.shape[0] - 1
    n_max = min(m, n + 1)
    levels = np.empty(n_max, np.int64)
    counts = np.empty(n_max, np.int64)
    n_levels = _histogram_levels(part, n, levels, counts)
    return _decide(levels, counts, n_levels, table, m, alpha, k, code, const)


@tiered
@njit(cache=True, nogil=True)
def decide_families(hist, table, m, alpha, k, code, const):
    """Rejection thresholds of families of ``m`` each from their histograms.

    ``hist`` is (F, n + 1): row f is the histogram of family f's hit counts
    (summing to ``m``).  The same decision as :func:`certify_families` takes
    on those families, without their hits: returns ``(thr, n_rejected)``, two
    (F,) int64 arrays as :func:`_decide` per family (``thr[f] = -1``: family f
    must be decided by ``adjust``).
    """
    n_fam = hist.shape[0]
    n = table.shape[0] - 1
    n_max = min(m, n + 1)
    levels = np.empty(n_max, np.int64)
    counts = np.empty(n_max, np.int64)
    thr = np.empty(n_fam, np.int64)
    n_rej = np.empty(n_fam, np.int64)
    for f in range(n_fam):
        n_levels = _histogram_levels(hist[f : f + 1], n, levels, counts)
        thr[f], n_rej[f] = _decide(levels, counts, n_levels, table, m, alpha, k, code, const)
    return thr, n_rej


@tiered
@njit(cache=True, nogil=True)
def tally_by_hits(hits, guess, target, ignore, use_ignore, every, valid, pred, inter, area):
    """Count one item's components by hit count, in one pass (added to the outputs).

    ``hits``, ``guess``, ``target`` are (N,) integers (hits in [0, n], guesses
    and non-ignored targets in [0, C)); a component is ignored when
    ``use_ignore`` and its target equals ``ignore``.  Adds, per hit count h:
    ``every[h]`` all components, ``valid[h]`` the non-ignored ones,
    ``pred[h, g]`` the non-ignored ones guessing g and ``inter[h, g]`` those
    whose guess g is also their target; ``area[t]`` counts the non-ignored
    targets t.
    """
    for i in range(hits.shape[0]):
        h = hits[i]
        every[h] += 1
        t = target[i]
        if use_ignore and t == ignore:
            continue
        g = guess[i]
        valid[h] += 1
        pred[h, g] += 1
        area[t] += 1
        if g == t:
            inter[h, g] += 1


@tiered
@njit(cache=True, nogil=True)
def label_chunk(guess, hits, thr, abstain, labels, copy):
    """``labels = where(hits >= thr, guess, abstain)``; returns the number of negative guesses.

    ``copy`` is either empty or receives a copy of ``hits`` (then in the same
    pass, which is cheaper than a separate one when ``hits`` is narrow).
    """
    m = guess.shape[0]
    g_min = 0
    # branch-free bodies so that the loops vectorise; negatives are counted
    # only if the minimum shows there are any
    if copy.shape[0] == 0:
        for i in range(m):
            g = guess[i]
            g_min = min(g_min, g)
            labels[i] = g if hits[i] >= thr else abstain
    else:
        for i in range(m):
            g = guess[i]
            h = hits[i]
            g_min = min(g_min, g)
            labels[i] = g if h >= thr else abstain
            copy[i] = h
    n_neg = 0
    if g_min < 0:
        for i in range(m):
            if guess[i] < 0:
                n_neg += 1
    return n_neg


@tiered
@njit(cache=True, nogil=True)
def copy_first(hits, copy):
    """Copy ``hits`` while histogramming (True: it is wider than ``copy``) or while labelling."""
    return hits.itemsize > copy.itemsize


@tiered
@njit(cache=True, nogil=True)
def use_histogram(m, n):
    """Whether a family of ``m`` is histogrammed (else sorted) for ``n`` samples."""
    return m * HIST_MIN_FILL >= n + 1


@tiered
@njit(cache=True, nogil=True)
def certify_families(guess, hits, table, alpha, k, code, const, abstain, labels, hits_copy):
    """Counting-path SEGCERTIFY for every family (row) of ``hits``.

    Parameters
    ----------
    guess, hits : (F, m) integer arrays, C-contiguous; row f is family f.
    table : (n + 1,) float64, ``table[j] = P(Bin(n, tau) >= j)``, non-increasing.
    alpha, k, code : level, k of the k-FWER methods (1 otherwise), procedure code.
    const : the procedure's constant for ``m``, computed as ``adjust`` does: the
        Sidak critical value (``SIDAK``), sum_{l <= m} 1/l (``FDR_BY``), 1
        (``FDR_BH``); not read by the other methods.
    abstain : label written where not certified.
    labels : (F, m) output, ``guess`` where certified else ``abstain``.
    hits_copy : (F, m) output, a copy of ``hits`` (narrower dtype) so the
        certificate does not alias the caller's buffer.

    Returns
    -------
    n_rejected : (F,) int64
    n_bad : number of hits outside [0, n] (then the outputs are incomplete)
    n_neg : number of negative guesses (they would be confused with ``abstain``)
    undecided : True when a family must be decided by ``adjust`` (see
        :func:`_decide`); the outputs are then incomplete
    """
    n_fam, m = hits.shape
    n = table.shape[0] - 1
    use_hist = use_histogram(m, n)
    part = np.zeros((4, n + 1) if use_hist else (4, 0), np.int64)
    buf = np.empty(0 if use_hist else m, hits.dtype)
    n_max = min(m, n + 1)
    levels = np.empty(n_max, np.int64)
    counts = np.empty(n_max, np.int64)
    n_rej = np.zeros(n_fam, np.int64)
    n_neg = 0
    # the sorting path copies while collecting the levels
    early = copy_first(hits, hits_copy) or not use_hist
    no_copy = hits_copy[0, :0]
    for f in range(n_fam):
        copy = hits_copy[f]
        if use_hist:
            part[:, :] = 0
            n_bad = histogram_chunk(hits[f], n, part, copy if early else no_copy)
            n_levels = _histogram_levels(part, n, levels, counts)
        else:
            n_levels, n_bad = _sorted_levels(hits[f], n, buf, levels, counts, copy)
        if n_bad:
            return n_rej, n_bad, n_neg, False
        thr, n_rej[f] = _decide(levels, counts, n_levels, table, m, alpha, k, code, const)
        if thr < 0:
            return n_rej, 0, n_neg, True
        if early:
            n_neg += label_chunk(guess[f], copy, thr, abstain, labels[f], no_copy)
        else:
            n_neg += label_chunk(guess[f], hits[f], thr, abstain, labels[f], copy)
    return n_rej, 0, n_neg, False


@tiered
@njit(cache=True, nogil=True)
def guess_and_hits(counts0, counts, n, guess, hits):
    """Per component: ``guess`` = first argmax of ``counts0``, ``hits`` = its count in ``counts``.

    ``counts0`` and ``counts`` are (N, C) non-negative integers of any width
    (the caller's dtypes, not copied) whose row totals fit in int64; ``guess``
    and ``hits`` are (N,) outputs wide enough for ``C - 1`` and for ``n``.
    Returns whether every row of ``counts`` sums to ``n`` (if not, ``hits``
    may have wrapped and must not be used).
    """
    n_comp, n_cls = counts.shape
    consistent = True
    for i in range(n_comp):
        best = 0
        top = counts0[i, 0]
        total = 0
        for c in range(n_cls):
            v = counts0[i, c]
            if v > top:
                top = v
                best = c
            total += np.int64(counts[i, c])
        guess[i] = best
        hits[i] = counts[i, best]
        consistent &= total == n
    return consistent
