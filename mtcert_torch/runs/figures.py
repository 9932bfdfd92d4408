"""Figures of a run: the paper's Fig. 1 for certified predictions and for attacks on them.

:func:`panel_figure` draws one row of panels, (a) input | (b) ground truth |
(c) base model | (d) certified labels with abstentions white, as in the paper's
Fig. 1 [| (e) each pixel's own radius], in the project's style
(:mod:`mtcert.plotting`): a legend of the class colours shown (class names from
:func:`class_names`: Cityscapes' for 19 classes), the abstain colour, and a
caption that says what the certificate promises: for this image alone (its own
family), FWER or k-FWER at α (:mod:`mtcert.certify.guarantees`).
:func:`save_panels` writes it as a 150-dpi PNG with the caption as its
``Description`` text.  Two evaluation-loop hooks draw them: :func:`figure_hook`
for the first images of a run (``figures/``), :func:`attack_figures_hook` for
the paper's Fig. 1 under a PGD attack within the certified radius
(``figures-attack/``): the attacked input, the base model's prediction on it, the
certified labels; the attack's numbers go to the record (:data:`ATTACK_FIELDS`,
also columns of ``per_image.csv``) and to a summary row (:data:`ATTACK_COLUMNS`).

Imports the core's promise wording and binomial interval, the data layer's
palettes and class names, the attacks, the items (per-item seeds, the hook base)
and the settings' keys; no other module of :mod:`mtcert_torch.runs`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtcert.certify.guarantees import promise, radii_promise, scope
from mtcert.plotting import OKABE_ITO, pyplot, save_figure, wrap_title
from mtcert.stats.binomial import clopper_pearson
from mtcert_torch.attacks import attack_certificate
from mtcert_torch.data.images import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from mtcert_torch.items import ItemHook, item_seed
from mtcert_torch.settings import SETTING_KEY, setting_key, setting_name

__all__ = [
    "ATTACK_COLUMNS",
    "ATTACK_FIELDS",
    "CLASS_COLOURS",
    "attack_figures_hook",
    "certificate_caption",
    "class_names",
    "colorize",
    "default_palette",
    "figure_hook",
    "panel_figure",
    "run_palette",
    "save_panels",
]


def colorize(labels: np.ndarray, palette, *, abstain=(255, 255, 255), ignore=(0, 0, 0)):
    """RGB image of a label map: palette colours, abstain (−1) white, anything else black."""
    labels = np.asarray(labels)
    pal = np.asarray(palette, dtype=np.uint8)
    out = np.empty((*labels.shape, 3), dtype=np.uint8)
    out[...] = ignore
    ok = (labels >= 0) & (labels < len(pal))
    out[ok] = pal[labels[ok]]
    out[labels == -1] = abstain
    return out


#: Class colours of a generic dataset: Okabe & Ito's palette without black (the colour
#: of unlabelled pixels), told apart with every common colour-vision deficiency.
CLASS_COLOURS = tuple(
    tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in OKABE_ITO if c != "#000000"
)


def default_palette(num_classes: int) -> np.ndarray:
    """:data:`CLASS_COLOURS`, then fixed pseudo-random ones (never pure white, the abstain
    colour, nor black, the unlabelled one).

    Examples
    --------
    >>> default_palette(2).tolist()
    [[230, 159, 0], [86, 180, 233]]
    """
    rng = np.random.default_rng(12345)
    extra = rng.integers(20, 230, size=(max(0, num_classes - len(CLASS_COLOURS)), 3))
    return np.concatenate([np.asarray(CLASS_COLOURS), extra])[:num_classes].astype(np.uint8)


#: Panel width in inches: panels of a 32-pixel image print at about 13 pixels per pixel.
PANEL_INCHES = 2.8
#: Legend swatches: abstained components (white, as in the paper's Fig. 1) and unlabelled ones.
ABSTAIN_COLOUR, IGNORE_COLOUR = (255, 255, 255), (0, 0, 0)


def class_names(num_classes: int) -> tuple[str, ...]:
    """The class names of a run's legend: Cityscapes' for 19 classes, else ``class <i>``."""
    if num_classes == 19:
        return CITYSCAPES_CLASSES
    return tuple(f"class {i}" for i in range(num_classes))


def _legend_handles(maps, palette, names) -> list:
    """Colour swatches of the classes that occur in ``maps``, then abstain and unlabelled."""
    from matplotlib.patches import Patch

    shown = np.unique(np.concatenate([np.asarray(m).ravel() for m in maps]))
    pal = np.asarray(palette, dtype=float) / 255
    edge = dict(edgecolor="0.4", linewidth=0.6)
    handles = [
        Patch(facecolor=pal[c], label=names[c] if c < len(names) else f"class {c}", **edge)
        for c in shown
        if 0 <= c < len(pal)
    ]
    if (shown == -1).any():
        handles.append(Patch(facecolor=np.divide(ABSTAIN_COLOUR, 255), label="abstain", **edge))
    if ((shown < -1) | (shown >= len(pal))).any():
        handles.append(Patch(facecolor=np.divide(IGNORE_COLOUR, 255), label="unlabelled", **edge))
    return handles


def save_panels(path, image, target, certified, palette, *, title: str = "", caption=(), **kw):
    """Save :func:`panel_figure` to the PNG ``path`` (150 dpi) with ``title`` and ``caption``
    also as its ``Description`` text (:func:`mtcert.plotting.save_figure`)."""
    fig = panel_figure(image, target, certified, palette, title=title, caption=caption, **kw)
    save_figure(fig, path, description="\n".join([title, *caption]).strip())


def panel_figure(
    image, target, certified, palette, *, base=None, title: str = "", caption=(), radii=None,
    names=None, input_title="input", base_title="base model",
    certified_title="certified (abstain white)",
):  # fmt: skip
    """The paper's Fig. 1 for one image: (a) input | (b) ground truth | (c) base | (d) certified.

    The label maps are drawn in ``palette`` (:func:`colorize`: abstained pixels
    white, unlabelled ones black) with a legend of the classes they show, the
    abstain colour and, with ``radii``, a last panel of each pixel's own radius
    (white where abstained) with its colour bar.  ``title`` heads the figure and
    ``caption`` lines head the legend.  Drawn in the project's style
    (:mod:`mtcert.plotting`); :func:`save_panels` saves it.

    Parameters
    ----------
    image : array (3, H, W) in [0, 1]
    target, certified : array (H, W)
        Ground truth and certified labels (``-1``: abstain).
    palette : array (C, 3) of uint8
    base : array (H, W), optional
        The base model's prediction, drawn between the two.
    title : str
    caption : sequence of str
    radii : array (H, W), optional
        Each pixel's own certified radius (0 where abstained).
    names : sequence of str, optional
        Class names of the legend (:func:`class_names` by default).
    input_title, base_title, certified_title : str
        The panels' headings, after their letters (the attack figure names what it
        attacked).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = panel_figure(np.zeros((3, 4, 4)), np.zeros((4, 4), int),
    ...                    np.array([[0, 1, -1, 1]] * 4), default_palette(2))
    >>> [t.get_text() for t in fig.legends[0].get_texts()]
    ['class 0', 'class 1', 'abstain']
    """
    plt = pyplot()
    names = class_names(len(palette)) if names is None else tuple(names)
    img = np.clip(np.asarray(image, dtype=np.float64).transpose(1, 2, 0), 0, 1)
    maps = [("ground truth", target)]
    if base is not None:
        maps.append((base_title, base))
    maps.append((certified_title, certified))
    count = 1 + len(maps) + (radii is not None)
    h, w = img.shape[:2]
    height = PANEL_INCHES * min(h / max(w, 1), 2.0)
    fig, axes = plt.subplots(
        1,
        count,
        figsize=(PANEL_INCHES * count, height + 1.1 + 0.15 * len(caption)),
        layout="constrained",
    )
    panels = [(input_title, img)] + [(t, colorize(m, palette)) for t, m in maps]
    letters = iter("abcde")
    for ax, (name, arr) in zip(axes, panels, strict=False):
        ax.imshow(arr, interpolation="nearest")
        ax.set_title(wrap_title(f"({next(letters)}) {name}", 30), fontsize="medium")
    if radii is not None:
        ax = axes[-1]
        r = np.asarray(radii, dtype=np.float64)
        cmap = plt.get_cmap("viridis").with_extremes(bad="white")
        shown = ax.imshow(np.ma.masked_less_equal(r, 0), cmap=cmap, vmin=0,
                          vmax=max(float(r.max()), 1e-12), interpolation="nearest")  # fmt: skip
        ax.set_title(f"({next(letters)}) own radius (abstain white)", fontsize="medium")
        fig.colorbar(shown, ax=ax, shrink=0.8, label="radius")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = _legend_handles([m for _, m in maps], palette, names)
    text = "\n".join(wrap_title(line, 30 * count) for line in caption)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 2 * count),
               frameon=False, fontsize="small", title=text or None,
               title_fontsize="small")  # fmt: skip
    if title:
        fig.suptitle(wrap_title(title, 30 * count), fontsize="medium")
    return fig


def certificate_caption(cert, family: str = "image") -> list[str]:
    """Caption lines of a figure of one certificate: its promise for this item alone."""
    lines = [
        f"certified labels: this {family} alone is the family, "
        f"{promise(cert.method, cert.alpha, cert.k, family=family)}"
    ]
    if getattr(cert, "radii_certificate", None) is not None:
        lines.append(f"own radii: {radii_promise(cert.alpha, family=family)}")
    return lines


def run_palette(num_classes: int) -> np.ndarray:
    """The colours of a run: Cityscapes' for 19 classes, else :func:`default_palette`."""
    if num_classes == 19:
        return np.asarray(CITYSCAPES_PALETTE, dtype=np.uint8)
    return default_palette(num_classes)


def _settings_text(cert) -> str:
    return f"σ = {cert.sigma:g}, τ = {cert.tau:g}, n0 = {cert.n0}, n = {cert.n}, α = {cert.alpha:g}"


def figure_hook(folder, names, palette, *, class_names=None):
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook: Fig.-1 panels of chosen items.

    For every item whose name is in ``names`` it saves ``folder/<name>.png``
    (:func:`save_panels`: input, ground truth, base model, certified labels,
    with ``--radii`` each pixel's own radius) titled with the settings, the
    radius and the abstain rate.  ``folder`` is created now.
    """
    names = set(names)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def hook(item, result):
        if item.name in names:
            cert = result.certificate
            save_panels(
                folder / f"{item.name}.png",
                item.input.numpy(),
                result.target,
                cert.labels,
                palette,
                base=result.base,
                title=f"{item.name}: certified radius R = {cert.radius:.3f}, "
                f"{cert.abstain_rate:.1%} abstained ({_settings_text(cert)})",
                radii=cert.radii,
                caption=certificate_caption(cert),
                names=class_names,
            )

    return hook


#: The per-image fields an attack adds to a record (and to ``per_image.csv``).
ATTACK_FIELDS = (
    "attack_radius", "attack_perturbation", "attack_certified", "attack_flipped",
    "attack_flipped_significant", "attack_base_acc_clean", "attack_base_acc",
)  # fmt: skip
#: The model column of the summary's attack rows begins with this.
ATTACK_ROW = "PGD attack within R"
#: The attack row's columns of ``summary.md``: (key, header, format).
ATTACK_COLUMNS = (
    ("attack_certified", "attacked certified px", ".0f"),
    ("attack_flipped", "flipped", ".0f"),
    ("attack_flipped_significant", "flipped (sig.)", ".0f"),
    ("attack_flip_ci", "flip rate, 95% CP", None),
    ("attack_base_acc_clean", "base acc. clean", ".3f"),
    ("attack_base_acc", "base acc. attacked", ".3f"),
)  # fmt: skip


class _AttackHook(ItemHook):
    """PGD within the certified radius on chosen items: figures, record fields, a summary row."""

    def __init__(self, certifier, settings, names, folder, palette, seed, steps, ignore_index,
                 class_names):  # fmt: skip
        self.certifier = certifier
        self.settings = settings
        self.names = set(names)
        self.folder = Path(folder)
        self.palette = palette
        self.seed = seed
        self.steps = steps
        self.ignore_index = ignore_index
        self.class_names = class_names

    def __call__(self, item, result):
        if item.name not in self.names:
            return None
        g = torch.Generator().manual_seed(item_seed(self.seed, item.name))
        res = attack_certificate(
            self.certifier, item.input, result.target, self.settings,
            certificate=result.certificate, steps=self.steps, ignore_index=self.ignore_index,
            generator=g,
        )  # fmt: skip
        cert = result.certificate
        norm = {"l2": "ℓ2", "l1": "ℓ1"}.get(res.norm, res.norm)
        self.folder.mkdir(parents=True, exist_ok=True)
        save_panels(
            self.folder / f"{item.name}.png",
            res.adversarial.numpy(),
            result.target,
            res.certified_labels,
            self.palette,
            base=res.base_attacked,
            title=f"{item.name}: PGD ({self.steps} steps) within the certified {norm} radius "
            f"R = {res.radius:.3f} (perturbation {res.perturbation:.3f}); certified pixels "
            f"changed: {res.flipped} of {res.certified}; base model accuracy "
            f"{res.base_acc_clean:.3f} clean, {res.base_acc_attacked:.3f} attacked "
            f"({_settings_text(cert)})",
            caption=certificate_caption(cert),
            names=self.class_names,
            input_title="attacked input",
            base_title="base model on the attacked input",
            certified_title="certified, valid within R (abstain white)",
        )
        values = (
            res.radius, res.perturbation, res.certified, res.flipped, res.flipped_significant,
            res.base_acc_clean, res.base_acc_attacked,
        )  # fmt: skip
        return dict(zip(ATTACK_FIELDS, values, strict=True))

    def summary_rows(self, records, rows, unit):
        groups: dict = {}
        for r in records:
            if "attack_flipped" in r:
                groups.setdefault(setting_key(r), []).append(r)
        out = list(rows)
        for key, recs in groups.items():
            s = dict(zip(SETTING_KEY, key, strict=True))
            certified = sum(r["attack_certified"] for r in recs)
            flipped = sum(r["attack_flipped"] for r in recs)
            valid = sum(r["valid"] for r in recs) or float("nan")
            if certified:
                lo, hi = clopper_pearson(flipped, certified, alpha=0.05)
                ci = f"{flipped / certified:.3g} [{lo:.3g}, {hi:.3g}]"
            else:
                ci = "-"
            out.append({
                "model": f"{ATTACK_ROW} on {setting_name(key)}",
                "sigma": s["sigma"], "radius": recs[0]["attack_radius"],
                "acc": float("nan"), "miou": float("nan"), "inst_miou": float("nan"),
                "class_miou": float("nan"), "abstain": float("nan"), "t": float("nan"),
                unit: len(recs), "attack_certified": certified, "attack_flipped": flipped,
                "attack_flipped_significant": sum(r["attack_flipped_significant"] for r in recs),
                "attack_flip_ci": ci,
                "attack_base_acc_clean": sum(r["attack_base_acc_clean"] * r["valid"]
                                             for r in recs) / valid,
                "attack_base_acc": sum(r["attack_base_acc"] * r["valid"] for r in recs) / valid,
                "guarantee": f"{promise(s['method'], s['alpha'], s['k'])}; {scope()}",
            })  # fmt: skip
        return out

    def summary_columns(self, rows, columns):
        """The attack's columns before the guarantee and the item count, where a row has them."""
        if not any(str(r.get("model", "")).startswith(ATTACK_ROW) for r in rows):
            return columns
        return (*columns[:-1], *ATTACK_COLUMNS, columns[-1])


def attack_figures_hook(
    certifier, settings, *, names, folder, palette, seed: int = 0, steps: int = 100,
    ignore_index: int = 255, class_names=None,
) -> ItemHook:  # fmt: skip
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook: the paper's Fig. 1 for chosen items.

    For every item whose name is in ``names`` it runs
    :func:`mtcert_torch.attacks.attack_certificate` on the loop's certificate and
    saves ``folder/<name>.png`` (:func:`save_panels`) with four panels: the
    attacked input, the ground truth, the base model's prediction on the
    attacked input and the certified labels (abstentions white; the clean
    input's certificate, which holds within the radius the attack stayed in).
    The record gains :data:`ATTACK_FIELDS`: ``attack_radius``,
    ``attack_perturbation`` (the attack's actual norm), ``attack_certified``,
    ``attack_flipped``, ``attack_flipped_significant``,
    ``attack_base_acc_clean`` and ``attack_base_acc``.  The summary gains one
    "PGD attack within R" row per setting with :data:`ATTACK_COLUMNS` (pooled
    over the attacked images: flipped pixels, their rate with its 95 %
    Clopper–Pearson interval, the base model's pixel accuracy clean and
    attacked) and the attacked certificate's guarantee.  The attack's random
    start is seeded from ``seed`` and the item's name.
    """
    return _AttackHook(certifier, settings, names, folder, palette, seed, steps, ignore_index,
                       class_names)  # fmt: skip
