"""Training helpers for smoothing base models: Gaussian noise augmentation and
per-pixel consistency regularisation (paper App. B.3, after Jeong & Shin 2020).

Both work with any model wrapped in a :class:`~mtcert_torch.tasks.adapter.SegmentationAdapter`
(so the noise is added in [0, 1] pixel space, before normalisation, exactly as
at certification time) and any optimiser.

Imports torch and the core's validation only (models come in as arguments).

Example
-------
>>> import torch
>>> from mtcert_torch.tasks.adapter import SegmentationAdapter
>>> from mtcert_torch.data.synthetic import TinySegNet, make_shapes
>>> images, labels = make_shapes(8, 16, seed=0)
>>> adapter = SegmentationAdapter(TinySegNet(3, 8), num_classes=3)
>>> opt = torch.optim.Adam(adapter.parameters(), lr=1e-2)
>>> g = torch.Generator().manual_seed(0)
>>> loss = noisy_training_step(adapter, opt, images, labels, sigma=0.25, generator=g)
>>> loss_c = noisy_training_step(adapter, opt, images, labels, sigma=0.25, m=2,
...                              lam=1.0, eta=0.5, generator=g)
>>> loss > 0 and loss_c > 0
True

References
----------
.. [1] Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via
       Randomized Smoothing", ICML 2019 (training with Gaussian augmentation).
.. [2] Jeong & Shin, "Consistency Regularization for Certified Robustness of
       Smoothed Classifiers", NeurIPS 2020, Eq. (8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mtcert.stats.validation import check_positive_int, check_positive_real


def gaussian_augment(
    images: torch.Tensor, sigma: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``images + N(0, σ²)`` per pixel, in pixel space and without clipping."""
    sigma = check_positive_real(sigma, "sigma")
    eps = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return images + sigma * eps


def consistency_loss(
    logits: list[torch.Tensor],
    target: torch.Tensor,
    *,
    lam: float = 1.0,
    eta: float = 0.5,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Jeong & Shin's consistency-regularised loss, per pixel, averaged (App. B.3).

    For ``m`` noisy copies with per-pixel softmax ``p_1 … p_m`` and their mean
    ``p̂``, at every non-ignored pixel:

    ``(1/m) Σ_i CE(p_i, y) + λ (1/m) Σ_i KL(p̂ ‖ p_i) + η H(p̂)``,

    averaged over the non-ignored pixels of the batch.  The paper used
    ``m = 2``, ``λ = 1``, ``η = 0.5``, ``σ = 0.25``.

    Parameters
    ----------
    logits : list of tensors (B, C, H, W)
        One per noisy copy of the same batch.
    target : tensor (B, H, W)
        Labels, ``ignore_index`` where not supervised.
    """
    if not logits:
        raise ValueError("logits must hold at least one tensor")
    valid = target != ignore_index
    denom = valid.sum().clamp_min(1)
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    log_p = [lg.float().log_softmax(1) for lg in logits]
    ce = sum(F.nll_loss(lp, safe_target, reduction="none") for lp in log_p) / len(log_p)
    loss = ce
    if len(log_p) > 1 and (lam or eta):
        p_mean = torch.stack([lp.exp() for lp in log_p]).mean(0)
        log_mean = p_mean.clamp_min(1e-12).log()
        kl = sum((p_mean * (log_mean - lp)).sum(1) for lp in log_p) / len(log_p)
        entropy = -(p_mean * log_mean).sum(1)
        loss = loss + lam * kl + eta * entropy
    return (loss * valid).sum() / denom


def noisy_training_step(
    adapter,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    target: torch.Tensor,
    *,
    sigma: float,
    m: int = 1,
    lam: float = 0.0,
    eta: float = 0.0,
    ignore_index: int = 255,
    generator: torch.Generator | None = None,
) -> float:
    """One optimiser step on ``m`` independently noised copies of a batch.

    ``m = 1, lam = eta = 0`` is plain Gaussian data augmentation (Cohen et al.);
    ``m = 2, lam = 1, eta = 0.5`` is the consistency training of App. B.3.
    Returns the loss value.
    """
    m = check_positive_int(m, "m")
    adapter.train()
    optimizer.zero_grad(set_to_none=True)
    logits = [
        adapter.logits(gaussian_augment(images, sigma, generator=generator)) for _ in range(m)
    ]
    loss = consistency_loss(logits, target, lam=lam, eta=eta, ignore_index=ignore_index)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train_with_noise(
    adapter,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    sigma: float,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-2,
    seed: int = 0,
    **step_kwargs,
) -> list[float]:
    """Train ``adapter`` with Adam on random mini-batches of in-memory tensors; returns losses."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    opt = torch.optim.Adam(adapter.parameters(), lr=lr)
    losses = []
    for _ in range(check_positive_int(steps, "steps")):
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=g, device=images.device)
        losses.append(
            noisy_training_step(
                adapter, opt, images[idx], labels[idx], sigma=sigma, generator=g, **step_kwargs
            )
        )
    adapter.eval()
    return losses
