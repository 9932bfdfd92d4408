"""Power studies on synthetic oracles: grids -> tidy DataFrames (paper §6.1, App. B).

A *grid* is the Cartesian product of the oracle parameters (``N``, ``k``,
``gamma``), the sample sizes (``n0``, ``n``), the certification parameters
(``alpha``, ``tau``), the error budget ``budget`` and the methods.  Each
combination is simulated ``reps`` times on a :class:`~mtcert.oracle.BinaryOracle`
and summarised in one row of a :class:`pandas.DataFrame`.

Methods
-------
``"jointclass"``
    JOINTCLASS (paper §4): Cohen et al.'s CERTIFY on the whole label vector.
``"indivclass"``
    INDIVCLASS (paper §4): CERTIFY per component at ``alpha / N``; one
    abstention abstains everything.
``"segcertify-<adjust method>"``
    SEGCERTIFY (Algorithm 2) with any :func:`mtcert.multitest.adjust` method,
    e.g. ``"segcertify-holm"``, ``"segcertify-bonferroni"``.  k-FWER methods
    (``"segcertify-generalized-holm"``, ...) take an error budget ``b`` and run
    with ``k = b + 1`` (paper App. B.2).

The certification itself is done by :mod:`mtcert.certify`; this module only
simulates the oracle, batches repetitions and bookkeeps.

Result columns
--------------
``method, budget_spec, budget, gamma, N, k, n0, n, alpha, tau, reps``
    the grid point (``k``: the oracle's bad components; ``budget``: the error
    budget ``b`` resolved for this ``N``; ``budget_spec``: as requested).
``certified_rate``
    mean over repetitions of the fraction of certified (non-abstained)
    components — the y-axis of the paper's Figs. 2, 5 and 6.
``stderr``
    its standard error (sample standard deviation of the per-repetition
    fractions over ``sqrt(reps)``).
``certified_correct_rate``
    mean fraction of components certified *and* equal to the true label.
``false_certified_rate``
    mean fraction of components whose certificate is false: SEGCERTIFY
    certified a label whose true probability is ``<= tau``; CERTIFY-based
    methods claimed a lower bound above the true probability.  JOINTCLASS makes
    one claim for all ``N`` components, so a false joint claim counts ``N``.
``type1_errors``
    number of repetitions in which the method's guarantee failed, i.e. the
    event whose probability it promises to keep ``<= alpha``: at least
    ``budget + 1`` false components (FWER / k-FWER), a false joint claim
    (JOINTCLASS), or any false component claim (INDIVCLASS).  FDR methods
    promise less (a bound on the expected false fraction); for them this column
    still counts repetitions with any false certificate.
``runtime``
    seconds spent on this row: its share of the oracle simulation plus its
    certification calls.

Reproducibility
---------------
Every *scenario* (``N, k, gamma, n0, n``) draws from its own
``numpy.random.SeedSequence(seed, spawn_key=...)`` whose key is derived from the
scenario's parameters, and all methods of a scenario share the same draws
(common random numbers; JOINTCLASS uses a separate child stream).  Results
therefore do not depend on the executor, the number of workers, the order of
completion or on what else is in the grid.  Repetitions are simulated in
batches whose size depends only on ``N`` and ``reps``.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §4, §6.1 and App. B.
.. [2] E. L. Lehmann, J. P. Romano, "Generalizations of the familywise error
   rate", Ann. Statist. 33 (2005).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import multiprocessing
import numbers
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mtcert.oracle import BinaryOracle, _check_gamma
from mtcert.validation import check_alpha, check_positive_int, check_tau

__all__ = [
    "PRESETS",
    "Preset",
    "method_names",
    "run_grid",
    "run_preset",
    "smooth",
]

# Repetitions are simulated in batches of at most this many components in total
# (at least one repetition), which bounds memory for N up to 1e7.
_BATCH_ELEMENTS = 1 << 21

_SAVGOL_WINDOW = 11  # paper App. B.1: degree 1 over the 11 closest neighbours
_SAVGOL_DEGREE = 1

COLUMNS = (
    "method",
    "budget_spec",
    "budget",
    "gamma",
    "N",
    "k",
    "n0",
    "n",
    "alpha",
    "tau",
    "reps",
    "certified_rate",
    "stderr",
    "certified_correct_rate",
    "false_certified_rate",
    "type1_errors",
    "runtime",
)


def method_names() -> tuple[str, ...]:
    """All method names :func:`run_grid` accepts."""
    from mtcert.multitest import METHODS

    return ("jointclass", "indivclass", *(f"segcertify-{m}" for m in METHODS))


def _check_method(method) -> str:
    names = method_names()
    if not isinstance(method, str) or method not in names:
        raise ValueError(f"method must be one of {', '.join(map(repr, names))}; got {method!r}")
    return method


def _takes_budget(method: str) -> bool:
    from mtcert.multitest import KFWER_METHODS

    return method.startswith("segcertify-") and method[len("segcertify-") :] in KFWER_METHODS


def _budget_spec(b):
    """Validate an error budget: an int >= 0 or a fraction of N in (0, 1)."""
    if isinstance(b, bool) or not isinstance(b, numbers.Real):
        raise ValueError(f"budget must be an int >= 0 or a fraction of N in (0, 1); got {b!r}")
    if isinstance(b, numbers.Integral) or float(b).is_integer():
        if b < 0:
            raise ValueError(f"budget must be >= 0; got {b!r}")
        return int(b)
    b = float(b)
    if not 0.0 < b < 1.0:
        raise ValueError(f"a fractional budget must lie in (0, 1) (a fraction of N); got {b!r}")
    return b


def _format_budget(spec) -> str:
    return str(spec) if isinstance(spec, int) else f"{spec:g}N"


def _resolve_budget(spec, N: int) -> int:
    return spec if isinstance(spec, int) else math.floor(spec * N)


def _as_list(values, name) -> list:
    if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)):
        values = [values]
    values = list(np.asarray(values).tolist()) if isinstance(values, np.ndarray) else list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


@dataclass(frozen=True)
class _Evaluation:
    method: str
    alpha: float
    tau: float
    budget_spec: object
    budget: int


@dataclass(frozen=True)
class _Scenario:
    N: int
    k: int
    gamma: float
    n0: int
    n: int
    evaluations: tuple
    reps: int
    seed: int

    def key(self) -> tuple[int, ...]:
        # A stable 128-bit key from the scenario's parameters (not its position in
        # the grid), so its draws are the same in every grid that contains it.
        text = repr((self.N, self.k, float(self.gamma), self.n0, self.n))
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def _expand(methods, gamma, N, k, n0, n, alpha, tau, budget, reps, seed) -> list[_Scenario]:
    methods = [_check_method(m) for m in _as_list(methods, "method")]
    gammas = [_check_gamma(g) for g in _as_list(gamma, "gamma")]
    Ns = [check_positive_int(v, "N") for v in _as_list(N, "N")]
    ks = [check_positive_int(v, "k", minimum=0) for v in _as_list(k, "k")]
    n0s = [check_positive_int(v, "n0") for v in _as_list(n0, "n0")]
    ns = [check_positive_int(v, "n") for v in _as_list(n, "n")]
    alphas = [check_alpha(a) for a in _as_list(alpha, "alpha")]
    taus = [check_tau(t) for t in _as_list(tau, "tau")]
    budgets = list(dict.fromkeys(_budget_spec(b) for b in _as_list(budget, "budget")))
    reps = check_positive_int(reps, "reps")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    scenarios = []
    for N_, k_, g, n0_, n_ in itertools.product(Ns, ks, gammas, n0s, ns):
        if k_ > N_:
            raise ValueError(f"k (bad components) must be <= N; got k={k_}, N={N_}")
        evals = []
        for m, a, t in itertools.product(methods, alphas, taus):
            # Only k-FWER methods take a budget; the others run once, with b = 0.
            specs = budgets if _takes_budget(m) else [0]
            resolved = {}
            for spec in specs:
                b = _resolve_budget(spec, N_)
                resolved.setdefault(b, spec)
            evals.extend(_Evaluation(m, a, t, s, b) for b, s in resolved.items())
        scenarios.append(_Scenario(N_, k_, g, n0_, n_, tuple(evals), reps, int(seed)))
    return scenarios


# -- certification adapters (all statistics live in mtcert.certify) ------------------


def _certify_components(ev: _Evaluation, guess, hits, n, p_true):
    """Certified mask and false-certificate mask for a batch ``(b, N)``."""
    from mtcert import certify as C

    if ev.method == "indivclass":
        certified, p_lower = _indivclass(guess, hits, n, ev.alpha)
        return certified, certified & (p_true < p_lower)
    adj = ev.method[len("segcertify-") :]
    res = C.segcertify_hits(
        guess, hits, n, tau=ev.tau, alpha=ev.alpha, method=adj, k=ev.budget + 1, axis=-1
    )
    certified = np.asarray(res.labels) != C.ABSTAIN
    # SEGCERTIFY claims p > tau for every certified component (Prop. 1).
    return certified, certified & (p_true <= ev.tau)


def _indivclass(guess, hits, n, alpha):
    """INDIVCLASS on a batch ``(b, N)``: certified mask and per-component ``p_lower``.

    Identical to ``mtcert.certify.indivclass(..., axis=-1)`` (a test checks it),
    but CERTIFY is evaluated once per distinct (guess, hits) pair — there are at
    most ``2 (n + 1)`` — instead of once per component: the Clopper–Pearson
    bound dominates the cost otherwise.
    """
    from mtcert import certify as C

    N = guess.shape[-1]
    key = guess.astype(np.int64) * (n + 1) + hits  # int64: no overflow of compact dtypes
    pairs, inverse = np.unique(key, return_inverse=True)
    g, h = np.divmod(pairs, n + 1)
    counts0 = np.zeros((pairs.size, 2), dtype=np.int64)
    counts0[np.arange(pairs.size), g] = 1
    counts = np.zeros((pairs.size, 2), dtype=np.int64)
    counts[np.arange(pairs.size), g] = h
    counts[np.arange(pairs.size), 1 - g] = n - h
    res = C.certify(counts0, counts, alpha=alpha / N)  # Bonferroni over the N components
    inverse = inverse.reshape(guess.shape)
    component_ok = (np.asarray(res.label) != C.ABSTAIN)[inverse]
    family_ok = component_ok.all(axis=-1, keepdims=True)  # one abstention abstains all
    return np.broadcast_to(family_ok, guess.shape), np.asarray(res.p_lower)[inverse]


def _certify_joint(ev: _Evaluation, hits, n):
    """JOINTCLASS = CERTIFY with the joint label vector as the class (paper §4)."""
    from mtcert import certify as C

    b = hits.shape[0]
    counts0 = np.zeros((b, 2), dtype=np.int64)
    counts0[:, 0] = 1  # class 0 stands for the modal joint vector
    counts = np.stack([hits, n - hits], axis=-1)
    res = C.certify(counts0, counts, alpha=ev.alpha)
    return np.asarray(res.label) != C.ABSTAIN, np.asarray(res.p_lower)


# -- one scenario --------------------------------------------------------------------


@dataclass
class _Acc:
    rate: list = field(default_factory=list)
    correct: list = field(default_factory=list)
    false: list = field(default_factory=list)
    type1: int = 0
    seconds: float = 0.0


def _batches(reps: int, N: int):
    size = max(1, min(reps, _BATCH_ELEMENTS // N))
    for start in range(0, reps, size):
        yield min(size, reps - start)


def _run_scenario(sc: _Scenario) -> list[dict]:
    oracle = BinaryOracle(sc.N, sc.gamma, sc.k)
    key = sc.key()
    accs = {ev: _Acc() for ev in sc.evaluations}
    count_evals = [ev for ev in sc.evaluations if ev.method != "jointclass"]
    joint_evals = [ev for ev in sc.evaluations if ev.method == "jointclass"]

    if count_evals:
        rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(*key, 0)))
        for b in _batches(sc.reps, sc.N):
            t0 = time.perf_counter()
            guess, hits = oracle.sample_guess_hits(sc.n0, sc.n, rng=rng, reps=b)
            p_true = oracle.label_probabilities(guess)
            correct = guess == 1
            share = (time.perf_counter() - t0) / len(count_evals)
            for ev in count_evals:
                t0 = time.perf_counter()
                certified, false = _certify_components(ev, guess, hits, sc.n, p_true)
                acc = accs[ev]
                acc.rate.append(certified.mean(axis=-1))
                acc.correct.append((certified & correct).mean(axis=-1))
                n_false = false.sum(axis=-1)
                acc.false.append(n_false / sc.N)
                acc.type1 += int((n_false > ev.budget).sum())
                acc.seconds += share + time.perf_counter() - t0

    if joint_evals:
        rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(*key, 1)))
        for b in _batches(sc.reps, sc.N):
            t0 = time.perf_counter()
            mode = oracle.sample_joint_mode(sc.n0, rng=rng, reps=b)
            hits = rng.binomial(sc.n, mode.probability)
            share = (time.perf_counter() - t0) / len(joint_evals)
            for ev in joint_evals:
                t0 = time.perf_counter()
                certified, p_lower = _certify_joint(ev, hits, sc.n)
                false = certified & (mode.probability < p_lower)
                acc = accs[ev]
                acc.rate.append(certified.astype(float))
                acc.correct.append(np.where(certified, 1.0 - mode.n_wrong / sc.N, 0.0))
                acc.false.append(false.astype(float))
                acc.type1 += int(false.sum())
                acc.seconds += share + time.perf_counter() - t0

    rows = []
    for ev in sc.evaluations:
        acc = accs[ev]
        rate = np.concatenate(acc.rate)
        rows.append(
            {
                "method": ev.method,
                "budget_spec": _format_budget(ev.budget_spec),
                "budget": ev.budget,
                "gamma": sc.gamma,
                "N": sc.N,
                "k": sc.k,
                "n0": sc.n0,
                "n": sc.n,
                "alpha": ev.alpha,
                "tau": ev.tau,
                "reps": sc.reps,
                "certified_rate": float(rate.mean()),
                "stderr": float(rate.std(ddof=1) / math.sqrt(rate.size))
                if rate.size > 1
                else np.nan,
                "certified_correct_rate": float(np.concatenate(acc.correct).mean()),
                "false_certified_rate": float(np.concatenate(acc.false).mean()),
                "type1_errors": acc.type1,
                "runtime": acc.seconds,
            }
        )
    return rows


def _run_chunk(scenarios: list[_Scenario]) -> list[list[dict]]:
    return [_run_scenario(sc) for sc in scenarios]


# -- execution -------------------------------------------------------------------------


def _chunks(n_items, n_chunks):
    # Interleaved chunks balance the load (cost often grows along a swept axis);
    # few chunks per worker keep the task overhead low.
    n_chunks = max(1, min(n_chunks, n_items))
    return [list(range(i, n_items, n_chunks)) for i in range(n_chunks)]


def _execute(scenarios, executor, workers, progress):
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(scenarios), unit="point", desc="power study")
    try:
        if executor is None:
            if workers is None:
                workers = os.cpu_count() or 1
            workers = check_positive_int(workers, "workers")
            if workers == 1 or len(scenarios) == 1:
                results = []
                for sc in scenarios:
                    results.append(_run_scenario(sc))
                    if bar is not None:
                        bar.update(1)
                return results
            with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
                return _submit(pool, scenarios, 4 * workers, bar)
        if not isinstance(executor, Executor) and not hasattr(executor, "submit"):
            raise ValueError(
                "executor must be a concurrent.futures.Executor (e.g. "
                "distributed.Client(...).get_executor()); "
                f"got {type(executor).__name__}"
            )
        n_chunks = 4 * (workers or os.cpu_count() or 1)
        return _submit(executor, scenarios, n_chunks, bar)
    finally:
        if bar is not None:
            bar.close()


def _mp_context():
    # Never fork this process: after numba's OpenMP-backed kernels have run in it,
    # fork() is unsafe (GNU OpenMP aborts the child).  A fork server started from
    # a clean interpreter, which imports the simulator once, forks the workers
    # cheaply instead; "spawn" where there is no fork server (Windows, macOS).
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__, "mtcert.certify"])
        return ctx
    return multiprocessing.get_context("spawn")


def _submit(executor, scenarios, n_chunks, bar):
    chunks = _chunks(len(scenarios), n_chunks)
    futures = {
        executor.submit(_run_chunk, [scenarios[i] for i in chunk]): chunk for chunk in chunks
    }
    out = [None] * len(scenarios)
    for fut in as_completed(futures):
        chunk = futures[fut]
        for i, rows in zip(chunk, fut.result(), strict=True):
            out[i] = rows
        if bar is not None:
            bar.update(len(chunk))
    return out


def run_grid(
    method,
    *,
    gamma,
    N,
    k=0,
    n0=100,
    n=100,
    alpha=0.001,
    tau=0.75,
    budget=0,
    reps=100,
    seed=0,
    executor=None,
    workers=None,
    progress=False,
) -> pd.DataFrame:
    """Simulate every grid point ``reps`` times on the binary oracle.

    Every parameter below except ``reps``, ``seed``, ``executor``, ``workers``
    and ``progress`` takes a single value or a sequence; the grid is their
    Cartesian product.

    Parameters
    ----------
    method : str or sequence of str
        ``"jointclass"``, ``"indivclass"`` or ``"segcertify-<adjust method>"``
        (see :func:`method_names`).
    gamma : float or sequence
        Error rate of the good components, in [0, 1].
    N : int or sequence
        Number of components.
    k : int or sequence, default 0
        Number of bad components (error rate ``5 * gamma``, clamped).
    n0, n : int or sequence, default 100
        Samples for guessing and for testing.
    alpha : float or sequence, default 0.001
        Level of the certificate (FWER, k-FWER or per-claim level).
    tau : float or sequence, default 0.75
        SEGCERTIFY threshold in [1/2, 1) (ignored by the CERTIFY-based methods).
    budget : int, float or sequence, default 0
        Error budget ``b`` for k-FWER methods (``k = b + 1``): an int >= 0, or a
        fraction of N in (0, 1) (``b = floor(fraction * N)``).  Other methods
        run once with ``b = 0``.
    reps : int, default 100
        Repetitions per grid point.
    seed : int, default 0
        Root seed; see the module notes on reproducibility.
    executor : concurrent.futures.Executor, optional
        Where to run grid points, e.g. ``distributed.Client(...).get_executor()``.
        By default a local :class:`~concurrent.futures.ProcessPoolExecutor`
        (fork-server workers; scripts need the usual ``if __name__ == "__main__":``
        guard).
    workers : int, optional
        Processes of the default executor (default: all cores; 1 runs serially
        in this process).  With an ``executor``, only sets how many chunks the
        grid is split into (4 per worker).
    progress : bool, default False
        Show a tqdm progress bar over grid points.

    Returns
    -------
    pandas.DataFrame
        One row per grid point and method, columns as listed in the module notes.

    Examples
    --------
    >>> from mtcert.power import run_grid
    >>> df = run_grid(["segcertify-holm", "segcertify-bonferroni"], gamma=0.05, N=1000,
    ...               n0=1000, n=1000, alpha=0.1, tau=0.9, reps=5, workers=1)
    >>> df[["method", "N", "certified_rate"]]
                      method     N  certified_rate
    0        segcertify-holm  1000          1.0000
    1  segcertify-bonferroni  1000          0.9906
    """
    scenarios = _expand(method, gamma, N, k, n0, n, alpha, tau, budget, reps, seed)
    results = _execute(scenarios, executor, workers, progress)
    rows = [row for rows in results for row in rows]
    return pd.DataFrame(rows, columns=list(COLUMNS))


# -- smoothing ------------------------------------------------------------------------


def smooth(
    df: pd.DataFrame,
    *,
    x: str = "gamma",
    window: int = _SAVGOL_WINDOW,
    degree: int = _SAVGOL_DEGREE,
    column: str = "certified_rate",
) -> pd.DataFrame:
    """Add the paper's Savitzky–Golay-smoothed curve as ``<column>_smoothed``.

    Each curve (all columns but ``x`` fixed) is sorted by ``x`` and filtered
    with :func:`scipy.signal.savgol_filter` (degree 1 over 11 neighbours by
    default, paper App. B.1), then clipped to [0, 1] as in the paper's plots.
    Curves with fewer than ``window`` points are left unsmoothed.

    Returns a new DataFrame; ``df`` is not modified.
    """
    from scipy.signal import savgol_filter

    window = check_positive_int(window, "window")
    degree = check_positive_int(degree, "degree", minimum=0)
    if degree >= window:
        raise ValueError(f"degree must be < window; got degree={degree}, window={window}")
    for name in (x, column):
        if name not in df.columns:
            raise ValueError(f"df has no column {name!r}")
    out = df.copy()
    out[f"{column}_smoothed"] = out[column].astype(float)
    keys = [
        c
        for c in ("method", "budget_spec", "gamma", "N", "k", "n0", "n", "alpha", "tau")
        if c in df.columns and c != x
    ]
    for _, curve in out.groupby(keys, sort=False, dropna=False):
        curve = curve.sort_values(x)
        if len(curve) >= window:
            values = np.clip(savgol_filter(curve[column].to_numpy(float), window, degree), 0, 1)
            out.loc[curve.index, f"{column}_smoothed"] = values
    return out


# -- presets --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named grid reproducing one of the paper's figures.

    Attributes
    ----------
    name, title : str
    x : str
        The swept column (the figure's x-axis): ``"gamma"`` or ``"N"``.
    grid : dict
        Keyword arguments for :func:`run_grid` (``method``, ``gamma``, ``N``, ...).
    reps : int
        Default repetitions.
    smooth : bool
        Whether the figure shows the Savitzky–Golay-smoothed curve.
    paper : str
        Where the figure is in the paper, and how this preset's settings relate.
    """

    name: str
    title: str
    x: str
    grid: dict
    reps: int
    smooth: bool
    paper: str


_GAMMAS = tuple(np.round(np.linspace(0.0, 0.1, 101), 3).tolist())  # step 0.001 (App. B.1)
_NS = tuple(round(10 ** (e / 2)) for e in range(4, 13))  # 1e2, 10^2.5, ..., 1e6
_FIG2_METHODS = ("jointclass", "indivclass", "segcertify-holm", "segcertify-bonferroni")


def _fig2ab(n0n):
    return dict(
        method=_FIG2_METHODS, gamma=_GAMMAS, N=100, k=1, n0=n0n, n=n0n, alpha=0.001, tau=0.75
    )


def _fig6(alpha):
    return dict(
        method="segcertify-generalized-holm",
        budget=(0, 1, 2, 4, 0.001, 0.01),
        gamma=0.05,
        N=_NS,
        k=1,
        n0=1000,
        n=1000,
        alpha=alpha,
        tau=0.9,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "fig2a",
            "N=100, k=1, n0=n=100, alpha=0.001, tau=0.75",
            "gamma",
            _fig2ab(100),
            600,
            True,
            "Fig. 2a (smoothed; unsmoothed data identical)",
        ),
        Preset(
            "fig2b",
            "N=100, k=1, n0=n=1000, alpha=0.001, tau=0.75",
            "gamma",
            _fig2ab(1000),
            200,
            True,
            "Fig. 2b (smoothed); 200 repetitions (the released code used 30)",
        ),
        Preset(
            "fig2c",
            "gamma=0.05, k=0, n0=n=1000, alpha=0.1, tau=0.9",
            "N",
            dict(
                method=("segcertify-holm", "segcertify-bonferroni"),
                gamma=0.05,
                N=_NS,
                k=0,
                n0=1000,
                n=1000,
                alpha=0.1,
                tau=0.9,
            ),
            20,
            False,
            "Fig. 2c / 5b; tau=0.9 as in the released code (the text does not state it)",
        ),
        Preset(
            "fig5",
            "N=100, k=1, n0=n=1000, alpha=0.001, tau=0.75 (unsmoothed)",
            "gamma",
            _fig2ab(1000),
            200,
            False,
            "Fig. 5a: the unsmoothed Fig. 2b (Fig. 5b is fig2c, which is not smoothed)",
        ),
        Preset(
            "fig6a",
            "error budgets, gamma=0.05, k=1, n0=n=1000, alpha=0.1, tau=0.9",
            "N",
            _fig6(0.1),
            10,
            False,
            "Fig. 6a; budgets b = 0, 1, 2, 4, 0.1% N, 1% N (k-FWER with k = b + 1)",
        ),
        Preset(
            "fig6b",
            "error budgets, gamma=0.05, k=1, n0=n=1000, alpha=0.001, tau=0.9",
            "N",
            _fig6(0.001),
            10,
            False,
            "Fig. 6b; budgets b = 0, 1, 2, 4, 0.1% N, 1% N (k-FWER with k = b + 1)",
        ),
    )
}


def run_preset(
    name: str,
    *,
    reps: int | None = None,
    seed: int = 0,
    executor=None,
    workers=None,
    progress=False,
) -> pd.DataFrame:
    """Run one of :data:`PRESETS` (``"fig2a"``, ``"fig2b"``, ``"fig2c"``, ``"fig5"``,
    ``"fig6a"``, ``"fig6b"``) and return its DataFrame.

    For presets whose figure is smoothed, the ``certified_rate_smoothed`` column
    (see :func:`smooth`) is added.

    Examples
    --------
    >>> from mtcert.power import run_preset
    >>> df = run_preset("fig2c", reps=2, workers=1)
    >>> sorted(df["method"].unique())
    ['segcertify-bonferroni', 'segcertify-holm']
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    preset = PRESETS[name]
    df = run_grid(
        **preset.grid,
        reps=preset.reps if reps is None else reps,
        seed=seed,
        executor=executor,
        workers=workers,
        progress=progress,
    )
    if preset.smooth:
        df = smooth(df, x=preset.x)
    return df
