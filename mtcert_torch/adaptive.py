"""Per-item testing sample size: the ``adaptive_n`` option of the certify runs.

``adaptive_n`` names one of the core's two ways to spend fewer forward passes
than a fixed ``n`` (``docs/sequential.md``), as ``MODE:key=value,...``:

``two-stage:pilot=16,max=1000,target=0.9`` (keys ``pilot, min, max, step, target, tolerance``)
    After the ``n0`` guessing copies, ``pilot`` *fresh* copies give each
    component's hits of its guess; the core's planner
    (:func:`mtcert.stored.adaptive.plan_image_n`) picks this item's ``n`` on
    the grid ``min, min + step, ..., max`` (``min``: the certification floor,
    :func:`mtcert.certify.sequential.certification_floor`; ``step``: a
    twentieth of the range; ``max``: the run's ``n``), the smallest predicted
    to reach ``target`` or, without it, the rate predicted at the run's ``n``
    minus ``tolerance`` (default 0.01).  The test then uses ``n`` copies drawn
    afterwards, with the fixed-n binomial test: the guess and ``n`` depend on
    earlier copies only, so conditionally on them each hit count is
    ``Bin(n, p)`` and SEGCERTIFY's guarantee holds as at a fixed ``n``.
``sequential:max=1000,looks=8`` (keys ``min, max, looks, bound, settle``)
    After the ``n0`` guessing copies, testing copies are drawn in rounds up to
    ``looks`` cumulative sizes (``K`` geometric ones from ``min``, the floor of
    ``bound``, to ``max``; or explicit ones, ``looks=80/120/200``) and the item
    stops once at most a fraction ``settle`` (default 0.002) of its components
    is open (:func:`mtcert.certify.sequential.sequential_segcertify`; ``bound``:
    the anytime-valid p-value, ``mixture`` by default or ``schedule``; only
    Bonferroni and Holm and their k-FWER versions).

:class:`AdaptiveN` parses and checks the text; :func:`adaptive_certify` runs one
item given a sampler callback ``sample(m, guess)`` that draws ``m`` fresh copies.

Imports numpy and the core's SEGCERTIFY, sequential and two-stage functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from mtcert.certify.segmentation import MAX_N, segcertify_hits
from mtcert.certify.sequential import (
    BOUNDS,
    SEQUENTIAL_METHODS,
    certification_floor,
    fresh_hits,
    sequential_segcertify,
)
from mtcert.stats.methods import resolve_method
from mtcert.stored.adaptive import plan_image_n

__all__ = ["MODES", "AdaptiveN", "AdaptiveResult", "adaptive_certify"]

#: The two modes of ``adaptive_n``.
MODES = ("two-stage", "sequential")
#: The keys each mode takes, in the canonical order of :meth:`AdaptiveN.text`.
_KEYS = {
    "two-stage": ("pilot", "min", "max", "step", "target", "tolerance"),
    "sequential": ("min", "max", "looks", "bound", "settle"),
}
_INT_KEYS = ("pilot", "min", "max", "step")
_FLOAT_KEYS = ("target", "tolerance", "settle")
#: Grid points (two-stage) between ``min`` and ``max`` when ``step`` is not given.
GRID_POINTS = 20


def _fail(text, why) -> ValueError:
    return ValueError(f"adaptive_n {text!r}: {why}")


@dataclass(frozen=True)
class AdaptiveN:
    """A parsed ``adaptive_n`` (see the module docstring); build it with :meth:`parse`.

    Attributes
    ----------
    mode : {"two-stage", "sequential"}
    pilot : int
        Fresh pilot copies per item (two-stage; default 16).
    min, max : int or None
        First grid point / look and the budget of testing copies (None: the
        certification floor, the run's ``n``).
    step : int or None
        Grid spacing (two-stage; None: a twentieth of ``max - min``).
    target : float or None
        Certified rate to reach (two-stage; None: the rate predicted at the run's
        ``n`` minus ``tolerance``).
    tolerance : float
        See ``target`` (default 0.01).
    looks : int or tuple of int
        Number of geometric looks (default 8) or the looks themselves (sequential).
    bound : {"mixture", "schedule"}
        Anytime-valid p-value (sequential).
    settle : float
        Stop once at most this fraction of components is open (sequential).

    Examples
    --------
    >>> spec = AdaptiveN.parse("two-stage:max=200,pilot=20")
    >>> spec.text, spec.budget(100)
    ('two-stage:pilot=20,max=200', 200)
    >>> AdaptiveN.parse("sequential:looks=80/120/200").schedule(4096, 100, 0.75, 0.001)
    (80, 120, 200)
    """

    mode: str
    pilot: int = 16
    min: int | None = None
    max: int | None = None
    step: int | None = None
    target: float | None = None
    tolerance: float = 0.01
    looks: int | tuple = 8
    bound: str = "mixture"
    settle: float = 0.002

    @classmethod
    def parse(cls, text) -> AdaptiveN:
        """Parse ``MODE[:key=value,...]`` (an :class:`AdaptiveN` is returned as is).

        Raises ``ValueError`` naming ``adaptive_n`` for an unknown mode or key, a
        malformed or out-of-range value.
        """
        if isinstance(text, AdaptiveN):
            return text
        if not isinstance(text, str):
            raise ValueError(f"adaptive_n must be a string like 'two-stage:max=200'; got {text!r}")
        mode, _, rest = text.strip().partition(":")
        mode = mode.strip()
        if mode not in MODES:
            raise _fail(text, f"the mode must be one of {', '.join(MODES)}; got {mode!r}")
        values: dict = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = (s.strip() for s in part.partition("="))
            if not eq or not value:
                raise _fail(text, f"expected key=value, got {part!r}")
            if key not in _KEYS[mode]:
                raise _fail(text, f"{mode} takes {', '.join(_KEYS[mode])}; got {key!r}")
            if key in values:
                raise _fail(text, f"{key} is given twice")
            values[key] = _value(text, key, value)
        spec = cls(mode, **values)
        spec._check(text, set(values))
        return spec

    def _check(self, text, given) -> None:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None and lo > hi:
            raise _fail(text, f"min ({lo}) exceeds max ({hi})")
        if hi is not None and hi > MAX_N:
            raise _fail(text, f"max must be at most {MAX_N}; got {hi}")
        if self.target is not None:
            if "tolerance" in given:
                raise _fail(text, "give target or tolerance, not both")
            if not 0.0 < self.target <= 1.0:
                raise _fail(text, f"target must lie in (0, 1]; got {self.target}")
        if not 0.0 <= self.tolerance < 1.0:
            raise _fail(text, f"tolerance must lie in [0, 1); got {self.tolerance}")
        if not 0.0 <= self.settle < 1.0:
            raise _fail(text, f"settle must lie in [0, 1); got {self.settle}")
        if self.bound not in BOUNDS:
            raise _fail(text, f"bound must be one of {', '.join(BOUNDS)}; got {self.bound!r}")
        if isinstance(self.looks, tuple):
            if given & {"min", "max"}:
                raise _fail(text, "explicit looks fix min and max: give one or the other")
            if any(b <= a for a, b in zip(self.looks, self.looks[1:], strict=False)):
                raise _fail(text, f"looks must increase; got {'/'.join(map(str, self.looks))}")
            if self.looks[-1] > MAX_N:
                raise _fail(text, f"looks must be at most {MAX_N}")

    @property
    def text(self) -> str:
        """The canonical text: the mode and every key that differs from its default."""
        defaults = {f.name: f.default for f in fields(self)}
        parts = []
        for key in _KEYS[self.mode]:
            value = getattr(self, key)
            if value != defaults[key]:
                shown = "/".join(map(str, value)) if isinstance(value, tuple) else value
                parts.append(f"{key}={shown}")
        return self.mode + (":" + ",".join(parts) if parts else "")

    def __str__(self) -> str:
        return self.text

    def check_method(self, method: str, k: int = 1) -> None:
        """Refuse a FWER method the mode cannot use (sequential: arbitrary dependence only)."""
        method, _ = resolve_method(method, k)
        if self.mode == "sequential" and method not in SEQUENTIAL_METHODS:
            raise ValueError(
                f"adaptive_n {self.text!r}: a sequential test needs a method valid under the "
                f"dependence its stopping time creates ({', '.join(SEQUENTIAL_METHODS)}); "
                f"got {method!r}"
            )

    def check_radii(self, radii: bool) -> None:
        """Refuse per-component radii with a sequential test (they use the fixed-n test)."""
        if radii and self.mode == "sequential":
            raise ValueError(
                f"adaptive_n {self.text!r} with radii: the per-component radii use the fixed-n "
                "binomial test, which is not valid at a sequential stopping time; certify "
                "radii at a fixed n or with two-stage"
            )

    def budget(self, n: int) -> int:
        """The most testing copies an item may use (the run's ``n`` by default)."""
        if isinstance(self.looks, tuple) and self.mode == "sequential":
            return self.looks[-1]
        return n if self.max is None else self.max

    def grid(self, N: int, n: int, tau: float, alpha: float, k: int = 1) -> list:
        """The two-stage grid of testing sample sizes for items of ``N`` components."""
        hi = self.budget(n)
        lo = self.min if self.min is not None else certification_floor(N, tau, alpha, k=k)
        lo = min(lo, hi)
        step = self.step or max(1, math.ceil((hi - lo) / GRID_POINTS))
        return sorted({*range(lo, hi + 1, step), hi})

    def schedule(self, N: int, n: int, tau: float, alpha: float, k: int = 1) -> tuple:
        """The sequential looks (cumulative testing sample sizes) for ``N`` components."""
        if isinstance(self.looks, tuple):
            return self.looks
        hi = self.budget(n)
        lo = self.min
        if lo is None:
            lo = certification_floor(N, tau, alpha, bound=self.bound, looks=self.looks, k=k)
        lo = min(lo, hi)
        pts = np.geomspace(lo, hi, self.looks).round().astype(int).tolist()
        return tuple(sorted({*pts, hi}))


def _value(text, key, value):
    try:
        if key in _INT_KEYS:
            out = int(value)
            if out < 1:
                raise ValueError
            return out
        if key in _FLOAT_KEYS:
            return float(value)
        if key == "looks":
            looks = tuple(int(v) for v in value.split("/"))
            if any(v < 1 for v in looks):
                raise ValueError
            return looks if "/" in value else looks[0]
    except ValueError:
        kind = "a positive integer" if key in _INT_KEYS or key == "looks" else "a number"
        if key == "looks":
            kind += " or looks separated by '/' (80/120/200)"
        raise _fail(text, f"{key} must be {kind}; got {value!r}") from None
    return value


@dataclass(frozen=True, eq=False)
class AdaptiveResult:
    """One item certified by :func:`adaptive_certify`.

    Attributes
    ----------
    statistics : SegmentationCertificate or SequentialCertificate
        The core's decision (labels, reject, p-values, settings).
    hits : ndarray of int64
        Hits of the guess among the ``n`` testing copies.
    n : int
        Testing copies drawn (planned, or the stopping time).
    n_pilot : int
        Pilot copies drawn (two-stage; 0 for sequential).
    detail : str
        How ``n`` came about (the plan's predicted rate, or the looks taken).
    """

    statistics: object
    hits: np.ndarray
    n: int
    n_pilot: int
    detail: str


def adaptive_certify(spec, guess, sample, *, n, tau, alpha, method="holm", k=1) -> AdaptiveResult:
    """Certify one item with a per-item number of testing copies.

    Parameters
    ----------
    spec : AdaptiveN or str
    guess : ndarray of int
        The guess per component, from earlier copies than any ``sample`` draws.
    sample : callable ``sample(m, guess) -> hits or class counts``
        Draws ``m`` fresh copies (:func:`mtcert.certify.sequential.fresh_hits`).
    n : int
        The run's ``n`` (default budget; the reference of a two-stage plan).
    tau, alpha, method, k
        As in :func:`mtcert.certify.segmentation.segcertify_hits`.

    Returns
    -------
    AdaptiveResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = np.r_[np.full(3_000, 0.999), np.full(100, 0.7)]
    >>> res = adaptive_certify("two-stage:max=200", np.ones(p.size, int),
    ...                        lambda m, g: rng.binomial(m, p), n=200, tau=0.75, alpha=0.001)
    >>> res.n_pilot, res.n < 200, round(res.statistics.certified_rate, 2)
    (16, True, 0.97)
    """
    spec = AdaptiveN.parse(spec)
    spec.check_method(method, k)
    guess = np.asarray(guess, np.int64)
    N = guess.size
    if spec.mode == "sequential":
        looks = spec.schedule(N, n, tau, alpha, k)
        cert = sequential_segcertify(
            guess, sample, tau=tau, alpha=alpha, looks=looks, method=method, k=k,
            bound=spec.bound, settle=spec.settle,
        )  # fmt: skip
        detail = f"{cert.stopped} at look {len(cert.history)} of {len(looks)}"
        return AdaptiveResult(cert, cert.hits, cert.n, 0, detail)
    # two stages: pilot hits from fresh copies, then n from them, then fresh copies again
    pilot = fresh_hits(sample, spec.pilot, guess)
    grid = spec.grid(N, n, tau, alpha, k)
    if spec.target is None:
        aim = dict(reference_n=n, tolerance=spec.tolerance)
    else:
        aim = dict(target=spec.target)
    plan = plan_image_n(
        pilot, spec.pilot, tau=tau, alpha=alpha, method=method, k=k, n_grid=grid, **aim
    )
    hits = fresh_hits(sample, plan.n, guess)  # never the pilot's copies
    cert = segcertify_hits(guess, hits, plan.n, tau=tau, alpha=alpha, method=method, k=k)
    detail = f"planned for {plan.target:.4f}, predicted {plan.predicted:.4f}"
    return AdaptiveResult(cert, hits, plan.n, spec.pilot, detail)
