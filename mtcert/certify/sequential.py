"""Sequential SEGCERTIFY: draw testing samples in rounds, stop an image once it is settled.

SEGCERTIFY spends the same ``n`` testing samples on every image.  Here the
testing samples are drawn in rounds, at the cumulative sample sizes
``looks = (n_1 < n_2 < ... < n_K)``, and an image stops at the first look at
which its certificate can no longer change much (few components are still
both uncertified and able to certify by ``n_K``), or at ``n_K``.  The stopping
time is data dependent, so the fixed-n binomial p-value
:math:`P(\\mathrm{Bin}(n, \\tau) \\ge h)` is **not** valid at it (sampling to
a foregone conclusion).  Each component gets an *anytime-valid* p-value
instead, one that is super-uniform under :math:`H_0: p \\le \\tau` at every
stopping time:

``bound="mixture"``
    The mixture e-process :math:`M_t = \\int (q/\\tau)^{S_t}
    ((1-q)/(1-\\tau))^{t-S_t}\\,d\\pi(q)` with π the Beta(a, b) law truncated to
    [τ, 1].  For each q >= τ the factor's mean under any p <= τ is
    ``p q / tau + (1 - p)(1 - q)/(1 - tau) <= 1``, so M is a nonnegative
    supermartingale with M_0 = 1, and Ville's inequality gives
    :math:`P(\\exists t: M_t \\ge 1/u) \\le u`; ``p_t = 1 / max_{s <= t} M_s``
    is therefore valid at any stopping time (Ramdas et al. 2023, §3–4;
    Howard et al. 2021; Waudby-Smith & Ramdas 2024 for the betting view).
    Valid at every sample, so any look schedule, even one chosen on the fly.
``bound="schedule"``
    The exact binomial p-value at each of the K pre-declared looks, times K
    (a Bonferroni split of the level over the looks, i.e. a group-sequential
    test with equal α-spending): :math:`P(\\exists j: K\\,p_j \\le u) \\le
    \\sum_j P(p_j \\le u/K) \\le u`.  Valid at any stopping time that takes
    values in ``looks``; stronger than the mixture when K is small.

Either p-value is made non-increasing over the looks (running minimum), so
an image's certified set only grows.  At the stopping time T each true null
has a valid p-value, and Bonferroni and Holm need nothing more: they control
the FWER under arbitrary dependence between the p-values (Holm 1979), which
here includes the dependence the shared stopping time creates.  That is why
only ``"bonferroni"``, ``"holm"`` and their k-FWER generalisations (Lehmann &
Romano 2005) are offered; Šidák, Hochberg and Hommel need independence or
positive dependence, which a shared stopping time does not preserve.

The price: at a fixed n, the anytime p-values are larger than the exact
binomial one (for ``hits = n``, ``tau**n`` against about ``(n + 1)(1 - tau)
tau**n`` for the uniform mixture, ``K tau**n`` for the schedule).  The gain
is stopping easy images early.  ``docs/sequential.md`` measures where that
wins.

Imports numpy, scipy.special, :mod:`mtcert.stats` (binomial tables and
Clopper–Pearson bounds, ``adjust``, the method table, validation) and
:mod:`mtcert.certify.labels`.

References
----------
.. [1] A. Ramdas, P. Grünwald, V. Vovk, G. Shafer, "Game-theoretic
   statistics and safe anytime-valid inference", Statist. Sci. 38 (2023).
.. [2] S. R. Howard, A. Ramdas, J. McAuliffe, J. Sekhon, "Time-uniform,
   nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49 (2021).
.. [3] I. Waudby-Smith, A. Ramdas, "Estimating means of bounded random
   variables by betting", J. R. Stat. Soc. B 86 (2024).
.. [4] J. Ville, "Étude critique de la notion de collectif" (1939).
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import special

from mtcert.certify.labels import ABSTAIN
from mtcert.stats.binomial import clopper_pearson, greater_pvalue_table
from mtcert.stats.methods import resolve_method
from mtcert.stats.multitest import adjust
from mtcert.stats.validation import (
    as_integer_array,
    check_alpha,
    check_option,
    check_positive_int,
    check_positive_real,
    check_tau,
)

__all__ = [
    "BOUNDS",
    "SEQUENTIAL_METHODS",
    "SequentialCertificate",
    "anytime_pvalues",
    "certification_floor",
    "fresh_hits",
    "mixture_log_evalue",
    "sequential_segcertify",
]

#: Anytime-valid p-values on offer (see the module docstring).
BOUNDS = ("mixture", "schedule")
#: Procedures valid for p-values with arbitrary dependence (a shared stopping time).
SEQUENTIAL_METHODS = ("bonferroni", "holm", "generalized-bonferroni", "generalized-holm")


def mixture_log_evalue(hits, n, tau, *, a=1.0, b=1.0):
    """Log of the truncated-Beta mixture e-value for ``H0: p <= tau`` after ``n`` samples.

    :math:`\\log M_n = \\log \\frac{B(h+a, n-h+b)\\,P(\\mathrm{Beta}(h+a, n-h+b) > \\tau)}
    {B(a, b)\\,P(\\mathrm{Beta}(a, b) > \\tau)\\,\\tau^{h}(1-\\tau)^{n-h}}`,
    the likelihood ratio of the data under q against τ, averaged over the prior
    Beta(a, b) restricted to [τ, 1].  A nonnegative supermartingale under every
    p <= τ (module docstring), so ``exp(-max log M)`` is an anytime-valid p-value.

    Parameters
    ----------
    hits : array_like of int
        Hits among ``n`` samples, in [0, n].
    n : int
        Samples so far (>= 1).
    tau : float
        Threshold in [1/2, 1).
    a, b : float, default 1
        Prior on the alternative (a = b = 1: uniform on [τ, 1]).

    Returns
    -------
    ndarray of float64
        Same shape as ``hits``; ``-inf`` where the mixture is 0 in floating point.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.sequential import mixture_log_evalue
    >>> # all hits: (1 - tau**(n+1)) / ((n + 1)(1 - tau) tau**n) for the uniform prior
    >>> float(np.exp(mixture_log_evalue(100, 100, 0.75))) / 1e11
    1.2348445188939334
    >>> 1 / 0.75**100 / 1e11  # the fixed-n binomial test's 1 / p-value: 25 times larger
    31.17982410207942
    """
    tau = check_tau(tau)
    n = check_positive_int(n, "n")
    a = check_positive_real(a, "a")
    b = check_positive_real(b, "b")
    hits = as_integer_array(hits, "hits")
    if hits.size and (int(hits.min()) < 0 or int(hits.max()) > n):
        raise ValueError(f"hits must lie in [0, n] = [0, {n}]")
    h = hits.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_post = special.betaln(h + a, n - h + b) + np.log(
            special.betaincc(h + a, n - h + b, tau)
        )
        log_prior = special.betaln(a, b) + np.log(special.betaincc(a, b, tau))
    return log_post - log_prior - h * np.log(tau) - (n - h) * np.log1p(-tau)


def anytime_pvalues(hits, n, tau, *, bound="mixture", looks=None, a=1.0, b=1.0):
    """Per-look p-values of ``H0: p <= tau`` whose running minimum is anytime valid.

    Parameters
    ----------
    hits : array_like of int
        Hits among the first ``n`` samples.
    n : int
        Samples so far.
    tau : float
    bound : {"mixture", "schedule"}
        ``"mixture"``: ``exp(-log M_n)`` (:func:`mixture_log_evalue`).
        ``"schedule"``: ``looks`` times the exact binomial p-value.
    looks : int, optional
        Number K of pre-declared looks (required for ``"schedule"``).
    a, b : float
        Mixture prior (``"mixture"`` only).

    Returns
    -------
    ndarray of float64 in [0, 1]
        Same shape as ``hits``.  The anytime-valid p-value at a look is the
        minimum of these values over the looks so far.

    Examples
    --------
    >>> from mtcert.certify.sequential import anytime_pvalues
    >>> [f"{p:.3g}" for p in anytime_pvalues([100, 90], 100, 0.75)]
    ['8.1e-12', '0.00237']
    >>> [f"{p:.3g}" for p in anytime_pvalues([100, 90], 100, 0.75, bound="schedule", looks=4)]
    ['1.28e-12', '0.000548']
    """
    bound = check_option(bound, "bound", BOUNDS)
    tau = check_tau(tau)
    n = check_positive_int(n, "n")
    hits = as_integer_array(hits, "hits")
    if hits.size and (int(hits.min()) < 0 or int(hits.max()) > n):
        raise ValueError(f"hits must lie in [0, n] = [0, {n}]")
    return _look_pvalues(hits, n, tau, bound, looks, a, b)


def _look_pvalues(hits, n, tau, bound, looks, a, b):
    """:func:`anytime_pvalues` on validated input, as a gather from an (n + 1)-entry table."""
    levels = np.arange(n + 1)
    if bound == "mixture":
        table = np.minimum(1.0, np.exp(-mixture_log_evalue(levels, n, tau, a=a, b=b)))
    else:
        if looks is None:
            raise ValueError('looks (the number of pre-declared looks) is required for "schedule"')
        looks = check_positive_int(looks, "looks")
        # Bonferroni over the K looks: P(exists j: K p_j <= u) <= sum_j u / K = u
        table = np.minimum(1.0, looks * greater_pvalue_table(n, tau))
    return table[hits]


def certification_floor(N, tau, alpha, *, bound="exact", looks=None, k=1, prior=(1.0, 1.0)):
    """Fewest testing samples at which any of N components can be certified.

    Holm's first rejection (Bonferroni's every one) needs a p-value of at most
    ``k * alpha / N``, and the smallest p-value after n samples is that of n
    hits out of n: ``tau**n`` for the exact binomial test, ``K tau**n`` for the
    schedule of K looks, ``1 / M_n(n)`` for the mixture (non-decreasing in n:
    every hit multiplies the integrand by ``q / tau >= 1``).  Below this n
    nothing certifies however easy the image, so no choice of n per image can
    spend fewer than ``n0 + floor`` passes on an image that certifies anything.
    Sequential testing pays off when the fixed n it replaces is several times
    its floor.

    Parameters
    ----------
    N : int
        Components per family.
    tau, alpha : float
    bound : {"exact", "mixture", "schedule"}, default "exact"
        ``"exact"``: the fixed-n binomial test (SEGCERTIFY); the others as in
        :func:`anytime_pvalues`.
    looks : int, optional
        Number of looks (``"schedule"``).
    k : int, default 1
        k of the k-FWER methods.
    prior : (a, b)
        Mixture prior (``"mixture"``).

    Returns
    -------
    int

    Examples
    --------
    >>> from mtcert.certify.sequential import certification_floor
    >>> N = 256 * 512  # Cityscapes at scale 0.25
    >>> [certification_floor(N, 0.75, 0.001, bound=b, looks=8)
    ...  for b in ("exact", "mixture", "schedule")]
    [65, 76, 73]
    """
    N = check_positive_int(N, "N")
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    k = check_positive_int(k, "k")
    bound = check_option(bound, "bound", ("exact", *BOUNDS))
    level = min(1.0, k * alpha / N)
    if bound == "schedule":
        if looks is None:
            raise ValueError('looks (the number of pre-declared looks) is required for "schedule"')
        level /= check_positive_int(looks, "looks")
    # tau**n <= level, with a guard against rounding at the boundary
    n = max(1, math.ceil(math.log(level) / math.log(tau) - 1e-9))
    if bound != "mixture":
        return n
    if not isinstance(prior, tuple | list) or len(prior) != 2:
        raise ValueError(f"prior must be a pair (a, b) of positive numbers; got {prior!r}")
    a, b = prior

    def reached(m):
        return float(mixture_log_evalue(m, m, tau, a=a, b=b)) >= -math.log(level)

    lo, hi = n - 1, n  # the mixture p-value is never below the exact one: floor >= n
    while not reached(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # M_n(n) is non-decreasing in n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reached(mid) else (mid, hi)
    return hi


def fresh_hits(sample, m: int, guess: np.ndarray) -> np.ndarray:
    """Call ``sample(m, guess)`` and return the hits of ``guess`` among its ``m`` samples.

    The sampler must draw ``m`` *new* noisy samples (independent of every
    sample drawn before, the guessing samples included) and return either
    the hits of ``guess`` (same shape as ``guess``, values in [0, m]) or class
    counts (shape ``guess.shape + (C,)``, each component summing to ``m``).

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.sequential import fresh_hits
    >>> guess = np.array([0, 1])
    >>> fresh_hits(lambda m, g: np.array([[m, 0], [1, m - 1]]), 10, guess)
    array([10,  9])
    """
    if not callable(sample):
        raise ValueError(f"sample must be a callable sample(m, guess); got {type(sample).__name__}")
    out = as_integer_array(sample(m, guess), "sample(m, guess)")
    if out.shape == guess.shape:
        hits = out
    elif out.shape[:-1] == guess.shape and out.ndim == guess.ndim + 1:
        if out.size and int(out.min()) < 0:
            raise ValueError("sample(m, guess) returned negative class counts")
        if not np.all(out.sum(axis=-1) == m):
            raise ValueError(f"sample(m, guess) returned class counts that do not sum to m = {m}")
        if int(guess.max(initial=0)) >= out.shape[-1]:
            raise ValueError("guess holds a class beyond the sampler's class counts")
        hits = np.take_along_axis(out, guess[..., None], axis=-1)[..., 0]
    else:
        raise ValueError(
            f"sample(m, guess) must return hits of shape {guess.shape} or class counts of "
            f"shape {(*guess.shape, 'C')}; got shape {out.shape}"
        )
    if hits.size and (int(hits.min()) < 0 or int(hits.max()) > m):
        raise ValueError(f"sample(m, guess) returned hits outside [0, m] = [0, {m}]")
    return hits.astype(np.int64)


@dataclass(frozen=True, repr=False, eq=False)
class SequentialCertificate:
    """Result of :func:`sequential_segcertify`.

    Attributes
    ----------
    labels : ndarray of int64
        The guess where certified, :data:`~mtcert.certify.labels.ABSTAIN` elsewhere.
    reject : ndarray of bool
        Certified components.
    pvalues : ndarray of float64
        Anytime-valid p-values at the stopping time.
    hits : ndarray of int64
        Hits among the ``n`` testing samples drawn.
    n : int
        Testing samples drawn (the stopping time, a look).
    looks : tuple of int
        The schedule of cumulative sample sizes.
    history : tuple of (n, certified, open) triples
        Per look taken: samples so far, components certified, components
        still open (uncertified and able to certify by the last look).
    stopped : str
        ``"settled"`` (few components open) or ``"budget"`` (last look reached).
    tau, alpha, method, k, bound
        The settings.
    """

    labels: np.ndarray
    reject: np.ndarray
    pvalues: np.ndarray
    hits: np.ndarray
    n: int
    looks: tuple
    history: tuple
    stopped: str
    tau: float
    alpha: float
    method: str
    k: int
    bound: str

    @property
    def n_certified(self) -> int:
        return int(self.reject.sum())

    @property
    def certified_rate(self) -> float:
        return self.n_certified / self.labels.size

    @property
    def abstain_rate(self) -> float:
        return 1.0 - self.certified_rate

    def __repr__(self) -> str:
        return (
            f"SequentialCertificate(method={self.method!r}, alpha={self.alpha!r}, "
            f"tau={self.tau!r}, bound={self.bound!r}, n={self.n} of {self.looks[-1]}, "
            f"stopped={self.stopped!r}, shape={self.labels.shape}, "
            f"certified_rate={self.certified_rate:.4g})"
        )


def _check_looks(looks) -> tuple:
    vals = [check_positive_int(v, "looks") for v in np.atleast_1d(looks).tolist()]
    if not vals:
        raise ValueError("looks is empty: give at least one cumulative sample size")
    if any(b <= a for a, b in itertools.pairwise(vals)):
        raise ValueError(f"looks must be strictly increasing cumulative sample sizes; got {vals}")
    return tuple(vals)


def _open_components(hits, t, n_last, threshold, tau, bound, n_looks, a, b, level):
    """Components that could still certify by the last look (a stopping heuristic only).

    Optimistic projection: the remaining ``n_last - t`` samples hit at the
    Clopper–Pearson upper bound (level ``level``) of the rate seen so far; a
    component is open if the projected p-value reaches ``threshold``.  The
    rule only decides *when* to stop; validity holds for any stopping rule.
    """
    if t >= n_last:
        return np.zeros(hits.shape, bool)
    levels = np.arange(t + 1)
    _, upper = clopper_pearson(levels, t, alpha=level, alternative="less")
    projected = np.minimum(n_last, levels + np.floor(np.asarray(upper) * (n_last - t)))
    p_last = _look_pvalues(projected.astype(np.int64), n_last, tau, bound, n_looks, a, b)
    return (p_last <= threshold)[hits]


def sequential_segcertify(
    guess,
    sample,
    *,
    tau,
    alpha,
    looks,
    method="holm",
    k=1,
    bound="mixture",
    settle=0.002,
    futility=0.01,
    prior=(1.0, 1.0),
):
    """SEGCERTIFY with testing samples drawn in rounds and an anytime-valid stop.

    At each look the sampler is asked for the samples up to the next
    cumulative size; every component's anytime-valid p-value (``bound``) is
    updated, ``method`` decides at level ``alpha``, and the image stops once
    at most ``settle * N`` components are *open* (neither certified nor
    futile: by an optimistic projection they could certify by the last
    look), or at the last look.  With probability at least ``1 - alpha`` no
    component whose guessed class has probability <= ``tau`` is certified
    (for k-FWER methods: fewer than ``k``), whatever the stopping rule.

    Parameters
    ----------
    guess : array_like of int
        Guessed label per component (one image = one family), from guessing
        samples independent of the testing samples.
    sample : callable ``sample(m, guess) -> hits or class counts``
        Draws ``m`` *fresh* noisy samples (see :func:`fresh_hits`).
    tau, alpha : float
        Threshold in [1/2, 1) and FWER level in (0, 1).
    looks : sequence of int
        Strictly increasing cumulative testing-sample sizes; the last is the
        budget.  Fix it before seeing the image (``"schedule"`` relies on it).
    method : {"holm", "bonferroni", "generalized-holm", "generalized-bonferroni"}
    k : int, default 1
        k of the k-FWER methods.
    bound : {"mixture", "schedule"}, default "mixture"
        The anytime-valid p-value (module docstring).
    settle : float, default 0.002
        Stop once at most this fraction of components is open.
    futility : float, default 0.01
        Level of the Clopper–Pearson upper bound used to call a component futile.
    prior : (a, b), default (1, 1)
        Beta prior of the mixture, truncated to [τ, 1].

    Returns
    -------
    SequentialCertificate

    Raises
    ------
    ValueError
        On invalid options, a method not valid under arbitrary dependence,
        or a sampler returning malformed output.

    Examples
    --------
    >>> import numpy as np
    >>> from mtcert.certify.sequential import sequential_segcertify
    >>> rng = np.random.default_rng(0)
    >>> p = np.r_[np.full(900, 0.999), np.full(100, 0.6)]  # easy pixels, hard ones
    >>> sample = lambda m, g: rng.binomial(m, p)           # hits of the (right) guess
    >>> cert = sequential_segcertify(np.ones(1000, int), sample, tau=0.75,
    ...                              alpha=0.001, looks=[40, 60, 80, 120, 200])
    >>> cert.n, cert.stopped, cert.certified_rate
    (80, 'settled', 0.9)
    >>> cert.history  # (samples, certified, open) per look
    ((40, 0, 901), (60, 844, 56), (80, 900, 0))
    """
    tau = check_tau(tau)
    alpha = check_alpha(alpha)
    method, k = resolve_method(method, k)
    if method not in SEQUENTIAL_METHODS:
        raise ValueError(
            f"method must be one of {SEQUENTIAL_METHODS} (valid under the arbitrary dependence "
            f"a shared stopping time creates); got {method!r}"
        )
    bound = check_option(bound, "bound", BOUNDS)
    looks = _check_looks(looks)
    settle = _fraction(settle, "settle", closed=True)
    futility = _fraction(futility, "futility")
    if not isinstance(prior, tuple | list) or len(prior) != 2:
        raise ValueError(f"prior must be a pair (a, b) of positive numbers; got {prior!r}")
    a, b = (check_positive_real(v, "prior") for v in prior)
    guess = as_integer_array(guess, "guess")
    if guess.size == 0:
        raise ValueError("guess is empty: there are no components to certify")
    if int(guess.min()) < 0:
        raise ValueError(f"guess must hold non-negative labels ({ABSTAIN} is ABSTAIN)")
    guess = guess.astype(np.int64)
    N = guess.size
    hits = np.zeros(guess.shape, np.int64)
    pmin = np.ones(guess.shape)
    history = []
    t, stopped = 0, "budget"
    for t_next in looks:
        hits += fresh_hits(sample, t_next - t, guess)
        t = t_next
        # running minimum: valid at any stopping time (Ville; module docstring)
        np.minimum(pmin, _look_pvalues(hits, t, tau, bound, len(looks), a, b), out=pmin)
        res = adjust(pmin, method, alpha=alpha, k=k)
        n_rej = int(res.n_rejected)
        # the most lenient critical value the procedure can still reach
        threshold = alpha * k / max(1, N - n_rej)
        open_ = _open_components(hits, t, looks[-1], threshold, tau, bound, len(looks), a, b,
                                 futility) & ~res.reject  # fmt: skip
        history.append((t, n_rej, int(open_.sum())))
        if t < looks[-1] and open_.sum() <= settle * N:
            stopped = "settled"
            break
    labels = np.where(res.reject, guess, ABSTAIN)
    return SequentialCertificate(
        labels=labels, reject=res.reject, pvalues=pmin, hits=hits, n=t, looks=looks,
        history=tuple(history), stopped=stopped, tau=tau, alpha=alpha, method=method, k=k,
        bound=bound,
    )  # fmt: skip


def _fraction(value, name, *, closed=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    value = float(value)
    if not (0.0 <= value < 1.0 if closed else 0.0 < value < 1.0):
        raise ValueError(f"{name} must lie in {'[0, 1)' if closed else '(0, 1)'}; got {value!r}")
    return value
