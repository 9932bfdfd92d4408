"""Load checkpoints written by upstream training code into our modules.

The official HRNet segmentation code saves either a plain state dict
(``final_state.pth``) or ``{"epoch", "best_mIoU", "state_dict", "optimizer"}``
(``checkpoint.pth.tar``), where the state dict is that of a ``FullModel``
wrapper: network keys are prefixed ``model.`` and the loss adds entries such
as ``loss.criterion.weight`` (class weights).  Models saved through
``nn.DataParallel`` add a further ``module.`` prefix.  This loader accepts all
of these and is otherwise strict: a checkpoint of another width, depth or
number of classes is refused with an error listing every difference, never
loaded partially.

Imports torch only.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["load_checkpoint"]

# Prefixes added by training wrappers: nn.DataParallel ("module.") and upstream's
# FullModel ("model."), stripped in this order.
_WRAPPER_PREFIXES = ("module.", "model.")
# Entries that only exist at training time: FullModel's loss (e.g. class weights).
_TRAINING_ONLY_PREFIXES = ("loss.",)
# Where training scripts put the weights: HRNet's "state_dict", the PointNet++
# reference script's "model_state_dict" (next to "optimizer_state_dict").
_STATE_KEYS = ("state_dict", "model_state_dict")
_OPTIONAL_SUFFIX = ".num_batches_tracked"  # absent from checkpoints of torch < 0.4.1
_MAX_LISTED = 20

# Plain numbers that upstream stores next to the weights (``best_mIoU`` is a numpy
# float).  numpy >= 2 pickles its scalars from ``numpy._core``, numpy 1 from
# ``numpy.core``; both reconstruct a number and nothing else, so they are safe.
_np_scalar = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
_NUMPY_SAFE_GLOBALS = [
    _np_scalar,
    (_np_scalar, "numpy.core.multiarray.scalar"),
    (_np_scalar, "numpy._core.multiarray.scalar"),
    np.dtype,
    *(type(np.dtype(t)) for t in ("f8", "f4", "i8", "i4")),
]


def _read(source) -> Mapping:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"checkpoint file not found: {path!r}")
        # weights_only refuses arbitrary pickled code.  For a trusted file holding other
        # objects, call torch.load(path, weights_only=False) yourself and pass the result.
        try:
            with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS), warnings.catch_warnings():
                # A foreign pickle protocol only matters if loading fails, which we report.
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            text = str(exc).strip()
            code = re.search(r"GLOBAL (\S+)", text)
            if code:  # a pickled function or class: refused, never executed
                raise ValueError(
                    f"refused checkpoint {path!r}: it holds code ({code.group(1)}), and "
                    "torch.load(weights_only=True) accepts only tensors and plain containers "
                    "(if you trust the file, load it with torch.load(path, weights_only=False) "
                    "and pass the result)"
                ) from None
            # Garbage (e.g. a text file) fails deep inside the unpickler with any exception
            # (KeyError, IndexError, EOFError, RuntimeError, ...): all mean "not a torch file".
            unpickler = re.search(r"WeightsUnpickler error:\s*([^\n]*)", text)
            if unpickler:
                reason = unpickler.group(1).strip() or "unreadable pickle"
            else:
                reason = text.splitlines()[0] if text else type(exc).__name__
            raise ValueError(
                f"could not read checkpoint {path!r}: not a torch file ({reason})"
            ) from None
        if not isinstance(loaded, Mapping):
            raise ValueError(
                f"checkpoint {path!r} holds a {type(loaded).__name__}, not a state dict"
            )
        return loaded
    raise ValueError(
        f"checkpoint must be a file path or a state-dict mapping; got {type(source).__name__}"
    )


def _unwrap(raw: Mapping) -> dict[str, torch.Tensor]:
    """Return the network's entries: unwrapped, prefixes stripped, training-only entries gone."""
    state = raw
    for key in _STATE_KEYS:
        if isinstance(raw.get(key), Mapping):
            state = raw[key]
            break
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ValueError(f"checkpoint keys must be strings; got {key!r}")
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.startswith(_TRAINING_ONLY_PREFIXES):
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        if key in out:
            raise ValueError(f"checkpoint holds {key!r} twice (with and without a prefix)")
        out[key] = value
    return out


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = f"\n    ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(shown) + more


def load_checkpoint(model: nn.Module, checkpoint) -> nn.Module:
    """Load an upstream checkpoint into ``model`` strictly, after unwrapping it.

    Parameters
    ----------
    model : torch.nn.Module
        The network whose parameter and buffer names follow the upstream layout.
    checkpoint : str, os.PathLike or mapping
        A file saved with :func:`torch.save` (read on the CPU with
        ``weights_only=True``) or an already loaded mapping.  Accepted layouts:
        a plain state dict, ``{"state_dict": state_dict, ...}`` or
        ``{"model_state_dict": state_dict, ...}`` (other top-level entries such
        as ``epoch`` or ``optimizer`` are ignored).
        Keys may carry the prefixes ``module.`` and/or ``model.``; entries under
        ``loss.`` are dropped; missing ``num_batches_tracked`` buffers keep the
        model's values.

    Returns
    -------
    torch.nn.Module
        ``model``, with its parameters and buffers overwritten in place.

    Raises
    ------
    ValueError
        If the file is missing or not a state dict, or if any parameter or
        buffer is missing, unexpected or of a different shape.  The message
        lists each kind (at most 20 keys per kind) and nothing is loaded.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.models import hrnetv2_w18_small_v1, load_checkpoint
    >>> trained = hrnetv2_w18_small_v1()
    >>> ckpt = {"state_dict": {"model." + k: v for k, v in trained.state_dict().items()}}
    >>> net = load_checkpoint(hrnetv2_w18_small_v1(), ckpt)
    >>> bool(torch.equal(net.conv1.weight, trained.conv1.weight))
    True
    """
    state = _unwrap(_read(checkpoint))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        message = f"checkpoint does not match {type(model).__name__}:"
        if mismatched:
            message += _listing("shape mismatches", mismatched)
        if missing:
            message += _listing("missing keys", missing)
        if unexpected:
            message += _listing("unexpected keys", unexpected)
        message += (
            "\n  Was it trained with another configuration (width, depth) or number of classes?"
        )
        raise ValueError(message)
    model.load_state_dict(state, strict=False)
    return model
