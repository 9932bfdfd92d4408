"""Per-component certified radii with one joint guarantee (beyond the paper).

SEGCERTIFY certifies every non-abstained component at one radius R(τ), and a
certificate at another τ is another certificate: reading each component's
largest radius off a curve of per-τ certificates makes one claim per τ, and
their union fails more often than α.  Here every component gets its *own*
radius R(p̲_i), p̲_i a lower bound on the probability p_i of its guess, from
one certificate that holds for all components of a family (the pixels of one
image) at once: with probability at least 1 − α, p_i ≥ p̲_i for every i, so the
smoothed classifier keeps component i's label within R(p̲_i) (σΦ⁻¹(p̲_i) for
Gaussian noise, the ℓ1 forms for Laplace and uniform noise:
:func:`mtcert.stats.radius.certified_radius`).  Components with p̲_i ≤ τ_min
(τ_min ≥ ½) abstain.

Two procedures, both valid under any dependence between components (``m``
components, ``n`` testing samples, X_i hits, the guesses fixed by independent
samples):

- ``"bonferroni"``: p̲_i is the one-sided Clopper–Pearson bound at level α/m
  (a union bound over the m components);
- ``"holm"`` (default): the closed test, with Bonferroni local tests, of all
  hypotheses H_iτ: p_i ≤ τ for τ up to the cap τ* = (α/m)^(1/n) — the largest
  bound Bonferroni can ever give.  It has a closed form: Holm's procedure at
  level α on q_i = P(Bin(n, τ*) ≥ X_i) rejects d components, which get
  p̲_i = τ*; every other component gets the Clopper–Pearson bound at level
  α/(m − d).  It gives every component at least Bonferroni's bound on every
  data set, and more as soon as one component has all n hits (d ≥ 1).

``docs/recertify.md`` states the theorems and proves them (and why a fixed
sequence over a τ grid gains nothing); ``tests/core/test_radii.py`` checks the
closed form against a brute-force closed test, the dominance, and the joint
guarantee by Monte Carlo at the bound.  Per τ the Bonferroni radii certify
exactly what Bonferroni-SEGCERTIFY certifies at τ (duality of the binomial
test and the bound); the Holm radii lie between that and Holm-SEGCERTIFY at τ.

Imports the core's binomial tests and bounds, radius table, validation and the
label constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtcert.certify.labels import ABSTAIN
from mtcert.certify.segmentation import MAX_N
from mtcert.stats import families
from mtcert.stats.binomial import clopper_pearson, greater_pvalue_table
from mtcert.stats.radius import NOISE_RADII, certified_radius
from mtcert.stats.validation import (
    as_integer_array,
    check_alpha,
    check_option,
    check_positive_int,
    check_positive_real,
    check_tau,
)

__all__ = [
    "RADII_METHODS",
    "RadiiCertificate",
    "cap",
    "certify_radii",
    "joint_bound_table",
    "lower_bound_table",
]

#: The procedures of :func:`certify_radii` (see the module docstring).
RADII_METHODS = ("holm", "bonferroni")

# Beyond this many testing samples the bounds are computed per component, not tabulated.
_TABLE_MAX_N = 1 << 20


def lower_bound_table(n: int, family_size: int, alpha: float) -> np.ndarray:
    """Bonferroni's joint lower bound p̲ of every hit count 0..n in a family of ``family_size``.

    The one-sided Clopper–Pearson lower bound at level ``alpha / family_size``:
    entry h is the bound of a component with h hits out of ``n``.
    Non-decreasing in h, 0 at h = 0, ``(alpha / family_size) ** (1 / n)`` at h = n.

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
    n = check_positive_int(n, "n", maximum=MAX_N)
    family_size = check_positive_int(family_size, "family_size")
    alpha = check_alpha(alpha)
    if n > _TABLE_MAX_N:
        raise ValueError(f"n must be at most {_TABLE_MAX_N} to tabulate the bound; got {n}")
    low, _ = clopper_pearson(np.arange(n + 1), n, alpha=alpha / family_size, alternative="greater")
    return np.asarray(low, dtype=np.float64)


def cap(n: int, family_size: int, alpha: float) -> float:
    """The cap τ* of the ``"holm"`` radii: ``(alpha / family_size) ** (1 / n)``.

    The largest bound Bonferroni's radii can give (n hits out of n), lowered by
    at most a few units in the last place so that P(Bin(n, τ*) >= n) <= α/m holds
    in floating point too.  A function of the design only, fixed before any data.

    Examples
    --------
    >>> from mtcert.certify.radii import cap
    >>> round(cap(100, 1000, 0.001), 4)
    0.871
    """
    n = check_positive_int(n, "n", maximum=MAX_N)
    family_size = check_positive_int(family_size, "family_size")
    level = check_alpha(alpha) / family_size
    top = float(clopper_pearson(n, n, alpha=level, alternative="greater")[0])
    while top > 0.0 and float(greater_pvalue_table(n, top)[n]) > level:
        top = float(np.nextafter(top, 0.0))
    return top


def _holm_rejections(hist: np.ndarray, n: int, m: int, alpha: float, top: float) -> np.ndarray:
    """Holm's rejections at level α among p-values P(Bin(n, top) >= x), per family.

    ``hist`` is ``(families, n + 1)``: the components of each family per hit count.
    The p-value falls with the hits, so Holm rejects the components with the most
    hits first; tied components pass or fail together (the thresholds only rise).
    """
    q = greater_pvalue_table(n, top)
    rejected = np.zeros(hist.shape[0], np.int64)
    active = np.ones(hist.shape[0], bool)
    for x in range(n, -1, -1):
        count = hist[:, x]
        passes = active & (q[x] <= alpha / np.maximum(m - rejected, 1))
        rejected += np.where(passes, count, 0)
        active &= passes | (count == 0)
        if not active.any():
            break
    return rejected


def _holm_tables(hist, n, m, alpha):
    """Per family the ``"holm"`` bound of every hit count: ``(tables, d, top)``."""
    top = cap(n, m, alpha)
    d = _holm_rejections(hist, n, m, alpha, top)
    tables = np.zeros((hist.shape[0], n + 1))  # 0: the bound at 0 hits
    # components at or above the smallest rejected hit count get the cap
    above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # components with >= x hits
    for dd in np.unique(d):
        rows = d == dd
        if dd < m:
            tables[rows] = lower_bound_table(n, m - int(dd), alpha)
        capped = rows[:, None] & (above <= dd) & (np.arange(n + 1) > 0)
        capped &= dd > 0
        tables[capped] = top
    return tables, d, top


def _family_tables(hits2d: np.ndarray, n: int, alpha: float, method: str):
    """Per family (rows of ``hits2d``) the bound of every hit count, the number d of
    components at the cap (0 for Bonferroni) and the cap (None for Bonferroni)."""
    f, m = hits2d.shape
    if method == "bonferroni":
        return np.broadcast_to(lower_bound_table(n, m, alpha), (f, n + 1)), np.zeros(f, int), None
    index = np.arange(f)[:, None] * (n + 1) + hits2d
    hist = np.bincount(index.ravel(), minlength=f * (n + 1)).reshape(f, n + 1)
    return _holm_tables(hist, n, m, alpha)


def joint_bound_table(hits, n: int, alpha: float, method: str = "holm") -> np.ndarray:
    """The joint lower bound p̲ of every hit count 0..n for *one* family with ``hits``.

    For ``"bonferroni"`` it is :func:`lower_bound_table` (the hits only give the
    family's size); for ``"holm"`` it depends on how many components reach the
    cap.  Non-decreasing in the hit count, so the components certified at radius
    R(τ) are those with hits at or above one threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.radii import joint_bound_table
    >>> hits = np.r_[np.full(900, 100), np.arange(100)]  # 900 components with 100/100 hits
    >>> t = joint_bound_table(hits, 100, 0.001)
    >>> round(float(t[100]), 4), round(float(t[95]), 4)  # the cap; alpha / 100 for the rest
    (0.871, 0.7935)
    """
    n = check_positive_int(n, "n", maximum=_TABLE_MAX_N)
    alpha = check_alpha(alpha)
    method = check_option(method, "method", RADII_METHODS)
    hits = _checked_hits(as_integer_array(hits, "hits"), n).reshape(1, -1)
    return np.asarray(_family_tables(hits, n, alpha, method)[0][0])


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
        The joint lower bound p̲ per component.
    alpha : float
        The joint level (FWER of the radii within one family).
    method : {"holm", "bonferroni"}
    family_size : int
        Components per family (m).
    capped : int or ndarray
        Components at the cap τ* (``"holm"``; per family with ``axis``), 0 for Bonferroni.
    cap : float or None
        τ* = (α/m)^(1/n) for ``"holm"``: no radius exceeds R(τ*).
    n : int
    sigma : float
    noise : str
    tau_min : float
    axis : int, tuple of int or None
        None: all components are one family; an int: each 1-D slice along it; a
        tuple: the components along those axes together, indexed by the others.
    """

    labels: np.ndarray
    radii: np.ndarray
    p_lower: np.ndarray
    alpha: float
    method: str
    family_size: int
    capped: int | np.ndarray
    cap: float | None
    n: int
    sigma: float
    noise: str
    tau_min: float
    axis: int | tuple[int, ...] | None
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
            f"RadiiCertificate(method={self.method!r}, alpha={self.alpha!r} jointly per family "
            f"(FWER), noise={self.noise!r}, sigma={self.sigma:g}, n={self.n}, "
            f"shape={self.labels.shape}, {fam}, "
            f"certified_rate={float(np.mean(self.certified_rate)):.4g}, "
            f"median certified radius={median})"
        )


def _checked_hits(hits: np.ndarray, n: int) -> np.ndarray:
    if hits.size == 0:
        raise ValueError("hits is empty: there are no components to certify")
    lo, hi = int(hits.min()), int(hits.max())
    if lo < 0 or hi > n:
        bad = int(np.count_nonzero((hits < 0) | (hits > n)))
        raise ValueError(
            f"hits must lie in [0, n] = [0, {n}]; {bad} value(s) do not (min {lo}, max {hi})"
        )
    return hits


def certify_radii(
    guess, hits, n, *, alpha, sigma, noise="gaussian", method="holm", tau_min=0.5, axis=None
) -> RadiiCertificate:
    """Per-component certified radii that hold jointly over a family (FWER at ``alpha``).

    Component i's radius is ``R(p̲_i)``, with p̲_i a lower bound on the
    probability of its guess that holds for all components of the family at
    once, and R the radius of the noise
    (:func:`mtcert.stats.radius.certified_radius`).  Components with
    ``p̲_i <= tau_min`` abstain.  With probability at least ``1 - alpha`` every
    certified component of a family keeps its label within its radius, all of
    them at once (module docstring: the two procedures; ``docs/recertify.md``:
    the proofs).

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
    method : {"holm", "bonferroni"}, default "holm"
        ``"holm"``: the closed test capped at τ* = (α/m)^(1/n), at least
        Bonferroni's bound for every component on every data set.
        ``"bonferroni"``: Clopper–Pearson at α/m.
    tau_min : float, default 0.5
        Abstain where p̲_i <= tau_min (in [1/2, 1)).
    axis : int, tuple of int or None
        None: all components are one family.  An integer: every 1-D slice
        along it is its own family (a certificate each).  A tuple, as in numpy's
        reductions: the components along those axes together form one family
        and the other axes index the families (``axis=(1, 2)`` on a batch of
        images: one certificate per image).

    Returns
    -------
    RadiiCertificate

    Raises
    ------
    ValueError
        Naming the argument: NaN or non-integral counts, hits outside [0, n],
        negative guesses, shape mismatch, empty input, ``alpha`` outside
        (0, 1), ``sigma`` <= 0, unknown ``noise`` or ``method``, ``tau_min``
        outside [1/2, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.radii import certify_radii
    >>> guess = np.array([3, 3, 1, 0])
    >>> hits = np.array([100, 97, 80, 55])
    >>> cert = certify_radii(guess, hits, 100, alpha=0.001, sigma=0.25)
    >>> cert.labels
    array([ 3,  3,  1, -1])
    >>> cert.radii.round(4)  # the first at the cap: Holm gives the others alpha / 3
    array([0.352 , 0.2742, 0.0883, 0.    ])
    >>> certify_radii(guess, hits, 100, alpha=0.001, sigma=0.25, method="bonferroni").radii.round(4)
    array([0.352 , 0.2707, 0.0857, 0.    ])
    >>> cert.labels_at(0.2)
    array([ 3,  3, -1, -1])
    """
    alpha = check_alpha(alpha)
    n = check_positive_int(n, "n", maximum=MAX_N)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", tuple(NOISE_RADII))
    method = check_option(method, "method", RADII_METHODS)
    tau_min = check_tau(tau_min, "tau_min")
    guess = as_integer_array(guess, "guess")
    hits = as_integer_array(hits, "hits")
    if guess.shape != hits.shape:
        raise ValueError(
            f"guess and hits must have the same shape; got {guess.shape} and {hits.shape}"
        )
    axis = families.check_axis(axis, hits.ndim)
    if axis is not None and families.family_size(hits.shape, axis) == 0:
        raise ValueError(f"axis {axis} has length 0: the families are empty")
    _checked_hits(hits, n)
    if int(guess.min()) < 0:
        raise ValueError(f"guess must hold non-negative labels ({ABSTAIN} is ABSTAIN)")
    if n > _TABLE_MAX_N:
        raise ValueError(f"n must be at most {_TABLE_MAX_N} for joint radii; got {n}")
    # families as rows: (F, m)
    hits2d = families.to_families(hits, axis)
    tables, d, top = _family_tables(hits2d.astype(np.int64, copy=False), n, alpha, method)
    p2d = np.take_along_axis(np.asarray(tables), hits2d.astype(np.intp), axis=1)
    p_lower = families.from_families(p2d, hits.shape, axis)
    certified = p_lower > tau_min
    radii = np.where(
        certified, certified_radius(np.where(certified, p_lower, 0.75), sigma, noise), 0.0
    )
    labels = np.where(certified, guess.astype(np.int64, copy=False), ABSTAIN)
    capped = int(d[0]) if axis is None else d.reshape(families.family_shape(hits.shape, axis))
    return RadiiCertificate(
        labels=labels,
        radii=np.asarray(radii, dtype=np.float64).reshape(hits.shape),
        p_lower=np.asarray(p_lower, dtype=np.float64),
        alpha=alpha,
        method=method,
        family_size=hits2d.shape[1],
        capped=capped,
        cap=top,
        n=n,
        sigma=sigma,
        noise=noise,
        tau_min=tau_min,
        axis=axis,
        _certified=certified,
    )
