"""Power studies on any oracle: ``run_grid(oracle=...)`` and the ``Oracle`` subclass contract.

``run_grid`` on a multi-class law is checked against a brute-force simulation that draws
class counts (or joint label vectors) with the oracle's own samplers and certifies them with
``segcertify`` / ``jointclass``.  The two are independent random streams, so rates are
compared within 5 standard errors of their difference.  A user subclass that only gives its
law (``truth``, ``class_probabilities``) draws exactly what ``MultiClassOracle`` draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtcert.certify.cohen import jointclass
from mtcert.certify.segmentation import segcertify
from mtcert.sim.oracle import BinaryOracle, MultiClassOracle, Oracle
from mtcert.sim.power import run_grid

Z = 5.0


class Stripes(Oracle):
    """Component i has true class i % 3, shown with probability ``q``; top level: it pickles."""

    n_classes = 3

    def __init__(self, N, q=0.9):
        self.n_components, self.q = N, q

    @property
    def truth(self):
        return np.arange(self.n_components) % 3

    def class_probabilities(self, lo=0, hi=None):
        truth = self.truth[lo:hi]
        p = np.full((truth.size, 3), (1 - self.q) / 2)
        p[np.arange(truth.size), truth] = self.q
        return p


def stripes_factory(N, gamma, n_bad, rng):
    """A random law per grid point: a top-level function, so it pickles."""
    return Stripes(N, q=1 - gamma * rng.uniform(0.5, 1.0))


def _law(N=40, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([30, 1, 1, 1], size=N)
    p[: N // 4] = rng.dirichlet([3, 2, 1, 1], size=N // 4)  # weaker components
    return p


def _brute_segcertify(oracle, n0, n, tau, alpha, reps, seed):
    rng = np.random.default_rng(seed)
    rate, false = [], []
    for _ in range(reps):
        cert = segcertify(
            oracle.sample_counts(n0, rng=rng), oracle.sample_counts(n, rng=rng),
            tau=tau, alpha=alpha, method="holm",
        )  # fmt: skip
        guess = np.where(cert.reject, cert.labels, 0)
        rate.append(cert.reject.mean())
        false.append((cert.reject & (oracle.label_probabilities(guess) <= tau)).mean())
    return np.array(rate), np.array(false)


def test_multiclass_oracle_segcertify_matches_brute_force():
    oracle = MultiClassOracle(_law())
    n0, n, tau, alpha, reps = 30, 60, 0.7, 0.05, 400
    df = run_grid("segcertify-holm", oracle=oracle, n0=n0, n=n, tau=tau, alpha=alpha,
                  reps=reps, workers=1)  # fmt: skip
    rate, _ = _brute_segcertify(oracle, n0, n, tau, alpha, reps, seed=1)
    row = df.iloc[0]
    sd = np.hypot(row.stderr, rate.std(ddof=1) / np.sqrt(reps))
    assert abs(row.certified_rate - rate.mean()) <= Z * sd, (row.certified_rate, rate.mean(), sd)
    assert row.N == oracle.n_components and np.isnan(row.gamma) and np.isnan(row.n_bad)


def test_custom_subclass_segcertify_matches_brute_force_and_counts_truth():
    oracle = Stripes(30, q=0.8)
    n0, n, tau, alpha, reps = 20, 80, 0.6, 0.05, 300
    df = run_grid("segcertify-holm", oracle=oracle, n0=n0, n=n, tau=tau, alpha=alpha,
                  reps=reps, workers=1)  # fmt: skip
    rate, _ = _brute_segcertify(oracle, n0, n, tau, alpha, reps, seed=2)
    row = df.iloc[0]
    sd = np.hypot(row.stderr, rate.std(ddof=1) / np.sqrt(reps))
    assert abs(row.certified_rate - rate.mean()) <= Z * sd
    # true labels vary by component here (0, 1, 2, ...): a certified label equals the
    # truth except when a wrong class (probability 0.1 each) would be certified at tau = 0.6
    assert row.certified_correct_rate == pytest.approx(row.certified_rate)


def test_multiclass_oracle_jointclass_matches_brute_force():
    p = np.tile([0.97, 0.02, 0.01], (5, 1))
    oracle = MultiClassOracle(p)
    n0, n, alpha, reps = 20, 50, 0.05, 400
    df = run_grid("jointclass", oracle=oracle, n0=n0, n=n, alpha=alpha, reps=reps, workers=1)
    rng = np.random.default_rng(3)
    brute = [
        bool(
            jointclass(
                oracle.sample_labels(n0, rng=rng), oracle.sample_labels(n, rng=rng), alpha=alpha
            ).certified
        )
        for _ in range(reps)
    ]
    mean = np.mean(brute)
    sd = np.hypot(df.stderr[0], np.std(brute, ddof=1) / np.sqrt(reps))
    assert abs(df.certified_rate[0] - mean) <= Z * sd, (df.certified_rate[0], mean, sd)


def test_segcertify_on_a_multiclass_law_keeps_its_fwer():
    # Worst case for the null: every component's true class has probability exactly tau.
    tau, alpha, reps = 0.75, 0.1, 400
    oracle = MultiClassOracle(np.tile([tau, 1 - tau], (20, 1)))
    df = run_grid(["segcertify-holm", "segcertify-bonferroni"], oracle=oracle, n0=50, n=100,
                  tau=tau, alpha=alpha, reps=reps, workers=1)  # fmt: skip
    bound = alpha * reps + Z * np.sqrt(alpha * (1 - alpha) * reps)
    assert (df.type1_errors <= bound).all(), df.type1_errors.tolist()


def test_binary_oracle_instance_reports_no_gamma():
    df = run_grid("segcertify-holm", oracle=BinaryOracle(50, 0.05), reps=3, workers=1)
    assert df.N[0] == 50 and np.isnan(df.gamma[0])


def test_subclass_draws_what_multiclass_oracle_draws():
    mine, theirs = Stripes(7), MultiClassOracle(Stripes(7).class_probabilities(),
                                                truth=np.arange(7) % 3)  # fmt: skip
    for name, kw in [
        ("sample_guess_hits", dict(n0=10, n=20, reps=4)),
        ("sample_counts", dict(n=15, size=3)),
        ("sample_labels", dict(n=6)),
    ]:
        a = getattr(mine, name)(**kw, rng=np.random.default_rng(5))
        b = getattr(theirs, name)(**kw, rng=np.random.default_rng(5))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    a = mine.sample_joint_mode(30, rng=np.random.default_rng(6), reps=5)
    b = theirs.sample_joint_mode(30, rng=np.random.default_rng(6), reps=5)
    np.testing.assert_array_equal(a.probability, b.probability)
    np.testing.assert_array_equal(mine.correct_probabilities(), theirs.correct_probabilities())
    labels = np.array([[0, 1, 2, 0, 1, 2, 5], [1, 1, 1, 1, 1, 1, -1]])
    np.testing.assert_array_equal(
        mine.label_probabilities(labels), theirs.label_probabilities(labels)
    )


def test_factory_sweeps_the_grid_reproducibly_on_every_backend():
    kw = dict(method=["segcertify-holm", "jointclass"], gamma=[0.05, 0.2], N=[12, 30],
              oracle=stripes_factory, n0=20, n=40, reps=5)  # fmt: skip
    serial = run_grid(**kw, workers=1).drop(columns="runtime")
    processes = run_grid(**kw, workers=2, backend="processes").drop(columns="runtime")
    pd.testing.assert_frame_equal(serial, processes)
    pd.testing.assert_frame_equal(serial, run_grid(**kw, workers=2).drop(columns="runtime"))
    assert sorted(set(serial.gamma)) == [0.05, 0.2] and sorted(set(serial.N)) == [12, 30]


def test_oracle_instance_pickles_to_processes():
    kw = dict(method="segcertify-holm", oracle=Stripes(20), n0=20, n=40, reps=4)
    serial = run_grid(**kw, workers=1).drop(columns="runtime")
    processes = run_grid(**kw, workers=2, backend="processes").drop(columns="runtime")
    pd.testing.assert_frame_equal(serial, processes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(oracle=Stripes(10), gamma=0.1), "gamma"),
        (dict(oracle=Stripes(10), n_bad=1), "n_bad"),
        (dict(oracle=Stripes(10), N=11), "N must be left out or equal"),
        (dict(N=10), "needs gamma"),
        (dict(gamma=0.1), "needs N"),
        (dict(oracle=np.ones((3, 2)), N=3, gamma=0.1), "oracle must be"),
        (dict(oracle=lambda N, g, b, rng: Stripes(N + 1), N=10, gamma=0.1), "factory"),
        (dict(oracle=lambda N, g, b, rng: "no", N=10, gamma=0.1), "factory"),
    ],
)
def test_oracle_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_grid("segcertify-holm", reps=2, workers=1, **kwargs)


def test_oracle_instance_with_its_own_N_is_accepted():
    a = run_grid("segcertify-holm", oracle=Stripes(10), N=10, reps=2, workers=1)
    b = run_grid("segcertify-holm", oracle=Stripes(10), reps=2, workers=1)
    pd.testing.assert_frame_equal(a.drop(columns="runtime"), b.drop(columns="runtime"))
