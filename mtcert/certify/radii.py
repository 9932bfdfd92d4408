"""Per-component certified radii with one joint guarantee (beyond the paper).

SEGCERTIFY certifies every non-abstained component at one radius R(τ), and a
certificate at another τ is another certificate: reading each component's
largest radius off a curve of per-τ certificates makes one claim per τ, and
their union fails more often than α.  Here every component gets its *own*
radius, from one certificate that holds jointly for all of them:

    p̲_i = the one-sided Clopper–Pearson lower bound on p_i at level α / m,
    r_i = R(p̲_i)  (σΦ⁻¹(p̲_i) for Gaussian noise, the ℓ1 forms for Laplace and
          uniform noise: :func:`mtcert.stats.radius.certified_radius`),

with m the number of components in the family (the pixels of one image) and
abstention where p̲_i ≤ τ_min (τ_min ≥ ½: below ½ no radius exists).

**Theorem.** Let the guesses ĉ_i be fixed independently of the ``n`` testing
samples, and X_i ~ Bin(n, p_i) the hits of ĉ_i, under any dependence between
components.  Then P(∃ i: p̲_i > p_i) ≤ α, so with probability at least 1 − α,
simultaneously for every non-abstained i, the smoothed classifier's label of
component i is ĉ_i within radius r_i (Cohen et al., Theorem 1, with
p̲_B = 1 − p̲_A).  *Proof:* the Clopper–Pearson bound at level a satisfies
P(p̲_i > p_i) ≤ a for every p_i; a union bound over the m components gives
m · α / m = α.

Why Bonferroni and not a step-down (Holm) or a fixed sequence over a τ grid:
within one component the hypotheses p_i ≤ τ are nested, so testing a τ grid
in increasing order at level α / m *is* this bound restricted to the grid
(never more radius); and the closed test of the whole grid family with
Bonferroni local tests — the closure Holm's procedure belongs to — rejects
exactly what Bonferroni rejects unless the grid is capped below (α/m)^(1/n),
and then only by cutting the capped components' radii.  ``docs/recertify.md``
states and proves both; ``tests/core/test_radii.py`` checks them by brute force.

By the duality of the binomial test and the Clopper–Pearson bound, the
components this certificate certifies at radius R(τ) are those the
Bonferroni-SEGCERTIFY certificate at τ certifies: the joint curve equals the
per-τ Bonferroni curve point for point, and holds for all points at once.

Imports the core's binomial bounds, radius table, validation and the label
constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtcert.certify.labels import ABSTAIN
from mtcert.stats.binomial import clopper_pearson
from mtcert.stats.radius import NOISE_RADII, certified_radius
from mtcert.stats.validation import (
    as_integer_array,
    check_alpha,
    check_option,
    check_positive_int,
    check_positive_real,
    check_tau,
)

__all__ = ["RadiiCertificate", "certify_radii", "lower_bound_table"]

# Beyond this many testing samples the bound is computed per component, not tabulated.
_TABLE_MAX_N = 1 << 20
# As in mtcert.certify.segmentation: beyond 2**53 a count is not exact in float64.
_MAX_N = 2**53


def lower_bound_table(n: int, family_size: int, alpha: float) -> np.ndarray:
    """The joint lower bound p̲ of every hit count 0..n in a family of ``family_size``.

    The one-sided Clopper–Pearson lower bound at level ``alpha / family_size``
    (the Bonferroni split of the joint guarantee): entry h is the bound of a
    component with h hits out of ``n``.  Non-decreasing in h, 0 at h = 0.

    Parameters
    ----------
    n : int
        Testing samples per component.
    family_size : int
        Components in the family (m).
    alpha : float
        Joint level in (0, 1).

    Returns
    -------
    ndarray of float64, shape (n + 1,)

    Examples
    --------
    >>> from mtcert.certify.radii import lower_bound_table
    >>> t = lower_bound_table(100, 1000, 0.001)
    >>> round(float(t[100]), 4), round(float(t[95]), 4)  # (1e-6) ** (1 / 100) for h = n
    (0.871, 0.7704)
    """
    n = check_positive_int(n, "n", maximum=_MAX_N)
    family_size = check_positive_int(family_size, "family_size")
    alpha = check_alpha(alpha)
    if n > _TABLE_MAX_N:
        raise ValueError(f"n must be at most {_TABLE_MAX_N} to tabulate the bound; got {n}")
    low, _ = clopper_pearson(np.arange(n + 1), n, alpha=alpha / family_size, alternative="greater")
    return np.asarray(low, dtype=np.float64)


@dataclass(frozen=True, repr=False, eq=False)
class RadiiCertificate:
    """Result of :func:`certify_radii`: per-component labels and radii, one joint guarantee.

    With probability at least ``1 - alpha``, simultaneously for every family
    member i with ``labels[i] != ABSTAIN``, the smoothed classifier's label of
    component i is ``labels[i]`` for every input within ``radii[i]`` of the
    clean one (ℓ2 for Gaussian noise, ℓ1 for Laplace and uniform, angle units
    for rotations).  With ``axis`` set, each family is its own certificate:
    the guarantee holds per family, not for all families at once.

    Attributes
    ----------
    labels : ndarray of int64
        The guess where certified (``p_lower > tau_min``), :data:`ABSTAIN` elsewhere.
    radii : ndarray of float64
        Certified radius per component; 0.0 where abstained.
    p_lower : ndarray of float64
        The joint lower bound p̲ per component (Clopper–Pearson at ``level``).
    alpha : float
        The joint level (FWER of the radii within one family).
    level : float
        ``alpha / family_size``: the level of each component's bound.
    family_size : int
        Components per family (m).
    n : int
    sigma : float
    noise : str
    tau_min : float
    axis : int or None
        None: all components are one family; otherwise each 1-D slice along it.
    """

    labels: np.ndarray
    radii: np.ndarray
    p_lower: np.ndarray
    alpha: float
    level: float
    family_size: int
    n: int
    sigma: float
    noise: str
    tau_min: float
    axis: int | None
    _certified: np.ndarray = field(repr=False)

    @property
    def certified(self) -> np.ndarray:
        """Boolean mask of the certified (non-abstained) components."""
        return self._certified

    @property
    def n_certified(self):
        """Certified components (per family when ``axis`` is set)."""
        if self.axis is None:
            return int(self._certified.sum())
        return self._certified.sum(axis=self.axis)

    @property
    def certified_rate(self):
        """Fraction of components certified (per family when ``axis`` is set)."""
        if self.axis is None:
            return float(self._certified.mean())
        return self._certified.mean(axis=self.axis)

    def certified_at(self, radius: float) -> np.ndarray:
        """Mask of the components certified at least at ``radius`` (all jointly)."""
        radius = float(radius)
        if not radius >= 0.0:
            raise ValueError(f"radius must be a number >= 0; got {radius!r}")
        return self._certified & (self.radii >= radius)

    def labels_at(self, radius: float) -> np.ndarray:
        """Labels certified at least at ``radius``, :data:`ABSTAIN` elsewhere."""
        return np.where(self.certified_at(radius), self.labels, ABSTAIN)

    def __repr__(self) -> str:
        fam = "one family" if self.axis is None else f"families along axis {self.axis}"
        cert = self.radii[self._certified]
        median = f"{float(np.median(cert)):.4g}" if cert.size else "-"
        return (
            f"RadiiCertificate(alpha={self.alpha!r} jointly per family (FWER), "
            f"level per component={self.level:.3g}, noise={self.noise!r}, sigma={self.sigma:g}, "
            f"n={self.n}, shape={self.labels.shape}, {fam}, "
            f"certified_rate={float(np.mean(self.certified_rate)):.4g}, "
            f"median certified radius={median})"
        )


def _check_axis(axis, ndim: int):
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"axis must be an integer or None; got {axis!r}")
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim}-d components")
    return int(axis) % ndim


def certify_radii(
    guess, hits, n, *, alpha, sigma, noise="gaussian", tau_min=0.5, axis=None
) -> RadiiCertificate:
    """Per-component certified radii that hold jointly over a family (FWER at ``alpha``).

    Component i's radius is ``R(p̲_i)``, with p̲_i the one-sided
    Clopper–Pearson lower bound on the probability of its guess at level
    ``alpha / m`` (m components per family) and R the radius of the noise
    (:func:`mtcert.stats.radius.certified_radius`).  Components with
    ``p̲_i <= tau_min`` abstain.  With probability at least ``1 - alpha``
    every certified component of a family keeps its label within its radius,
    all of them at once (module docstring: the theorem and why Bonferroni).

    Parameters
    ----------
    guess : array_like of int
        Guessed label per component (non-negative), from samples independent
        of the testing samples.
    hits : array_like of int
        Hits of the guess among the ``n`` testing samples; same shape, in [0, n].
    n : int
        Testing samples per component.
    alpha : float
        Joint level in (0, 1).
    sigma : float
        Noise scale (> 0).
    noise : {"gaussian", "laplace", "uniform", "rotation"}
    tau_min : float, default 0.5
        Abstain where p̲_i <= tau_min (in [1/2, 1)).
    axis : int or None
        None: all components are one family.  An integer: every 1-D slice
        along it is its own family (a certificate each).

    Returns
    -------
    RadiiCertificate

    Raises
    ------
    ValueError
        Naming the argument: NaN or non-integral counts, hits outside [0, n],
        negative guesses, shape mismatch, empty input, ``alpha`` outside
        (0, 1), ``sigma`` <= 0, unknown ``noise``, ``tau_min`` outside [1/2, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.radii import certify_radii
    >>> guess = np.array([3, 3, 1, 0])
    >>> hits = np.array([100, 97, 80, 55])
    >>> cert = certify_radii(guess, hits, 100, alpha=0.001, sigma=0.25)
    >>> cert.labels
    array([ 3,  3,  1, -1])
    >>> cert.radii.round(4)
    array([0.352 , 0.2707, 0.0857, 0.    ])
    >>> cert.labels_at(0.2)
    array([ 3,  3, -1, -1])
    """
    alpha = check_alpha(alpha)
    n = check_positive_int(n, "n", maximum=_MAX_N)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", tuple(NOISE_RADII))
    tau_min = check_tau(tau_min, "tau_min")
    guess = as_integer_array(guess, "guess")
    hits = as_integer_array(hits, "hits")
    if guess.shape != hits.shape:
        raise ValueError(
            f"guess and hits must have the same shape; got {guess.shape} and {hits.shape}"
        )
    if hits.size == 0:
        raise ValueError("hits is empty: there are no components to certify")
    axis = _check_axis(axis, hits.ndim)
    if axis is not None and hits.shape[axis] == 0:
        raise ValueError(f"axis {axis} has length 0: the families are empty")
    lo, hi = int(hits.min()), int(hits.max())
    if lo < 0 or hi > n:
        bad = int(np.count_nonzero((hits < 0) | (hits > n)))
        raise ValueError(
            f"hits must lie in [0, n] = [0, {n}]; {bad} value(s) do not (min {lo}, max {hi})"
        )
    if int(guess.min()) < 0:
        raise ValueError(f"guess must hold non-negative labels ({ABSTAIN} is ABSTAIN)")
    m = hits.size if axis is None else hits.shape[axis]
    level = alpha / m
    if n <= _TABLE_MAX_N:
        p_lower = lower_bound_table(n, m, alpha)[hits]  # n + 1 quantiles, then a gather
    else:
        p_lower = np.asarray(
            clopper_pearson(hits, n, alpha=level, alternative="greater")[0], dtype=np.float64
        )
    p_lower = np.asarray(p_lower, dtype=np.float64).reshape(hits.shape)
    certified = p_lower > tau_min
    radii = np.where(
        certified, certified_radius(np.where(certified, p_lower, 0.75), sigma, noise), 0.0
    )
    labels = np.where(certified, guess.astype(np.int64, copy=False), ABSTAIN)
    return RadiiCertificate(
        labels=labels,
        radii=np.asarray(radii, dtype=np.float64).reshape(hits.shape),
        p_lower=p_lower,
        alpha=alpha,
        level=level,
        family_size=m,
        n=n,
        sigma=sigma,
        noise=noise,
        tau_min=tau_min,
        axis=axis,
        _certified=certified,
    )
