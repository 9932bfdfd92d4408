"""What a certificate promises, in words: its family, its error rate, what does not hold jointly.

Every written result of mtcert and its torch plugin — sweep tables, run
summaries, radius curves, figure captions — takes its wording from here, so
that they all say the same three things the same way:

- **the family**: the components that one multiple-testing procedure treats
  together.  A certify run tests the pixels of *one image* (or the points of
  one point cloud) together; every image is its own family with its own
  certificate.  A row that pools many images therefore promises something
  per image, never "every certified pixel of the row";
- **the error rate**: FWER (the probability of at least one false certified
  component in the family is at most α), k-FWER with its k (the probability
  of k or more is at most α), or FDR, which bounds an expected fraction and
  is no certificate at all;
- **the scope**: each row of a sweep or a summary is its own certificate.
  The rows do not hold jointly, and the row that looks best after the fact
  was picked by a multiple comparison.  Over I images the expected number of
  images with a false certificate is at most α·I.

Imports only the core's method table.

Examples
--------
>>> from mtcert.certify.guarantees import error_rate, promise
>>> error_rate("holm"), error_rate("generalized-holm", 10)
('FWER', 'k-FWER (k=10)')
>>> promise("holm", 0.001)
'per image: P(a false certified pixel) <= 0.001 (FWER)'
"""

from __future__ import annotations

from mtcert.stats.methods import FDR_METHODS, resolve_method

__all__ = ["FAMILIES", "error_rate", "promise", "radii_promise", "row_notes", "scope"]

#: Family word -> (the family, its components), as the written results name them.
FAMILIES = {
    "image": ("image", "pixel"),
    "point cloud": ("point cloud", "point"),
    "item": ("item", "component"),
}


def _family(family: str) -> tuple[str, str]:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(map(repr, FAMILIES))}; got {family!r}")
    return FAMILIES[family]


def error_rate(method: str, k: int = 1) -> str:
    """The error rate a method controls: "FWER", "k-FWER (k=...)" or "FDR (no certificate)".

    A k-FWER method at ``k = 1`` is an FWER method (generalized Holm at k = 1
    is Holm).

    Examples
    --------
    >>> error_rate("bonferroni"), error_rate("generalized-bonferroni", 1), error_rate("fdr_bh")
    ('FWER', 'FWER', 'FDR (no certificate)')
    """
    method, k = resolve_method(method, k)
    if method in FDR_METHODS:
        return "FDR (no certificate)"
    return "FWER" if k == 1 else f"k-FWER (k={k})"


def promise(method: str, alpha: float, k: int = 1, *, family: str = "image") -> str:
    """One line: what a certificate at ``(method, alpha, k)`` promises, per family.

    Parameters
    ----------
    method : str
        A multiple-testing method (any name :func:`mtcert.stats.methods.resolve_method` takes).
    alpha : float
        The level.
    k : int, default 1
        k of the k-FWER methods.
    family : {"image", "point cloud", "item"}
        What one family is.

    Examples
    --------
    >>> promise("generalized-holm", 0.01, 5)
    'per image: P(5 or more false certified pixels) <= 0.01 (k-FWER (k=5))'
    >>> promise("fdr_bh", 0.05, family="point cloud")
    'per point cloud: E[fraction of false certified points] <= 0.05 (FDR (no certificate))'
    """
    noun, part = _family(family)
    rate = error_rate(method, k)
    _, k = resolve_method(method, k)
    if rate.startswith("FDR"):
        event = f"E[fraction of false certified {part}s]"
    elif k == 1:
        event = f"P(a false certified {part})"
    else:
        event = f"P({k} or more false certified {part}s)"
    return f"per {noun}: {event} <= {alpha:g} ({rate})"


def radii_promise(alpha: float, *, family: str = "image") -> str:
    """One line: what a per-component radii certificate (:mod:`mtcert.certify.radii`) promises.

    Examples
    --------
    >>> radii_promise(0.001)
    'per image: P(a pixel certified beyond its radius) <= 0.001 (FWER, all radii jointly)'
    """
    noun, part = _family(family)
    event = f"P(a {part} certified beyond its radius)"
    return f"per {noun}: {event} <= {alpha:g} (FWER, all radii jointly)"


def scope(*, joint_radii: bool = False) -> str:
    """What a row does *not* promise: that it holds jointly with the other rows.

    ``joint_radii``: the row is one radius of a per-component radii
    certificate, which holds jointly over all its radii (but still per family,
    and not jointly with any other row).

    Examples
    --------
    >>> scope()
    'this row alone: rows do not hold jointly'
    """
    if joint_radii:
        return "jointly over all radii of this certificate; not jointly with other rows"
    return "this row alone: rows do not hold jointly"


def row_notes(*, family: str = "image", items: int | None = None) -> list[str]:
    """The notes a written table of certificates carries (one paragraph each).

    Examples
    --------
    >>> notes = row_notes(items=12)
    >>> notes[1].split(";")[0]
    'Over 12 images the expected number of images with a false certificate is at most alpha x 12'
    """
    noun, part = _family(family)
    many = f"{items} {noun}s" if items is not None else f"I {noun}s"
    bound = f"alpha x {items}" if items is not None else "alpha x I"
    return [
        f"Each {noun} is its own family: a row's certificate holds per {noun} (FWER, or "
        f"k-FWER with its k, at the row's alpha), not for all certified {part}s of the row "
        "at once.",
        f"Over {many} the expected number of {noun}s with a false certificate is at most "
        f"{bound}; with k > 1, a false certificate means k or more false {part}s.",
        "Each row is its own certificate: the rows do not hold jointly, and picking the "
        "best-looking row after the fact (lowest tau, highest alpha, largest k) is itself a "
        "multiple comparison that its alpha does not cover.",
    ]
