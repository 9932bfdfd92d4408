"""The paper's power-study figures from preset results (Fig. 2 and the single presets).

Built on :func:`mtcert.plotting.plot_power`; matplotlib is needed only when a
figure is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mtcert.plotting import plot_power, pyplot, wrap_title
from mtcert.sim.power.presets import PRESETS

__all__ = ["plot_fig2", "plot_preset"]


def plot_preset(df: pd.DataFrame, name: str, *, path: Any = None, errorbars: bool = False) -> Any:
    """Plot a preset's DataFrame like the paper's figure; save to ``path`` if given.

    Returns the matplotlib Figure.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    preset = PRESETS[name]
    y = "certified_rate_smoothed" if preset.smooth else "certified_rate"
    # the title says what the panel shows; the preset's id is the file name, not a heading
    fig = plot_power(df, x=preset.x, y=y, title=preset.title, errorbars=errorbars)
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
        ax.set_title(wrap_title(f"({letter}) {preset.title}", 48), fontsize="medium")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles),
        frameon=False,
    )  # fmt: skip
    return fig
