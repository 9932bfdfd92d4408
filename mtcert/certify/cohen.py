"""Cohen et al.'s PREDICT / CERTIFY and the paper's baselines JOINTCLASS / INDIVCLASS.

All functions work on count arrays (or, for JOINTCLASS, sampled label
vectors) and are vectorised over leading batch dimensions, so that a power
study can evaluate many repetitions in one call.

References
----------
.. [1] J. Cohen, E. Rosenfeld, J. Z. Kolter, "Certified Adversarial Robustness
   via Randomized Smoothing", ICML 2019 (PREDICT and CERTIFY, Algorithm 1 of
   Fischer et al.).
.. [2] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §4 (JOINTCLASS and INDIVCLASS).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mtcert.certify.labels import ABSTAIN
from mtcert.stats.binomial import binom_test, clopper_pearson
from mtcert.stats.radius import NOISE_MODELS, certified_radius
from mtcert.stats.validation import (
    as_class_counts,
    as_counts,
    as_independent_count_pair,
    check_alpha,
    check_option,
    check_positive_real,
)

__all__ = [
    "CertifyResult",
    "IndivClassResult",
    "JointClassResult",
    "PredictResult",
    "certify",
    "indivclass",
    "indivclass_hits",
    "jointclass",
    "jointclass_hits",
    "predict",
]


def _out(x):
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def _fmt(x):
    x = np.asarray(x)
    if x.ndim == 0:
        return repr(x[()].item())
    return f"<array shape={x.shape} dtype={x.dtype}>"


def _p_lower_and_radius(hits, n, alpha, sigma, noise):
    """One-sided Clopper–Pearson lower bound and Cohen's radius (NaN where abstaining).

    With one ``n`` for all inputs the bound depends on the hit count alone, so it
    is evaluated once per distinct count (at most ``n + 1``), not once per input:
    the beta quantile otherwise dominates the cost of a power study.
    """
    hits = np.asarray(hits)
    inverse = None
    if np.ndim(n) == 0 and hits.size > 1:
        hits, inverse = np.unique(hits, return_inverse=True)
    p_lower = np.asarray(clopper_pearson(hits, n, alpha=alpha, alternative="greater")[0])
    certified = p_lower > 0.5
    with np.errstate(invalid="ignore"):
        r = np.asarray(certified_radius(p_lower, sigma, noise), dtype=np.float64)
    r = np.where(certified, r, np.nan)
    if inverse is None:
        return p_lower, certified, r
    return p_lower[inverse], certified[inverse], r[inverse]


def _hits_and_n(hits, n, shape_name="hits"):
    """Validate hit counts and their sample sizes: integers with 0 <= hits <= n, n >= 1."""
    hits = as_counts(hits, shape_name)
    n = as_counts(n, "n")
    try:
        n_b = np.broadcast_to(n, hits.shape)
    except ValueError:
        raise ValueError(
            f"n must be one sample size or one per input of hits' shape {hits.shape}; "
            f"got shape {n.shape}"
        ) from None
    if n_b.size and n_b.min() < 1:
        raise ValueError(f"n must be >= 1; found {int(n_b.min())}")
    if np.any(hits > n_b):
        raise ValueError(f"{shape_name} must lie in [0, n]; found a count above n")
    return hits, (int(n) if n.ndim == 0 else n_b)


@dataclass(frozen=True)
class PredictResult:
    """Result of :func:`predict`: ``label`` (ABSTAIN where abstaining), ``pvalue``, ``alpha``."""

    label: np.ndarray
    pvalue: np.ndarray
    alpha: float

    def __repr__(self):
        return (
            f"PredictResult(label={_fmt(self.label)}, pvalue={_fmt(self.pvalue)}, "
            f"alpha={self.alpha!r})"
        )


@dataclass(frozen=True)
class CertifyResult:
    """Result of :func:`certify`.

    ``label`` (ABSTAIN where ``p_lower <= 1/2``), ``p_lower`` (one-sided
    Clopper–Pearson lower bound on the guessed class's probability),
    ``radius`` (NaN where abstaining), ``alpha``, ``sigma``, ``noise``.
    """

    label: np.ndarray
    p_lower: np.ndarray
    radius: np.ndarray
    alpha: float
    sigma: float
    noise: str

    def __repr__(self):
        return (
            f"CertifyResult(label={_fmt(self.label)}, p_lower={_fmt(self.p_lower)}, "
            f"radius={_fmt(self.radius)}, alpha={self.alpha!r}, sigma={self.sigma!r}, "
            f"noise={self.noise!r})"
        )


def predict(counts, *, alpha):
    """Cohen et al.'s PREDICT: abstain unless the top class clearly beats the runner-up.

    Two-sided binomial test of ``n_A`` successes in ``n_A + n_B`` trials at 1/2,
    ``n_A, n_B`` the two largest counts; returns the top class if the p-value
    is ``<= alpha``.  The top class is the first index with the largest count;
    equal top counts (and all-zero counts) give p-value 1, hence abstention.

    Parameters
    ----------
    counts : array_like of int, shape (..., C)
        Class counts of ``n`` noisy samples; leading dims index independent inputs.
    alpha : float
        Level in (0, 1): the probability of returning a class other than the
        smoothed classifier's is at most ``alpha`` (per input).

    Returns
    -------
    PredictResult

    References
    ----------
    .. [1] Cohen, Rosenfeld, Kolter, ICML 2019, PREDICT.

    Examples
    --------
    >>> from mtcert.certify.cohen import predict
    >>> res = predict([[80, 15, 5], [40, 35, 25]], alpha=0.001)
    >>> res.label
    array([ 0, -1])
    """
    alpha = check_alpha(alpha)
    counts = as_class_counts(counts, "counts")
    top = np.argmax(counts, axis=-1)
    ordered = np.sort(counts, axis=-1)
    n_a = ordered[..., -1]
    n_b = ordered[..., -2] if counts.shape[-1] > 1 else np.zeros_like(n_a)
    total = n_a + n_b
    empty = total == 0
    pv = np.asarray(binom_test(n_a, np.where(empty, 1, total), 0.5, alternative="two-sided"))
    pv = np.where(empty, 1.0, pv)
    label = np.where(pv <= alpha, top, ABSTAIN)
    return PredictResult(label=_out(label), pvalue=_out(pv), alpha=alpha)


def certify(counts0, counts, *, alpha, sigma=1.0, noise="gaussian"):
    """Cohen et al.'s CERTIFY from guessing and testing class counts.

    Guess the top class of ``counts0``, lower-bound its probability from
    ``counts`` with the one-sided Clopper–Pearson bound at level ``alpha``, and
    certify radius ``R(p_lower)`` if ``p_lower > 1/2``.

    Parameters
    ----------
    counts0 : array_like of int, shape (..., C)
        Class counts of the ``n0`` guessing samples (leading dims: inputs).
    counts : array_like of int, shape (..., C)
        Class counts of ``n`` testing samples **independent of the guessing
        samples** (``n`` may differ between inputs, but must be >= 1).
    alpha : float
        Level in (0, 1): per input, the certificate fails with probability at
        most ``alpha``.
    sigma : float, default 1.0
        Noise scale (see ``noise``).
    noise : {"gaussian", "laplace", "uniform"}
        Radius formula: ``sigma * Phi^{-1}(p)`` (ℓ2), ``-sigma ln(2(1 - p))``
        (ℓ1, Laplace scale) or ``2 sigma (p - 1/2)`` (ℓ1, uniform half width).

    Returns
    -------
    CertifyResult
        ``radius`` is NaN (and ``label`` ABSTAIN) where ``p_lower <= 1/2``.

    References
    ----------
    .. [1] Cohen, Rosenfeld, Kolter, ICML 2019, CERTIFY.

    Examples
    --------
    >>> from mtcert.certify.cohen import certify
    >>> res = certify([[9, 1], [5, 5]], [[95, 5], [60, 40]], alpha=0.001, sigma=0.5)
    >>> res.label
    array([ 0, -1])
    >>> res.radius.round(3)
    array([0.507,   nan])
    """
    alpha = check_alpha(alpha)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", NOISE_MODELS)
    counts0, counts = as_independent_count_pair(counts0, counts)
    guess = np.argmax(counts0, axis=-1)
    hits = np.take_along_axis(counts, guess[..., None], axis=-1)[..., 0]
    n = counts.sum(axis=-1)
    if np.any(n == 0):
        raise ValueError("counts must hold at least one testing sample per input; found n = 0")
    p_lower, certified, r = _p_lower_and_radius(hits, n, alpha, sigma, noise)
    return CertifyResult(
        label=_out(np.where(certified, guess, ABSTAIN)),
        p_lower=_out(p_lower),
        radius=_out(r),
        alpha=alpha,
        sigma=sigma,
        noise=noise,
    )


@dataclass(frozen=True)
class JointClassResult:
    """Result of :func:`jointclass`.

    ``labels`` (the guessed label vector, or all ABSTAIN; ``None`` from
    :func:`jointclass_hits` without a guess), ``certified`` (bool
    per batch entry), ``hits`` (testing samples equal to the guessed vector),
    ``p_lower``, ``radius`` (NaN where abstaining), ``alpha``, ``sigma``, ``noise``.
    """

    labels: np.ndarray | None
    certified: np.ndarray
    hits: np.ndarray
    p_lower: np.ndarray
    radius: np.ndarray
    alpha: float
    sigma: float
    noise: str

    def __repr__(self):
        return (
            f"JointClassResult(certified={_fmt(self.certified)}, radius={_fmt(self.radius)}, "
            f"p_lower={_fmt(self.p_lower)}, alpha={self.alpha!r}, labels shape "
            f"{np.shape(self.labels)})"
        )


def _samples(x, name):
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        arr = as_counts(arr, name)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., n_samples, N); got {arr.shape}")
    if arr.shape[-2] == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} is empty; got shape {arr.shape}")
    return arr


def jointclass(samples0, samples, *, alpha, sigma=1.0, noise="gaussian"):
    """JOINTCLASS: CERTIFY with the whole label vector as one class (paper §4).

    The guess is the most frequent label vector among the guessing samples
    (ties: any one of them, chosen without looking at ``samples``); its hits
    are the testing samples whose whole label vector equals it.

    Parameters
    ----------
    samples0 : array_like of int, shape (..., n0, N)
        Sampled label vectors of the ``n0`` guessing samples (N components;
        flatten an image to ``H * W``).  Leading dims: independent repetitions.
    samples : array_like of int, shape (..., n, N)
        Sampled label vectors of ``n`` testing samples, independent of
        ``samples0``; same leading dims and N.
    alpha, sigma, noise
        As in :func:`certify`.

    Returns
    -------
    JointClassResult

    Notes
    -----
    With only the number ``h`` of testing samples equal to the guessed vector,
    use :func:`jointclass_hits` (this function counts ``h`` and calls it).

    References
    ----------
    .. [1] Fischer, Baader, Vechev, ICML 2021, §4 ("JOINTCLASS").

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.cohen import jointclass
    >>> s0 = np.array([[1, 2, 2]] * 9 + [[1, 0, 2]])
    >>> s = np.array([[1, 2, 2]] * 98 + [[0, 2, 2]] * 2)
    >>> res = jointclass(s0, s, alpha=0.001)
    >>> res.labels, bool(res.certified), int(res.hits)
    (array([1, 2, 2]), True, 98)
    """
    alpha = check_alpha(alpha)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", NOISE_MODELS)
    if samples0 is samples or np.may_share_memory(samples0, samples):
        raise ValueError(
            "samples0 and samples must come from independent samples; "
            "got the same (or overlapping) array for both"
        )
    s0 = _samples(samples0, "samples0")
    s = _samples(samples, "samples")
    if s0.shape[:-2] != s.shape[:-2] or s0.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"samples0 and samples must agree in batch dims and N; got {s0.shape} and {s.shape}"
        )
    if np.any(s0 < 0) or np.any(s < 0):
        raise ValueError("samples must hold non-negative labels")
    batch = s0.shape[:-2]
    n_comp = s0.shape[-1]
    dtype = np.promote_types(s0.dtype, s.dtype)
    # one void scalar per label vector: exact equality of whole vectors
    row = np.dtype((np.void, n_comp * dtype.itemsize))
    v0 = np.ascontiguousarray(s0, dtype=dtype).reshape(-1, s0.shape[-2], n_comp)
    v = np.ascontiguousarray(s, dtype=dtype).reshape(-1, s.shape[-2], n_comp)
    n_batch = v0.shape[0]
    guess = np.empty((n_batch, n_comp), dtype)
    hits = np.empty(n_batch, np.int64)
    for b in range(n_batch):
        _, idx, cnt = np.unique(v0[b].view(row).ravel(), return_index=True, return_counts=True)
        top = idx[np.argmax(cnt)]
        guess[b] = v0[b, top]
        hits[b] = np.count_nonzero(np.all(v[b] == guess[b], axis=-1))
    return _jointclass_decide(
        guess.reshape((*batch, n_comp)), hits.reshape(batch), s.shape[-2], alpha, sigma, noise
    )


def _jointclass_decide(guess, hits, n, alpha, sigma, noise) -> JointClassResult:
    """JOINTCLASS's decision from validated hit counts (the one place it is made)."""
    p_lower, certified, r = _p_lower_and_radius(hits, n, alpha, sigma, noise)
    labels = None
    if guess is not None:
        labels = np.where(certified[..., None], guess, ABSTAIN)
    return JointClassResult(
        labels=labels,
        certified=_out(certified),
        hits=_out(hits),
        p_lower=_out(p_lower),
        radius=_out(r),
        alpha=alpha,
        sigma=sigma,
        noise=noise,
    )


def jointclass_hits(
    guess: ArrayLike | None,
    hits: ArrayLike,
    n: int | ArrayLike,
    *,
    alpha: float,
    sigma: float = 1.0,
    noise: str = "gaussian",
) -> JointClassResult:
    """JOINTCLASS from the guessed label vector's hit count (streaming form).

    For samplers (and simulators) that keep only how many of the ``n`` testing
    samples reproduced the guessed label vector *exactly*, mirroring
    :func:`mtcert.certify.segmentation.segcertify_hits`.  :func:`jointclass` reduces to it.

    Parameters
    ----------
    guess : array_like of int, shape (..., N), or None
        The guessed (modal) label vector per input; ``None`` when only the
        decision is needed (``labels`` of the result is then ``None``).
    hits : array_like of int, shape (...)
        Testing samples whose whole label vector equals the guess, in [0, n].
        **Must come from samples independent of those that chose the guess.**
    n : int or array_like of int
        Number of testing samples (>= 1), one for all inputs or one per input.
    alpha, sigma, noise
        As in :func:`certify`.

    Returns
    -------
    JointClassResult

    Examples
    --------
    >>> from mtcert.certify.cohen import jointclass_hits
    >>> res = jointclass_hits(None, [98, 60], 100, alpha=0.001)
    >>> res.certified
    array([ True, False])
    >>> jointclass_hits([1, 2, 2], 98, 100, alpha=0.001).labels
    array([1, 2, 2])
    """
    alpha = check_alpha(alpha)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", NOISE_MODELS)
    hits, n = _hits_and_n(hits, n)
    if guess is not None:
        guess = as_counts(guess, "guess")
        if guess.ndim < 1 or guess.shape[:-1] != hits.shape or guess.shape[-1] == 0:
            raise ValueError(
                f"guess must have shape (*hits.shape, N) with N >= 1; got {guess.shape} "
                f"for hits of shape {hits.shape}"
            )
    return _jointclass_decide(guess, hits, n, alpha, sigma, noise)


@dataclass(frozen=True)
class IndivClassResult:
    """Result of :func:`indivclass`.

    ``labels`` (the guesses if every component of the family is certified,
    else all ABSTAIN), ``certified`` (bool per family), ``radius`` (min of the
    component radii; NaN where abstaining), ``component_labels``,
    ``component_radius`` and ``p_lower`` (per component CERTIFY outcomes),
    ``alpha`` (overall level), ``alpha_per_test`` (``alpha / N``).
    """

    labels: np.ndarray
    certified: np.ndarray
    radius: np.ndarray
    component_labels: np.ndarray
    component_radius: np.ndarray
    p_lower: np.ndarray
    alpha: float
    alpha_per_test: float
    sigma: float
    noise: str

    def __repr__(self):
        return (
            f"IndivClassResult(certified={_fmt(self.certified)}, radius={_fmt(self.radius)}, "
            f"alpha={self.alpha!r}, alpha_per_test={self.alpha_per_test!r}, labels shape "
            f"{np.shape(self.labels)})"
        )


def indivclass(counts0, counts, *, alpha, sigma=1.0, noise="gaussian", axis=None):
    """INDIVCLASS: CERTIFY every component at ``alpha / N`` (Bonferroni), paper §4.

    A single abstaining component abstains the whole family; otherwise the
    family is certified at the smallest component radius.

    Parameters
    ----------
    counts0, counts : array_like of int, shape (..., C)
        Guessing and (independent) testing class counts per component, class
        axis last, as in :func:`mtcert.certify.segmentation.segcertify`.
    alpha : float
        Overall level: all N component certificates hold jointly with
        probability at least ``1 - alpha`` (union bound).
    sigma, noise
        As in :func:`certify`.
    axis : int or None, default None
        None: all components form one family (one input); an integer: every
        1-D slice of the component array along ``axis`` is its own family
        (e.g. ``axis=-1`` for counts of shape ``(repetitions, N, C)``).

    Returns
    -------
    IndivClassResult

    References
    ----------
    .. [1] Fischer, Baader, Vechev, ICML 2021, §4 ("INDIVCLASS").

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.cohen import indivclass
    >>> c0 = np.array([[10, 0], [0, 10]])
    >>> res = indivclass(c0, np.array([[100, 0], [1, 99]]), alpha=0.001, sigma=0.25)
    >>> res.labels, bool(res.certified), round(float(res.radius), 3)
    (array([0, 1]), True, 0.327)
    """
    alpha = check_alpha(alpha)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", NOISE_MODELS)
    counts0, counts = as_independent_count_pair(counts0, counts)
    guess = np.argmax(counts0, axis=-1)
    hits = np.take_along_axis(counts, guess[..., None], axis=-1)[..., 0]
    n = counts.sum(axis=-1)
    if np.any(n == 0):
        raise ValueError("counts must hold at least one testing sample per input; found n = 0")
    return _indivclass_decide(guess, hits, n, alpha, sigma, noise, axis)


def indivclass_hits(
    guess: ArrayLike,
    hits: ArrayLike,
    n: int | ArrayLike,
    *,
    alpha: float,
    sigma: float = 1.0,
    noise: str = "gaussian",
    axis: int | None = None,
) -> IndivClassResult:
    """INDIVCLASS from guessed labels and their hit counts (streaming form).

    The per-component form of :func:`indivclass`, mirroring
    :func:`mtcert.certify.segmentation.segcertify_hits`: component ``i`` guessed label
    ``guess[i]``, which came up ``hits[i]`` times among ``n`` testing samples.

    Parameters
    ----------
    guess : array_like of int
        Guessed label per component (any shape; non-negative).
    hits : array_like of int
        Same shape as ``guess``, values in [0, n].  **Must come from samples
        independent of those that produced** ``guess``.
    n : int or array_like of int
        Testing samples (>= 1): one for all components or one per component.
    alpha, sigma, noise, axis
        As in :func:`indivclass`.

    Returns
    -------
    IndivClassResult

    Examples
    --------
    >>> from mtcert.certify.cohen import indivclass_hits
    >>> res = indivclass_hits([[0, 1], [0, 1]], [[100, 99], [100, 60]], 100,
    ...                       alpha=0.001, sigma=0.25, axis=-1)
    >>> res.certified
    array([ True, False])
    >>> res.labels
    array([[ 0,  1],
           [-1, -1]])
    """
    alpha = check_alpha(alpha)
    sigma = check_positive_real(sigma, "sigma")
    noise = check_option(noise, "noise", NOISE_MODELS)
    hits, n = _hits_and_n(hits, n)
    guess = as_counts(guess, "guess")
    if guess.shape != hits.shape:
        raise ValueError(
            f"guess and hits must have the same shape; got {guess.shape} and {hits.shape}"
        )
    if hits.size == 0:
        raise ValueError("hits is empty: there are no components to certify")
    return _indivclass_decide(guess, hits, n, alpha, sigma, noise, axis)


def _indivclass_decide(guess, hits, n, alpha, sigma, noise, axis) -> IndivClassResult:
    """INDIVCLASS's decision from validated guesses and hits (the one place it is made)."""
    comp_shape = hits.shape
    if axis is None:
        fam_axis = None
        m = hits.size
    else:
        comp_ndim = len(comp_shape)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"axis must be None or an integer; got {axis!r}")
        if not -comp_ndim <= axis < comp_ndim:
            raise ValueError(
                f"axis {axis} is out of bounds for components with {comp_ndim} dimension(s)"
            )
        fam_axis = int(axis) % comp_ndim
        m = comp_shape[fam_axis]
    alpha_per_test = alpha / m  # Bonferroni over the family's m components
    p_lower, comp_ok, comp_radius = _p_lower_and_radius(hits, n, alpha_per_test, sigma, noise)
    comp_labels = np.where(comp_ok, guess, ABSTAIN)
    certified = np.all(comp_ok, axis=fam_axis, keepdims=True)  # one abstention abstains all
    radius = np.where(certified, np.min(comp_radius, axis=fam_axis, keepdims=True), np.nan)
    labels = np.where(certified, comp_labels, ABSTAIN)
    if fam_axis is None:
        certified, radius = certified.reshape(()), radius.reshape(())
    else:
        certified = np.squeeze(certified, axis=fam_axis)
        radius = np.squeeze(radius, axis=fam_axis)
    return IndivClassResult(
        labels=labels,
        certified=_out(certified),
        radius=_out(radius),
        component_labels=comp_labels,
        component_radius=comp_radius,
        p_lower=p_lower,
        alpha=alpha,
        alpha_per_test=alpha_per_test,
        sigma=sigma,
        noise=noise,
    )
