"""Certified radii of randomized smoothing for several noise models.

Every function maps a lower bound ``p`` on the probability of the top class
(Cohen's :math:`\\underline{p}_A`, or SEGCERTIFY's threshold ``tau``) to the
radius within which the smoothed prediction cannot change.  They broadcast
over their arguments, return float64 (a numpy scalar for scalar input), pass
NaN through, and return the formula's value everywhere: a result ``<= 0``
(from ``p <= 1/2``) means that no certificate exists, ``p == 1`` gives ``inf``.

References
----------
.. [1] J. Cohen, E. Rosenfeld, J. Z. Kolter, "Certified Adversarial Robustness
   via Randomized Smoothing", ICML 2019, Theorem 1.
.. [2] J. Teng, G.-H. Lee, Y. Yuan, "ℓ1 Adversarial Robustness Certificates:
   a Randomized Smoothing Approach", 2020 (Laplace noise, Theorem 1).
.. [3] G. Yang, T. Duan, J. E. Hu, H. Salman, I. Razenshteyn, J. Li,
   "Randomized Smoothing of All Shapes and Sizes", ICML 2020 (uniform noise
   on a cube, ℓ1 radius 2λ(p - 1/2)).
.. [4] M. Fischer, M. Baader, M. Vechev, "Certified Defense to Image
   Transformations via Randomized Smoothing", NeurIPS 2020 (smoothing over
   transformation parameters such as rotation angles).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from mtcert.stats.validation import as_probabilities, check_option, check_positive_real

__all__ = [
    "NOISE_MODELS",
    "NOISE_RADII",
    "certified_radius",
    "gaussian_radius",
    "gaussian_radius_two_class",
    "laplace_radius",
    "rotation_radius",
    "uniform_radius",
]


def _out(x):
    x = np.asarray(x, dtype=np.float64)
    return x[()] if x.ndim == 0 else x


def gaussian_radius(p, sigma):
    """ℓ2 radius of Gaussian smoothing, ``sigma * Phi^{-1}(p)``.

    Cohen et al. [1]_, Theorem 1 with :math:`\\overline{p}_B = 1 - \\underline{p}_A`;
    SEGCERTIFY (Fischer et al. 2021, Theorem 5.1) uses ``p = tau``.

    Parameters
    ----------
    p : array_like
        Lower bound on the top-class probability, in [0, 1].
    sigma : float
        Standard deviation of the isotropic Gaussian noise, > 0.

    Returns
    -------
    radius : float or ndarray

    Examples
    --------
    >>> from mtcert.stats.radius import gaussian_radius
    >>> round(float(gaussian_radius(0.75, 0.25)), 4)
    0.1686
    """
    p = as_probabilities(p, "p")
    sigma = check_positive_real(sigma, "sigma")
    return _out(sigma * ndtri(p))


def gaussian_radius_two_class(p_a, p_b, sigma):
    """Cohen's two-class ℓ2 radius ``sigma / 2 * (Phi^{-1}(p_a) - Phi^{-1}(p_b))``.

    Cohen et al. [1]_, Theorem 1: ``p_a`` lower-bounds the top class and
    ``p_b`` upper-bounds every other class.  With ``p_b = 1 - p_a`` it equals
    :func:`gaussian_radius`.

    Parameters
    ----------
    p_a, p_b : array_like
        Probabilities in [0, 1], broadcast together.
    sigma : float
        Noise standard deviation, > 0.

    Examples
    --------
    >>> from mtcert.stats.radius import gaussian_radius_two_class
    >>> round(float(gaussian_radius_two_class(0.8, 0.1, 0.5)), 4)
    0.5308
    """
    p_a = as_probabilities(p_a, "p_a")
    p_b = as_probabilities(p_b, "p_b")
    sigma = check_positive_real(sigma, "sigma")
    return _out(0.5 * sigma * (ndtri(p_a) - ndtri(p_b)))


def laplace_radius(p, scale):
    """ℓ1 radius of Laplace smoothing, ``-scale * ln(2 (1 - p))`` for ``p > 1/2``.

    Teng et al. [2]_ for i.i.d. Laplace noise with scale λ.  Computed as
    ``-scale * log1p(1 - 2 p)``, which is exact near ``p = 1/2``.

    Parameters
    ----------
    p : array_like
        Lower bound on the top-class probability, in [0, 1].
    scale : float
        Laplace scale λ (the density is ``exp(-|x| / λ) / (2 λ)``), > 0.

    Examples
    --------
    >>> from mtcert.stats.radius import laplace_radius
    >>> round(float(laplace_radius(0.75, 1.0)), 4)
    0.6931
    """
    p = as_probabilities(p, "p")
    scale = check_positive_real(scale, "scale")
    with np.errstate(divide="ignore"):
        return _out(-scale * np.log1p(1.0 - 2.0 * p))


def uniform_radius(p, half_width):
    """ℓ1 radius of uniform smoothing on ``[-half_width, half_width]^d``: ``2 λ (p - 1/2)``.

    Yang et al. [3]_ (uniform noise on the ℓ∞ cube certifies ℓ1 balls).

    Parameters
    ----------
    p : array_like
        Lower bound on the top-class probability, in [0, 1].
    half_width : float
        Half the side length λ of the noise cube, > 0.

    Examples
    --------
    >>> from mtcert.stats.radius import uniform_radius
    >>> float(uniform_radius(0.75, 1.0))
    0.5
    """
    p = as_probabilities(p, "p")
    half_width = check_positive_real(half_width, "half_width")
    return _out(2.0 * half_width * (p - 0.5))


def rotation_radius(p, sigma):
    """Radius in rotation-angle space, ``sigma * Phi^{-1}(p)``.

    Smoothing over transformation parameters (Fischer et al. [4]_): angles
    ``eps ~ N(0, sigma^2 I)`` are added to the input's rotation parameters, and
    Gaussian smoothing in that parameter space certifies every parameter
    change of ℓ2 norm up to this radius, in the units of ``sigma`` (radians if
    ``sigma`` is in radians).  Rotations about one fixed axis compose
    additively, so the certificate transfers exactly to rotated inputs; for
    general three-axis rotations the angles do not add up and the guarantee
    holds in parameter space only.

    Parameters
    ----------
    p : array_like
        Lower bound on the top-class probability, in [0, 1].
    sigma : float
        Standard deviation of the angle noise, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.stats.radius import rotation_radius
    >>> round(float(np.degrees(rotation_radius(0.75, np.radians(10.0)))), 3)
    6.745
    """
    p = as_probabilities(p, "p")
    sigma = check_positive_real(sigma, "sigma")
    return _out(sigma * ndtri(p))


#: Noise added to the input itself (rotation smoothing adds noise to angles instead).
NOISE_MODELS = ("gaussian", "laplace", "uniform")

#: The one table from a noise model to its radius formula ``f(p, scale)``: ℓ2 for
#: Gaussian noise, ℓ1 for Laplace and uniform noise, angle space for rotations.
NOISE_RADII = {
    "gaussian": gaussian_radius,
    "laplace": laplace_radius,
    "uniform": uniform_radius,
    "rotation": rotation_radius,
}


def certified_radius(p, sigma, noise="gaussian"):
    """Radius certified at probability ``p`` by noise model ``noise`` of scale ``sigma``.

    Looks the formula up in :data:`NOISE_RADII`; the arguments come in the same
    order as in every radius function of this module: probability, then scale.

    Parameters
    ----------
    p : array_like
        Lower bound on the top-class probability (or SEGCERTIFY's ``tau``), in [0, 1].
    sigma : float
        Scale of the noise, > 0 (standard deviation, Laplace scale or half width).
    noise : {"gaussian", "laplace", "uniform", "rotation"}

    Examples
    --------
    >>> from mtcert.stats.radius import certified_radius
    >>> round(float(certified_radius(0.75, 0.25)), 4)
    0.1686
    >>> round(float(certified_radius(0.75, 0.25, "laplace")), 4)
    0.1733
    """
    return NOISE_RADII[check_option(noise, "noise", tuple(NOISE_RADII))](p, sigma)
