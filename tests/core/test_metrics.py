"""Certified segmentation metrics against brute-force set definitions (paper App. A.1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtcert.certify import ABSTAIN
from mtcert.certify.metrics import (
    CertifiedSegmentationMetrics,
    abstain_rate,
    certified_accuracy,
    iou_per_input,
    mean_iou,
)

IGNORE = 255


def brute_force(preds, targets, num_classes, ignore=IGNORE):
    """Literal App. A.1: sets of pixel locations per input and class; plain Python."""
    ious, correct, valid, abstained = [], 0, 0, 0
    for pred, target in zip(preds, targets, strict=True):
        pixels = [i for i, t in enumerate(target.ravel()) if t != ignore]
        p, t = pred.ravel(), target.ravel()
        valid += len(pixels)
        correct += sum(p[i] == t[i] for i in pixels)
        abstained += sum(p[i] == ABSTAIN for i in pixels)
        for c in range(num_classes):
            P = {i for i in pixels if p[i] == c}
            G = {i for i in pixels if t[i] == c}
            if P | G:
                ious.append(len(P & G) / len(P | G))
    return correct / valid, float(np.mean(ious)), abstained / valid


@st.composite
def datasets(draw):
    num_classes = draw(st.integers(1, 5))
    n_inputs = draw(st.integers(1, 4))
    shape = draw(st.tuples(st.integers(1, 5), st.integers(1, 6)))
    size = shape[0] * shape[1]
    pred_vals = st.sampled_from([ABSTAIN, *range(num_classes)])
    targ_vals = st.sampled_from([IGNORE, *range(num_classes)])
    preds, targets = [], []
    for _ in range(n_inputs):
        preds.append(
            np.array(draw(st.lists(pred_vals, min_size=size, max_size=size))).reshape(shape)
        )
        t = draw(st.lists(targ_vals, min_size=size, max_size=size))
        t[0] = draw(st.integers(0, num_classes - 1))  # at least one non-ignored pixel
        targets.append(np.array(t).reshape(shape))
    return num_classes, preds, targets


@given(data=datasets())
def test_accumulator_and_functions_match_brute_force(data):
    num_classes, preds, targets = data
    acc_ref, miou_ref, abst_ref = brute_force(preds, targets, num_classes)
    m = CertifiedSegmentationMetrics(num_classes)
    for p, t in zip(preds, targets, strict=True):
        m.update(p, t)
    s = m.compute()
    assert s.accuracy == pytest.approx(acc_ref)
    assert s.mean_iou == pytest.approx(miou_ref)
    assert s.abstain_rate == pytest.approx(abst_ref)
    assert s.n_inputs == len(preds)
    # batched update and the one-shot functions agree with the per-input accumulator
    P, T = np.stack(preds), np.stack(targets)
    mb = CertifiedSegmentationMetrics(num_classes)
    mb.update(np.moveaxis(P, 0, 2), np.moveaxis(T, 0, 2), batch_axis=2)
    sb = mb.compute()
    assert sb.mean_iou == pytest.approx(miou_ref) and sb.accuracy == pytest.approx(acc_ref)
    np.testing.assert_allclose(sb.class_iou, s.class_iou)
    assert mean_iou(P, T, num_classes=num_classes, batch_axis=0) == pytest.approx(miou_ref)
    assert certified_accuracy(P, T) == pytest.approx(acc_ref)
    assert abstain_rate(P, T) == pytest.approx(abst_ref)


def test_hand_computed_example_and_pooled_iou():
    pred = [np.array([0, ABSTAIN, 1, 1]), np.array([2, 2, 2, 2])]
    target = [np.array([0, 0, 1, IGNORE]), np.array([2, 2, 2, 1])]
    m = CertifiedSegmentationMetrics(3)
    for p, t in zip(pred, target, strict=True):
        m.update(p, t)
    s = m.compute()
    # input 1: class 0 -> 1/2, class 1 -> 1/1; input 2: class 1 -> 0/1, class 2 -> 3/4
    assert s.mean_iou == pytest.approx((0.5 + 1 + 0 + 0.75) / 4)
    np.testing.assert_allclose(s.class_iou, [0.5, 0.5, 0.75])
    # pooled: class 0: 1/2, class 1: 1/2, class 2: 3/4
    np.testing.assert_allclose(s.pooled_iou, [0.5, 0.5, 0.75])
    assert s.accuracy == pytest.approx(5 / 7) and s.abstain_rate == pytest.approx(1 / 7)
    assert "SegmentationScores" in repr(s) and "n_inputs=2" in repr(m)
    m.reset()
    assert np.isnan(m.compute().accuracy) and m.compute().n_inputs == 0


def test_abstention_is_not_a_class_and_ignore_label():
    # everything abstained: accuracy 0, IoU 0 for present classes (union = G)
    t = np.array([[0, 1], [1, IGNORE]])
    p = np.full_like(t, ABSTAIN)
    assert certified_accuracy(p, t) == 0.0
    assert mean_iou(p, t, num_classes=3) == 0.0
    np.testing.assert_array_equal(iou_per_input(p, t, num_classes=3)[0, :2], [0, 0])
    assert np.isnan(iou_per_input(p, t, num_classes=3)[0, 2])
    # predictions on ignored pixels do not count anywhere
    p2 = np.array([[0, 1], [1, 2]])
    assert mean_iou(p2, t, num_classes=3) == 1.0
    # ignore_index=None: every pixel counts
    assert certified_accuracy([0, 1], [0, 0], ignore_index=None) == 0.5
    assert abstain_rate(p) == 1.0
    assert np.isnan(certified_accuracy([0], [IGNORE]))


def test_validation():
    with pytest.raises(ValueError, match="same shape"):
        mean_iou([0, 1], [0], num_classes=2)
    with pytest.raises(ValueError, match="target values"):
        mean_iou([0, 1], [0, 2], num_classes=2)
    with pytest.raises(ValueError, match="pred values"):
        mean_iou([0, 5], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="pred values"):
        certified_accuracy([-2, 1], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        mean_iou([0.0, 1.0], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="collides"):
        CertifiedSegmentationMetrics(300)
    with pytest.raises(ValueError, match="num_classes"):
        CertifiedSegmentationMetrics(0)
    with pytest.raises(ValueError, match="batch_axis"):
        mean_iou([0, 1], [0, 1], num_classes=2, batch_axis=3)
    assert np.isnan(mean_iou([0], [IGNORE], num_classes=2))
