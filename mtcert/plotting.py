"""Matplotlib figures for power studies, styled after the paper's Figs. 2, 5 and 6.

matplotlib is an optional dependency (the ``plot`` extra:
``pip install "mtcert[plot]"``); importing this module works without it, and
the plotting functions raise an ``ImportError`` that says how to install it.
"""

from __future__ import annotations

import textwrap

import pandas as pd

__all__ = ["plot_power", "plot_preset"]

_LABELS = {
    "jointclass": "JointClass",
    "indivclass": "IndivClass",
    "segcertify-holm": "SegCertifyHolm",
    "segcertify-bonferroni": "SegCertifyBon",
}
_X_LABELS = {"gamma": r"$\gamma$", "N": r"$N$"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            'plotting needs matplotlib; install it with  pip install "mtcert[plot]"'
        ) from None
    return plt


def _label(method: str, budget_spec: str | None, by_budget: bool) -> str:
    if by_budget:
        return rf"$b={budget_spec}$".replace("N$", r"\,N$")
    return _LABELS.get(method, method)


def plot_power(
    df: pd.DataFrame,
    *,
    x: str = "gamma",
    y: str | None = None,
    title: str | None = None,
    errorbars: bool = False,
    ax=None,
):
    """Plot the certified rate against ``x``, one line per method (or budget).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`mtcert.power.run_grid` / :func:`~mtcert.power.run_preset`.
    x : {"gamma", "N"}
        The swept column; ``"N"`` uses a logarithmic axis with markers, as in
        the paper's Figs. 2c and 6.
    y : str, optional
        Column to plot; defaults to ``certified_rate_smoothed`` when present,
        else ``certified_rate``.
    title : str, optional
    errorbars : bool, default False
        Shade +-2 standard errors around unsmoothed curves.
    ax : matplotlib Axes, optional
        Draw into this axes; a new figure is created otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    if x not in df.columns:
        raise ValueError(f"df has no column {x!r}")
    if y is None:
        y = "certified_rate_smoothed" if "certified_rate_smoothed" in df else "certified_rate"
    if y not in df.columns:
        raise ValueError(f"df has no column {y!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(df["method"]))
    by_budget = "budget_spec" in df and df["budget_spec"].nunique() > 1
    keys = ["method", "budget_spec"] if "budget_spec" in df else ["method"]
    for key, curve in df.groupby(keys, sort=False):
        method, spec = (key if isinstance(key, tuple) else (key,)) + (None,) * (2 - len(keys))
        curve = curve.sort_values(x)
        label = _label(method, spec, by_budget and len(methods) == 1)
        style = dict(marker="x") if x == "N" else {}
        (line,) = ax.plot(curve[x], curve[y], label=label, **style)
        if errorbars and y == "certified_rate" and "stderr" in curve:
            lo = (curve[y] - 2 * curve["stderr"]).clip(0, 1)
            hi = (curve[y] + 2 * curve["stderr"]).clip(0, 1)
            ax.fill_between(curve[x], lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    if x == "N":
        ax.set_xscale("log")
    ax.set_xlabel(_X_LABELS.get(x, x))
    ax.set_ylabel("certified rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, color="white")
    ax.set_facecolor((0.97, 0.97, 0.97))
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.legend(frameon=False)
    if title:
        ax.set_title(textwrap.fill(title, 60), fontsize="medium")
    fig.tight_layout()
    return fig


def plot_preset(df: pd.DataFrame, name: str, *, path=None):
    """Plot a preset's DataFrame like the paper's figure; save to ``path`` if given.

    Returns the matplotlib Figure.
    """
    from mtcert.power import PRESETS

    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}; got {name!r}")
    preset = PRESETS[name]
    y = "certified_rate_smoothed" if preset.smooth else "certified_rate"
    fig = plot_power(df, x=preset.x, y=y, title=f"{name}: {preset.title}")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
