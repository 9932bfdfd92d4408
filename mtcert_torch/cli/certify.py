"""``certify`` and ``certify-pointcloud``: flags derived from the run options.

Every flag comes from one :class:`mtcert_torch.settings.Option` of
:data:`~mtcert_torch.settings.IMAGE_OPTIONS` or
:data:`~mtcert_torch.settings.CLOUD_OPTIONS` (name, default, help, type,
``--help`` section); the parsed values go unchanged to
:func:`mtcert_torch.runs.jobs.certify_images` or
:func:`~mtcert_torch.runs.jobs.certify_pointclouds`, and rank 0 prints the
summary table.  Imports the runs, the settings and the core's command-line
plumbing.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from mtcert.cli.common import floats, ints, json_object, names
from mtcert_torch.runs.jobs import certify_images, certify_pointclouds
from mtcert_torch.runs.store import CLOUD_FILES, IMAGE_FILES
from mtcert_torch.runs.summary import timing_note
from mtcert_torch.settings import CLOUD_OPTIONS, IMAGE_OPTIONS, Option, Options

__all__ = ["COMMANDS", "EXAMPLES", "add_options", "run"]

#: argparse ``type`` of one value, and of a comma-separated list, per option type.
_ONE = {float: float, int: int, str: None, dict: json_object}
_COMMAS = {float: floats, int: ints, str: names}


def _argument(option: Option) -> dict:
    """``add_argument`` keywords of one option (besides its flag, ``dest`` and help)."""
    if option.type is bool:
        if option.default is None:
            return {"action": argparse.BooleanOptionalAction, "default": None}
        return {"action": "store_false" if option.default else "store_true"}
    kwargs = {"required": True} if option.required else {"default": option.default}
    kwargs["type"] = (_COMMAS if option.many == "," else _ONE)[option.type]
    if option.many == "+":
        kwargs["nargs"] = "+"
    if option.choices is not None:
        kwargs["choices"] = option.choices
    return kwargs


def add_options(parser: argparse.ArgumentParser, options: Options) -> None:
    """One flag per option, in sections by the options' groups."""
    groups: dict = {}
    for option in options:
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        groups[option.group].add_argument(
            option.cli_flag, dest=option.name, help=option.help, **_argument(option)
        )


def run(args: argparse.Namespace, *, options: Options, job, files: dict) -> int:
    """Run ``job`` with the parsed options; rank 0 prints the summary table, and on stderr
    what its ``t [s]`` holds (:func:`~mtcert_torch.runs.summary.timing_note`, from the
    ``files``' record CSV)."""
    result = job(**{o.name: getattr(args, o.name) for o in options})
    if result.rank == 0:
        print((Path(result.out) / "summary.md").read_text(), end="")
        note = timing_note(result.out, files)
        if note:  # stdout stays the summary table alone
            print(f"note: {note}", file=sys.stderr)
    return 0


def _command(text: str, options: Options, job, files: dict) -> tuple:
    return (
        text,
        partial(add_options, options=options),
        partial(run, options=options, job=job, files=files),
    )


#: Sub-command name -> example argument lines, listed in its ``--help``.
EXAMPLES = {
    "certify": [
        # runnable as written after `python -m mtcert run` (the demo's model and images)
        "--model mtcert_torch.data.synthetic:TinySegNet --num-classes 3 "
        "--checkpoint results/segmentation/tiny.pt --data results/segmentation/data "
        "--sigma 0.25 --out results/tiny --save-counts",
        "--model hrnetv2_w48 --checkpoint hrnet_cs.pth --data /data/cityscapes --sigma 0.25 "
        "--scale 0.25 --n 100 --alpha 1e-3 --out results/cs --device cuda --limit 100",
        "--model hrnetv2_w48 --checkpoint hrnet_cs.pth --data /data/cityscapes --sigma 0.5 "
        "--noise laplace --method generalized-holm --k 10 --out results/cs-laplace",
    ],
    "certify-pointcloud": [
        "--data shapenetcore_partanno_segmentation_benchmark_v0_normal "
        "--checkpoint best_model.pth --sigma 0.02 --out results/shapenet --limit 10",
        "--data shapenetcore_partanno_segmentation_benchmark_v0_normal "
        "--checkpoint best_model.pth --smoothing rotation --axis z --sigma 0.1 "
        "--out results/shapenet-rot",
        "--data shapenetcore_partanno_segmentation_benchmark_v0_normal --no-normals "
        "--checkpoint xyz_model.pth --model-kwargs '{\"npoints\": [256, 64]}' --npoints 1024 "
        "--sigma 0.02 --out results/shapenet-xyz",
    ],
}

#: Sub-command name -> (one-line help, ``add_arguments(parser)``, ``run(args) -> int``).
COMMANDS = {
    "certify": _command(
        "certify a segmentation model on a data set of images (Table 1)",
        IMAGE_OPTIONS,
        certify_images,
        IMAGE_FILES,
    ),
    "certify-pointcloud": _command(
        "certify a point-cloud part segmenter on ShapeNet-part (Table 2)",
        CLOUD_OPTIONS,
        certify_pointclouds,
        CLOUD_FILES,
    ),
}
