"""PointNet++ part segmentation, multi-scale grouping (MSG), in plain PyTorch.

The layer layout and parameter names follow the widely used PyTorch port
``yanx27/Pointnet_Pointnet2_pytorch`` (MIT; ``models/pointnet2_part_seg_msg.py``),
so a checkpoint trained there (``best_model.pth`` = ``{"model_state_dict": ...}``)
loads into :class:`PointNet2PartSegMsg` unchanged — the paper's base models
(§6.3) were trained with that code.

Architecture (``normals=True`` adds 3 input channels, ``C_in = 6``)::

    sa1  MSG  512 centres, radii (0.1, 0.2, 0.4), k (32, 64, 128),
              MLPs (32,32,64) (64,64,128) (64,96,128) on [features, xyz - centre]  -> 320
    sa2  MSG  128 centres, radii (0.4, 0.8), k (64, 128),
              MLPs (128,128,256) (128,196,256)                                    -> 512
    sa3  one group of all points, MLP (256, 512, 1024) on [xyz, features]         -> 1024
    fp3  (512 + 1024) -> 256, 256     fp2  (320 + 256) -> 256, 128
    fp1  (one-hot 16 + xyz 3 + C_in + 128) -> 128, 128
    head conv 128 -> 128, BN, ReLU, dropout 0.5, conv 128 -> num_parts, log-softmax

The only randomness of a forward pass is the start point of farthest-point
sampling; it is drawn from an explicit :class:`torch.Generator`, so a pass is
reproducible.

Imports torch, the core's validation, the sampler (CPU batch sizes), the ShapeNet-part
tables and the checkpoint loader.

References
----------
.. [1] C. R. Qi, L. Yi, H. Su, L. J. Guibas, "PointNet++: Deep Hierarchical
   Feature Learning on Point Sets in a Metric Space", NeurIPS 2017.
.. [2] X. Yan, "Pointnet/Pointnet++ Pytorch",
   https://github.com/yanx27/Pointnet_Pointnet2_pytorch (MIT licence).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtcert.stats.validation import check_positive_int
from mtcert_torch.data.shapenet import PART_RANGES, category_index
from mtcert_torch.models._checkpoint import load_checkpoint
from mtcert_torch.sampler import CPU_MAX_BATCH, CPU_MEMORY_BUDGET
from mtcert_torch.task import check_finite

__all__ = [
    "FeaturePropagation",
    "PointNet2Adapter",
    "PointNet2PartSegMsg",
    "SetAbstraction",
    "SetAbstractionMsg",
    "ball_query",
    "category_part_mask",
    "farthest_point_sample",
    "pointnet2_batch_size",
    "pointnet2_part_seg_msg",
    "predict_parts",
    "restricted_argmax",
]


# -- geometry helpers (points are channels-last here: (B, N, 3)) -----------------------------
def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(B, N, M)`` between ``a`` ``(B, N, 3)`` and ``b`` ``(B, M, 3)``.

    Uses ``|a|² + |b|² − 2 a·b`` (one matmul, no ``(B, N, M, 3)`` temporary), as
    the reference implementation does, so radius decisions match its rounding.
    """
    d = torch.bmm(a, b.transpose(1, 2)).mul_(-2.0)
    d += a.square().sum(-1).unsqueeze(-1)
    d += b.square().sum(-1).unsqueeze(-2)
    return d


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points[b, idx[b, ...]]``: ``(B, N, C)`` indexed by ``(B, *S)`` gives ``(B, *S, C)``."""
    b, c = points.shape[0], points.shape[-1]
    flat = idx.reshape(b, -1, 1).expand(-1, -1, c)
    return torch.gather(points, 1, flat).reshape(*idx.shape, c)


def farthest_point_sample(
    xyz: torch.Tensor, npoint: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Indices ``(B, npoint)`` of farthest-point sampling started at a random point.

    The start of each cloud is drawn uniformly with ``generator`` (on
    ``xyz.device``; ``None`` uses torch's global generator).  Every next index
    maximises the distance to the points chosen so far (first index on ties).
    With ``npoint > N`` indices repeat once every point is chosen.
    """
    b, n, _ = xyz.shape
    idx = torch.empty(b, npoint, dtype=torch.long, device=xyz.device)
    nearest = torch.full((b, n), float("inf"), dtype=xyz.dtype, device=xyz.device)
    farthest = torch.randint(n, (b,), generator=generator, device=xyz.device)
    rows = torch.arange(b, device=xyz.device)
    for i in range(npoint):
        idx[:, i] = farthest
        d = (xyz - xyz[rows, farthest].unsqueeze(1)).square().sum(-1)
        nearest = torch.minimum(nearest, d)
        farthest = nearest.argmax(-1)
    return idx


def ball_query(radius: float, nsample: int, xyz: torch.Tensor, centres: torch.Tensor):
    """Neighbour indices ``(B, S, min(nsample, N))`` of each centre within ``radius``.

    The ``nsample`` lowest point indices inside the ball, in increasing order;
    when fewer lie inside, the slots are filled with the first one (each
    centre is itself a point of ``xyz``, so the ball is never empty).
    """
    n = xyz.shape[1]
    d = square_distance(centres, xyz)
    key = torch.arange(n, dtype=torch.int32, device=xyz.device).expand_as(d)
    key = key.masked_fill(d > radius * radius, n)
    idx = key.topk(min(nsample, n), dim=-1, largest=False, sorted=True).values.long()
    return torch.where(idx == n, idx[..., :1], idx)


# -- layers ---------------------------------------------------------------------------------
def _mlp(in_channels: int, widths: Sequence[int], conv) -> tuple[nn.ModuleList, nn.ModuleList]:
    convs, bns = nn.ModuleList(), nn.ModuleList()
    bn = nn.BatchNorm2d if conv is nn.Conv2d else nn.BatchNorm1d
    for w in widths:
        convs.append(conv(in_channels, w, 1))
        bns.append(bn(w))
        in_channels = w
    return convs, bns


def _run(x: torch.Tensor, convs: nn.ModuleList, bns: nn.ModuleList) -> torch.Tensor:
    for conv, bn in zip(convs, bns, strict=True):
        x = F.relu(bn(conv(x)))
    return x


class SetAbstractionMsg(nn.Module):
    """Multi-scale grouping: FPS centres, one ball query + shared MLP + max-pool per radius.

    ``in_channels`` counts the point features; the relative xyz (3) is
    appended after them, so the first convolution of each branch sees
    ``in_channels + 3`` channels.
    """

    def __init__(self, npoint, radii, nsamples, in_channels, mlps):
        super().__init__()
        if not len(radii) == len(nsamples) == len(mlps):
            raise ValueError("radii, nsamples and mlps must have the same length")
        self.npoint = check_positive_int(npoint, "npoint")
        self.radii = tuple(float(r) for r in radii)
        self.nsamples = tuple(int(k) for k in nsamples)
        self.conv_blocks = nn.ModuleList()
        self.bn_blocks = nn.ModuleList()
        for widths in mlps:
            convs, bns = _mlp(in_channels + 3, widths, nn.Conv2d)
            self.conv_blocks.append(convs)
            self.bn_blocks.append(bns)
        self.out_channels = sum(m[-1] for m in mlps)

    def forward(self, xyz, points, generator=None):
        """``xyz`` ``(B, 3, N)``, ``points`` ``(B, D, N)`` → centres ``(B, 3, S)``, features
        ``(B, out_channels, S)``."""
        if self.npoint > xyz.shape[-1]:  # sampling more centres than points would never end
            raise ValueError(
                f"the model samples {self.npoint} centres from {xyz.shape[-1]} points: "
                "npoints (the model's centres) must not exceed the points of a cloud"
            )
        xyz_t = xyz.transpose(1, 2)
        pts_t = points.transpose(1, 2)
        centres = gather_points(
            xyz_t, farthest_point_sample(xyz_t, self.npoint, generator=generator)
        )
        feats = []
        for radius, k, convs, bns in zip(
            self.radii, self.nsamples, self.conv_blocks, self.bn_blocks, strict=True
        ):
            idx = ball_query(radius, k, xyz_t, centres)  # (B, S, K)
            rel = gather_points(xyz_t, idx) - centres.unsqueeze(2)
            g = torch.cat([gather_points(pts_t, idx), rel], -1)  # (B, S, K, D + 3)
            g = _run(g.permute(0, 3, 2, 1), convs, bns)  # (B, C', K, S)
            feats.append(g.amax(2))
        return centres.transpose(1, 2), torch.cat(feats, 1)


class SetAbstraction(nn.Module):
    """The global set abstraction (``group_all``): one group of every point around the origin.

    Input channels are ``[xyz, features]`` (xyz first), ``in_channels`` counts both.
    """

    def __init__(self, in_channels, mlp):
        super().__init__()
        self.mlp_convs, self.mlp_bns = _mlp(in_channels, mlp, nn.Conv2d)
        self.out_channels = mlp[-1]

    def forward(self, xyz, points):
        """``(B, 3, N)``, ``(B, D, N)`` → origin ``(B, 3, 1)``, features ``(B, out, 1)``."""
        g = torch.cat([xyz, points], 1).unsqueeze(-1)  # (B, 3 + D, N, 1)
        g = _run(g, self.mlp_convs, self.mlp_bns).amax(2)
        return xyz.new_zeros(xyz.shape[0], 3, 1), g


class FeaturePropagation(nn.Module):
    """Inverse-distance interpolation from 3 nearest coarse points, concat skip features, MLP.

    Weights are ``1 / (d² + 1e-8)`` with squared distances ``d²``, normalised
    to sum 1 (as the reference implementation).
    """

    def __init__(self, in_channels, mlp):
        super().__init__()
        self.mlp_convs, self.mlp_bns = _mlp(in_channels, mlp, nn.Conv1d)

    def forward(self, xyz1, xyz2, points1, points2):
        """Fine ``xyz1`` ``(B, 3, N)``, coarse ``xyz2`` ``(B, 3, S)``, skip ``points1``
        ``(B, D1, N)``, coarse ``points2`` ``(B, D2, S)`` → ``(B, mlp[-1], N)``."""
        n, s = xyz1.shape[2], xyz2.shape[2]
        if s == 1:
            interp = points2.expand(-1, -1, n)
        else:
            d = square_distance(xyz1.transpose(1, 2), xyz2.transpose(1, 2))  # (B, N, S)
            d3, idx = d.topk(min(3, s), dim=-1, largest=False, sorted=True)
            w = 1.0 / (d3 + 1e-8)
            w = w / w.sum(-1, keepdim=True)
            near = gather_points(points2.transpose(1, 2), idx)  # (B, N, 3, D2)
            interp = (near * w.unsqueeze(-1)).sum(2).transpose(1, 2)
        return _run(torch.cat([points1, interp], 1), self.mlp_convs, self.mlp_bns)


class PointNet2PartSegMsg(nn.Module):
    """PointNet++ MSG part segmentation (``get_model`` of the reference implementation).

    Parameters
    ----------
    num_parts : int, default 50
        Output part labels (global over all categories).
    num_categories : int, default 16
        Length of the object-category one-hot input.
    normals : bool, default True
        Inputs carry normals (6 channels: xyz, normal) or only xyz (3).
    npoints : (int, int), default (512, 128)
        Centres of ``sa1`` and ``sa2``.  Not stored in checkpoints; smaller
        values only make tests on tiny clouds faster.

    Notes
    -----
    :meth:`forward` keeps the reference signature and outputs so training code
    written for it works: ``forward(xyz (B, C_in, N), cls_label (B, num_categories))
    -> (log_probs (B, N, num_parts), global_features (B, 1024, 1))``.  Use
    :func:`predict_parts` for labels (category-restricted argmax, votes).

    Examples
    --------
    >>> import torch
    >>> net = PointNet2PartSegMsg(normals=True, npoints=(16, 4)).eval()
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(2, 6, 64)
    >>> onehot = torch.nn.functional.one_hot(torch.tensor([0, 4]), 16).float()
    >>> logp, feat = net(x, onehot, generator=g)
    >>> tuple(logp.shape), tuple(feat.shape)
    ((2, 64, 50), (2, 1024, 1))
    """

    def __init__(
        self,
        num_parts: int = 50,
        num_categories: int = 16,
        *,
        normals: bool = True,
        npoints: Sequence[int] = (512, 128),
    ):
        super().__init__()
        self.num_parts = check_positive_int(num_parts, "num_parts")
        self.num_categories = check_positive_int(num_categories, "num_categories")
        self.normals = bool(normals)
        self.in_channels = 6 if self.normals else 3
        if len(npoints) != 2:
            raise ValueError(f"npoints must hold two centre counts; got {npoints!r}")
        self.sa1 = SetAbstractionMsg(
            npoints[0],
            (0.1, 0.2, 0.4),
            (32, 64, 128),
            self.in_channels,
            ((32, 32, 64), (64, 64, 128), (64, 96, 128)),
        )
        self.sa2 = SetAbstractionMsg(
            npoints[1],
            (0.4, 0.8),
            (64, 128),
            self.sa1.out_channels,
            ((128, 128, 256), (128, 196, 256)),
        )
        if self.sa2.npoint > self.sa1.npoint:  # the second level samples the first's centres
            raise ValueError(
                f"npoints: the second count must not exceed the first; got {npoints!r}"
            )
        self.sa3 = SetAbstraction(self.sa2.out_channels + 3, (256, 512, 1024))
        self.fp3 = FeaturePropagation(self.sa2.out_channels + 1024, (256, 256))
        self.fp2 = FeaturePropagation(self.sa1.out_channels + 256, (256, 128))
        self.fp1 = FeaturePropagation(self.num_categories + 3 + self.in_channels + 128, (128, 128))
        self.conv1 = nn.Conv1d(128, 128, 1)
        self.bn1 = nn.BatchNorm1d(128)
        self.drop1 = nn.Dropout(0.5)
        self.conv2 = nn.Conv1d(128, self.num_parts, 1)

    def forward(self, xyz, cls_label, *, generator: torch.Generator | None = None):
        """Per-point log-probabilities ``(B, N, num_parts)`` and global features ``(B, 1024, 1)``.

        ``xyz``: ``(B, C_in, N)``, channels xyz then normals; ``cls_label``: the
        category one-hot ``(B, num_categories)``; ``generator``: source of the
        farthest-point-sampling start points (torch's global one if ``None``).
        """
        if xyz.dim() != 3 or xyz.shape[1] != self.in_channels:
            raise ValueError(
                f"xyz must have shape (B, {self.in_channels}, N); got {tuple(xyz.shape)}"
            )
        b, _, n = xyz.shape
        if cls_label.shape != (b, self.num_categories):
            raise ValueError(
                f"cls_label must have shape ({b}, {self.num_categories}); "
                f"got {tuple(cls_label.shape)}"
            )
        l0_xyz = xyz[:, :3]
        l1_xyz, l1 = self.sa1(l0_xyz, xyz, generator)
        l2_xyz, l2 = self.sa2(l1_xyz, l1, generator)
        l3_xyz, l3 = self.sa3(l2_xyz, l2)
        l2 = self.fp3(l2_xyz, l3_xyz, l2, l3)
        l1 = self.fp2(l1_xyz, l2_xyz, l1, l2)
        onehot = cls_label.to(xyz.dtype).unsqueeze(-1).expand(-1, -1, n)
        l0 = self.fp1(l0_xyz, l1_xyz, torch.cat([onehot, l0_xyz, xyz], 1), l1)
        x = self.conv2(self.drop1(F.relu(self.bn1(self.conv1(l0)))))
        return F.log_softmax(x, 1).transpose(1, 2), l3


# -- prediction -----------------------------------------------------------------------------
def category_part_mask(
    part_ranges: Sequence[tuple[int, int]] = PART_RANGES, num_parts: int | None = None
) -> torch.Tensor:
    """Boolean ``(num_categories, num_parts)``: which part labels each category owns.

    ``part_ranges`` holds half-open ``(start, stop)`` label ranges, one per
    category (the ShapeNet-part table by default).

    >>> m = category_part_mask()
    >>> tuple(m.shape), m[4].nonzero().flatten().tolist()
    ((16, 50), [12, 13, 14, 15])
    """
    ranges = [(int(a), int(b)) for a, b in part_ranges]
    if num_parts is None:
        num_parts = max(b for _, b in ranges)
    mask = torch.zeros(len(ranges), num_parts, dtype=torch.bool)
    for c, (a, b) in enumerate(ranges):
        if not 0 <= a < b <= num_parts:
            raise ValueError(
                f"part_ranges[{c}] = ({a}, {b}) is not a non-empty range within [0, {num_parts})"
            )
        mask[c, a:b] = True
    return mask


def restricted_argmax(scores: torch.Tensor, category: torch.Tensor, mask: torch.Tensor):
    """Per-point argmax of ``scores`` ``(B, N, P)`` over the parts of each cloud's category.

    ``category``: ``(B,)`` indices into ``mask`` ``(num_categories, P)``.  Returns
    global part labels ``(B, N)`` (int64); ties go to the lowest label.  The
    paper's released certification script took the argmax over the 16
    categories' worth of outputs instead of the category's own parts.  NaN or
    infinite scores raise :class:`~mtcert_torch.task.NonFiniteOutputError`: their
    argmax would be an arbitrary part, certified as if the network had chosen it.
    """
    check_finite(scores)
    allowed = mask.to(scores.device)[category].unsqueeze(1)  # (B, 1, P)
    return scores.masked_fill(~allowed, float("-inf")).argmax(-1)


def _as_category(category, batch: int, num_categories: int, device) -> torch.Tensor:
    cat = torch.as_tensor(category, device=device)
    if cat.dtype.is_floating_point or cat.dtype == torch.bool:
        raise ValueError(f"category must hold integer indices; got dtype {cat.dtype}")
    cat = cat.long().reshape(-1)
    if cat.numel() == 1:
        cat = cat.expand(batch)
    if cat.shape != (batch,):
        raise ValueError(f"category must be one index or {batch}; got shape {tuple(cat.shape)}")
    if int(cat.min()) < 0 or int(cat.max()) >= num_categories:
        raise ValueError(f"category indices must lie in [0, {num_categories})")
    return cat


@torch.no_grad()
def predict_parts(
    model: PointNet2PartSegMsg,
    points: torch.Tensor,
    category,
    *,
    votes: int = 3,
    generator: torch.Generator | None = None,
    part_ranges: Sequence[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Part labels ``(B, N)`` from ``votes`` forward passes, restricted to each category's parts.

    The log-probabilities of ``votes`` passes (each with fresh FPS start
    points from ``generator``) are averaged, as the reference test script and
    the paper (§6.3, "the average of 3 runs for each invocation of the base
    model") do; the label is the argmax over the category's own part range.

    Parameters
    ----------
    model : PointNet2PartSegMsg
        In eval mode for inference.
    points : Tensor ``(B, N, C_in)``
        Channels-last clouds (xyz, then normals when the model uses them).
    category : int or Tensor ``(B,)``
        Object-category index of each cloud.
    votes : int, default 3
    generator : torch.Generator, optional
        On the model's device; torch's global generator if ``None``.
    part_ranges : sequence of (start, stop), optional
        Part range per category; the ShapeNet-part table by default.

    Examples
    --------
    >>> import torch
    >>> net = PointNet2PartSegMsg(normals=False, npoints=(16, 4)).eval()
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = predict_parts(net, torch.randn(2, 64, 3), torch.tensor([4, 15]), generator=g)
    >>> bool(((labels >= 12) & (labels < 16))[0].all()), bool((labels[1] >= 47).all())
    (True, True)
    """
    votes = check_positive_int(votes, "votes")
    if points.dim() != 3:
        raise ValueError(f"points must have shape (B, N, C); got {tuple(points.shape)}")
    b = points.shape[0]
    cat = _as_category(category, b, model.num_categories, points.device)
    mask = category_part_mask(PART_RANGES if part_ranges is None else part_ranges, model.num_parts)
    if mask.shape[0] != model.num_categories:
        raise ValueError(
            f"part_ranges has {mask.shape[0]} categories; the model has {model.num_categories}"
        )
    onehot = F.one_hot(cat, model.num_categories).to(points.dtype)
    x = points.transpose(1, 2)
    total = None
    for _ in range(votes):
        logp, _ = model(x, onehot, generator=generator)
        total = logp if total is None else total.add_(logp)
    return restricted_argmax(total.div_(votes), cat, mask)


class PointNet2Adapter(torch.nn.Module):
    """A PointNet++ part segmenter as the base classifier of a
    :class:`~mtcert_torch.tasks.pointcloud.PointCloudTask`: clouds ``(B, N, C)`` and a
    category → part labels ``(B, N)``.

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
    >>> adapter = PointNet2Adapter(pointnet2_part_seg_msg(npoints=(16, 4)), votes=2)
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

    def category_index(self, category) -> int:
        """A category index in ``[0, num_categories)`` from an index or a ShapeNet-part name."""
        if isinstance(category, str):
            return category_index(category)
        num = self.model.num_categories
        if isinstance(category, bool) or not isinstance(category, int | np.integer):
            raise ValueError(f"category must be an index or a name; got {category!r}")
        if not 0 <= int(category) < num:
            raise ValueError(f"category must lie in [0, {num}); got {category}")
        return int(category)

    def manual_seed(self, seed: int) -> PointNet2Adapter:
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

    def batch_size_hint(self, num_points: int, memory_budget: int | None = None) -> int:
        """Clouds per CPU forward pass (:func:`pointnet2_batch_size`)."""
        return pointnet2_batch_size(self.model, num_points, memory_budget or CPU_MEMORY_BUDGET)

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


def pointnet2_part_seg_msg(
    num_parts: int = 50,
    num_categories: int = 16,
    *,
    normals: bool = True,
    checkpoint=None,
    npoints: Sequence[int] = (512, 128),
) -> PointNet2PartSegMsg:
    """PointNet++ MSG part segmentation, optionally loading a checkpoint.

    ``checkpoint``: a path or mapping in any layout
    :func:`mtcert_torch.models.load_checkpoint` accepts, including the
    reference training script's ``best_model.pth`` (``{"epoch", ...,
    "model_state_dict", "optimizer_state_dict"}``).  Loading is strict: a
    checkpoint trained with the other ``normals`` setting or another number
    of parts is refused with a listing of the differences.

    >>> net = pointnet2_part_seg_msg(normals=False)
    >>> net.in_channels, net.num_parts
    (3, 50)
    """
    model = PointNet2PartSegMsg(num_parts, num_categories, normals=normals, npoints=npoints)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model
