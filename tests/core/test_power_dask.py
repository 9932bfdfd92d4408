"""Scale-out through Dask: a local cluster's executor gives the serial results."""

import pandas as pd
import pytest

from mtcert.sim.power import run_grid

pytestmark = pytest.mark.dask


@pytest.mark.slow  # starts a local Dask cluster
def test_dask_executor_matches_serial():
    distributed = pytest.importorskip("distributed")
    kw = dict(
        method=["jointclass", "indivclass", "segcertify-holm", "segcertify-bonferroni"],
        gamma=[0.0, 0.04, 0.08],
        N=[50, 200],
        n_bad=1,
        n0=60,
        n=60,
        alpha=0.01,
        tau=0.75,
        reps=20,
        seed=7,
    )
    serial = run_grid(**kw, workers=1).drop(columns="runtime")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        df = run_grid(**kw, executor=client.get_executor(), workers=2)
    pd.testing.assert_frame_equal(df.drop(columns="runtime"), serial)
