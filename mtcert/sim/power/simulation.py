"""Simulating one scenario: oracle draws -> certification -> one row per evaluation.

All statistics live elsewhere: SEGCERTIFY in :func:`mtcert.certify.segmentation.segcertify_hits`,
INDIVCLASS and JOINTCLASS in :func:`mtcert.certify.cohen.indivclass_hits` and
:func:`mtcert.certify.cohen.jointclass_hits`, the draws in :mod:`mtcert.sim.oracle`.  This
module batches repetitions and keeps the books.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtcert.certify.cohen import indivclass_hits, jointclass_hits
from mtcert.certify.labels import ABSTAIN
from mtcert.certify.segmentation import segcertify_hits
from mtcert.sim.oracle import BinaryOracle, Oracle
from mtcert.sim.power.grid import Evaluation, Scenario, format_budget

__all__ = ["COLUMNS", "run_scenario", "run_scenarios", "scenario_oracle"]

# Repetitions are simulated in batches of at most this many components in total
# (at least one repetition), which bounds memory for N up to 1e7.
BATCH_ELEMENTS = 1 << 21

#: Columns of :func:`mtcert.sim.power.run_grid`'s DataFrame, in order.
COLUMNS = (
    "method",
    "budget_spec",
    "budget",
    "gamma",
    "N",
    "n_bad",
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


def certify_components(
    ev: Evaluation, guess: np.ndarray, hits: np.ndarray, n: int, p_true: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Certified mask and false-certificate mask for a batch ``(reps, N)``."""
    if ev.method == "indivclass":
        res = indivclass_hits(guess, hits, n, alpha=ev.alpha, axis=-1)
        certified = np.broadcast_to(np.asarray(res.certified)[..., None], guess.shape)
        # CERTIFY claims p_lower <= the guessed label's true probability.
        return certified, certified & (p_true < res.p_lower)
    adjust_method = ev.method[len("segcertify-") :]
    res = segcertify_hits(
        guess, hits, n, tau=ev.tau, alpha=ev.alpha, method=adjust_method, k=ev.budget + 1, axis=-1
    )
    certified = np.asarray(res.labels) != ABSTAIN
    # SEGCERTIFY claims p > tau for every certified component (Prop. 1).
    return certified, certified & (p_true <= ev.tau)


@dataclass
class _Tally:
    rate: list = field(default_factory=list)
    correct: list = field(default_factory=list)
    false: list = field(default_factory=list)
    type1: int = 0
    seconds: float = 0.0


def batches(reps: int, N: int) -> Iterator[int]:
    """Batch sizes covering ``reps`` repetitions of ``N`` components (depends on both only)."""
    size = max(1, min(reps, BATCH_ELEMENTS // N))
    for start in range(0, reps, size):
        yield min(size, reps - start)


def scenario_oracle(sc: Scenario) -> Oracle:
    """The oracle a scenario simulates: binary by default, given, or built by its factory.

    A factory is called as ``factory(N, gamma, n_bad, rng)`` with a generator
    seeded from the scenario's key (a stream of its own), so that a random
    class law is reproducible too.
    """
    if sc.oracle is None:
        return BinaryOracle(sc.N, sc.gamma, sc.n_bad)
    if isinstance(sc.oracle, Oracle):
        return sc.oracle
    rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(*sc.key(), 2)))
    oracle = sc.oracle(sc.N, sc.gamma, sc.n_bad, rng)
    if not isinstance(oracle, Oracle) or oracle.n_components != sc.N:
        raise ValueError(
            f"the oracle factory must return an mtcert.sim.oracle.Oracle with N = {sc.N} "
            f"components; got {oracle!r}"
        )
    return oracle


def _component_methods(sc: Scenario, oracle: Oracle, evals, tallies) -> None:
    key = sc.key()
    rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(*key, 0)))
    for b in batches(sc.reps, sc.N):
        t0 = time.perf_counter()
        guess, hits = oracle.sample_guess_hits(sc.n0, sc.n, rng=rng, reps=b)
        p_true = oracle.label_probabilities(guess)
        correct = guess == oracle.truth
        share = (time.perf_counter() - t0) / len(evals)
        for ev in evals:
            t0 = time.perf_counter()
            certified, false = certify_components(ev, guess, hits, sc.n, p_true)
            tally = tallies[ev]
            tally.rate.append(certified.mean(axis=-1))
            tally.correct.append((certified & correct).mean(axis=-1))
            n_false = false.sum(axis=-1)
            tally.false.append(n_false / sc.N)
            tally.type1 += int((n_false > ev.budget).sum())
            tally.seconds += share + time.perf_counter() - t0


def _joint_methods(sc: Scenario, oracle: Oracle, evals, tallies) -> None:
    key = sc.key()
    rng = np.random.default_rng(np.random.SeedSequence(sc.seed, spawn_key=(*key, 1)))
    for b in batches(sc.reps, sc.N):
        t0 = time.perf_counter()
        mode = oracle.sample_joint_mode(sc.n0, rng=rng, reps=b)
        hits = rng.binomial(sc.n, mode.probability)
        share = (time.perf_counter() - t0) / len(evals)
        for ev in evals:
            t0 = time.perf_counter()
            res = jointclass_hits(None, hits, sc.n, alpha=ev.alpha)
            certified = np.asarray(res.certified)
            # JOINTCLASS makes one claim, p_lower <= P(modal vector), for all N components.
            false = certified & (mode.probability < np.asarray(res.p_lower))
            tally = tallies[ev]
            tally.rate.append(certified.astype(float))
            tally.correct.append(np.where(certified, 1.0 - mode.n_wrong / sc.N, 0.0))
            tally.false.append(false.astype(float))
            tally.type1 += int(false.sum())
            tally.seconds += share + time.perf_counter() - t0


def run_scenario(sc: Scenario) -> list[dict[str, Any]]:
    """Simulate one scenario; one result row (a dict keyed by :data:`COLUMNS`) per evaluation.

    Every method of the scenario sees the same draws (common random numbers;
    JOINTCLASS a separate child stream), seeded from the scenario's key.
    """
    oracle = scenario_oracle(sc)
    tallies = {ev: _Tally() for ev in sc.evaluations}
    component_evals = [ev for ev in sc.evaluations if ev.method != "jointclass"]
    joint_evals = [ev for ev in sc.evaluations if ev.method == "jointclass"]
    if component_evals:
        _component_methods(sc, oracle, component_evals, tallies)
    if joint_evals:
        _joint_methods(sc, oracle, joint_evals, tallies)
    rows = []
    for ev in sc.evaluations:
        tally = tallies[ev]
        rate = np.concatenate(tally.rate)
        stderr = float(rate.std(ddof=1) / math.sqrt(rate.size)) if rate.size > 1 else np.nan
        rows.append(
            {
                "method": ev.method,
                "budget_spec": format_budget(ev.budget_spec),
                "budget": ev.budget,
                "gamma": sc.gamma,
                "N": sc.N,
                "n_bad": sc.n_bad,
                "n0": sc.n0,
                "n": sc.n,
                "alpha": ev.alpha,
                "tau": ev.tau,
                "reps": sc.reps,
                "certified_rate": float(rate.mean()),
                "stderr": stderr,
                "certified_correct_rate": float(np.concatenate(tally.correct).mean()),
                "false_certified_rate": float(np.concatenate(tally.false).mean()),
                "type1_errors": tally.type1,
                "runtime": tally.seconds,
            }
        )
    return rows


def run_scenarios(scenarios: list[Scenario]) -> list[list[dict[str, Any]]]:
    """:func:`run_scenario` over a chunk of scenarios (the unit of work sent to executors)."""
    return [run_scenario(sc) for sc in scenarios]
