"""Certify point-cloud part segmentation with SEGCERTIFY (paper §6.3 and App. B.5).

:class:`PointCloudTask` is the point-cloud task of the one
:class:`~mtcert_torch.Certifier` (see :mod:`mtcert_torch.task`).  It names no
network and no dataset: the model is any callable that maps clouds ``(B, N, C)``
(and, optionally, an object category) to per-point labels ``(B, N)``.  Two
smoothing families:

* **Coordinate noise** (``smoothing="gaussian"`` or ``"laplace"``).  The clean
  cloud is centred and scaled to the unit sphere (:func:`normalize_point_cloud`),
  then i.i.d. noise is added to the xyz coordinates only; normals are passed
  through unperturbed (paper §6.3).  The smoothed quantity is the ``(N, 3)``
  coordinate array of the *normalised* cloud, so the certificate covers every
  ``(N, 3)`` perturbation of ℓ2 (Gaussian) or ℓ1 (Laplace) norm up to the
  radius in normalised coordinates.

* **Rotations** (``smoothing="rotation"``, App. B.5, after Fischer et al. 2020).
  The smoothed quantity is the rotation parameter: angles ``ε ~ N(0, σ² I)``
  rotate the normalised points *and* their normals, ``x ↦ R_ε x``.  With
  ``axis=None`` ``ε`` holds three Euler angles (``R = R_z(γ) R_y(β) R_x(α)``);
  with a fixed ``axis`` it is one angle about that axis.  The certificate
  holds in angle space with radius ``σ Φ⁻¹(τ)``.  Rotations about one axis
  compose additively, ``R(θ) R(ε) = R(θ + ε)``, so for a single axis the
  smoothed classifier at the rotated input ``R(θ) x`` is exactly the smoothed
  classifier at ``x`` with the angle distribution shifted by ``θ``: the
  labels are certified for every rotation of the input by ``|θ| ≤ R``.
  Three-axis Euler rotations do **not** compose additively; there the
  guarantee is about shifts of the Euler parameters (``x ↦ R_{δ+ε} x`` with
  ``‖δ‖₂ ≤ R``) and does not transfer exactly to inputs that were rotated
  before smoothing.

Either way the two sample stages (``n0`` to guess, ``n`` to count hits) use
disjoint stretches of one generator stream and every noisy copy gets its own
draw.  A model with randomness of its own (e.g. farthest-point sampling) may
expose ``manual_seed(seed)``; the task reseeds it from a seed derived from the
certifier's, so noise and model randomness never share a stream.

Imports the task interface, the sampler's CPU batch limit and the core's radius table
and validation.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §6.3 and App. B.5.
.. [2] M. Fischer, M. Baader, M. Vechev, "Certified Defense to Image
   Transformations via Randomized Smoothing", NeurIPS 2020.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from mtcert.stats.radius import certified_radius
from mtcert.stats.validation import check_option, check_positive_int
from mtcert_torch.sampler import CPU_MAX_BATCH
from mtcert_torch.task import Smoothed, Task

__all__ = [
    "AXES",
    "SMOOTHINGS",
    "PointCloudTask",
    "axis_rotation_matrix",
    "euler_rotation_matrix",
    "normalize_point_cloud",
    "rotate_point_cloud",
]

#: The smoothings of :class:`PointCloudTask` (keys of :data:`mtcert.stats.radius.NOISE_RADII`).
SMOOTHINGS = ("gaussian", "laplace", "rotation")
#: Named rotation axes (unit vectors).
AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


# -- geometry -------------------------------------------------------------------------------
def normalize_point_cloud(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Centre the xyz columns at their mean and scale the farthest point to distance 1.

    Normals (columns 3:6), if present, are unchanged: translation and
    isotropic scaling do not change surface directions.

    Returns
    -------
    normalized : Tensor ``(N, C)``
    center : Tensor ``(3,)``
    scale : float
        Distance of the farthest centred point; ``normalized[:, :3] = (xyz - center) / scale``.

    Examples
    --------
    >>> import torch
    >>> p, c, s = normalize_point_cloud(torch.tensor([[0.0, 0, 0], [2, 0, 0]]))
    >>> p.tolist(), c.tolist(), s
    ([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], [1.0, 0.0, 0.0], 1.0)
    """
    center = points[:, :3].mean(0)
    xyz = points[:, :3] - center
    scale = float(xyz.norm(dim=1).max())
    if not scale > 0:
        raise ValueError("points: all points coincide; cannot scale the cloud to the unit sphere")
    out = points.clone()
    out[:, :3] = xyz / scale
    return out, center, scale


def euler_rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Matrices ``R_z(γ) R_y(β) R_x(α)`` ``(..., 3, 3)`` of angles ``(..., 3) = (α, β, γ)``.

    Extrinsic rotations about x, then y, then z (radians), as
    ``scipy.spatial.transform.Rotation.from_euler("xyz", angles)``.

    >>> import math, torch
    >>> R = euler_rotation_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    >>> (R @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=6).abs().tolist()
    [0.0, 1.0, 0.0]
    """
    a, b, g = angles.unbind(-1)
    ca, sa, cb, sb, cg, sg = a.cos(), a.sin(), b.cos(), b.sin(), g.cos(), g.sin()
    rows = (
        (cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa),
        (sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa),
        (-sb, cb * sa, cb * ca),
    )
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def axis_rotation_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` ``(...)`` about the unit vector ``axis`` ``(3,)``: ``(..., 3, 3)``.

    Rodrigues' formula ``I + sin θ K + (1 − cos θ) K²``, ``K`` the cross-product
    matrix of ``axis``; angles about one axis add: ``R(θ) R(φ) = R(θ + φ)``.

    >>> import math, torch
    >>> R = axis_rotation_matrix(torch.tensor([0.0, 0.0, 1.0]), torch.tensor(math.pi / 2))
    >>> (R @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=6).tolist()
    [0.0, 1.0, 0.0]
    """
    x, y, z = axis.to(device=angle.device, dtype=angle.dtype).unbind()
    zero = torch.zeros((), dtype=angle.dtype, device=angle.device)
    k = torch.stack(
        [torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])]
    )
    s, c = angle.sin()[..., None, None], angle.cos()[..., None, None]
    eye = torch.eye(3, dtype=angle.dtype, device=angle.device)
    return eye + s * k + (1 - c) * (k @ k)


def rotate_point_cloud(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Rotate ``points`` ``(N, C)`` by each of ``matrices`` ``(B, 3, 3)``: ``(B, N, C)``.

    The xyz columns and, when ``C == 6``, the normal columns are both
    multiplied by ``R`` (App. B.5: "apply R_ε to the point coordinates as well
    as the normal vector").
    """
    xyz = torch.einsum("bij,nj->bni", matrices, points[:, :3])
    if points.shape[1] == 3:
        return xyz
    normals = torch.einsum("bij,nj->bni", matrices, points[:, 3:6])
    return torch.cat([xyz, normals], -1)


def _as_axis(axis) -> torch.Tensor | None:
    if axis is None:
        return None
    if isinstance(axis, str):
        return torch.tensor(AXES[check_option(axis, "axis", tuple(AXES))], dtype=torch.float64)
    v = torch.as_tensor(axis, dtype=torch.float64).reshape(-1)
    norm = float(v.norm()) if v.numel() == 3 else math.nan
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"axis must be 'x', 'y', 'z' or a non-zero 3-vector; got {axis!r}")
    return v / norm


# -- the task --------------------------------------------------------------------------------
class PointCloudTask(Task):
    """Point-cloud part segmentation under coordinate noise or rotations.

    Inputs are ``points`` ``(N, 3)`` / ``(N, 6)`` (xyz, then normals) or a pair
    ``(points, category)`` for models conditioned on an object category.

    Parameters
    ----------
    model : callable
        Maps clouds ``(B, N, C)`` — and the category, when the input has one —
        to integer part labels ``(B, N)``.  Optional duck-typed extras:
        ``num_classes``, ``in_channels`` (3: normals are dropped; 6: required),
        ``device``, ``category_index(category) -> int`` (validates and maps
        category names), ``manual_seed(seed)`` (the model's own randomness) and
        ``batch_size_hint(num_points, memory_budget) -> int`` (CPU batches).
    num_classes : int, optional
        Taken from ``model.num_classes`` when not given.
    smoothing : {"gaussian", "laplace", "rotation"}
        ``"gaussian"``/``"laplace"``: noise on the normalised xyz coordinates
        (normals untouched), ℓ2/ℓ1 certificate.  ``"rotation"``: Gaussian
        angles, certificate in radians.
    axis : {None, "x", "y", "z"} or 3-vector
        Rotation smoothing only: ``None`` draws three Euler angles; an axis
        draws one angle about it (the mode whose certificate transfers exactly
        to rotated inputs).
    normalize : bool, default True
        Centre the clean cloud and scale it to the unit sphere before
        smoothing (paper §6.3).  The certificate is about the normalised cloud.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch import Certifier
    >>> task = PointCloudTask(lambda p: (p[..., 0] > 0).long(), num_classes=2)
    >>> cert = Certifier(task, batch_size=10).certify(torch.randn(64, 3), sigma=0.25,
    ...     tau=0.75, n0=10, n=20, alpha=0.01)
    >>> cert.labels.shape, round(cert.radius, 4), sorted(cert.info)
    ((64,), 0.1686, ['axis', 'category', 'center', 'points', 'scale'])
    """

    def __init__(
        self,
        model: Callable,
        *,
        num_classes: int | None = None,
        smoothing: str = "gaussian",
        axis=None,
        normalize: bool = True,
    ):
        if not callable(model):
            raise ValueError(f"model must be callable; got {type(model).__name__}")
        self.model = model
        if num_classes is None:
            num_classes = getattr(model, "num_classes", None)
        if num_classes is None:
            raise ValueError("num_classes is required when the model has no num_classes")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.smoothing = check_option(smoothing, "smoothing", SMOOTHINGS)
        if axis is not None and self.smoothing != "rotation":
            raise ValueError("axis is only used with smoothing='rotation'")
        self.axis = _as_axis(axis)
        self.noise = "gaussian" if self.smoothing == "rotation" else self.smoothing
        self.normalize = bool(normalize)

    @property
    def device(self) -> torch.device | None:
        return getattr(self.model, "device", None)

    @property
    def axis_tuple(self) -> tuple | None:
        """The unit rotation axis in single-axis mode, None otherwise."""
        return None if self.axis is None else tuple(float(a) for a in self.axis)

    @property
    def label(self) -> str:
        if self.axis is None:
            return self.smoothing
        return f"{self.smoothing} axis={','.join(f'{a:g}' for a in self.axis_tuple)}"

    def radius(self, p: float, sigma: float) -> float:
        """Radius certified at probability ``p`` by this smoothing of scale ``sigma``
        (ℓ2, ℓ1 in normalised coordinates; radians of rotation parameter)."""
        return float(certified_radius(p, sigma, self.smoothing))

    def manual_seed(self, seed: int) -> None:
        """Reseed the model's own randomness (e.g. farthest-point sampling) from a seed
        derived from ``seed``, so that noise and model randomness use different streams."""
        reseed = getattr(self.model, "manual_seed", None)
        if reseed is not None:
            reseed(int(np.random.SeedSequence([int(seed), 1]).generate_state(1, np.uint64)[0]))

    def batch_size_hint(self, smoothed: Smoothed, memory_budget: int | None) -> int | None:
        hint = getattr(self.model, "batch_size_hint", None)
        if hint is None:
            return CPU_MAX_BATCH
        return hint(smoothed.info["points"], memory_budget)

    def record(self, info: dict) -> dict:
        return {
            "points": info["points"],
            "smoothing": self.smoothing,
            "axis": None if self.axis is None else list(self.axis_tuple),
        }

    # -- inputs ------------------------------------------------------------------------------
    def _points(self, points, device) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        p = torch.as_tensor(points)
        if p.dim() != 2 or p.shape[1] not in (3, 6) or p.shape[0] < 1:
            raise ValueError(f"points must have shape (N, 3) or (N, 6); got {tuple(p.shape)}")
        if p.dtype.is_complex or p.dtype == torch.bool:
            raise ValueError(f"points must be real numbers; got dtype {p.dtype}")
        p = p.to(device=device, dtype=torch.float32)
        if not bool(torch.isfinite(p).all()):
            raise ValueError("points must be finite")
        want = getattr(self.model, "in_channels", None)
        if want == 3:
            p = p[:, :3]
        elif want == 6 and p.shape[1] != 6:
            raise ValueError("the model uses normals: points must have shape (N, 6)")
        if not self.normalize:
            return p.contiguous(), None, 1.0
        return normalize_point_cloud(p)

    def prepare(self, x, device: torch.device) -> Smoothed:
        """``x``: points ``(N, C)`` or ``(points, category)``."""
        points, category = x if isinstance(x, tuple) else (x, None)
        p, center, scale = self._points(points, device)
        to_index = getattr(self.model, "category_index", None)
        if category is not None and to_index is not None:
            category = to_index(category)
        model = self.model

        def run(clouds):
            return model(clouds) if category is None else model(clouds, category)

        info = {
            "points": int(p.shape[0]),
            "category": category,
            "axis": self.axis_tuple,
            "center": None if center is None else center.cpu().numpy(),
            "scale": scale,
        }
        if self.smoothing == "rotation":
            if self.axis is None:
                x0 = torch.zeros(3, device=device)

                def matrices(angles):
                    return euler_rotation_matrix(angles)

            else:
                x0 = torch.zeros(1, device=device)
                axis = self.axis.to(device, torch.float32)

                def matrices(angles):
                    return axis_rotation_matrix(axis, angles[:, 0])

            def classify(angles):
                return run(rotate_point_cloud(p, matrices(angles)))

        else:
            x0 = p[:, :3].contiguous()
            extra = p[:, 3:]

            def classify(xyz):
                if extra.shape[1]:
                    # Normals are not smoothed: the same clean normals go with every noisy copy.
                    xyz = torch.cat([xyz, extra.expand(xyz.shape[0], -1, -1)], -1)
                return run(xyz)

        return Smoothed(
            center=x0,
            classify=classify,
            clean=lambda: run(p.unsqueeze(0))[0],
            size_key=(tuple(p.shape), self.smoothing),
            info=info,
        )
