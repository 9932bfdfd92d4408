"""End-to-end demonstration on synthetic data (CPU, well under a minute).

:func:`run_demo` builds a small shapes dataset, trains :class:`TinySegNet`
with Gaussian noise (σ = 0.25, as the paper trains HRNetV2), saves the
checkpoint, and runs the same certification command a user runs on
Cityscapes, writing the Table-1-style summary and Fig.-1-style panels.  The
run stores its counts, and the demo then decides from them without the model,
as ``python -m mtcert recertify`` and ``plan`` do: a sweep over τ and methods,
certified accuracy against radius (per-τ and joint), and the number of testing
samples a target certified rate needs.

Imports the synthetic data, the adapter, the training helpers, the certify jobs
(:mod:`mtcert_torch.runs.jobs`) and the core's stored-counts layer.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from mtcert_torch.data.synthetic import TinySegNet, make_shapes, write_folder_dataset
from mtcert_torch.runs.jobs import certify_images
from mtcert_torch.runs.summary import timing_note
from mtcert_torch.tasks.adapter import SegmentationAdapter
from mtcert_torch.training import train_with_noise


def run_demo(
    out: str | Path = "results/segmentation",
    *,
    n_train: int = 96,
    n_test: int = 12,
    size: int = 32,
    steps: int = 60,
    sigma: float = 0.25,
    tau: float = 0.75,
    n0: int = 10,
    n: int = 100,
    alpha: float = 0.001,
    seed: int = 0,
    progress: bool = True,
) -> int:
    """Train a tiny segmentation net with noise on synthetic shapes and certify it.

    Writes ``out/data`` (the test images as a folder dataset), ``out/tiny.pt``
    (the checkpoint) and the certification results in ``out/certify``
    (``summary.md``, ``per_image.csv``, ``figures/*.png``); an earlier
    ``out/certify`` is replaced, since it belongs to the previous checkpoint.
    Prints the summary table; returns 0 (errors raise).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "certify", ignore_errors=True)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    x_train, y_train = make_shapes(n_train, size, seed=seed)
    x_test, y_test = make_shapes(n_test, size, seed=seed + 1)
    data = write_folder_dataset(out / "data", x_test, y_test)
    net = TinySegNet(num_classes=3)
    adapter = SegmentationAdapter(net, num_classes=3)
    losses = train_with_noise(adapter, x_train, y_train, sigma=sigma, steps=steps, seed=seed)
    torch.save(net.state_dict(), out / "tiny.pt")
    if progress:
        print(
            f"trained TinySegNet for {steps} steps in {time.perf_counter() - t0:.1f} s "
            f"(loss {losses[0]:.3f} -> {losses[-1]:.3f})"
        )
    certify_images(
        model="mtcert_torch.data.synthetic:TinySegNet",
        num_classes=3,
        checkpoint=out / "tiny.pt",
        data=data,
        layout="folder",
        sigma=sigma,
        tau=tau,
        n0=n0,
        n=n,
        alpha=alpha,
        out=out / "certify",
        batch_size=100,
        seed=seed,
        figures=4,
        progress=progress,
        save_counts=True,
    )
    print((out / "certify" / "summary.md").read_text(), end="")
    note = timing_note(out / "certify")
    if note:
        print(note)
    if progress:
        print(f"results in {out / 'certify'} (summary.md, per_image.csv, figures/, counts)")
    decide_from_counts(out / "certify", out / "decide", tau=tau, alpha=alpha)
    return 0


#: The demo's sweep: a few thresholds and two FWER methods at the run's α.
SWEEP_TAU = (0.6, 0.75, 0.9)
SWEEP_METHODS = ("holm", "bonferroni")


def decide_from_counts(counts, out, *, tau: float, alpha: float, target: float = 0.9) -> None:
    """Re-decide a run's stored counts without the model; write the results to ``out``.

    ``sweep.csv``/``.md`` (:func:`~mtcert.stored.recertification.recertify` at
    :data:`SWEEP_TAU` x :data:`SWEEP_METHODS`), ``radius_curve.csv``/``.png`` (the
    per-τ curve and the joint radius curve) and ``plan.csv``/``.png`` (the n
    reaching ``target`` certified rate at ``tau``, planned from the run as a pilot).
    """
    from mtcert._files import output_folder
    from mtcert.cli.common import markdown_table
    from mtcert.plotting import save_figure
    from mtcert.stored.planning import plan_samples, plot_plan, profile_from_pilot
    from mtcert.stored.recertification import (
        joint_radius_curve,
        plot_radius_curves,
        radius_curve,
        recertify,
    )

    out = output_folder(out)
    sweep = recertify(counts, tau=SWEEP_TAU, alpha=alpha, method=SWEEP_METHODS)
    sweep.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(markdown_table(sweep))
    curves = pd.concat(
        [radius_curve(counts, alpha=alpha), joint_radius_curve(counts, alpha=alpha)],
        ignore_index=True,
    )
    curves.to_csv(out / "radius_curve.csv", index=False)
    plan = plan_samples(profile_from_pilot(counts), tau=tau, alpha=alpha, target=target)
    plan.table.to_csv(out / "plan.csv", index=False)
    try:
        save_figure(plot_radius_curves(curves), out / "radius_curve.png")
        save_figure(plot_plan(plan), out / "plan.png")
    except ImportError as exc:  # matplotlib is optional: the tables are complete
        print(f"note: figures skipped ({exc})")
    planned = (
        f"n = {plan.n_needed} reaches a certified rate of {target:g} at tau = {tau:g}"
        if plan.n_needed is not None
        else f"no n up to {int(plan.table['n'].max())} reaches a certified rate of {target:g} "
        f"at tau = {tau:g}; the rate levels off at {plan.ceiling:.3g}"
    )
    print(
        f"decided from the stored counts without the model -> {out} "
        f"(sweep: {len(sweep)} settings, each its own certificate per image; radius curves; "
        f"plan: {planned})"
    )
