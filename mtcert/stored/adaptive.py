"""Two-stage SEGCERTIFY: a per-image number of testing samples n, planned from a pilot.

Stage one draws a *pilot* of ``n1`` noisy samples per image.  Its class counts
give the guess (the pilot doubles as the guessing stage) and, through the
planner :func:`mtcert.stored.planning.plan_samples`, the smallest n on a grid
at which this image is predicted to reach a target certified rate (a fixed
rate, or the rate it would reach at a reference n minus a tolerance), capped
by the grid's largest n (the per-image budget).  Stage two draws ``n`` *fresh*
samples, and SEGCERTIFY (:func:`mtcert.certify.segmentation.segcertify_hits`)
tests on them alone.

Why the certificate is unchanged: the guess g and the sample size n are
functions of the pilot only, and the testing samples are drawn after the
pilot and independently of it.  Conditionally on the pilot, the hits of
component i are ``Bin(n, p_{g_i, i})`` with g and n fixed, so every
p-value is exactly as valid as in fixed-n SEGCERTIFY and the procedure's
FWER (k-FWER) is at most α conditionally on the pilot, hence also
unconditionally.  Using the pilot to guess *and* to plan is as safe as using
it to guess; what is **not** safe is letting any pilot sample enter the test
(the guess is selected to agree with the pilot, so its pilot hits are biased
upward): the sampler must draw new samples.

The pilot's profile of p_A is the planner's nonparametric maximum-likelihood
fit to the image's hit histogram (pooling the image's components), and its
rate is computed exactly for the Bonferroni-type counterpart of ``method``
("bonferroni", or "generalized-bonferroni" for k > 1), which certifies a
subset of what Holm certifies: the planned n errs towards more samples.

Imports numpy, :mod:`mtcert.stats.validation`, :mod:`mtcert.certify`
(SEGCERTIFY and the sampler helper of :mod:`mtcert.certify.sequential`) and
:mod:`mtcert.stored.planning`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from mtcert.certify.segmentation import SegmentationCertificate, segcertify_hits
from mtcert.certify.sequential import fresh_hits
from mtcert.stats.methods import resolve_method
from mtcert.stats.validation import (
    as_class_counts,
    as_integer_array,
    check_alpha,
    check_positive_int,
    check_tau,
)
from mtcert.stored.planning import Profile, plan_samples, profile_from_histogram

__all__ = ["ImagePlan", "TwoStageCertificate", "plan_image_n", "two_stage_segcertify"]

#: Default grid of testing sample sizes (the last one is the per-image budget).
DEFAULT_GRID = tuple(range(10, 201, 10))


@dataclass(frozen=True, eq=False)
class ImagePlan:
    """Result of :func:`plan_image_n`.

    Attributes
    ----------
    n : int
        The planned number of testing samples (the budget when no grid n
        reaches the target).
    target : float
        The certified rate aimed at.
    predicted : float
        Predicted certified rate at ``n`` (Bonferroni-type, a lower bound for Holm).
    reached : bool
        Whether ``n`` reaches ``target`` (False: the budget was used).
    table : pandas.DataFrame
        The planner's table (``n``, ``rate``, ``threshold``, ...).
    """

    n: int
    target: float
    predicted: float
    reached: bool
    table: object = field(repr=False)


def _profile_from_hits(hits: np.ndarray, n: int) -> Profile:
    """The planner's NPMLE profile fitted to one image's pilot hit histogram."""
    hist = np.bincount(hits.ravel(), minlength=n + 1)
    return profile_from_histogram(hist, components=hits.size)


def _check_grid(n_grid) -> list:
    grid = sorted({check_positive_int(v, "n_grid") for v in np.atleast_1d(n_grid).tolist()})
    if not grid:
        raise ValueError("n_grid is empty: give at least one testing sample size")
    return grid


def _check_rate(value, name) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number; got {value!r}")
    return float(value)


def plan_image_n(
    pilot_hits,
    n_pilot,
    *,
    tau,
    alpha,
    method="holm",
    k=1,
    n_grid=DEFAULT_GRID,
    target=None,
    reference_n=None,
    tolerance=0.01,
) -> ImagePlan:
    """The smallest n on ``n_grid`` at which one image is predicted to reach its target rate.

    Parameters
    ----------
    pilot_hits : array_like of int
        Per component, hits of its guess among the ``n_pilot`` pilot samples.
    n_pilot : int
        Pilot samples per component.
    tau, alpha, method, k
        As in :func:`~mtcert.certify.segmentation.segcertify_hits`.
    n_grid : sequence of int
        Candidate testing sample sizes; the largest is the budget.
    target : float, optional
        Target certified rate in (0, 1].
    reference_n : int, optional
        Instead of ``target``: aim at the rate predicted at ``reference_n``
        (e.g. the fixed n it replaces) minus ``tolerance``.
    tolerance : float, default 0.01
        See ``reference_n``.

    Returns
    -------
    ImagePlan

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.stored.adaptive import plan_image_n
    >>> rng = np.random.default_rng(0)
    >>> easy = rng.binomial(20, np.r_[np.full(9_700, 0.999), np.full(300, 0.7)])
    >>> plan_image_n(easy, 20, tau=0.75, alpha=0.001, reference_n=100).n
    70
    >>> hard = rng.binomial(20, np.r_[np.full(6_000, 0.999), rng.uniform(0.7, 1, 4_000)])
    >>> plan_image_n(hard, 20, tau=0.75, alpha=0.001, reference_n=100).n
    100
    """
    n_pilot = check_positive_int(n_pilot, "n_pilot")
    hits = as_integer_array(pilot_hits, "pilot_hits")
    if hits.size == 0:
        raise ValueError("pilot_hits is empty: there are no components to plan for")
    if int(hits.min()) < 0 or int(hits.max()) > n_pilot:
        raise ValueError(f"pilot_hits must lie in [0, n_pilot] = [0, {n_pilot}]")
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    method, k = resolve_method(method, k)
    grid = _check_grid(n_grid)
    if (target is None) == (reference_n is None):
        raise ValueError("give exactly one of target and reference_n")
    if target is not None:
        target = _check_rate(target, "target")
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target must lie in (0, 1]; got {target!r}")
    else:
        reference_n = check_positive_int(reference_n, "reference_n")
        tolerance = _check_rate(tolerance, "tolerance")
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must lie in [0, 1); got {tolerance!r}")
        grid = sorted({*grid, reference_n})
    # Bonferroni-type counterpart: exact, and certifies a subset of Holm's set
    plan_method = "generalized-bonferroni" if k > 1 else "bonferroni"
    plan = plan_samples(
        _profile_from_hits(hits, n_pilot), tau=tau, alpha=alpha, method=plan_method, k=k,
        N=hits.size, n=grid,
    )  # fmt: skip
    table = plan.table
    if target is None:
        target = max(0.0, plan.rate(reference_n) - tolerance)
        table = table[table["n"] <= max(_check_grid(n_grid))]
    ok = table.index[table["rate"] >= target]
    row = table.loc[ok[0]] if len(ok) else table.iloc[-1]
    return ImagePlan(
        n=int(row["n"]), target=float(target), predicted=float(row["rate"]),
        reached=bool(len(ok)), table=table,
    )  # fmt: skip


@dataclass(frozen=True, repr=False, eq=False)
class TwoStageCertificate:
    """Result of :func:`two_stage_segcertify`.

    Attributes
    ----------
    certificate : SegmentationCertificate
        SEGCERTIFY on the ``n`` fresh testing samples.
    n_pilot, n : int
        Pilot (= guessing) samples and testing samples of this image.
    plan : ImagePlan or None
        The planner's choice (None when ``choose_n`` chose n).
    """

    certificate: SegmentationCertificate
    n_pilot: int
    n: int
    plan: ImagePlan | None

    @property
    def passes(self) -> int:
        """Forward passes spent on the image: ``n_pilot + n``."""
        return self.n_pilot + self.n

    @property
    def labels(self) -> np.ndarray:
        return self.certificate.labels

    @property
    def certified_rate(self) -> float:
        return self.certificate.certified_rate

    def __repr__(self) -> str:
        c = self.certificate
        return (
            f"TwoStageCertificate(method={c.method!r}, alpha={c.alpha!r}, tau={c.tau!r}, "
            f"n_pilot={self.n_pilot}, n={self.n}, passes={self.passes}, "
            f"shape={c.labels.shape}, certified_rate={c.certified_rate:.4g})"
        )


def two_stage_segcertify(
    pilot_counts,
    sample,
    *,
    tau,
    alpha,
    method="holm",
    k=1,
    n_grid=DEFAULT_GRID,
    target=None,
    reference_n=None,
    tolerance=0.01,
    choose_n=None,
) -> TwoStageCertificate:
    """SEGCERTIFY with n chosen per image from a pilot that also makes the guess.

    Parameters
    ----------
    pilot_counts : array_like of int, shape (..., C)
        Class counts of the ``n1`` pilot samples per component (one image =
        one family).  The guess is their argmax (ties to the lowest class).
    sample : callable ``sample(m, guess) -> hits or class counts``
        Draws ``m`` **fresh** samples, independent of the pilot (see
        :func:`mtcert.certify.sequential.fresh_hits`).
    tau, alpha, method, k
        As in :func:`~mtcert.certify.segmentation.segcertify_hits`.
    n_grid, target, reference_n, tolerance
        As in :func:`plan_image_n` (give ``target`` or ``reference_n``).
    choose_n : callable ``choose_n(pilot_hits, n1) -> int``, optional
        Any other rule for n that looks only at the pilot (replaces the planner).

    Returns
    -------
    TwoStageCertificate

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.stored.adaptive import two_stage_segcertify
    >>> rng = np.random.default_rng(1)
    >>> p = np.r_[np.full(9_700, 0.999), np.full(300, 0.7)]     # P(class 1) per pixel
    >>> def sample(m, guess=None):                              # class counts of m samples
    ...     c1 = rng.binomial(m, p)
    ...     return np.stack([m - c1, c1], axis=-1)
    >>> res = two_stage_segcertify(sample(20), sample, tau=0.75, alpha=0.001,
    ...                            reference_n=100)
    >>> res.n, res.passes, round(res.certified_rate, 3)
    (70, 90, 0.97)
    """
    counts = as_class_counts(pilot_counts, "pilot_counts")
    totals = counts.sum(axis=-1)
    n1 = int(totals.flat[0])
    if n1 < 1 or not np.all(totals == n1):
        raise ValueError("pilot_counts must sum to the same n1 >= 1 in every component")
    guess = np.argmax(counts, axis=-1).astype(np.int64)
    pilot_hits = np.take_along_axis(counts, guess[..., None], axis=-1)[..., 0]
    plan = None
    if choose_n is None:
        plan = plan_image_n(
            pilot_hits, n1, tau=tau, alpha=alpha, method=method, k=k, n_grid=n_grid,
            target=target, reference_n=reference_n, tolerance=tolerance,
        )  # fmt: skip
        n = plan.n
    else:
        if not callable(choose_n):
            raise ValueError(f"choose_n must be callable; got {type(choose_n).__name__}")
        n = check_positive_int(choose_n(pilot_hits, n1), "choose_n(pilot_hits, n1)")
    # the test sees only samples drawn now: independent of the pilot that chose guess and n
    hits = fresh_hits(sample, n, guess)
    cert = segcertify_hits(guess, hits, n, tau=tau, alpha=alpha, method=method, k=k)
    return TwoStageCertificate(certificate=cert, n_pilot=n1, n=n, plan=plan)
