"""Running a grid: on threads (default), local processes, or any executor (Dask).

The simulation spends its time in numba kernels that release the GIL, numpy's
random generators and scipy's special functions, so a thread pool keeps every
core busy, starts instantly and works from a plain script, a notebook or an
interactive session.  Processes (``backend="processes"``) and any
:class:`concurrent.futures.Executor` (e.g. ``distributed.Client.get_executor()``)
are opt-ins for clusters.  Results never depend on the choice: every scenario
draws from its own seed.
"""

from __future__ import annotations

import contextvars
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

import pandas as pd

from mtcert.sim.oracle import Oracle
from mtcert.sim.power.grid import Scenario, expand_grid
from mtcert.sim.power.simulation import COLUMNS, run_scenario, run_scenarios
from mtcert.stats.validation import check_option, check_positive_int

__all__ = ["BACKENDS", "run_grid"]

#: Local back-ends of :func:`run_grid` (used when no ``executor`` is given).
BACKENDS = ("threads", "processes")

Backend = Literal["threads", "processes"]

_PROCESS_POOL_FIX = (
    "the power study's worker processes could not start. With backend='processes' the "
    "workers import your main script again, so its top level must be guarded by "
    "'if __name__ == \"__main__\":'. Either add that guard, or use the default "
    "backend='threads' (no guard needed, same results)."
)


def _chunks(n_items: int, n_chunks: int) -> list[list[int]]:
    # Interleaved chunks balance the load (cost often grows along a swept axis);
    # few chunks per worker keep the task overhead low.
    n_chunks = max(1, min(n_chunks, n_items))
    return [list(range(i, n_items, n_chunks)) for i in range(n_chunks)]


def process_context() -> multiprocessing.context.BaseContext:
    """The start method for ``backend="processes"``: a fork server, else spawn.

    Never fork this process: after numba's kernels have run in it, ``fork()``
    is unsafe (GNU OpenMP aborts the child).  A fork server started from a
    clean interpreter, which imports the simulator once, forks the workers
    cheaply instead; "spawn" where there is no fork server (Windows, macOS).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["mtcert.sim.power.simulation"])
        return ctx
    return multiprocessing.get_context("spawn")


def _submit(
    executor: Any, scenarios: list[Scenario], n_chunks: int, bar: Any, *, threads: bool = False
) -> list:
    chunks = _chunks(len(scenarios), n_chunks)
    # local threads run in a copy of the caller's context (one copy per task: a context
    # cannot be entered twice at once), so that a kernel-tier policy() block around
    # run_grid holds in them too; processes and remote executors cannot take one

    def submit(chunk):
        todo = [scenarios[i] for i in chunk]
        if threads:
            return executor.submit(contextvars.copy_context().run, run_scenarios, todo)
        return executor.submit(run_scenarios, todo)

    futures = {submit(chunk): chunk for chunk in chunks}
    out: list = [None] * len(scenarios)
    for fut in as_completed(futures):
        chunk = futures[fut]
        for i, rows in zip(chunk, fut.result(), strict=True):
            out[i] = rows
        if bar is not None:
            bar.update(len(chunk))
    return out


def _execute(
    scenarios: list[Scenario],
    executor: Executor | None,
    workers: int | None,
    backend: str,
    progress: bool,
) -> list:
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(scenarios), unit="point", desc="power study")
    try:
        if executor is not None:
            n_chunks = 4 * (workers or os.cpu_count() or 1)
            return _submit(executor, scenarios, n_chunks, bar)
        if workers == 1 or len(scenarios) == 1:
            results = []
            for sc in scenarios:
                results.append(run_scenario(sc))
                if bar is not None:
                    bar.update(1)
            return results
        if backend == "threads":
            with ThreadPoolExecutor(workers, thread_name_prefix="mtcert-power") as pool:
                return _submit(pool, scenarios, 4 * workers, bar, threads=True)
        try:
            with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
                return _submit(pool, scenarios, 4 * workers, bar)
        except BrokenProcessPool as exc:
            raise RuntimeError(_PROCESS_POOL_FIX) from exc
    finally:
        if bar is not None:
            bar.close()


def run_grid(
    method: str | Sequence[str],
    *,
    gamma: Any = None,
    N: Any = None,
    n_bad: Any = None,
    n0: Any = 100,
    n: Any = 100,
    alpha: Any = 0.001,
    tau: Any = 0.75,
    budget: Any = 0,
    reps: int = 100,
    seed: int = 0,
    executor: Executor | None = None,
    workers: int | None = None,
    backend: Backend = "threads",
    progress: bool = False,
    oracle: Oracle | Callable[..., Oracle] | None = None,
) -> pd.DataFrame:
    """Simulate every grid point ``reps`` times on an oracle (the binary one by default).

    Every parameter from ``method`` to ``budget`` takes a single value or a
    sequence; the grid is their Cartesian product.  The class law is the
    paper's :class:`~mtcert.sim.oracle.BinaryOracle` of ``N``, ``gamma`` and
    ``n_bad``, unless ``oracle`` gives another one.

    Parameters
    ----------
    method : str or sequence of str
        ``"jointclass"``, ``"indivclass"`` or ``"segcertify-<adjust method>"``
        (see :func:`method_names`).
    gamma : float or sequence
        Error rate of the good components, in [0, 1].  Required unless
        ``oracle`` is an :class:`~mtcert.sim.oracle.Oracle` instance (then it
        must be left out).
    N : int or sequence
        Number of components.  Required unless ``oracle`` is an instance (then
        it may be left out, or must equal the oracle's ``n_components``).
    n_bad : int or sequence, default 0
        Number of bad components (error rate ``5 * gamma``, clamped), ``<= N``.
        Must be left out when ``oracle`` is an instance.
    n0, n : int or sequence, default 100
        Samples for guessing and for testing.
    alpha : float or sequence, default 0.001
        Level of the certificate (FWER, k-FWER or per-claim level).
    tau : float or sequence, default 0.75
        SEGCERTIFY threshold in [1/2, 1) (ignored by the CERTIFY-based methods).
    budget : int, float or sequence, default 0
        Error budget ``b`` for k-FWER methods (run with ``k = b + 1``): an int
        >= 0, or a fraction of N in (0, 1) (``b = floor(fraction * N)``).
        Other methods run once with ``b = 0``.
    reps : int, default 100
        Repetitions per grid point.
    seed : int, default 0
        Root seed; see the package notes on reproducibility.
    executor : concurrent.futures.Executor, optional
        Where to run grid points, e.g. ``distributed.Client(...).get_executor()``.
    workers : int, optional
        Threads or processes of the local back-end (default: all cores; 1 runs
        serially in this thread).  With an ``executor``, only sets how many
        chunks the grid is split into (4 per worker).
    backend : {"threads", "processes"}, default "threads"
        Local back-end when no ``executor`` is given.  Threads need no
        ``if __name__ == "__main__":`` guard; processes do (a ``RuntimeError``
        says so when the pool cannot start).
    progress : bool, default False
        Show a tqdm progress bar over grid points.
    oracle : Oracle or callable, optional
        The class law to simulate instead of the binary oracle:

        - an :class:`~mtcert.sim.oracle.Oracle` instance
          (:class:`~mtcert.sim.oracle.MultiClassOracle`, or a subclass of
          your own): every grid point runs on it; its ``n_components`` is
          ``N``, and the ``gamma`` and ``n_bad`` columns are NaN;
        - a callable ``oracle(N, gamma, n_bad, rng) -> Oracle``: called once
          per grid point with that point's parameters (the grid still sweeps
          ``gamma``, ``N`` and ``n_bad``, which the factory may read as it
          likes) and a :class:`numpy.random.Generator` seeded from the point,
          for a random law that is reproducible.  It must return an oracle
          with ``N`` components.

        With ``backend="processes"`` or an ``executor`` the oracle (or
        factory) is pickled to the workers: define its class or function at
        the top level of a module, not inside a function or as a lambda.
        Threads (the default) need nothing.

    Returns
    -------
    pandas.DataFrame
        One row per grid point and method, columns as listed in the package notes.

    Raises
    ------
    ValueError
        On an unknown method or invalid grid values; when ``gamma`` or ``N``
        are missing without an oracle instance; when ``gamma``, ``n_bad`` or
        a different ``N`` are given with one; when ``oracle`` is neither an
        :class:`~mtcert.sim.oracle.Oracle` nor a callable, or the factory
        returns something else.

    Examples
    --------
    >>> from mtcert.sim.power import run_grid
    >>> df = run_grid(["segcertify-holm", "segcertify-bonferroni"], gamma=0.05, N=1000,
    ...               n0=1000, n=1000, alpha=0.1, tau=0.9, reps=5)
    >>> df[["method", "N", "certified_rate"]]
                      method     N  certified_rate
    0        segcertify-holm  1000          1.0000
    1  segcertify-bonferroni  1000          0.9906

    A law of your own: three classes, the true class shown with probability
    0.97, on the first 50 components only with 0.9 (at ``tau=0.9`` certifying
    one of those would be a false certificate, counted in ``type1_errors``).

    >>> import numpy as np
    >>> from mtcert.sim.oracle import MultiClassOracle
    >>> p = np.tile([0.97, 0.02, 0.01], (500, 1))
    >>> p[:50] = [0.9, 0.05, 0.05]
    >>> df = run_grid("segcertify-holm", oracle=MultiClassOracle(p), alpha=0.01, tau=0.9,
    ...               n0=200, n=500, reps=5)
    >>> df[["N", "gamma", "certified_rate", "type1_errors"]]
         N  gamma  certified_rate  type1_errors
    0  500    NaN          0.8984             0
    """
    scenarios = expand_grid(
        method, gamma=gamma, N=N, n_bad=n_bad, n0=n0, n=n, alpha=alpha, tau=tau,
        budget=budget, reps=reps, seed=seed, oracle=oracle,
    )  # fmt: skip
    backend = check_option(backend, "backend", BACKENDS)
    if executor is not None and not hasattr(executor, "submit"):
        raise ValueError(
            "executor must be a concurrent.futures.Executor (e.g. "
            f"distributed.Client(...).get_executor()); got {type(executor).__name__}"
        )
    if workers is not None:
        workers = check_positive_int(workers, "workers")
    elif executor is None:
        workers = os.cpu_count() or 1
    results = _execute(scenarios, executor, workers, backend, progress)
    return pd.DataFrame([row for rows in results for row in rows], columns=list(COLUMNS))
