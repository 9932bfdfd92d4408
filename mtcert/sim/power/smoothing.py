"""The paper's Savitzky–Golay smoothing of power curves (App. B.1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtcert.stats.validation import check_positive_int

__all__ = ["smooth"]

SAVGOL_WINDOW = 11  # paper App. B.1: degree 1 over the 11 closest neighbours
SAVGOL_DEGREE = 1


def smooth(
    df: pd.DataFrame,
    *,
    x: str = "gamma",
    window: int = SAVGOL_WINDOW,
    degree: int = SAVGOL_DEGREE,
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
        for c in ("method", "budget_spec", "gamma", "N", "n_bad", "n0", "n", "alpha", "tau")
        if c in df.columns and c != x
    ]
    for _, curve in out.groupby(keys, sort=False, dropna=False):
        curve = curve.sort_values(x)
        if len(curve) >= window:
            values = np.clip(savgol_filter(curve[column].to_numpy(float), window, degree), 0, 1)
            out.loc[curve.index, f"{column}_smoothed"] = values
    return out
