"""Synthetic base models ("oracles") for power studies (paper §6.1, App. B).

An oracle ignores its input: component ``i`` of its output shows class ``c``
with a fixed probability ``p[i, c]``, independently across components and
across calls.  That is all a certification algorithm can observe of a base
model, so it is enough to measure the power of SEGCERTIFY, JOINTCLASS and
INDIVCLASS exactly, without running a network.

Draws are made at the level the algorithms consume them — binomial or
multinomial class counts, and the guessed class's hit count — never as
``n x N`` individual samples, except for :meth:`~Oracle.sample_labels`, which
materialises joint samples on purpose (a reference for small problems).
JOINTCLASS needs the mode of ``n0`` *joint* draws; :meth:`~Oracle.sample_joint_mode`
simulates it exactly from sparse deviation sets (see
:mod:`mtcert._kernels.oracle`), at a cost proportional to the number of wrong
components drawn rather than to ``n0 * N``.

Guessing convention
-------------------
The guess of a component is the ``argmax`` of its ``n0`` class counts, with
ties going to the lowest class index, exactly as :func:`numpy.argmax` and
Cohen et al.'s reference code.  For :class:`BinaryOracle` the true class is 1,
so a tie (possible when ``n0`` is even) goes to the *wrong* class: the
pessimistic choice, and the one the paper's released simulator makes.
The mode of joint draws breaks ties toward the vector drawn first.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §6.1 and App. B.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from mtcert._kernels.oracle import joint_mode_kernel
from mtcert.stats.binomial import binom_test
from mtcert.stats.validation import as_probabilities, check_positive_int

__all__ = ["BinaryOracle", "JointMode", "MultiClassOracle", "Oracle", "check_gamma"]

# Columns drawn per binomial call: bounds the temporaries of sample_guess_hits
# at a few times this many elements whatever N is.
_CHUNK_ELEMENTS = 1 << 20


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)); "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_reps(reps: object) -> int | None:
    return None if reps is None else check_positive_int(reps, "reps")


@dataclass(frozen=True)
class JointMode:
    """The modal joint label vector among ``n0`` joint draws, per repetition.

    Attributes
    ----------
    probability : ndarray (reps,)
        Probability of the modal vector under the oracle (the quantity JOINTCLASS
        must lower-bound).
    n_wrong : ndarray (reps,)
        Components on which the modal vector differs from the truth.
    mode_count : ndarray (reps,)
        Occurrences of the modal vector among the ``n0`` guessing draws.
    """

    probability: np.ndarray
    n_wrong: np.ndarray
    mode_count: np.ndarray


class Oracle:
    """A synthetic base model: component ``i`` shows class ``c`` with probability ``p[i, c]``.

    The common interface of :class:`BinaryOracle` and :class:`MultiClassOracle`,
    and the base of your own class laws.  A subclass defines

    - ``n_components`` and ``n_classes`` (ints, attributes or properties),
    - :attr:`truth`, the true label of every component, and
    - :meth:`class_probabilities`, the rows of the ``(N, C)`` law;

    everything else (:meth:`correct_probabilities`, :meth:`label_probabilities`
    and all the sampling, JOINTCLASS's included) is derived from these.  The
    two built-in oracles override the derived methods with cheaper ones.

    To run a power study on a subclass with ``backend="processes"`` or an
    executor, its instances must pickle: define the class at the top level of
    a module (not inside a function).

    Examples
    --------
    A law in stripes: component ``i`` has true class ``i % 3``, shown with
    probability 0.9, the other two classes with 0.05 each.

    >>> import numpy as np
    >>> from mtcert.sim.oracle import Oracle
    >>> class Stripes(Oracle):
    ...     n_classes = 3
    ...
    ...     def __init__(self, N):
    ...         self.n_components = N
    ...
    ...     @property
    ...     def truth(self):
    ...         return np.arange(self.n_components) % 3
    ...
    ...     def class_probabilities(self, lo=0, hi=None):
    ...         truth = self.truth[lo:hi]
    ...         p = np.full((truth.size, 3), 0.05)
    ...         p[np.arange(truth.size), truth] = 0.9
    ...         return p
    >>> oracle = Stripes(4)
    >>> oracle.correct_probabilities()
    array([0.9, 0.9, 0.9, 0.9])
    >>> oracle.label_probabilities([0, 0, 2, 0])
    array([0.9 , 0.05, 0.9 , 0.9 ])
    >>> guess, hits = oracle.sample_guess_hits(100, 100, rng=np.random.default_rng(0))
    >>> guess
    array([0, 1, 2, 0], dtype=int8)
    """

    n_components: int
    n_classes: int

    # -- what a subclass provides -------------------------------------------------
    @property
    def truth(self) -> np.ndarray:
        """True label of each component, shape ``(N,)``, integers in ``[0, C)``.

        Used for the certified-and-correct rate of a power study and for the
        JOINTCLASS mode.  It need not be the most likely label.

        Examples
        --------
        >>> from mtcert.sim.oracle import BinaryOracle, MultiClassOracle
        >>> BinaryOracle(N=3, gamma=0.1).truth
        array([1, 1, 1])
        >>> MultiClassOracle([[0.2, 0.8], [0.6, 0.4]]).truth
        array([1, 0])
        """
        raise NotImplementedError(f"{type(self).__name__} must define truth")

    def class_probabilities(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The class law of components ``lo`` to ``hi - 1``, shape ``(hi - lo, C)``.

        Row ``i`` holds the probabilities of the ``C`` classes for component
        ``lo + i``; rows sum to 1.  :meth:`sample_guess_hits` (all a power
        study's SEGCERTIFY and INDIVCLASS runs draw) asks for slices of at most
        2**20 components, so a subclass may compute rows on demand rather than
        store ``N x C`` numbers; the other samplers ask for the whole table.

        Parameters
        ----------
        lo : int, default 0
            First component.
        hi : int, optional
            One past the last component (default: ``N``).

        Returns
        -------
        ndarray of float64, shape ``(hi - lo, C)``

        Examples
        --------
        >>> from mtcert.sim.oracle import BinaryOracle
        >>> BinaryOracle(N=3, gamma=0.1, n_bad=1).class_probabilities()
        array([[0.5, 0.5],
               [0.1, 0.9],
               [0.1, 0.9]])
        """
        raise NotImplementedError(f"{type(self).__name__} must define class_probabilities")

    # -- derived from the law (overridden where cheaper) --------------------------
    def correct_probabilities(self) -> np.ndarray:
        """Probability that each component shows its true label, shape ``(N,)``.

        Examples
        --------
        >>> from mtcert.sim.oracle import MultiClassOracle
        >>> MultiClassOracle([[0.7, 0.3], [0.1, 0.9]], truth=[0, 0]).correct_probabilities()
        array([0.7, 0.1])
        """
        p = self.class_probabilities()
        return p[np.arange(self.n_components), np.asarray(self.truth)]

    def label_probabilities(self, labels: ArrayLike) -> np.ndarray:
        """Probability that component ``i`` shows ``labels[..., i]``.

        The true probability of a guessed label: the quantity a certificate
        on that label makes claims about (a power study counts a certified
        label as false when it is ``<= tau``).

        Parameters
        ----------
        labels : array_like of int, shape ``(..., N)``
            One label per component, with any leading (e.g. repetition) axes.
            Labels outside ``[0, C)`` have probability 0.

        Returns
        -------
        ndarray of float64, the shape of ``labels``

        Raises
        ------
        ValueError
            When the last axis of ``labels`` is not of length ``N``.

        Examples
        --------
        >>> from mtcert.sim.oracle import BinaryOracle
        >>> BinaryOracle(N=3, gamma=0.1).label_probabilities([[1, 0, 1], [0, 0, 7]])
        array([[0.9, 0.1, 0.9],
               [0.1, 0.1, 0. ]])
        """
        labels = self._check_labels(labels)
        N = self.n_components
        ok = (labels >= 0) & (labels < self.n_classes)
        got = self.class_probabilities()[np.arange(N), np.where(ok, labels, 0)]
        return np.where(ok, got, 0.0)

    def _check_labels(self, labels):
        labels = np.asarray(labels)
        if labels.shape[-1:] != (self.n_components,):
            raise ValueError(f"labels must have last axis of length N = {self.n_components}")
        return labels

    def _draw_guess_hits(self, rng, n0, n, rows, lo, hi):
        p = self.class_probabilities(lo, hi)
        counts0 = rng.multinomial(n0, p, size=(rows, hi - lo))
        guess = np.argmax(counts0, axis=-1).astype(np.int64)
        hits = rng.binomial(n, p[np.arange(hi - lo), guess])
        return guess, hits

    def _draw_counts(self, rng, n, shape):
        return rng.multinomial(n, self.class_probabilities(), size=(*shape, self.n_components))

    def _draw_labels(self, rng, n):
        cdf = np.cumsum(self.class_probabilities(), axis=1)
        u = rng.random((n, self.n_components, 1))
        return np.minimum((u >= cdf).sum(axis=-1), self.n_classes - 1).astype(np.int64)

    def _blocks(self):
        # every component its own block, wrong labels drawn from the law without the truth
        p = self.class_probabilities()
        N, C = p.shape
        truth = np.asarray(self.truth)
        q = p[np.arange(N), truth]
        wrong = p.copy()
        wrong[np.arange(N), truth] = 0.0
        mass = wrong.sum(axis=1, keepdims=True)
        # Where a component is never wrong the conditional law is never used.
        cond = np.divide(wrong, mass, out=np.full_like(wrong, 1.0 / C), where=mass > 0)
        cdf = np.cumsum(cond, axis=1)
        cdf[:, -1] = 1.0
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
            logp = np.log(p)
        return (
            np.ones(N, dtype=np.int64),
            np.arange(N, dtype=np.int64),
            1.0 - q,
            log_q,
            np.ascontiguousarray(cdf),
            np.ascontiguousarray(logp),
        )

    # -- shared API ----------------------------------------------------------------
    def sample_guess_hits(
        self, n0: int, n: int, *, rng: np.random.Generator, reps: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Simulate the two sampling stages of CERTIFY / SEGCERTIFY per component.

        Stage one draws ``n0`` class counts per component and guesses their
        ``argmax`` (ties to the lowest class index); stage two, independent of
        the first, draws the guessed class's hit count among ``n`` fresh samples,
        ``Bin(n, p[i, guess_i])``.

        Parameters
        ----------
        n0, n : int
            Sample sizes of the guessing and the testing stage (>= 1).
        rng : numpy.random.Generator
        reps : int, optional
            Number of independent repetitions; adds a leading axis.

        Returns
        -------
        guess, hits : ndarray, shape ``(N,)`` or ``(reps, N)``
            Signed integers of the smallest type that holds the labels (int8
            for fewer than 128 classes), and int32 hit counts (int64 when
            ``n >= 2**31``).
        """
        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        rng = _check_rng(rng)
        reps_ = _check_reps(reps)
        rows = 1 if reps_ is None else reps_
        N = self.n_components
        # Compact dtypes: at N = 1e7 the outputs dominate memory.
        guess = np.empty((rows, N), dtype=np.min_scalar_type(-self.n_classes))
        hits = np.empty((rows, N), dtype=np.int32 if n < 2**31 else np.int64)
        width = max(1, _CHUNK_ELEMENTS // rows)
        for lo in range(0, N, width):
            hi = min(N, lo + width)
            guess[:, lo:hi], hits[:, lo:hi] = self._draw_guess_hits(rng, n0, n, rows, lo, hi)
        if reps_ is None:
            return guess[0], hits[0]
        return guess, hits

    def sample_joint_mode(
        self, n0: int, *, rng: np.random.Generator, reps: int | None = None
    ) -> JointMode:
        """Simulate the modal joint label vector among ``n0`` joint draws.

        This is the guessing stage of JOINTCLASS, which treats the whole label
        vector as one class.  The returned probability of the modal vector is
        exact; a caller then draws its hit count among ``n`` fresh joint samples
        as ``Bin(n, probability)``.

        Parameters
        ----------
        n0 : int
        rng : numpy.random.Generator
        reps : int, optional
            Number of independent repetitions (a leading axis of length reps;
            0-d results when omitted).
        """
        n0 = check_positive_int(n0, "n0")
        rng = _check_rng(rng)
        reps_ = _check_reps(reps)
        sizes, offsets, err, log_q, wrong_cdf, wrong_logp = self._blocks()
        with np.errstate(divide="ignore"):
            log_p, n_wrong, count = joint_mode_kernel(
                rng, 1 if reps_ is None else reps_, n0, sizes, offsets, err, log_q,
                wrong_cdf, wrong_logp,
            )  # fmt: skip
        prob = np.exp(log_p)
        if reps_ is None:
            return JointMode(prob[0], n_wrong[0], count[0])
        return JointMode(prob, n_wrong, count)

    def sample_counts(
        self, n: int, *, rng: np.random.Generator, size: int | tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Class counts of ``n`` samples per component, shape ``(*size, N, C)``."""
        n = check_positive_int(n, "n")
        rng = _check_rng(rng)
        shape = () if size is None else tuple(np.atleast_1d(size).astype(int))
        return self._draw_counts(rng, n, shape)

    def sample_labels(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint label vectors, shape ``(n, N)`` (materialised: small N only)."""
        n = check_positive_int(n, "n")
        rng = _check_rng(rng)
        return self._draw_labels(rng, n)


def check_gamma(gamma: object) -> float:
    """Validate an error rate ``gamma`` in [0, 1] (a real number, not a bool)."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"gamma must be a real number in [0, 1]; got {gamma!r}")
    gamma = float(gamma)
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1]; got {gamma!r}")
    return gamma


@dataclass(frozen=True)
class BinaryOracle(Oracle):
    """The paper's binary oracle (§6.1): two classes, true class 1 everywhere.

    Component ``i`` is correct with probability ``1 - gamma`` on ``N - n_bad``
    components and ``clip(1 - bad_factor * gamma, 0, 1)`` on the first ``n_bad``
    ("bad") ones, independently of everything else.

    Parameters
    ----------
    N : int
        Number of components (>= 1).
    gamma : float
        Error rate of the good components, in [0, 1].
    n_bad : int, default 0
        Number of bad components, ``0 <= n_bad <= N`` (the paper calls it k;
        here ``k`` is reserved for the k-FWER).
    bad_factor : float, default 5.0
        The bad components' error rate is ``bad_factor * gamma`` (clamped).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.sim.oracle import BinaryOracle
    >>> oracle = BinaryOracle(N=4, gamma=0.05, n_bad=1)
    >>> oracle.correct_probabilities()
    array([0.75, 0.95, 0.95, 0.95])
    >>> guess, hits = oracle.sample_guess_hits(100, 100, rng=np.random.default_rng(0), reps=3)
    >>> guess.shape, hits.shape
    ((3, 4), (3, 4))
    """

    N: int
    gamma: float
    n_bad: int = 0
    bad_factor: float = 5.0
    n_classes: int = field(default=2, init=False, repr=False)

    def __post_init__(self) -> None:
        N = check_positive_int(self.N, "N")
        gamma = check_gamma(self.gamma)
        n_bad = check_positive_int(self.n_bad, "n_bad", minimum=0)
        if n_bad > N:
            raise ValueError(f"n_bad (bad components) must be <= N = {N}; got {n_bad}")
        bf = self.bad_factor
        if (
            isinstance(bf, bool)
            or not isinstance(bf, numbers.Real)
            or not (math.isfinite(bf) and bf >= 0)
        ):
            raise ValueError(f"bad_factor must be a finite real number >= 0; got {bf!r}")
        object.__setattr__(self, "N", N)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "n_bad", n_bad)
        object.__setattr__(self, "bad_factor", float(bf))

    @property
    def n_components(self) -> int:
        return self.N

    @property
    def q_good(self) -> float:
        """Probability that a good component is correct, ``1 - gamma``."""
        return 1.0 - self.gamma

    @property
    def q_bad(self) -> float:
        """Probability that a bad component is correct, ``clip(1 - bad_factor*gamma, 0, 1)``."""
        return min(1.0, max(0.0, 1.0 - self.bad_factor * self.gamma))

    @property
    def truth(self) -> np.ndarray:
        # A read-only broadcast view: no O(N) memory for N up to 1e7.
        return np.broadcast_to(np.int64(1), (self.N,))

    def correct_probabilities(self) -> np.ndarray:
        q = np.full(self.N, self.q_good)
        q[: self.n_bad] = self.q_bad
        return q

    def class_probabilities(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        lo, hi, _ = slice(lo, hi).indices(self.N)
        q = self._q_slice(lo, hi)
        return np.stack([1.0 - q, q], axis=1)

    def _q_slice(self, lo, hi):
        q = np.full(hi - lo, self.q_good)
        q[: max(0, min(self.n_bad, hi) - lo)] = self.q_bad
        return q

    def label_probabilities(self, labels: ArrayLike) -> np.ndarray:
        labels = self._check_labels(labels)
        # Filled by masks rather than from a length-N q: memory stays one output
        # array (plus byte masks) at N = 1e7.
        out = np.zeros(labels.shape)
        out[labels == 1] = self.q_good
        out[labels == 0] = 1.0 - self.q_good
        bad = labels[..., : self.n_bad]
        out[..., : self.n_bad] = np.where(
            bad == 1, self.q_bad, np.where(bad == 0, 1.0 - self.q_bad, 0.0)
        )
        return out

    def _draw_guess_hits(self, rng, n0, n, rows, lo, hi):
        q = self._q_slice(lo, hi)
        # Only whether the n0 correct-class count exceeds n0/2 matters, so draw that
        # Bernoulli directly: P(right) = P(Bin(n0, q) > n0/2) = P(Bin(n0, q) >= n0//2 + 1);
        # a tie (even n0) goes to class 0, the wrong one.
        p_right = np.asarray(binom_test(n0 // 2 + 1, n0, q, alternative="greater"))
        guess = rng.random((rows, hi - lo)) < p_right
        hits = rng.binomial(n, np.where(guess, q, 1.0 - q))
        return guess, hits

    def _draw_counts(self, rng, n, shape):
        c1 = rng.binomial(n, self.correct_probabilities(), size=(*shape, self.N))
        return np.stack([n - c1, c1], axis=-1)

    def _draw_labels(self, rng, n):
        return (rng.random((n, self.N)) < self.correct_probabilities()).astype(np.int64)

    def _blocks(self):
        sizes = np.array([self.n_bad, self.N - self.n_bad], dtype=np.int64)
        offsets = np.array([0, self.n_bad], dtype=np.int64)
        q = np.array([self.q_bad, self.q_good])
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
            wrong_logp = np.stack([np.log1p(-q), log_q], axis=1)
        wrong_cdf = np.array([[1.0, 1.0], [1.0, 1.0]])  # the only wrong label is 0
        return sizes, offsets, 1.0 - q, log_q, wrong_cdf, wrong_logp


@dataclass(frozen=True, eq=False)
class MultiClassOracle(Oracle):
    """An oracle given by per-component class probabilities.

    Parameters
    ----------
    probabilities : array_like, shape (N, C)
        Row ``i`` is the law of component ``i``'s label; rows must sum to 1
        (within 1e-9) and C >= 2.
    truth : array_like of int, shape (N,), optional
        True labels (used for the certified-and-correct rate); defaults to each
        row's most likely class (lowest index on ties).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.sim.oracle import MultiClassOracle
    >>> oracle = MultiClassOracle([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    >>> oracle.truth
    array([0, 2])
    >>> oracle.correct_probabilities()
    array([0.9, 0.5])
    """

    probabilities: np.ndarray
    truth: np.ndarray = None

    def __post_init__(self) -> None:
        p = as_probabilities(self.probabilities, "probabilities", allow_nan=False)
        if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
            raise ValueError(
                f"probabilities must have shape (N, C) with N >= 1 and C >= 2; got {p.shape}"
            )
        if not np.allclose(p.sum(axis=1), 1.0, rtol=0.0, atol=1e-9):
            raise ValueError("probabilities: every row must sum to 1")
        p = p / p.sum(axis=1, keepdims=True)
        if self.truth is None:
            truth = np.argmax(p, axis=1).astype(np.int64)
        else:
            truth = np.asarray(self.truth)
            if truth.shape != (p.shape[0],) or truth.dtype.kind not in "iu":
                raise ValueError(f"truth must be integer labels of shape ({p.shape[0]},)")
            if truth.size and (truth.min() < 0 or truth.max() >= p.shape[1]):
                raise ValueError(f"truth labels must lie in [0, {p.shape[1] - 1}]")
            truth = truth.astype(np.int64)
        p.flags.writeable = False
        truth.flags.writeable = False
        object.__setattr__(self, "probabilities", p)
        object.__setattr__(self, "truth", truth)

    def __repr__(self) -> str:
        return f"MultiClassOracle(N={self.n_components}, C={self.n_classes})"

    @property
    def n_components(self) -> int:
        return self.probabilities.shape[0]

    @property
    def n_classes(self) -> int:
        return self.probabilities.shape[1]

    def class_probabilities(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        return self.probabilities[lo:hi]

    def correct_probabilities(self) -> np.ndarray:
        return self.probabilities[np.arange(self.n_components), self.truth]
