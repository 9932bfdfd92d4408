"""A locuslab/smoothing-style facade: ``Smooth(base, num_classes, sigma)``.

Researchers coming from Cohen et al.'s reference code switch with one line:
``from mtcert_torch import Smooth``.  The arguments keep their names and
meaning; the statistics come from :mod:`mtcert`:

==========================================  ==========================================
locuslab/smoothing                          mtcert_torch.Smooth
==========================================  ==========================================
``Smooth(base, num_classes, sigma)``        same (``tau``, ``method``, ``k``, ``noise``,
                                            ``seed`` keyword-only extras)
``predict(x, n, alpha, batch_size)``        classifier: Cohen's PREDICT
                                            (:func:`mtcert.certify.cohen.predict`), ``int``;
                                            segmenter: PREDICT per component, array
``certify(x, n0, n, alpha, batch_size)``    classifier: Cohen's CERTIFY
                                            (:func:`mtcert.certify.cohen.certify`),
                                            ``(label, radius)``; segmenter:
                                            SEGCERTIFY, ``(labels, radius)``
``Smooth.ABSTAIN`` (-1)                     same (:data:`mtcert.ABSTAIN`)
``base_classifier.eval()`` on every call    same, and the caller's mode is restored after
noise from ``torch.randn`` (global RNG)     same by default (``seed=None``): torch's global
                                            generator on the device, so
                                            ``torch.manual_seed`` governs it; an int
                                            ``seed`` uses a private generator instead
noise in the input's dtype                  noise in the model's dtype: float64 for a
                                            float64 model, else float32 (cast to a
                                            float16 / bfloat16 model's dtype)
==========================================  ==========================================

A *classifier* maps a batch ``(B, *x.shape)`` to logits ``(B, C)``; a
*segmenter* to logits ``(B, C, *components)`` (e.g. ``(B, C, H, W)``).  Which
one ``base`` is, is read off its output on the clean input.  Abstention is
:data:`ABSTAIN` (-1) with radius 0.0 for a classifier, as in the reference code;
a segmenter's certificate abstains per component and its radius is
``σ Φ⁻¹(τ)`` for every certified component (all of them jointly with
probability at least ``1 − alpha``, per input).

Imports the core's Cohen et al. procedures and validation, the certifier and the tensor task.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from mtcert import ABSTAIN
from mtcert.certify.cohen import certify as cohen_certify
from mtcert.certify.cohen import predict as cohen_predict
from mtcert.stats.validation import check_positive_int
from mtcert_torch.certifier import Certifier
from mtcert_torch.task import TensorTask

__all__ = ["Smooth", "global_generator"]


def global_generator(device=None) -> torch.Generator:
    """torch's global generator on ``device`` (CPU: ``torch.default_generator``; CUDA: that
    device's default generator), the stream ``torch.randn_like`` draws from and
    ``torch.manual_seed`` reseeds.

    Examples
    --------
    >>> import torch
    >>> global_generator("cpu") is torch.default_generator
    True
    """
    device = torch.device("cpu" if device is None else device)
    if device.type == "cpu":
        return torch.default_generator
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    raise ValueError(
        f"seed=None follows torch's global generator, which is not available for device "
        f"{device} here; pass an integer seed"
    )


class Smooth:
    """Randomized smoothing of a classifier or segmenter (locuslab-compatible API).

    Parameters
    ----------
    base_classifier : callable
        ``(B, *x.shape)`` → logits ``(B, C)`` (classifier) or ``(B, C, ...)``
        (segmenter).  Called under :func:`torch.inference_mode`.
    num_classes : int
    sigma : float
        Noise scale (standard deviation for Gaussian noise).
    tau : float, default 0.75
        Segmenters only: SEGCERTIFY's threshold.
    method : str, default "holm"
        Segmenters only: the FWER procedure.
    k : int, default 1
        Segmenters only: k-FWER.
    noise : {"gaussian", "laplace"}
    seed : None, int or torch.Generator, default None
        None: draw the noise from torch's global generator on the device, as
        locuslab's ``torch.randn_like`` does — ``torch.manual_seed(s)`` makes a
        script reproducible and different global seeds give different draws.
        An int: a private generator seeded once here (results then ignore
        ``torch.manual_seed``).  A generator: used as given.
    device : optional
        Defaults to the base model's device.

    Notes
    -----
    Every ``predict`` / ``certify`` call puts ``base_classifier`` in evaluation
    mode and restores each module's mode afterwards, as locuslab's calls
    ``.eval()`` (without the restore).  ``batch_size`` must be a positive
    integer.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 3)
    >>> with torch.no_grad():
    ...     _ = net.weight.zero_(); _ = net.bias.copy_(torch.tensor([0.0, 4.0, 0.0]))
    >>> smoothed = Smooth(net, num_classes=3, sigma=0.5)
    >>> label, radius = smoothed.certify(torch.zeros(2), n0=10, n=100, alpha=0.001, batch_size=50)
    >>> label, round(radius, 3)  # 0.5 Φ⁻¹(0.001 ** (1 / 100)): all 100 copies say 1
    (1, 0.75)
    >>> smoothed.predict(torch.zeros(2), n=100, alpha=0.001, batch_size=50)
    1
    """

    ABSTAIN = ABSTAIN

    def __init__(
        self,
        base_classifier: Callable,
        num_classes: int,
        sigma: float,
        *,
        tau: float = 0.75,
        method: str = "holm",
        k: int = 1,
        noise: str = "gaussian",
        seed: int | torch.Generator | None = None,
        device=None,
    ):
        self.base_classifier = base_classifier
        self.num_classes = num_classes
        self.sigma = sigma
        self.tau = tau
        self.method = method
        self.k = k
        task = TensorTask(base_classifier, num_classes=num_classes, noise=noise)
        if seed is None:
            seed = global_generator(device if device is not None else task.device)
        with task.eval_mode():  # the Certifier sets eval mode; the facade leaves the caller's
            self.certifier = Certifier(task, seed=seed, device=device)
        self._kind: dict = {}

    def is_classifier(self, x) -> bool:
        """True when ``base_classifier`` returns one label per input (no component axes)."""
        key = tuple(torch.as_tensor(x).shape)
        if key not in self._kind:
            with self.certifier.task.eval_mode():
                self._kind[key] = self.certifier.prepare(x).base_labels().dim() == 0
        return self._kind[key]

    def _batch(self, batch_size) -> None:
        self.certifier.batch_size = check_positive_int(batch_size, "batch_size")

    def _counts(self, x, num: int, batch_size: int) -> np.ndarray:
        self._batch(batch_size)
        return self.certifier.counts(x, sigma=self.sigma, num=num).cpu().numpy()

    def predict(self, x, n: int, alpha: float, batch_size: int):
        """Cohen et al.'s PREDICT from ``n`` noisy copies: the top label if it beats
        the runner-up in a two-sided binomial test at level ``alpha``, else
        :data:`ABSTAIN`.  A segmenter gets one such decision per component."""
        if not self.is_classifier(x):
            self._batch(batch_size)
            return self.certifier.predict(x, sigma=self.sigma, n=n, alpha=alpha)
        counts = self._counts(x, n, batch_size)
        return int(cohen_predict(counts, alpha=alpha).label)

    def certify(self, x, n0: int, n: int, alpha: float, batch_size: int):
        """Certify ``x``: ``(label, radius)`` for a classifier (Cohen's CERTIFY:
        guess from ``n0`` copies, Clopper–Pearson bound from ``n`` fresh ones;
        ``(ABSTAIN, 0.0)`` when the bound is not above ½), ``(labels, radius)``
        for a segmenter (SEGCERTIFY at ``tau`` with ``method``/``k``)."""
        if not self.is_classifier(x):
            self._batch(batch_size)
            cert = self.certifier.certify(x, sigma=self.sigma, tau=self.tau, n0=n0, n=n,
                                          alpha=alpha, method=self.method, k=self.k)  # fmt: skip
            return cert.labels, cert.radius
        counts0 = self._counts(x, n0, batch_size)
        counts = self._counts(x, n, batch_size)  # fresh, independent draws
        res = cohen_certify(counts0, counts, alpha=alpha, sigma=self.sigma,
                            noise=self.certifier.task.noise)  # fmt: skip
        label, radius = int(res.label), float(res.radius)
        return (label, radius) if label != ABSTAIN and not math.isnan(radius) else (ABSTAIN, 0.0)
