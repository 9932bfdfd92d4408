"""Radius formulas against closed forms and scipy distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mtcert.stats.radius import (
    gaussian_radius,
    gaussian_radius_two_class,
    laplace_radius,
    rotation_radius,
    uniform_radius,
)

P = np.array([0.5, 0.6, 0.75, 0.9, 0.99, 0.999999])


def test_gaussian_against_scipy_and_paper_value():
    np.testing.assert_allclose(gaussian_radius(P, 0.5), 0.5 * stats.norm.ppf(P), rtol=1e-14)
    # paper App. C: sigma = 0.25, tau = 0.75 certifies R = 0.1686
    assert round(float(gaussian_radius(0.75, 0.25)), 4) == 0.1686
    assert gaussian_radius(1.0, 1.0) == np.inf
    assert gaussian_radius(0.5, 1.0) == 0.0
    assert gaussian_radius(0.3, 1.0) < 0  # no certificate
    assert isinstance(gaussian_radius(0.7, 1.0), np.floating)


def test_two_class_reduces_to_one_class_form():
    np.testing.assert_allclose(
        gaussian_radius_two_class(P, 1 - P, 0.3), gaussian_radius(P, 0.3), rtol=1e-12, atol=1e-15
    )
    got = gaussian_radius_two_class(0.8, np.array([0.1, 0.2]), 2.0)
    np.testing.assert_allclose(got, stats.norm.ppf(0.8) - stats.norm.ppf([0.1, 0.2]), rtol=1e-14)


def test_laplace_closed_form_and_definition():
    lam = 0.7
    np.testing.assert_allclose(laplace_radius(P, lam), -lam * np.log(2 * (1 - P)), rtol=1e-12)
    # Teng et al. write it as lam * ln(1 / (2 (1 - p)))
    np.testing.assert_allclose(laplace_radius(P, lam), lam * np.log(1 / (2 * (1 - P))), rtol=1e-12)
    # accurate near p = 1/2 where 2(1 - p) is close to 1
    p = 0.5 + 1e-12
    assert laplace_radius(p, 1.0) == pytest.approx(2e-12, rel=1e-6)
    assert laplace_radius(1.0, 1.0) == np.inf


def test_laplace_one_dimensional_tightness():
    """1-D Laplace base classifier sign(x) shifted so that P(class) = p: the
    smoothed prediction flips exactly at distance R."""
    lam = 1.3
    for p in (0.6, 0.8, 0.95):
        # x0 with P(x0 + eps > 0) = p
        x0 = -stats.laplace.ppf(1 - p, scale=lam)
        r = laplace_radius(p, lam)
        assert stats.laplace.sf(-(x0 - r), scale=lam) == pytest.approx(0.5, abs=1e-12)


def test_uniform_closed_form_and_tightness():
    np.testing.assert_allclose(uniform_radius(P, 1.5), 3.0 * (P - 0.5), rtol=1e-15)
    lam = 2.0
    for p in (0.6, 0.8):
        x0 = -stats.uniform.ppf(1 - p, loc=-lam, scale=2 * lam)
        r = uniform_radius(p, lam)
        assert stats.uniform.sf(-(x0 - r), loc=-lam, scale=2 * lam) == pytest.approx(0.5)


def test_gaussian_one_dimensional_tightness():
    sigma = 0.4
    for p in (0.6, 0.9):
        x0 = -stats.norm.ppf(1 - p, scale=sigma)
        r = gaussian_radius(p, sigma)
        assert stats.norm.sf(-(x0 - r), scale=sigma) == pytest.approx(0.5, abs=1e-12)


def test_rotation_is_gaussian_in_angle_space():
    sigma = np.radians(15.0)
    np.testing.assert_allclose(rotation_radius(P, sigma), sigma * stats.norm.ppf(P), rtol=1e-14)


def test_nan_propagates_and_broadcasting():
    out = gaussian_radius(np.array([[0.6, np.nan]]), 1.0)
    assert out.shape == (1, 2) and np.isnan(out[0, 1])


@pytest.mark.parametrize("fn", [gaussian_radius, laplace_radius, uniform_radius, rotation_radius])
def test_validation(fn):
    with pytest.raises(ValueError, match="p"):
        fn(1.2, 1.0)
    with pytest.raises(ValueError, match="p"):
        fn(-0.1, 1.0)
    for bad in (0.0, -1.0, np.inf, np.nan, True):
        with pytest.raises(ValueError):
            fn(0.7, bad)
    with pytest.raises(ValueError, match="p_b"):
        gaussian_radius_two_class(0.7, 2.0, 1.0)
