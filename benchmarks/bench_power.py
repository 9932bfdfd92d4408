"""pytest-benchmark: power-study grids (``make bench``).

The full-preset timings against the issue's targets (fig2a <= 10 s, fig2c <= 30 s)
and peak memory are printed by ``compare_power.py``; here: per-method costs of
one fig2a grid point and of one N = 1e6 fig2c point, serially.
"""

import numpy as np
import pytest

from mtcert.sim.oracle import BinaryOracle
from mtcert.sim.power import run_grid

FIG2A = dict(gamma=0.05, N=100, n_bad=1, n0=100, n=100, alpha=0.001, tau=0.75, reps=600, workers=1)
FIG2C = dict(gamma=0.05, N=10**6, n_bad=0, n0=1000, n=1000, alpha=0.1, tau=0.9, reps=1, workers=1)


@pytest.mark.benchmark(group="fig2a-point")
@pytest.mark.parametrize(
    "method", ["jointclass", "indivclass", "segcertify-holm", "segcertify-bonferroni"]
)
def test_fig2a_point(benchmark, method):
    benchmark(run_grid, method, **FIG2A)


@pytest.mark.benchmark(group="fig2c-point")
@pytest.mark.parametrize("method", ["segcertify-holm", "segcertify-bonferroni"])
def test_fig2c_point_N_1e6(benchmark, method):
    benchmark(run_grid, method, **FIG2C)


@pytest.mark.benchmark(group="oracle")
def test_oracle_guess_hits_N_1e6(benchmark):
    oracle = BinaryOracle(10**6, 0.05)
    benchmark(oracle.sample_guess_hits, 1000, 1000, rng=np.random.default_rng(0))


@pytest.mark.benchmark(group="oracle")
def test_oracle_joint_mode_fig2a_point(benchmark):
    oracle = BinaryOracle(100, 0.05, 1)
    benchmark(oracle.sample_joint_mode, 100, rng=np.random.default_rng(0), reps=600)
