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
noise from ``torch.randn`` (global RNG)     a seeded :class:`torch.Generator`
==========================================  ==========================================

A *classifier* maps a batch ``(B, *x.shape)`` to logits ``(B, C)``; a
*segmenter* to logits ``(B, C, *components)`` (e.g. ``(B, C, H, W)``).  Which
one ``base`` is, is read off its output on the clean input.  Abstention is
:data:`ABSTAIN` (-1) with radius 0.0 for a classifier, as in the reference code;
a segmenter's certificate abstains per component and its radius is
``σ Φ⁻¹(τ)`` for every certified component (all of them jointly with
probability at least ``1 − alpha``).

Imports the core's Cohen et al. procedures, the certifier and the tensor task.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from mtcert import ABSTAIN
from mtcert.certify.cohen import certify as cohen_certify
from mtcert.certify.cohen import predict as cohen_predict
from mtcert_torch.certifier import Certifier
from mtcert_torch.task import TensorTask

__all__ = ["Smooth"]


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
    seed : int or torch.Generator, default 0
    device : optional
        Defaults to the base model's device.

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
        seed: int | torch.Generator = 0,
        device=None,
    ):
        self.base_classifier = base_classifier
        self.num_classes = num_classes
        self.sigma = sigma
        self.tau = tau
        self.method = method
        self.k = k
        task = TensorTask(base_classifier, num_classes=num_classes, noise=noise)
        self.certifier = Certifier(task, seed=seed, device=device)
        self._kind: dict = {}

    def is_classifier(self, x) -> bool:
        """True when ``base_classifier`` returns one label per input (no component axes)."""
        key = tuple(torch.as_tensor(x).shape)
        if key not in self._kind:
            self._kind[key] = self.certifier.prepare(x).base_labels().dim() == 0
        return self._kind[key]

    def _counts(self, x, num: int, batch_size: int) -> np.ndarray:
        self.certifier.batch_size = int(batch_size)
        return self.certifier.counts(x, sigma=self.sigma, num=num).cpu().numpy()

    def predict(self, x, n: int, alpha: float, batch_size: int):
        """Cohen et al.'s PREDICT from ``n`` noisy copies: the top label if it beats
        the runner-up in a two-sided binomial test at level ``alpha``, else
        :data:`ABSTAIN`.  A segmenter gets one such decision per component."""
        if not self.is_classifier(x):
            self.certifier.batch_size = int(batch_size)
            return self.certifier.predict(x, sigma=self.sigma, n=n, alpha=alpha)
        counts = self._counts(x, n, batch_size)
        return int(cohen_predict(counts, alpha=alpha).label)

    def certify(self, x, n0: int, n: int, alpha: float, batch_size: int):
        """Certify ``x``: ``(label, radius)`` for a classifier (Cohen's CERTIFY:
        guess from ``n0`` copies, Clopper–Pearson bound from ``n`` fresh ones;
        ``(ABSTAIN, 0.0)`` when the bound is not above ½), ``(labels, radius)``
        for a segmenter (SEGCERTIFY at ``tau`` with ``method``/``k``)."""
        if not self.is_classifier(x):
            self.certifier.batch_size = int(batch_size)
            cert = self.certifier.certify(x, sigma=self.sigma, tau=self.tau, n0=n0, n=n,
                                          alpha=alpha, method=self.method, k=self.k)  # fmt: skip
            return cert.labels, cert.radius
        counts0 = self._counts(x, n0, batch_size)
        counts = self._counts(x, n, batch_size)  # fresh, independent draws
        res = cohen_certify(counts0, counts, alpha=alpha, sigma=self.sigma,
                            noise=self.certifier.task.noise)  # fmt: skip
        label, radius = int(res.label), float(res.radius)
        return (label, radius) if label != ABSTAIN and not math.isnan(radius) else (ABSTAIN, 0.0)
