"""HRNetV2 for semantic segmentation, with upstream-compatible parameter names.

The network follows Wang et al. (2020) and the reference implementation
``HRNet/HRNet-Semantic-Segmentation`` (MIT licence, ``lib/models/seg_hrnet.py``):
a stem of two stride-2 3×3 convolutions, a stage of bottleneck blocks, then
stages 2–4 with 2, 3 and 4 parallel branches at 1/4, 1/8, 1/16 and 1/32 of the
input resolution that exchange information after every module, and the
HRNetV2 head that upsamples every branch to 1/4 resolution, concatenates them
and classifies each position with two 1×1 convolutions.

Every module, parameter and buffer carries the name it has upstream
(``conv1``, ``layer1.0.downsample.1``, ``transition3.3.0.0``,
``stage4.2.fuse_layers.3.0.0.0``, ``last_layer.3``, ...), so a checkpoint
trained with the official code loads unchanged; see :func:`hrnetv2_w48`.

The configurations are plain data (:class:`HRNetConfig`), transcribed from the
upstream ``experiments/*.yaml`` files and the HRNetV2 model zoo.

Imports torch, the core's validation and the checkpoint loader.

References
----------
.. [1] J. Wang, K. Sun, T. Cheng et al., "Deep High-Resolution Representation
   Learning for Visual Recognition", IEEE TPAMI 43(10), 2020.
.. [2] https://github.com/HRNet/HRNet-Semantic-Segmentation (MIT licence).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mtcert.stats.validation import check_positive_int
from mtcert_torch.models._checkpoint import load_checkpoint

__all__ = [
    "BN_MOMENTUM",
    "CONFIGS",
    "HRNetConfig",
    "HRNetV2",
    "StageConfig",
    "hrnetv2_w18",
    "hrnetv2_w18_small_v1",
    "hrnetv2_w18_small_v2",
    "hrnetv2_w32",
    "hrnetv2_w48",
]

# Upstream trains with BatchNorm momentum 0.01 (seg_hrnet.py, BN_MOMENTUM). It only
# matters when fine-tuning; in eval mode the running statistics are used as stored.
BN_MOMENTUM = 0.01


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (expansion 1)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 convolutions with a residual connection (expansion 4)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = _bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "BASIC": BasicBlock,
    "BOTTLENECK": Bottleneck,
}


@dataclass(frozen=True)
class StageConfig:
    """One stage: ``num_modules`` repeats of parallel branches (upstream ``STAGEk``).

    Parameters
    ----------
    num_modules : int
        Number of high-resolution modules (exchange units) in the stage.
    block : {"BASIC", "BOTTLENECK"}
        Residual block used in every branch.
    num_blocks : tuple of int
        Blocks per branch, highest resolution first.
    num_channels : tuple of int
        Block width per branch (before the block's expansion).
    """

    num_modules: int
    block: str
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]

    def __post_init__(self):
        check_positive_int(self.num_modules, "num_modules")
        # Accept lists (as in the yaml files) but store tuples: the config stays hashable.
        object.__setattr__(self, "num_blocks", tuple(self.num_blocks))
        object.__setattr__(self, "num_channels", tuple(self.num_channels))
        if self.block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}; got {self.block!r}")
        if len(self.num_blocks) != len(self.num_channels) or not self.num_blocks:
            raise ValueError(
                "num_blocks and num_channels must be non-empty and of equal length; got "
                f"{self.num_blocks!r} and {self.num_channels!r}"
            )
        for b in self.num_blocks:
            check_positive_int(b, "num_blocks")
        for c in self.num_channels:
            check_positive_int(c, "num_channels")

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of each branch's output (width times block expansion)."""
        expansion = _BLOCKS[self.block].expansion
        return tuple(c * expansion for c in self.num_channels)


@dataclass(frozen=True)
class HRNetConfig:
    """An HRNetV2 architecture (upstream ``MODEL.EXTRA``).

    Stage ``k`` (for k = 2, 3, 4) must have ``k`` branches; stage 1 has one.
    ``final_conv_kernel`` is the kernel of the classifier (1 in every upstream
    segmentation experiment; 3 is also accepted upstream).
    """

    stage1: StageConfig
    stage2: StageConfig
    stage3: StageConfig
    stage4: StageConfig
    final_conv_kernel: int = 1

    def __post_init__(self):
        for k, stage in enumerate(self.stages, start=1):
            if stage.num_branches != k:
                raise ValueError(f"stage{k} must have {k} branch(es); got {stage.num_branches}")
        if self.stage1.num_modules != 1:
            raise ValueError(f"stage1 must have one module; got {self.stage1.num_modules}")
        if self.final_conv_kernel not in (1, 3):
            raise ValueError(f"final_conv_kernel must be 1 or 3; got {self.final_conv_kernel!r}")

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        return (self.stage1, self.stage2, self.stage3, self.stage4)

    @property
    def head_channels(self) -> int:
        """Channels of the concatenated multi-resolution representation."""
        return sum(self.stage4.out_channels)


def _standard(width: int) -> HRNetConfig:
    """HRNetV2-W<width>: 4 bottlenecks, then (1, 4, 3) modules of 4 basic blocks per branch."""
    w = (width, 2 * width, 4 * width, 8 * width)
    return HRNetConfig(
        stage1=StageConfig(1, "BOTTLENECK", (4,), (64,)),
        stage2=StageConfig(1, "BASIC", (4, 4), w[:2]),
        stage3=StageConfig(4, "BASIC", (4, 4, 4), w[:3]),
        stage4=StageConfig(3, "BASIC", (4, 4, 4, 4), w),
    )


#: The upstream configurations by registry name.  The small ones come from
#: ``experiments/cityscapes/seg_hrnet_w18_small_v{1,2}_512x1024_*.yaml``, W48 from
#: ``seg_hrnet_w48_train_512x1024_*.yaml``; W18 and W32 differ from W48 in width only.
CONFIGS: dict[str, HRNetConfig] = {
    "hrnetv2_w18_small_v1": HRNetConfig(
        stage1=StageConfig(1, "BOTTLENECK", (1,), (32,)),
        stage2=StageConfig(1, "BASIC", (2, 2), (16, 32)),
        stage3=StageConfig(1, "BASIC", (2, 2, 2), (16, 32, 64)),
        stage4=StageConfig(1, "BASIC", (2, 2, 2, 2), (16, 32, 64, 128)),
    ),
    "hrnetv2_w18_small_v2": HRNetConfig(
        stage1=StageConfig(1, "BOTTLENECK", (2,), (64,)),
        stage2=StageConfig(1, "BASIC", (2, 2), (18, 36)),
        stage3=StageConfig(3, "BASIC", (2, 2, 2), (18, 36, 72)),
        stage4=StageConfig(2, "BASIC", (2, 2, 2, 2), (18, 36, 72, 144)),
    ),
    "hrnetv2_w18": _standard(18),
    "hrnetv2_w32": _standard(32),
    "hrnetv2_w48": _standard(48),
}


def _make_blocks(block: str, inplanes: int, planes: int, num_blocks: int) -> nn.Sequential:
    """``num_blocks`` residual blocks; the first projects the shortcut if widths differ."""
    cls = _BLOCKS[block]
    outplanes = planes * cls.expansion
    downsample = None
    if inplanes != outplanes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, bias=False), _bn(outplanes))
    layers = [cls(inplanes, planes, downsample)]
    layers += [cls(outplanes, planes) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)


def _downsampler(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    """``steps`` stride-2 3×3 conv+BN units; all but the last keep the width and end in ReLU."""
    units = []
    for k in range(steps):
        last = k == steps - 1
        unit = [_conv3x3(in_channels, out_channels if last else in_channels, 2)]
        unit.append(_bn(out_channels if last else in_channels))
        if not last:
            unit.append(nn.ReLU(inplace=True))
        units.append(nn.Sequential(*unit))
    return nn.Sequential(*units)


class HighResolutionModule(nn.Module):
    """Parallel branches followed by the exchange unit that fuses them by sum.

    Output branch ``i`` is ``relu(sum_j f_ij(x_j))`` with ``f_ii`` the identity,
    ``f_ij`` for a lower-resolution ``j > i`` a 1×1 conv + BN followed by bilinear
    upsampling, and for a higher-resolution ``j < i`` a chain of ``i - j`` stride-2
    3×3 convs ([1]_, §3).
    """

    def __init__(self, stage: StageConfig, in_channels: tuple[int, ...], align_corners: bool):
        super().__init__()
        self.align_corners = align_corners
        self.branches = nn.ModuleList(
            _make_blocks(stage.block, cin, c, n)
            for cin, c, n in zip(in_channels, stage.num_channels, stage.num_blocks, strict=True)
        )
        out = stage.out_channels
        # nn.Identity on the diagonal keeps upstream's indices (its list holds None there)
        # and contributes no state-dict entries.
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(
                nn.Sequential(nn.Conv2d(out[j], out[i], 1, bias=False), _bn(out[i]))
                if j > i
                else nn.Identity()
                if j == i
                else _downsampler(out[j], out[i], i - j)
                for j in range(len(out))
            )
            for i in range(len(out))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        fused = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            y = xs[i]
            for j, f in enumerate(row):
                if j > i:
                    z = F.interpolate(
                        f(xs[j]), size=size, mode="bilinear", align_corners=self.align_corners
                    )
                    y = y + z
                elif j < i:
                    y = y + f(xs[j])
            # y is a fresh tensor (at least two branches were summed), so in-place is safe.
            fused.append(self.relu(y))
        return fused


def _transition(pre: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Adapt the previous stage's branches and spawn the new lower-resolution ones.

    Existing branch ``i`` gets a 3×3 conv+BN+ReLU only if its width changes;
    each new branch is a chain of stride-2 3×3 conv+BN+ReLU units from the
    lowest-resolution previous branch.
    """
    layers = []
    for i, c in enumerate(cur):
        if i < len(pre):
            if c == pre[i]:
                layers.append(nn.Identity())
            else:
                layers.append(nn.Sequential(_conv3x3(pre[i], c), _bn(c), nn.ReLU(inplace=True)))
        else:
            steps = i + 1 - len(pre)
            units = []
            for k in range(steps):
                cout = c if k == steps - 1 else pre[-1]
                units.append(
                    nn.Sequential(_conv3x3(pre[-1], cout, 2), _bn(cout), nn.ReLU(inplace=True))
                )
            layers.append(nn.Sequential(*units))
    return nn.ModuleList(layers)


class HRNetV2(nn.Module):
    """HRNetV2 semantic segmentation network.

    Parameters
    ----------
    config : HRNetConfig
        Architecture; see :data:`CONFIGS`.
    num_classes : int
        Number of output channels (19 for Cityscapes, 59 for Pascal-Context).
    align_corners : bool, default False
        ``align_corners`` of every bilinear upsampling inside the network (fuse
        units and head).  It must match the value the checkpoint was trained
        with: the upstream Cityscapes configs set ``ALIGN_CORNERS: False``, the
        upstream default is True.

    Notes
    -----
    Input: a float tensor ``(N, 3, H, W)`` of RGB values in [0, 1] normalised
    with the ImageNet mean and standard deviation.  Output: logits
    ``(N, num_classes, ceil(H/4), ceil(W/4))`` at 1/4 resolution — as upstream,
    there is no final upsampling.  Weights start with PyTorch's default
    initialisation; load a checkpoint for meaningful predictions.  The module is
    returned in training mode, as usual in PyTorch: call ``.eval()`` before
    inference so that BatchNorm uses its running statistics.
    """

    def __init__(self, config: HRNetConfig, num_classes: int = 19, *, align_corners: bool = False):
        super().__init__()
        if not isinstance(config, HRNetConfig):
            raise ValueError(f"config must be an HRNetConfig; got {type(config).__name__}")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        if not isinstance(align_corners, bool):
            raise ValueError(f"align_corners must be a bool; got {align_corners!r}")
        self.config = config
        self.align_corners = align_corners

        self.conv1 = _conv3x3(3, 64, 2)
        self.bn1 = _bn(64)
        self.conv2 = _conv3x3(64, 64, 2)
        self.bn2 = _bn(64)
        self.relu = nn.ReLU(inplace=True)
        s1 = config.stage1
        self.layer1 = _make_blocks(s1.block, 64, s1.num_channels[0], s1.num_blocks[0])

        channels = s1.out_channels
        for k, stage in enumerate(config.stages[1:], start=2):
            setattr(self, f"transition{k - 1}", _transition(channels, stage.out_channels))
            modules = []
            for _ in range(stage.num_modules):
                modules.append(HighResolutionModule(stage, stage.out_channels, align_corners))
            setattr(self, f"stage{k}", nn.Sequential(*modules))
            channels = stage.out_channels

        c = config.head_channels
        kernel = config.final_conv_kernel
        self.last_layer = nn.Sequential(
            nn.Conv2d(c, c, 1),
            _bn(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, self.num_classes, kernel, padding=kernel // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input of shape (N, 3, H, W); got {tuple(x.shape)}")
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            # New branches grow from the lowest-resolution output of the previous stage.
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = stage(xs)
        size = xs[0].shape[-2:]
        up = [
            F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)
            for x in xs[1:]
        ]
        return self.last_layer(torch.cat([xs[0], *up], dim=1))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, align_corners={self.align_corners}"


def _build(name: str, num_classes: int, checkpoint, align_corners: bool) -> HRNetV2:
    model = HRNetV2(CONFIGS[name], num_classes, align_corners=align_corners)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def hrnetv2_w18_small_v1(num_classes=19, *, checkpoint=None, align_corners=False) -> HRNetV2:
    """HRNetV2-W18-Small-v1 (about 1.5 M parameters); see :func:`hrnetv2_w48`."""
    return _build("hrnetv2_w18_small_v1", num_classes, checkpoint, align_corners)


def hrnetv2_w18_small_v2(num_classes=19, *, checkpoint=None, align_corners=False) -> HRNetV2:
    """HRNetV2-W18-Small-v2 (about 3.9 M parameters); see :func:`hrnetv2_w48`."""
    return _build("hrnetv2_w18_small_v2", num_classes, checkpoint, align_corners)


def hrnetv2_w18(num_classes=19, *, checkpoint=None, align_corners=False) -> HRNetV2:
    """HRNetV2-W18 (about 9.6 M parameters); see :func:`hrnetv2_w48`."""
    return _build("hrnetv2_w18", num_classes, checkpoint, align_corners)


def hrnetv2_w32(num_classes=19, *, checkpoint=None, align_corners=False) -> HRNetV2:
    """HRNetV2-W32 (about 29.5 M parameters); see :func:`hrnetv2_w48`."""
    return _build("hrnetv2_w32", num_classes, checkpoint, align_corners)


def hrnetv2_w48(num_classes=19, *, checkpoint=None, align_corners=False) -> HRNetV2:
    """HRNetV2-W48, the paper's Cityscapes and Pascal-Context base model.

    Parameters
    ----------
    num_classes : int, default 19
        19 for Cityscapes, 59 for Pascal-Context.
    checkpoint : str, os.PathLike or mapping, optional
        An upstream checkpoint: a file path (loaded with ``weights_only=True``)
        or an already loaded state dict, possibly wrapped as
        ``{"state_dict": ...}`` with keys prefixed ``model.``; see
        :func:`mtcert_torch.models.load_checkpoint`.
    align_corners : bool, default False
        Must match the checkpoint's training config (``MODEL.ALIGN_CORNERS``).

    Returns
    -------
    HRNetV2
        In training mode; call ``.eval()`` before inference.  Logits come out
        at 1/4 of the input resolution.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.models import hrnetv2_w18_small_v1
    >>> net = hrnetv2_w18_small_v1(num_classes=19).eval()
    >>> with torch.no_grad():
    ...     net(torch.zeros(1, 3, 64, 128)).shape
    torch.Size([1, 19, 16, 32])
    """
    return _build("hrnetv2_w48", num_classes, checkpoint, align_corners)
