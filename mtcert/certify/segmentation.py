"""SEGCERTIFY: certified segmentation by multiple testing (Fischer et al. 2021, Alg. 2).

Per component i, a class :math:`\\hat c_i` is guessed from ``n0`` samples and
its number of hits :math:`n_i` among ``n`` *independent* further samples gives
the one-sided binomial p-value :math:`pv_i = P(\\mathrm{Bin}(n, \\tau) \\ge n_i)`
of :math:`H_{0,i}: p_{\\hat c_i, i} \\le \\tau`.  An FWER (or k-FWER) procedure at
level α decides which nulls to reject; rejected components keep their guess,
the others abstain (:data:`ABSTAIN`).  With probability at least 1 - α every
certified component is a component where the τ-thresholded smoothed model
predicts the guess, and all of them are robust within ``sigma * Phi^{-1}(tau)``
(Theorem 5.1 and Proposition 1 of the paper).

Counting fast path: within a family the p-values take at most n + 1 values, so
the methods of :data:`FAST_METHODS` (Bonferroni, Šidák, Holm, Holm–Šidák,
Hochberg, Hommel, their k-FWER generalisations and Benjamini–Hochberg /
-Yekutieli) are decided from a histogram of hit counts in O(N + n)
(:mod:`mtcert._kernels.certify`).  Every other procedure goes through
:func:`mtcert.stats.multitest.adjust` (its core, which takes the procedure's code).
The method name is resolved once (:func:`~mtcert.stats.methods.resolve_method`)
and becomes its code once (:func:`_certify_hits`); below that only the code travels.

Cohen et al.'s PREDICT / CERTIFY and the paper's baselines JOINTCLASS and
INDIVCLASS live in :mod:`mtcert.certify.cohen` (only there).

Imports numpy, the kernels of :mod:`mtcert._kernels.certify` and the code table
:mod:`mtcert._kernels.methods`, :mod:`mtcert._tunables`, :mod:`mtcert._threads`,
:mod:`mtcert.stats` and :mod:`mtcert.certify.labels`.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from mtcert import _tunables
from mtcert._kernels import methods as _codes
from mtcert._kernels.certify import (
    certify_families,
    copy_first,
    decide_histogram,
    guess_and_hits,
    histogram_chunk,
    label_chunk,
    use_histogram,
)
from mtcert._threads import map_chunks, workers_for
from mtcert.certify.labels import ABSTAIN
from mtcert.stats.binomial import binom_test, greater_pvalue_table
from mtcert.stats.families import (
    check_axis,
    family_shape,
    family_size,
    from_families,
    to_families,
)
from mtcert.stats.methods import FDR_METHODS, resolve_method
from mtcert.stats.multitest import adjust_families
from mtcert.stats.radius import NOISE_MODELS, certified_radius
from mtcert.stats.validation import (
    as_independent_count_pair,
    as_integer_array,
    check_alpha,
    check_option,
    check_positive_int,
    check_positive_real,
    check_tau,
)

__all__ = [
    "FAST_METHODS",
    "NOISE_MODELS",
    "NotACertificateWarning",
    "SegmentationCertificate",
    "segcertify",
    "segcertify_hits",
]

#: Methods decided by the counting fast path (identical decisions to ``adjust``).
FAST_METHODS = {
    name: _codes.CODES[name]
    for name in (
        "bonferroni",
        "sidak",
        "holm",
        "holm-sidak",
        "hochberg",
        "hommel",
        "generalized-bonferroni",
        "generalized-holm",
        "generalized-hochberg",
        "fdr_bh",
        "fdr_by",
    )
}


# Largest number of testing samples: beyond 2**53 a count is no longer exact in
# the float64 arithmetic of the binomial tail, so the p-value could be wrong.
MAX_N = 2**53


class NotACertificateWarning(UserWarning):
    """An FDR method was asked for a certificate it cannot give.

    FDR procedures ("fdr_bh", "fdr_by", ...) bound the *expected fraction* of
    wrongly certified components, not the probability that any is wrong: the
    labels they return do not hold jointly with probability ``1 - alpha``.
    """


@dataclass(frozen=True, repr=False, eq=False)
class SegmentationCertificate:
    """Result of :func:`segcertify` / :func:`segcertify_hits`.

    Attributes
    ----------
    labels : ndarray
        The guessed label where certified, :data:`ABSTAIN` elsewhere; same
        shape as the components (0-d for a single component given as a
        scalar or as one count vector), int64.
    tau, alpha : float
        Threshold and (k-)FWER level of the certificate.
    method : str
        Canonical name of the multiple-testing procedure.
    k : int
        ``k`` of the k-FWER methods (1 otherwise).
    n : int
        Number of testing samples per component.
    axis : int, tuple of int or None
        None: all components formed one family; an int: each 1-D slice along
        ``axis`` was its own family; a tuple: the components along those axes
        together formed one family, indexed by the other axes.
    n_certified : int or ndarray
        Certified components (per family when ``axis`` is given).
    reject : ndarray of bool
        True where the null ``p <= tau`` was rejected (= certified).
    pvalues : ndarray of float64
        ``P(Bin(n, tau) >= hits)`` per component (computed on first access).
    abstain_rate, certified_rate : float or ndarray
        Fraction of components abstained / certified (per family with ``axis``).

    Notes
    -----
    For FWER methods the promise is: with probability at least ``1 - alpha``
    no component whose guessed class has probability ``<= tau`` is certified
    (for the k-FWER methods: fewer than ``k`` such components).  FDR methods
    ("fdr_*") only bound the expected *fraction* of false certifications and
    give no such certificate.
    """

    labels: np.ndarray
    tau: float
    alpha: float
    method: str
    k: int
    n: int
    axis: int | tuple[int, ...] | None
    n_certified: int | np.ndarray
    _hits: np.ndarray = field(repr=False)
    _table: np.ndarray = field(repr=False)

    @cached_property
    def reject(self) -> np.ndarray:
        # guesses are validated non-negative, so ABSTAIN marks exactly the non-rejected
        return self.labels != ABSTAIN

    @cached_property
    def pvalues(self) -> np.ndarray:
        return self._table[self._hits]

    @property
    def abstain_rate(self):
        return _out(1.0 - self.certified_rate)

    @property
    def certified_rate(self):
        if self.axis is None:
            return float(self.n_certified) / self.labels.size
        return _out(np.asarray(self.n_certified) / family_size(self.labels.shape, self.axis))

    def certified_radius(self, sigma, noise: str = "gaussian") -> float:
        """Certified radius of every certified component at ``p = tau``.

        Parameters
        ----------
        sigma : float
            Noise scale: Gaussian standard deviation (``"gaussian"``, ℓ2
            radius ``sigma * Phi^{-1}(tau)``), Laplace scale (``"laplace"``,
            ℓ1 radius ``-sigma * ln(2 (1 - tau))``) or half width of the
            uniform cube (``"uniform"``, ℓ1 radius ``2 sigma (tau - 1/2)``).
            For rotation smoothing use ``"gaussian"`` with the angle sigma:
            the radius is then in angle units (see
            :func:`mtcert.stats.radius.rotation_radius`).
        noise : {"gaussian", "laplace", "uniform"}
        """
        noise = check_option(noise, "noise", NOISE_MODELS)
        sigma = check_positive_real(sigma, "sigma")
        return float(certified_radius(self.tau, sigma, noise))

    def __repr__(self) -> str:
        fam = "one family" if self.axis is None else f"families along axis {self.axis}"
        rate = self.certified_rate
        rate_s = f"{rate:.4g}" if self.axis is None else f"mean {np.mean(rate):.4g}"
        return (
            f"SegmentationCertificate(method={self.method!r}, alpha={self.alpha!r}, "
            f"tau={self.tau!r}, k={self.k}, n={self.n}, shape={self.labels.shape}, "
            f"{fam}, certified_rate={rate_s})"
        )


def _out(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


@functools.lru_cache(maxsize=32)
def _pvalue_table(n: int, tau: float) -> np.ndarray:
    """``P(Bin(n, tau) >= j)`` for ``j = 0..n``, cached (read-only) per ``(n, tau)``.

    A certifier calls SEGCERTIFY image after image with the same ``n`` and
    ``tau``; the table is the only part whose cost does not scale with N.
    """
    table = greater_pvalue_table(n, tau)
    table.flags.writeable = False
    return table


def _hits_dtype(n):
    """The narrowest of the four hit widths the kernels are compiled for that holds ``n``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _direct_table(hits, n, tau):
    """P-values of the hit counts present only, and the hits as ranks into them.

    For few components and a large ``n`` the ``n + 1`` entry table would cost
    far more than the components (n = 1e8: 800 MB for four pixels).  The hit
    counts are replaced by their rank among the distinct counts, which keeps
    their order, so the counting kernels decide on ranks exactly as on counts;
    the p-values are the same entries the full table would hold.
    """
    levels, ranks = np.unique(hits, return_inverse=True)
    table = binom_test(levels, n, tau, alternative="greater")
    return table, ranks.reshape(hits.shape).astype(_hits_dtype(levels.size - 1))


def _family_constant(code: int, alpha: float, m: int) -> float:
    """The kernels' per-family constant of method ``code``, with ``adjust``'s operations.

    Sidak's single-step critical value, Benjamini–Yekutieli's sum of 1/l
    (as :mod:`mtcert.stats.multitest` sums it, so the same float), else 1.
    """
    if code == _codes.SIDAK:
        return float(_codes.sidak_critical(alpha, m))
    if code == _codes.FDR_BY:
        return float(_codes.harmonic_sum(m))
    return 1.0


def _one_family_threaded(guess, hits, table, alpha, k, code, const, labels, hits_copy, workers):
    """:func:`mtcert._kernels.certify.certify_families` for one large family, on threads.

    Partial histograms per thread (merged in the decision), then labels per
    chunk: the same kernels as the serial path, so the same decisions.
    """
    n = table.shape[0] - 1
    parts = np.zeros((workers, 4, n + 1), np.int64)
    early = copy_first(hits, hits_copy)
    no_copy = hits_copy[:0]

    def count(w, lo, hi):
        copy = hits_copy[lo:hi] if early else no_copy
        return histogram_chunk(hits[lo:hi], n, parts[w], copy)

    n_bad = sum(map_chunks(count, hits.size, workers))
    if n_bad:
        return None, n_bad, 0, False
    thr, n_rej = decide_histogram(
        parts.reshape(-1, n + 1), table, hits.size, alpha, float(k), code, const
    )
    if thr < 0:
        return None, 0, 0, True

    def label(_w, lo, hi):
        if early:
            return label_chunk(guess[lo:hi], hits_copy[lo:hi], thr, ABSTAIN, labels[lo:hi], no_copy)
        return label_chunk(guess[lo:hi], hits[lo:hi], thr, ABSTAIN, labels[lo:hi], hits_copy[lo:hi])

    n_neg = sum(map_chunks(label, hits.size, workers))
    return np.array([n_rej]), 0, n_neg, False


def _check_ranges(guess, hits, n):
    """Refuse hits outside [0, n] and negative guesses (min/max passes, no temporaries)."""
    lo, hi = int(hits.min()), int(hits.max())
    if lo < 0 or hi > n:
        n_bad = int(np.count_nonzero((hits < 0) | (hits > n)))
        raise ValueError(
            f"hits must lie in [0, n] = [0, {n}]; {n_bad} value(s) do not (min {lo}, max {hi})"
        )
    if int(guess.min()) < 0:
        n_neg = int(np.count_nonzero(guess < 0))
        raise ValueError(
            f"guess must hold non-negative labels ({ABSTAIN} is ABSTAIN); found {n_neg} negative"
        )


def _decide_by_adjust(table, hits2d, guess2d, labels2d, code, alpha, k):
    """The general path: p-values gathered from ``table``, decided as ``adjust`` decides.

    :func:`~mtcert.stats.multitest.adjust_families` on the (F, m) p-values,
    i.e. ``adjust(table[hits2d], method, alpha=alpha, k=k, axis=-1)`` without
    validating again (the p-values are table entries, never NaN).  Writes
    ``labels2d``; returns the rejections per family.
    """
    p2d = table[hits2d]
    m_eff = np.full(p2d.shape[0], p2d.shape[1], dtype=np.int64)
    _, rej2d = adjust_families(p2d, code, alpha, k, 1, m_eff)
    labels2d.fill(ABSTAIN)
    np.copyto(labels2d, guess2d, where=rej2d)
    return rej2d.sum(axis=-1)


def _certificate(labels2d, hits2d, n_rej, table, shape, axis, tau, alpha, method, k, n):
    """Pack the per-family results back into the caller's shape."""
    n_certified = int(n_rej[0]) if axis is None else n_rej.reshape(family_shape(shape, axis))
    return SegmentationCertificate(
        labels=from_families(labels2d, shape, axis),
        tau=tau,
        alpha=alpha,
        method=method,
        k=k,
        n=n,
        axis=axis,
        n_certified=n_certified,
        _hits=from_families(hits2d, shape, axis),
        _table=table,
    )


# The common dtypes (native byte order) go to the counting kernels as they are:
# one pass checks the range, histograms and writes the narrow private copy of
# the hits, one pass labels and counts negative guesses.  Other dtypes are
# checked and narrowed in numpy first (fewer compiled specialisations).
_FUSED_HITS = tuple(np.dtype(t) for t in (np.int64, np.int32, np.uint8, np.uint16))
_FUSED_GUESS = tuple(np.dtype(t) for t in (np.int64, np.int32))


def _certify_fused(guess, hits, n, tau, alpha, code, k, axis):
    """:func:`_certify_hits` for a counting-path method on common dtypes (see above).

    Returns ``(labels2d, hits2d, n_rejected, table)`` for :func:`_certificate`.
    """
    table = _pvalue_table(n, tau)
    hits_in = to_families(hits, axis)
    guess2d = to_families(guess, axis)
    hits2d = np.empty(hits_in.shape, _hits_dtype(n))  # the certificate's own copy
    labels2d = np.empty(hits2d.shape, np.int64)
    const = _family_constant(code, alpha, hits2d.shape[1])
    workers = workers_for(hits.size, _tunables.CERTIFY_MIN_CHUNK) if axis is None else 1
    if workers > 1 and use_histogram(hits.size // workers, n):
        n_rej, n_bad, n_neg, undecided = _one_family_threaded(
            guess2d[0], hits_in[0], table, alpha, k, code, const, labels2d[0], hits2d[0], workers
        )
    else:
        n_rej, n_bad, n_neg, undecided = certify_families(
            guess2d, hits_in, table, alpha, float(k), code, const, ABSTAIN, labels2d, hits2d
        )
    if n_bad or undecided:
        # the kernels stop early here: check everything, then decide through adjust
        _check_ranges(guess, hits, n)
        hits2d[...] = hits_in
        n_rej = _decide_by_adjust(table, hits2d, guess2d, labels2d, code, alpha, k)
    elif n_neg:
        _check_ranges(guess, hits, n)  # raises, naming guess
    return labels2d, hits2d, n_rej, table


def _certify_general(guess, hits, n, tau, alpha, code, fast, k, axis, owned):
    """:func:`_certify_hits` for any method and dtype: ranges checked first, in numpy.

    ``fast``: the method has a counting path.  Returns ``(labels2d, hits2d,
    n_rejected, table)`` for :func:`_certificate`.
    """
    _check_ranges(guess, hits, n)
    guess2d = to_families(guess.astype(np.int64, copy=False), axis)
    if use_histogram(hits.size, n):
        table = _pvalue_table(n, tau)
        if not (owned and hits.dtype == _hits_dtype(n)):
            # a narrow private copy: the certificate must not alias the caller's buffer
            hits = hits.astype(_hits_dtype(n))
        hits2d = to_families(hits, axis)
    else:
        table, hits2d = _direct_table(to_families(hits, axis), n, tau)
    labels2d = np.empty(hits2d.shape, np.int64)
    workers = 1
    if fast and axis is None:
        workers = workers_for(hits.size, _tunables.CERTIFY_MIN_CHUNK)
    undecided = not fast
    const = _family_constant(code, alpha, hits2d.shape[1])
    # the kernels' copy of the hits goes to the hits themselves: they are private here
    if workers > 1 and use_histogram(hits.size // workers, table.shape[0] - 1):
        n_rej, _, _, undecided = _one_family_threaded(
            guess2d[0], hits2d[0], table, alpha, k, code, const, labels2d[0], hits2d[0], workers
        )
    elif fast:
        n_rej, _, _, undecided = certify_families(
            guess2d, hits2d, table, alpha, float(k), code, const, ABSTAIN, labels2d, hits2d
        )
    if undecided:  # a method without a counting path, or a Holm-Sidak / Hommel near-tie
        n_rej = _decide_by_adjust(table, hits2d, guess2d, labels2d, code, alpha, k)
    return labels2d, hits2d, n_rej, table


def _certify_hits(guess, hits, n, tau, alpha, method, k, axis, *, owned=False):
    """Shared core of :func:`segcertify` and :func:`segcertify_hits` (inputs validated).

    ``method`` is the canonical name; it becomes its procedure code here, once,
    and only the code goes further down.  ``owned``: ``hits`` is a private
    array of the caller (no defensive copy needed).  The kernels see int64
    guesses and labels and hits in one of four widths (whatever the caller's
    dtypes), so that only a few specialisations compile.
    """
    shape = hits.shape
    if hits.size == 0:
        raise ValueError("hits is empty: there are no components to certify")
    if axis is not None and family_size(shape, axis) == 0:
        raise ValueError(f"axis {axis} has length 0: the families are empty")
    if n > MAX_N:
        raise ValueError(f"n must be at most 2**53 testing samples; got {n}")
    code = _codes.CODES[method]
    fast = method in FAST_METHODS
    if (
        fast
        and use_histogram(hits.size, n)
        and hits.dtype in _FUSED_HITS
        and guess.dtype in _FUSED_GUESS
    ):
        labels2d, hits2d, n_rej, table = _certify_fused(guess, hits, n, tau, alpha, code, k, axis)
    else:
        labels2d, hits2d, n_rej, table = _certify_general(
            guess, hits, n, tau, alpha, code, fast, k, axis, owned
        )
    return _warn_if_fdr(
        _certificate(labels2d, hits2d, n_rej, table, shape, axis, tau, alpha, method, k, n)
    )


def _warn_if_fdr(cert):
    """Warn (at the caller of segcertify*) when an FDR method gave ``cert``; return it."""
    if cert.method in FDR_METHODS:
        warnings.warn(
            f"method {cert.method!r} controls the false discovery rate (the expected fraction "
            "of wrongly certified components), not the family-wise error rate: the labels "
            "are not a certificate that holds with probability 1 - alpha; use an FWER "
            "method such as 'holm' for one",
            NotACertificateWarning,
            stacklevel=4,
        )
    return cert


def segcertify_hits(guess, hits, n, *, tau, alpha, method="holm", k=1, axis=None):
    """SEGCERTIFY from guessed labels and their hit counts (streaming form).

    For samplers that keep, per component, only the label guessed from the
    ``n0`` guessing samples and how often it came up among ``n`` fresh samples.

    Parameters
    ----------
    guess : array_like of int
        Guessed label per component (any shape; non-negative).
    hits : array_like of int
        Number of the ``n`` testing samples in which the component's label
        equalled ``guess``; same shape as ``guess``, values in [0, n].
        **Must come from samples independent of those that produced
        ``guess``**: reusing the guessing samples biases the hit counts upward
        and voids the certificate.
    n : int
        Number of testing samples (the same for every component).
    tau : float
        Threshold in [1/2, 1): the null hypothesis of component i is
        ``p_i <= tau``, ``p_i`` the probability of its guessed label.
    alpha : float
        Level in (0, 1): the FWER (or k-FWER) of the certificate.
    method : str, default "holm"
        Any :func:`mtcert.stats.multitest.adjust` method.  Those in
        :data:`FAST_METHODS` (all the FWER and k-FWER methods but
        "generalized-sidak", and "fdr_bh", "fdr_by") use the O(N + n)
        counting path; the others go through ``adjust``.  FWER methods valid
        under arbitrary dependence ("bonferroni", "holm", the generalized ones)
        are the safe choice; "sidak", "holm-sidak", "hochberg" and "hommel"
        need independence or positive dependence between components.  The
        FDR methods ("fdr_bh", ...) give **no** FWER certificate.
    k : int, default 1
        For the k-FWER methods: with probability ``>= 1 - alpha`` fewer than
        ``k`` false certifications (an error budget of ``k - 1``).
    axis : int, tuple of int or None, default None
        None: all components form one family (one certificate).  An integer:
        every 1-D slice along that axis is an independent family, e.g.
        ``axis=-1`` for a ``(repetitions, N)`` batch.  A tuple: as in numpy's
        reductions, the components along those axes together form one family
        and the other axes index the families, e.g. ``axis=(1, 2)`` for a
        batch of ``(B, H, W)`` images, one certificate per image.

    Returns
    -------
    SegmentationCertificate

    Raises
    ------
    ValueError
        On shape mismatch, empty input, hits outside [0, n], negative guesses,
        or invalid ``tau``, ``alpha``, ``method``, ``k``, ``n``, ``axis``.

    See Also
    --------
    segcertify : the same from class-count arrays.
    mtcert.stats.multitest.adjust : the general multiple-testing path.

    References
    ----------
    .. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation
       via Randomized Smoothing", ICML 2021, Algorithm 2 and Proposition 1.
    .. [2] S. Holm, "A simple sequentially rejective multiple test procedure",
       Scand. J. Statist. 6 (1979).
    .. [3] E. L. Lehmann, J. P. Romano, "Generalizations of the familywise
       error rate", Ann. Statist. 33 (2005).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.segmentation import segcertify_hits
    >>> guess = np.array([[3, 3, 1], [0, 2, 2]])
    >>> hits = np.array([[100, 99, 80], [100, 60, 97]])
    >>> cert = segcertify_hits(guess, hits, 100, tau=0.75, alpha=0.001)
    >>> cert.labels
    array([[ 3,  3, -1],
           [ 0, -1,  2]])
    >>> round(cert.certified_radius(sigma=0.25), 4)
    0.1686
    """
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    n = check_positive_int(n, "n", maximum=MAX_N)
    # aliases ("h", "Holm", "bh") resolved once, so they take the counting path too
    method, k = resolve_method(method, k)
    guess = as_integer_array(guess, "guess")
    hits = as_integer_array(hits, "hits")
    if guess.shape != hits.shape:
        raise ValueError(
            f"guess and hits must have the same shape; got {guess.shape} and {hits.shape}"
        )
    axis = check_axis(axis, hits.ndim)
    return _certify_hits(guess, hits, n, tau, alpha, method, k, axis)


def segcertify(counts0, counts, *, tau, alpha, method="holm", k=1, axis=None):
    """SEGCERTIFY from class counts (Fischer et al. 2021, Algorithm 2).

    Parameters
    ----------
    counts0 : array_like of int, shape (..., C)
        Class counts from the ``n0`` *guessing* samples; the class axis is the
        last one, the leading dimensions index the components (an H x W image
        is ``(H, W, C)``).  The guess is the first class with the largest count.
    counts : array_like of int, shape (..., C)
        Class counts from ``n`` further samples, **drawn independently of the
        guessing samples** (reusing them makes the test anti-conservative:
        the guess is selected to be the class that came up most often).
        Every component must total the same ``n``.
    tau, alpha, method, k, axis
        As in :func:`segcertify_hits`; ``axis`` refers to the component
        dimensions (the class axis is not counted).

    Returns
    -------
    SegmentationCertificate

    Raises
    ------
    ValueError
        On shape mismatch, negative counts, non-constant ``n``, passing the
        same array for ``counts0`` and ``counts``, or invalid options.

    References
    ----------
    .. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation
       via Randomized Smoothing", ICML 2021, Algorithm 2.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.segmentation import segcertify
    >>> counts0 = np.array([[9, 1, 0], [2, 3, 5], [0, 10, 0]])
    >>> counts = np.array([[98, 2, 0], [30, 30, 40], [1, 99, 0]])
    >>> cert = segcertify(counts0, counts, tau=0.75, alpha=0.01)
    >>> cert.labels
    array([ 0, -1,  1])
    >>> cert.n, cert.method
    (100, 'holm')
    """
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    method, k = resolve_method(method, k)
    counts0, counts = as_independent_count_pair(counts0, counts)
    comp_shape = counts.shape[:-1]
    axis = check_axis(axis, len(comp_shape))
    n_classes = counts.shape[-1]
    # outputs as narrow as the data allow: the counts are not copied or widened,
    # so the peak memory stays a small fraction of the input
    n = int(counts[(0,) * len(comp_shape)].sum(dtype=np.int64))
    guess = np.empty(comp_shape, np.int64)
    hits = np.empty(comp_shape, _hits_dtype(n))
    consistent = guess_and_hits(
        np.ascontiguousarray(counts0).reshape(-1, n_classes),
        np.ascontiguousarray(counts).reshape(-1, n_classes),
        n,
        guess.reshape(-1),
        hits.reshape(-1),
    )
    if not consistent:
        totals = counts.sum(axis=-1, dtype=np.int64)
        raise ValueError(
            "every component's counts must sum to the same n; "
            f"got totals between {int(totals.min())} and {int(totals.max())}"
        )
    if n < 1:
        raise ValueError("counts sum to n = 0: there are no testing samples")
    if n > MAX_N:
        raise ValueError(f"counts must total at most 2**53 testing samples; got n = {n}")
    return _certify_hits(guess, hits, n, tau, alpha, method, k, axis, owned=True)
