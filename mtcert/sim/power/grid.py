"""Grid expansion: methods, error budgets and the scenarios a power study simulates.

A grid is the Cartesian product of the oracle parameters (``N``, ``n_bad``,
``gamma``; or one fixed oracle given as ``oracle=``), the sample sizes
(``n0``, ``n``), the certification parameters (``alpha``, ``tau``), the error
budget and the methods.  :func:`expand_grid` validates it and groups it into
:class:`Scenario` objects: one per oracle and sample-size setting, holding
every :class:`Evaluation` (method, level, threshold, budget) that shares its
random draws.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtcert.sim.oracle import Oracle, check_gamma
from mtcert.stats.validation import check_alpha, check_positive_int, check_tau

__all__ = [
    "Evaluation",
    "Scenario",
    "check_oracle",
    "expand_grid",
    "format_budget",
    "method_names",
    "takes_budget",
]

#: A budget as requested: an int ``b >= 0`` or a fraction of ``N`` in (0, 1).
BudgetSpec = int | float


def method_names() -> tuple[str, ...]:
    """All method names :func:`mtcert.sim.power.run_grid` accepts.

    Examples
    --------
    >>> from mtcert.sim.power import method_names
    >>> method_names()[:3]
    ('jointclass', 'indivclass', 'segcertify-bonferroni')
    """
    from mtcert.stats.multitest import METHODS

    return ("jointclass", "indivclass", *(f"segcertify-{m}" for m in METHODS))


def check_method(method: Any) -> str:
    """Return ``method`` if :func:`run_grid <mtcert.sim.power.run_grid>` knows it, else raise."""
    names = method_names()
    if not isinstance(method, str) or method not in names:
        raise ValueError(f"method must be one of {', '.join(map(repr, names))}; got {method!r}")
    return method


def takes_budget(method: str) -> bool:
    """Whether ``method`` is a k-FWER method, run once per error budget ``b`` (k = b + 1)."""
    from mtcert.stats.multitest import KFWER_METHODS

    return method.startswith("segcertify-") and method[len("segcertify-") :] in KFWER_METHODS


def check_budget(b: Any) -> BudgetSpec:
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


def format_budget(spec: BudgetSpec) -> str:
    """The ``budget_spec`` column: ``"2"`` or ``"0.01N"``."""
    return str(spec) if isinstance(spec, int) else f"{spec:g}N"


def resolve_budget(spec: BudgetSpec, N: int) -> int:
    """The budget ``b`` for ``N`` components (``floor(fraction * N)`` for fractions)."""
    return spec if isinstance(spec, int) else math.floor(spec * N)


def as_list(values: Any, name: str) -> list:
    """One value or a sequence -> a non-empty list."""
    if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)):
        values = [values]
    values = list(np.asarray(values).tolist()) if isinstance(values, np.ndarray) else list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


@dataclass(frozen=True)
class Evaluation:
    """One certification run on a scenario's draws: method, level, threshold, budget."""

    method: str
    alpha: float
    tau: float
    budget_spec: BudgetSpec
    budget: int


@dataclass(frozen=True)
class Scenario:
    """One oracle and sample-size setting, simulated ``reps`` times for its evaluations.

    ``oracle`` is None for the binary oracle of ``N``, ``gamma`` and ``n_bad``,
    else an :class:`~mtcert.sim.oracle.Oracle` (then ``gamma`` and ``n_bad``
    are NaN) or a factory called as ``oracle(N, gamma, n_bad, rng)``.
    """

    N: int
    n_bad: int | float
    gamma: float
    n0: int
    n: int
    evaluations: tuple[Evaluation, ...]
    reps: int
    seed: int
    oracle: Any = None

    def key(self) -> tuple[int, ...]:
        """A stable 128-bit key from the parameters (not the grid position) for its seeds."""
        # The text is the same as when this field was called k: seeds, hence results,
        # stay those of earlier releases.
        text = repr((self.N, self.n_bad, float(self.gamma), self.n0, self.n))
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


def check_oracle(oracle: Any, *, gamma: Any, N: Any, n_bad: Any) -> Any:
    """Validate ``oracle=`` of :func:`run_grid <mtcert.sim.power.run_grid>` against the grid.

    An :class:`~mtcert.sim.oracle.Oracle` instance fixes the law, so ``gamma``
    and ``n_bad`` must be left out and ``N``, if given, must be its
    ``n_components``; without an instance ``gamma`` and ``N`` are required.
    Returns ``oracle`` (None, the instance or the factory) or raises ``ValueError``.

    Examples
    --------
    >>> from mtcert.sim.oracle import MultiClassOracle
    >>> from mtcert.sim.power.grid import check_oracle
    >>> law = MultiClassOracle([[0.9, 0.1], [0.2, 0.8]])
    >>> check_oracle(law, gamma=None, N=2, n_bad=None)
    MultiClassOracle(N=2, C=2)
    >>> check_oracle(law, gamma=0.1, N=None, n_bad=None)
    Traceback (most recent call last):
    ...
    ValueError: oracle=MultiClassOracle(N=2, C=2) fixes the class law: leave out gamma ...
    """
    if oracle is None or (callable(oracle) and not isinstance(oracle, Oracle)):
        missing = [name for name, v in (("gamma", gamma), ("N", N)) if v is None]
        if missing:
            raise ValueError(
                f"run_grid needs {' and '.join(missing)} (or oracle= an Oracle instance)"
            )
        return oracle
    if not isinstance(oracle, Oracle):
        raise ValueError(
            "oracle must be an mtcert.sim.oracle.Oracle (e.g. MultiClassOracle) or a "
            f"callable (N, gamma, n_bad, rng) -> Oracle; got {type(oracle).__name__}"
        )
    given = [name for name, v in (("gamma", gamma), ("n_bad", n_bad)) if v is not None]
    if given:
        raise ValueError(
            f"oracle={oracle!r} fixes the class law: leave out {' and '.join(given)} "
            "(parameters of the binary oracle), or pass a factory to sweep them"
        )
    if N is not None and as_list(N, "N") != [oracle.n_components]:
        raise ValueError(
            f"N must be left out or equal the oracle's {oracle.n_components} components; got {N!r}"
        )
    return oracle


def expand_grid(
    method: Any,
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
    oracle: Any = None,
) -> list[Scenario]:
    """Validate a grid and expand it into scenarios (see :func:`mtcert.sim.power.run_grid`)."""
    oracle = check_oracle(oracle, gamma=gamma, N=N, n_bad=n_bad)
    methods = [check_method(m) for m in as_list(method, "method")]
    if isinstance(oracle, Oracle):  # one fixed law: no binary-oracle parameters
        gammas, Ns, n_bads = [math.nan], [oracle.n_components], [math.nan]
    else:
        gammas = [check_gamma(g) for g in as_list(gamma, "gamma")]
        Ns = [check_positive_int(v, "N") for v in as_list(N, "N")]
        n_bad = 0 if n_bad is None else n_bad
        n_bads = [check_positive_int(v, "n_bad", minimum=0) for v in as_list(n_bad, "n_bad")]
    n0s = [check_positive_int(v, "n0") for v in as_list(n0, "n0")]
    ns = [check_positive_int(v, "n") for v in as_list(n, "n")]
    alphas = [check_alpha(a) for a in as_list(alpha, "alpha")]
    taus = [check_tau(t) for t in as_list(tau, "tau")]
    budgets = list(dict.fromkeys(check_budget(b) for b in as_list(budget, "budget")))
    reps = check_positive_int(reps, "reps")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    scenarios = []
    for N_, bad, g, n0_, n_ in itertools.product(Ns, n_bads, gammas, n0s, ns):
        if bad > N_:  # False for NaN
            raise ValueError(f"n_bad (bad components) must be <= N; got n_bad={bad}, N={N_}")
        evals = []
        for m, a, t in itertools.product(methods, alphas, taus):
            # Only k-FWER methods take a budget; the others run once, with b = 0.
            # Every requested budget is a row, also a fraction of N that resolves to
            # the same b as another budget (0.01N at N = 100 is b = 1): both were asked for.
            specs = budgets if takes_budget(m) else [0]
            evals.extend(Evaluation(m, a, t, s, resolve_budget(s, N_)) for s in specs)
        scenarios.append(
            Scenario(N_, bad, g, n0_, n_, tuple(evals), reps, int(seed), oracle=oracle)
        )
    return scenarios
