"""The sample-size planner against scipy thresholds and the oracle simulator (seeded Monte Carlo).

Every Monte Carlo comparison allows 4.5 standard errors: with the ~30 comparisons
below the chance of a false alarm is below 1e-4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mtcert.certify.segmentation import segcertify_hits
from mtcert.cli import main
from mtcert.sim.oracle import MultiClassOracle
from mtcert.stored.counts import CountsWriter
from mtcert.stored.planning import (
    SUPERSET_OF,
    Profile,
    _threshold,
    plan_samples,
    plot_plan,
    profile_from_pilot,
)

Z = 4.5


def _oracle_rate(p_profile, N, n, tau, alpha, method, k, reps, seed, n0=None):
    """Certified rate of families with i.i.d. p from a discrete profile, by the oracle."""
    support, weights = p_profile
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(reps):
        p = rng.choice(support, size=N, p=weights)
        oracle = MultiClassOracle(np.column_stack([1 - p, p]), truth=np.ones(N, int))
        if n0 is None:
            guess, hits = np.ones(N, int), rng.binomial(n, p)
        else:
            guess, hits = oracle.sample_guess_hits(n0, n, rng=rng)
        cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=k)
        rates.append(cert.certified_rate)
    return float(np.mean(rates)), float(np.std(rates, ddof=1) / math.sqrt(reps))


PROFILE = (np.array([0.55, 0.8, 0.9, 0.97, 1.0]), np.array([0.1, 0.15, 0.25, 0.3, 0.2]))


@pytest.mark.parametrize("N", [1, 50, 1000])
@pytest.mark.parametrize("n", [20, 100, 400])
@pytest.mark.parametrize(("tau", "alpha"), [(0.75, 1e-3), (0.9, 0.05)])
@pytest.mark.parametrize(("method", "k"), [("bonferroni", 1), ("generalized-bonferroni", 5)])
def test_bonferroni_threshold_is_scipy_brute_force(N, n, tau, alpha, method, k):
    h = next(
        (h for h in range(n + 1) if min(1.0, N / k * stats.binom.sf(h - 1, n, tau)) <= alpha),
        n + 1,
    )
    assert _threshold(n, N, tau, alpha, method, k) == h


@pytest.mark.parametrize(
    ("N", "n", "tau", "alpha", "method", "k", "n0"),
    [
        (200, 50, 0.75, 1e-3, "bonferroni", 1, None),
        (200, 100, 0.75, 1e-3, "bonferroni", 1, None),
        (200, 300, 0.9, 1e-2, "bonferroni", 1, None),
        (1000, 100, 0.6, 1e-4, "generalized-bonferroni", 10, None),
        (300, 100, 0.75, 1e-3, "bonferroni", 1, 9),
        (300, 150, 0.75, 1e-3, "generalized-bonferroni", 3, 20),
    ],
)
def test_exact_rate_matches_oracle_simulation(N, n, tau, alpha, method, k, n0):
    prof = Profile(*PROFILE)
    plan = plan_samples(prof, N=N, tau=tau, alpha=alpha, method=method, k=k, n=[n], n0=n0)
    row = plan.table.iloc[0]
    assert row["exact"] and row["rate_se"] == 0.0
    sim, se = _oracle_rate(PROFILE, N, n, tau, alpha, method, k, reps=300, seed=N + n, n0=n0)
    # se of the simulated mean from the exact per-family sd (i.i.d. components)
    se_exact = row["rate_sd"] / math.sqrt(300)
    assert abs(sim - row["rate"]) <= Z * se_exact + 1e-12
    assert se == pytest.approx(se_exact, rel=0.3)


@pytest.mark.parametrize(
    ("N", "n", "tau", "alpha", "method", "k"),
    [
        (200, 100, 0.75, 1e-3, "holm", 1),
        (200, 300, 0.9, 1e-2, "holm", 1),
        (500, 100, 0.75, 1e-3, "generalized-holm", 10),
    ],
)
def test_simulated_rate_matches_independent_oracle_run(N, n, tau, alpha, method, k):
    prof = Profile(*PROFILE)
    plan = plan_samples(prof, N=N, tau=tau, alpha=alpha, method=method, k=k, n=[n], reps=200)
    row = plan.table.iloc[0]
    assert not row["exact"] and row["rate_se"] > 0
    sim, se = _oracle_rate(PROFILE, N, n, tau, alpha, method, k, reps=200, seed=7)
    assert abs(sim - row["rate"]) <= Z * math.hypot(se, row["rate_se"])
    # Holm certifies a superset of Bonferroni: at least the exact Bonferroni-type rate
    bon = "bonferroni" if k == 1 else "generalized-bonferroni"
    low = plan_samples(prof, N=N, tau=tau, alpha=alpha, method=bon, k=k, n=[n]).table
    assert row["rate"] >= low["rate"].iloc[0] - Z * row["rate_se"]


def test_n_needed_is_the_smallest_for_exact_methods():
    dist = stats.beta(30, 1.5)
    plan = plan_samples(
        dist, N=4096, tau=0.75, alpha=1e-3, method="bonferroni", n=[10, 100, 1000], target=0.85
    )
    n = plan.n_needed
    assert 100 < n <= 1000
    at = plan_samples(dist, N=4096, tau=0.75, alpha=1e-3, method="bonferroni", n=[n - 1, n])
    assert at.rate(n) >= 0.85 > at.rate(n - 1)
    assert plan_samples(dist, N=4096, tau=0.75, alpha=1e-3, n=[10], target=0.9).n_needed is None
    with pytest.raises(ValueError, match="not in the plan's grid"):
        plan.rate(7)


def test_array_profile_is_the_family_or_its_distribution():
    p = np.array([0.99] * 90 + [0.6] * 10)
    fixed = plan_samples(p, tau=0.75, alpha=1e-3, method="bonferroni", n=[200])
    assert fixed.N == 100 and "exact" in repr(fixed)
    h = _threshold(200, 100, 0.75, 1e-3, "bonferroni", 1)
    pi = stats.binom.sf(h - 1, 200, p)
    assert fixed.rate(200) == pytest.approx(pi.mean(), rel=1e-12)
    assert fixed.table["rate_sd"].iloc[0] == pytest.approx(np.sqrt(np.sum(pi * (1 - pi))) / 100)
    iid = plan_samples(p, N=1000, tau=0.75, alpha=1e-3, method="bonferroni", n=[200])
    assert iid.N == 1000 and iid.profile.fixed is None


def _pilot(path, true_p, n=20, items=4, size=(40, 50), seed=0):
    rng = np.random.default_rng(seed)
    settings = dict(sigma=0.25, noise="gaussian", n0=10, n=n, seed=0, model="m", num_classes=2)
    with CountsWriter(path, settings) as w:
        for i in range(items):
            p = rng.choice(true_p[0], size=size, p=true_p[1])
            ones = np.ones(size, int)
            w.add(f"i{i}", guess=ones, hits=rng.binomial(n, p), target=ones)
    return path


def test_pilot_profile_predicts_the_true_rate(tmp_path):
    true = (np.array([0.7, 0.9, 0.98, 1.0]), np.array([0.1, 0.2, 0.3, 0.4]))
    path = _pilot(tmp_path / "pilot.mtcounts", true)
    prof = profile_from_pilot(path)
    assert prof.components == 2000 and abs(prof.weights.sum() - 1) < 1e-12
    assert prof.mean() == pytest.approx(true[0] @ true[1], abs=0.01)
    kw = dict(tau=0.75, alpha=1e-3, method="bonferroni", n=[50, 100, 300])
    pred = plan_samples(path, **kw)
    truth = plan_samples(Profile(*true), N=2000, **kw)
    np.testing.assert_allclose(pred.table["rate"], truth.table["rate"], atol=0.03)
    # the plug-in hits / n would call every 20-of-20 component p = 1
    naive = plan_samples(Profile(np.arange(21) / 20, _hist(path)), N=2000, **kw)
    assert (
        np.abs(naive.table["rate"] - truth.table["rate"]).max()
        > np.abs(pred.table["rate"] - truth.table["rate"]).max()
    )


def test_band_and_pilot_bootstrap(tmp_path):
    true = (np.array([0.7, 0.9, 0.98, 1.0]), np.array([0.1, 0.2, 0.3, 0.4]))
    path = _pilot(tmp_path / "pilot.mtcounts", true, size=(10, 20))
    kw = dict(tau=0.75, alpha=1e-3, method="bonferroni", n=[50, 100])
    plain = plan_samples(path, **kw).table
    assert (plain.band_lo <= plain.rate).all() and (plain.rate <= plain.band_hi).all()
    # half width 2 sqrt(rate_sd^2 / items): 4 pilot items by default
    np.testing.assert_allclose(plain.band_hi - plain.rate, plain.rate_sd, rtol=1e-9)
    boot = plan_samples(path, bootstrap=20, **kw)
    assert boot.bootstrap == 20 and (boot.table.band_hi > plain.band_hi).all()
    one = plan_samples(path, items=1, **kw).table
    np.testing.assert_allclose(one.band_hi - one.rate, 2 * one.rate_sd, rtol=1e-9)
    with pytest.raises(ValueError, match="bootstrap needs"):
        plan_samples(stats.beta(30, 1.5), N=10, bootstrap=5, **kw)


def _hist(path):
    from mtcert.stored.counts import read_counts

    h = sum(np.bincount(it.hits.ravel(), minlength=21) for it in read_counts(path))
    return h / h.sum()


def test_plot_and_cli(tmp_path, capsys):
    path = _pilot(tmp_path / "pilot.mtcounts", (np.array([0.9, 1.0]), np.array([0.5, 0.5])))
    plan = plan_samples(path, tau=0.75, alpha=1e-3, n=[20, 100], reps=5, target=0.5)
    fig = plot_plan(plan, measured={100: 0.6})
    assert fig.axes[0].get_xscale() == "log"
    out = tmp_path / "plan"
    argv = ["plan", "--pilot", str(path), "--n", "20,100,200", "--target", "0.8", "--reps", "5",
            "--bootstrap", "2"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "plan.csv").is_file() and (out / "plan.png").is_file()
    assert "smallest n reaching" in capsys.readouterr().out
    assert main(["plan", "--beta", "30,1.5", "--N", "100", "--method", "bonferroni",
                 "--out", str(out), "--no-plot"]) == 0  # fmt: skip
    np.save(tmp_path / "p.npy", np.array([0.9, 0.99]))
    assert main(["plan", "--profile", str(tmp_path / "p.npy"), "--out", str(out),
                 "--no-plot", "--method", "bonferroni"]) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--beta", "30,1.5"], "N is required"),
        (["--beta", "1,2,3", "--N", "5"], "two numbers"),
        (["--beta", "30,1.5", "--N", "5", "--target", "0"], "target"),
        (["--beta", "30,1.5", "--N", "5", "--tau", "0.3"], "tau"),
        (["--beta", "30,1.5", "--N", "0"], "N must be"),
        (["--profile", "/nonexistent.npy"], "No such file"),
    ],
)
def test_cli_errors(tmp_path, capsys, argv, match):
    assert main(["plan", *argv, "--out", str(tmp_path), "--no-plot"]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(profile=[1.5]), "profile"),
        (dict(profile=[]), "empty"),
        (dict(profile=[0.9], n=[]), "n is empty"),
        (dict(profile=[0.9], n=[0]), "n must be"),
        (dict(profile=[0.9], reps=0), "reps"),
        (dict(profile=[0.9], seed=-1), "seed"),
        (dict(profile=[0.9], method=2), "method"),
        (dict(profile=[0.9], n0=0), "n0"),
        (dict(profile=[0.9], target=True), "target"),
        (dict(profile=[0.9], items=0), "items"),
        (dict(profile=[0.9], bootstrap=-1), "bootstrap"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_samples(**{"tau": 0.75, "alpha": 1e-3, **kwargs})


# -- Holm between grid points, never above Bonferroni ----------------------------------------
@pytest.mark.parametrize(("method", "counterpart"), list(SUPERSET_OF.items()))
def test_superset_methods_certify_everything_their_counterpart_does(method, counterpart):
    """What makes the counterpart's exact n an upper bound: on every data set the method
    certifies a superset (random families, several sizes and levels)."""
    rng = np.random.default_rng(11)
    k = 3 if method.startswith("generalized") else 1
    for N, alpha, tau in ((5, 0.2, 0.6), (40, 0.05, 0.75), (300, 1e-3, 0.75)):
        hits = rng.binomial(60, rng.beta(8, 1, size=(50, N)))
        kw = dict(tau=tau, alpha=alpha, k=k, axis=-1)
        big = segcertify_hits(np.zeros_like(hits), hits, 60, method=method, **kw)
        small = segcertify_hits(np.zeros_like(hits), hits, 60, method=counterpart, **kw)
        assert (big.reject | ~small.reject).all()


@pytest.mark.parametrize(
    ("N", "tau", "alpha", "method", "k", "target", "n0"),
    [
        (1000, 0.75, 1e-3, "holm", 1, 0.8, None),  # the grid alone answered 150 > 119
        (300, 0.75, 1e-3, "holm", 1, 0.9, None),
        (200, 0.9, 1e-2, "holm", 1, 0.5, None),
        (500, 0.75, 1e-3, "generalized-holm", 5, 0.85, None),
        (300, 0.75, 1e-3, "holm", 1, 0.7, 9),
        (50, 0.6, 0.05, "hochberg", 1, 0.9, None),
    ],
)
def test_holm_plan_never_exceeds_bonferroni_and_is_searched_between_grid_points(
    N, tau, alpha, method, k, target, n0
):
    dist = stats.beta(30, 1.5)
    kw = dict(N=N, tau=tau, alpha=alpha, k=k, target=target, n0=n0)
    bon = "generalized-bonferroni" if k > 1 else "bonferroni"
    exact = plan_samples(dist, method=bon, **kw)
    plan = plan_samples(dist, method=method, reps=40, **kw)
    assert exact.n_needed is not None and plan.n_bound == exact.n_needed
    assert plan.n_needed <= exact.n_needed
    lo, hi = plan.n_interval
    assert lo <= plan.n_needed and (hi is None or plan.n_needed <= hi <= exact.n_needed)
    assert exact.n_interval == (exact.n_needed, exact.n_needed)
    # the answer is the bisection's: its simulated rate reaches the target, one less does not
    prof = plan.profile
    from mtcert.stored.planning import _simulated_rates

    args = (plan.N, tau, alpha, method, k, n0, 40, 0)
    below = _simulated_rates(prof, plan.n_needed - 1, *args).mean()
    assert below < target or plan.n_needed - 1 in plan.table.n.to_numpy()
    if plan.n_needed < exact.n_needed:
        assert _simulated_rates(prof, plan.n_needed, *args).mean() >= target
    assert "interval" in repr(plan)


def test_holm_plan_against_an_independent_oracle_simulation():
    """At the planned n an independent oracle run reaches the target within its Monte Carlo
    error, and well below the interval it does not."""
    prof = Profile(*PROFILE)
    N, tau, alpha, target = 300, 0.75, 1e-3, 0.75
    plan = plan_samples(prof, N=N, tau=tau, alpha=alpha, method="holm", target=target, reps=100)
    rate, se = _oracle_rate(PROFILE, N, plan.n_needed, tau, alpha, "holm", 1, reps=300, seed=3)
    assert rate >= target - Z * math.hypot(se, 0.002)
    lo = plan.n_interval[0]
    rate, se = _oracle_rate(PROFILE, N, max(1, lo - 10), tau, alpha, "holm", 1, 300, seed=4)
    assert rate < target + Z * se


def test_plan_cli_prints_the_interval(tmp_path, capsys):
    code = main(["plan", "--beta", "30,1.5", "--N", "300", "--method", "holm", "--target",
                 "0.9", "--reps", "20", "--out", str(tmp_path), "--no-plot"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "searched between grid points" in out and "never more than" in out
