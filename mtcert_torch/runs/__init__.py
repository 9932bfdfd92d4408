"""Runs: the evaluation loop and the files a run writes.

- :mod:`~mtcert_torch.runs.loop`: :func:`~mtcert_torch.runs.loop.evaluate`, the one
  evaluation loop (per-item seeds, base predictions, metrics, ``torch.distributed``
  sharding);
- :mod:`~mtcert_torch.runs.store`: the record files (layout, one-writer lock, repair,
  CSVs);
- :mod:`~mtcert_torch.runs.summary`: the summary table (paper Tables 1 and 2, plus
  the rows and columns of the hooks);
- :mod:`~mtcert_torch.runs.figures`: Fig.-1 panels (and the hooks that draw them);
- :mod:`~mtcert_torch.runs.counts`: stored counts of a run (``--save-counts``);
- :mod:`~mtcert_torch.runs.jobs`: the certify jobs behind the command line
  (:func:`~mtcert_torch.runs.jobs.certify_images`,
  :func:`~mtcert_torch.runs.jobs.certify_pointclouds`);
- :mod:`~mtcert_torch.runs.demo`: the segmentation part of ``python -m mtcert run``.

Runs sit above the certifier, settings, tasks, data, models, attacks and hierarchy
(they may import all of them), and below the public face and the command line.
Inside the package the arrows point from jobs to loop to summary to store.
"""

from mtcert_torch.runs.jobs import certify_images, certify_pointclouds

__all__ = ["certify_images", "certify_pointclouds"]
