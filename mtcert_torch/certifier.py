"""Certify segmentation models with SEGCERTIFY (paper Algorithm 2) image by image.

The flow is model → sampler → counts → :func:`mtcert.certify.segcertify_hits`
→ certificate → metrics.  This module owns the first two arrows and the dataset
loop; all statistics (p-values, FWER control, radius) happen in :mod:`mtcert`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mtcert._validation import check_alpha, check_positive_int, check_tau
from mtcert.certify import segcertify_hits

from .adapter import SegmentationAdapter
from .metrics import segmentation_stats
from .noise import NoiseModel
from .sampler import SamplerStats, StreamingSampler


@dataclass(frozen=True, repr=False)
class ImageCertificate:
    """SEGCERTIFY result for one image at full input resolution.

    Attributes
    ----------
    certificate : mtcert.certify.SegmentationCertificate
        The statistical certificate (labels, rejections, p-values, α, τ, method).
    labels : ndarray (H, W)
        Certified label per pixel, ``-1`` (:data:`mtcert.ABSTAIN`) where abstained.
        With probability at least 1 − α, *every* non-abstained pixel's label is
        returned by the base model under noise with probability above τ, so
        the smoothed model keeps that label on every input within ``radius``
        (ℓ2 for Gaussian, ℓ1 for Laplace noise) — all pixels simultaneously
        (with ``k > 1``: all but at most k − 1 of them).
    guess, hits : ndarray (H, W)
        The n0-stage guess and its hit count among the ``n`` fresh samples.
    radius : float
        σΦ⁻¹(τ) for Gaussian noise, −λ ln(2(1 − τ)) for Laplace noise.
    seconds_sampling, seconds_statistics : float
        Wall time spent drawing samples (model forward passes) and in the statistics.
    """

    certificate: object
    guess: np.ndarray
    hits: np.ndarray
    noise: NoiseModel
    n0: int
    n: int
    radius: float
    seconds_sampling: float
    seconds_statistics: float

    @property
    def labels(self) -> np.ndarray:
        return self.certificate.labels

    @property
    def abstain_rate(self) -> float:
        return float(self.certificate.abstain_rate)

    def __repr__(self) -> str:
        c = self.certificate
        return (
            f"ImageCertificate(shape={self.labels.shape}, noise={self.noise.kind}"
            f"({self.noise.scale:g}), tau={c.tau:g}, alpha={c.alpha:g}, method={c.method!r}, "
            f"n0={self.n0}, n={self.n}, radius={self.radius:.4f}, "
            f"abstain_rate={self.abstain_rate:.4f}, "
            f"seconds={self.seconds_sampling + self.seconds_statistics:.2f})"
        )


def as_image(image, device) -> torch.Tensor:
    """A float32 ``(C, H, W)`` tensor in [0, 1] on ``device`` (uint8 input is divided by 255)."""
    img = torch.as_tensor(image)
    if img.dim() != 3:
        raise ValueError(f"image must have shape (3, H, W); got {tuple(img.shape)}")
    if img.dtype == torch.uint8:
        img = img.float().div_(255.0)
    return img.to(device=device, dtype=torch.float32)


class Certifier:
    """SEGCERTIFY for one segmentation model.

    Parameters
    ----------
    model : SegmentationAdapter or callable
        The base classifier in pixel space.  A :class:`SegmentationAdapter`
        (recommended) brings normalisation, scales, flips and upsampling; any
        other callable must map noisy inputs ``(B, *input_shape)`` to integer
        labels ``(B, *component_shape)`` and then ``num_classes`` is required.
    num_classes : int, optional
        Taken from the adapter when not given.
    noise : {"gaussian", "laplace"}
        Smoothing distribution; its scale is the ``sigma`` of each call.
    batch_size : int, optional
        Noisy copies per forward pass; automatic (memory-budgeted) when omitted.
    memory_budget : int, optional
        Bytes per batch for the automatic batch size.
    seed : int
        Seed of the noise generator (on the model's device).  Two certifiers with
        the same seed, model and batch size reproduce each other exactly.
    device : str or torch.device, optional
        Defaults to the adapter's device (CPU for plain callables).

    Examples
    --------
    >>> import torch
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
        model: SegmentationAdapter | Callable,
        *,
        num_classes: int | None = None,
        noise: str = "gaussian",
        batch_size: int | None = None,
        memory_budget: int | None = None,
        seed: int = 0,
        device=None,
    ):
        if isinstance(model, SegmentationAdapter):
            model.eval()
            num_classes = model.num_classes if num_classes is None else num_classes
            device = model.device if device is None else device
        elif not callable(model):
            raise ValueError("model must be a SegmentationAdapter or a callable")
        if num_classes is None:
            raise ValueError("num_classes is required when model is not a SegmentationAdapter")
        self.model = model
        self.num_classes = check_positive_int(num_classes, "num_classes")
        NoiseModel(noise, 1.0)  # validates the noise family early
        self.noise = noise
        self.batch_size = (
            None if batch_size is None else check_positive_int(batch_size, "batch_size")
        )
        self.memory_budget = memory_budget
        self.device = torch.device("cpu" if device is None else device)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.stats = SamplerStats()
        self._auto_batch: dict = {}
        self.last_batch_size: int | None = None

    def manual_seed(self, seed: int) -> Certifier:
        """Reseed the noise generator (the CLI seeds per image, so results do not
        depend on the order, sharding or resumption of a run)."""
        self.generator.manual_seed(int(seed))
        return self

    def _sampler(self, image: torch.Tensor, sigma: float) -> StreamingSampler:
        sampler = StreamingSampler(
            self.model,
            num_classes=self.num_classes,
            noise=NoiseModel(self.noise, sigma),
            generator=self.generator,
            batch_size=self.batch_size,
            memory_budget=self.memory_budget,
        )
        if self.batch_size is None:
            # reuse the automatic choice for this input shape (it stays automatic, so it
            # may still shrink after an out-of-memory error)
            sampler.batch_size = self._auto_batch.get(tuple(image.shape))
        return sampler

    def _done(self, sampler: StreamingSampler, image: torch.Tensor) -> None:
        self.last_batch_size = sampler.batch_size
        if self.batch_size is None:
            self._auto_batch[tuple(image.shape)] = sampler.batch_size
        self.stats.add(sampler.stats)

    def counts(self, image, *, sigma: float, num: int) -> torch.Tensor:
        """Class counts ``(C, H, W)`` over ``num`` noisy copies (on the model's device)."""
        img = as_image(image, self.device)
        sampler = self._sampler(img, sigma)
        out = sampler.counts(img, num)
        self._done(sampler, img)
        return out

    def certify(
        self,
        image,
        *,
        sigma: float,
        tau: float,
        n0: int,
        n: int,
        alpha: float,
        method: str = "holm",
        k: int = 1,
    ) -> ImageCertificate:
        """SEGCERTIFY one image (paper Algorithm 2).

        ``n0`` noisy copies give the guess per pixel (argmax of the counts), ``n``
        fresh copies give its hit count, and :func:`mtcert.certify.segcertify_hits`
        tests H0: p_i ≤ τ per pixel with FWER (or k-FWER) control at ``alpha``.
        """
        tau = check_tau(tau)
        alpha = check_alpha(alpha)
        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        img = as_image(image, self.device)
        sampler = self._sampler(img, sigma)
        t0 = time.perf_counter()
        guess = sampler.counts(img, n0).argmax(0)  # stage 1: guess only
        hits = sampler.hits(img, guess, n)  # stage 2: fresh, independent draws
        guess_np = guess.cpu().numpy()
        hits_np = hits.cpu().numpy()
        t1 = time.perf_counter()
        cert = segcertify_hits(guess_np, hits_np, n, tau=tau, alpha=alpha, method=method, k=k)
        radius = float(cert.radius(sampler.noise.scale, noise=self.noise))
        t2 = time.perf_counter()
        self._done(sampler, img)
        return ImageCertificate(
            certificate=cert,
            guess=guess_np,
            hits=hits_np,
            noise=sampler.noise,
            n0=n0,
            n=n,
            radius=radius,
            seconds_sampling=t1 - t0,
            seconds_statistics=t2 - t1,
        )

    def predict(
        self, image, *, sigma: float | None = None, n: int = 100, alpha: float | None = None
    ) -> np.ndarray:
        """Uncertified prediction ``(H, W)``.

        ``sigma=None``: the base model on the clean image.  Otherwise the
        smoothed model estimated from ``n`` noisy copies: the majority label per
        pixel, or with ``alpha`` Cohen et al.'s PREDICT per pixel
        (:func:`mtcert.cohen.predict`), which abstains (``-1``) where the top
        class does not significantly beat the runner-up; each pixel is then
        wrong with probability at most ``alpha`` (per pixel, not jointly).
        """
        img = as_image(image, self.device)
        if sigma is None:
            with torch.inference_mode():
                return self.model(img.unsqueeze(0))[0].cpu().numpy()
        counts = self.counts(img, sigma=sigma, num=check_positive_int(n, "n"))
        if alpha is None:
            return counts.argmax(0).cpu().numpy()
        from mtcert.cohen import predict as cohen_predict

        return cohen_predict(np.moveaxis(counts.cpu().numpy(), 0, -1), alpha=alpha).label


def certify_one(
    certifier: Certifier,
    name: str,
    image,
    target,
    *,
    sigma: float,
    tau: float,
    n0: int,
    n: int,
    alpha: float,
    method: str = "holm",
    k: int = 1,
    ignore_index: int = 255,
    base: bool = True,
) -> tuple[dict, ImageCertificate, np.ndarray | None]:
    """Certify one image; return ``(record, certificate, base_prediction)``.

    ``record`` holds the per-image counts behind the paper's Table 1 columns
    (see :func:`mtcert_torch.metrics.segmentation_stats`) for the certified
    prediction (``cert_*``) and, when ``base``, for the base model on the clean
    image (``base_*``), plus timings; it is JSON-serialisable.
    """
    cert = certifier.certify(
        image, sigma=sigma, tau=tau, n0=n0, n=n, alpha=alpha, method=method, k=k
    )
    c = segmentation_stats(cert.labels, target, certifier.num_classes, ignore_index=ignore_index)
    rec = {
        "name": name,
        "height": int(cert.labels.shape[0]),
        "width": int(cert.labels.shape[1]),
        "noise": certifier.noise,
        "sigma": float(sigma),
        "tau": float(tau),
        "n0": n0,
        "n": n,
        "alpha": float(alpha),
        "method": method,
        "k": k,
        "radius": cert.radius,
        "pixels": c["pixels"],
        "valid": c["valid"],
        "cert_correct": c["correct"],
        "abstained": c["abstained"],
        "abstained_valid": c["abstained_valid"],
        "cert_acc": c["correct"] / c["valid"] if c["valid"] else float("nan"),
        "abstain_rate": c["abstained_valid"] / c["valid"] if c["valid"] else float("nan"),
        "seconds_sampling": cert.seconds_sampling,
        "seconds_statistics": cert.seconds_statistics,
        "seconds": cert.seconds_sampling + cert.seconds_statistics,
        "cert_intersection": c["intersection"].tolist(),
        "cert_union": c["union"].tolist(),
    }
    pred = None
    if base:
        t0 = time.perf_counter()
        pred = certifier.predict(image)
        rec["seconds_base"] = time.perf_counter() - t0
        b = segmentation_stats(pred, target, certifier.num_classes, ignore_index=ignore_index)
        rec["base_correct"] = b["correct"]
        rec["base_acc"] = b["correct"] / b["valid"] if b["valid"] else float("nan")
        rec["base_intersection"] = b["intersection"].tolist()
        rec["base_union"] = b["union"].tolist()
    return rec, cert, pred


def certify_dataset(
    certifier: Certifier,
    dataset: Iterable,
    *,
    skip: Iterable[str] = (),
    **kwargs,
) -> Iterator[tuple[dict, ImageCertificate, np.ndarray | None]]:
    """Certify every ``(name, image, target)`` item with :func:`certify_one`; yield its results.

    Items whose name is in ``skip`` are passed over (resumption).  Keyword
    arguments (``sigma``, ``tau``, ``n0``, ``n``, ``alpha``, ``method``, ``k``,
    ``ignore_index``, ``base``) go to :func:`certify_one`.  Aggregate the
    records with :func:`summarize`.
    """
    skip = set(skip)
    for name, image, target in dataset:
        if name not in skip:
            yield certify_one(certifier, name, image, target, **kwargs)


def summarize(records: Iterable[dict]) -> list[dict]:
    """Table-1 rows (model, σ, R, acc., mIoU, %∅, t) from per-image records.

    One "base model" row (when the records have base statistics) and one
    SEGCERTIFY row per (noise, σ, τ, n0, n, α, method, k) setting.
    """
    from .metrics import SegmentationMetrics

    groups: dict = {}
    base = None
    for r in records:
        key = (
            r["noise"],
            r["sigma"],
            r["tau"],
            r["n0"],
            r["n"],
            r["alpha"],
            r["method"],
            r.get("k", 1),
        )
        g = groups.setdefault(key, {"m": SegmentationMetrics(0), "t": [], "radius": r["radius"]})
        g["m"].add(
            {
                "pixels": r["pixels"],
                "valid": r["valid"],
                "correct": r["cert_correct"],
                "abstained": r["abstained"],
                "abstained_valid": r["abstained_valid"],
                "intersection": r["cert_intersection"],
                "union": r["cert_union"],
            }
        )
        g["t"].append(r["seconds"])
        if "base_correct" in r:
            if base is None:
                base = {"m": SegmentationMetrics(0), "t": []}
            base["m"].add(
                {
                    "pixels": r["pixels"],
                    "valid": r["valid"],
                    "correct": r["base_correct"],
                    "abstained": 0,
                    "abstained_valid": 0,
                    "intersection": r["base_intersection"],
                    "union": r["base_union"],
                }
            )
            base["t"].append(r["seconds_base"])
    rows = []
    if base is not None:
        s = base["m"].compute()
        rows.append(
            {
                "model": "base model",
                "sigma": None,
                "radius": None,
                "acc": s["accuracy"],
                "miou": s["miou"],
                "abstain": 0.0,
                "t": float(np.mean(base["t"])),
                "images": s["images"],
            }
        )
    for (noise, sigma, tau, n0, n, alpha, method, k), g in groups.items():
        kfwer = f" k={k}" if k != 1 else ""
        s = g["m"].compute()
        rows.append(
            {
                "model": (
                    f"SegCertify {method}{kfwer} {noise} n0={n0} n={n} tau={tau:g} alpha={alpha:g}"
                ),
                "sigma": sigma,
                "radius": g["radius"],
                "acc": s["accuracy"],
                "miou": s["miou"],
                "abstain": s["abstain_rate"],
                "t": float(np.mean(g["t"])),
                "images": s["images"],
            }
        )
    return rows
