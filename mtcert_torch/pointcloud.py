"""Certify point-cloud part segmentation with SEGCERTIFY (paper §6.3 and App. B.5).

Two smoothing families, both run through the streaming sampler of
:mod:`mtcert_torch.sampler` and certified by :func:`mtcert.certify.segcertify_hits`:

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
disjoint stretches of one generator stream, every noisy copy gets its own
draw, and each base-model call averages ``votes`` PointNet++ passes with fresh
farthest-point-sampling start points.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §6.3 and App. B.5.
.. [2] M. Fischer, M. Baader, M. Vechev, "Certified Defense to Image
   Transformations via Randomized Smoothing", NeurIPS 2020.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mtcert._validation import (
    check_alpha,
    check_option,
    check_positive_int,
    check_tau,
)
from mtcert.certify import segcertify_hits
from mtcert.radius import rotation_radius

from .models.pointnet2 import PointNet2PartSegMsg, predict_parts
from .noise import NoiseModel
from .sampler import CPU_MAX_BATCH, CPU_MEMORY_BUDGET, SamplerStats, StreamingSampler
from .shapenet import category_index

__all__ = [
    "SMOOTHINGS",
    "PointCloudAdapter",
    "PointCloudCertificate",
    "PointCloudCertifier",
    "axis_rotation_matrix",
    "euler_rotation_matrix",
    "normalize_point_cloud",
    "rotate_point_cloud",
]

SMOOTHINGS = ("gaussian", "laplace", "rotation")
_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


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
        return torch.tensor(_AXES[check_option(axis, "axis", tuple(_AXES))], dtype=torch.float64)
    v = torch.as_tensor(axis, dtype=torch.float64).reshape(-1)
    norm = float(v.norm()) if v.numel() == 3 else math.nan
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"axis must be 'x', 'y', 'z' or a non-zero 3-vector; got {axis!r}")
    return v / norm


# -- the base classifier ----------------------------------------------------------------------
class PointCloudAdapter(torch.nn.Module):
    """A PointNet++ part segmenter as a classifier of batches of clouds.

    Parameters
    ----------
    model : PointNet2PartSegMsg
    votes : int, default 3
        Forward passes averaged per call (paper §6.3).
    part_ranges : sequence of (start, stop), optional
        Part range of each category (ShapeNet-part by default).
    seed : int, default 0
        Seed of the farthest-point-sampling generator (on the model's device).

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.models import pointnet2_part_seg_msg
    >>> adapter = PointCloudAdapter(pointnet2_part_seg_msg(npoints=(16, 4)), votes=2)
    >>> adapter.labels(torch.randn(3, 64, 6), 4).shape
    torch.Size([3, 64])
    """

    def __init__(
        self,
        model: PointNet2PartSegMsg,
        *,
        votes: int = 3,
        part_ranges: Sequence[tuple[int, int]] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(model, PointNet2PartSegMsg):
            raise ValueError(f"model must be a PointNet2PartSegMsg; got {type(model).__name__}")
        self.model = model.eval()
        self.votes = check_positive_int(votes, "votes")
        self.part_ranges = part_ranges
        self.seed = int(seed)
        self._generator: torch.Generator | None = None

    @property
    def num_classes(self) -> int:
        return self.model.num_parts

    @property
    def in_channels(self) -> int:
        return self.model.in_channels

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def manual_seed(self, seed: int) -> PointCloudAdapter:
        """Restart the farthest-point-sampling stream from ``seed``."""
        self.seed = int(seed)
        self._generator = None
        return self

    def generator(self, device) -> torch.Generator:
        device = torch.device(device)
        g = self._generator
        if g is None or g.device.type != device.type:
            g = self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return g

    def labels(self, points: torch.Tensor, category) -> torch.Tensor:
        """Part labels ``(B, N)`` of clouds ``(B, N, C_in)`` of one or ``B`` categories."""
        return predict_parts(
            self.model,
            points,
            category,
            votes=self.votes,
            generator=self.generator(points.device),
            part_ranges=self.part_ranges,
        )

    forward = labels


# -- certificate ------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class PointCloudCertificate:
    """SEGCERTIFY result for one point cloud.

    Attributes
    ----------
    certificate : mtcert.certify.SegmentationCertificate
    labels : ndarray ``(N,)``
        Certified part label per point, ``-1`` (:data:`mtcert.ABSTAIN`) where
        abstained.  With probability at least ``1 − alpha`` every non-abstained
        label is that of the smoothed classifier for every perturbation within
        ``radius``: of the normalised xyz coordinates (ℓ2 for ``"gaussian"``,
        ℓ1 for ``"laplace"``) or of the rotation angle(s) in radians
        (``"rotation"``; see the module notes for the three-axis caveat).
    guess, hits : ndarray ``(N,)``
    smoothing : str
    sigma : float
    axis : tuple of float or None
        Unit rotation axis in single-axis mode, ``None`` otherwise.
    category : int
    center, scale :
        The normalisation applied to the clean cloud (``None``/``1.0`` when off).
    """

    certificate: object
    guess: np.ndarray
    hits: np.ndarray
    smoothing: str
    sigma: float
    axis: tuple | None
    category: object
    n0: int
    n: int
    radius: float
    center: np.ndarray | None
    scale: float
    seconds_sampling: float
    seconds_statistics: float

    @property
    def labels(self) -> np.ndarray:
        return self.certificate.labels

    @property
    def abstain_rate(self) -> float:
        return float(self.certificate.abstain_rate)

    def accuracy(self, target) -> float:
        """Certified accuracy: the fraction of points certified *and* equal to ``target``."""
        target = np.asarray(target)
        if target.shape != self.labels.shape:
            raise ValueError(f"target must have shape {self.labels.shape}; got {target.shape}")
        return float(np.mean(self.labels == target))

    def __repr__(self) -> str:
        c = self.certificate
        ax = "" if self.axis is None else f", axis={tuple(round(a, 4) for a in self.axis)}"
        return (
            f"PointCloudCertificate(points={self.labels.shape[0]}, smoothing={self.smoothing}"
            f"({self.sigma:g}){ax}, tau={c.tau:g}, alpha={c.alpha:g}, method={c.method!r}, "
            f"n0={self.n0}, n={self.n}, radius={self.radius:.4f}, "
            f"abstain_rate={self.abstain_rate:.4f}, "
            f"seconds={self.seconds_sampling + self.seconds_statistics:.2f})"
        )


# -- certifier --------------------------------------------------------------------------------
def pointnet2_batch_size(
    model: PointNet2PartSegMsg, num_points: int, memory_budget: int = CPU_MEMORY_BUDGET
) -> int:
    """Clouds per forward pass that keep PointNet++'s largest activations within a budget.

    CPU heuristic: per cloud, three float32 copies of the widest grouped
    tensor of ``sa1``/``sa2`` (centres × neighbours × channels) plus the
    centre-to-point distance and index matrices.  Clamped to ``[1, CPU_MAX_BATCH]``
    (:data:`mtcert_torch.sampler.CPU_MAX_BATCH`).
    """
    per = 0
    for sa in (model.sa1, model.sa2):
        s = min(sa.npoint, num_points)
        for k, convs in zip(sa.nsamples, sa.conv_blocks, strict=True):
            width = max(c.out_channels for c in convs)
            per = max(per, 3 * 4 * s * min(k, num_points) * width + 12 * s * num_points)
        num_points = s
    return int(max(1, min(CPU_MAX_BATCH, memory_budget // max(per, 1))))


class PointCloudCertifier:
    """SEGCERTIFY for point-cloud part segmentation under coordinate noise or rotations.

    Parameters
    ----------
    model : PointCloudAdapter or callable
        The base classifier.  A plain callable must map clouds ``(B, N, C)``
        and a category index to part labels ``(B, N)``; ``num_classes`` is then
        required.
    num_classes : int, optional
        Taken from the adapter when not given.
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
    batch_size : int, optional
        Noisy copies per forward pass.  Automatic when omitted: measured on
        CUDA (halved after an out-of-memory error), a memory heuristic for
        PointNet++ on CPU, ``CPU_MAX_BATCH`` (16) for other callables on CPU.
    seed : int, default 0
        Seed of the smoothing noise (and, through :meth:`manual_seed`, of the
        adapter's farthest-point sampling).
    device : optional
        Defaults to the adapter's device (CPU for plain callables).

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.models import pointnet2_part_seg_msg
    >>> net = pointnet2_part_seg_msg(npoints=(16, 4))
    >>> certifier = PointCloudCertifier(PointCloudAdapter(net, votes=1), batch_size=10)
    >>> cert = certifier.certify(torch.randn(64, 6), "Chair", sigma=0.25, tau=0.75,
    ...                          n0=10, n=20, alpha=0.01)
    >>> cert.labels.shape, round(cert.radius, 4)
    ((64,), 0.1686)
    """

    def __init__(
        self,
        model: PointCloudAdapter | Callable,
        *,
        num_classes: int | None = None,
        smoothing: str = "gaussian",
        axis=None,
        normalize: bool = True,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        seed: int = 0,
        device=None,
    ):
        if isinstance(model, PointCloudAdapter):
            model.eval()
            num_classes = model.num_classes if num_classes is None else num_classes
            device = model.device if device is None else device
        elif not callable(model):
            raise ValueError("model must be a PointCloudAdapter or a callable")
        if num_classes is None:
            raise ValueError("num_classes is required when model is not a PointCloudAdapter")
        self.model = model
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.smoothing = check_option(smoothing, "smoothing", SMOOTHINGS)
        if axis is not None and self.smoothing != "rotation":
            raise ValueError("axis is only used with smoothing='rotation'")
        self.axis = _as_axis(axis)
        self.normalize = bool(normalize)
        self.batch_size = (
            None if batch_size is None else check_positive_int(batch_size, "batch_size")
        )
        self.memory_budget = memory_budget
        self.device = torch.device("cpu" if device is None else device)
        self.generator = torch.Generator(device=self.device)
        self.stats = SamplerStats()
        self._auto_batch: dict = {}
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> PointCloudCertifier:
        """Reseed the smoothing noise, and the adapter's FPS stream from a derived seed."""
        seed = check_positive_int(seed, "seed", minimum=0)
        self.generator.manual_seed(seed)
        if isinstance(self.model, PointCloudAdapter):
            # A seed of its own, so that noise and FPS starts are not drawn from equal streams.
            fps_seed = np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0]
            self.model.manual_seed(int(fps_seed))
        return self

    # -- inputs ------------------------------------------------------------------------------
    def _points(self, points) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        p = torch.as_tensor(points)
        if p.dim() != 2 or p.shape[1] not in (3, 6) or p.shape[0] < 1:
            raise ValueError(f"points must have shape (N, 3) or (N, 6); got {tuple(p.shape)}")
        if p.dtype.is_complex or p.dtype == torch.bool:
            raise ValueError(f"points must be real numbers; got dtype {p.dtype}")
        p = p.to(device=self.device, dtype=torch.float32)
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

    def _category(self, category) -> int:
        if isinstance(self.model, PointCloudAdapter):
            if isinstance(category, str):
                return category_index(category)
            num = self.model.model.num_categories
            if isinstance(category, bool) or not isinstance(category, (int, np.integer)):
                raise ValueError(f"category must be an index or a name; got {category!r}")
            if not 0 <= int(category) < num:
                raise ValueError(f"category must lie in [0, {num}); got {category}")
            return int(category)
        return category

    def _problem(self, points: torch.Tensor, category, sigma: float):
        """The smoothed parameter ``x0``, its noise, and the classifier of noisy parameters."""
        if self.smoothing == "rotation":
            noise = NoiseModel("gaussian", sigma)
            if self.axis is None:
                x0 = torch.zeros(3, device=self.device)

                def matrices(angles):
                    return euler_rotation_matrix(angles)

            else:
                x0 = torch.zeros(1, device=self.device)
                axis = self.axis.to(self.device, torch.float32)

                def matrices(angles):
                    return axis_rotation_matrix(axis, angles[:, 0])

            def classify(angles):
                return self.model(rotate_point_cloud(points, matrices(angles)), category)

            return x0, noise, classify
        noise = NoiseModel(self.smoothing, sigma)
        x0 = points[:, :3].contiguous()
        extra = points[:, 3:]

        def classify(xyz):
            if extra.shape[1]:
                # Normals are not smoothed: the same clean normals go with every noisy copy.
                xyz = torch.cat([xyz, extra.expand(xyz.shape[0], -1, -1)], -1)
            return self.model(xyz, category)

        return x0, noise, classify

    def _sampler(self, points, noise, classify) -> StreamingSampler:
        sampler = StreamingSampler(
            classify,
            num_classes=self.num_classes,
            noise=noise,
            generator=self.generator,
            batch_size=self.batch_size,
            memory_budget=self.memory_budget,
        )
        if self.batch_size is None:
            # Preset, but still automatic: on CUDA it may shrink after an out-of-memory error.
            batch = self._auto_batch.get((tuple(points.shape), self.smoothing))
            if batch is None and self.device.type != "cuda":
                if isinstance(self.model, PointCloudAdapter):
                    budget = self.memory_budget or CPU_MEMORY_BUDGET
                    batch = pointnet2_batch_size(self.model.model, points.shape[0], budget)
                else:
                    batch = CPU_MAX_BATCH
            sampler.batch_size = batch
        return sampler

    def _done(self, sampler: StreamingSampler, points) -> None:
        if self.batch_size is None:
            self._auto_batch[(tuple(points.shape), self.smoothing)] = sampler.batch_size
        self.stats.add(sampler.stats)

    # -- API ---------------------------------------------------------------------------------
    def counts(self, points, category, *, sigma: float, num: int) -> torch.Tensor:
        """Part-label counts ``(C, N)`` over ``num`` smoothed copies (on the device)."""
        p, _, _ = self._points(points)
        cat = self._category(category)
        x0, noise, classify = self._problem(p, cat, sigma)
        sampler = self._sampler(p, noise, classify)
        out = sampler.counts(x0, num)
        self._done(sampler, p)
        return out

    def certify(
        self,
        points,
        category,
        *,
        sigma: float,
        tau: float,
        n0: int,
        n: int,
        alpha: float,
        method: str = "holm",
        k: int = 1,
    ) -> PointCloudCertificate:
        """SEGCERTIFY one cloud (paper Algorithm 2).

        Parameters
        ----------
        points : array_like ``(N, 3)`` or ``(N, 6)``
            xyz (and normals) of the clean cloud, any scale when ``normalize``.
        category : int or str
            Object category (index or ShapeNet-part name/synset for an adapter).
        sigma : float
            Noise scale (coordinate units of the normalised cloud, or radians).
        tau, n0, n, alpha, method, k
            As in :func:`mtcert.certify.segcertify_hits`.
        """
        tau = check_tau(tau)
        alpha = check_alpha(alpha)
        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        p, center, scale = self._points(points)
        cat = self._category(category)
        x0, noise, classify = self._problem(p, cat, sigma)
        sampler = self._sampler(p, noise, classify)
        t0 = time.perf_counter()
        guess = sampler.counts(x0, n0).argmax(0)  # stage 1: the guess only
        hits = sampler.hits(x0, guess, n)  # stage 2: fresh, independent draws
        guess_np, hits_np = guess.cpu().numpy(), hits.cpu().numpy()
        t1 = time.perf_counter()
        cert = segcertify_hits(guess_np, hits_np, n, tau=tau, alpha=alpha, method=method, k=k)
        if self.smoothing == "rotation":
            radius = float(rotation_radius(tau, noise.scale))
        else:
            radius = float(cert.radius(noise.scale, noise=self.smoothing))
        t2 = time.perf_counter()
        self._done(sampler, p)
        return PointCloudCertificate(
            certificate=cert,
            guess=guess_np,
            hits=hits_np,
            smoothing=self.smoothing,
            sigma=noise.scale,
            axis=None if self.axis is None else tuple(float(a) for a in self.axis),
            category=cat,
            n0=n0,
            n=n,
            radius=radius,
            center=None if center is None else center.cpu().numpy(),
            scale=scale,
            seconds_sampling=t1 - t0,
            seconds_statistics=t2 - t1,
        )

    def predict(self, points, category, *, sigma: float | None = None, n: int = 100):
        """Uncertified labels ``(N,)``: the base model on the clean (normalised) cloud when
        ``sigma`` is None, else the majority label over ``n`` smoothed copies."""
        p, _, _ = self._points(points)
        cat = self._category(category)
        if sigma is None:
            with torch.inference_mode():
                return self.model(p.unsqueeze(0), cat)[0].cpu().numpy()
        n = check_positive_int(n, "n")
        return self.counts(points, category, sigma=sigma, num=n).argmax(0).cpu().numpy()
