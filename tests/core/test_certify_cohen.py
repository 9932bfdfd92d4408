"""Cohen et al.'s PREDICT / CERTIFY and the paper's JOINTCLASS / INDIVCLASS baselines."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from mtcert.certify import ABSTAIN
from mtcert.certify.cohen import certify, indivclass, jointclass, predict


def cohen_certify_ref(c0, c, alpha, sigma):
    """Cohen et al.'s released code, scalar: proportion_confint(alpha=2 alpha)[0]."""
    guess = int(np.argmax(c0))
    n_a, n = int(c[guess]), int(np.sum(c))
    p_lower = proportion_confint(n_a, n, alpha=2 * alpha, method="beta")[0]
    if p_lower > 0.5:
        return guess, p_lower, sigma * stats.norm.ppf(p_lower)
    return ABSTAIN, p_lower, np.nan


def test_predict_against_scipy_binomtest():
    rng = np.random.default_rng(0)
    counts = rng.multinomial(60, [0.5, 0.3, 0.15, 0.05], size=200)
    counts[:5] = [[20, 20, 10, 10]] * 5  # tied top two -> p-value 1
    res = predict(counts, alpha=0.01)
    for row, lab, pv in zip(counts, res.label, res.pvalue, strict=True):
        top2 = np.sort(row)[-2:]
        ref = stats.binomtest(int(top2[1]), int(top2.sum()), 0.5).pvalue
        assert pv == pytest.approx(ref, rel=1e-10)
        assert lab == (int(np.argmax(row)) if ref <= 0.01 else ABSTAIN)
    assert np.all(res.label[:5] == ABSTAIN)
    assert "PredictResult" in repr(res)


def test_predict_edge_cases():
    assert predict([0, 0, 0], alpha=0.05).label == ABSTAIN
    one = predict([30], alpha=0.05)  # a single class: n_B = 0
    assert one.label == 0 and one.pvalue == pytest.approx(2 * 0.5**30)
    assert predict([3, 2], alpha=0.05).pvalue == pytest.approx(1.0)
    with pytest.raises(ValueError, match="alpha"):
        predict([1, 2], alpha=1.0)
    with pytest.raises(ValueError, match="counts"):
        predict([-1, 2], alpha=0.1)
    with pytest.raises(ValueError, match="class axis"):
        predict(np.zeros((3, 0), int), alpha=0.1)


def test_certify_against_cohen_reference():
    rng = np.random.default_rng(1)
    p = rng.dirichlet([2, 1, 1], size=100)
    c0 = np.array([rng.multinomial(10, q) for q in p])
    c = np.array([rng.multinomial(int(rng.integers(20, 200)), q) for q in p])
    res = certify(c0, c, alpha=0.001, sigma=0.5)
    for i in range(len(p)):
        lab, p_lower, r = cohen_certify_ref(c0[i], c[i], 0.001, 0.5)
        assert res.label[i] == lab
        assert res.p_lower[i] == pytest.approx(p_lower, rel=1e-10, abs=1e-300)
        if lab == ABSTAIN:
            assert np.isnan(res.radius[i])
        else:
            assert res.radius[i] == pytest.approx(r, rel=1e-10)
    assert "CertifyResult" in repr(res)


def test_certify_noise_models_and_scalar_input():
    res = certify([5, 1], [99, 1], alpha=0.01, sigma=2.0, noise="laplace")
    p_lower = stats.beta.ppf(0.01, 99, 2)
    assert res.label == 0
    assert res.radius == pytest.approx(-2.0 * np.log(2 * (1 - p_lower)), rel=1e-10)
    res = certify([5, 1], [99, 1], alpha=0.01, sigma=2.0, noise="uniform")
    assert res.radius == pytest.approx(4.0 * (p_lower - 0.5), rel=1e-10)
    with pytest.raises(ValueError, match="noise"):
        certify([5, 1], [99, 1], alpha=0.01, noise="cauchy")


def test_certify_validation():
    c = np.array([[3, 4]])
    with pytest.raises(ValueError, match="independent"):
        certify(c, c, alpha=0.01)
    with pytest.raises(ValueError, match="n = 0"):
        certify([[1, 0]], [[0, 0]], alpha=0.01)
    with pytest.raises(ValueError, match="same shape"):
        certify([[1, 0]], [[1, 0, 0]], alpha=0.01)
    with pytest.raises(ValueError, match="sigma"):
        certify([[1, 0]], [[1, 0]], alpha=0.01, sigma=-1)


def test_jointclass_against_counter_reference():
    rng = np.random.default_rng(2)
    reps, n0, n, N = 7, 30, 80, 5
    flip0 = rng.random((reps, n0, N)) < 0.04
    flip = rng.random((reps, n, N)) < 0.04
    truth = rng.integers(0, 3, size=(reps, 1, N))
    s0 = np.where(flip0, 9, truth)
    s = np.where(flip, 9, truth)
    res = jointclass(s0, s, alpha=0.01, sigma=0.25)
    assert res.labels.shape == (reps, N) and res.certified.shape == (reps,)
    for b in range(reps):
        vectors = Counter(map(tuple, s0[b]))
        guess = max(vectors, key=vectors.get)
        if list(vectors.values()).count(vectors[guess]) == 1:
            hits = sum(tuple(r) == guess for r in s[b])
            assert res.hits[b] == hits
        hits = int(res.hits[b])
        p_lower = proportion_confint(hits, n, alpha=0.02, method="beta")[0]
        assert res.p_lower[b] == pytest.approx(p_lower, rel=1e-10, abs=1e-300)
        if p_lower > 0.5:
            assert res.certified[b] and np.all(res.labels[b] == truth[b, 0])
            assert res.radius[b] == pytest.approx(0.25 * stats.norm.ppf(p_lower), rel=1e-10)
        else:
            assert not res.certified[b] and np.all(res.labels[b] == ABSTAIN)
            assert np.isnan(res.radius[b])


def test_jointclass_single_and_validation():
    s0 = np.array([[1, 2]] * 5)
    s = np.array([[1, 2]] * 50)
    res = jointclass(s0, s, alpha=0.001)
    assert res.certified and res.hits == 50 and res.labels.tolist() == [1, 2]
    assert "JointClassResult" in repr(res)
    with pytest.raises(ValueError, match="independent"):
        jointclass(s, s, alpha=0.01)
    with pytest.raises(ValueError, match="agree"):
        jointclass(s0, np.array([[1, 2, 3]]), alpha=0.01)
    with pytest.raises(ValueError, match="shape"):
        jointclass(np.array([1, 2]), np.array([1, 2]), alpha=0.01)
    with pytest.raises(ValueError, match="non-negative"):
        jointclass(s0 - 2, s, alpha=0.01)


def test_indivclass_against_per_component_reference():
    rng = np.random.default_rng(3)
    reps, N = 6, 12
    p = np.where(rng.random((reps, N, 1)) < 0.9, [0.97, 0.02, 0.01], [0.6, 0.3, 0.1])
    c0 = np.array([[rng.multinomial(10, q) for q in row] for row in p])
    c = np.array([[rng.multinomial(300, q) for q in row] for row in p])
    res = indivclass(c0, c, alpha=0.01, sigma=0.5, axis=-1)
    assert res.alpha_per_test == pytest.approx(0.01 / N)
    assert res.certified.shape == (reps,) and res.labels.shape == (reps, N)
    for b in range(reps):
        refs = [cohen_certify_ref(c0[b, i], c[b, i], 0.01 / N, 0.5) for i in range(N)]
        ok = all(r[0] != ABSTAIN for r in refs)
        assert res.certified[b] == ok
        if ok:
            assert res.labels[b].tolist() == [r[0] for r in refs]
            assert res.radius[b] == pytest.approx(min(r[2] for r in refs), rel=1e-10)
        else:
            assert np.all(res.labels[b] == ABSTAIN) and np.isnan(res.radius[b])
    assert res.certified.any() and not res.certified.all()
    one = indivclass(c0[0], c[0], alpha=0.01, sigma=0.5)
    assert one.certified == res.certified[0]
    np.testing.assert_array_equal(one.labels, res.labels[0])
    # axis=None on a 2-D component grid: one family of all reps * N components
    allc = indivclass(c0, c, alpha=0.01, sigma=0.5)
    assert allc.labels.shape == (reps, N) and allc.alpha_per_test == pytest.approx(0.01 / 72)
    assert "IndivClassResult" in repr(allc)
    with pytest.raises(ValueError, match="axis"):
        indivclass(c0, c, alpha=0.01, axis=2)


# -- streaming forms: indivclass_hits / jointclass_hits ---------------------------------


def test_indivclass_hits_equals_indivclass_on_counts():
    from mtcert.certify.cohen import indivclass_hits
    from mtcert.sim.oracle import BinaryOracle

    o = BinaryOracle(N=30, gamma=0.08, n_bad=2)
    guess, hits = o.sample_guess_hits(50, 50, rng=np.random.default_rng(0), reps=400)
    res = indivclass_hits(guess, hits, 50, alpha=0.01, sigma=0.5, axis=-1)
    counts0 = np.stack([guess == 0, guess == 1], axis=-1).astype(np.int64)
    counts = np.stack(
        [np.where(guess == 0, hits, 50 - hits), np.where(guess == 1, hits, 50 - hits)], -1
    )
    ref = indivclass(counts0, counts, alpha=0.01, sigma=0.5, axis=-1)
    for field in ("labels", "certified", "component_labels", "p_lower"):
        np.testing.assert_array_equal(getattr(res, field), getattr(ref, field), err_msg=field)
    np.testing.assert_allclose(res.radius, ref.radius)
    assert 0 < np.mean(res.certified) < 1  # both outcomes occur
    # p_lower per component is the Clopper–Pearson bound at alpha / N (statsmodels)
    h = int(hits[0, 0])
    ref_p = proportion_confint(h, 50, alpha=2 * 0.01 / 30, method="beta")[0]
    assert res.p_lower[0, 0] == pytest.approx(ref_p, rel=1e-10, abs=1e-300)


def test_indivclass_hits_per_component_n_and_validation():
    from mtcert.certify.cohen import indivclass_hits

    one = indivclass_hits([0, 1, 2], [95, 190, 9], [100, 200, 10], alpha=0.01)
    for g, h, n, lab in zip([0, 1, 2], [95, 190, 9], [100, 200, 10], one.component_labels,
                            strict=True):  # fmt: skip
        ref = cohen_certify_ref(np.eye(3)[g], np.eye(3)[g] * h + (n - h) * np.eye(3)[g - 1],
                                0.01 / 3, 1.0)  # fmt: skip
        assert lab == ref[0]
    with pytest.raises(ValueError, match="hits must lie in"):
        indivclass_hits([0], [101], 100, alpha=0.01)
    with pytest.raises(ValueError, match="same shape"):
        indivclass_hits([0, 1], [1], 100, alpha=0.01)
    with pytest.raises(ValueError, match="n must be >= 1"):
        indivclass_hits([0], [0], 0, alpha=0.01)
    with pytest.raises(ValueError, match="guess"):
        indivclass_hits([-1], [1], 10, alpha=0.01)
    with pytest.raises(ValueError, match="empty"):
        indivclass_hits([], [], 10, alpha=0.01)
    with pytest.raises(ValueError, match="axis"):
        indivclass_hits([[0]], [[1]], 10, alpha=0.01, axis=2)


def test_jointclass_hits_is_jointclass_from_the_count():
    from mtcert.certify.cohen import jointclass_hits

    rng = np.random.default_rng(5)
    reps, n0, n, N = 9, 20, 60, 4
    s0 = np.where(rng.random((reps, n0, N)) < 0.03, 1, 0)
    s = np.where(rng.random((reps, n, N)) < 0.03, 1, 0)
    ref = jointclass(s0, s, alpha=0.01, sigma=0.25)
    got = jointclass_hits(ref.labels.clip(0), ref.hits, n, alpha=0.01, sigma=0.25)
    np.testing.assert_array_equal(got.certified, ref.certified)
    np.testing.assert_array_equal(got.p_lower, ref.p_lower)
    np.testing.assert_array_equal(np.isnan(got.radius), np.isnan(ref.radius))
    bare = jointclass_hits(None, ref.hits, n, alpha=0.01)
    assert bare.labels is None
    np.testing.assert_array_equal(bare.certified, ref.certified)
    for h in (0, 35, 59, 60):  # against statsmodels' Clopper–Pearson
        p = proportion_confint(h, n, alpha=0.02, method="beta")[0] if h else 0.0
        assert float(jointclass_hits(None, h, n, alpha=0.01).p_lower) == pytest.approx(p, abs=1e-12)
    with pytest.raises(ValueError, match="hits must lie in"):
        jointclass_hits(None, 61, 60, alpha=0.01)
    with pytest.raises(ValueError, match="guess must have shape"):
        jointclass_hits([[1, 2]], [3, 4], 60, alpha=0.01)
    with pytest.raises(ValueError, match="alpha"):
        jointclass_hits(None, 3, 60, alpha=0)
