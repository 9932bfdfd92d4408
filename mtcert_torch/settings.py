"""The options of a certify run, defined once.

Every option of the two certify runs is one :class:`Option` here (keyword, flag,
default, help, and whether it changes results); :data:`IMAGE_OPTIONS` and
:data:`CLOUD_OPTIONS` list what each run takes.  Everything else is derived:

- the command-line flags of ``certify`` and ``certify-pointcloud``
  (:mod:`mtcert_torch.cli.certify`);
- the keyword values of :func:`mtcert_torch.runs.jobs.certify_images` and
  :func:`~mtcert_torch.runs.jobs.certify_pointclouds` (:meth:`Options.resolve`);
- ``config.json``, the resume guard, and with it the settings of stored counts
  (:meth:`Options.config`: every option with ``config=True``);
- SEGCERTIFY's :class:`Settings` (whose fields are the certification options), the
  records' and CSV files' setting columns (:data:`SETTING_FIELDS`) and the summary's
  one row per setting (:func:`setting_key`, :func:`setting_name`).

Adding an option is one :class:`Option` (or one :class:`Settings` field) in the
lists it belongs to, plus its use in the run.

Imports the core's method table, validation and sample limit, the plugin's noise models and the
names of smoothings, axes and data splits (tasks, data); never the run loop or the
command line.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace

from mtcert.certify.segmentation import MAX_N
from mtcert.stats.methods import FDR_METHODS, FWER_METHODS, KFWER_METHODS, resolve_method
from mtcert.stats.validation import check_alpha, check_positive_int, check_tau
from mtcert_torch.adaptive import AdaptiveN
from mtcert_torch.data.shapenet import SPLITS
from mtcert_torch.noise import NOISES, NoiseModel
from mtcert_torch.tasks.adapter import IMAGENET_MEAN, IMAGENET_STD
from mtcert_torch.tasks.pointcloud import AXES, SMOOTHINGS

__all__ = [
    "CLOUD_OPTIONS",
    "IMAGE_OPTIONS",
    "REQUIRED",
    "SETTING_FIELDS",
    "SETTING_KEY",
    "Option",
    "Options",
    "Settings",
    "setting_key",
    "setting_name",
    "setting_sigma",
]


#: ``--method`` help: the valid names, by the kind of error they control.
_METHOD_HELP = (
    f"multiple-testing method: FWER {', '.join(FWER_METHODS)}; k-FWER (with --k) "
    f"{', '.join(KFWER_METHODS)}; FDR (with --allow-fdr) {', '.join(FDR_METHODS)}"
)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an option that must be given.
REQUIRED = _Required()


@dataclass(frozen=True)
class Settings:
    """SEGCERTIFY settings of a run (paper Algorithm 2).

    Each field is a certification option of both certify runs (its ``help`` in
    the field's metadata), one part of the summary's setting key, and a
    keyword of :meth:`mtcert_torch.Certifier.certify` (:meth:`kwargs`).
    """

    sigma: float = field(
        metadata={"help": "noise scale: Gaussian s.d. or Laplace scale (rotations: radians)"}
    )
    tau: float = field(default=0.75, metadata={"help": "SEGCERTIFY threshold in [1/2, 1)"})
    n0: int = field(default=10, metadata={"help": "noisy copies to guess the labels"})
    n: int = field(default=100, metadata={"help": "fresh noisy copies to test the guesses"})
    alpha: float = field(default=0.001, metadata={"help": "error probability"})
    method: str = field(default="holm", metadata={"help": _METHOD_HELP})
    k: int = field(default=1, metadata={"help": "k of the generalized-* methods: up to k - 1 "
                                        "false certified components allowed per item at "
                                        "alpha (1: FWER)"})  # fmt: skip
    adaptive_n: str | None = field(
        default=None,
        metadata={
            "help": "per-item number of testing copies instead of a fixed n: "
            "'two-stage:pilot=16,max=1000[,target=0.9]' (n planned from fresh pilot copies) "
            "or 'sequential:max=1000[,looks=8,bound=mixture]' (anytime-valid early stop); "
            "see the guide 'Fewer forward passes'"
        },
    )

    def validate(self, noise: str = "gaussian") -> Settings:
        """Check every value before any output is written (σ by the noise model)."""
        NoiseModel(noise, self.sigma)
        check_positive_int(self.n0, "n0")
        check_tau(self.tau)
        check_alpha(self.alpha)
        check_positive_int(self.n, "n", maximum=MAX_N)
        self.canonical_method()
        if self.adaptive_n is not None:
            AdaptiveN.parse(self.adaptive_n).check_method(self.method, self.k)
        return self

    def canonical_method(self) -> str:
        """The FWER method's canonical name (aliases resolved, ``k`` checked, by the
        core's method table)."""
        return resolve_method(self.method, self.k)[0]

    def kwargs(self) -> dict:
        """The settings as keywords (field order), as :meth:`mtcert_torch.Certifier.certify`
        takes them."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, values) -> Settings:
        """The settings among resolved run options (:meth:`Options.resolve`)."""
        return cls(**{f.name: getattr(values, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Option:
    """One option of a certify run: keyword, ``config.json`` key and command-line flag.

    Attributes
    ----------
    name : str
        Keyword of the run function, key in ``config.json``.
    help : str
        One line for ``--help`` (a switch that is on by default: what its
        ``--no-`` flag does).
    default :
        :data:`REQUIRED` if the option must be given.
    type : {str, int, float, dict, bool}
        Of one value: ``dict`` is a JSON object, ``bool`` a switch (off by
        default: ``--name``; on: ``--no-name``; None: both).
    many : {None, ",", "+"}
        A comma-separated list, or one or more words.
    choices : tuple, optional
    flag : str, optional
        The flag when it is not ``--name`` with dashes.
    group : str
        The ``--help`` section: model, data, certification or run.
    config : bool
        The option changes results: ``config.json`` records it and a resumed
        run must match it.
    path : bool
        ``config.json`` records the resolved path.
    """

    name: str
    help: str
    default: object = REQUIRED
    type: type = str
    many: str | None = None
    choices: tuple | None = None
    flag: str | None = None
    group: str = "run"
    config: bool = False
    path: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def cli_flag(self) -> str:
        """The command-line flag."""
        if self.flag is not None:
            return self.flag
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.type is bool and self.default is True else f"--{dashed}"

    def but(self, **changes) -> Option:
        """This option with some attributes changed (another run's default or help)."""
        return dataclasses.replace(self, **changes)

    def recorded(self, value):
        """``value`` as ``config.json`` records it."""
        return str(Path(value).resolve()) if self.path and value is not None else value


class Options(tuple):
    """The options of one run, in ``--help`` order."""

    def resolve(self, given: Mapping) -> SimpleNamespace:
        """The run's values: ``given`` keywords, defaults for the rest.

        Raises TypeError for an unknown or a missing required keyword, as a
        function call would.
        """
        names = [o.name for o in self]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        missing = [o.name for o in self if o.required and o.name not in given]
        if missing:
            raise TypeError(f"missing required keyword argument(s): {', '.join(missing)}")
        return SimpleNamespace(**{o.name: given.get(o.name, o.default) for o in self})

    def config(self, values: SimpleNamespace, **derived) -> dict:
        """``config.json``: every option that changes results, as recorded.

        ``derived`` replaces values the run works out itself (the detected
        layout, the data set's number of classes, …).
        """
        recorded = {o.name: o for o in self if o.config}
        stray = sorted(set(derived) - set(recorded))
        if stray:  # a programming error, not a user's
            raise TypeError(f"not recorded options of this run: {', '.join(stray)}")
        return {
            name: o.recorded(derived[name] if name in derived else getattr(values, name))
            for name, o in recorded.items()
        }


def _value_type(hint) -> type:
    """The type of one value of a field hinted ``hint`` (an optional ``X | None``: X)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _segcertify_options(helps: Mapping | None = None, **defaults) -> tuple[Option, ...]:
    """The :class:`Settings` fields as certification options (``helps`` and ``defaults``: a
    run's own)."""
    hints = typing.get_type_hints(Settings)
    return tuple(
        Option(
            f.name,
            (helps or {}).get(f.name, f.metadata["help"]),
            defaults.get(f.name, REQUIRED if f.default is dataclasses.MISSING else f.default),
            _value_type(hints[f.name]),
            group="certification",
            config=True,
        )
        for f in fields(Settings)
    )


# -- the options --------------------------------------------------------------------------
MODEL = Option("model", "registry name or module.path:callable", group="model", config=True)
MODEL_KWARGS = Option("model_kwargs", "JSON keyword arguments of the model callable, e.g. "
                      "'{\"width\": 16}' for mtcert_torch.data.synthetic:TinySegNet", {}, dict,
                      group="model", config=True)  # fmt: skip
CHECKPOINT = Option("checkpoint", "state dict to load strictly (weights only)", None,
                    group="model", config=True, path=True)  # fmt: skip
NUM_CLASSES = Option("num_classes", "number of classes (default: the data set's, 19 for "
                     "Cityscapes)", None, int, group="model", config=True)  # fmt: skip
SCALES = Option("scales", "input scale(s), comma separated; several are averaged", (1.0,), float,
                many=",", flag="--scale", group="model", config=True)  # fmt: skip
FLIP = Option("flip", "average with horizontal flips", False, bool, group="model", config=True)
ALIGN_CORNERS = Option("align_corners", "bilinear resizes in the adapter and, for registry "
                       "models, inside the network (default: the model's own align_corners, "
                       "else off)", None, bool, group="model", config=True)  # fmt: skip
MEAN = Option("mean", "per-channel mean subtracted after the noise", IMAGENET_MEAN, float,
              many=",", group="model", config=True)  # fmt: skip
STD = Option("std", "per-channel std divided by after the noise", IMAGENET_STD, float, many=",",
             group="model", config=True)  # fmt: skip
AUTOCAST = Option("autocast", "run the network in reduced precision", None,
                  choices=("bf16", "fp16"), group="model", config=True)  # fmt: skip
CHANNELS_LAST = Option("channels_last", "run the network in channels_last memory format (often "
                       "faster on GPUs; off unless given)", None, bool, group="model",
                       config=True)  # fmt: skip
COMPILE = Option("compile", "torch.compile the network with this backend (e.g. inductor); the "
                 "first call compiles, and the first item's time includes it", None, group="model",
                 config=True)  # fmt: skip
VOTES = Option("votes", "forward passes averaged per call", 3, int, group="model", config=True)

DATA = Option("data", "the data set", group="data", config=True, path=True)
LAYOUT = Option("layout", "data layout (auto: Cityscapes if leftImg8bit/ exists)", "auto",
                choices=("auto", "cityscapes", "folder"), group="data", config=True)  # fmt: skip
SPLIT = Option("split", "Cityscapes split", "val", group="data", config=True)
EVERY = Option("every", "keep every k-th image", 1, int, group="data", config=True)
IGNORE_INDEX = Option("ignore_index", "label of unscored pixels", 255, int, group="data",
                      config=True)  # fmt: skip
LIMIT = Option("limit", "certify the first N images only", None, int, group="data")
CATEGORIES = Option("categories", "category names (default: all)", None, many="+", group="data",
                    config=True)  # fmt: skip
NPOINTS = Option("npoints", "points per cloud", 2048, int, group="data", config=True)
NORMALS = Option("normals", "xyz only (model and data)", True, bool, group="data", config=True)

NOISE = Option("noise", "smoothing distribution: Gaussian (l2) or Laplace (l1)", "gaussian",
               choices=NOISES, group="certification", config=True)  # fmt: skip
SMOOTHING = Option("smoothing", "smoothing distribution: Gaussian (l2), Laplace (l1) or "
                   "rotations", "gaussian", choices=SMOOTHINGS, group="certification",
                   config=True)  # fmt: skip
AXIS = Option("axis", "rotation smoothing about one axis (default: three Euler angles)", None,
              choices=tuple(AXES), group="certification", config=True)  # fmt: skip
ALLOW_FDR = Option("allow_fdr", "accept an FDR method (no joint certificate; see docs/torch.md)",
                   False, bool, group="certification")  # fmt: skip
RADII = Option("radii", "also certify every pixel's (point's) own radius from the same counts, "
               "jointly over the item at alpha (mtcert.certify.radii): summary rows at a few "
               "radii from this one certificate, radius maps in the figures", False, bool,
               group="certification", config=True)  # fmt: skip
SEED = Option("seed", "run seed (per-item seeds derive from it)", 0, int, group="certification",
              config=True)  # fmt: skip
HIERARCHY = Option("hierarchy", "also certify adaptively within a class hierarchy: 'cityscapes' "
                   "or a JSON file (summary rows with CIG and abstain rate, flat and adaptive)",
                   None, group="certification", config=True)  # fmt: skip

OUT = Option("out", "output folder (resumed if it exists; under torchrun a {rank} in it "
             "becomes each process's rank)")  # fmt: skip
DEVICE = Option("device", "torch device, e.g. cpu, cuda, cuda:1", "cpu")
BATCH_SIZE = Option("batch_size", "noisy copies per forward pass (default: automatic)", None, int)
MEMORY_BUDGET = Option("memory_budget", "MiB per batch for the automatic batch size", None, float)
FIGURES = Option("figures", "Fig.-1 panels for the first N images", 4, int)
BASE = Option("base", "skip the base-model row", True, bool)
PROGRESS = Option("progress", "no progress bar", True, bool)
SAVE_COUNTS = Option("save_counts", "also store guess, hits and ground truth per item in "
                     "OUT/counts.mtcounts, to re-decide at other tau/alpha/method/k without the "
                     "model (python -m mtcert recertify)", False, bool)  # fmt: skip
ATTACK_FIGURES = Option("attack_figures", "attack the first N images with PGD within the "
                        "certified radius: Fig.-1 panels (attacked input, truth, base model on "
                        "it, certified) in figures-attack/", 0, int)  # fmt: skip

#: ``certify``: a segmentation model on a folder of images.
IMAGE_OPTIONS = Options((
    MODEL, MODEL_KWARGS, CHECKPOINT, NUM_CLASSES, SCALES, FLIP, ALIGN_CORNERS, MEAN, STD, AUTOCAST,
    CHANNELS_LAST, COMPILE,
    DATA.but(help="Cityscapes root or folder with images/ labels/"), LAYOUT, SPLIT, EVERY,
    IGNORE_INDEX, LIMIT,
    NOISE, *_segcertify_options({"sigma": "noise scale in pixel units of [0, 1] images, "
                                 "before --mean/--std: Gaussian s.d. or Laplace scale"}),
    ALLOW_FDR, RADII, SEED, HIERARCHY,
    OUT, DEVICE, BATCH_SIZE, MEMORY_BUDGET, FIGURES, BASE, PROGRESS, SAVE_COUNTS, ATTACK_FIGURES,
))  # fmt: skip
#: ``certify-pointcloud``: a part segmenter on ShapeNet-part clouds.
CLOUD_OPTIONS = Options((
    MODEL.but(default="pointnet2_part_seg_msg",
              help="registry name or module.path:callable returning a PointNet2PartSegMsg"),
    MODEL_KWARGS.but(help="JSON keyword arguments of the model callable, e.g. "
                     "'{\"npoints\": [256, 64]}' (centres sampled by the two set-abstraction "
                     "layers of PointNet++)"),
    CHECKPOINT, VOTES,
    DATA.but(help="the shapenetcore_partanno_segmentation_benchmark_v0_normal folder"),
    SPLIT.but(default="test", choices=SPLITS, help="ShapeNet-part split"), CATEGORIES, NPOINTS,
    NORMALS, LIMIT.but(help="certify the first N clouds only"),
    SMOOTHING, AXIS,
    *_segcertify_options({"sigma": "noise scale: Gaussian s.d. or Laplace scale in the "
                          "clouds' coordinates; with --smoothing rotation, of the angles in "
                          "radians"}, n0=100, n=1000),
    ALLOW_FDR, RADII, SEED,
    OUT, DEVICE, BATCH_SIZE, MEMORY_BUDGET, BASE, PROGRESS, SAVE_COUNTS,
))  # fmt: skip


# -- the summary's settings -----------------------------------------------------------------
#: The :class:`Settings` fields, in order (record keys and CSV columns of every run).
SETTING_FIELDS = tuple(f.name for f in fields(Settings))
#: Record keys that make one summary row: the smoothing and every :class:`Settings` field.
SETTING_KEY = ("noise", *SETTING_FIELDS)

#: How the summary's model column names a setting: one part per key, in this order (σ has a
#: column of its own; ``k`` shows only when it is not 1).  Keys not named here follow as
#: ``key=value``.
_NAME_PARTS = {
    "method": "{}", "k": "k={}", "noise": "{}", "n0": "n0={}", "n": "n={}", "tau": "tau={:g}",
    "alpha": "alpha={:g}",
}  # fmt: skip


#: Setting keys that records written before the option existed lack (their default).
_OPTIONAL_KEYS = {"adaptive_n": None}


def setting_key(record: Mapping) -> tuple:
    """The values of :data:`SETTING_KEY` in a record: one summary row each."""
    return tuple(
        record.get(k, _OPTIONAL_KEYS[k]) if k in _OPTIONAL_KEYS else record[k] for k in SETTING_KEY
    )


def setting_name(key: Iterable, algorithm: str = "SegCertify") -> str:
    """The summary's model column for a :func:`setting_key`.

    Examples
    --------
    >>> setting_name(("gaussian", 0.25, 0.75, 10, 100, 0.001, "holm", 1, None))
    'SegCertify holm gaussian n0=10 n=100 tau=0.75 alpha=0.001'
    >>> setting_name(("gaussian", 0.25, 0.75, 10, 100, 0.001, "holm", 1, "sequential:max=200"))
    'SegCertify holm gaussian n0=10 n=100 tau=0.75 alpha=0.001 adaptive_n=sequential:max=200'
    """
    values = dict(zip(SETTING_KEY, key, strict=True))
    parts = [algorithm]
    for name, fmt in _NAME_PARTS.items():
        if name != "k" or values[name] != 1:
            parts.append(fmt.format(values[name]))
    parts += [
        f"{k}={v}"
        for k, v in values.items()
        if k not in _NAME_PARTS and k != "sigma" and not (k in _OPTIONAL_KEYS and v is None)
    ]
    return " ".join(parts)


def setting_sigma(key: Iterable) -> float:
    """The σ of a :func:`setting_key` (the summary's σ column)."""
    return dict(zip(SETTING_KEY, key, strict=True))["sigma"]
