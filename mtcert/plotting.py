"""The project's figure style: power curves styled after the paper's Figs. 2, 5 and 6.

matplotlib is an optional dependency (the ``plot`` extra:
``pip install "mtcert[plot]"``); importing this module works without it, and
the plotting functions raise an ``ImportError`` that says how to install it.

Every curve has its own colour, marker and line style, so curves that lie on
top of each other (SEGCERTIFY-Holm under -Bonferroni in Fig. 2b) stay visible
in print and in black and white; legends sit outside the axes.  The paper's
preset figures (:func:`mtcert.sim.power.figures.plot_fig2`) build on
:func:`plot_power`; the other figures (radius curves, sample plans, the
hierarchy study, a run's segmentation panels) take their look from
:func:`style_axes`, :func:`curve_style` and :func:`add_legend`;
:func:`save_figure` writes every figure of the project (150 dpi; PNG, PDF or SVG).
Imports no other module of :mod:`mtcert`.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = [
    "OKABE_ITO",
    "add_legend",
    "curve_style",
    "plot_power",
    "pyplot",
    "save_figure",
    "style_axes",
    "wrap_title",
]

#: The project's colours: Okabe & Ito's palette, told apart with every common
#: colour-vision deficiency (black, orange, sky blue, bluish green, yellow, blue,
#: vermillion, reddish purple).  Every module's figures take their colours from it.
OKABE_ITO = (
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
)  # fmt: skip
# curves cycle through these (yellow last: faint on white)
_CYCLE = tuple(OKABE_ITO[i] for i in (5, 6, 3, 1, 7, 2, 0, 4))

_LABELS = {
    "jointclass": "JointClass",
    "indivclass": "IndivClass",
    "segcertify-holm": "SegCertifyHolm",
    "segcertify-bonferroni": "SegCertifyBon",
}
# The paper's four methods keep fixed styles across figures; other curves cycle.
_STYLES = {
    "jointclass": dict(color="#0072B2", marker="s", linestyle="-"),
    "indivclass": dict(color="#E69F00", marker="^", linestyle="-."),
    "segcertify-holm": dict(color="#009E73", marker="o", linestyle="-"),
    "segcertify-bonferroni": dict(color="#D55E00", marker="x", linestyle="--"),
}
_MARKERS = ("o", "s", "^", "D", "v", "x", "P", "*")
_LINESTYLES = ("-", "--", "-.", ":")
_X_LABELS = {"gamma": r"error rate $\gamma$", "N": r"components $N$"}
_MARKERS_PER_CURVE = 11  # dense sweeps (101 gammas) get markers every ~10 points


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ``ImportError`` that says how to install it."""
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


def style_axes(ax: Any, *, xlabel: str, ylabel: str, logx: bool = False, rate: bool = True) -> None:
    """Give ``ax`` the project's look: grey panel, white grid, no frame, labels.

    ``logx``: a logarithmic x axis; ``rate``: the y axis spans [0, 1] (rates),
    with a little room so that curves at 0 or 1 stay visible.
    """
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if rate:
        ax.set_ylim(-0.02, 1.02)
    ax.grid(True, color="white")
    ax.set_axisbelow(True)
    ax.set_facecolor((0.96, 0.96, 0.96))
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)


def curve_style(i: int) -> dict:
    """Colour, marker and line style of the ``i``-th curve of a figure (all three differ
    between neighbours, so overlapping curves stay told apart, also in black and white).

    Examples
    --------
    >>> curve_style(0)
    {'color': '#0072B2', 'marker': 'o', 'linestyle': '-'}
    >>> curve_style(1)["linestyle"]
    '--'
    """
    return dict(
        color=_CYCLE[i % len(_CYCLE)],
        marker=_MARKERS[i % len(_MARKERS)],
        linestyle=_LINESTYLES[i % len(_LINESTYLES)],
    )


def add_legend(ax: Any, *, caption: str = "", ncol: int = 1) -> Any:
    """The project's legend of ``ax``'s curves: below the axes, in ``ncol`` columns,
    headed by ``caption`` (e.g. what the curves promise) in small type.

    The figure should use ``layout="constrained"``, which makes room for it.
    """
    return ax.figure.legend(
        *ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, frameon=False,
        fontsize="small", title=caption or None, title_fontsize="small",
    )  # fmt: skip


def _budget_order(spec: Any) -> tuple[int, float]:
    """Sort key of a ``budget_spec``: integers by value, then fractions of N by value."""
    text = str(spec)
    return (1, float(text[:-1])) if text.endswith("N") else (0, float(text))


def _draw(ax: Any, df: pd.DataFrame, x: str, y: str, errorbars: bool) -> None:
    methods = list(dict.fromkeys(df["method"]))
    by_budget = "budget_spec" in df and df["budget_spec"].nunique() > 1 and len(methods) == 1
    keys = ["method", "budget_spec"] if "budget_spec" in df else ["method"]
    cycle = itertools.count()
    groups = list(df.groupby(keys, sort=False))
    if by_budget:  # the legend reads 0.001N before 0.01N
        groups.sort(key=lambda group: _budget_order(group[0][1]))
    for key, curve in groups:
        method, spec = (key if isinstance(key, tuple) else (key,)) + (None,) * (2 - len(keys))
        curve = curve.sort_values(x)
        i = next(cycle)
        style = _STYLES.get(method) if not by_budget else None
        if style is None:
            style = curve_style(i)
        every = max(1, len(curve) // _MARKERS_PER_CURVE)
        (line,) = ax.plot(
            curve[x], curve[y], label=_label(method, spec, by_budget), markevery=every,
            markersize=5, linewidth=1.4, markerfacecolor="none", **style,
        )  # fmt: skip
        if errorbars and "stderr" in curve:
            lo = (curve[y] - 2 * curve["stderr"]).clip(0, 1)
            hi = (curve[y] + 2 * curve["stderr"]).clip(0, 1)
            ax.fill_between(curve[x], lo, hi, color=line.get_color(), alpha=0.18, lw=0)


def wrap_title(title: str, width: int) -> str:
    """``title`` wrapped to ``width`` characters, never inside a ``name = value`` pair."""
    # Keep "α = 0.001" on one line: wrap only between the settings.
    return textwrap.fill(title.replace(" = ", "\u00a0=\u00a0"), width)


def _check_columns(df: pd.DataFrame, x: str, y: str | None) -> str:
    if x not in df.columns:
        raise ValueError(f"df has no column {x!r}")
    if y is None:
        y = "certified_rate_smoothed" if "certified_rate_smoothed" in df else "certified_rate"
    if y not in df.columns:
        raise ValueError(f"df has no column {y!r}")
    return y


def plot_power(
    df: pd.DataFrame,
    *,
    x: str = "gamma",
    y: str | None = None,
    title: str | None = None,
    errorbars: bool = False,
    ax: Any = None,
) -> Any:
    """Plot the certified rate against ``x``, one line per method (or budget).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`mtcert.sim.power.run_grid` / :func:`~mtcert.sim.power.run_preset`.
    x : {"gamma", "N"}
        The swept column; ``"N"`` uses a logarithmic axis, as in the paper's
        Figs. 2c and 6.
    y : str, optional
        Column to plot; defaults to ``certified_rate_smoothed`` when present,
        else ``certified_rate``.
    title : str, optional
    errorbars : bool, default False
        Shade ±2 standard errors (column ``stderr``) around each curve.
    ax : matplotlib Axes, optional
        Draw into this axes (no legend is added then); a new figure with the
        legend outside the axes, right of the data, is created otherwise.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mtcert.sim.power import run_grid
    >>> from mtcert.plotting import plot_power
    >>> df = run_grid(["segcertify-holm", "segcertify-bonferroni"], gamma=[0.0, 0.1],
    ...               N=100, reps=2)
    >>> fig = plot_power(df, title="N = 100, α = 0.001")
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['SegCertifyHolm', 'SegCertifyBon']
    """
    plt = pyplot()
    y = _check_columns(df, x, y)
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7.0, 3.8), layout="constrained")
    else:
        fig = ax.figure
    _draw(ax, df, x, y, errorbars)
    style_axes(ax, xlabel=_X_LABELS.get(x, x), ylabel="certified rate", logx=x == "N")
    if own:
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(wrap_title(title, 70), fontsize="medium")
    return fig


#: The metadata key that holds a figure's description, per file format.
_DESCRIPTION_KEY = {"png": "Description", "svg": "Description", "pdf": "Subject"}


def save_figure(
    fig: Any,
    path: Any,
    *,
    formats: Sequence[str] | None = None,
    dpi: int = 150,
    description: str | None = None,
) -> list:
    """Save ``fig`` to ``path`` (or ``path.<format>`` for each of ``formats``) and close it.

    Every figure of the project is saved here, so that they share one resolution
    (``dpi``, 150 by default: print-ready) and are always released.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path
        The file; its suffix chooses the format unless ``formats`` are given.
    formats : sequence of {"png", "pdf", "svg"}, optional
        Write ``path.<format>`` for each instead.
    dpi : int, default 150
    description : str, optional
        Stored in the file's metadata (PNG and SVG ``Description``, PDF ``Subject``),
        e.g. a caption that should stay machine-readable.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> fig = pyplot().figure(figsize=(2, 1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (path,) = save_figure(fig, pathlib.Path(tmp) / "f.png", description="a caption")
    ...     with Image.open(path) as im:
    ...         print(im.size, round(im.info["dpi"][0]), im.text["Description"])
    (300, 150) 150 a caption
    """
    from pathlib import Path

    plt = pyplot()
    path = Path(path)
    paths = [path] if formats is None else [path.with_name(f"{path.name}.{f}") for f in formats]
    for target in paths:
        key = _DESCRIPTION_KEY.get(target.suffix.lstrip(".").lower())
        meta = {key: description} if description and key else None
        fig.savefig(target, dpi=dpi, metadata=meta)
    plt.close(fig)
    return paths
