"""Items of a data set, their noise seeds, and the hooks that extend their records.

What every layer above shares about one item of a data set: :class:`Item` (name,
input, target, scoring extras), :class:`Items` (a lazy data set), :func:`item_seed`
(the per-item noise seed that makes results independent of order, sharding and
resumption) and :class:`ItemHook` (the base of evaluation-loop extensions that add
fields to each record and the summary rows those fields make).  Data readers build
items, the hierarchy and figure hooks seed from them, the run loop certifies them.

A base module: it imports only the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Item", "ItemHook", "Items", "item_seed"]


@dataclass(frozen=True)
class Item:
    """One item of a data set.

    Attributes
    ----------
    name : str
        Unique within the data set (records are keyed by it).
    input :
        What the task's ``prepare`` takes (an image; ``(points, category)``).
    target : array_like ``(*components)``
        Ground-truth labels.
    group : str, optional
        For class-averaged metrics (the ShapeNet-part class mIoU: the category).
    parts : (start, stop), optional
        Label range scored by the ShapeNet-part IoU (:func:`mtcert.certify.metrics.part_iou`).
    fields : dict
        Extra record fields (e.g. ``{"category": "Chair"}``).
    """

    name: str
    input: object
    target: object
    group: str | None = None
    parts: tuple[int, int] | None = None
    fields: dict = field(default_factory=dict)


class Items(Sequence):
    """A lazy data set: item names up front, items loaded on access.

    ``Items(names, load)`` with ``load(i) -> Item``; skipping a finished item
    (resumption, sharding) costs nothing.  Plain ``(name, input, target)``
    triples are wrapped by :meth:`from_triples`, anything else by :meth:`of`.
    """

    def __init__(self, names: Sequence[str], load: Callable[[int], Item]):
        self.names = list(names)
        self._load = load

    @classmethod
    def from_triples(cls, data) -> Items:
        """Items of a data set of ``(name, input, target)`` triples (with ``.names`` if lazy)."""
        if hasattr(data, "names") and hasattr(data, "__getitem__"):
            return cls(data.names, lambda i: Item(*data[i]))
        items = [Item(*t) for t in data]
        return cls([it.name for it in items], items.__getitem__)

    @classmethod
    def of(cls, data) -> Items:
        """``data`` as :class:`Items`: items as they are, a sequence of :class:`Item`
        wrapped, anything else read as ``(name, input, target)`` triples."""
        if isinstance(data, Items):
            return data
        if isinstance(data, Sequence) and data and isinstance(data[0], Item):
            return cls([it.name for it in data], data.__getitem__)
        return cls.from_triples(data)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):
        return self._load(i)


def item_seed(seed: int, name: str) -> int:
    """The noise seed of one item: a hash of the run seed and the item's name.

    Examples
    --------
    >>> item_seed(0, "a") == item_seed(0, "a") != item_seed(1, "a")
    True
    """
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class ItemHook:
    """Base of evaluation-loop hooks whose record fields make summary rows of their own.

    A hook is called as ``hook(item, result)`` after each item is certified and
    before its record is written; a returned dict is merged into the record.  A
    plain function is a hook without summary; a subclass of this class also turns
    the fields it adds into summary rows (:meth:`summary_rows`) and table columns
    (:meth:`summary_columns`), so the summary needs to know nothing about them.
    """

    def __call__(self, item: Item, result) -> dict | None:
        """The record fields of one certified item (``result``: the loop's ``ItemResult``)."""
        raise NotImplementedError

    def summary_rows(self, records: Sequence[dict], rows: list[dict], unit: str) -> list[dict]:
        """Summary ``rows`` with what this hook's fields in ``records`` add (default: as they are).

        ``unit`` is the key of the item count column (``"images"``, ``"clouds"``).
        """
        return rows

    def summary_columns(self, rows: Sequence[dict], columns: tuple) -> tuple:
        """Table ``columns`` (``(key, header, format)`` each) with this hook's, where
        ``rows`` carry them (default: as they are)."""
        return columns
