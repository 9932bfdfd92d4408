"""How many testing samples n does a certify run need?  A planner for SEGCERTIFY.

Given the number N of components tested together (the pixels of an image),
τ, α, the method (and k), and a *profile* of the true probabilities p_A of the
guessed labels, :func:`plan_samples` predicts the expected certified rate —
the fraction of components SEGCERTIFY certifies — as a function of n, and the
smallest n that reaches a target rate.

Model
-----
Component i's guessed label has probability p_i under the noise; its hit
count among n independent testing samples is ``Bin(n, p_i)``; components are
independent; a family's p_i are drawn independently from the profile (or are
the given array, see ``profile``).  With ``n0`` the guessing stage is
simulated too, in the two-class reduction of the paper's oracle
(:class:`mtcert.sim.oracle.MultiClassOracle` with rows ``(1 - p, p)``): the guess
is right when p's class wins a strict majority of the ``n0`` guessing draws.

- Bonferroni-type methods ("bonferroni", "generalized-bonferroni") certify a
  component iff its hits reach a threshold h*(n) that depends on N, τ, α, k
  only.  The rate is then exact: ``E_p[P(Bin(n, p) >= h*)]``, a sum of
  binomial tails (:func:`mtcert.binom_test`) over the profile.
- Every other method (Holm, k-FWER Holm, ...) decides from the whole family;
  its rate is estimated by simulating families with the oracle simulator and
  deciding them with :func:`mtcert.certify.segmentation.segcertify_hits`, and comes with its
  Monte Carlo standard error.  Holm certifies a superset of Bonferroni on every
  data set, so the exact Bonferroni rate is a lower bound on Holm's expected
  rate and Bonferroni's exact n an upper bound on Holm's (:data:`SUPERSET_OF`):
  the n for a target is searched between grid points by bisection on the
  simulated rate, capped there, and reported with an interval
  (:attr:`SamplePlan.n_interval`).

A pilot run at small n (its stored counts, :mod:`mtcert.stored.counts`) estimates
the profile: the distribution of p_A is fitted to the pilot's hit histogram
by nonparametric maximum likelihood (the Kiefer–Wolfowitz NPMLE, computed by
EM on a grid), not by the noisy plug-in ``hits / n`` — at n = 20 that would
claim p_A = 1 for every component with 20 hits out of 20.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §5, §6.1 and App. B.
.. [2] J. Kiefer, J. Wolfowitz, "Consistency of the maximum likelihood
   estimator in the presence of infinitely many incidental parameters",
   Ann. Math. Statist. 27 (1956).
.. [3] N. Laird, "Nonparametric maximum likelihood estimation of a mixing
   distribution", JASA 73 (1978) (the EM iteration).
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from mtcert.certify.segmentation import segcertify_hits
from mtcert.sim.oracle import MultiClassOracle
from mtcert.stats.binomial import binom_test
from mtcert.stats.methods import resolve_method
from mtcert.stats.validation import as_probabilities, check_alpha, check_positive_int, check_tau
from mtcert.stored.counts import StoredCounts, read_counts

__all__ = [
    "Profile",
    "SamplePlan",
    "plan_samples",
    "plot_plan",
    "profile_from_histogram",
    "profile_from_pilot",
]

#: Methods whose certified rate :func:`plan_samples` computes exactly.
EXACT_METHODS = ("bonferroni", "generalized-bonferroni")
#: Simulated methods that certify a superset of an exact method (same k) on every data set:
#: the exact method's n for a target bounds theirs from above (tested).
SUPERSET_OF = {
    "holm": "bonferroni",
    "holm-sidak": "bonferroni",
    "sidak": "bonferroni",
    "hochberg": "bonferroni",
    "hommel": "bonferroni",
    "generalized-holm": "generalized-bonferroni",
    "generalized-hochberg": "generalized-bonferroni",
}
#: Monte Carlo standard errors either side of the simulated rate for :attr:`SamplePlan.n_interval`.
INTERVAL_Z = 2.0
#: Default grid of n.
DEFAULT_N = (10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)
_QUANTILES = 2000  # support points for a continuous profile
_GRID = np.unique(np.concatenate([np.linspace(0.0, 1.0, 401), 1.0 - np.geomspace(1e-5, 1e-2, 40)]))


@dataclass(frozen=True, eq=False)
class Profile:
    """A distribution of p_A over components: support points and their weights.

    Attributes
    ----------
    support, weights : ndarray
        p values in [0, 1] and their probabilities (summing to 1).
    fixed : ndarray or None
        When set, a family *is* these p values (N = its length) rather than
        an i.i.d. draw from the distribution.
    item_hists : ndarray or None
        A pilot's per-item hit histograms (for :meth:`bootstrap`).
    components : int or None
        Components per family suggested by the source (a pilot's mean item size).
    source : str
    """

    support: np.ndarray
    weights: np.ndarray
    fixed: np.ndarray | None = None
    components: int | None = None
    source: str = ""
    item_hists: np.ndarray | None = field(default=None, repr=False)

    @property
    def items(self) -> int | None:
        """Items of the pilot the profile was fitted to (None otherwise)."""
        return None if self.item_hists is None else len(self.item_hists)

    def bootstrap(self, rng: np.random.Generator) -> Profile:
        """The profile refitted to the pilot's items resampled with replacement."""
        if self.item_hists is None:
            raise ValueError("bootstrap needs a profile fitted to a pilot run's counts")
        hists = self.item_hists
        hist = hists[rng.integers(len(hists), size=len(hists))].sum(axis=0)
        start = np.full(_GRID.size, 0.5 / _GRID.size)  # warm start; no grid point at 0
        start[np.searchsorted(_GRID, self.support)] += 0.5 * self.weights
        w = _npmle(hist, hists.shape[1] - 1, start=start)
        keep = w > 1e-12
        return Profile(_GRID[keep], w[keep] / w[keep].sum(), components=self.components)

    def mean(self) -> float:
        return float(self.support @ self.weights)

    def draw(self, rng: np.random.Generator, shape) -> np.ndarray:
        """p values of ``shape`` components, i.i.d. from the profile (or the fixed family)."""
        if self.fixed is not None:
            return np.broadcast_to(self.fixed, shape).copy()
        return rng.choice(self.support, size=shape, p=self.weights)


def profile_from_pilot(counts, *, max_iter: int = 5000, tol: float = 1e-10) -> Profile:
    """Estimate the p_A profile from a pilot run's stored counts (NPMLE by EM).

    The pilot's hit counts, pooled over items and components, are a sample of
    the mixture ``∫ Bin(n_pilot, p) dG(p)``; the estimate of G maximises its
    likelihood over distributions on a fine grid of [0, 1] (finer near 1).

    Parameters
    ----------
    counts : StoredCounts, path, folder or sequence of paths
        The pilot's stored counts (:func:`mtcert.stored.counts.read_counts`).
    max_iter, tol
        EM iterations and the stopping tolerance on the log-likelihood gain.

    Returns
    -------
    Profile
        With ``components`` the pilot's mean number of components per item.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from mtcert.stored.counts import CountsWriter
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pilot.mtcounts"
    >>> rng = np.random.default_rng(0)
    >>> settings = dict(sigma=0.25, noise="gaussian", n0=10, n=20, seed=0,
    ...                 model="demo", num_classes=2)
    >>> with CountsWriter(path, settings) as w:
    ...     hits = rng.binomial(20, 0.9, size=5000)
    ...     w.add("a", guess=np.ones(5000, int), hits=hits, target=np.ones(5000, int))
    >>> prof = profile_from_pilot(path)
    >>> round(prof.mean(), 2), prof.components
    (0.9, 5000)
    """
    counts = read_counts(counts)
    n = counts.n
    hists = np.array([np.bincount(it.hits.ravel(), minlength=n + 1) for it in counts], float)
    if hists.size == 0:
        raise ValueError("the pilot holds no items")
    return profile_from_histogram(
        hists.sum(axis=0), components=round(counts.components() / len(counts)),
        source=f"pilot n={n} ({len(counts)} items)", item_hists=hists,
        max_iter=max_iter, tol=tol,
    )  # fmt: skip


def profile_from_histogram(
    hist, *, components: int, source: str = "pilot", item_hists=None, max_iter=5000, tol=1e-10
) -> Profile:
    """The p_A profile (NPMLE by EM) of a histogram of pilot hit counts.

    ``hist[h]`` components had ``h`` hits among ``n = len(hist) - 1`` pilot
    samples; the estimator of :func:`profile_from_pilot`, for hits held in memory
    (e.g. one image's pilot).

    Examples
    --------
    >>> import numpy as np
    >>> hits = np.random.default_rng(0).binomial(20, 0.9, size=5000)
    >>> prof = profile_from_histogram(np.bincount(hits, minlength=21), components=5000)
    >>> round(prof.mean(), 2)
    0.9
    """
    hist = np.asarray(hist, dtype=float)
    if hist.ndim != 1 or hist.size < 2 or not np.isfinite(hist).all() or (hist < 0).any():
        raise ValueError("hist must be a 1-D array of n + 1 >= 2 non-negative counts")
    if hist.sum() <= 0:
        raise ValueError("hist holds no components")
    w = _npmle(hist, hist.size - 1, max_iter=max_iter, tol=tol)
    keep = w > 1e-12
    return Profile(
        _GRID[keep], w[keep] / w[keep].sum(), components=components, source=source,
        item_hists=item_hists,
    )  # fmt: skip


def _npmle(hist, n, *, start=None, max_iter=5000, tol=1e-10) -> np.ndarray:
    """Weights on :data:`_GRID` maximising the likelihood of the hit histogram (EM)."""
    lik = stats.binom.pmf(np.arange(n + 1)[:, None], n, _GRID[None, :])  # (n + 1, G)
    w = np.full(_GRID.size, 1.0 / _GRID.size) if start is None else start.copy()
    total = hist.sum()
    used = hist > 0
    hist_u, lik_u = hist[used], lik[used]
    last = -np.inf
    for _ in range(max_iter):
        mix = lik_u @ w
        ll = float(hist_u @ np.log(mix)) / total
        w = w * (lik_u.T @ (hist_u / mix)) / total
        if ll - last < tol:
            break
        last = ll
    return w


def _as_profile(profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, StoredCounts | str | os.PathLike):
        return profile_from_pilot(profile)
    if hasattr(profile, "ppf"):  # a frozen scipy.stats distribution
        q = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
        p = np.asarray(profile.ppf(q), dtype=np.float64)
        as_probabilities(p, "profile (its quantiles)", allow_nan=False)
        name = getattr(getattr(profile, "dist", None), "name", "distribution")
        return Profile(p, np.full(p.size, 1.0 / p.size), source=f"{name} distribution")
    p = as_probabilities(profile, "profile", allow_nan=False).ravel()
    if p.size == 0:
        raise ValueError("profile is empty")
    support, freq = np.unique(p, return_counts=True)
    return Profile(support, freq / p.size, fixed=p, components=p.size, source=f"{p.size} values")


def _tail(h: int, n: int, p) -> np.ndarray:
    """P(Bin(n, p) >= h), 0 for h > n."""
    p = np.asarray(p, dtype=np.float64)
    if h > n:
        return np.zeros_like(p)
    return np.asarray(binom_test(h, n, p, alternative="greater"), dtype=np.float64)


def _threshold(n: int, N: int, tau: float, alpha: float, method: str, k: int) -> int:
    """Smallest hit count a Bonferroni-type method certifies in a family of N (n + 1: none).

    Decided by :func:`segcertify_hits` itself (binary search on one component;
    the others do not matter for these methods), so planner and certifier agree
    to the last floating-point comparison.
    """
    family = np.zeros(N, dtype=np.int64)
    guess = np.zeros(N, dtype=np.int64)

    def certified(h: int) -> bool:
        family[0] = h
        cert = segcertify_hits(guess, family, n, tau=tau, alpha=alpha, method=method, k=k)
        return bool(cert.reject[0])

    lo, hi = 0, n + 1  # certified(hi) is treated as True
    while lo < hi:
        mid = (lo + hi) // 2
        if certified(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _guess_right(n0: int | None, p: np.ndarray) -> np.ndarray:
    if n0 is None:
        return np.ones_like(p)
    # a strict majority of the n0 guessing draws (ties go to the other class, as the oracle)
    return _tail(n0 // 2 + 1, n0, p)


def _exact_rate(prof: Profile, n, N, tau, alpha, method, k, n0) -> tuple[float, float, int]:
    """Expected rate, sd of one family's realised rate, threshold."""
    h = _threshold(n, N, tau, alpha, method, k)
    p = prof.support
    g = _guess_right(n0, p)
    pi = g * _tail(h, n, p) + (1.0 - g) * _tail(h, n, 1.0 - p)
    rate = float(pi @ prof.weights)
    if prof.fixed is not None:  # independent components with known probabilities
        pi_fixed = np.interp(prof.fixed, p, pi)  # exact: every fixed value is a support point
        sd = math.sqrt(float(np.sum(pi_fixed * (1.0 - pi_fixed)))) / N
    else:  # i.i.d. Bernoulli(rate) components
        sd = math.sqrt(max(rate * (1.0 - rate), 0.0) / N)
    return rate, sd, h


def _simulated_rates(prof: Profile, n, N, tau, alpha, method, k, n0, reps, seed) -> np.ndarray:
    """Certified rate of ``reps`` oracle families of N components at n."""
    # one stream per (seed, n): a grid point's result does not depend on the rest of the grid
    rng = np.random.default_rng(np.random.SeedSequence([seed, n]))
    rates = np.empty(reps)
    for r in range(reps):
        p = prof.draw(rng, N)
        oracle = MultiClassOracle(np.column_stack([1.0 - p, p]), truth=np.ones(N, np.int64))
        if n0 is None:
            hits = oracle.sample_counts(n, rng=rng)[:, 1]
            guess = np.ones(N, np.int64)
        else:
            guess, hits = oracle.sample_guess_hits(n0, n, rng=rng)
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=k)
        rates[r] = cert.certified_rate
    return rates


@dataclass(frozen=True, eq=False)
class SamplePlan:
    """Result of :func:`plan_samples`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per n: ``n``, ``rate`` (expected certified rate), ``rate_se``
        (Monte Carlo standard error; 0 when exact), ``rate_sd`` (standard
        deviation of the realised rate of *one* family of N — a run of I such
        items has about ``rate_sd / sqrt(I)``), ``threshold`` (h*, for the exact
        methods), ``band_lo``/``band_hi`` (rate ± 2 standard deviations of the
        measured rate of a run over ``items`` families, including the Monte
        Carlo error and, with ``bootstrap``, the pilot's estimation error),
        ``exact``.
    n_needed : int or None
        Smallest n reaching ``target`` (None without a target or if no n of
        the grid reaches it).  For the exact methods every integer below the
        first grid point that reaches the target is checked too.  For the
        simulated methods the integers between grid points are searched by
        bisection on the simulated rate (assumed to rise with n), and the
        answer never exceeds ``n_bound``.
    n_interval : (int, int or None) or None
        For the simulated methods: the smallest n whose simulated rate plus
        :data:`INTERVAL_Z` Monte Carlo standard errors reaches the target, and
        the smallest whose rate minus them does (capped at ``n_bound``; None:
        not found on the grid).  ``(n_needed, n_needed)`` for the exact methods.
    n_bound : int or None
        The exact n of the method's Bonferroni-type counterpart
        (:data:`SUPERSET_OF`), an upper bound on this method's n; None when it
        has none.
    searched : tuple of int
        The n off the grid that the search for ``n_needed`` simulated.
    N, tau, alpha, method, k, n0, target, reps, items, bootstrap
        The inputs.
    profile : Profile
    """

    table: pd.DataFrame
    n_needed: int | None
    N: int
    tau: float
    alpha: float
    method: str
    k: int
    n0: int | None
    target: float | None
    reps: int
    items: int
    bootstrap: int
    profile: Profile = field(repr=False)
    n_interval: tuple | None = None
    n_bound: int | None = None
    searched: tuple = ()

    @property
    def exact(self) -> bool:
        return self.method in EXACT_METHODS

    def rate(self, n: int) -> float:
        """Expected rate at a grid value ``n``."""
        row = self.table.loc[self.table["n"] == n]
        if row.empty:
            raise ValueError(f"n={n} is not in the plan's grid")
        return float(row["rate"].iloc[0])

    @property
    def ceiling(self) -> float:
        """The rate as n grows without bound: the share of components whose guessed label
        has probability above τ (with ``n0``: whichever label the guess is).

        No n reaches a target above it.  Every method's rate tends to it; at a finite n
        it is below.

        Examples
        --------
        >>> plan = plan_samples([0.7, 0.8, 0.95, 0.99], tau=0.75, alpha=0.01,
        ...                     method="bonferroni", n=[10])
        >>> plan.ceiling  # three of the four p_A exceed tau
        0.75
        """
        p = self.profile.support
        g = _guess_right(self.n0, p)
        above = g * (p > self.tau) + (1.0 - g) * (1.0 - p > self.tau)
        return float(above @ self.profile.weights)

    def __repr__(self) -> str:
        how = "exact" if self.exact else f"oracle simulation, {self.reps} reps"
        need = "" if self.target is None else f", target={self.target:g}, n_needed={self.n_needed}"
        if self.target is not None and not self.exact and self.n_interval is not None:
            lo, hi = self.n_interval
            need += f" (interval {lo}..{'?' if hi is None else hi}"
            need += "" if self.n_bound is None else f", at most {self.n_bound}"
            need += ")"
        return (
            f"SamplePlan(N={self.N}, tau={self.tau:g}, alpha={self.alpha:g}, "
            f"method={self.method!r}, k={self.k}, {how}{need})"
        )


def plan_samples(
    profile,
    *,
    tau: float,
    alpha: float,
    method: str = "holm",
    k: int = 1,
    N: int | None = None,
    n=DEFAULT_N,
    target: float | None = None,
    n0: int | None = None,
    reps: int = 200,
    seed: int = 0,
    items: int | None = None,
    bootstrap: int = 0,
) -> SamplePlan:
    """Expected certified rate of SEGCERTIFY against n, and the n for a target rate.

    Parameters
    ----------
    profile : array_like, scipy.stats frozen distribution, Profile, or pilot counts
        The probabilities p_A of the guessed labels: an array (with ``N``
        omitted it *is* the family, otherwise its empirical distribution);
        a distribution on [0, 1] such as ``scipy.stats.beta(20, 2)``; or a
        pilot run's stored counts (a path, folder or
        :class:`~mtcert.stored.counts.StoredCounts`), fitted by
        :func:`profile_from_pilot`.
    tau, alpha, method, k
        As in :func:`mtcert.certify.segmentation.segcertify_hits`.
    N : int, optional
        Components per family (pixels per image).  Defaults to the array's
        length or the pilot's mean item size; required for a distribution.
    n : sequence of int
        The grid of testing sample sizes.
    target : float, optional
        Target certified rate in (0, 1]; sets :attr:`SamplePlan.n_needed`.
    n0 : int, optional
        Simulate the guessing stage with ``n0`` samples (two-class reduction);
        by default the guess is the class of p_A, as for a pilot's profile.
    reps : int, default 200
        Simulated families per n for the non-exact methods.
    seed : int, default 0
    items : int, optional
        Families (images) in the planned run, for the band of its measured
        rate; defaults to the pilot's number of items, else 1.
    bootstrap : int, default 0
        With a pilot profile: refit the profile to this many resamples of the
        pilot's items and add the spread of their predictions (the pilot's
        own estimation error) to the band.  Simulated methods then use
        ``max(10, reps // bootstrap)`` families per resample.

    Returns
    -------
    SamplePlan

    Examples
    --------
    >>> from scipy import stats
    >>> plan = plan_samples(stats.beta(30, 1.5), N=10_000, tau=0.75, alpha=0.001,
    ...                     method="bonferroni", n=[20, 50, 100, 200], target=0.8)
    >>> plan.table[["n", "rate", "threshold"]].round(3)
         n   rate  threshold
    0   20  0.000         21
    1   50  0.000         51
    2  100  0.579         96
    3  200  0.901        180
    >>> plan.n_needed  # every n from 101 to 200 checked
    136
    """
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    k = check_positive_int(k, "k")
    if not isinstance(method, str):
        raise ValueError(f"method must be a string naming a procedure; got {method!r}")
    method = method.lower()
    reps = check_positive_int(reps, "reps")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    n0 = None if n0 is None else check_positive_int(n0, "n0")
    grid = sorted({check_positive_int(v, "n") for v in np.atleast_1d(n).tolist()})
    if not grid:
        raise ValueError("n is empty: give at least one sample size")
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, numbers.Real):
            raise ValueError(f"target must be a number in (0, 1]; got {target!r}")
        if not 0.0 < float(target) <= 1.0:
            raise ValueError(f"target must lie in (0, 1]; got {target!r}")
        target = float(target)
    prof = _as_profile(profile)
    if N is None:
        if prof.components is None:
            raise ValueError("N is required for a distribution profile")
        N = prof.components
    N = check_positive_int(N, "N")
    if prof.fixed is not None and N != prof.fixed.size:
        prof = Profile(prof.support, prof.weights, components=N, source=prof.source)
    if bootstrap and prof.item_hists is None:
        raise ValueError("bootstrap needs a pilot run's counts as the profile")
    items = check_positive_int(items if items is not None else prof.items or 1, "items")
    bootstrap = check_positive_int(bootstrap, "bootstrap", minimum=0)
    exact = method in EXACT_METHODS
    args = (tau, alpha, method, k, n0)

    def rate_of(p: Profile, nn: int, reps_: int, seed_: int):
        if exact:
            rate, sd, h = _exact_rate(p, nn, N, *args)
            return rate, 0.0, sd, h
        r = _simulated_rates(p, nn, N, *args, reps_, seed_)
        sd = float(r.std(ddof=1)) if reps_ > 1 else float("nan")
        return float(r.mean()), sd / math.sqrt(reps_), sd, None

    boot = []
    if bootstrap:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2**32]))
        resampled = [prof.bootstrap(rng) for _ in range(bootstrap)]
        reps_b = max(10, reps // bootstrap)
        boot = [
            [rate_of(p, nn, reps_b, seed + 1 + b)[0] for nn in grid]
            for b, p in enumerate(resampled)
        ]
    boot_sd = np.std(boot, axis=0, ddof=1) if bootstrap > 1 else np.zeros(len(grid))
    rows = []
    for j, nn in enumerate(grid):
        rate, se, sd, h = rate_of(prof, nn, reps, seed)
        half = 2.0 * math.sqrt(se**2 + boot_sd[j] ** 2 + sd**2 / items)
        rows.append(
            dict(
                n=nn, rate=rate, rate_se=se, rate_sd=sd, band_lo=max(0.0, rate - half),
                band_hi=min(1.0, rate + half), threshold=h, exact=exact,
            )
        )  # fmt: skip
    table = pd.DataFrame(rows)
    n_needed = n_interval = n_bound = None
    searched: tuple = ()
    if target is not None:
        reached = table.index[table["rate"] >= target]
        if exact and len(reached):
            i = int(reached[0])
            n_needed = int(table.loc[i, "n"])
            # the rate is exact: check every integer between grid points
            lo = int(table.loc[i - 1, "n"]) + 1 if i > 0 else 1
            for nn in range(lo, n_needed):
                if _exact_rate(prof, nn, N, *args)[0] >= target:
                    n_needed = nn
                    break
            n_interval = (n_needed, n_needed)
        elif not exact:
            counterpart = SUPERSET_OF.get(resolve_method(method, k)[0])
            if counterpart is not None:
                n_bound = plan_samples(
                    prof, tau=tau, alpha=alpha, method=counterpart, k=k, N=N, n=grid,
                    target=target, n0=n0,
                ).n_needed  # fmt: skip
            simulated = {int(r.n): (float(r.rate), float(r.rate_se)) for r in table.itertuples()}

            def sim(nn: int) -> tuple[float, float]:
                if nn not in simulated:
                    r = _simulated_rates(prof, nn, N, *args, reps, seed)
                    se = float(r.std(ddof=1)) / math.sqrt(reps) if reps > 1 else 0.0
                    simulated[nn] = (float(r.mean()), se)
                return simulated[nn]

            n_needed = _search(grid, target, sim, n_bound, 0.0)
            if n_needed is not None:
                n_interval = (
                    _search(grid, target, sim, n_bound, INTERVAL_Z),
                    _search(grid, target, sim, n_bound, -INTERVAL_Z),
                )
            searched = tuple(sorted(set(simulated) - set(grid)))
    return SamplePlan(
        table=table, n_needed=n_needed, N=N, tau=tau, alpha=alpha, method=method, k=k, n0=n0,
        target=target, reps=reps, items=items, bootstrap=bootstrap, profile=prof,
        n_interval=n_interval, n_bound=n_bound, searched=searched,
    )  # fmt: skip


def _search(grid, target: float, sim, bound: int | None, z: float) -> int | None:
    """Smallest n with simulated ``rate + z * se >= target``, by bisection between grid points.

    The first grid point that reaches it, or ``bound`` (an n where the target is known to be
    reached: the exact Bonferroni-type counterpart's) if that is smaller, brackets the search
    from above; the grid point below it from below.  The rate is assumed to rise with n.
    """
    first = next((g for g in grid if sim(g)[0] + z * sim(g)[1] >= target), None)
    tops = [x for x in (first, bound) if x is not None]
    if not tops:
        return None
    hi = min(tops)
    lo = max((g for g in grid if g < hi), default=0) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        rate, se = sim(mid)
        if rate + z * se >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def plot_plan(plan: SamplePlan, *, ax=None, measured: dict | None = None):
    """Expected certified rate against n (log axis) with the band of a run's measured rate.

    Drawn in the project's style (:mod:`mtcert.plotting`): the predicted rate
    with a marker at every n of the grid, the band of a run's measured rate
    around it, the target rate and the n that reaches it as reference lines,
    and a title with the settings (N, n0 when the guess is simulated, τ, α, the
    method, the target).

    Parameters
    ----------
    plan : SamplePlan
    ax : matplotlib Axes, optional
        Draw into this axes (its figure keeps its layout); a new figure otherwise.
    measured : dict ``n -> rate``, optional
        Rates of real runs to mark on the plot.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plan = plan_samples(np.full(50, 0.99), tau=0.75, alpha=0.001, n=[50, 100, 200],
    ...                     target=0.9)
    >>> fig = plot_plan(plan)
    >>> fig.axes[0].lines[0].get_marker()
    'o'
    """
    from mtcert.plotting import OKABE_ITO, add_legend, curve_style, pyplot, style_axes, wrap_title

    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 4.6), layout="constrained")
    else:
        fig = ax.figure
    t = plan.table
    label = f"{plan.method}" + (f" k={plan.k}" if plan.k != 1 else "")
    style = curve_style(0)
    (line,) = ax.plot(
        t["n"], t["rate"], label=f"predicted ({label})", markersize=5, markerfacecolor="none",
        linewidth=1.4, **style,
    )  # fmt: skip
    band = f"±2 sd of a run of {plan.items} item(s)" + (
        " (with the pilot's bootstrap)" if plan.bootstrap else ""
    )
    ax.fill_between(
        t["n"], t["band_lo"], t["band_hi"], color=line.get_color(), alpha=0.2, lw=0, label=band
    )
    if plan.target is not None:
        ax.axhline(plan.target, color=OKABE_ITO[6], ls="--", lw=1, label=f"target {plan.target:g}")
    if plan.n_needed is not None:
        ax.axvline(plan.n_needed, color=OKABE_ITO[0], ls=":", lw=1.2,
                   label=f"n = {plan.n_needed} reaches it")  # fmt: skip
    if measured:
        ax.plot(list(measured), list(measured.values()), "x", color=OKABE_ITO[6], ms=8,
                mew=2, ls="none", label="measured")  # fmt: skip
    style_axes(ax, xlabel="testing samples n", ylabel="certified rate", logx=True)
    add_legend(ax, caption=f"profile: {plan.profile.source}", ncol=2)
    settings = [f"N = {plan.N}", *([] if plan.n0 is None else [f"n0 = {plan.n0}"])]
    settings += [f"τ = {plan.tau:g}", f"α = {plan.alpha:g}", label]
    if plan.target is not None:
        settings.append(f"target rate {plan.target:g}")
    title = f"expected certified rate against n: {', '.join(settings)}"
    ax.set_title(wrap_title(title, 70), fontsize="medium")
    return fig
