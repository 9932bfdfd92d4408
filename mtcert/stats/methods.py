"""The method table: every multiple-testing procedure's canonical name, aliases and family.

One place answers "which methods exist, what is this name's canonical form,
which error rate does it control": :data:`METHODS` (split into
:data:`FWER_METHODS`, :data:`KFWER_METHODS` and :data:`FDR_METHODS`),
:func:`canonical_method` (statsmodels' and scipy's aliases included) and
:func:`resolve_method` (a name and ``k`` to the procedure that runs).  The
integer code of each canonical name, which the kernels take instead of a name,
is in :data:`mtcert._kernels.methods.CODES`.  Imports only the standard library.
"""

from __future__ import annotations

import numbers

__all__ = [
    "FDR_METHODS",
    "FWER_METHODS",
    "KFWER_METHODS",
    "LFDR_ALIASES",
    "METHODS",
    "canonical_method",
    "check_k",
    "resolve_method",
]

FWER_METHODS = ("bonferroni", "sidak", "holm", "holm-sidak", "hochberg", "hommel")
KFWER_METHODS = (
    "generalized-bonferroni",
    "generalized-holm",
    "generalized-hochberg",
    "generalized-sidak",
)
FDR_METHODS = ("fdr_bh", "fdr_by", "fdr_tsbh", "fdr_tsbky", "fdr_gbs")
METHODS = FWER_METHODS + FDR_METHODS + KFWER_METHODS

# statsmodels 0.15 aliases (multitest._alias_list), scipy's
# false_discovery_control names ("bh", "by") and our canonical names.
_ALIASES = {
    **{a: "bonferroni" for a in ("b", "bonf", "bonferroni")},
    **{a: "sidak" for a in ("s", "sidak")},
    **{a: "holm" for a in ("h", "holm")},
    **{a: "holm-sidak" for a in ("hs", "holm-sidak")},
    **{a: "hochberg" for a in ("sh", "simes-hochberg", "hochberg")},
    **{a: "hommel" for a in ("ho", "hommel")},
    **{a: "fdr_bh" for a in ("fdr_bh", "fdr_i", "fdr_p", "fdri", "fdrp", "bh")},
    **{a: "fdr_by" for a in ("fdr_by", "fdr_n", "fdr_c", "fdrn", "fdrcorr", "by")},
    **{a: "fdr_tsbh" for a in ("fdr_tsbh", "fdr_2sbh")},
    **{a: "fdr_tsbky" for a in ("fdr_tsbky", "fdr_2sbky", "fdr_twostage")},
    "fdr_gbs": "fdr_gbs",
    **{name: name for name in KFWER_METHODS},
}
# statsmodels' local-FDR support line: only in multipletests (not a procedure
# with a level, so adjust does not offer it).
LFDR_ALIASES = ("lfdr", "lfdr_sl")


def canonical_method(method: str) -> str:
    """Canonical name of a multiple-testing method, aliases resolved.

    Accepts every name in :data:`METHODS`, statsmodels' aliases (``"h"``,
    ``"hs"``, ``"fdr_i"``, ...) and scipy's ``"bh"`` / ``"by"``
    (:func:`scipy.stats.false_discovery_control`), case-insensitively.  Every
    public function that takes a method resolves it here, once.

    Raises
    ------
    ValueError
        If ``method`` names no method; the message lists the valid names.

    Examples
    --------
    >>> canonical_method("Holm"), canonical_method("h"), canonical_method("bh")
    ('holm', 'holm', 'fdr_bh')
    """
    name = method.lower() if isinstance(method, str) else None
    if name not in _ALIASES:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, METHODS))} "
            f"(or a statsmodels/scipy alias such as 'hs', 'fdr_i', 'bh'); got {method!r}"
        )
    return _ALIASES[name]


def check_k(k: int, method: str) -> int:
    """Validate the k of a k-FWER for the canonical ``method``.

    Any integer ``k >= 1`` is accepted for the k-FWER methods and is applied
    exactly, however large (a family of m < k tests cannot hold k false
    rejections; the kernels take k as a float and never form ``m + k``);
    classical methods require ``k = 1``.

    Raises
    ------
    ValueError
        Naming ``k`` if it is not an integer >= 1, too large for a float, or
        not 1 for a method that is not a k-FWER method.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k}")
    if k != 1 and method not in KFWER_METHODS:
        raise ValueError(
            f"k must be 1 for method {method!r} (k is the k of a k-FWER; use one of "
            f"{', '.join(map(repr, KFWER_METHODS))}); got k={k}"
        )
    try:
        float(k)
    except OverflowError:
        raise ValueError(
            f"k must be below 1.8e308; got an integer with {len(str(k))} digits"
        ) from None
    return k


def resolve_method(method: str, k: int = 1) -> tuple[str, int]:
    """``(canonical_method(method), check_k(k, ...))``: the one entry point for both."""
    method = canonical_method(method)
    return method, check_k(k, method)
