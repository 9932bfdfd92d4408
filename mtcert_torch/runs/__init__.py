"""Runs: the evaluation loop and the files a run writes.

- :mod:`~mtcert_torch.runs.loop`: :func:`~mtcert_torch.runs.loop.evaluate`, the one
  evaluation loop (per-item seeds, base predictions, metrics, ``torch.distributed``
  sharding);
- :mod:`~mtcert_torch.runs.store`: result files (records with a one-writer lock and
  repair, CSVs, the summary table, figures);
- :mod:`~mtcert_torch.runs.counts`: stored counts of a run (``--save-counts``);
- :mod:`~mtcert_torch.runs.jobs`: the certify jobs behind the command line
  (:func:`~mtcert_torch.runs.jobs.certify_images`,
  :func:`~mtcert_torch.runs.jobs.certify_pointclouds`);
- :mod:`~mtcert_torch.runs.demo`: the segmentation part of ``python -m mtcert run``.

Runs sit above the certifier, tasks, data and models, and below the command line.
"""

from mtcert_torch.runs.jobs import certify_images, certify_pointclouds

__all__ = ["certify_images", "certify_pointclouds"]
