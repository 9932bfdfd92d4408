"""One certifier for every modality: SEGCERTIFY (paper Algorithm 2) over a task.

The flow is model → sampler → counts → :func:`mtcert.certify.segmentation.segcertify_hits`
→ certificate.  The :class:`Certifier` owns the two sampling stages (guess
with ``n0`` copies, test with ``n`` fresh copies), streaming counts, batch
sizing and seeding; a :class:`~mtcert_torch.task.Task` says what a modality
adds (input, noise space, labels, radius).  All statistics happen in
:mod:`mtcert`.  With ``radii=True`` the same counts also give every component
its own radius, jointly certified over the item
(:func:`mtcert.certify.radii.certify_radii`).  Every call runs the model in
evaluation mode and restores its mode afterwards; non-finite scores stop it
(:class:`~mtcert_torch.task.NonFiniteOutputError`).

Imports the core's statistics, the plugin's base modules and the image task (the
shorthand for a plain model); never the settings, runs or command line.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mtcert.certify.radii import RadiiCertificate, certify_radii
from mtcert.certify.segmentation import segcertify_hits
from mtcert.stats.validation import check_alpha, check_positive_int, check_tau
from mtcert_torch.adaptive import AdaptiveN, adaptive_certify
from mtcert_torch.noise import NoiseModel
from mtcert_torch.sampler import CPU_MAX_BATCH, SamplerStats, StreamingSampler
from mtcert_torch.task import Smoothed, Task
from mtcert_torch.tasks.image import ImageTask

__all__ = ["Certificate", "Certifier"]


@dataclass(frozen=True, repr=False)
class Certificate:
    """SEGCERTIFY result for one input, with the same fields for every modality.

    With probability at least ``1 − alpha`` every non-abstained component of
    ``labels`` is the smoothed model's label for every input within ``radius``
    of the clean one in the task's smoothing space (ℓ2 for Gaussian, ℓ1 for
    Laplace noise; radians for rotations) — all components of *this input*
    simultaneously (FWER; with ``k > 1``: all but at most ``k − 1`` of them,
    k-FWER).  The input is the family: certificates of several inputs hold
    each on its own.

    With ``radii_certificate`` (``Certifier(..., radii=True)``) every component
    also has its own radius, ``radii``: with probability at least ``1 − alpha``
    all of them hold at once for this input (the capped Holm closed test of
    :func:`mtcert.certify.radii.certify_radii`).  It is a second
    certificate from the same samples: each holds with probability at least
    ``1 − alpha``, both together with at least ``1 − 2 alpha``.

    Attributes
    ----------
    labels : ndarray ``(*components)``
        Certified label per component, :data:`mtcert.ABSTAIN` (-1) where abstained.
    guess, hits : ndarray ``(*components)``
        The ``n0``-stage guess and its hit count among the ``n`` fresh copies.
    pvalues : ndarray ``(*components)``
        One-sided binomial p-values of H0: p ≤ τ (before FWER control); anytime-valid
        ones with a sequential ``adaptive_n``.
    abstained : ndarray of bool ``(*components)``
    radius : float
    noise : str
        The task's smoothing description (e.g. ``"gaussian"``, ``"rotation axis=0,0,1"``).
    sigma, tau, alpha, method, k, n0, n :
        The settings of the call.
    seconds_sampling, seconds_statistics : float
        Wall time of the forward passes and of the statistics.
    statistics : mtcert.certify.segmentation.SegmentationCertificate
        The core's certificate (rejections, adjusted decisions, …).
    info : dict
        Task details (e.g. a point cloud's normalisation ``center``/``scale``).
    radii_certificate : mtcert.certify.radii.RadiiCertificate or None
        Per-component radii with one joint guarantee (``radii=True``), else None.
    n_pilot : int
        Pilot copies of a two-stage ``adaptive_n`` (0 otherwise).
    adaptive_n : str or None
        The ``adaptive_n`` of the call (canonical text), None at a fixed ``n``;
        with it, ``n`` is this input's own number of testing copies.
    """

    guess: np.ndarray
    hits: np.ndarray
    radius: float
    noise: str
    sigma: float
    n0: int
    n: int
    seconds_sampling: float
    seconds_statistics: float
    statistics: object
    info: dict = field(default_factory=dict)
    radii_certificate: RadiiCertificate | None = None
    n_pilot: int = 0
    adaptive_n: str | None = None

    @property
    def passes(self) -> int:
        """Noisy copies drawn for this input: ``n0 + n_pilot + n``."""
        return self.n0 + self.n_pilot + self.n

    @property
    def labels(self) -> np.ndarray:
        return self.statistics.labels

    @property
    def radii(self) -> np.ndarray | None:
        """Per-component certified radii (0 where abstained), jointly at ``alpha``; None
        without ``radii=True``."""
        return None if self.radii_certificate is None else self.radii_certificate.radii

    @property
    def pvalues(self) -> np.ndarray:
        return self.statistics.pvalues

    @property
    def abstained(self) -> np.ndarray:
        return ~self.statistics.reject

    @property
    def tau(self) -> float:
        return self.statistics.tau

    @property
    def alpha(self) -> float:
        return self.statistics.alpha

    @property
    def method(self) -> str:
        return self.statistics.method

    @property
    def k(self) -> int:
        return self.statistics.k

    @property
    def abstain_rate(self) -> float:
        return float(self.statistics.abstain_rate)

    @property
    def seconds(self) -> float:
        return self.seconds_sampling + self.seconds_statistics

    def __repr__(self) -> str:
        return (
            f"Certificate(shape={self.labels.shape}, noise={self.noise}({self.sigma:g}), "
            f"tau={self.tau:g}, alpha={self.alpha:g}, method={self.method!r}, k={self.k}, "
            f"n0={self.n0}, n={self.n}, radius={self.radius:.4f}, "
            f"abstain_rate={self.abstain_rate:.4f}, seconds={self.seconds:.2f})"
        )


class Certifier:
    """SEGCERTIFY for one model over one task.

    Parameters
    ----------
    task : Task, SegmentationAdapter or callable
        A :class:`~mtcert_torch.task.Task` (images, point clouds, your own).
        A :class:`~mtcert_torch.SegmentationAdapter` or a plain callable on
        image batches is shorthand for ``ImageTask(model, num_classes=...,
        noise=...)``.
    num_classes : int, optional
        Image shorthand only (taken from the adapter when not given).
    noise : {"gaussian", "laplace"}, optional
        Image shorthand only (default ``"gaussian"``); a task brings its own noise.
    batch_size : int, optional
        Noisy copies per forward pass; automatic when omitted (measured on
        CUDA and halved after an out-of-memory error; on CPU the task's hint
        or a memory estimate, at most :data:`~mtcert_torch.sampler.CPU_MAX_BATCH`).
    memory_budget : int, optional
        Bytes per batch for the automatic batch size.
    seed : int or torch.Generator, default 0
        Seed of the noise generator on the device, or the generator itself
        (used as given; it must live on the certifier's device).  Two
        certifiers with the same seed, task and batch size reproduce each other.
    device : str or torch.device, optional
        Defaults to the task's device (CPU if it has none).
    sampler : callable, default StreamingSampler
        Factory with :class:`~mtcert_torch.sampler.StreamingSampler`'s
        signature; inject a subclass to change how copies are drawn or counted.
    radii : bool, default False
        Also certify every component's own radius from the same counts, jointly
        over the input at the call's ``alpha`` (:attr:`Certificate.radii`).
    adaptive_n : str or AdaptiveN, optional
        Default per-input number of testing copies for :meth:`certify`
        (:mod:`mtcert_torch.adaptive`); None: a fixed ``n``.

    Notes
    -----
    Each call puts the task's model in evaluation mode and restores every
    module's mode afterwards (a model switched back to training mode is not
    sampled with dropout).  A model whose scores are NaN or infinite raises
    :class:`~mtcert_torch.task.NonFiniteOutputError` instead of certifying
    class 0.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch import SegmentationAdapter
    >>> net = torch.nn.Conv2d(3, 2, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.zero_(); _ = net.bias.copy_(torch.tensor([0.0, 5.0]))
    >>> cert = Certifier(SegmentationAdapter(net, num_classes=2)).certify(
    ...     torch.rand(3, 8, 8), sigma=0.25, tau=0.75, n0=10, n=100, alpha=0.001)
    >>> cert.labels.shape, float(cert.abstain_rate), round(cert.radius, 4)
    ((8, 8), 0.0, 0.1686)
    """

    def __init__(
        self,
        task: Task | Callable,
        *,
        num_classes: int | None = None,
        noise: str | None = None,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        seed: int | torch.Generator = 0,
        device=None,
        sampler: Callable[..., StreamingSampler] = StreamingSampler,
        radii: bool = False,
        adaptive_n: str | AdaptiveN | None = None,
    ):
        if isinstance(task, Task):
            if num_classes is not None or noise is not None:
                raise ValueError(
                    "num_classes and noise belong to the task; set them there, not on Certifier"
                )
        else:
            task = ImageTask(task, num_classes=num_classes, noise=noise or "gaussian")
        self.task = task.eval()
        self.num_classes = check_positive_int(task.num_classes, "num_classes")
        self.batch_size = (
            None if batch_size is None else check_positive_int(batch_size, "batch_size")
        )
        if memory_budget is not None:
            memory_budget = check_positive_int(memory_budget, "memory_budget")
        self.memory_budget = memory_budget
        if device is None:
            device = task.device
        if isinstance(seed, torch.Generator):
            device = seed.device if device is None else device
            self.device = torch.device(device)
            if seed.device.type != self.device.type:
                raise ValueError(
                    f"seed: the generator lives on {seed.device}, the certifier on {self.device}"
                )
            self.generator = seed
        else:
            self.device = torch.device("cpu" if device is None else device)
            self.generator = torch.Generator(device=self.device)
            self.manual_seed(seed)
        self.sampler_factory = sampler
        if not isinstance(radii, bool):
            raise ValueError(f"radii must be True or False; got {radii!r}")
        self.radii = radii
        self.adaptive_n = None if adaptive_n is None else AdaptiveN.parse(adaptive_n)
        if self.adaptive_n is not None:
            self.adaptive_n.check_radii(radii)
        self.stats = SamplerStats()
        self._auto_batch: dict = {}
        self.last_batch_size: int | None = None

    @property
    def model(self):
        """The task's model."""
        return getattr(self.task, "model", None)

    @property
    def noise(self) -> str:
        """The task's smoothing description."""
        return self.task.label

    def manual_seed(self, seed: int) -> Certifier:
        """Reseed the noise generator and the task's own randomness (the evaluation
        loop seeds per item, so results do not depend on order, sharding or resumption)."""
        seed = check_positive_int(seed, "seed", minimum=0)
        self.generator.manual_seed(seed)
        self.task.manual_seed(seed)
        return self

    # -- sampling ---------------------------------------------------------------------------
    def prepare(self, x) -> Smoothed:
        """The task's :class:`~mtcert_torch.task.Smoothed` view of input ``x``."""
        return self.task.prepare(x, self.device)

    def _sampler(self, smoothed: Smoothed, sigma: float) -> StreamingSampler:
        sampler = self.sampler_factory(
            smoothed.classify,
            num_classes=self.num_classes,
            noise=NoiseModel(self.task.noise, sigma),
            generator=self.generator,
            batch_size=self.batch_size,
            memory_budget=self.memory_budget,
        )
        if self.batch_size is None:
            # Preset, but still automatic: on CUDA it may shrink after an out-of-memory error.
            batch = self._auto_batch.get(self._key(smoothed))
            if batch is None and self.device.type != "cuda":
                batch = self.task.batch_size_hint(smoothed, self.memory_budget)
                if batch is not None:
                    batch = max(1, min(CPU_MAX_BATCH, int(batch)))
            sampler.batch_size = batch
        return sampler

    @staticmethod
    def _key(smoothed: Smoothed) -> tuple:
        return tuple(smoothed.center.shape) if smoothed.size_key is None else smoothed.size_key

    def _done(self, sampler: StreamingSampler, smoothed: Smoothed) -> None:
        self.last_batch_size = sampler.batch_size
        if self.batch_size is None:
            self._auto_batch[self._key(smoothed)] = sampler.batch_size
        self.stats.add(sampler.stats)

    def counts(self, x, *, sigma: float, num: int) -> torch.Tensor:
        """Label counts ``(C, *components)`` over ``num`` noisy copies (on the device)."""
        with self.task.eval_mode():
            smoothed = self.prepare(x)
            sampler = self._sampler(smoothed, sigma)
            out = sampler.counts(smoothed.center, num)
        self._done(sampler, smoothed)
        return out

    # -- SEGCERTIFY ---------------------------------------------------------------------------
    def certify(
        self,
        x,
        *,
        sigma: float,
        tau: float,
        n0: int,
        n: int,
        alpha: float,
        method: str = "holm",
        k: int = 1,
        radii: bool | None = None,
        adaptive_n: str | AdaptiveN | None = None,
    ) -> Certificate:
        """SEGCERTIFY one input (paper Algorithm 2).

        ``n0`` noisy copies give the guess per component (argmax of the
        counts), ``n`` fresh copies give its hit count, and
        :func:`mtcert.certify.segmentation.segcertify_hits` tests H0: p_i ≤ τ per component
        with FWER (or k-FWER) control at ``alpha``.  ``radii`` (default: the
        certifier's) also certifies every component's own radius from the same
        counts (:attr:`Certificate.radii`).

        ``adaptive_n`` (:mod:`mtcert_torch.adaptive`, e.g. ``"two-stage:max=200"`` or
        ``"sequential:max=200"``) gives each input its own number of testing
        copies: after the guess, the core draws them through a callback on this
        input's sampler, every call a fresh draw, so no copy enters the test
        twice or after choosing ``n``.  ``n`` is then the reference (two-stage)
        and the default budget; the certificate's ``n`` and ``passes`` are this
        input's.  None: the certifier's (a fixed ``n`` unless it was built with one).
        """
        tau = check_tau(tau)
        alpha = check_alpha(alpha)
        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        radii = self.radii if radii is None else radii
        adaptive_n = self.adaptive_n if adaptive_n is None else adaptive_n
        if adaptive_n is not None:
            return self._certify_adaptive(
                x, AdaptiveN.parse(adaptive_n), sigma=sigma, tau=tau, n0=n0, n=n, alpha=alpha,
                method=method, k=k, radii=radii,
            )  # fmt: skip
        with self.task.eval_mode():
            smoothed = self.prepare(x)
            sampler = self._sampler(smoothed, sigma)
            t0 = time.perf_counter()
            guess = sampler.counts(smoothed.center, n0).argmax(0)  # stage 1: the guess only
            hits = sampler.hits(smoothed.center, guess, n)  # stage 2: fresh, independent draws
            guess_np, hits_np = guess.cpu().numpy(), hits.cpu().numpy()
        t1 = time.perf_counter()
        stats = segcertify_hits(guess_np, hits_np, n, tau=tau, alpha=alpha, method=method, k=k)
        radius = self.task.radius(tau, sampler.noise.scale)
        joint = None
        if radii:
            scale = sampler.noise.scale
            joint = certify_radii(
                guess_np, hits_np, n, alpha=alpha, sigma=scale, noise=self.task.noise
            )
            joint = self._task_radii(joint, scale)
        t2 = time.perf_counter()
        self._done(sampler, smoothed)
        return Certificate(
            guess=guess_np,
            hits=hits_np,
            radius=radius,
            noise=self.task.label,
            sigma=sampler.noise.scale,
            n0=n0,
            n=n,
            seconds_sampling=t1 - t0,
            seconds_statistics=t2 - t1,
            statistics=stats,
            info=dict(smoothed.info),
            radii_certificate=joint,
        )

    def _certify_adaptive(self, x, spec, *, sigma, tau, n0, n, alpha, method, k, radii):
        """:meth:`certify` with a per-input number of testing copies (``adaptive_n``)."""
        spec.check_method(method, k)
        spec.check_radii(radii)
        with self.task.eval_mode():
            smoothed = self.prepare(x)
            sampler = self._sampler(smoothed, sigma)
            t0 = time.perf_counter()
            guess = sampler.counts(smoothed.center, n0).argmax(0)  # the guess only
            guess_np = guess.cpu().numpy()
            drawn = [0.0]

            def sample(m, _guess):  # m fresh copies: never one drawn before
                t = time.perf_counter()
                out = sampler.hits(smoothed.center, guess, m).cpu().numpy()
                drawn[0] += time.perf_counter() - t
                return out

            t1 = time.perf_counter()
            res = adaptive_certify(
                spec, guess_np, sample, n=n, tau=tau, alpha=alpha, method=method, k=k
            )
        joint = None
        if radii:
            scale = sampler.noise.scale
            joint = certify_radii(
                guess_np, res.hits, res.n, alpha=alpha, sigma=scale, noise=self.task.noise
            )
            joint = self._task_radii(joint, scale)
        self._done(sampler, smoothed)
        statistics_seconds = time.perf_counter() - t1 - drawn[0]
        return Certificate(
            guess=guess_np,
            hits=res.hits,
            radius=self.task.radius(tau, sampler.noise.scale),
            noise=self.task.label,
            sigma=sampler.noise.scale,
            n0=n0,
            n=res.n,
            seconds_sampling=t1 - t0 + drawn[0],
            seconds_statistics=statistics_seconds,
            statistics=res.statistics,
            info=dict(smoothed.info),
            radii_certificate=joint,
            n_pilot=res.n_pilot,
            adaptive_n=spec.text,
        )

    def _task_radii(self, joint: RadiiCertificate, sigma: float) -> RadiiCertificate:
        """``joint`` with the task's own radius formula at each certified bound (the same one
        the SEGCERTIFY radius uses; at most n + 1 distinct bounds, so a few calls)."""
        values, inverse = np.unique(joint.p_lower, return_inverse=True)
        radii = np.array(
            [self.task.radius(float(v), sigma) if v > joint.tau_min else 0.0 for v in values]
        )
        return dataclasses.replace(joint, radii=radii[inverse].reshape(joint.p_lower.shape))

    def predict(
        self, x, *, sigma: float | None = None, n: int = 100, alpha: float | None = None
    ) -> np.ndarray:
        """Uncertified labels ``(*components)``.

        ``sigma=None``: the base model on the clean input.  Otherwise the
        smoothed model estimated from ``n`` noisy copies: the majority label
        per component, or with ``alpha`` Cohen et al.'s PREDICT per component
        (:func:`mtcert.certify.cohen.predict`), which abstains (``-1``) where the top
        label does not significantly beat the runner-up; each component is
        then wrong with probability at most ``alpha`` (per component, not jointly).
        """
        if sigma is None:
            with self.task.eval_mode():
                return self.prepare(x).base_labels().cpu().numpy()
        counts = self.counts(x, sigma=sigma, num=check_positive_int(n, "n"))
        if alpha is None:
            return counts.argmax(0).cpu().numpy()
        from mtcert.certify.cohen import predict as cohen_predict

        return cohen_predict(np.moveaxis(counts.cpu().numpy(), 0, -1), alpha=alpha).label
