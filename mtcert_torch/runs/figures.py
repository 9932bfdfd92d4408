"""Figures of a run: Fig.-1 panels of certified predictions and of attacks on them.

:func:`save_panels` draws one panel row (input | ground truth | [base model |]
certified labels, abstentions white [| per-pixel radius map]) with the colours of
:func:`run_palette` (Cityscapes' for 19 classes, else tab10 and fixed extras,
:func:`colorize`), and a caption that says what the certificate promises: for this
image alone (its own family), FWER or k-FWER at α (:mod:`mtcert.certify.guarantees`).
Two evaluation-loop hooks draw them: :func:`figure_hook` for the first images of
a run (``figures/``), :func:`attack_figures_hook` for the paper's Fig. 1 under a
PGD attack within the certified radius (``figures-attack/``, with the attack's
numbers in the record).

Imports the core's promise wording, the data layer's palettes, the attacks and the
items (per-item seeds); no other module of :mod:`mtcert_torch.runs`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, PngImagePlugin

from mtcert.certify.guarantees import promise, radii_promise
from mtcert_torch.attacks import attack_certificate
from mtcert_torch.data.images import CITYSCAPES_PALETTE
from mtcert_torch.items import item_seed

__all__ = [
    "TAB10",
    "attack_figures_hook",
    "certificate_caption",
    "colorize",
    "default_palette",
    "figure_hook",
    "radius_map",
    "run_palette",
    "save_panels",
]


def colorize(
    labels: np.ndarray, palette, *, abstain=(255, 255, 255), ignore=(0, 0, 0)
) -> np.ndarray:
    """RGB image of a label map: palette colours, abstain (−1) white, anything else black."""
    labels = np.asarray(labels)
    pal = np.asarray(palette, dtype=np.uint8)
    out = np.empty((*labels.shape, 3), dtype=np.uint8)
    out[...] = ignore
    ok = (labels >= 0) & (labels < len(pal))
    out[ok] = pal[labels[ok]]
    out[labels == -1] = abstain
    return out


#: Qualitative colours (matplotlib's tab10) for the first classes of a generic dataset.
TAB10 = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip


def default_palette(num_classes: int) -> np.ndarray:
    """tab10 colours, then fixed pseudo-random ones (never pure white, the abstain colour)."""
    rng = np.random.default_rng(12345)
    extra = rng.integers(20, 230, size=(max(0, num_classes - len(TAB10)), 3))
    return np.concatenate([np.asarray(TAB10), extra])[:num_classes].astype(np.uint8)


def radius_map(radii: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """RGB image of per-pixel radii: dark blue (small) to yellow (``vmax``), 0 (abstained) white.

    Examples
    --------
    >>> radius_map(np.array([[0.0, 0.5, 1.0]]))[0].tolist()
    [[255, 255, 255], [135, 142, 75], [253, 231, 37]]
    """
    radii = np.asarray(radii, dtype=np.float64)
    top = float(radii.max()) if vmax is None else float(vmax)
    t = np.clip(radii / top, 0.0, 1.0) if top > 0 else np.zeros_like(radii)
    low, high = np.array([17.0, 53.0, 113.0]), np.array([253.0, 231.0, 37.0])
    out = (low + t[..., None] * (high - low) + 0.5).astype(np.uint8)
    out[radii <= 0] = 255
    return out


def save_panels(
    path, image, target, certified, palette, *, base=None, title: str = "", input_title="input",
    radii=None, caption=(),
) -> None:  # fmt: skip
    """Fig.-1-style panel: input | ground truth | [base prediction |] certified (abstain white)
    [| per-pixel radius map (:func:`radius_map`)], with ``title`` and ``caption`` lines below
    (also stored as the PNG's ``Description`` text)."""
    img = (np.clip(np.asarray(image).transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    panels = [(input_title, img), ("ground truth", colorize(target, palette))]
    if base is not None:
        panels.append(("base model", colorize(base, palette)))
    panels.append(("certified (abstain white)", colorize(certified, palette)))
    if radii is not None:
        top = float(np.max(radii))
        panels.append((f"own radius (0..{top:.2f})", radius_map(radii, top)))
    h, w = img.shape[:2]
    scale = max(1, 128 // max(h, 1))  # tiny images are enlarged so the figure is legible
    pad, head, line = 4, 14, 12
    width = len(panels) * (w * scale + pad) + pad
    lines = [wrapped for text in caption for wrapped in textwrap.wrap(text, max(20, width // 6))]
    canvas = Image.new("RGB", (width, h * scale + head + pad + line * len(lines)), "gray")
    draw = ImageDraw.Draw(canvas)
    for i, (name, arr) in enumerate(panels):
        x = pad + i * (w * scale + pad)
        canvas.paste(Image.fromarray(arr).resize((w * scale, h * scale), Image.NEAREST), (x, head))
        draw.text((x, 1), name, fill="white")
    if title:
        draw.text((pad, h * scale + head - 12), title, fill="white")
    for j, text in enumerate(lines):
        draw.text((pad, h * scale + head + pad + j * line - 2), text, fill="white")
    meta = PngImagePlugin.PngInfo()  # the caption, machine-readable too (PNG text chunk)
    meta.add_text("Description", "\n".join([title, *caption]).strip())
    canvas.save(path, pnginfo=meta)


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


def figure_hook(folder, names, palette):
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook: Fig.-1 panels of chosen items.

    For every item whose name is in ``names`` it saves ``folder/<name>.png``
    (:func:`save_panels`: input, ground truth, base model, certified labels)
    titled with the radius and the abstain rate.  ``folder`` is created now.
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
                title=f"R={cert.radius:.3f} abstain={cert.abstain_rate:.1%}",
                radii=cert.radii,
                caption=certificate_caption(cert),
            )

    return hook


def attack_figures_hook(
    certifier, settings, *, names, folder, palette, seed: int = 0, steps: int = 100,
    ignore_index: int = 255,
):  # fmt: skip
    """An :func:`~mtcert_torch.runs.loop.evaluate` hook: the paper's Fig. 1 for chosen items.

    For every item whose name is in ``names`` it runs
    :func:`mtcert_torch.attacks.attack_certificate` on the loop's certificate and
    saves ``folder/<name>.png`` with four panels: the attacked input, the ground
    truth, the base model on the attacked input and the clean input's certified
    labels (abstentions white).  The record gains ``attack_radius``,
    ``attack_certified``, ``attack_flipped``, ``attack_flipped_significant``,
    ``attack_base_acc_clean`` and ``attack_base_acc``.  The attack's random start
    is seeded from ``seed`` and the item's name.
    """
    names = set(names)
    folder = Path(folder)

    def hook(item, result):
        if item.name not in names:
            return None
        g = torch.Generator().manual_seed(item_seed(seed, item.name))
        res = attack_certificate(
            certifier, item.input, result.target, settings, certificate=result.certificate,
            steps=steps, ignore_index=ignore_index, generator=g,
        )  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        save_panels(
            folder / f"{item.name}.png",
            res.adversarial.numpy(),
            result.target,
            res.certified_labels,
            palette,
            base=res.base_attacked,
            title=f"PGD R={res.radius:.3f}: certified changed {res.flipped}/{res.certified}, "
            f"base acc {res.base_acc_clean:.3f}->{res.base_acc_attacked:.3f}",
            input_title="attacked input",
            caption=certificate_caption(result.certificate),
        )
        return {
            "attack_radius": res.radius,
            "attack_certified": res.certified,
            "attack_flipped": res.flipped,
            "attack_flipped_significant": res.flipped_significant,
            "attack_base_acc_clean": res.base_acc_clean,
            "attack_base_acc": res.base_acc_attacked,
        }

    return hook
