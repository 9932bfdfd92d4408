"""Smoothing noise in input space, drawn from an explicit :class:`torch.Generator`.

Every call to :meth:`NoiseModel.sample` draws a fresh tensor of the requested
shape, so each of the ``B`` copies in a batch gets its own independent noise.
(The paper authors' released image sampler reused one draw for a whole batch,
which silently turns ``n`` samples into about ``n / batch_size`` independent
ones; ``tests/torch/test_sampler.py`` checks that this cannot happen here.)

A base module: imports torch and the core's validation only.

References
----------
.. [1] Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via
       Randomized Smoothing", ICML 2019 (Gaussian noise, ℓ2 radius σΦ⁻¹(p)).
.. [2] Teng, Lee & Yuan, "ℓ1 Adversarial Robustness Certificates: a Randomized
       Smoothing Approach", 2020 (Laplace noise, ℓ1 radius −λ ln(2(1 − p))).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtcert.stats.validation import check_option, check_positive_real

NOISES = ("gaussian", "laplace")


@dataclass(frozen=True)
class NoiseModel:
    """Additive i.i.d. noise of one family and scale.

    Parameters
    ----------
    kind : {"gaussian", "laplace"}
        ``"gaussian"``: N(0, σ²) per coordinate, certifies ℓ2 balls.
        ``"laplace"``: Laplace(0, λ) per coordinate, certifies ℓ1 balls.
    scale : float
        σ for Gaussian, λ for Laplace noise (> 0).

    Examples
    --------
    >>> import torch
    >>> noise = NoiseModel("gaussian", 0.25)
    >>> g = torch.Generator().manual_seed(0)
    >>> noise.sample((2, 3), generator=g).shape
    torch.Size([2, 3])
    >>> noise.norm
    'l2'
    """

    kind: str
    scale: float

    def __post_init__(self):
        check_option(self.kind, "noise", NOISES)
        object.__setattr__(self, "scale", check_positive_real(self.scale, "sigma"))

    @property
    def norm(self) -> str:
        """The ℓp norm whose balls the certificate covers (``"l2"`` or ``"l1"``)."""
        return "l2" if self.kind == "gaussian" else "l1"

    def sample(
        self,
        shape,
        *,
        generator: torch.Generator,
        device=None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw a fresh noise tensor of ``shape``; every entry is an independent draw.

        ``device`` defaults to the generator's device (a CUDA generator draws on
        the GPU without a host round trip).
        """
        device = generator.device if device is None else torch.device(device)
        if self.kind == "gaussian":
            out = torch.randn(shape, generator=generator, device=device, dtype=dtype)
            return out.mul_(self.scale)
        # Laplace(0, λ) = λ (E1 − E2) with E1, E2 ~ Exp(1) independent: no log(0)
        # at the ends of the uniform range, unlike the inverse-CDF construction.
        e = torch.empty((2, *shape), device=device, dtype=dtype).exponential_(generator=generator)
        return (e[0] - e[1]).mul_(self.scale)


def as_noise(noise, scale) -> NoiseModel:
    """Return ``noise`` if it is a :class:`NoiseModel`, else ``NoiseModel(noise, scale)``."""
    if isinstance(noise, NoiseModel):
        return noise
    return NoiseModel(noise, scale)
