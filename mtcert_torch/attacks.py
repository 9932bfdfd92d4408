"""Adversarial attacks that put certificates to the test (paper App. C.1 and Fig. 1).

:func:`pgd_segmentation` is the untargeted PGD of the paper's App. C.1: start
at ``x + ε`` with ``ε`` uniform in the ball of radius ``R``, take ``k`` ascent
steps of size ``s`` (``10 R / k`` by default) on the mean per-pixel
cross-entropy, and after every step project back onto the ball around ``x``
and clamp to [0, 1].  It attacks the model through its
:class:`~mtcert_torch.tasks.adapter.SegmentationAdapter` (normalisation, scales,
flips, upsampling), i.e. exactly the classifier that is smoothed and certified.
``norm="l2"`` matches Gaussian smoothing, ``norm="l1"`` Laplace smoothing.
:func:`pgd_point_cloud` is the same attack on the xyz coordinates of point
clouds (normals untouched, no box).

:func:`attack_certificate` is an empirical check of a certificate: certify a
clean image, attack the base model within the certified radius, re-estimate
the *smoothed* labels on the attacked image from fresh noise, and count the
certified pixels whose smoothed label changed.  The certificate says this
should essentially never happen; the base model's accuracy drop under the same
attack shows that the attack itself is not toothless.

Two deliberate departures from the formula as printed in App. C.1: the step
follows the *normalised* gradient (``s ∇/‖∇‖₂``, Madry et al.'s ℓ2 PGD, which
is what makes ``s = 10 R / k`` a sensible step length; ``normalize=False``
takes the raw gradient as printed), and the projection is onto the *ball*
(the printed ``c_R`` rescales every iterate onto the sphere of radius R).
Clamping to [0, 1] after projecting moves each coordinate towards ``x``
(which lies in [0, 1]), so the result stays in the ball.

Imports the core's statistics and the image tasks (the adapter attacked through); the
run's attack figures are drawn by :func:`mtcert_torch.runs.figures.attack_figures_hook`.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, App. C.1.
.. [2] A. Madry et al., "Towards Deep Learning Models Resistant to Adversarial
   Attacks", ICLR 2018.
.. [3] C. Xie et al., "Adversarial Examples for Semantic Segmentation and
   Object Detection", ICCV 2017 (the mean per-pixel loss).
.. [4] J. Duchi et al., "Efficient Projections onto the l1-Ball for Learning in
   High Dimensions", ICML 2008 (the ℓ1 projection).
.. [5] F. Tramèr, D. Boneh, "Adversarial Training and Robustness for Multiple
   Perturbations", NeurIPS 2019 (sparse ℓ1 ascent steps).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mtcert.certify.cohen import predict as cohen_predict
from mtcert.certify.labels import ABSTAIN
from mtcert.certify.metrics import certified_accuracy
from mtcert.stats.binomial import clopper_pearson
from mtcert.stats.validation import check_option, check_positive_int, check_positive_real
from mtcert_torch.tasks.adapter import SegmentationAdapter

__all__ = [
    "CertificateAttack",
    "attack_certificate",
    "pgd_point_cloud",
    "pgd_segmentation",
    "project_l1",
    "project_l2",
    "segmentation_log_probs",
]

NORMS = ("l2", "l1")


# -- projections ----------------------------------------------------------------------------


def _per_item(delta: torch.Tensor) -> torch.Tensor:
    return delta.reshape(delta.shape[0], -1)


def project_l2(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Project every item ``delta[b]`` onto the ℓ2 ball of radius ``radius``.

    ``delta[b] * min(1, radius / ‖delta[b]‖₂)``: items inside the ball are
    returned unchanged.

    Examples
    --------
    >>> project_l2(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """
    radius = check_positive_real(radius, "radius")
    norms = _per_item(delta).norm(dim=1)
    factor = torch.clamp(radius / norms.clamp_min(torch.finfo(delta.dtype).tiny), max=1.0)
    return delta * factor.reshape(-1, *([1] * (delta.dim() - 1)))


def project_l1(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of every item ``delta[b]`` onto the ℓ1 ball of radius ``radius``.

    Soft thresholding ``sign(v) max(|v| - θ, 0)`` with the θ that puts the
    result on the sphere when ``v`` lies outside (Duchi et al. 2008, sort-based).

    Examples
    --------
    >>> project_l1(torch.tensor([[3.0, 1.0], [0.5, -0.25]]), 2.0)
    tensor([[ 2.0000,  0.0000],
            [ 0.5000, -0.2500]])
    """
    radius = check_positive_real(radius, "radius")
    v = _per_item(delta)
    a = v.abs()
    outside = a.sum(dim=1) > radius
    mu = a.sort(dim=1, descending=True).values
    cumsum = mu.cumsum(dim=1)
    j = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    # rho = the largest j with mu_j > (cumsum_j - radius) / j; the condition holds on a prefix
    cond = mu * j > cumsum - radius
    rho = (cond.sum(dim=1, keepdim=True) - 1).clamp_min(0)
    theta = (cumsum.gather(1, rho) - radius) / (rho + 1).to(v.dtype)
    shrunk = v.sign() * (a - theta.clamp_min(0)).clamp_min(0)
    out = torch.where(outside.unsqueeze(1), shrunk, v)
    return out.reshape(delta.shape)


_PROJECT = {"l2": project_l2, "l1": project_l1}


def _norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    return _per_item(delta).norm(p=2 if norm == "l2" else 1, dim=1)


def _random_start(like: torch.Tensor, radius: float, norm: str, generator, mask=None):
    """A point drawn uniformly from the ball of ``norm`` and ``radius`` for every item.

    Only the coordinates where ``mask`` (broadcastable to ``like[0]``) is
    non-zero move.  Drawn on the generator's device (if any) and moved to
    ``like``'s, so a CPU generator can seed an attack on the GPU.
    """
    shape, dt = like.shape, like.dtype
    dev = like.device if generator is None else generator.device
    if norm == "l2":
        direction = torch.randn(shape, generator=generator, device=dev, dtype=dt)
    else:  # i.i.d. Laplace normalised in ℓ1 is uniform on the ℓ1 sphere
        e = torch.empty((2, *shape), device=dev, dtype=dt).exponential_(generator=generator)
        direction = e[0] - e[1]
    if mask is None:
        mask = torch.ones(())
    mask = torch.broadcast_to(mask.to(dev, dt), shape[1:])
    direction = direction * mask
    direction = direction / _norm(direction, norm).reshape(-1, *([1] * (like.dim() - 1)))
    d = int(mask.count_nonzero())
    u = torch.rand((shape[0],), generator=generator, device=dev, dtype=dt)
    r = radius * u.pow(1.0 / d)  # radius law of a uniform point in a d-dimensional ball
    return (direction * r.reshape(-1, *([1] * (like.dim() - 1)))).to(like.device)


def _ascent_step(grad: torch.Tensor, norm: str, normalize: bool, sparsity: float):
    """Steepest-ascent direction of unit ``norm`` (or the raw gradient)."""
    if not normalize:
        return grad
    g = _per_item(grad)
    if norm == "l2":
        return grad / g.norm(dim=1).clamp_min(1e-30).reshape(-1, *([1] * (grad.dim() - 1)))
    # ℓ1: sign steps on the largest |gradient| coordinates, total ℓ1 length 1
    q = max(1, math.ceil(sparsity * g.shape[1]))
    idx = g.abs().topk(q, dim=1).indices
    out = torch.zeros_like(g)
    out.scatter_(1, idx, g.gather(1, idx).sign() / q)
    return out.reshape(grad.shape)


def _check_common(radius, steps, step_size, norm, sparsity):
    radius = check_positive_real(radius, "radius")
    steps = check_positive_int(steps, "steps")
    step_size = 10.0 * radius / steps if step_size is None else step_size
    step_size = check_positive_real(step_size, "step_size")
    norm = check_option(norm, "norm", NORMS)
    sparsity = check_positive_real(sparsity, "sparsity")
    if sparsity > 1:
        raise ValueError(f"sparsity must lie in (0, 1]; got {sparsity}")
    return radius, steps, step_size, norm, sparsity


def _pgd(loss_fn, x, *, radius, steps, step_size, norm, random_start, generator, normalize,
         sparsity, box, mask):  # fmt: skip
    """Shared PGD loop: maximise ``loss_fn(x')`` over ``x + δ``, ``δ`` in the ball (and box).

    ``mask`` (broadcastable to ``x``) marks the coordinates that may move.
    """
    project = _PROJECT[norm]
    x = x.detach()

    def feasible(delta):
        delta = project(delta * mask, radius)
        adv = x + delta
        return adv.clamp(*box) if box is not None else adv

    if random_start:
        adv = feasible(_random_start(x, radius, norm, generator, mask))
    else:
        adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(adv), adv)
        with torch.no_grad():
            step = _ascent_step(grad * mask, norm, normalize, sparsity)
            adv = feasible(adv + step_size * step - x)
    return adv.detach()


@contextlib.contextmanager
def _eval_mode(model):
    """Evaluate ``model`` in eval mode (batch-norm statistics fixed), then restore its mode."""
    was = isinstance(model, torch.nn.Module) and model.training
    if was:
        model.eval()
    try:
        yield
    finally:
        if was:
            model.train()


# -- images ---------------------------------------------------------------------------------


def segmentation_log_probs(model, x: torch.Tensor) -> torch.Tensor:
    """Differentiable per-pixel log-probabilities ``(B, C, H, W)`` of what is certified.

    For a :class:`SegmentationAdapter` these are the log of the averaged
    softmax over its scales and flips (its :meth:`~SegmentationAdapter.labels`
    are their argmax); for any other callable, ``log_softmax`` of the logits
    ``(B, C, H, W)`` it returns.
    """
    if isinstance(model, SegmentationAdapter):
        if not model.multi:
            return model.logits(x).log_softmax(1)
        model._check(x)
        views = [(s, f) for s in model.scales for f in ((False, True) if model.flip else (False,))]
        logp = torch.stack([model._logits_at(x, s, f).log_softmax(1) for s, f in views])
        return torch.logsumexp(logp, dim=0) - math.log(len(views))
    out = model(x)
    if out.dim() != 4:
        raise ValueError(f"model must return logits (B, C, H, W); got {tuple(out.shape)}")
    return out.float().log_softmax(1)


def pgd_segmentation(
    model,
    images: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    radius: float,
    steps: int = 100,
    step_size: float | None = None,
    norm: str = "l2",
    ignore_index: int = 255,
    random_start: bool = True,
    normalize: bool = True,
    sparsity: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted PGD on a segmentation model (paper App. C.1).

    Parameters
    ----------
    model : SegmentationAdapter or callable
        The base model in [0, 1] pixel space.  An adapter is attacked through
        its normalisation, scales and flips; a callable must return logits
        ``(B, C, H, W)``.  Run in eval mode.
    images : tensor (B, 3, H, W)
        Clean images in [0, 1].
    target : tensor (B, H, W), optional
        Labels whose mean cross-entropy is maximised (``ignore_index`` pixels
        left out); the model's own clean prediction when omitted.
    radius : float
        ``R``: the attack stays within ``‖x' - x‖ <= R`` per image.
    steps : int, default 100
        ``k``.
    step_size : float, optional
        ``s``; ``10 R / k`` by default (App. C.1).
    norm : {"l2", "l1"}
        ℓ2 for Gaussian smoothing, ℓ1 for Laplace smoothing.
    random_start : bool, default True
        Start at a point drawn uniformly from the ball (clamped to [0, 1]).
    normalize : bool, default True
        Step along the unit-norm steepest-ascent direction (ℓ2: ``∇/‖∇‖₂``;
        ℓ1: sign steps on the top ``sparsity`` fraction of coordinates);
        False takes the raw gradient, as App. C.1 prints it.
    sparsity : float in (0, 1], default 0.01
        ℓ1 only: fraction of coordinates moved per step.
    generator : torch.Generator, optional
        For the random start.

    Returns
    -------
    tensor (B, 3, H, W)
        Adversarial images in [0, 1] with ``‖x' - x‖ <= R`` per image.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.tasks.adapter import SegmentationAdapter
    >>> adapter = SegmentationAdapter(torch.nn.Conv2d(3, 2, 1), num_classes=2).eval()
    >>> x = torch.rand(2, 3, 8, 8)
    >>> adv = pgd_segmentation(adapter, x, radius=0.5, steps=5,
    ...                        generator=torch.Generator().manual_seed(0))
    >>> bool(((adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all())
    True
    """
    radius, steps, step_size, norm, sparsity = _check_common(
        radius, steps, step_size, norm, sparsity
    )
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}")
    images = images.detach().float()
    if float(images.min()) < 0 or float(images.max()) > 1:
        raise ValueError("images must lie in [0, 1] pixel space")
    with _eval_mode(model):
        if target is None:
            with torch.no_grad():
                target = segmentation_log_probs(model, images).argmax(1)
        target = torch.as_tensor(target, device=images.device).long()
        if target.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(
                f"target must have shape {(images.shape[0], *images.shape[-2:])}; "
                f"got {tuple(target.shape)}"
            )
        valid = (target != ignore_index).flatten(1).sum(1).clamp_min(1)
        safe = torch.where(target == ignore_index, torch.zeros_like(target), target)
        keep = target != ignore_index

        def loss(adv):
            nll = F.nll_loss(segmentation_log_probs(model, adv), safe, reduction="none")
            # per-image mean over its pixels, summed so images do not share a step size
            return ((nll * keep).flatten(1).sum(1) / valid).sum()

        return _pgd(
            loss, images, radius=radius, steps=steps, step_size=step_size, norm=norm,
            random_start=random_start, generator=generator, normalize=normalize,
            sparsity=sparsity, box=(0.0, 1.0), mask=torch.ones(()),
        )  # fmt: skip


# -- point clouds ---------------------------------------------------------------------------


def pgd_point_cloud(
    model: Callable,
    points: torch.Tensor,
    target: torch.Tensor,
    *,
    radius: float,
    steps: int = 100,
    step_size: float | None = None,
    norm: str = "l2",
    random_start: bool = True,
    normalize: bool = True,
    sparsity: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted PGD on the xyz coordinates of point clouds.

    The same attack as :func:`pgd_segmentation` on ``points[..., :3]`` of
    clouds ``(B, P, D)`` (the normalised coordinates that coordinate
    smoothing perturbs); further channels (normals) stay unchanged and there
    is no box constraint.

    Parameters
    ----------
    model : callable
        Maps clouds ``(B, P, D)`` to per-point logits ``(B, P, C)``.
    points : tensor (B, P, D), D >= 3
    target : tensor (B, P)
        Part labels whose mean cross-entropy is maximised.
    radius, steps, step_size, norm, random_start, normalize, sparsity, generator
        As in :func:`pgd_segmentation`; the norm is over the ``(P, 3)`` xyz array.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(6, 4)
    >>> pts = torch.randn(2, 32, 6)
    >>> adv = pgd_point_cloud(net, pts, torch.zeros(2, 32, dtype=torch.long), radius=0.1,
    ...                       steps=3, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(adv[..., 3:], pts[..., 3:]))
    True
    """
    radius, steps, step_size, norm, sparsity = _check_common(
        radius, steps, step_size, norm, sparsity
    )
    if points.dim() != 3 or points.shape[-1] < 3:
        raise ValueError(f"points must have shape (B, P, D) with D >= 3; got {tuple(points.shape)}")
    points = points.detach().float()
    target = torch.as_tensor(target, device=points.device).long()
    if target.shape != points.shape[:2]:
        raise ValueError(
            f"target must have shape {tuple(points.shape[:2])}; got {tuple(target.shape)}"
        )
    mask = torch.zeros(points.shape[-1], device=points.device)
    mask[:3] = 1.0

    def loss(adv):
        logits = model(adv)
        if logits.shape[:2] != points.shape[:2]:
            raise ValueError(f"model must return logits (B, P, C); got {tuple(logits.shape)}")
        nll = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
        return nll.mean(dim=1).sum()

    with _eval_mode(model):
        return _pgd(
            loss, points, radius=radius, steps=steps, step_size=step_size, norm=norm,
            random_start=random_start, generator=generator, normalize=normalize,
            sparsity=sparsity, box=None, mask=mask,
        )  # fmt: skip


# -- the empirical check of a certificate --------------------------------------------------


@dataclass(frozen=True, repr=False)
class CertificateAttack:
    """What an attack within the certified radius did to one image.

    Attributes
    ----------
    radius : float
        The certified radius the attack was confined to (ℓ2 or ℓ1, see ``norm``).
    norm : str
    perturbation : float
        The attack's actual ``‖x' - x‖`` (at most ``radius``).
    certified : int
        Certified pixels of the clean image.
    flipped : int
        Certified pixels whose smoothed label on the attacked image (majority of
        ``n_predict`` fresh noisy samples) differs from the certified label.
    flipped_significant : int
        Of those, pixels where Cohen et al.'s PREDICT at level ``alpha`` names
        another class (the change is not a sampling accident).
    flip_rate : float
        ``flipped / certified`` (NaN without certified pixels).
    flip_interval : tuple of float
        Two-sided Clopper–Pearson interval for it at level ``interval_alpha``
        (:func:`mtcert.clopper_pearson`, treating pixels as trials).
    base_acc_clean, base_acc_attacked : float
        The base model's pixel accuracy on the clean and the attacked image.
    adversarial : tensor (3, H, W)
        The attacked image.
    base_attacked : ndarray (H, W)
        The base model's prediction on it.
    certified_labels : ndarray (H, W)
        The clean image's certified labels (``ABSTAIN`` where abstained).
    """

    radius: float
    norm: str
    perturbation: float
    certified: int
    flipped: int
    flipped_significant: int
    flip_rate: float
    flip_interval: tuple[float, float]
    base_acc_clean: float
    base_acc_attacked: float
    adversarial: torch.Tensor
    base_attacked: np.ndarray
    certified_labels: np.ndarray

    @property
    def base_acc_drop(self) -> float:
        return self.base_acc_clean - self.base_acc_attacked

    def __repr__(self) -> str:
        lo, hi = self.flip_interval
        return (
            f"CertificateAttack({self.norm} R={self.radius:.4f}, certified={self.certified}, "
            f"flipped={self.flipped} (rate {self.flip_rate:.4g}, CP [{lo:.4g}, {hi:.4g}]), "
            f"base acc {self.base_acc_clean:.4f} -> {self.base_acc_attacked:.4f})"
        )


def attack_certificate(
    certifier,
    image,
    target,
    settings,
    *,
    certificate=None,
    n_predict: int | None = None,
    steps: int = 100,
    step_size: float | None = None,
    radius_factor: float = 1.0,
    interval_alpha: float = 0.05,
    ignore_index: int = 255,
    generator: torch.Generator | None = None,
) -> CertificateAttack:
    """Certify ``image``, attack it within the radius, and count certified pixels that flip.

    1. SEGCERTIFY on the clean image gives certified labels and the radius ``R``
       (or pass the image's ``certificate`` if it is already certified).
    2. :func:`pgd_segmentation` attacks the base model (through the adapter)
       within ``radius_factor * R`` in the norm the noise certifies, against
       ``target``.
    3. ``n_predict`` fresh noisy copies of the attacked image (``n`` by
       default) estimate the smoothed label per pixel; a certified pixel
       *flipped* when the majority label differs from its certified label.

    With ``radius_factor <= 1`` the certificate promises (with probability
    at least ``1 - alpha``) that the smoothed label of every certified pixel
    is unchanged, so flips can only come from the finite-sample estimate of
    the smoothed label at step 3.  A ``radius_factor`` well above 1 is the
    positive control: there flips are allowed and do appear.

    Parameters
    ----------
    certifier : mtcert_torch.Certifier
        Over an :class:`~mtcert_torch.ImageTask` whose model is a
        :class:`SegmentationAdapter` (the attack needs gradients).
    image : tensor (3, H, W) in [0, 1]
    target : array_like (H, W)
        Ground truth (``ignore_index`` where unlabelled).
    settings : mtcert_torch.Settings
        SEGCERTIFY's σ, τ, n0, n, α, method and k.
    certificate : mtcert_torch.Certificate, optional
        The clean image's certificate under ``settings``; certified here when omitted.
    n_predict : int, optional
        Fresh noisy copies of the attacked image (``n`` by default).
    steps, step_size
        Of the attack (App. C.1: 100 steps, ``10 R / k``).
    radius_factor : float, default 1
        Attack within this multiple of the certified radius.
    interval_alpha : float, default 0.05
        Level of the Clopper–Pearson interval of the flip rate.
    generator : torch.Generator, optional
        For the attack's random start.

    Returns
    -------
    CertificateAttack
    """
    from mtcert_torch.tasks.image import as_image

    if not isinstance(certifier.model, SegmentationAdapter):
        raise ValueError("attack_certificate needs a Certifier built on a SegmentationAdapter")
    radius_factor = check_positive_real(radius_factor, "radius_factor")
    n_predict = settings.n if n_predict is None else check_positive_int(n_predict, "n_predict")
    img = as_image(image, certifier.device)
    target_np = np.asarray(target)
    if target_np.shape != tuple(img.shape[-2:]):
        raise ValueError(f"target must have shape {tuple(img.shape[-2:])}; got {target_np.shape}")
    cert = certificate if certificate is not None else certifier.certify(img, **settings.kwargs())
    if cert.labels.shape != target_np.shape:
        raise ValueError(f"certificate has shape {cert.labels.shape}, the image {target_np.shape}")
    norm = "l2" if certifier.task.noise == "gaussian" else "l1"
    radius = cert.radius * radius_factor
    tgt = torch.as_tensor(target_np, device=img.device).long().unsqueeze(0)
    adv = pgd_segmentation(
        certifier.model, img.unsqueeze(0), tgt, radius=radius, steps=steps,
        step_size=step_size, norm=norm, ignore_index=ignore_index, generator=generator,
    )[0]  # fmt: skip
    counts = certifier.counts(adv, sigma=settings.sigma, num=n_predict).cpu().numpy()
    counts = np.moveaxis(counts, 0, -1)
    certified = cert.labels != ABSTAIN
    smoothed = counts.argmax(-1)
    significant = cohen_predict(counts, alpha=settings.alpha).label
    flipped = int((certified & (smoothed != cert.labels)).sum())
    flipped_sig = int((certified & (significant != ABSTAIN) & (significant != cert.labels)).sum())
    n_cert = int(certified.sum())
    if n_cert:
        lo, hi = clopper_pearson(flipped, n_cert, alpha=interval_alpha)
        interval = (float(lo), float(hi))
    else:
        interval = (float("nan"), float("nan"))
    base_clean = certifier.predict(img)
    base_adv = certifier.predict(adv)
    return CertificateAttack(
        radius=float(radius),
        norm=norm,
        perturbation=float(_norm((adv - img).unsqueeze(0), norm)[0]),
        certified=n_cert,
        flipped=flipped,
        flipped_significant=flipped_sig,
        flip_rate=flipped / n_cert if n_cert else float("nan"),
        flip_interval=interval,
        base_acc_clean=certified_accuracy(base_clean, target_np, ignore_index=ignore_index),
        base_acc_attacked=certified_accuracy(base_adv, target_np, ignore_index=ignore_index),
        adversarial=adv.cpu(),
        base_attacked=base_adv,
        certified_labels=cert.labels,
    )
