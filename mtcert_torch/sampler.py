"""Streaming Monte Carlo counts for SEGCERTIFY (paper Algorithm 2, lines 1–4).

The sampler never stores the ``n × N`` sampled labels (the paper's released
code did: about 18 GB per Cityscapes image).  Stage one keeps a ``(C, …)``
integer count tensor; stage two keeps only the per-component number of hits of
the guessed label.  Both live on the model's device and only the final counts
travel to the host, where :func:`mtcert.certify.segmentation.segcertify_hits` does the
statistics.

Soundness rests on two facts that the tests check:

* every noisy copy gets its own noise draw (:meth:`NoiseModel.sample` is
  called with the full batch shape), and
* the guessing stage (``n0``) and the testing stage (``n``) use disjoint,
  consecutive stretches of one generator stream, hence independent draws.

A base module: imports torch, the core's validation and :mod:`mtcert_torch.noise`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mtcert.stats.validation import check_positive_int
from mtcert_torch.noise import NoiseModel

#: Default host-memory budget for one batch on CPU (bytes).
CPU_MEMORY_BUDGET = 512 * 2**20
#: Largest automatic batch on CPU: bigger batches buy no throughput there, and the
#: CPU memory estimate is rough (a CPU out-of-memory kills the process).
CPU_MAX_BATCH = 16
#: Fraction of currently free device memory one batch may use on CUDA.
CUDA_MEMORY_FRACTION = 0.6


@dataclass
class SamplerStats:
    """Running totals of a sampler: forward passes, noisy samples and seconds spent."""

    samples: int = 0
    batches: int = 0
    seconds: float = 0.0
    batch_sizes: list = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else math.nan

    def add(self, other: SamplerStats) -> None:
        """Accumulate another sampler's totals into these."""
        self.samples += other.samples
        self.batches += other.batches
        self.seconds += other.seconds
        self.batch_sizes.extend(other.batch_sizes)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def estimate_batch_size(
    classify: Callable,
    image: torch.Tensor,
    num_classes: int,
    *,
    memory_budget: int | None = None,
    maximum: int = 1024,
) -> int:
    """Pick a batch size whose forward pass fits in ``memory_budget`` bytes.

    On CUDA the peak memory of a one-image forward pass on the clean image is
    measured (plus the noise tensors and counting temporaries made outside the
    model) and the batch size is ``budget // peak``; the default budget is
    60 % of the currently free device memory.  On CPU there is no peak-memory
    counter, so a conservative estimate is used: four copies of the input plus
    three ``(C, …)`` float32 maps at full resolution per sample, with a default
    budget of 512 MiB, and at most :data:`CPU_MAX_BATCH` copies.  The result is
    clamped to ``[1, maximum]``.
    """
    device = image.device
    if device.type == "cuda":
        if memory_budget is None:
            free, _ = torch.cuda.mem_get_info(device)
            memory_budget = int(CUDA_MEMORY_FRACTION * free)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            out = classify(image.unsqueeze(0))
        torch.cuda.synchronize(device)
        del out
        # + the noise and the noisy copy (made outside classify) and the int32 ones of
        # the scatter_add in the counting stage.
        pixels = image[0].numel() if image.dim() >= 3 else image.numel()
        extra = 2 * image.numel() * image.element_size() + 4 * pixels
        per_sample = max(torch.cuda.max_memory_allocated(device) - base, 1) + extra
    else:
        if memory_budget is None:
            memory_budget = CPU_MEMORY_BUDGET
        pixels = image[0].numel() if image.dim() >= 3 else image.numel()
        per_sample = 4 * (4 * image.numel() + 3 * num_classes * pixels)
        maximum = min(maximum, CPU_MAX_BATCH)
    return int(max(1, min(maximum, memory_budget // per_sample)))


class StreamingSampler:
    """Draw noisy copies of one input in batches and accumulate label counts.

    Parameters
    ----------
    classify : callable
        Maps a batch of noisy inputs ``(B, *input_shape)`` to integer labels
        ``(B, *component_shape)`` in ``[0, num_classes)``.  Called under
        :func:`torch.inference_mode`.
    num_classes : int
        Number of classes ``C``.
    noise : NoiseModel
        The smoothing distribution (added to the input exactly as given: for
        images that is [0, 1] pixel space, before any normalisation).
    generator : torch.Generator
        Source of all noise, on the same device as the inputs.
    batch_size : int or None
        Noisy copies per forward pass; ``None`` picks one automatically with
        :func:`estimate_batch_size` (and halves it after a CUDA out-of-memory
        error).
    memory_budget : int or None
        Bytes per batch for the automatic choice.

    Examples
    --------
    >>> import torch
    >>> from mtcert_torch.noise import NoiseModel
    >>> g = torch.Generator().manual_seed(0)
    >>> s = StreamingSampler(lambda x: (x > 0).long(), num_classes=2,
    ...                      noise=NoiseModel("gaussian", 1.0), generator=g, batch_size=8)
    >>> counts = s.counts(torch.zeros(5), 20)
    >>> counts.shape, int(counts.sum(0)[0])
    (torch.Size([2, 5]), 20)
    """

    def __init__(
        self,
        classify: Callable,
        *,
        num_classes: int,
        noise: NoiseModel,
        generator: torch.Generator,
        batch_size: int | None = None,
        memory_budget: int | None = None,
    ):
        self.classify = classify
        self.num_classes = check_positive_int(num_classes, "num_classes", minimum=1)
        if not isinstance(noise, NoiseModel):
            raise ValueError(f"noise must be a NoiseModel; got {type(noise).__name__}")
        self.noise = noise
        self.generator = generator
        self.batch_size = (
            None if batch_size is None else check_positive_int(batch_size, "batch_size")
        )
        self.memory_budget = memory_budget
        self.stats = SamplerStats()
        self._auto = batch_size is None

    # -- batching ---------------------------------------------------------------------------
    def _batch_size(self, image: torch.Tensor) -> int:
        if self.batch_size is None:
            self.batch_size = estimate_batch_size(
                self.classify, image, self.num_classes, memory_budget=self.memory_budget
            )
        return self.batch_size

    def _labels(self, image: torch.Tensor, b: int) -> torch.Tensor:
        # A fresh draw of shape (b, *input_shape): b independent noise tensors.
        eps = self.noise.sample(
            (b, *image.shape), generator=self.generator, device=image.device, dtype=image.dtype
        )
        labels = self.classify(image.unsqueeze(0) + eps)
        if (
            labels.dim() == 0
            or labels.shape[0] != b
            or labels.dtype.is_floating_point
            or labels.dtype.is_complex
            or labels.dtype == torch.bool
        ):
            raise ValueError(
                "classify must return integer labels of shape (B, ...); "
                f"got {tuple(labels.shape)} {labels.dtype} for B={b}"
            )
        return labels.long()

    def _stream(self, image: torch.Tensor, num: int, consume: Callable) -> None:
        # int32 counters (half the memory of int64 at 2 M pixels x C classes) hold any n < 2**31.
        num = check_positive_int(num, "num", minimum=1)
        if num >= 2**31:
            raise ValueError(f"num must be < 2**31; got {num}")
        done = 0
        t0 = time.perf_counter()
        with torch.inference_mode():
            while done < num:
                b = min(self._batch_size(image), num - done)
                try:
                    labels = self._labels(image, b)
                except torch.cuda.OutOfMemoryError:
                    # Only an automatic batch size may shrink; the failed batch's noise is
                    # discarded whatever its values, so the kept draws stay i.i.d.
                    if not self._auto or self.batch_size == 1:
                        raise
                    self.batch_size = max(1, self.batch_size // 2)
                    torch.cuda.empty_cache()
                    continue
                consume(labels)
                done += b
                self.stats.batches += 1
                self.stats.batch_sizes.append(b)
        _synchronize(image.device)
        self.stats.samples += num
        self.stats.seconds += time.perf_counter() - t0

    # -- the two stages ---------------------------------------------------------------------
    def counts(self, image: torch.Tensor, num: int) -> torch.Tensor:
        """Class counts ``(C, *component_shape)`` (int32) over ``num`` noisy copies."""
        counts = None
        c = self.num_classes

        def consume(labels):
            nonlocal counts
            flat = labels.reshape(labels.shape[0], -1)
            first = counts is None
            if first:
                # Row C is a spare bin for labels outside [0, C): counting them there
                # keeps the loop free of device synchronisations (a range check per
                # batch would stall the GPU queue); it is checked after the first batch
                # (a misconfigured model fails fast) and once at the end.
                counts = torch.zeros((c + 1, flat.shape[1]), dtype=torch.int32, device=flat.device)
                self._component_shape = labels.shape[1:]
            index = torch.where((flat < 0) | (flat >= c), c, flat)
            # counts[labels[b, j], j] += 1 for every copy b and component j (exact integers).
            counts.scatter_add_(0, index, torch.ones_like(index, dtype=torch.int32))
            if first:
                self._check_spare_bin(counts)

        self._stream(image, num, consume)
        self._check_spare_bin(counts)
        return counts[:c].reshape(c, *self._component_shape)

    def _check_spare_bin(self, counts: torch.Tensor) -> None:
        bad = int(counts[self.num_classes].sum())
        if bad:
            raise ValueError(
                f"classify returned labels outside [0, {self.num_classes}) for {bad} "
                "component(s) of the noisy copies; is num_classes right?"
            )

    def hits(self, image: torch.Tensor, guess: torch.Tensor, num: int) -> torch.Tensor:
        """Per-component number of copies (out of ``num``) labelled ``guess``; int32."""
        hits = torch.zeros(guess.shape, dtype=torch.int32, device=guess.device)

        def consume(labels):
            if labels.shape[1:] != guess.shape:
                raise ValueError(
                    f"classify returned components of shape {tuple(labels.shape[1:])}; "
                    f"guess has shape {tuple(guess.shape)}"
                )
            hits.add_((labels == guess).sum(0))

        self._stream(image, num, consume)
        return hits
