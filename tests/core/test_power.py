"""Tests for mtcert.sim.power (grid runner, presets, smoothing), the power CLI and plotting.

Statistical checks compare simulated rates with closed forms written plainly
here (scipy only), with 5-sigma tolerances on fixed seeds.
"""

import concurrent.futures as cf

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.signal import savgol_filter

from mtcert import cohen, power
from mtcert.sim.oracle import BinaryOracle
from mtcert.sim.power import PRESETS, run_grid, run_preset, smooth

Z = 5.0
DROP = ["runtime"]


def _h_star(n, tau, level):
    """Smallest hit count whose p-value P(Bin(n, tau) >= h) is <= level."""
    h = np.arange(n + 2)
    ok = stats.binom.sf(h - 1, n, tau) <= level
    return int(h[ok][0]) if ok.any() else n + 1


def _h_cp(n, level):
    """Smallest hit count whose one-sided Clopper–Pearson lower bound exceeds 1/2."""
    for h in range(1, n + 1):
        if stats.beta.ppf(level, h, n - h + 1) > 0.5:
            return h
    return n + 1


def _per_component(q, n0, n, h):
    g = stats.binom.sf(n0 // 2, n0, q)  # guess right (ties go to the wrong class)
    right = g * stats.binom.sf(h - 1, n, q)
    wrong = (1 - g) * stats.binom.sf(h - 1, n, 1 - q)
    return right + wrong, right


def _close(observed, expected, sd):
    assert abs(observed - expected) <= Z * sd + 1e-12, (observed, expected, sd)


@pytest.mark.parametrize("gamma, n_bad", [(0.06, 1), (0.1, 0)])
def test_segcertify_bonferroni_matches_closed_form(gamma, n_bad):
    N, n0, n, alpha, tau, reps = 50, 30, 40, 0.01, 0.75, 2000
    df = run_grid(
        "segcertify-bonferroni",
        gamma=gamma, N=N, n_bad=n_bad, n0=n0, n=n, alpha=alpha, tau=tau, reps=reps, workers=1,
    )  # fmt: skip
    q = BinaryOracle(N, gamma, n_bad).correct_probabilities()
    p_cert, p_right = _per_component(q, n0, n, _h_star(n, tau, alpha / N))
    sd = np.sqrt((p_cert * (1 - p_cert)).sum() / N**2 / reps)
    _close(df.certified_rate[0], p_cert.mean(), sd)
    sd = np.sqrt((p_right * (1 - p_right)).sum() / N**2 / reps)
    _close(df.certified_correct_rate[0], p_right.mean(), sd)
    assert 0 < df.stderr[0] < 3 * sd + 1e-3


def test_indivclass_matches_closed_form():
    N, n0, n, alpha, gamma, reps = 10, 20, 60, 0.05, 0.06, 3000
    df = run_grid(
        "indivclass", gamma=gamma, N=N, n_bad=1, n0=n0, n=n, alpha=alpha, reps=reps, workers=1
    )
    q = BinaryOracle(N, gamma, 1).correct_probabilities()
    p_cert, p_right = _per_component(q, n0, n, _h_cp(n, alpha / N))
    p_all = p_cert.prod()
    assert 0.05 < p_all < 0.95  # a regime where the check has teeth
    _close(df.certified_rate[0], p_all, np.sqrt(p_all * (1 - p_all) / reps))
    correct = p_all * np.mean(p_right / p_cert)
    _close(df.certified_correct_rate[0], correct, np.sqrt(p_all / reps))


def test_jointclass_matches_bruteforce_on_materialised_samples():
    N, n0, n, alpha, gamma, reps = 3, 20, 30, 0.05, 0.05, 1500
    df = run_grid(
        "jointclass", gamma=gamma, N=N, n_bad=1, n0=n0, n=n, alpha=alpha, reps=reps, workers=1
    )
    o = BinaryOracle(N, gamma, 1)
    rng = np.random.default_rng(123)
    s0 = o.sample_labels(reps * n0, rng=rng).reshape(reps, n0, N)
    s = o.sample_labels(reps * n, rng=rng).reshape(reps, n, N)
    ref = cohen.jointclass(s0, s, alpha=alpha)
    p_ref = np.asarray(ref.certified).mean()
    assert 0.1 < p_ref < 0.9
    _close(df.certified_rate[0], p_ref, np.sqrt(2 * p_ref * (1 - p_ref) / reps))
    correct_ref = (np.asarray(ref.labels) == 1).mean()
    _close(df.certified_correct_rate[0], correct_ref, np.sqrt(2 * p_ref / reps))


def test_type1_accounting_on_boundary_nulls():
    # q = 1/2 = tau: every certified component is a false certificate, and with
    # independent components the FWER of Bonferroni is exactly 1 - (1 - a)^N.
    N, n, alpha, reps = 10, 40, 0.3, 4000
    df = run_grid(
        "segcertify-bonferroni", gamma=0.5, N=N, n0=9, n=n, alpha=alpha, tau=0.5,
        reps=reps, workers=1,
    )  # fmt: skip
    a = stats.binom.sf(_h_star(n, 0.5, alpha / N) - 1, n, 0.5)
    row = df.iloc[0]
    assert row.certified_rate == row.false_certified_rate
    assert row.certified_correct_rate <= row.certified_rate
    _close(row.false_certified_rate, a, np.sqrt(a / (N * reps)))
    fwer = 1 - (1 - a) ** N
    _close(row.type1_errors / reps, fwer, np.sqrt(fwer * (1 - fwer) / reps))
    assert row.type1_errors / reps <= alpha


@pytest.mark.parametrize("method, gamma, N", [("indivclass", 0.3, 1), ("jointclass", 0.1, 3)])
def test_cohen_based_methods_keep_alpha(method, gamma, N):
    # A false claim is a certified lower bound above the true probability; CERTIFY
    # keeps its rate <= alpha (per joint claim / jointly over the N components).
    alpha, reps = 0.2, 3000
    df = run_grid(method, gamma=gamma, N=N, n0=15, n=15, alpha=alpha, reps=reps, workers=1)
    rate = df.type1_errors[0] / reps
    assert rate > alpha / 4  # settings where the bound is nearly attained: the check has teeth
    assert rate <= alpha + Z * np.sqrt(alpha * (1 - alpha) / reps)


def test_budget_counts_errors_beyond_b():
    # A k-FWER method with budget b counts a repetition as an error only with > b
    # false certificates; at q = tau every certificate is false.
    df = run_grid(
        "segcertify-generalized-bonferroni", gamma=0.5, N=20, n0=9, n=30, alpha=0.5,
        tau=0.5, budget=[0, 2], reps=3000, workers=1,
    )  # fmt: skip
    b0, b2 = df.set_index("budget").loc[[0, 2]].itertuples()
    assert b2.certified_rate > b0.certified_rate
    assert b0.type1_errors / 3000 <= 0.5 and b2.type1_errors / 3000 <= 0.5
    assert b2.type1_errors > 0


def test_common_random_numbers_order_methods():
    df = run_grid(
        ["segcertify-holm", "segcertify-bonferroni", "segcertify-generalized-holm"],
        gamma=[0.02, 0.07], N=100, n_bad=1, n0=100, n=100, alpha=0.001, tau=0.75, reps=50,
        workers=1,
    )  # fmt: skip
    for _, g in df.groupby("gamma"):
        r = g.set_index("method").certified_rate
        assert r["segcertify-holm"] >= r["segcertify-bonferroni"]
        # generalized Holm with budget 0 (k = 1) is Holm, on the same draws.
        assert r["segcertify-generalized-holm"] == r["segcertify-holm"]


def test_results_do_not_depend_on_executor_or_grid():
    kw = dict(
        method=["jointclass", "indivclass", "segcertify-holm"],
        gamma=[0.0, 0.03, 0.06], N=[20, 100], n_bad=1, n0=50, n=50, alpha=0.01, tau=0.75, reps=30,
    )  # fmt: skip
    serial = run_grid(**kw, workers=1).drop(columns=DROP)
    threads = run_grid(**kw, workers=3).drop(columns=DROP)  # the default back-end
    processes = run_grid(**kw, workers=2, backend="processes").drop(columns=DROP)
    with cf.ThreadPoolExecutor(3) as ex:
        executor = run_grid(**kw, executor=ex).drop(columns=DROP)
    pd.testing.assert_frame_equal(serial, threads)
    pd.testing.assert_frame_equal(serial, processes)
    pd.testing.assert_frame_equal(serial, executor)
    # A scenario's draws depend on its parameters, not on the rest of the grid.
    alone = run_grid(**{**kw, "gamma": 0.03, "N": 100}, workers=1).drop(columns=DROP)
    part = serial[(serial.gamma == 0.03) & (serial.N == 100)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, part)
    # ... and on the seed.
    other = run_grid(**kw, workers=1, seed=1).drop(columns=DROP)
    assert not other.equals(serial)


def test_columns_and_budget_resolution():
    df = run_grid(
        ["segcertify-generalized-holm", "segcertify-holm", "indivclass"],
        gamma=0.05, N=[100, 1000], n0=50, n=50, budget=[0, 1, 0.01], reps=2, workers=1,
    )  # fmt: skip
    assert list(df.columns) == list(power.COLUMNS)
    gh = df[df.method == "segcertify-generalized-holm"]
    # b = floor(0.01 N): 1 at N = 100, 10 at N = 1000
    # 0.01N at N = 100 is b = 1, as the integer budget 1: both rows are kept
    assert sorted(gh[gh.N == 100].budget) == [0, 1, 1]
    assert set(gh[gh.N == 100].budget_spec) == {"0", "1", "0.01N"}
    assert sorted(gh[gh.N == 1000].budget) == [0, 1, 10]
    assert set(gh[gh.N == 1000].budget_spec) == {"0", "1", "0.01N"}
    # methods without a budget run once, with b = 0
    assert (df[df.method != "segcertify-generalized-holm"].budget == 0).all()
    assert len(df[df.method == "segcertify-holm"]) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="segcertify-nope"), "method"),
        (dict(method="holm"), "method"),
        (dict(gamma=2.0), "gamma"),
        (dict(N=0), "N"),
        (dict(n_bad=200), "n_bad"),
        (dict(backend="fork"), "backend"),
        (dict(alpha=0.0), "alpha"),
        (dict(tau=0.4), "tau"),
        (dict(budget=-1), "budget"),
        (dict(budget=1.5), "budget"),
        (dict(reps=0), "reps"),
        (dict(seed=-1), "seed"),
        (dict(gamma=[]), "gamma"),
        (dict(workers=0), "workers"),
        (dict(executor="dask"), "executor"),
    ],
)
def test_validation(kwargs, match):
    base = dict(method="segcertify-holm", gamma=0.05, N=100, reps=2, workers=1)
    with pytest.raises(ValueError, match=match):
        run_grid(**{**base, **kwargs})


def test_smooth_matches_scipy_savgol_and_clips():
    x = np.round(np.linspace(0, 0.1, 21), 3)
    y = np.clip(1 - 8 * x + 0.05 * np.sin(40 * x), 0, 1)
    df = pd.DataFrame({"method": "m", "gamma": x, "certified_rate": y})
    short = pd.DataFrame({"method": "s", "gamma": x[:5], "certified_rate": y[:5]})
    out = smooth(pd.concat([df.iloc[::-1], short], ignore_index=True))
    got = out[out.method == "m"].sort_values("gamma").certified_rate_smoothed
    np.testing.assert_allclose(got, np.clip(savgol_filter(y, 11, 1), 0, 1))
    # curves shorter than the window are left as they are
    np.testing.assert_array_equal(
        out[out.method == "s"].certified_rate_smoothed, out[out.method == "s"].certified_rate
    )
    assert "certified_rate_smoothed" not in df  # input untouched
    with pytest.raises(ValueError, match="degree"):
        smooth(df, window=3, degree=3)
    with pytest.raises(ValueError, match="column"):
        smooth(df, x="N")


def test_presets_have_the_paper_settings():
    assert set(PRESETS) == {"fig2a", "fig2b", "fig2c", "fig5", "fig6a", "fig6b"}
    a = PRESETS["fig2a"].grid
    assert len(a["gamma"]) == 101 and a["gamma"][0] == 0.0 and a["gamma"][-1] == 0.1
    assert np.allclose(np.diff(a["gamma"]), 0.001)
    assert (a["N"], a["n_bad"], a["n0"], a["n"], a["alpha"], a["tau"]) == (
        100,
        1,
        100,
        100,
        0.001,
        0.75,
    )
    assert PRESETS["fig2a"].reps == 600 and PRESETS["fig2a"].smooth
    assert set(a["method"]) == {
        "jointclass",
        "indivclass",
        "segcertify-holm",
        "segcertify-bonferroni",
    }
    assert PRESETS["fig2b"].grid["n0"] == PRESETS["fig2b"].grid["n"] == 1000
    c = PRESETS["fig2c"].grid
    assert (c["gamma"], c["n_bad"], c["n0"], c["alpha"]) == (0.05, 0, 1000, 0.1)
    assert min(c["N"]) == 100 and max(c["N"]) == 10**6
    assert not PRESETS["fig5"].smooth and PRESETS["fig5"].grid == PRESETS["fig2b"].grid
    assert PRESETS["fig6a"].grid["alpha"] == 0.1 and PRESETS["fig6b"].grid["alpha"] == 0.001
    assert set(PRESETS["fig6a"].grid["budget"]) >= {0, 1, 0.01, 0.001}
    with pytest.raises(ValueError, match="preset"):
        run_preset("fig9")


def test_run_preset_small():
    df = run_preset("fig2c", reps=2, workers=1)
    assert len(df) == 2 * len(PRESETS["fig2c"].grid["N"])
    assert df.certified_rate.between(0, 1).all()
    df = run_preset("fig2a", reps=2, workers=1)
    assert "certified_rate_smoothed" in df and len(df) == 4 * 101


def test_paper_findings_fig2_qualitatively():
    # §6.1 on a coarse grid: JointClass fails once gamma > 0, IndivClass holds
    # at small gamma then collapses, SegCertify-Holm >= -Bonferroni; with
    # n0 = n = 1000 SegCertify stays near 1 (0.99 once the bad component < tau).
    kw = dict(N=100, n_bad=1, alpha=0.001, tau=0.75, reps=60, workers=1)
    a = run_grid(list(PRESETS["fig2a"].grid["method"]), gamma=[0.0, 0.02, 0.1], n0=100, n=100, **kw)
    r = a.set_index(["method", "gamma"]).certified_rate
    assert r["jointclass", 0.0] == 1.0 and r["jointclass", 0.02] < 0.05
    assert r["indivclass", 0.02] > 0.9 and r["indivclass", 0.1] < 0.05
    assert r["segcertify-holm", 0.1] >= r["segcertify-bonferroni", 0.1]
    b = run_grid("segcertify-holm", gamma=[0.04, 0.1], n0=1000, n=1000, **kw)
    rb = b.set_index("gamma").certified_rate
    assert rb[0.04] > 0.99 and 0.97 < rb[0.1] <= 0.99 + 1e-12


# -- plotting -------------------------------------------------------------------------


def test_plot_power_lines_and_axes(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from mtcert.plotting import plot_power
    from mtcert.sim.power.figures import plot_preset

    df = run_grid(
        ["segcertify-generalized-holm"], gamma=0.05, N=[100, 1000], n0=100, n=100,
        budget=[0, 1], reps=2, workers=1,
    )  # fmt: skip
    fig = plot_power(df, x="N")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["$b=0$", "$b=1$"]
    plt.close(fig)
    df = run_preset("fig2c", reps=1, workers=1)
    fig = plot_preset(df, "fig2c", path=tmp_path / "c.png")
    assert (tmp_path / "c.png").exists()
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {
        "SegCertifyHolm", "SegCertifyBon",
    }  # fmt: skip
    plt.close(fig)
    with pytest.raises(ValueError, match="column"):
        plot_power(df, x="gamma", y="nope")


# -- scripts without a __main__ guard ---------------------------------------------------

SCRIPT = """
from mtcert.sim.power import run_grid

df = run_grid(["segcertify-holm", "indivclass"], gamma=[0.0, 0.05], N=[20, 50], n_bad=1,
              reps=5, workers=2{backend})
print("rows", len(df))
"""


def _run_script(tmp_path, backend=""):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "study.py"
    script.write_text(SCRIPT.format(backend=backend))  # no `if __name__ == "__main__":`
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip


def test_run_grid_in_a_plain_script_without_main_guard(tmp_path):
    res = _run_script(tmp_path)  # default back-end: threads
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "rows 8"


def test_process_pool_that_cannot_start_says_how_to_fix_it(tmp_path):
    res = _run_script(tmp_path, backend=', backend="processes"')
    assert res.returncode != 0
    # the script's own traceback ends in our error (a resource-tracker warning may follow)
    final = [
        line for line in res.stderr.splitlines() if line.startswith(("RuntimeError", "concurrent"))
    ]
    assert final[-1].startswith("RuntimeError: the power study's worker processes could not start")
    assert "__main__" in final[-1] and "backend='threads'" in final[-1]


def test_public_names_and_single_home_of_cohen():
    import mtcert
    from mtcert import certify, cohen

    for name in ("power", "oracle", "plotting", "testing", "run_grid", "BinaryOracle"):
        assert name in dir(mtcert) and getattr(mtcert, name) is not None
    for name in ("certify", "indivclass", "jointclass", "predict", "CertifyResult"):
        assert not hasattr(certify, name), f"mtcert.certify.segmentation re-exports {name}"
        assert hasattr(cohen, name)
    assert mtcert.sim.power.run_grid is run_grid
    assert "n_bad" in power.COLUMNS and "k" not in power.COLUMNS


def test_threads_follow_the_callers_kernel_policy(monkeypatch):
    # a kernel-tier policy() block around run_grid holds in its worker threads too
    from mtcert import _jit
    from mtcert.sim.power import execution

    original, seen = execution.run_scenarios, []

    def recording(scenarios):
        seen.append(_jit.get_mode())
        return original(scenarios)

    monkeypatch.setattr(execution, "run_scenarios", recording)
    with _jit.policy("never"):
        run_grid("segcertify-holm", gamma=[0.0, 0.1], N=5, n0=10, n=10, reps=2, workers=2)
    assert seen and set(seen) == {"never"}, seen


def test_budget_legend_in_numeric_order_and_okabe_ito_colours():
    pytest.importorskip("matplotlib")
    from mtcert.plotting import OKABE_ITO, plot_power, pyplot

    rows = [
        dict(method="segcertify-generalized-holm", budget_spec=spec, gamma=g, certified_rate=r)
        for spec in ["0.01N", "2", "0.001N", "0"]
        for g, r in [(0.0, 1.0), (0.1, 0.5)]
    ]
    fig = plot_power(pd.DataFrame(rows))
    ax = fig.axes[0] if hasattr(fig, "axes") else fig
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [r"$b=0$", r"$b=2$", r"$b=0.001\,N$", r"$b=0.01\,N$"]
    assert all(line.get_color() in OKABE_ITO for line in ax.get_lines())
    pyplot().close("all")


def test_preset_title_says_what_it_shows_not_its_id():
    pytest.importorskip("matplotlib")
    from mtcert.plotting import pyplot
    from mtcert.sim.power.figures import plot_preset

    df = pd.DataFrame(
        dict(method="segcertify-holm", gamma=[0.0, 0.1], certified_rate=[1.0, 0.5],
             certified_rate_smoothed=[1.0, 0.5], N=[10, 10])
    )  # fmt: skip
    fig = plot_preset(df, "fig2a")
    title = fig.axes[0].get_title()
    assert title and "fig2a" not in title and PRESETS["fig2a"].title.split()[0] in title
    pyplot().close("all")
