"""Testing kit: hypothesis strategies and an empirical error-rate checker.

Two things for people who write (or use) multiple-testing procedures:

* **Strategies** for `hypothesis <https://hypothesis.readthedocs.io>`_, written as
  plain functions in hypothesis' recommended style: :func:`pvalue_arrays`
  (with ties, exact 0 and 1, tiny and subnormal values), :func:`count_arrays`
  (class counts with a common total) and :func:`hit_vectors` (hit counts with
  their ``n``).
* :func:`check_error_rate`, which estimates by seeded Monte Carlo the FWER,
  k-FWER or FDR of *any* procedure mapping p-values to a reject mask, under a
  named dependence scenario, and returns the estimate, an exact Clopper–Pearson
  interval and a verdict.

hypothesis is only needed for the strategies (imported when they are called).

Examples
--------
>>> import numpy as np
>>> from mtcert.stats.multitest import adjust
>>> from mtcert.sim.testing import check_error_rate
>>> holm = lambda p: adjust(p, "holm", alpha=0.05, axis=-1).reject
>>> res = check_error_rate(holm, scenario="adversarial", m=20, m0=20, alpha=0.05,
...                        reps=20_000, seed=1, vectorized=True)
>>> res.verdict
'pass'
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from mtcert.stats.binomial import clopper_pearson
from mtcert.stats.validation import check_alpha, check_option, check_positive_int

__all__ = [
    "SCENARIOS",
    "ErrorRateResult",
    "check_error_rate",
    "count_arrays",
    "hit_vectors",
    "pvalue_arrays",
    "pvalues",
]

# -- hypothesis strategies -------------------------------------------------------------

#: Values that break naive code: exact ends, the smallest subnormal, tiny normals,
#: values next to 1 and 1/2.
SPECIAL_PVALUES = (
    0.0,
    1.0,
    0.5,
    5e-324,
    2.2250738585072014e-308,
    1e-300,
    1e-100,
    1e-16,
    1.0 - 2.0**-53,
    0.05,
)


def pvalues(*, allow_nan: bool = False):
    """Strategy for single p-values: special values, tiny values and uniform floats.

    The special values (:data:`SPECIAL_PVALUES`) are those that break naive
    code: exact 0 and 1, 1/2, the smallest subnormal, tiny normals, the float
    just below 1 and 0.05.

    Parameters
    ----------
    allow_nan : bool, default False
        Also draw NaN.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of float

    Examples
    --------
    >>> from hypothesis import given
    >>> from mtcert.sim.testing import pvalues
    >>> @given(pvalues())
    ... def test_bounded(p):
    ...     assert 0.0 <= p <= 1.0
    >>> test_bounded()
    """
    from hypothesis import strategies as st

    parts = [
        st.sampled_from(SPECIAL_PVALUES),
        st.floats(0.0, 1.0),
        st.floats(0.0, 1e-6),
    ]
    if allow_nan:
        parts.append(st.just(float("nan")))
    return st.one_of(*parts)


def pvalue_arrays(*, min_size: int = 0, max_size: int = 50, allow_nan: bool = False):
    """Strategy for 1-D float64 arrays of p-values with many ties.

    Elements come from a small pool of drawn values (so ties are frequent), or
    are fresh draws of :func:`pvalues`; both shrink toward simple values.

    Parameters
    ----------
    min_size, max_size : int
        Bounds on the array length.
    allow_nan : bool, default False
        Include NaN (for testing ``nan_policy``).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of ndarray

    Raises
    ------
    ValueError
        When a size is negative or ``max_size < min_size``.

    Examples
    --------
    >>> from hypothesis import given
    >>> from mtcert.sim.testing import pvalue_arrays
    >>> @given(pvalue_arrays(max_size=20))
    ... def test_in_range(p):
    ...     assert ((p >= 0) & (p <= 1)).all()
    >>> test_in_range()
    """
    from hypothesis import strategies as st

    min_size = check_positive_int(min_size, "min_size", minimum=0)
    max_size = check_positive_int(max_size, "max_size", minimum=0)
    if max_size < min_size:
        raise ValueError(f"max_size must be >= min_size; got {max_size} < {min_size}")

    @st.composite
    def build(draw):
        pool = draw(st.lists(pvalues(allow_nan=allow_nan), min_size=1, max_size=4))
        element = st.one_of(st.sampled_from(pool), pvalues(allow_nan=allow_nan))
        values = draw(st.lists(element, min_size=min_size, max_size=max_size))
        return np.array(values, dtype=np.float64)

    return build()


def count_arrays(
    *,
    min_components: int = 1,
    max_components: int = 20,
    min_classes: int = 2,
    max_classes: int = 5,
    min_n: int = 1,
    max_n: int = 1000,
):
    """Strategy for class-count arrays of shape ``(N, C)`` whose rows share a total ``n``.

    Rows include ties between the top classes, all mass on one class and
    all-zero classes: the inputs of :func:`~mtcert.certify.segmentation.segcertify`
    and :func:`~mtcert.certify.cohen.certify`.

    Parameters
    ----------
    min_components, max_components : int, default 1 and 20
        Bounds on the number of rows ``N`` (>= 1).
    min_classes, max_classes : int, default 2 and 5
        Bounds on the number of classes ``C`` (>= 2).
    min_n, max_n : int, default 1 and 1000
        Bounds on the common row total ``n`` (>= 1).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of ndarray
        int64 arrays; ``n`` is ``array.sum(-1)[0]``.

    Raises
    ------
    ValueError
        When a bound is out of range or a ``max_*`` is below its ``min_*``.

    Examples
    --------
    >>> from hypothesis import given
    >>> from mtcert.sim.testing import count_arrays
    >>> @given(count_arrays(max_components=5))
    ... def test_rows_share_a_total(counts):
    ...     assert (counts.sum(axis=1) == counts.sum(axis=1)[0]).all()
    >>> test_rows_share_a_total()
    """
    from hypothesis import strategies as st

    for name, v in (
        ("min_components", min_components),
        ("max_components", max_components),
        ("min_n", min_n),
        ("max_n", max_n),
    ):
        check_positive_int(v, name)
    check_positive_int(min_classes, "min_classes", minimum=2)
    check_positive_int(max_classes, "max_classes", minimum=2)
    if max_components < min_components or max_classes < min_classes or max_n < min_n:
        raise ValueError("each max_* must be >= the matching min_*")

    @st.composite
    def build(draw):
        n = draw(st.integers(min_n, max_n))
        C = draw(st.integers(min_classes, max_classes))
        N = draw(st.integers(min_components, max_components))
        rows = []
        for _ in range(N):
            kind = draw(st.sampled_from(("cuts", "tie", "point")))
            if kind == "point":  # all samples in one class
                row = [0] * C
                row[draw(st.integers(0, C - 1))] = n
            elif kind == "tie" and n % 2 == 0:  # two classes tied at n/2
                row = [0] * C
                a, b = draw(st.lists(st.integers(0, C - 1), min_size=2, max_size=2, unique=True))
                row[a] = row[b] = n // 2
            else:
                cuts = sorted(draw(st.lists(st.integers(0, n), min_size=C - 1, max_size=C - 1)))
                edges = [0, *cuts, n]
                row = [edges[i + 1] - edges[i] for i in range(C)]
            rows.append(row)
        return np.array(rows, dtype=np.int64).reshape(N, C)

    return build()


def hit_vectors(*, min_size: int = 0, max_size: int = 50, min_n: int = 1, max_n: int = 10**6):
    """Strategy for ``(hits, n)``: an int64 vector of hit counts in ``[0, n]`` and its ``n``.

    Hits favour the edges (0, 1, n - 1, n), ties and the middle, as well as
    uniform draws: the inputs of
    :func:`~mtcert.certify.segmentation.segcertify_hits`.

    Parameters
    ----------
    min_size, max_size : int, default 0 and 50
        Bounds on the vector length.
    min_n, max_n : int, default 1 and 10**6
        Bounds on ``n`` (>= 1).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of tuple (ndarray, int)

    Raises
    ------
    ValueError
        When a bound is out of range or a ``max_*`` is below its ``min_*``.

    Examples
    --------
    >>> from hypothesis import given
    >>> from mtcert.sim.testing import hit_vectors
    >>> @given(hit_vectors(max_n=100))
    ... def test_in_range(hits_and_n):
    ...     hits, n = hits_and_n
    ...     assert ((0 <= hits) & (hits <= n)).all()
    >>> test_in_range()
    """
    from hypothesis import strategies as st

    min_size = check_positive_int(min_size, "min_size", minimum=0)
    max_size = check_positive_int(max_size, "max_size", minimum=0)
    check_positive_int(min_n, "min_n")
    check_positive_int(max_n, "max_n")
    if max_size < min_size or max_n < min_n:
        raise ValueError("each max_* must be >= the matching min_*")

    @st.composite
    def build(draw):
        n = draw(st.integers(min_n, max_n))
        edge = st.sampled_from(sorted({0, min(1, n), max(n - 1, 0), n, n // 2}))
        element = st.one_of(edge, st.integers(0, n))
        hits = draw(st.lists(element, min_size=min_size, max_size=max_size))
        return np.array(hits, dtype=np.int64), n

    return build()


# -- error-rate checker ----------------------------------------------------------------


def _normal_sf(z):
    return 0.5 * special.erfc(z / np.sqrt(2.0))


def _independent(rng, reps, m, m0, clump, mu, rho):
    z = rng.standard_normal((reps, m))
    z[:, m0:] += mu
    return _normal_sf(z)


def _positive(rng, reps, m, m0, clump, mu, rho):
    # Equicorrelated one-sided z-tests (correlation rho >= 0): positively
    # regression dependent (PRDS), the setting of Hochberg, Hommel and BH.
    w = rng.standard_normal((reps, 1))
    z = np.sqrt(rho) * w + np.sqrt(1.0 - rho) * rng.standard_normal((reps, m))
    z[:, m0:] += mu
    return _normal_sf(z)


def _adversarial(rng, reps, m, m0, clump, mu, rho):
    # Extremal dependence for Bonferroni-type bounds: the m0 true nulls form
    # G = ceil(m0 / clump) clumps of (up to) `clump` equal p-values, clump j at
    # (U + j / G) mod 1 with one U ~ U(0, 1).  Every p-value is exactly uniform,
    # and for t <= 1/G the events "clump j <= t" are disjoint, so
    # P(>= k nulls <= t) = G t: Bonferroni (t = alpha/m, k = 1, m0 = m) and
    # generalized Bonferroni (t = k alpha/m, clump = k | m0 = m) attain their level
    # exactly (Lehmann & Romano 2005, sharpness of Thm 2.1).  The false nulls get
    # p = 0, so step-down methods reach the nulls with their largest constants.
    G = -(-m0 // clump)
    u = rng.random((reps, 1))
    index = np.arange(m0) // clump
    p = np.zeros((reps, m))
    p[:, :m0] = np.mod(u + index / G, 1.0)
    return p


SCENARIOS: dict[str, Callable] = {
    "independent": _independent,
    "positive": _positive,
    "adversarial": _adversarial,
}


@dataclass(frozen=True)
class ErrorRateResult:
    """Outcome of :func:`check_error_rate`.

    Attributes
    ----------
    rate : {"fwer", "kfwer", "fdr"}
    scenario : str
    m, m0, k : int
    alpha : float
        The level the procedure claims.
    reps : int
    errors : int
        Repetitions with an error event (FWER/k-FWER) — for FDR, the number of
        Bernoulli(FDP) successes behind the interval.
    estimate : float
        FWER/k-FWER: errors / reps.  FDR: the mean false discovery proportion.
    ci_low, ci_high : float
        Exact Clopper–Pearson interval at ``confidence`` (for FDR computed on one
        Bernoulli(FDP) draw per repetition, which has mean FDR, so it stays exact).
    confidence : float
    verdict : {"pass", "fail"}
        "fail" when the interval lies entirely above ``alpha`` — evidence at
        level ``(1 - confidence) / 2`` that the procedure breaks its promise.
    """

    rate: str
    scenario: str
    m: int
    m0: int
    k: int
    alpha: float
    reps: int
    errors: int
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    verdict: str

    def __repr__(self) -> str:
        return (
            f"ErrorRateResult(rate={self.rate!r}, scenario={self.scenario!r}, m={self.m}, "
            f"m0={self.m0}, k={self.k}, alpha={self.alpha}, estimate={self.estimate:.4g}, "
            f"ci=({self.ci_low:.4g}, {self.ci_high:.4g}), reps={self.reps}, "
            f"verdict={self.verdict!r})"
        )


def check_error_rate(
    procedure,
    *,
    scenario="independent",
    m: int = 20,
    m0: int | None = None,
    alpha: float = 0.05,
    k: int = 1,
    clump: int | None = None,
    rate: str = "fwer",
    reps: int = 2000,
    seed: int = 0,
    mu: float = 3.0,
    rho: float = 0.5,
    confidence: float = 0.999,
    vectorized: bool = False,
) -> ErrorRateResult:
    """Estimate a procedure's FWER, k-FWER or FDR by seeded Monte Carlo.

    The first ``m0`` hypotheses are true nulls (uniform p-values), the other
    ``m - m0`` are false nulls (one-sided z-tests with mean shift ``mu``, or
    p = 0 under ``"adversarial"``).

    Parameters
    ----------
    procedure : callable
        Maps a float64 array of ``m`` p-values to a boolean reject mask of the
        same shape.  With ``vectorized=True`` it is called once on a
        ``(reps, m)`` array and must treat each row as its own family (e.g.
        ``lambda p: adjust(p, "holm", axis=-1).reject``).
    scenario : {"independent", "positive", "adversarial"} or callable
        Dependence between the p-values: independent z-tests; equicorrelated
        z-tests with correlation ``rho`` (PRDS); or the clumped rotation
        construction that attains the Bonferroni / Lehmann–Romano bounds
        exactly (the worst case for single-step and step-down procedures valid
        under arbitrary dependence).  A callable
        ``scenario(rng, reps, m, m0, clump, mu, rho) -> (reps, m) p-values`` plugs
        in a custom construction (nulls first).
    m, m0 : int
        Family size and number of true nulls (default ``m0 = m``).
    alpha : float
        The level the procedure claims.
    k : int, default 1
        For ``rate="kfwer"``: an error is ``>= k`` false rejections.
    clump : int, optional
        Size of the clumps of equal null p-values in the adversarial scenario
        (default ``k``: the construction that attains the generalized
        Bonferroni bound at this ``k``); passed to a callable scenario as well.
    rate : {"fwer", "kfwer", "fdr"}
    reps : int
        Monte Carlo repetitions.
    seed : int
    mu, rho : float
        Alternative mean shift; correlation of the ``"positive"`` scenario.
    confidence : float, default 0.999
        Two-sided confidence of the interval.
    vectorized : bool, default False
        Call ``procedure`` once on all repetitions, a ``(reps, m)`` array (fast),
        instead of once per repetition on a ``(m,)`` array.

    Returns
    -------
    ErrorRateResult
        The estimate, its exact interval and the verdict: ``"fail"`` when the
        whole interval lies above ``alpha``.  A ``"pass"`` is no proof of
        validity, only the absence of evidence against it at these ``reps``.

    Raises
    ------
    ValueError
        On invalid arguments, a scenario returning the wrong shape, or a
        procedure returning something other than a boolean mask of its
        input's shape.

    Notes
    -----
    For ``rate="fdr"`` the interval is computed on one Bernoulli(FDP) draw
    per repetition (FDP the false discovery proportion), whose mean is the
    FDR, so the interval is exact for the FDR too.  Under ``"adversarial"``
    every null p-value is exactly uniform and Bonferroni and generalized
    Bonferroni attain their level exactly, so a procedure valid under
    arbitrary dependence shows an estimate close to ``alpha`` there.

    Examples
    --------
    >>> from mtcert.sim.testing import check_error_rate
    >>> uncorrected = lambda p: p <= 0.05
    >>> check_error_rate(uncorrected, m=20, alpha=0.05, reps=2000, seed=0).verdict
    'fail'

    Holm at its worst case, all 20 hypotheses null:

    >>> from mtcert.stats.multitest import adjust
    >>> holm = lambda p: adjust(p, "holm", alpha=0.05, axis=-1).reject
    >>> res = check_error_rate(holm, scenario="adversarial", m=20, alpha=0.05,
    ...                        reps=20_000, vectorized=True)
    >>> round(res.estimate, 3), res.verdict
    (0.05..., 'pass')
    """
    if not callable(procedure):
        raise ValueError(f"procedure must be callable; got {type(procedure).__name__}")
    m = check_positive_int(m, "m")
    m0 = m if m0 is None else check_positive_int(m0, "m0", minimum=0)
    if m0 > m:
        raise ValueError(f"m0 must be <= m = {m}; got {m0}")
    alpha = check_alpha(alpha)
    k = check_positive_int(k, "k")
    clump = k if clump is None else check_positive_int(clump, "clump")
    rate = check_option(rate, "rate", ("fwer", "kfwer", "fdr"))
    if rate == "fwer" and k != 1:
        raise ValueError(f"rate='fwer' needs k == 1 (use rate='kfwer'); got k={k}")
    reps = check_positive_int(reps, "reps")
    confidence = check_alpha(confidence, "confidence")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if not (isinstance(rho, numbers.Real) and 0.0 <= rho <= 1.0):
        raise ValueError(f"rho must lie in [0, 1]; got {rho!r}")
    if callable(scenario):
        make, name = scenario, getattr(scenario, "__name__", "custom")
    else:
        name = check_option(scenario, "scenario", SCENARIOS)
        make = SCENARIOS[name]

    rng_p, rng_fdp = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    p = np.asarray(make(rng_p, reps, m, m0, clump, float(mu), float(rho)), dtype=np.float64)
    if p.shape != (reps, m):
        raise ValueError(f"scenario returned shape {p.shape}; expected {(reps, m)}")
    if vectorized:
        reject = np.asarray(procedure(p))
    else:
        reject = np.stack([np.asarray(procedure(row)) for row in p])
    if reject.shape != (reps, m) or reject.dtype != np.bool_:
        raise ValueError(
            f"procedure must return a boolean mask shaped like its input; got "
            f"dtype {reject.dtype}, shape {reject.shape[1:] if not vectorized else reject.shape}"
        )
    false_rej = reject[:, :m0].sum(axis=1)
    if rate == "fdr":
        fdp = false_rej / np.maximum(reject.sum(axis=1), 1)
        estimate = float(fdp.mean())
        # One Bernoulli(FDP) draw per repetition has mean FDR exactly, so the
        # Clopper–Pearson interval on these draws is an exact interval for FDR.
        errors = int((rng_fdp.random(reps) < fdp).sum())
    else:
        threshold = 1 if rate == "fwer" else k
        errors = int((false_rej >= threshold).sum())
        estimate = errors / reps
    low, high = clopper_pearson(errors, reps, alpha=1.0 - confidence)
    verdict = "fail" if float(low) > alpha else "pass"
    return ErrorRateResult(
        rate, name, m, m0, k, alpha, reps, errors, estimate, float(low), float(high),
        confidence, verdict,
    )  # fmt: skip
