"""Counting kernels for SEGCERTIFY (no validation here; see :mod:`mtcert.certify`).

Within one family every p-value is a gather ``table[hits]`` from the n+1 entry
table ``table[j] = P(Bin(n, tau) >= j)``, which is non-increasing in ``j``.  A
step-down procedure therefore only needs, for each distinct p-value, how many
hypotheses carry it: a histogram of the hit counts.  Walking the table from
``j = n`` (smallest p) downwards visits the p-values in ascending order, so the
rank of the first member of each tie group is "1 + the number of hypotheses
with a strictly smaller p-value" -- exactly the quantity a sort would give.
The rejection set is then ``hits >= threshold`` for one threshold per family:
O(N + n) work, no sort, no float array of p-values.

Method codes (shared with the Python wrapper):
``BONFERRONI``, ``HOLM``, ``GENERALIZED_BONFERRONI``, ``GENERALIZED_HOLM``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BONFERRONI = 0
HOLM = 1
GENERALIZED_BONFERRONI = 2
GENERALIZED_HOLM = 3

# Below this many hypotheses per histogram bin, one plain histogram is cheaper
# than four interleaved ones (which break the store-to-load dependency when
# many neighbouring components share a hit count, e.g. hits == n).
_SPLIT_MIN_PER_BIN = 8


@njit(cache=True, nogil=True)
def hit_histograms(hits, n):
    """Histogram of hit counts per family.

    Parameters
    ----------
    hits : (F, m) integer array, C-contiguous; row f is family f.
    n : number of testing samples; valid hits lie in [0, n].

    Returns
    -------
    hist : (F, n + 1) int64, ``hist[f, j]`` = number of components of family f
        with exactly ``j`` hits.
    n_bad : number of entries outside [0, n] (not counted); the caller raises.
    """
    n_fam, m = hits.shape
    hist = np.zeros((n_fam, n + 1), np.int64)
    n_bad = 0
    split = m >= _SPLIT_MIN_PER_BIN * (n + 1)
    part = np.zeros((4, n + 1), np.int64)
    for f in range(n_fam):
        if split:
            part[:, :] = 0
            stop = m - m % 4
            for i in range(0, stop, 4):
                for lane in range(4):
                    h = hits[f, i + lane]
                    if h < 0 or h > n:
                        n_bad += 1
                    else:
                        part[lane, h] += 1
            for i in range(stop, m):
                h = hits[f, i]
                if h < 0 or h > n:
                    n_bad += 1
                else:
                    part[0, h] += 1
            for j in range(n + 1):
                hist[f, j] = part[0, j] + part[1, j] + part[2, j] + part[3, j]
        else:
            for i in range(m):
                h = hits[f, i]
                if h < 0 or h > n:
                    n_bad += 1
                else:
                    hist[f, h] += 1
    return hist, n_bad


@njit(cache=True, nogil=True)
def count_thresholds(hist, table, alpha, k, method):
    """Decide a counting-sort FWER / k-FWER procedure per family.

    Parameters
    ----------
    hist : (F, n + 1) int64 histogram from :func:`hit_histograms`.
    table : (n + 1,) float64, ``table[j] = P(Bin(n, tau) >= j)``, non-increasing.
    alpha : level.
    k : k of the k-FWER methods (1 for Bonferroni / Holm).
    method : one of the module's method codes.

    Returns
    -------
    thr : (F,) int64; family f rejects exactly the components with
        ``hits >= thr[f]`` (``n + 1``: none).
    n_rejected : (F,) int64 number of rejections per family.

    Notes
    -----
    Critical values for the 1-based rank r among m sorted p-values (Holm 1979;
    Lehmann & Romano 2005, Thms 2.1 and 2.2), written with the same floating
    point operations as :mod:`mtcert.multitest` (and statsmodels) so that the
    decisions are identical:

    - (generalized) Bonferroni: reject p_(r) iff p_(r) <= k alpha / m
    - (generalized) Holm: reject p_(1..R) where R is the largest rank with
      p_(r) <= k alpha / (m + k - max(r, k)) for every r <= R.

    Ties: a group of equal p-values at ranks r..r+t-1 is decided by its first
    rank (the critical values grow with the rank, so if the first member
    passes, all do; if it fails, step-down stops there).
    """
    n_fam = hist.shape[0]
    n = table.shape[0] - 1
    thr = np.full(n_fam, n + 1, np.int64)
    n_rej = np.zeros(n_fam, np.int64)
    step_down = method == HOLM or method == GENERALIZED_HOLM
    ka = k * alpha
    for f in range(n_fam):
        m = 0
        for j in range(n + 1):
            m += hist[f, j]
        below = 0  # hypotheses with a strictly smaller p-value than this group
        j = n
        while j >= 0:
            p = table[j]
            count = hist[f, j]
            lo = j
            # merge levels whose p-values are equal in floating point (e.g. both
            # underflowed to 0, or both rounded to 1): they are statistical ties
            while lo > 0 and table[lo - 1] == p:
                lo -= 1
                count += hist[f, lo]
            if count > 0:
                if step_down:
                    rank = below + 1
                    crit = ka / float(m + k - max(rank, k))
                else:
                    crit = ka / float(m)
                if p <= crit:
                    thr[f] = lo
                    n_rej[f] += count
                else:
                    # p-values only grow from here and the critical values of a
                    # step-down stop it at the first failure: nothing further
                    break
                below += count
            j = lo - 1
    return thr, n_rej


@njit(cache=True, nogil=True)
def apply_thresholds(guess, hits, thr, abstain, labels, hits_copy):
    """``labels[f, i] = guess[f, i] if hits[f, i] >= thr[f] else abstain``.

    Also copies ``hits`` into ``hits_copy`` (a narrower dtype) in the same
    pass, so the certificate does not alias the caller's buffer.  Returns the
    number of negative guesses seen (they would be confused with ``abstain``);
    the caller raises.
    """
    n_fam, m = hits.shape
    n_neg = 0
    for f in range(n_fam):
        t = thr[f]
        for i in range(m):
            g = guess[f, i]
            h = hits[f, i]
            if g < 0:
                n_neg += 1
            labels[f, i] = g if h >= t else abstain
            hits_copy[f, i] = h
    return n_neg


@njit(cache=True, nogil=True)
def guess_and_hits(counts0, counts):
    """Per component: guess = first argmax of ``counts0``, hits = its count in ``counts``.

    Both inputs are (N, C) int64. Returns ``(guess, hits, n, consistent)`` where
    ``n`` is the first row total of ``counts`` and ``consistent`` says whether
    every row of ``counts`` sums to it.
    """
    n_comp, n_cls = counts.shape
    guess = np.empty(n_comp, np.int64)
    hits = np.empty(n_comp, np.int64)
    n = -1
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
            total += counts[i, c]
        guess[i] = best
        hits[i] = counts[i, best]
        if i == 0:
            n = total
        elif total != n:
            consistent = False
    return guess, hits, n, consistent
