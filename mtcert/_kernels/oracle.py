"""Numba kernel for the oracle simulator's joint (JOINTCLASS) draws.

Components are grouped into blocks that share one distribution: inside a block
every component shows its true label with probability ``q`` and otherwise a
wrong label drawn from the block's conditional law.  A joint draw is stored
sparsely, as the set of (component, wrong label) deviations from the truth:
the positions of the wrong components in a block are found by geometric
skipping (the gaps between independent Bernoulli(1 - q) events are geometric),
which is the exact law of independent components at a cost proportional to
the number of wrong components drawn, not to N.

Joint label vectors are compared through two independent 64-bit hashes of
their deviation sets (a commutative sum of mixed codes), so a false match of
two different vectors has probability below ``n0**2 * 2**-128``.

The kernel releases the GIL, so power studies run scenarios on threads.  It is
compiled-only (not :func:`~mtcert._jit.tiered`): a power study calls it over
and over, so compiling pays from the first call.

Imports numpy and numba only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _mix64(x):
    # splitmix64 finaliser: a bijection on 64-bit words with good avalanche.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def joint_mode_kernel(rng, reps, n0, sizes, offsets, err, log_q, wrong_cdf, wrong_logp):
    """Simulate the modal joint label vector among ``n0`` joint draws, ``reps`` times.

    Parameters
    ----------
    rng : numpy.random.Generator
    reps, n0 : int
    sizes, offsets : int64 (G,)
        Block sizes and the global index of each block's first component.
    err : float64 (G,)
        Per-component probability of a wrong label in each block (1 - q).
    log_q : float64 (G,)
        log q per block (only used where some component shows its true label).
    wrong_cdf : float64 (G, C)
        Cumulative conditional law of the wrong label given "wrong"; the
        true label carries zero mass.
    wrong_logp : float64 (G, C)
        log of the unconditional probability of each label in each block.

    Returns
    -------
    log_p : float64 (reps,)
        log of the probability of the modal vector under the oracle.
    n_wrong : int64 (reps,)
        Number of components where the modal vector differs from the truth.
    mode_count : int64 (reps,)
        How often the modal vector occurred among the ``n0`` draws.

    Ties in the mode are broken toward the vector drawn first.
    """
    n_groups = sizes.shape[0]
    n_classes = wrong_cdf.shape[1]
    # Blocks whose wrong label is forced (binary oracles) skip the label draw.
    single = np.full(n_groups, -1, dtype=np.int64)
    for g in range(n_groups):
        prev = 0.0
        n_pos = 0
        for c in range(n_classes):
            if wrong_cdf[g, c] > prev:
                n_pos += 1
                single[g] = c
            prev = wrong_cdf[g, c]
        if n_pos != 1:
            single[g] = -1
    h1 = np.empty(n0, dtype=np.uint64)
    h2 = np.empty(n0, dtype=np.uint64)
    row_logp = np.empty(n0, dtype=np.float64)
    row_wrong = np.empty(n0, dtype=np.int64)
    out_logp = np.empty(reps, dtype=np.float64)
    out_wrong = np.empty(reps, dtype=np.int64)
    out_count = np.empty(reps, dtype=np.int64)
    salt = np.uint64(0x9E3779B97F4A7C15)
    for r in range(reps):
        for row in range(n0):
            a = np.uint64(0)
            b = np.uint64(0)
            lp = 0.0
            wrong = 0
            for g in range(n_groups):
                size = sizes[g]
                if size == 0 or err[g] <= 0.0:
                    continue  # every component correct: contributes log(1) = 0
                e = 0
                pos = -1
                while True:
                    # Geometric skipping: the number of correct components before the
                    # next wrong one is floor(log(V) / log(q)), V ~ U(0, 1], which has
                    # P(skip >= s) = q**s; so wrong positions are i.i.d. Bernoulli(err).
                    if err[g] >= 1.0:
                        pos += 1
                    else:
                        gap = math.log1p(-rng.random()) / log_q[g]
                        if gap >= size - pos - 1:
                            break
                        pos += int(gap) + 1
                    if pos >= size:
                        break
                    if single[g] >= 0:
                        lab = single[g]
                    else:
                        u = rng.random()
                        lab = 0
                        while lab < n_classes - 1 and wrong_cdf[g, lab] <= u:
                            lab += 1
                    lp += wrong_logp[g, lab]
                    code = np.uint64((offsets[g] + pos) * n_classes + lab)
                    a += _mix64(code)
                    b += _mix64(code ^ salt)
                    e += 1
                if e < size:
                    lp += (size - e) * log_q[g]
                wrong += e
            h1[row] = a
            h2[row] = b
            row_logp[row] = lp
            row_wrong[row] = wrong
        order = np.argsort(h1, kind="mergesort")
        best_count = 0
        best_first = n0
        i = 0
        while i < n0:
            # group rows with equal (h1, h2); within a run of equal h1, rows with a
            # different h2 are distinct vectors (practically never happens).
            j = i
            while j + 1 < n0 and h1[order[j + 1]] == h1[order[i]]:
                j += 1
            for s in range(i, j + 1):
                rs = order[s]
                if rs < 0:
                    continue
                cnt = 0
                first = n0
                for t in range(s, j + 1):
                    rt = order[t]
                    if rt >= 0 and h2[rt] == h2[rs]:
                        cnt += 1
                        first = min(first, rt)
                        if t != s:
                            order[t] = -1
                if cnt > best_count or (cnt == best_count and first < best_first):
                    best_count = cnt
                    best_first = first
            i = j + 1
        out_logp[r] = row_logp[best_first]
        out_wrong[r] = row_wrong[best_first]
        out_count[r] = best_count
    return out_logp, out_wrong, out_count
