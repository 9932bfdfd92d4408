"""Stored counts: what SEGCERTIFY's decisions need, kept once per certify run.

The expensive part of certification is the ``n0 + n`` forward passes per item;
everything after them is decided from three arrays per item: the label
guessed from the ``n0`` guessing samples per component, its hit count among
the ``n`` *independent* testing samples, and the ground truth.  A counts file
keeps exactly these, item by item, together with the settings of the run, so
that :func:`mtcert.stored.recertification.recertify` can re-decide at any τ, α, method or k
without the model.  The guessing samples themselves are not stored and never
enter the test.

File format (version 1)
-----------------------
All integers are little-endian.  A file is the 8-byte magic ``b"MTCOUNTS"``
followed by *frames*::

    frame  := b"MTCF"                    4 bytes, frame marker
              header_length   uint32     bytes of the JSON header
              body_length     uint64     bytes of the compressed body
              header_crc32    uint32     zlib.crc32 of the header bytes
              body_crc32      uint32     zlib.crc32 of the body bytes
              header          UTF-8 JSON object
              body            zlib stream (empty for the settings frame)

The first frame is the settings frame, header
``{"kind": "settings", "format": "mtcert-counts", "version": 1, "settings": {...}}``.
Its ``settings`` must hold ``sigma`` (float), ``noise`` (str), ``n0`` and ``n``
(int), ``seed`` (int), ``model`` (any JSON value identifying the model, e.g.
its import path and checkpoint hash) and ``num_classes`` (int); ``ignore_index``
(int or null, default 255) and further JSON entries (scales, flip, ...) are
kept and compared on resumption like the others.

Every further frame is one item, header
``{"kind": "item", "name": str, "shape": [...], "dtypes": {"guess": "|u1", ...},
"meta": {...}}``; its body is the zlib-compressed concatenation of the raw
C-order bytes of ``guess``, ``hits`` and ``target`` (in that order, the dtypes
as numpy ``dtype.str``).  Each array is stored in the narrowest integer type
that holds its values (``uint8`` for up to 255 classes and ``n <= 255``).

Durability: the settings frame is written to a temporary file that is renamed
into place; each item frame is appended with one ``write`` and flushed to disk
(``fsync``), so a killed run loses at most the item in flight.  Re-opening a
file for writing drops a torn last frame, refuses different settings and
appends.  A damaged frame anywhere but at the end is an error, never skipped.

Under ``torch.distributed`` each rank writes its own file; :func:`read_counts`
reads several files of one run together.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtcert.stats.validation import check_positive_int

__all__ = ["CountsItem", "CountsWriter", "StoredCounts", "read_counts"]

MAGIC = b"MTCOUNTS"
FORMAT = "mtcert-counts"
VERSION = 1
#: Conventional file-name suffix (not enforced).
SUFFIX = ".mtcounts"
#: Settings every counts file records (see the module docstring).
REQUIRED_SETTINGS = ("sigma", "noise", "n0", "n", "seed", "model", "num_classes")
ARRAYS = ("guess", "hits", "target")

_FRAME = struct.Struct("<4sIQII")
_FRAME_MARK = b"MTCF"


def _narrowest(lo: int, hi: int) -> np.dtype:
    """Smallest integer dtype holding every value in [lo, hi] (unsigned when lo >= 0)."""
    kinds = "uint" if lo >= 0 else "int"
    for bits in (8, 16, 32, 64):
        dt = np.dtype(f"{kinds}{bits}")
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    raise ValueError(f"values in [{lo}, {hi}] do not fit a 64-bit integer")


def _integer_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array; got dtype {arr.dtype}")
    return arr


def _check_settings(settings) -> dict:
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping; got {type(settings).__name__}")
    missing = [k for k in REQUIRED_SETTINGS if k not in settings]
    if missing:
        raise ValueError(f"settings lack {', '.join(missing)} (required: {REQUIRED_SETTINGS})")
    out = dict(settings)
    out.setdefault("ignore_index", 255)
    for key in ("n0", "n", "num_classes"):
        out[key] = check_positive_int(out[key], f"settings[{key!r}]")
    seed = out["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"settings['seed'] must be an integer or None; got {seed!r}")
    sigma = out["sigma"]
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0:
        raise ValueError(f"settings['sigma'] must be a number > 0; got {sigma!r}")
    if not math.isfinite(float(sigma)):
        raise ValueError(f"settings['sigma'] must be finite; got {sigma!r}")
    if not isinstance(out["noise"], str):
        raise ValueError(f"settings['noise'] must be a string; got {out['noise']!r}")
    ignore = out["ignore_index"]
    integral = isinstance(ignore, numbers.Integral) and not isinstance(ignore, bool)
    if ignore is not None and not integral:
        raise ValueError(f"settings['ignore_index'] must be an integer or None; got {ignore!r}")
    try:
        # JSON round trip: what is compared on resumption is what the file holds
        return json.loads(json.dumps(out, sort_keys=True, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings must be JSON-serialisable: {exc}") from None


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


def _frame(header: dict, body: bytes = b"") -> bytes:
    head = json.dumps(header, sort_keys=True, default=_json_default).encode()
    fixed = _FRAME.pack(_FRAME_MARK, len(head), len(body), zlib.crc32(head), zlib.crc32(body))
    return fixed + head + body


@dataclass(frozen=True)
class _Entry:
    """Where one item's frame lies in its file."""

    path: Path
    header: dict
    body_offset: int
    body_length: int
    body_crc: int


def _scan(path: Path) -> tuple[dict, list[_Entry], int, bool]:
    """Read a file's frames without decompressing bodies.

    Returns ``(settings, items, end_of_last_good_frame, torn_tail)``.  A frame
    that is cut short or whose CRC fails is accepted as a torn tail only when
    nothing follows it; elsewhere it raises ``ValueError``.
    """
    size = path.stat().st_size
    items: list[_Entry] = []
    settings = None
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
                return settings, items, pos, True
            header = json.loads(head)
            if settings is None:
                if header.get("kind") != "settings" or header.get("format") != FORMAT:
                    raise ValueError(f"{path}: first frame is not an mtcert-counts settings frame")
                if header.get("version") != VERSION:
                    raise ValueError(
                        f"{path}: format version {header.get('version')!r} is not supported "
                        f"(this is version {VERSION})"
                    )
                settings = header["settings"]
            elif header.get("kind") == "item":
                items.append(_Entry(path, header, pos + _FRAME.size + hlen, blen, bcrc))
            else:
                raise ValueError(f"{path}: unknown frame kind {header.get('kind')!r}")
            pos = end
    if settings is None:
        raise ValueError(f"{path} holds no settings frame")
    return settings, items, pos, False


def _nothing_follows(path: Path, pos: int, size: int) -> bool:
    """Garbage at ``pos`` is a torn tail only if no further frame marker follows it."""
    with path.open("rb") as f:
        f.seek(pos + len(_FRAME_MARK))
        return _FRAME_MARK not in f.read(size - pos - len(_FRAME_MARK))


def _settings_diff(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} vs {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


class CountsWriter:
    """Append items to a counts file, creating it or resuming it (see module docstring).

    Parameters
    ----------
    path : str or Path
        The counts file (conventionally ``*.mtcounts``).
    settings : mapping
        The run's settings: ``sigma``, ``noise``, ``n0``, ``n``, ``seed``,
        ``model``, ``num_classes`` are required, ``ignore_index`` defaults to
        255; any further JSON-serialisable entries are stored too.  Re-opening
        an existing file with different settings raises ``ValueError``.
    compresslevel : int, default 6
        zlib level (0-9) of the item bodies.
    fsync : bool, default True
        Force every item to disk before :meth:`add` returns.

    Attributes
    ----------
    stored_names : set of str
        Names of the items already in the file (skip them when resuming).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.mtcounts"
    >>> settings = {"sigma": 0.25, "noise": "gaussian", "n0": 10, "n": 100, "seed": 0,
    ...             "model": "my_net.pt sha256:0f3a", "num_classes": 3}
    >>> with CountsWriter(path, settings) as w:
    ...     w.add("img0", guess=[[0, 2]], hits=[[100, 61]], target=[[0, 1]])
    >>> with CountsWriter(path, settings) as w:  # resumes
    ...     sorted(w.stored_names)
    ['img0']
    """

    def __init__(self, path, settings: Mapping, *, compresslevel: int = 6, fsync: bool = True):
        self.path = Path(path)
        self.settings = _check_settings(settings)
        if isinstance(compresslevel, bool) or compresslevel not in range(10):
            raise ValueError(f"compresslevel must be an integer in 0..9; got {compresslevel!r}")
        self.compresslevel = compresslevel
        self.fsync = bool(fsync)
        if self.path.exists():
            old, entries, end, torn = _scan(self.path)
            diff = _settings_diff(old, self.settings)
            if diff:
                raise ValueError(
                    f"{self.path} holds counts of a run with different settings "
                    f"({'; '.join(diff)}); choose another file"
                )
            if torn:  # a write cut short: drop it, the item is redone
                os.truncate(self.path, end)
            self.stored_names = {e.header["name"] for e in entries}
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = {"kind": "settings", "format": FORMAT, "version": VERSION}
            header["settings"] = self.settings
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("wb") as f:
                f.write(MAGIC + _frame(header))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.stored_names = set()
        self._file = self.path.open("ab")

    def add(self, name: str, *, guess, hits, target, meta: Mapping | None = None) -> None:
        """Append one item and (with ``fsync``) force it to disk.

        The arrays must be on the host (numpy arrays or CPU tensors).

        Parameters
        ----------
        name : str
            Unique item name (the resume key).
        guess : array_like of int
            Guessed label per component, in ``[0, num_classes)``.
        hits : array_like of int
            Hits of the guess among the ``n`` testing samples, in ``[0, n]``;
            same shape as ``guess``.
        target : array_like of int
            Ground truth, in ``[0, num_classes)`` or ``ignore_index``; same shape.
        meta : mapping, optional
            JSON-serialisable extras (e.g. a point cloud's object category).
        """
        if self._file.closed:
            raise ValueError(f"{self.path}: the writer is closed")
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string; got {name!r}")
        if name in self.stored_names:
            raise ValueError(f"{self.path} already holds an item named {name!r}")
        given = (guess, hits, target)
        arrays = {a: _integer_array(x, a) for a, x in zip(ARRAYS, given, strict=True)}
        shape = arrays["guess"].shape
        for a in ARRAYS[1:]:
            if arrays[a].shape != shape:
                raise ValueError(
                    f"guess, hits and target must have the same shape; got {shape} "
                    f"and {arrays[a].shape} for {a}"
                )
        if arrays["guess"].size == 0:
            raise ValueError(f"item {name!r} has no components")
        s = self.settings
        c, n, ignore = s["num_classes"], s["n"], s["ignore_index"]
        for a, lo, hi in (("guess", 0, c - 1), ("hits", 0, n)):
            x = arrays[a]
            if x.min() < lo or x.max() > hi:
                raise ValueError(
                    f"{a} must lie in [{lo}, {hi}]; item {name!r} has values in "
                    f"[{x.min()}, {x.max()}]"
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
        bounds = {"guess": (0, c - 1), "hits": (0, n), "target": (int(t.min()), int(t.max()))}
        body, dtypes = [], {}
        for a in ARRAYS:
            dt = _narrowest(*bounds[a]).newbyteorder("<")
            body.append(np.ascontiguousarray(arrays[a], dtype=dt).tobytes())
            dtypes[a] = dt.str
        header = {"kind": "item", "name": name, "shape": list(shape), "dtypes": dtypes}
        header["meta"] = dict(meta) if meta is not None else {}
        frame = _frame(header, zlib.compress(b"".join(body), self.compresslevel))
        self._file.write(frame)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.stored_names.add(name)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CountsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CountsWriter({str(self.path)!r}, items={len(self.stored_names)})"


@dataclass(frozen=True, eq=False)
class CountsItem:
    """One stored item: guess, hits and ground truth per component."""

    name: str
    guess: np.ndarray
    hits: np.ndarray
    target: np.ndarray
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CountsItem({self.name!r}, shape={self.guess.shape})"


def _load(entry: _Entry) -> CountsItem:
    with entry.path.open("rb") as f:
        f.seek(entry.body_offset)
        body = f.read(entry.body_length)
    if zlib.crc32(body) != entry.body_crc:
        raise ValueError(f"{entry.path}: item {entry.header['name']!r} is damaged (CRC mismatch)")
    raw = zlib.decompress(body)
    h = entry.header
    shape = tuple(h["shape"])
    size = math.prod(shape)
    out, pos = {}, 0
    for a in ARRAYS:
        dt = np.dtype(h["dtypes"][a])
        out[a] = np.frombuffer(raw, dt, size, pos).reshape(shape)
        pos += size * dt.itemsize
    if pos != len(raw):
        raise ValueError(f"{entry.path}: item {h['name']!r} has {len(raw) - pos} stray bytes")
    return CountsItem(h["name"], out["guess"], out["hits"], out["target"], h.get("meta", {}))


class StoredCounts:
    """Lazily read counts of one run (one file, or one file per rank).

    Opening reads only the frame headers; each item is decompressed when it
    is accessed.  Iteration goes in **name order**, so summaries do not depend
    on the order in which items finished, on sharding or on resumption.

    Attributes
    ----------
    settings : dict
        The run's settings (identical in every file).
    names : list of str
        Item names, sorted.
    paths : tuple of Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.mtcounts"
    >>> settings = dict(sigma=0.25, noise="gaussian", n0=10, n=100, seed=0,
    ...                 model="demo", num_classes=3)
    >>> with CountsWriter(path, settings) as w:
    ...     w.add("b", guess=[1, 1], hits=[90, 70], target=[1, 2])
    ...     w.add("a", guess=[0], hits=[100], target=[255])
    >>> counts = read_counts(path)
    >>> len(counts), counts.names, counts.settings["n"]
    (2, ['a', 'b'], 100)
    >>> item = counts["b"]
    >>> item.hits, item.hits.dtype
    (array([90, 70], dtype=uint8), dtype('uint8'))
    """

    def __init__(self, paths: Sequence[Path]):
        self.paths = tuple(paths)
        if not self.paths:
            raise ValueError("no counts files given")
        settings = None
        entries: dict[str, _Entry] = {}
        for p in self.paths:
            s, items, _, _ = _scan(p)
            if settings is None:
                settings = s
            elif s != settings:
                diff = _settings_diff(settings, s)
                raise ValueError(
                    f"{p} belongs to a different run than {self.paths[0]} ({'; '.join(diff)})"
                )
            for e in items:
                name = e.header["name"]
                if name in entries:
                    raise ValueError(f"item {name!r} is stored twice ({entries[name].path}, {p})")
                entries[name] = e
        self.settings = settings
        self._entries = dict(sorted(entries.items()))
        self.names = list(self._entries)

    @property
    def n(self) -> int:
        """Testing samples per component."""
        return int(self.settings["n"])

    @property
    def num_classes(self) -> int:
        return int(self.settings["num_classes"])

    @property
    def ignore_index(self):
        return self.settings.get("ignore_index", 255)

    def components(self) -> int:
        """Total number of components over all items (from the headers, no decompression)."""
        return sum(math.prod(e.header["shape"]) for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> CountsItem:
        try:
            entry = self._entries[name]
        except KeyError:
            raise KeyError(f"no item named {name!r} in {self}") from None
        return _load(entry)

    def __iter__(self) -> Iterator[CountsItem]:
        for entry in self._entries.values():
            yield _load(entry)

    def __repr__(self) -> str:
        files = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} files"
        return f"StoredCounts({files}, items={len(self)}, n={self.settings['n']})"


def read_counts(source) -> StoredCounts:
    """Open stored counts lazily.

    Parameters
    ----------
    source : str, Path, sequence of them, or StoredCounts
        A counts file; a folder (every ``*.mtcounts`` file in it, e.g. one per
        rank); or several files of the same run.  A :class:`StoredCounts` is
        returned as is.

    Returns
    -------
    StoredCounts

    Raises
    ------
    ValueError
        If a file is not a counts file, is damaged, the files disagree on the
        settings, or an item name occurs twice.
    FileNotFoundError
        If a path does not exist or a folder holds no counts file.
    """
    if isinstance(source, StoredCounts):
        return source
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    paths: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(p.glob(f"*{SUFFIX}"))
            if not found:
                raise FileNotFoundError(f"{p} holds no *{SUFFIX} file")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"no counts file at {p}")
    return StoredCounts(paths)
