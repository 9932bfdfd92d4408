"""Base models with upstream-compatible weights, and a registry by name.

>>> from mtcert_torch.models import get_model, list_models
>>> list_models()  # doctest: +NORMALIZE_WHITESPACE
('hrnetv2_w18', 'hrnetv2_w18_small_v1', 'hrnetv2_w18_small_v2', 'hrnetv2_w32',
 'hrnetv2_w48', 'pointnet2_part_seg_msg')
>>> get_model("hrnetv2_w18_small_v1", num_classes=59).num_classes
59

Models import torch, the core's validation, the plugin's sampler (CPU batch sizes) and
the ShapeNet-part tables of :mod:`mtcert_torch.data.shapenet`; never tasks, runs or the
command line.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mtcert_torch.models._checkpoint import load_checkpoint
from mtcert_torch.models.hrnet import (
    CONFIGS,
    HRNetConfig,
    HRNetV2,
    StageConfig,
    hrnetv2_w18,
    hrnetv2_w18_small_v1,
    hrnetv2_w18_small_v2,
    hrnetv2_w32,
    hrnetv2_w48,
)
from mtcert_torch.models.pointnet2 import (
    PointNet2Adapter,
    PointNet2PartSegMsg,
    pointnet2_part_seg_msg,
    predict_parts,
)

__all__ = [
    "CONFIGS",
    "HRNetConfig",
    "HRNetV2",
    "PointNet2Adapter",
    "PointNet2PartSegMsg",
    "StageConfig",
    "get_model",
    "hrnetv2_w18",
    "hrnetv2_w18_small_v1",
    "hrnetv2_w18_small_v2",
    "hrnetv2_w32",
    "hrnetv2_w48",
    "list_models",
    "load_checkpoint",
    "pointnet2_part_seg_msg",
    "predict_parts",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    f.__name__: f
    for f in (
        hrnetv2_w18_small_v1,
        hrnetv2_w18_small_v2,
        hrnetv2_w18,
        hrnetv2_w32,
        hrnetv2_w48,
        pointnet2_part_seg_msg,
    )
}


def list_models() -> tuple[str, ...]:
    """Names accepted by :func:`get_model` (and the CLI's ``--model``), sorted."""
    return tuple(sorted(_REGISTRY))


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    **kwargs
        Passed to the builder, e.g. ``num_classes``, ``checkpoint``,
        ``align_corners`` for the HRNetV2 family; ``num_parts``,
        ``num_categories``, ``normals``, ``checkpoint`` for PointNet++.

    Returns
    -------
    torch.nn.Module
        The model, in training mode (call ``.eval()`` before inference).

    Raises
    ------
    ValueError
        If ``name`` is not registered (the message lists the names).

    Examples
    --------
    >>> from mtcert_torch.models import get_model
    >>> type(get_model("hrnetv2_w18_small_v1")).__name__
    'HRNetV2'
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"name must be one of {', '.join(list_models())}; got {name!r}")
    return _REGISTRY[name](**kwargs)
