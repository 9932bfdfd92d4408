"""A tuple ``axis`` makes the given axes together one family, as numpy's reductions do.

``adjust``, ``segcertify`` and ``segcertify_hits`` with ``axis=(...)`` are checked against
a loop over the families, each run with ``axis=None`` on its own slice.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mtcert.certify.segmentation import segcertify, segcertify_hits
from mtcert.stats.families import check_axis, from_families, to_families
from mtcert.stats.multitest import adjust

SHAPE = (3, 4, 5, 2)


def _family_index(shape, axes, idx):
    """The slice of the family at ``idx`` (an index over the other axes)."""
    it = iter(idx)
    return tuple(slice(None) if i in axes else next(it) for i in range(len(shape)))


def _families(shape, axes):
    others = [range(s) for i, s in enumerate(shape) if i not in axes]
    return itertools.product(*others)


AXES = [(1, 2), (0, 3), (2, 0), (-1, -2), (0, 1, 2, 3), (1,), (0, 2, 3)]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("method", ["holm", "hommel", "fdr_bh", "generalized-holm"])
def test_adjust_tuple_axis_equals_a_loop_over_families(axis, method):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.05, SHAPE) ** rng.uniform(0.5, 2, SHAPE)
    p[0, 0, 0, 0] = np.nan  # one poisoned family
    res = adjust(p, method, alpha=0.05, k=2 if method.startswith("gen") else 1, axis=axis)
    axes = tuple(sorted(a % p.ndim for a in axis))
    assert res.axis == axes
    for idx in _families(SHAPE, axes):
        where = _family_index(SHAPE, axes, idx)
        one = adjust(p[where], method, alpha=0.05, k=res.k)
        np.testing.assert_array_equal(res.reject[where], one.reject)
        np.testing.assert_array_equal(res.adjusted[where], one.adjusted)
        assert res.n_rejected[idx] == one.n_rejected
        assert res.n_tests[idx] == one.n_tests


def test_adjust_single_axis_tuple_is_the_int_axis():
    p = np.random.default_rng(1).uniform(size=SHAPE)
    a, b = adjust(p, axis=(2,)), adjust(p, axis=2)
    np.testing.assert_array_equal(a.adjusted, b.adjusted)
    np.testing.assert_array_equal(a.n_rejected, b.n_rejected)
    assert (a.axis, b.axis) == ((2,), 2)


def test_adjust_all_axes_is_one_family():
    p = np.random.default_rng(2).uniform(0, 0.01, SHAPE)
    a, b = adjust(p, "hochberg", axis=(0, 1, 2, 3)), adjust(p, "hochberg")
    np.testing.assert_array_equal(a.adjusted, b.adjusted)
    assert a.n_rejected.shape == () and int(a.n_rejected) == b.n_rejected


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ((), "empty tuple"),
        ((1, 1), "repeat"),
        ((1, -2), "repeat"),
        ((0, 3), "out of bounds"),
        ((0, True), "axis must be None or an int"),
        ((0, 1.0), "axis must be None or an int"),
        ([0, 1], "axis must be None or an int"),
        (True, "axis must be None or an int"),
    ],
)
def test_bad_axes_are_refused(axis, message):
    p = np.full((2, 3, 4), 0.5)
    with pytest.raises(ValueError, match=message):
        adjust(p, axis=axis)
    with pytest.raises(ValueError, match=message):
        segcertify_hits(np.zeros(p.shape, int), np.ones(p.shape, int), 10, tau=0.6, alpha=0.1,
                        axis=axis)  # fmt: skip


def test_families_round_trip():
    arr = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    for axis in [None, 1, *AXES]:
        axis = check_axis(axis, arr.ndim)
        np.testing.assert_array_equal(from_families(to_families(arr, axis), SHAPE, axis), arr)


@pytest.mark.parametrize("axis", [(1, 2), (0, 2), (-1,), (0, 1, 2)])
def test_segcertify_tuple_axis_equals_a_loop_over_families(axis):
    rng = np.random.default_rng(3)
    shape, n = (4, 6, 5), 200
    guess = rng.integers(0, 3, shape)
    hits = rng.binomial(n, rng.uniform(0.7, 1.0, shape))
    cert = segcertify_hits(guess, hits, n, tau=0.75, alpha=0.01, method="holm", axis=axis)
    axes = tuple(sorted(a % 3 for a in axis))
    for idx in _families(shape, axes):
        where = _family_index(shape, axes, idx)
        one = segcertify_hits(guess[where], hits[where], n, tau=0.75, alpha=0.01, method="holm")
        np.testing.assert_array_equal(cert.labels[where], one.labels)
        assert cert.n_certified[idx] == one.n_certified
        assert np.asarray(cert.certified_rate)[idx] == pytest.approx(one.certified_rate)
    np.testing.assert_array_equal(cert.pvalues, segcertify_hits(guess, hits, n, tau=0.75,
                                                                alpha=0.01).pvalues)  # fmt: skip


def test_segcertify_counts_batch_of_images():
    rng = np.random.default_rng(4)
    B, H, W, C = 3, 4, 5, 3
    p = rng.dirichlet([8, 1, 1], size=(B, H, W))
    counts0 = np.stack([rng.multinomial(20, q) for q in p.reshape(-1, C)]).reshape(B, H, W, C)
    counts = np.stack([rng.multinomial(300, q) for q in p.reshape(-1, C)]).reshape(B, H, W, C)
    cert = segcertify(counts0, counts, tau=0.7, alpha=0.05, axis=(1, 2))
    assert cert.n_certified.shape == (B,)
    for b in range(B):
        one = segcertify(counts0[b], counts[b], tau=0.7, alpha=0.05)
        np.testing.assert_array_equal(cert.labels[b], one.labels)
        assert cert.n_certified[b] == one.n_certified
    assert "families along axis (1, 2)" in repr(cert)


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_each_image_of_a_batch_keeps_its_fwer(method):
    # Every pixel at the null boundary (its guess shown with probability exactly tau): any
    # certified pixel is a false certificate.  With axis=(1, 2) each image is one family,
    # so at most a fraction alpha of the images may hold one (5-sigma binomial bound).
    rng = np.random.default_rng(7)
    B, H, W, n, tau, alpha = 4000, 4, 5, 100, 0.75, 0.1
    hits = rng.binomial(n, tau, size=(B, H, W))
    cert = segcertify_hits(np.zeros_like(hits), hits, n, tau=tau, alpha=alpha, method=method,
                           axis=(1, 2))  # fmt: skip
    wrong_images = int((cert.n_certified > 0).sum())
    assert wrong_images <= alpha * B + 5 * np.sqrt(alpha * (1 - alpha) * B), wrong_images
