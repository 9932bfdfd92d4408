"""The paper's power-study figures from preset results (Fig. 2 and the single presets).

Built on :func:`mtcert.plotting.plot_power`; matplotlib is needed only when a
figure is drawn.  Every title states the settings it was run with
(:func:`preset_title` for the presets, :func:`settings_title` for ad-hoc grids)
and none carries a preset's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mtcert.plotting import plot_power, pyplot, wrap_title
from mtcert.sim.power.presets import PRESETS

__all__ = ["plot_fig2", "plot_preset", "preset_title", "settings_title"]

#: The settings a power figure's title states, in this order: (column, how it reads).
_SETTINGS = (
    ("N", "N = {}"), ("n_bad", "{} bad"), ("gamma", "γ = {}"), ("n0", "n0 = {}"), ("n", "n = {}"),
    ("alpha", "α = {}"), ("tau", "τ = {}"), ("budget_spec", "budget b = {}"),
)  # fmt: skip


def _values(column: pd.Series) -> str:
    values = sorted(set(column), key=lambda v: (isinstance(v, str), v))
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def settings_title(df: pd.DataFrame, x: str) -> str:
    """A power figure's title from its data: every setting but the swept ``x`` and the
    methods (the legend), then the repetitions.

    A setting with several values lists them all; error budgets appear when
    they are not all 0.

    Examples
    --------
    >>> from mtcert.sim.power import run_grid
    >>> df = run_grid(["segcertify-holm"], gamma=[0.0, 0.1], N=100, reps=2)
    >>> settings_title(df, "gamma")
    'N = 100, 0 bad, n0 = 100, n = 100, α = 0.001, τ = 0.75, 2 repetitions'
    """
    parts = []
    for column, text in _SETTINGS:
        if column == x or column not in df:
            continue
        if column == "budget_spec" and set(map(str, df[column])) == {"0"}:
            continue
        parts.append(text.format(_values(df[column])))
    if "reps" in df:
        parts.append(f"{_values(df['reps'])} repetitions")
    return ", ".join(parts)


def preset_title(df: pd.DataFrame, name: str) -> str:
    """A preset figure's title: what the preset shows (its settings) and the repetitions
    ``df`` ran, never the preset's id (that is the file name)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    reps = f", {_values(df['reps'])} repetitions" if "reps" in df else ""
    return f"{PRESETS[name].title}{reps}"


def plot_preset(df: pd.DataFrame, name: str, *, path: Any = None, errorbars: bool = False) -> Any:
    """Plot a preset's DataFrame like the paper's figure; save to ``path`` if given.

    Returns the matplotlib Figure.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    preset = PRESETS[name]
    y = "certified_rate_smoothed" if preset.smooth else "certified_rate"
    fig = plot_power(df, x=preset.x, y=y, title=preset_title(df, name), errorbars=errorbars)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def plot_fig2(frames: Mapping[str, pd.DataFrame], *, errorbars: bool = False) -> Any:
    """The paper's Fig. 2 as one panel: (a) n = 100, (b) n = 1000, (c) growing N.

    Parameters
    ----------
    frames : mapping
        ``{"fig2a": df, "fig2b": df, "fig2c": df}`` from :func:`mtcert.sim.power.run_preset`.
    errorbars : bool, default False
        Shade ±2 standard errors.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes side by side with one shared legend below them.
    """
    plt = pyplot()
    names = ("fig2a", "fig2b", "fig2c")
    missing = [n for n in names if n not in frames]
    if missing:
        raise ValueError(f"frames needs the presets {', '.join(names)}; missing {missing}")
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.0), layout="constrained")
    for letter, name, ax in zip("abc", names, axes, strict=True):
        preset = PRESETS[name]
        y = "certified_rate_smoothed" if preset.smooth else "certified_rate"
        y = y if y in frames[name] else "certified_rate"
        plot_power(frames[name], x=preset.x, y=y, errorbars=errorbars, ax=ax)
        title = preset_title(frames[name], name)
        ax.set_title(wrap_title(f"({letter}) {title}", 48), fontsize="medium")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles),
        frameon=False,
    )  # fmt: skip
    return fig
