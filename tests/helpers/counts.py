"""Counts files made by hand: a finished run, and crafted files that a reader must refuse.

Every crafted file has right CRCs (and, for the item cases, a right closing frame), so
that what is refused is the nonsense inside: the tests of the reader and of the
commands that read counts files (``recertify``, ``plan --pilot``), and
``benchmarks/integrity_tries.py``, use the same cases.  Plain numpy and the core.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np

from mtcert.stored._frames import frame
from mtcert.stored.counts import MAGIC, CountsWriter

SETTINGS = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0, model="m", num_classes=3)
#: The settings as a file holds them.
FULL = {**SETTINGS, "ignore_index": 255}


def finished_run(path, k: int = 12, seed: int = 0, shape=(3, 4)) -> bytes:
    """Write a finished run of ``k`` random items (``img00``, ...); return its bytes."""
    rng = np.random.default_rng(seed)
    with CountsWriter(path, SETTINGS) as w:
        w.expect(k)
        for i in range(k):
            w.add(f"img{i:02d}", guess=rng.integers(0, 3, shape), hits=rng.integers(0, 101, shape),
                  target=rng.integers(0, 3, shape))  # fmt: skip
    return path.read_bytes()


def raw_frame(head: bytes, body: bytes = b"") -> bytes:
    """A frame of any header bytes, CRCs right."""
    fixed = struct.pack("<4sIQII", b"MTCF", len(head), len(body), zlib.crc32(head),
                        zlib.crc32(body))  # fmt: skip
    return fixed + head + body


def item(name="a", guess=(0,), hits=(1,), target=(0,), dtype="|u1", **changes):
    """An item frame's header and body (``changes`` replace header entries)."""
    arrays = [np.asarray(x, np.dtype(dtype)) for x in (guess, hits, target)]
    header = {
        "kind": "item",
        "name": name,
        "shape": list(arrays[0].shape),
        "meta": {},
        "dtypes": dict.fromkeys(("guess", "hits", "target"), np.dtype(dtype).str),
    }
    header.update(changes)  # fmt: skip
    return header, zlib.compress(b"".join(a.tobytes() for a in arrays))


def craft(path, settings=None, items=(), *, close=True, header=None):
    """A file of hand-made frames (a right closing frame with ``close``)."""
    head = header or {"kind": "settings", "format": "mtcert-counts", "version": 2,
                      "settings": FULL if settings is None else settings}  # fmt: skip
    data = MAGIC + (head if isinstance(head, bytes) else frame(head))
    for h, body in items:
        data += h if isinstance(h, bytes) else frame(h, body)
    if close:
        digest = hashlib.sha256(data).hexdigest()
        data += frame({"kind": "end", "items": len(items), "sha256": digest})
    path.write_bytes(data)
    return path


def _bomb():
    header, _ = item()
    header["shape"] = [2**40, 2**40]
    return header, zlib.compress(b"\0" * 100)


def _settings_frame(**settings):
    return {"kind": "settings", "format": "mtcert-counts", "version": 2, "settings": settings}


#: Crafted item frames: case -> the frames after a good settings frame.
CRAFTED_ITEMS = {
    "body not zlib": [(item()[0], b"not a zlib stream!")],
    "body too short for its shape": [(item(shape=[5])[0], item()[1])],
    "shape 2**40 x 2**40": [_bomb()],
    "shape with a zero": [(item(shape=[0])[0], item()[1])],
    "guess >= num_classes": [item(guess=[3])],
    "hits > n": [item(hits=[101])],
    "target outside": [item(target=[7])],
    "object dtype": [(item(dtypes={"guess": "|O", "hits": "|u1", "target": "|u1"})[0],
                      item()[1])],
    "float dtype": [(item(dtypes={"guess": "<f8", "hits": "|u1", "target": "|u1"})[0],
                     item()[1])],
    "dtypes missing": [(item(dtypes={"guess": "|u1"})[0], item()[1])],
    "name a list": [item(name=["x"])],
    "name missing": [(item(name=None)[0], item()[1])],
    "meta a list": [item(meta=[1])],
    "meta parts nonsense": [item(meta={"parts": [5, 2]})],
    "meta group a number": [item(meta={"group": 7})],
    "item twice": [item(), item()],
    "unknown kind": [({"kind": "extra"}, b"")],
    "header a list": [(raw_frame(b"[1, 2]"), None)],
    "header not json": [(raw_frame(b"{oops"), None)],
    "header not utf-8": [(raw_frame(b'{"kind": "\xff"}'), None)],
    "header nested deep": [(raw_frame(b"[" * 100_000 + b"]" * 100_000), None)],
}  # fmt: skip
#: Crafted settings frames: case -> the settings frame (a dict, or header bytes).
CRAFTED_SETTINGS = {
    "settings missing": {"kind": "settings", "format": "mtcert-counts", "version": 2},
    "settings lack n": _settings_frame(**{k: v for k, v in FULL.items() if k != "n"}),
    "n near 1e12": _settings_frame(**{**FULL, "n": 10**12}),
    "num_classes near 1e13": _settings_frame(**{**FULL, "num_classes": 10**13}),
    "n = 0": _settings_frame(**{**FULL, "n": 0}),
    "settings a string": {"kind": "settings", "format": "mtcert-counts", "version": 2,
                          "settings": "x"},
    "version 3": {"kind": "settings", "format": "mtcert-counts", "version": 3, "settings": FULL},
    "settings header a list": raw_frame(b"[]"),
}  # fmt: skip
#: What the refusal of each case says (its reason, not merely some error).
SAYS = {
    "body not zlib": "not zlib", "body too short for its shape": "bytes its shape",
    "shape 2**40 x 2**40": "body cannot hold", "shape with a zero": "positive integers",
    "guess >= num_classes": r"guess must lie in \[0, 2\]", "hits > n": "hits must lie",
    "target outside": "target must lie", "object dtype": "integer type",
    "float dtype": "integer type", "dtypes missing": "dtypes must name",
    "name a list": "name must be", "name missing": "name must be", "meta a list": "meta must",
    "meta parts nonsense": "meta parts", "meta group a number": "meta group",
    "item twice": "stored twice", "unknown kind": "unknown or malformed frame",
    "header a list": "not a JSON object", "header not json": "not JSON",
    "header not utf-8": "not JSON", "header nested deep": "not JSON",
    "settings missing": "settings must be a mapping", "settings lack n": "settings lack n",
    "n near 1e12": "too large", "num_classes near 1e13": "too large",
    "n = 0": r"settings\['n'\] must be", "settings a string": "settings must be a mapping",
    "version 3": "version 3", "settings header a list": "not a JSON object",
}  # fmt: skip
CRAFTED = [*CRAFTED_ITEMS, *CRAFTED_SETTINGS]


def write_crafted(path, case: str):
    """Write the crafted file of ``case`` (a key of :data:`CRAFTED`) to ``path``."""
    if case in CRAFTED_ITEMS:
        return craft(path, items=CRAFTED_ITEMS[case])
    given = CRAFTED_SETTINGS[case]
    return craft(path, header=given)
