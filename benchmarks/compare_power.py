"""Power-study timings: the paper's Fig. 2 presets, peak memory, and a naive reference.

Targets: ``fig2a`` at the paper's full settings (101 gammas, 600
repetitions, 4 methods, N = 100, n0 = n = 100) in <= 10 s, and ``fig2c`` up to
N = 1e6 with n0 = n = 1000 in <= 30 s, on the project's 2-core machine.

The reference is a straightforward simulator in the style of the paper's released
code: it materialises every sampled label vector, counts them, and calls
scipy / statsmodels per repetition.  It runs on a slice of fig2a and the ratio
is measured on that same slice, in the same run.
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import numpy as np
from _timing import report
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from mtcert.sim.power import PRESETS, run_grid, run_preset


def _naive_rep(rng, N, n_bad, gamma, n0, n, alpha, tau):
    """One repetition of the four fig2a methods from materialised samples."""
    q = np.full(N, 1.0 - gamma)
    q[:n_bad] = min(1.0, max(0.0, 1.0 - 5 * gamma))
    s0 = (rng.random((n0, N)) < q).astype(np.int8)
    s = (rng.random((n, N)) < q).astype(np.int8)
    out = {}
    # JointClass: mode of the n0 label vectors, its count among n, Clopper–Pearson.
    rows, counts = np.unique(s0, axis=0, return_counts=True)
    mode = rows[np.argmax(counts)]
    hits = int(np.all(s == mode, axis=1).sum())
    low = proportion_confint(hits, n, alpha=2 * alpha, method="beta")[0] if hits else 0.0
    out["jointclass"] = float(low > 0.5)
    # Per-component guesses and hits.
    guess = (2 * s0.sum(0) > n0).astype(int)
    h = np.where(guess == 1, s.sum(0), n - s.sum(0))
    low = np.array([proportion_confint(x, n, alpha=2 * alpha / N, method="beta")[0] for x in h])
    out["indivclass"] = float(np.all(np.nan_to_num(low) > 0.5))
    p = stats.binom.sf(h - 1, n, tau)
    out["segcertify-holm"] = multipletests(p, alpha=alpha, method="holm")[0].mean()
    out["segcertify-bonferroni"] = multipletests(p, alpha=alpha, method="bonferroni")[0].mean()
    return out


def _naive(gammas, reps, seed=0):
    rng = np.random.default_rng(seed)
    for g in gammas:
        for _ in range(reps):
            _naive_rep(rng, 100, 1, g, 100, 100, 0.001, 0.75)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    print("\npower studies (mtcert.sim.power)")
    run_preset("fig2c", reps=1, workers=1)  # compile / load numba caches once

    _, t = _timed(lambda: run_preset("fig2a"))
    print(f"fig2a full (101 gammas x 600 reps x 4 methods), default threads: {t:6.2f} s")
    _, t = _timed(lambda: run_preset("fig2a", backend="processes"))
    print(f"fig2a full, backend='processes' (incl. pool start):           {t:6.2f} s")
    _, t = _timed(lambda: run_preset("fig2a", workers=1))
    print(f"fig2a full, serial (workers=1):                                 {t:6.2f} s")
    Ns = PRESETS["fig2c"].grid["N"]
    _, t = _timed(lambda: run_preset("fig2c"))
    print(
        f"fig2c full (N = {Ns[0]}..{Ns[-1]:.0e}, {PRESETS['fig2c'].reps} reps, n0=n=1000), "
        f"default threads: {t:6.2f} s"
    )

    # Peak memory of the simulation itself, in this process (tracemalloc sees numpy's
    # allocations): fig2c serially, and one repetition batch at N = 1e7.
    tracemalloc.start()
    _, t = _timed(lambda: run_preset("fig2c", workers=1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    print(f"fig2c full, serial: {t:6.2f} s, peak traced memory {peak / 2**20:7.1f} MiB")
    big = dict(gamma=0.05, N=10**7, n0=1000, n=1000, alpha=0.1, tau=0.9, reps=2, workers=1)
    _, t = _timed(lambda: run_grid(["segcertify-holm", "segcertify-bonferroni"], **big))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"N = 1e7, 2 reps, Holm + Bonferroni: {t:6.2f} s, peak traced memory "
          f"{peak / 2**20:7.1f} MiB")  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process so far: {rss:.0f} MiB")

    # Same slice of fig2a, ours (serial) vs the naive reference.
    gammas = [0.0, 0.025, 0.05, 0.075, 0.1]
    reps = 60
    methods = list(PRESETS["fig2a"].grid["method"])
    kw = dict(N=100, n_bad=1, n0=100, n=100, alpha=0.001, tau=0.75)
    _, ours = _timed(lambda: run_grid(methods, gamma=gammas, reps=reps, workers=1, **kw))
    _, ref = _timed(lambda: _naive(gammas, reps))
    report(
        [(f"fig2a slice: {len(gammas)} gammas x {reps} reps, serial", ours, ref)],
        "power grid vs a naive materialising simulator (scipy + statsmodels)",
    )
    full = 101 * 600 / (len(gammas) * reps)
    print(f"(naive reference extrapolated to full fig2a: ~{ref * full:.0f} s)")


if __name__ == "__main__":
    main()
