"""The frames of a counts file: encoding, and reading back with every check.

The format is described in :mod:`mtcert.stored.counts`, whose writer and reader
use this module: :func:`frame` encodes one frame, :func:`scan` reads and checks a
file's frame headers (a torn tail is reported, damage elsewhere refused, every
header checked before anything is allocated from it), :func:`incomplete` says
whether a scanned file is a finished run, and :func:`check_values` refuses
values outside the label space in items written and read alike.

Imports the core's validation only.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtcert.stats.validation import check_positive_int

__all__ = [
    "ARRAYS", "FORMAT", "MAGIC", "MAX_CELLS", "READABLE_VERSIONS", "REQUIRED_SETTINGS",
    "SAMPLINGS", "VERSION", "Entry", "Scan", "check_settings", "check_values", "file_sha256",
    "frame", "incomplete", "item_n", "read_body", "sampling", "scan", "version_for",
]  # fmt: skip

MAGIC = b"MTCOUNTS"
FORMAT = "mtcert-counts"
VERSION = 2
#: The version of files whose items have their own n (a ``sampling`` other than fixed).
PER_ITEM_N_VERSION = 3
#: Versions this module reads (version 1 lacks the closing frame; version 3 adds per-item n).
READABLE_VERSIONS = (1, 2, 3)
#: How the testing samples were drawn (the ``sampling`` setting; absent: ``"fixed"``).
SAMPLINGS = ("fixed", "two-stage", "sequential")
#: Settings every counts file records (see :mod:`mtcert.stored.counts`).
REQUIRED_SETTINGS = ("sigma", "noise", "n0", "n", "seed", "model", "num_classes")
ARRAYS = ("guess", "hits", "target")
#: Largest ``(n + 1) * num_classes``: re-deciding builds one table of hit counts by class
#: per item (256 MiB of int64 at this size); larger settings are refused on writing and reading.
MAX_CELLS = 2**25

_FRAME = struct.Struct("<4sIQII")
_FRAME_MARK = b"MTCF"
# deflate expands at most 1032-fold: a header claiming more raw bytes than that is damaged
_MAX_RATIO = 1032
_CHUNK = 1 << 20


def check_settings(settings) -> dict:
    """The settings of a counts file, checked and as JSON holds them (``ignore_index``
    defaulting to 255); ``ValueError`` (``TypeError`` for a non-mapping) otherwise."""
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping; got {type(settings).__name__}")
    missing = [k for k in REQUIRED_SETTINGS if k not in settings]
    if missing:
        raise ValueError(f"settings lack {', '.join(missing)} (required: {REQUIRED_SETTINGS})")
    out = dict(settings)
    out.setdefault("ignore_index", 255)
    for key in ("n0", "n", "num_classes"):
        out[key] = check_positive_int(out[key], f"settings[{key!r}]")
    cells = (out["n"] + 1) * out["num_classes"]
    if cells > MAX_CELLS:
        raise ValueError(
            f"settings n={out['n']} and num_classes={out['num_classes']} are too large: "
            f"(n + 1) * num_classes = {cells} exceeds {MAX_CELLS}"
        )
    seed = out["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"settings['seed'] must be an integer or None; got {seed!r}")
    sigma = out["sigma"]
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0:
        raise ValueError(f"settings['sigma'] must be a number > 0; got {sigma!r}")
    if not math.isfinite(float(sigma)):
        raise ValueError(f"settings['sigma'] must be finite; got {sigma!r}")
    if out.get("sampling", "fixed") not in SAMPLINGS:
        raise ValueError(
            f"settings['sampling'] must be one of {', '.join(SAMPLINGS)}; got {out['sampling']!r}"
        )
    if not isinstance(out["noise"], str):
        raise ValueError(f"settings['noise'] must be a string; got {out['noise']!r}")
    ignore = out["ignore_index"]
    integral = isinstance(ignore, numbers.Integral) and not isinstance(ignore, bool)
    if ignore is not None and not integral:
        raise ValueError(f"settings['ignore_index'] must be an integer or None; got {ignore!r}")
    if ignore is not None and 0 <= ignore < out["num_classes"]:  # a class would vanish
        raise ValueError(
            f"settings['ignore_index'] {ignore} is a class in [0, {out['num_classes']}): its "
            "components would be left out of every metric"
        )
    try:
        # JSON round trip: what is compared on resumption is what the file holds
        return json.loads(json.dumps(out, sort_keys=True, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings must be JSON-serialisable: {exc}") from None


def sampling(settings: dict) -> str:
    """How the testing samples of a file were drawn (:data:`SAMPLINGS`)."""
    return settings.get("sampling", "fixed")


def version_for(settings: dict) -> int:
    """The format version a file of ``settings`` is written in: 2 at a fixed n (as
    before per-item n existed), 3 with per-item n (older readers refuse it)."""
    return VERSION if sampling(settings) == "fixed" else PER_ITEM_N_VERSION


def item_n(header: dict, settings: dict) -> int:
    """An item's testing samples: its own ``n`` (per-item files), else the run's."""
    return header.get("n", settings["n"])


def check_values(name: str, arrays: dict, settings: dict, n: int | None = None) -> None:
    """Refuse values outside the label space: guess in [0, C), hits in [0, n] (``n``: the
    item's own, default the run's), target a class or ``ignore_index`` (for items added
    and items read back alike)."""
    c, ignore = settings["num_classes"], settings["ignore_index"]
    n = settings["n"] if n is None else n
    for a, lo, hi in (("guess", 0, c - 1), ("hits", 0, n)):
        x = arrays[a]
        if x.min() < lo or x.max() > hi:
            raise ValueError(
                f"{a} must lie in [{lo}, {hi}]; item {name!r} has values in [{x.min()}, {x.max()}]"
            )
    t = arrays["target"]
    bad = (t < 0) | (t >= c)
    if ignore is not None:
        bad &= t != ignore
    if bad.any():
        raise ValueError(
            f"target must lie in [0, {c}) or equal ignore_index={ignore}; "
            f"item {name!r} has {t[bad].flat[0]}"
        )


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


def frame(header: dict, body: bytes = b"") -> bytes:
    """One frame: fixed part, JSON header, body."""
    head = json.dumps(header, sort_keys=True, default=_json_default).encode()
    fixed = _FRAME.pack(_FRAME_MARK, len(head), len(body), zlib.crc32(head), zlib.crc32(body))
    return fixed + head + body


def file_sha256(path: Path, upto: int) -> str:
    """SHA-256 of the first ``upto`` bytes of ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        left = upto
        while left:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """Where one item's frame lies in its file, and its checked header."""

    path: Path
    header: dict
    body_offset: int
    body_length: int
    body_crc: int

    @property
    def name(self) -> str:
        return self.header["name"]

    @property
    def size(self) -> int:
        return math.prod(self.header["shape"])


@dataclass
class Scan:
    """A file's frames as :func:`scan` found them (bodies not read)."""

    settings: dict
    version: int
    items: list
    expected: int | None  # the last expect frame's count
    end: int  # end of the last good frame
    closing: dict | None  # the closing frame's header, when the last good frame is one
    closing_at: int | None  # where the closing frame starts
    torn: bool  # bytes after the last good frame (a write cut short, or damage at the end)


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _item_header(path: Path, pos: int, header: dict, blen: int, settings: dict) -> dict:
    """An item header checked before anything is allocated from it."""
    where = f"{path}: item frame at byte {pos}"
    name, shape, dtypes = header.get("name"), header.get("shape"), header.get("dtypes")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: name must be a non-empty string; got {name!r}")
    where = f"{path}: item {name!r}"
    if not isinstance(shape, list) or not all(_is_count(d) and d > 0 for d in shape):
        raise ValueError(f"{where}: shape must be a list of positive integers; got {shape!r}")
    if not isinstance(dtypes, dict) or sorted(dtypes) != sorted(ARRAYS):
        raise ValueError(f"{where}: dtypes must name {', '.join(ARRAYS)}; got {dtypes!r}")
    itemsize = 0
    for a in ARRAYS:
        try:
            dt = np.dtype(dtypes[a]) if isinstance(dtypes[a], str) else None
        except TypeError:
            dt = None
        if dt is None or dt.kind not in "iu":
            raise ValueError(f"{where}: dtype of {a} must be an integer type; got {dtypes[a]!r}")
        itemsize += dt.itemsize
    raw = math.prod(shape) * itemsize
    if raw > _MAX_RATIO * blen:
        raise ValueError(f"{where}: shape {shape} needs {raw} bytes; its body cannot hold them")
    per_item = sampling(settings) != "fixed"
    n = header.get("n")
    if per_item and not (_is_count(n) and 1 <= n <= settings["n"]):
        raise ValueError(
            f"{where}: n (its testing samples; sampling {sampling(settings)!r}) must be an "
            f"integer in [1, {settings['n']}]; got {n!r}"
        )
    if not per_item and "n" in header:
        raise ValueError(f"{where}: an item n in a file of fixed n = {settings['n']}")
    meta = header.setdefault("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: meta must be a JSON object; got {meta!r}")
    parts, group = meta.get("parts"), meta.get("group")
    if parts is not None and not (
        isinstance(parts, list)
        and len(parts) == 2
        and all(_is_count(p) for p in parts)
        and parts[0] < parts[1] <= settings["num_classes"]
    ):
        raise ValueError(
            f"{where}: meta parts must be a label range [start, stop) within "
            f"[0, {settings['num_classes']}]; got {parts!r}"
        )
    if group is not None and not isinstance(group, str):
        raise ValueError(f"{where}: meta group must be a string; got {group!r}")
    return header


def _settings_header(path: Path, header: dict) -> tuple[dict, int]:
    if header.get("kind") != "settings" or header.get("format") != FORMAT:
        raise ValueError(f"{path}: first frame is not an mtcert-counts settings frame")
    version = header.get("version")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"{path}: format version {version!r} is not supported "
            f"(this is version {VERSION}; readable: {', '.join(map(str, READABLE_VERSIONS))})"
        )
    try:
        settings = check_settings(header.get("settings"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if max(version, VERSION) != version_for(settings):  # version 1: fixed n only, too
        raise ValueError(
            f"{path}: format version {version} does not fit its sampling "
            f"{sampling(settings)!r} (per-item n is version {PER_ITEM_N_VERSION}, fixed n "
            f"version {VERSION} or earlier)"
        )
    return settings, version


def scan(path: Path) -> Scan:
    """Read and check a file's frame headers without decompressing bodies.

    A frame that is cut short or whose CRC fails is accepted as a torn tail
    only when nothing follows it; elsewhere it raises ``ValueError``, as does
    any header that is not what the format says.
    """
    size = path.stat().st_size
    items: list[Entry] = []
    names: set = set()
    settings = version = expected = closing = closing_at = None
    with path.open("rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path} is not an mtcert counts file (bad magic)")
        pos = len(MAGIC)
        while pos < size:
            f.seek(pos)
            fixed = f.read(_FRAME.size)
            if len(fixed) < _FRAME.size:
                damaged = "cut"  # the fixed part itself is incomplete: a torn tail
            else:
                mark, hlen, blen, hcrc, bcrc = _FRAME.unpack(fixed)
                end = pos + _FRAME.size + hlen + blen
                if mark != _FRAME_MARK:
                    damaged = "garbage"
                elif end > size:
                    damaged = "cut"
                else:
                    head = f.read(hlen)
                    damaged = None if zlib.crc32(head) == hcrc else "crc"
                    if damaged is None and end == size:
                        # the last frame: check its body too (a crash may leave zeros)
                        damaged = None if zlib.crc32(f.read(blen)) == bcrc else "crc"
                    if damaged and end < size:
                        raise ValueError(f"{path}: damaged frame at byte {pos}, followed by more")
            if damaged:
                if settings is None:
                    raise ValueError(f"{path}: the settings frame is damaged")
                if damaged == "garbage" and not _nothing_follows(path, pos, size):
                    raise ValueError(f"{path}: damaged frame at byte {pos}, followed by more")
                return Scan(settings, version, items, expected, pos, closing, closing_at, True)
            if closing is not None:
                raise ValueError(f"{path}: a frame at byte {pos} follows the closing frame")
            try:
                header = json.loads(head)
            except (ValueError, RecursionError):  # undecodable, not JSON, absurdly nested
                raise ValueError(f"{path}: the header at byte {pos} is not JSON") from None
            if not isinstance(header, dict):
                raise ValueError(f"{path}: the header at byte {pos} is not a JSON object")
            kind = header.get("kind")
            if settings is None:
                settings, version = _settings_header(path, header)
            elif kind == "item":
                entry = Entry(path, _item_header(path, pos, header, blen, settings),
                               pos + _FRAME.size + hlen, blen, bcrc)  # fmt: skip
                if entry.name in names:
                    raise ValueError(f"{path}: item {entry.name!r} is stored twice")
                names.add(entry.name)
                items.append(entry)
            elif kind == "expect" and _is_count(header.get("items")):
                expected = header["items"]
            elif kind == "end" and _is_count(header.get("items")) and blen == 0:
                closing, closing_at = header, pos
            else:
                raise ValueError(f"{path}: unknown or malformed frame at byte {pos} ({kind!r})")
            pos = end
    if settings is None:
        raise ValueError(f"{path} holds no settings frame")
    return Scan(settings, version, items, expected, pos, closing, closing_at, False)


def _nothing_follows(path: Path, pos: int, size: int) -> bool:
    """Garbage at ``pos`` is a torn tail only if no further frame marker follows it."""
    with path.open("rb") as f:
        f.seek(pos + len(_FRAME_MARK))
        return _FRAME_MARK not in f.read(size - pos - len(_FRAME_MARK))


def incomplete(path: Path, found: Scan) -> str | None:
    """Why ``found`` is not a complete run (None when it is); a damaged closing frame raises."""
    k = len(found.items)
    if found.closing is not None:
        if found.closing["items"] != k or found.closing.get("sha256") != file_sha256(
            path, found.closing_at
        ):
            raise ValueError(
                f"{path} is damaged: its closing frame's item count or checksum does not "
                f"match the {k} items before it"
            )
        if found.torn:
            return (
                f"{path} has {path.stat().st_size - found.end} stray bytes after its closing frame"
            )
        return None
    if found.version == 1:
        return (
            f"{path} was written by format version 1, which does not mark a finished run: "
            f"whether its {k} items are all of the run cannot be checked"
        )
    of = f"{k} of {found.expected} items" if found.expected is not None else f"{k} items"
    return f"{path} is incomplete: {of} and no closing frame (a run in progress or cut short)"


def read_body(entry: Entry) -> bytes:
    """An item's compressed body, CRC-checked."""
    with entry.path.open("rb") as f:
        f.seek(entry.body_offset)
        body = f.read(entry.body_length)
    if zlib.crc32(body) != entry.body_crc:
        raise ValueError(f"{entry.path}: item {entry.name!r} is damaged (CRC mismatch)")
    return body
