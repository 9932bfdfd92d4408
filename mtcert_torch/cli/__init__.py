"""``python -m mtcert_torch``: certify models on data sets from the command line.

Commands:

* ``certify``: a segmentation model on a folder of images (paper Table 1);
* ``certify-pointcloud``: a part segmenter on ShapeNet-part clouds (Table 2);
* ``repair``: fix an output folder whose record file holds a damaged line.

Example (the paper's Table 1 setting, scale 0.25)::

    python -m mtcert_torch certify --model hrnetv2_w48 --checkpoint hrnet_cs.pth \\
        --data /data/cityscapes --sigma 0.25 --tau 0.75 --n0 10 --n 100 --alpha 0.001 \\
        --scale 0.25 --out results/cs --device cuda --limit 100

Under ``torchrun --nproc_per_node K`` the items are sharded over the K
processes (``torch.distributed``; gloo on CPU, NCCL on CUDA) and rank 0 writes
the summary.  See :mod:`mtcert_torch.runs.store` for the output files.

The parser only maps options to keyword values of
:func:`mtcert_torch.runs.jobs.certify_images`, :func:`~mtcert_torch.runs.jobs.certify_pointclouds`
and :func:`mtcert_torch.runs.store.repair_results`.  Every user error is one line
on stderr and exit status 2; an interrupt (Ctrl-C) keeps every finished item,
prints one line and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mtcert import __version__
from mtcert_torch.runs.jobs import certify_images, certify_pointclouds
from mtcert_torch.runs.store import repair_results
from mtcert_torch.tasks.adapter import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["build_parser", "main"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The default after every option's help ("required", "off" for flags); descriptions
    keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "(default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)"
        if isinstance(action, argparse._StoreConstAction):  # store_true / store_false flags
            return f"{text} (default: off)"
        if action.default is None:
            return f"{text} (default: none)"
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``prog: error: ...``), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _json_kwargs(text: str) -> dict:
    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not a JSON object: {exc}") from None
    if not isinstance(out, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return out


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {text!r}") from None


def _prog() -> str:
    """``python -m mtcert_torch`` when run as a module, else the script's own name."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m mtcert_torch" if name in ("", "__main__.py", "-c") else name


def add_model_options(group, *, image: bool) -> None:
    """Options that build the model (``--model``, ``--model-kwargs``, ``--checkpoint``, …)."""
    if image:
        group.add_argument("--model", required=True, help="registry name or module.path:callable")
    else:
        group.add_argument(
            "--model",
            default="pointnet2_part_seg_msg",
            help="registry name or module.path:callable returning a PointNet2PartSegMsg",
        )
    group.add_argument(
        "--model-kwargs",
        type=_json_kwargs,
        default={},
        help="JSON keyword arguments for the model, e.g. '{\"width\": 16}'",
    )
    group.add_argument(
        "--checkpoint", help="state dict to load strictly (weights only; default: none)"
    )
    if not image:
        group.add_argument("--votes", type=int, default=3, help="forward passes averaged per call")
        return
    group.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="number of classes (default: the data set's, 19 for Cityscapes)",
    )
    group.add_argument(
        "--scale",
        dest="scales",
        type=_floats,
        default=(1.0,),
        help="input scale(s), comma separated; several are averaged",
    )
    group.add_argument("--flip", action="store_true", help="average with horizontal flips")
    group.add_argument(
        "--align-corners",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bilinear resizes in the adapter and, for registry models, inside the network "
        "(default: the model's own align_corners, else off)",
    )
    group.add_argument(
        "--mean",
        type=_floats,
        default=IMAGENET_MEAN,
        help="per-channel mean subtracted after the noise",
    )
    group.add_argument(
        "--std",
        type=_floats,
        default=IMAGENET_STD,
        help="per-channel std divided by after the noise",
    )
    group.add_argument(
        "--autocast",
        choices=("bf16", "fp16"),
        default=None,
        help="run the network in reduced precision",
    )


def add_certification_options(group, *, n0: int, n: int, noise_choices) -> None:
    """SEGCERTIFY's settings (``--sigma``, ``--tau``, ``--n0``, ``--n``, ``--alpha``, …)."""
    name = "--noise" if len(noise_choices) == 2 else "--smoothing"
    group.add_argument(
        name,
        choices=noise_choices,
        default="gaussian",
        help="smoothing distribution: Gaussian (l2), Laplace (l1) or rotations",
    )
    if name == "--smoothing":
        group.add_argument(
            "--axis",
            choices=("x", "y", "z"),
            default=None,
            help="rotation smoothing about one axis (default: three Euler angles)",
        )
    group.add_argument(
        "--sigma",
        type=float,
        required=True,
        help="noise scale (Gaussian s.d., Laplace scale, or radians)",
    )
    group.add_argument("--tau", type=float, default=0.75, help="SEGCERTIFY threshold in [1/2, 1)")
    group.add_argument("--n0", type=int, default=n0, help="noisy copies to guess the labels")
    group.add_argument("--n", type=int, default=n, help="fresh noisy copies to test the guesses")
    group.add_argument("--alpha", type=float, default=0.001, help="error probability")
    group.add_argument("--method", default="holm", help="FWER method of mtcert.adjust")
    group.add_argument("--k", type=int, default=1, help="k-FWER (error budget k - 1)")
    group.add_argument(
        "--allow-fdr",
        action="store_true",
        help="accept an FDR method (no joint certificate; see docs/torch.md)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="run seed (per-item seeds derive from it)"
    )


def add_run_options(group, *, figures: bool) -> None:
    """Where and how to run (``--out``, ``--device``, batch size, progress)."""
    group.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    group.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    group.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="noisy copies per forward pass (default: automatic)",
    )
    group.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        help="MiB per batch for the automatic batch size",
    )
    if figures:
        group.add_argument(
            "--figures", type=int, default=4, help="Fig.-1 panels for the first N images"
        )
    group.add_argument(
        "--no-base", dest="base", action="store_false", help="skip the base-model row"
    )
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    group.add_argument(
        "--save-counts",
        action="store_true",
        help="also store guess, hits and ground truth per item in OUT/counts.mtcounts, to "
        "re-decide at other tau/alpha/method/k without the model (python -m mtcert recertify)",
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m mtcert_torch`` (``prog``: the name shown in messages)."""
    parser = _Parser(
        prog=prog or _prog(), description=__doc__.split("\n\n")[0], formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "certify",
        formatter_class=_Formatter,
        help="certify a segmentation model on a data set of images (Table 1)",
    )
    add_model_options(c.add_argument_group("model"), image=True)
    d = c.add_argument_group("data")
    d.add_argument("--data", required=True, help="Cityscapes root or folder with images/ labels/")
    d.add_argument(
        "--layout",
        choices=("auto", "cityscapes", "folder"),
        default="auto",
        help="data layout (auto: Cityscapes if leftImg8bit/ exists)",
    )
    d.add_argument("--split", default="val", help="Cityscapes split")
    d.add_argument("--every", type=int, default=1, help="keep every k-th image")
    d.add_argument("--ignore-index", type=int, default=255, help="label of unscored pixels")
    d.add_argument("--limit", type=int, default=None, help="certify the first N images only")
    add_certification_options(
        c.add_argument_group("certification"), n0=10, n=100, noise_choices=("gaussian", "laplace")
    )
    c.add_argument_group("certification").add_argument(
        "--hierarchy",
        default=None,
        help="also certify adaptively within a class hierarchy: 'cityscapes' or a JSON file "
        "(summary rows with CIG and abstain rate, flat and adaptive)",
    )
    run = c.add_argument_group("run")
    add_run_options(run, figures=True)
    run.add_argument(
        "--attack-figures",
        type=int,
        default=0,
        help="attack the first N images with PGD within the certified radius: Fig.-1 panels "
        "(attacked input, truth, base model on it, certified) in figures-attack/",
    )

    p = sub.add_parser(
        "certify-pointcloud",
        formatter_class=_Formatter,
        help="certify a point-cloud part segmenter on ShapeNet-part (Table 2)",
    )
    add_model_options(p.add_argument_group("model"), image=False)
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        required=True,
        help="the shapenetcore_partanno_segmentation_benchmark_v0_normal folder",
    )
    d.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test", "trainval"),
        help="ShapeNet-part split",
    )
    d.add_argument("--categories", nargs="+", default=None, help="category names (default: all)")
    d.add_argument("--npoints", type=int, default=2048, help="points per cloud")
    d.add_argument(
        "--no-normals", dest="normals", action="store_false", help="xyz only (model and data)"
    )
    d.add_argument("--limit", type=int, default=None, help="certify the first N clouds only")
    add_certification_options(
        p.add_argument_group("certification"),
        n0=100,
        n=1000,
        noise_choices=("gaussian", "laplace", "rotation"),
    )
    add_run_options(p.add_argument_group("run"), figures=False)

    r = sub.add_parser(
        "repair",
        formatter_class=_Formatter,
        help="move damaged or repeated records of an output folder aside",
    )
    r.add_argument("--out", required=True, help="the output folder to repair")
    return parser


COMMANDS = {
    "certify": certify_images,
    "certify-pointcloud": certify_pointclouds,
    "repair": repair_results,
}


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())


def main(argv=None) -> int:
    """Run one command; return its exit status (2 for a user error, 130 when interrupted)."""
    parser = build_parser()
    options = vars(parser.parse_args(argv))
    command = options.pop("command")
    try:
        result = COMMANDS[command](**options)
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; finished items are kept in {options['out']} "
            "(rerun the same command to resume)",
            file=sys.stderr,
        )
        return 130
    except (ValueError, OSError) as exc:
        parser.exit(2, f"{parser.prog} {command}: error: {_one_line(exc)}\n")
    if command == "repair":
        print("\n".join(result))
    elif result.rank == 0:
        print((Path(options["out"]) / "summary.md").read_text(), end="")
    return 0
