"""The task interface: the only thing a modality adds to the one :class:`~mtcert_torch.Certifier`.

The :class:`~mtcert_torch.Certifier` owns SEGCERTIFY's two stages, streaming
counts, batching and seeding.  A *task* says

1. **what the input is** and how it becomes a point of the *smoothing space*
   (:meth:`Task.prepare` returns a :class:`Smoothed`: the clean point
   ``center`` where noise is added, on the model's device),
2. **how a batch of noisy copies is drawn**: i.i.d. additive noise of the
   family :attr:`Task.noise` (``"gaussian"`` or ``"laplace"``) around
   ``center``.  The smoothing space is the task's choice: image pixels in
   [0, 1], point coordinates, or rotation angles (then the noise is a random
   rotation about an axis),
3. **how the model's output becomes one label per component**
   (``Smoothed.classify`` maps noisy points ``(B, *center.shape)`` to integer
   labels ``(B, *components)``), and
4. **which radius the noise certifies** (:meth:`Task.radius`, in the units of
   the smoothing space).

:class:`TensorTask` smooths a tensor input directly (any model whose output is
labels or logits); :class:`~mtcert_torch.ImageTask` and
:class:`~mtcert_torch.PointCloudTask` are the two shipped modalities.  A task
for a new modality (sequences, graphs, …) subclasses :class:`Task` and
implements :meth:`~Task.prepare`; ``docs/torch.md`` has a worked example.

Two guards every task inherits: :func:`as_labels` refuses non-finite scores
(:class:`NonFiniteOutputError`: a NaN network would otherwise be certified as
class 0), and :meth:`Task.eval_mode` puts the model in evaluation mode for
each certification call and restores its mode afterwards.

A base module: imports torch, the core's radius table and validation, and
:mod:`mtcert_torch.noise`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from mtcert.stats.radius import certified_radius
from mtcert.stats.validation import check_option, check_positive_int
from mtcert_torch.noise import NOISES

__all__ = [
    "NonFiniteOutputError",
    "Smoothed",
    "Task",
    "TensorTask",
    "as_labels",
    "check_finite",
]


class NonFiniteOutputError(ValueError):
    """The model returned NaN or infinite scores: there is no label to count.

    ``argmax`` would silently pick class 0 (or wherever the NaN sits) and the
    certificate would certify it with a radius.  The run loop re-raises it
    naming the item.
    """


@dataclass(frozen=True)
class Smoothed:
    """One input prepared for smoothing (what :meth:`Task.prepare` returns).

    Attributes
    ----------
    center : Tensor
        The clean point of the smoothing space; noise of the task's family is
        added to it.  On the device the certifier runs on.
    classify : callable
        Noisy points ``(B, *center.shape)`` → integer labels ``(B, *components)``
        in ``[0, num_classes)``.  Called under :func:`torch.inference_mode`.
    clean : callable, optional
        The base model's labels ``(*components)`` on the clean input; by default
        ``classify(center[None])[0]``.
    size_key : tuple, optional
        Inputs with equal keys share an automatic batch size (default: ``center.shape``).
    info : dict
        Task details copied into the certificate's ``info`` (e.g. the
        normalisation of a point cloud).
    """

    center: torch.Tensor
    classify: Callable[[torch.Tensor], torch.Tensor]
    clean: Callable[[], torch.Tensor] | None = None
    size_key: tuple | None = None
    info: dict = field(default_factory=dict)

    def base_labels(self) -> torch.Tensor:
        """The base model's labels on the clean input."""
        with torch.inference_mode():
            if self.clean is not None:
                return self.clean()
            return self.classify(self.center.unsqueeze(0))[0]


def as_labels(out) -> torch.Tensor:
    """A model output as integer labels: integer tensors as they are, floating-point
    tensors as logits or scores with the classes on dimension 1 (``argmax(1)``).

    Raises :class:`NonFiniteOutputError` when a score is NaN or infinite."""
    if isinstance(out, list | tuple):  # auxiliary outputs (e.g. HRNet-OCR): keep the last
        out = out[-1]
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the model must return a tensor; got {type(out).__name__}")
    if out.dtype.is_floating_point:
        if out.dim() < 2:
            raise ValueError(
                f"a floating-point model output must be (B, C, ...) scores; got {tuple(out.shape)}"
            )
        check_finite(out)
        return out.argmax(1)
    return out


def check_finite(scores: torch.Tensor) -> None:
    """Raise :class:`NonFiniteOutputError` if ``scores`` hold NaN or infinity.

    One min/max reduction (NaN propagates through it), no temporary of the scores' size.
    """
    if scores.numel() == 0:
        return
    lo, hi = torch.aminmax(scores)
    if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
        bad = int((~torch.isfinite(scores)).sum())
        raise NonFiniteOutputError(
            f"the model returned {bad} non-finite score(s) (NaN or inf) in a batch of "
            f"{tuple(scores.shape)}: check the weights, the input and the normalisation "
            "(mean/std); nothing was certified"
        )


class Task:
    """Base class of a smoothing task (see the module docstring).

    Subclasses set :attr:`num_classes` and :attr:`noise` and implement
    :meth:`prepare`; the other methods have defaults.

    Attributes
    ----------
    num_classes : int
        Number of labels a component can take.
    noise : {"gaussian", "laplace"}
        Family of the additive noise in the smoothing space.
    """

    num_classes: int
    noise: str = "gaussian"

    def prepare(self, x, device: torch.device) -> Smoothed:
        """Validate input ``x`` and return it as a :class:`Smoothed` point on ``device``."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device | None:
        """The model's device (the certifier's default), or None if unknown."""
        return None

    @property
    def label(self) -> str:
        """Short description of the smoothing for records and summaries (default: the noise)."""
        return self.noise

    def radius(self, p: float, sigma: float) -> float:
        """Radius certified at probability ``p`` (SEGCERTIFY: ``tau``) by noise of scale
        ``sigma``: ℓ2 for Gaussian, ℓ1 for Laplace noise, in the units of the smoothing
        space (:func:`mtcert.stats.radius.certified_radius`)."""
        return float(certified_radius(p, sigma, self.noise))

    def batch_size_hint(self, smoothed: Smoothed, memory_budget: int | None) -> int | None:
        """Copies per forward pass on CPU; None lets the sampler estimate one."""
        return None

    def manual_seed(self, seed: int) -> None:
        """Reseed randomness of the task's own (e.g. a model's point sampling); default none."""

    def record(self, info: dict) -> dict:
        """Extra per-item record fields from a certificate's ``info`` (e.g. image
        height and width); default none."""
        return {}

    def eval(self) -> Task:
        """Put the model in evaluation mode (if it has one)."""
        model = getattr(self, "model", None)
        if isinstance(model, torch.nn.Module):
            model.eval()
        return self

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Evaluation mode for the duration of a call, each module's own mode restored after.

        A model switched back to ``.train()`` after the certifier was built would
        otherwise be sampled with dropout active or batch statistics (a different
        classifier than the one meant, and a BatchNorm model fails on one input).
        """
        model = getattr(self, "model", None)
        if not isinstance(model, torch.nn.Module):
            yield
            return
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training


class TensorTask(Task):
    """Smooth a tensor input directly: the input tensor is the smoothing space.

    Parameters
    ----------
    model : callable
        Maps noisy inputs ``(B, *x.shape)`` to integer labels ``(B, *components)``
        or floating-point scores ``(B, C, *components)`` (argmax over dim 1).
        A classifier has no component dimensions: labels ``(B,)``, logits ``(B, C)``.
    num_classes : int
    noise : {"gaussian", "laplace"}

    Notes
    -----
    The smoothing space follows the model's dtype (:attr:`dtype`): a float64
    model gets float64 inputs and its noise is drawn in float64; any other
    model gets float32 inputs and float32 noise, cast to the model's dtype
    just before the call for a float16 / bfloat16 model.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch import Certifier
    >>> task = TensorTask(lambda z: (z > 0).long(), num_classes=2)
    >>> cert = Certifier(task, batch_size=50).certify(torch.full((4,), 3.0), sigma=1.0,
    ...     tau=0.75, n0=10, n=100, alpha=0.001)
    >>> cert.labels.tolist()
    [1, 1, 1, 1]
    """

    def __init__(self, model: Callable, *, num_classes: int, noise: str = "gaussian"):
        if not callable(model):
            raise ValueError(f"model must be callable; got {type(model).__name__}")
        self.model = model
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.noise = check_option(noise, "noise", NOISES)

    @property
    def device(self) -> torch.device | None:
        model = self.model
        if isinstance(model, torch.nn.Module):
            for p in model.parameters():
                return p.device
        return getattr(model, "device", None)

    def model_dtype(self) -> torch.dtype | None:
        """The floating dtype of the model's first floating parameter or buffer (None: none)."""
        model = self.model
        if isinstance(model, torch.nn.Module):
            for t in itertools.chain(model.parameters(), model.buffers()):
                if t.dtype.is_floating_point:
                    return t.dtype
        return None

    @property
    def dtype(self) -> torch.dtype:
        """The smoothing space's dtype: float64 for a float64 model, else float32."""
        return torch.float64 if self.model_dtype() == torch.float64 else torch.float32

    def _cast(self, z: torch.Tensor) -> torch.Tensor:
        dtype = self.model_dtype()
        if dtype is not None and dtype != z.dtype and dtype in (torch.float16, torch.bfloat16):
            return z.to(dtype)  # noise drawn in float32, cast for a half-precision model
        return z

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return as_labels(self.model(self._cast(z)))

    def prepare(self, x, device: torch.device) -> Smoothed:
        x = torch.as_tensor(x)
        if x.dtype.is_complex or x.dtype == torch.bool:
            raise ValueError(f"x must hold real numbers; got dtype {x.dtype}")
        return Smoothed(x.to(device=device, dtype=self.dtype), self.classify)
