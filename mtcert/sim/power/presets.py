"""Named grids that reproduce the paper's power figures (Figs. 2, 5 and 6)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mtcert.sim.power.execution import Backend, run_grid
from mtcert.sim.power.smoothing import smooth

__all__ = ["PRESETS", "Preset", "run_preset"]


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
    grid: dict[str, Any]
    reps: int
    smooth: bool
    paper: str


_GAMMAS = tuple(np.round(np.linspace(0.0, 0.1, 101), 3).tolist())  # step 0.001 (App. B.1)
_NS = tuple(round(10 ** (e / 2)) for e in range(4, 13))  # 1e2, 10^2.5, ..., 1e6
_FIG2_METHODS = ("jointclass", "indivclass", "segcertify-holm", "segcertify-bonferroni")


def _fig2ab(n0n: int) -> dict[str, Any]:
    return dict(
        method=_FIG2_METHODS, gamma=_GAMMAS, N=100, n_bad=1, n0=n0n, n=n0n, alpha=0.001, tau=0.75
    )


def _fig6(alpha: float) -> dict[str, Any]:
    return dict(
        method="segcertify-generalized-holm",
        budget=(0, 1, 2, 4, 0.001, 0.01),
        gamma=0.05,
        N=_NS,
        n_bad=1,
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
            "N = 100, 1 bad, n₀ = n = 100, α = 0.001, τ = 0.75",
            "gamma",
            _fig2ab(100),
            600,
            True,
            "Fig. 2a (smoothed; unsmoothed data identical)",
        ),
        Preset(
            "fig2b",
            "N = 100, 1 bad, n₀ = n = 1000, α = 0.001, τ = 0.75",
            "gamma",
            _fig2ab(1000),
            200,
            True,
            "Fig. 2b (smoothed); 200 repetitions (the released code used 30)",
        ),
        Preset(
            "fig2c",
            "γ = 0.05, 0 bad, n₀ = n = 1000, α = 0.1, τ = 0.9",
            "N",
            dict(
                method=("segcertify-holm", "segcertify-bonferroni"),
                gamma=0.05,
                N=_NS,
                n_bad=0,
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
            "N = 100, 1 bad, n₀ = n = 1000, α = 0.001, τ = 0.75 (unsmoothed)",
            "gamma",
            _fig2ab(1000),
            200,
            False,
            "Fig. 5a: the unsmoothed Fig. 2b (Fig. 5b is fig2c, which is not smoothed)",
        ),
        Preset(
            "fig6a",
            "error budgets, γ = 0.05, 1 bad, n₀ = n = 1000, α = 0.1, τ = 0.9",
            "N",
            _fig6(0.1),
            10,
            False,
            "Fig. 6a; budgets b = 0, 1, 2, 4, 0.1% N, 1% N (k-FWER with k = b + 1)",
        ),
        Preset(
            "fig6b",
            "error budgets, γ = 0.05, 1 bad, n₀ = n = 1000, α = 0.001, τ = 0.9",
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
    executor: Executor | None = None,
    workers: int | None = None,
    backend: Backend = "threads",
    progress: bool = False,
) -> pd.DataFrame:
    """Run one of :data:`PRESETS` (``"fig2a"``, ``"fig2b"``, ``"fig2c"``, ``"fig5"``,
    ``"fig6a"``, ``"fig6b"``) and return its DataFrame.

    For presets whose figure is smoothed, the ``certified_rate_smoothed`` column
    (see :func:`smooth`) is added.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    reps : int, optional
        Repetitions per grid point (default: the preset's).
    seed, executor, workers, backend, progress
        As in :func:`run_grid`.

    Examples
    --------
    >>> from mtcert.sim.power import run_preset
    >>> df = run_preset("fig2c", reps=2)
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
        backend=backend,
        progress=progress,
    )
    if preset.smooth:
        df = smooth(df, x=preset.x)
    return df
