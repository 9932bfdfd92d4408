"""The project's figures as printed: resolution, steps, markers, titles that state the settings.

Each figure is saved with :func:`mtcert.plotting.save_figure` and read back with PIL (its
dpi and pixel size), or inspected through the matplotlib objects it is made of (a line's
draw style and vertices, markers, legend and title text).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.cbook import STEP_LOOKUP_MAP
from PIL import Image

from mtcert.plotting import OKABE_ITO, curve_style, pyplot, save_figure
from mtcert.stored.planning import plan_samples, plot_plan
from mtcert.stored.recertification import plot_radius_curves


def _read_back(path):
    with Image.open(path) as im:
        return im.size, im.info["dpi"], dict(getattr(im, "text", {}))


def _curve(method="holm", n=100, alpha=0.001):
    """A radius curve shaped like a real one: slowly falling, then nothing beyond 0.28."""
    taus = np.round(np.linspace(0.5, 0.95, 10), 3)
    radius = 0.25 * np.array([0.0, 0.126, 0.253, 0.385, 0.524, 0.674, 0.842, 1.036, 1.282, 1.645])
    acc = np.where(radius <= 0.28, 0.95 - 0.3 * radius, 0.0)
    return pd.DataFrame(
        dict(noise="gaussian", sigma=0.25, n0=10, n=n, alpha=alpha, method=method, k=1,
             tau=taus, radius=radius, acc=acc, miou=acc, abstain=1 - acc)
    )  # fmt: skip


def test_save_figure_prints_at_150_dpi_with_its_description(tmp_path):
    fig = pyplot().figure(figsize=(4.0, 3.0))
    (png,) = save_figure(fig, tmp_path / "f.png", description="what it shows")
    size, dpi, text = _read_back(png)
    assert size == (600, 450) and dpi[0] == pytest.approx(150, abs=0.1)
    assert text["Description"] == "what it shows"
    fig = pyplot().figure(figsize=(4.0, 3.0))
    paths = save_figure(fig, tmp_path / "g", formats=["pdf", "svg"], description="caption")
    assert [p.name for p in paths] == ["g.pdf", "g.svg"]
    assert b"caption" in paths[1].read_bytes()  # the SVG's Dublin Core description
    assert paths[0].read_bytes().startswith(b"%PDF")


def test_neighbouring_curves_differ_in_colour_marker_and_line():
    styles = [curve_style(i) for i in range(8)]
    for a, b in itertools.pairwise(styles):
        assert all(a[key] != b[key] for key in ("color", "marker", "linestyle"))
    assert all(s["color"] in OKABE_ITO for s in styles)


def test_radius_curve_is_a_step_with_a_vertical_cliff(tmp_path):
    curve = _curve()
    joint = _curve(method="joint-holm")
    fig = plot_radius_curves(pd.concat([curve, joint], ignore_index=True))
    ax = fig.axes[0]
    per_tau, joint_line = ax.lines
    assert per_tau.get_drawstyle() == joint_line.get_drawstyle() == "steps-pre"
    # the vertices matplotlib draws for the line's draw style (its own step function)
    path = STEP_LOOKUP_MAP[per_tau.get_drawstyle()](*per_tau.get_xydata().T).T
    last = curve["radius"][curve["acc"] > 0].max()
    cliff = path[np.isclose(path[:, 0], last)]
    assert sorted(cliff[:, 1]) == pytest.approx([0.0, 0.95 - 0.3 * last])  # a vertical drop
    # nothing drawn above what a certificate covers: at any x, the value is that of the
    # next grid radius at or above x
    r, a = curve["radius"].to_numpy(), curve["acc"].to_numpy()
    for x0, y0 in path:
        assert y0 <= a[np.searchsorted(r, x0 - 1e-12)] + 1e-12
    assert per_tau.get_marker() not in (None, "None", "")
    assert per_tau.get_zorder() > joint_line.get_zorder()  # per-tau over the joint curve
    title = ax.get_title()
    for text in ("α = 0.001", "n = 100", "n0 = 10", "σ = 0.25", "τ from 0.5 to 0.95"):
        assert text in title.replace("\n", " ").replace("\u00a0", " ")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert all("n=100" in label and "α=0.001" in label for label in labels)
    caption = fig.legends[0].get_title().get_text()
    assert "points do not hold jointly" in caption and "all radii at once" in caption
    (png,) = save_figure(fig, tmp_path / "radius.png")
    (w, h), dpi, _ = _read_back(png)
    assert dpi[0] >= 149.9 and w >= 1000 and h >= 600


def test_radius_curve_title_lists_settings_that_differ():
    both = pd.concat([_curve(n=100), _curve(n=500, alpha=0.01)], ignore_index=True)
    both["run"] = ["a"] * 10 + ["b"] * 10
    fig = plot_radius_curves(both)
    title = fig.axes[0].get_title().replace("\n", " ").replace("\u00a0", " ")
    assert "n = 100, 500" in title and "α = 0.001, 0.01" in title
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0].startswith("a: ") and "n=500, α=0.01" in labels[1]
    assert fig.axes[0].lines[0].get_linestyle() != "-"  # per-τ dashed
    pyplot().close("all")


def test_plan_figure_has_markers_and_states_its_settings(tmp_path):
    plan = plan_samples(np.full(50, 0.99), tau=0.75, alpha=0.001, n=[20, 50, 100, 200],
                        target=0.9)  # fmt: skip
    fig = plot_plan(plan, measured={100: 0.95})
    ax = fig.axes[0]
    predicted = ax.lines[0]
    assert predicted.get_marker() == "o" and predicted.get_color() in OKABE_ITO
    assert ax.get_xscale() == "log"
    title = ax.get_title().replace("\n", " ").replace("\u00a0", " ")
    for text in ("N = 50", "τ = 0.75", "α = 0.001", "holm", "target rate 0.9"):
        assert text in title
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "target 0.9" in labels and "measured" in labels
    assert any(label.startswith(f"n = {plan.n_needed}") for label in labels)
    (png,) = save_figure(fig, tmp_path / "plan.png")
    (w, h), dpi, _ = _read_back(png)
    assert dpi[0] >= 149.9 and w >= 1000 and h >= 600


def test_adhoc_power_figure_title_states_the_fixed_settings(tmp_path):
    from mtcert.sim.power.study import power_study

    grid = dict(method=["segcertify-holm", "segcertify-bonferroni"], gamma=[0.0, 0.05], N=[50],
                n_bad=[1], n0=[20], n=[100], alpha=[0.01], tau=[0.75], budget=[0])  # fmt: skip
    study = power_study(out=tmp_path, grid=grid, reps=3, workers=1, progress=False)
    title = study.title
    assert title == "N = 50, 1 bad, n0 = 20, n = 100, α = 0.01, τ = 0.75, 3 repetitions"
    (png,) = [p for p in study.files if p.suffix == ".png"]
    _, dpi, _ = _read_back(png)
    assert dpi[0] >= 149.9
    grid.update(tau=[0.6, 0.9], gamma=[0.05], N=[50, 100])  # sweeps N; two τ listed
    study = power_study(out=tmp_path, grid=grid, reps=3, workers=1, progress=False, plot=False)
    assert "τ = 0.6, 0.9" in study.title and "γ = 0.05" in study.title
    assert "N =" not in study.title


def test_preset_titles_carry_settings_not_ids():
    from mtcert.sim.power.figures import plot_fig2, preset_title
    from mtcert.sim.power.presets import PRESETS

    frames = {}
    for name in ("fig2a", "fig2b", "fig2c"):
        x = PRESETS[name].x
        frames[name] = pd.DataFrame(
            {"method": "segcertify-holm", x: [1.0, 2.0], "certified_rate": [1.0, 0.5],
             "reps": 7}
        )  # fmt: skip
        assert preset_title(frames[name], name) == f"{PRESETS[name].title}, 7 repetitions"
    fig = plot_fig2(frames)
    titles = [ax.get_title() for ax in fig.axes]
    assert [t[:3] for t in titles] == ["(a)", "(b)", "(c)"]
    assert not any("fig2" in t for t in titles) and all("7 repetitions" in t for t in titles)
    pyplot().close("all")
    with pytest.raises(ValueError, match="preset must be one of"):
        preset_title(frames["fig2a"], "fig9")
