"""Tests for mtcert.sim.oracle: exact laws of the simulated draws, against closed forms
and brute-force references built from materialised samples."""

import numpy as np
import pytest
from scipy import stats

from mtcert.sim.oracle import BinaryOracle, MultiClassOracle

# Every Monte Carlo check below uses a fixed seed and a 5-sigma (or p > 1e-6)
# tolerance: a false alarm would need a < 1e-6 event, and a fixed seed makes the
# outcome deterministic.
Z = 5.0


def close_to(freq, prob, reps):
    sd = np.sqrt(np.maximum(prob * (1 - prob), 1e-12) / reps)
    return np.all(np.abs(freq - prob) <= Z * sd + 1e-12)


# -- BinaryOracle ---------------------------------------------------------------------


def test_binary_probabilities_and_clamping():
    o = BinaryOracle(N=5, gamma=0.05, n_bad=2)
    np.testing.assert_allclose(o.correct_probabilities(), [0.75, 0.75, 0.95, 0.95, 0.95])
    assert BinaryOracle(3, 0.3, 1).q_bad == 0.0  # 1 - 5 * 0.3 clamped to 0
    assert BinaryOracle(3, 0.0, 3).q_bad == 1.0
    np.testing.assert_array_equal(o.truth, np.ones(5, dtype=np.int64))
    labels = np.array([[1, 0, 1, 0, 2]])
    np.testing.assert_allclose(o.label_probabilities(labels), [[0.75, 0.25, 0.95, 0.05, 0.0]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(N=0, gamma=0.1), "N"),
        (dict(N=True, gamma=0.1), "N"),
        (dict(N=5, gamma=1.5), "gamma"),
        (dict(N=5, gamma=float("nan")), "gamma"),
        (dict(N=5, gamma="0.1"), "gamma"),
        (dict(N=5, gamma=0.1, n_bad=6), "n_bad"),
        (dict(N=5, gamma=0.1, n_bad=-1), "n_bad"),
        (dict(N=5, gamma=0.1, bad_factor=-1.0), "bad_factor"),
    ],
)
def test_binary_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BinaryOracle(**kwargs)


def test_sampling_argument_validation():
    o = BinaryOracle(4, 0.1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rng"):
        o.sample_guess_hits(10, 10, rng=0)
    with pytest.raises(ValueError, match="n0"):
        o.sample_guess_hits(0, 10, rng=rng)
    with pytest.raises(ValueError, match="n"):
        o.sample_guess_hits(10, -1, rng=rng)
    with pytest.raises(ValueError, match="reps"):
        o.sample_guess_hits(10, 10, rng=rng, reps=0)
    with pytest.raises(ValueError, match="labels"):
        o.label_probabilities(np.zeros(3))


@pytest.mark.parametrize("n0", [10, 11, 2])
def test_binary_guess_law_with_pessimistic_ties(n0):
    # P(guess correct) = P(Bin(n0, q) > n0 / 2): a tie goes to the wrong class.
    q = np.array([0.5, 0.6, 0.95])
    reps = 40_000
    o = MultiClassOracle(np.stack([1 - q, q], axis=1), truth=np.ones(3, dtype=np.int64))
    b = BinaryOracle(N=3, gamma=0.4, n_bad=0)  # q = 0.6 everywhere
    rng = np.random.default_rng(1)
    guess, _ = b.sample_guess_hits(n0, 5, rng=rng, reps=reps)
    expected = stats.binom.sf(n0 // 2, n0, 0.6)  # count > n0/2
    assert close_to((guess == 1).mean(axis=0), expected, reps)
    # The multi-class oracle (argmax, lowest index on ties) follows the same law.
    guess, _ = o.sample_guess_hits(n0, 5, rng=rng, reps=reps)
    assert close_to((guess == 1).mean(axis=0), stats.binom.sf(n0 // 2, n0, q), reps)


def test_binary_hits_law_given_guess():
    o = BinaryOracle(N=2, gamma=0.3, n_bad=1)  # q = (0, 0.7): the bad one is always wrong
    rng = np.random.default_rng(2)
    reps = 50_000
    guess, hits = o.sample_guess_hits(1, 20, rng=rng, reps=reps)
    assert (guess[:, 0] == 0).all()  # q_bad = 0: never guessed right
    assert (hits[:, 0] == 20).all()  # ... and the wrong class always hits
    right = guess[:, 1] == 1
    for mask, p in ((right, 0.7), (~right, 0.3)):
        h = hits[mask, 1]
        observed = np.bincount(h, minlength=21) / h.size
        assert close_to(observed, stats.binom.pmf(np.arange(21), 20, p), h.size)


def test_sampling_is_reproducible_and_shapes():
    o = BinaryOracle(N=7, gamma=0.05, n_bad=1)
    a = o.sample_guess_hits(100, 100, rng=np.random.default_rng(5), reps=3)
    b = o.sample_guess_hits(100, 100, rng=np.random.default_rng(5), reps=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (3, 7) and a[0].dtype == np.int8 and a[1].dtype == np.int32
    g, h = o.sample_guess_hits(100, 100, rng=np.random.default_rng(5))
    assert g.shape == (7,) and h.shape == (7,)
    assert ((h >= 0) & (h <= 100)).all()


def test_large_N_is_drawn_in_chunks():
    # More columns than one chunk: the result must still cover every component.
    o = BinaryOracle(N=(1 << 20) + 3, gamma=0.0, n_bad=2)
    g, h = o.sample_guess_hits(3, 7, rng=np.random.default_rng(0), reps=2)
    assert g.shape == (2, (1 << 20) + 3)
    assert (g == 1).all() and (h == 7).all()  # gamma = 0: always right


def test_sample_counts_and_labels_laws():
    o = BinaryOracle(N=3, gamma=0.1, n_bad=1)
    rng = np.random.default_rng(3)
    c = o.sample_counts(50, rng=rng, size=4000)
    assert c.shape == (4000, 3, 2)
    assert (c.sum(-1) == 50).all()
    assert close_to(c[..., 1].mean(0) / 50, o.correct_probabilities(), 4000 * 50)
    labels = o.sample_labels(20_000, rng=rng)
    assert labels.shape == (20_000, 3)
    assert close_to(labels.mean(0), o.correct_probabilities(), 20_000)


# -- MultiClassOracle ---------------------------------------------------------------


def test_multiclass_validation_and_truth():
    with pytest.raises(ValueError, match="sum to 1"):
        MultiClassOracle([[0.5, 0.4]])
    with pytest.raises(ValueError, match="shape"):
        MultiClassOracle([0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MultiClassOracle([[1.5, -0.5]])
    with pytest.raises(ValueError, match="truth"):
        MultiClassOracle([[0.5, 0.5]], truth=[2])
    o = MultiClassOracle([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_array_equal(o.truth, [1, 0])  # lowest index on ties
    np.testing.assert_allclose(o.correct_probabilities(), [0.8, 0.5])
    assert "N=2" in repr(o)


def test_multiclass_guess_and_hits_against_bruteforce():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.45, 0.45]])
    o = MultiClassOracle(p)
    rng = np.random.default_rng(4)
    reps, n0, n = 30_000, 6, 9
    guess, hits = o.sample_guess_hits(n0, n, rng=rng, reps=reps)
    # Reference: argmax of multinomial counts from materialised labels.
    lab = o.sample_labels(reps * n0, rng=np.random.default_rng(5)).reshape(reps, n0, 2)
    counts = np.stack([(lab == c).sum(1) for c in range(3)], axis=-1)
    ref = counts.argmax(-1)
    for i in range(2):
        f = np.bincount(guess[:, i], minlength=3) / reps
        r = np.bincount(ref[:, i], minlength=3) / reps
        assert np.all(np.abs(f - r) <= Z * np.sqrt(2 * np.maximum(r * (1 - r), 1e-4) / reps))
    # Hits given the guess follow Bin(n, p[i, guess]).
    sel = guess[:, 1] == 2
    observed = np.bincount(hits[sel, 1], minlength=n + 1) / sel.sum()
    assert close_to(observed, stats.binom.pmf(np.arange(n + 1), n, 0.45), sel.sum())


# -- joint mode (JointClass) ------------------------------------------------------------


def _bruteforce_mode_probability(oracle, n0, reps, seed):
    """Mode of n0 materialised joint draws (ties: first drawn) and its probability."""
    N, C = oracle.n_components, oracle.n_classes
    lab = oracle.sample_labels(n0 * reps, rng=np.random.default_rng(seed)).reshape(reps, n0, N)
    codes = (lab * C ** np.arange(N)).sum(-1)
    out = np.empty(reps)
    wrong = np.empty(reps, dtype=int)
    for r in range(reps):
        _, first, cnt = np.unique(codes[r], return_index=True, return_counts=True)
        row = lab[r, first[cnt == cnt.max()].min()]
        out[r] = oracle.label_probabilities(row).prod()
        wrong[r] = (row != oracle.truth).sum()
    return out, wrong


@pytest.mark.parametrize(
    "oracle",
    [
        BinaryOracle(N=3, gamma=0.15, n_bad=1),
        MultiClassOracle([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]]),
    ],
    ids=["binary", "multiclass"],
)
def test_joint_mode_law_matches_bruteforce(oracle):
    reps, n0 = 20_000, 5
    mode = oracle.sample_joint_mode(n0, rng=np.random.default_rng(0), reps=reps)
    ref, ref_wrong = _bruteforce_mode_probability(oracle, n0, reps, seed=1)
    values = np.unique(np.round(ref, 12))
    for v in values:
        f = np.isclose(mode.probability, v).mean()
        r = np.isclose(ref, v).mean()
        assert abs(f - r) <= Z * np.sqrt(2 * max(r * (1 - r), 1e-4) / reps), v
    assert abs(mode.n_wrong.mean() - ref_wrong.mean()) <= Z * np.sqrt(
        2 * ref_wrong.var() / reps + 1e-6
    )
    assert ((mode.mode_count >= 1) & (mode.mode_count <= n0)).all()


def test_joint_mode_edge_cases():
    rng = np.random.default_rng(0)
    m = BinaryOracle(N=50, gamma=0.0, n_bad=3).sample_joint_mode(7, rng=rng, reps=4)
    np.testing.assert_array_equal(m.probability, 1.0)
    np.testing.assert_array_equal(m.n_wrong, 0)
    np.testing.assert_array_equal(m.mode_count, 7)
    # gamma = 1: every component is always wrong, so the mode is the all-wrong vector.
    m = BinaryOracle(N=5, gamma=1.0, n_bad=2).sample_joint_mode(3, rng=rng, reps=2)
    np.testing.assert_array_equal(m.probability, 1.0)
    np.testing.assert_array_equal(m.n_wrong, 5)
    # 0-d results without reps
    m = BinaryOracle(N=5, gamma=0.2).sample_joint_mode(3, rng=rng)
    assert np.ndim(m.probability) == 0


def test_joint_mode_large_N_is_cheap_and_exact_in_the_limit():
    # With N = 1e6 and gamma = 0.05 every draw is distinct; the mode is the first
    # draw, whose number of wrong components is Bin(N, gamma).
    o = BinaryOracle(N=10**6, gamma=0.05)
    m = o.sample_joint_mode(3, rng=np.random.default_rng(0), reps=20)
    np.testing.assert_array_equal(m.mode_count, 1)
    assert np.all(np.abs(m.n_wrong - 5e4) < Z * np.sqrt(1e6 * 0.05 * 0.95))
    np.testing.assert_array_equal(m.probability, 0.0)  # underflows, as it should
