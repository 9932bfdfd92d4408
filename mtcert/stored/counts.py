"""Stored counts: what SEGCERTIFY's decisions need, kept once per certify run.

The expensive part of certification is the ``n0 + n`` forward passes per item;
everything after them is decided from three arrays per item: the label
guessed from the ``n0`` guessing samples per component, its hit count among
the ``n`` *independent* testing samples, and the ground truth.  A counts file
keeps exactly these, item by item, together with the settings of the run, so
that :func:`mtcert.stored.recertification.recertify` can re-decide at any τ, α, method or k
without the model.  The guessing samples themselves are not stored and never
enter the test.

File format (version 2; 3 with per-item n)
------------------------------------------
All integers are little-endian.  A file is the 8-byte magic ``b"MTCOUNTS"``
followed by *frames*::

    frame  := b"MTCF"                    4 bytes, frame marker
              header_length   uint32     bytes of the JSON header
              body_length     uint64     bytes of the compressed body
              header_crc32    uint32     zlib.crc32 of the header bytes
              body_crc32      uint32     zlib.crc32 of the body bytes
              header          UTF-8 JSON object
              body            zlib stream (empty but for item frames)

The first frame is the settings frame, header
``{"kind": "settings", "format": "mtcert-counts", "version": 2, "settings": {...}}``.
Its ``settings`` must hold ``sigma`` (float), ``noise`` (str), ``n0`` and ``n``
(int), ``seed`` (int), ``model`` (any JSON value identifying the model, e.g.
its import path and checkpoint hash) and ``num_classes`` (int); ``ignore_index``
(int outside ``[0, num_classes)`` or null, default 255) and further JSON entries
(scales, flip, ...) are kept and compared on resumption like the others.  ``(n + 1) * num_classes``
may not exceed ``2**25`` (the per-item table of hit counts by class
that re-deciding builds).

An item frame has the header
``{"kind": "item", "name": str, "shape": [...], "dtypes": {"guess": "|u1", ...},
"meta": {...}}``; its body is the zlib-compressed concatenation of the raw
C-order bytes of ``guess``, ``hits`` and ``target`` (in that order, the dtypes
as numpy ``dtype.str``).  Each array is stored in the narrowest integer type
that holds its values (``uint8`` for up to 255 classes and ``n <= 255``).
An expect frame ``{"kind": "expect", "items": int}`` records how many items the
run is to hold (written when the number is known or changes).

A finished run ends with the closing frame
``{"kind": "end", "items": int, "sha256": hex}``: the number of item frames and
the SHA-256 of every byte before the closing frame.  Only a file that ends with
a valid closing frame is complete; any other is *in progress* (or was cut
short), and :func:`read_counts` refuses it unless ``partial=True``, saying how
many items it holds of how many expected.

Per-item n (version 3).  A run that gives each item its own number of
testing samples records ``"sampling": "two-stage"`` or ``"sequential"`` in its
settings, ``n`` there is the budget (the most any item may use), and each item
header holds the item's own ``"n"``; such files are written as version 3, so
readers that predate per-item n refuse them instead of misreading the hits.
Files of a fixed n are written exactly as before (version 2, no ``sampling``).
:attr:`StoredCounts.n` refuses sequential counts (their hits are at a
data-dependent stopping time, where the fixed-n binomial test is invalid) and
two-stage counts of differing n; :attr:`StoredCounts.item_n` and
:attr:`CountsItem.n` give each item's n.

Version 1 files (written before the closing frame existed) are read the same
way; lacking a closing frame they cannot tell a finished run from one cut
short, so they are read only with ``partial=True`` (the message says so).
Resuming one with :class:`CountsWriter` and finishing it adds the closing frame.

Durability: the settings frame is written to a temporary file that is renamed
into place; each item frame is appended with one ``write`` and flushed to disk
(``fsync``), so a killed run loses at most the item in flight.  Re-opening a
file for writing drops a torn last frame, refuses different settings and
appends (a closing frame is dropped before the first new frame and written
again by :meth:`CountsWriter.finish`).  A damaged frame anywhere but at the
end is an error, never skipped.  Everything read back is checked as if a user
had typed it: header structure, sizes before any allocation, and every value
(guess in ``[0, num_classes)``, hits in ``[0, n]``, target a class or
``ignore_index``).

Under ``torch.distributed`` each rank writes its own file; :func:`read_counts`
reads several files of one run together.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtcert.stats.validation import check_positive_int
from mtcert.stored._frames import (
    ARRAYS,
    FORMAT,
    MAGIC,
    Entry,
    Scan,
    check_settings,
    check_values,
    file_sha256,
    frame,
    incomplete,
    item_n,
    read_body,
    sampling,
    scan,
    version_for,
)

__all__ = ["CountsItem", "CountsWriter", "StoredCounts", "read_counts"]

#: Conventional file-name suffix (not enforced).
SUFFIX = ".mtcounts"


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
    finished : bool
        The file ends with its closing frame (:meth:`finish`).

    Notes
    -----
    Call :meth:`finish` when the run is complete: only then do readers accept
    the file without ``partial=True``.  Leaving a ``with`` block normally
    finishes; leaving it by an exception, and :meth:`close`, do not, so a
    run cut short is never marked complete.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.mtcounts"
    >>> settings = {"sigma": 0.25, "noise": "gaussian", "n0": 10, "n": 100, "seed": 0,
    ...             "model": "my_net.pt sha256:0f3a", "num_classes": 3}
    >>> with CountsWriter(path, settings) as w:
    ...     w.add("img0", guess=[[0, 2]], hits=[[100, 61]], target=[[0, 1]])
    >>> with CountsWriter(path, settings) as w:  # resumes
    ...     sorted(w.stored_names), w.finished
    (['img0'], True)
    """

    def __init__(self, path, settings: Mapping, *, compresslevel: int = 6, fsync: bool = True):
        self.path = Path(path)
        self.settings = check_settings(settings)
        if isinstance(compresslevel, bool) or compresslevel not in range(10):
            raise ValueError(f"compresslevel must be an integer in 0..9; got {compresslevel!r}")
        self.compresslevel = compresslevel
        self.fsync = bool(fsync)
        self._expected = self._closing_at = None
        if self.path.exists():
            found = self.check(self.path, self.settings)
            if found.torn:  # a write cut short: drop it, the item is redone
                os.truncate(self.path, found.end)
            self.stored_names = {e.name for e in found.items}
            self._expected, self._closing_at = found.expected, found.closing_at
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = {"kind": "settings", "format": FORMAT, "version": version_for(self.settings)}
            header["settings"] = self.settings
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("wb") as f:
                f.write(MAGIC + frame(header))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.stored_names = set()
        self._file = self.path.open("ab")

    @staticmethod
    def check(path, settings: Mapping) -> Scan:
        """Raise ``ValueError`` if the counts file ``path`` is damaged or holds a run with
        other ``settings`` (nothing is written: a run may check before it writes anything)."""
        path = Path(path)
        found = scan(path)
        diff = _settings_diff(found.settings, check_settings(settings))
        if diff:
            raise ValueError(
                f"{path} holds counts of a run with different settings "
                f"({'; '.join(diff)}); choose another file"
            )
        return found

    @property
    def finished(self) -> bool:
        return self._closing_at is not None

    def _write(self, data: bytes) -> None:
        if self._file.closed:
            raise ValueError(f"{self.path}: the writer is closed")
        if self._closing_at is not None:  # new frames: the run is in progress again
            os.truncate(self.path, self._closing_at)
            os.fsync(self._file.fileno())
            self._closing_at = None
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def expect(self, total: int) -> None:
        """Record that the run is to hold ``total`` items (readers of a file in progress
        then say how many of them it holds); nothing is written if unchanged."""
        total = check_positive_int(total, "total", minimum=0)
        if total != self._expected:
            self._write(frame({"kind": "expect", "items": total}))
            self._expected = total

    def add(
        self, name: str, *, guess, hits, target, meta: Mapping | None = None, n: int | None = None
    ) -> None:
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
        n : int, optional
            This item's testing samples, in ``[1, settings n]``: required in a file
            whose ``sampling`` setting is ``"two-stage"`` or ``"sequential"``, refused
            (unless equal to the run's ``n``) in one of fixed n.
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
        n = self._item_n(name, n)
        check_values(name, arrays, self.settings, n)
        c, t = self.settings["num_classes"], arrays["target"]
        bounds = {"guess": (0, c - 1), "hits": (0, n), "target": (int(t.min()), int(t.max()))}
        body, dtypes = [], {}
        for a in ARRAYS:
            dt = _narrowest(*bounds[a]).newbyteorder("<")
            body.append(np.ascontiguousarray(arrays[a], dtype=dt).tobytes())
            dtypes[a] = dt.str
        header = {"kind": "item", "name": name, "shape": list(shape), "dtypes": dtypes}
        header["meta"] = dict(meta) if meta is not None else {}
        if sampling(self.settings) != "fixed":
            header["n"] = n
        self._write(frame(header, zlib.compress(b"".join(body), self.compresslevel)))
        self.stored_names.add(name)

    def _item_n(self, name: str, n) -> int:
        """The testing samples of item ``name`` (see :meth:`add`)."""
        run_n, how = self.settings["n"], sampling(self.settings)
        if how == "fixed":
            if n is not None and n != run_n:
                raise ValueError(
                    f"item {name!r}: n={n!r} in a file of fixed n = {run_n} (store per-item n "
                    "with a sampling setting of 'two-stage' or 'sequential')"
                )
            return run_n
        if n is None:
            raise ValueError(f"item {name!r}: n (its testing samples) is required ({how} sampling)")
        return check_positive_int(n, "n", maximum=run_n)

    def finish(self) -> None:
        """Mark the run complete: append the closing frame (item count and SHA-256 of
        the file) and close.  Nothing changes if the file is finished already.

        Raises ``ValueError`` if fewer items are stored than :meth:`expect` announced,
        or if an item stored earlier is damaged (a damaged file is never sealed).
        """
        if self._file.closed:
            raise ValueError(f"{self.path}: the writer is closed")
        if self._closing_at is None:
            k = len(self.stored_names)
            if self._expected is not None and k < self._expected:
                raise ValueError(
                    f"{self.path} holds {k} of the {self._expected} expected items: not finished"
                )
            self._file.flush()
            found = scan(self.path)
            for entry in found.items:
                read_body(entry)  # CRC of every body, before the checksum vouches for it
            digest = file_sha256(self.path, found.end)
            self._file.write(frame({"kind": "end", "items": len(found.items), "sha256": digest}))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._closing_at = found.end
        self.close()

    def close(self) -> None:
        """Close the file without finishing it (a resumed writer goes on)."""
        self._file.close()

    def __enter__(self) -> CountsWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None and not self._file.closed:
            self.finish()
        else:
            self.close()

    def __repr__(self) -> str:
        state = "finished" if self.finished else "in progress"
        return f"CountsWriter({str(self.path)!r}, items={len(self.stored_names)}, {state})"


@dataclass(frozen=True, eq=False)
class CountsItem:
    """One stored item: guess, hits and ground truth per component, and ``n``, the
    testing samples behind its hits (the run's n unless the file has per-item n)."""

    name: str
    guess: np.ndarray
    hits: np.ndarray
    target: np.ndarray
    meta: dict = field(default_factory=dict)
    n: int | None = None

    def __repr__(self) -> str:
        return f"CountsItem({self.name!r}, shape={self.guess.shape})"


def _load(entry: Entry, settings: dict) -> CountsItem:
    h = entry.header
    dts = [np.dtype(h["dtypes"][a]) for a in ARRAYS]
    size = entry.size
    expected = size * sum(dt.itemsize for dt in dts)
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(read_body(entry), expected + 1)  # never more than the shape needs
    except zlib.error:
        raise ValueError(f"{entry.path}: item {entry.name!r} is damaged (not zlib)") from None
    if len(raw) != expected or not inflate.eof or inflate.unused_data:
        raise ValueError(
            f"{entry.path}: item {entry.name!r} holds other than the {expected} bytes its "
            "shape and dtypes need (damaged or stray bytes)"
        )
    out, pos = {}, 0
    for a, dt in zip(ARRAYS, dts, strict=True):
        out[a] = np.frombuffer(raw, dt, size, pos).reshape(h["shape"])
        pos += size * dt.itemsize
    n = item_n(h, settings)
    try:
        check_values(entry.name, out, settings, n)
    except ValueError as exc:
        raise ValueError(f"{entry.path}: {exc}") from None
    return CountsItem(entry.name, out["guess"], out["hits"], out["target"], h["meta"], n)


class StoredCounts:
    """Lazily read counts of one run (one file, or one file per rank).

    Opening reads the frame headers and checks each file's closing frame (its
    item count and checksum); each item is decompressed and checked when it
    is accessed.  Iteration goes in **name order**, so summaries do not depend
    on the order in which items finished, on sharding or on resumption.

    Parameters
    ----------
    paths : sequence of Path
    partial : bool, default False
        Also read files without a closing frame (a run in progress, cut short,
        or written by format version 1); otherwise they are refused.

    Attributes
    ----------
    settings : dict
        The run's settings (identical in every file).
    names : list of str
        Item names, sorted.
    paths : tuple of Path
    incomplete : tuple of str
        One line per file read without its closing frame (``partial=True``).

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

    def __init__(self, paths: Sequence[Path], *, partial: bool = False):
        self.paths = tuple(paths)
        if not self.paths:
            raise ValueError("no counts files given")
        settings = None
        entries: dict[str, Entry] = {}
        notes = []
        for p in self.paths:
            found = scan(p)
            why = incomplete(p, found)
            if why is not None:
                if not partial:
                    raise ValueError(
                        f"{why}; pass partial=True (--partial) to read the "
                        f"{len(found.items)} items it holds"
                    )
                notes.append(why)
            if settings is None:
                settings = found.settings
            elif found.settings != settings:
                diff = _settings_diff(settings, found.settings)
                raise ValueError(
                    f"{p} belongs to a different run than {self.paths[0]} ({'; '.join(diff)})"
                )
            for e in found.items:
                if e.name in entries:
                    raise ValueError(
                        f"item {e.name!r} is stored twice ({entries[e.name].path}, {p})"
                    )
                entries[e.name] = e
        self.settings = settings
        self.incomplete = tuple(notes)
        self._entries = dict(sorted(entries.items()))
        self.names = list(self._entries)

    @property
    def sampling(self) -> str:
        """How the testing samples were drawn: ``"fixed"``, ``"two-stage"`` or
        ``"sequential"`` (per-item n; :mod:`mtcert_torch.adaptive`)."""
        return sampling(self.settings)

    @property
    def item_n(self) -> dict:
        """Testing samples per item, by name (from the headers, no decompression)."""
        return {name: int(item_n(e.header, self.settings)) for name, e in self._entries.items()}

    @property
    def n(self) -> int:
        """Testing samples per component, the same for every item.

        Raises ``ValueError`` where no single fixed-n binomial test fits the file:
        sequential counts (hits at a data-dependent stopping time, whose fixed-n
        p-values would be invalid) and two-stage counts whose items differ in n
        (use :attr:`item_n`, or :attr:`CountsItem.n` per item).
        """
        if self.sampling == "sequential":
            raise ValueError(
                f"{self}: the counts were stored at a sequential stopping time; the fixed-n "
                "binomial test is not valid there (it would certify nulls more often than "
                "alpha), so they cannot be re-decided as fixed-n counts"
            )
        if self.sampling == "fixed":
            return int(self.settings["n"])
        ns = set(self.item_n.values())
        if len(ns) > 1:
            raise ValueError(
                f"{self}: two-stage counts with per-item n from {min(ns)} to {max(ns)}; "
                "re-deciding needs one n for every item (each item's n: .item_n)"
            )
        return ns.pop() if ns else int(self.settings["n"])

    @property
    def num_classes(self) -> int:
        return int(self.settings["num_classes"])

    @property
    def ignore_index(self):
        return self.settings.get("ignore_index", 255)

    def components(self) -> int:
        """Total number of components over all items (from the headers, no decompression)."""
        return sum(e.size for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> CountsItem:
        try:
            entry = self._entries[name]
        except KeyError:
            raise KeyError(f"no item named {name!r} in {self}") from None
        return _load(entry, self.settings)

    def __iter__(self) -> Iterator[CountsItem]:
        for entry in self._entries.values():
            yield _load(entry, self.settings)

    def __repr__(self) -> str:
        files = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} files"
        return f"StoredCounts({files}, items={len(self)}, n={self.settings['n']})"


def read_counts(source, *, partial: bool = False) -> StoredCounts:
    """Open stored counts lazily.

    Parameters
    ----------
    source : str, Path, sequence of them, or StoredCounts
        A counts file; a folder (every ``*.mtcounts`` file in it, e.g. one per
        rank); or several files of the same run.  A :class:`StoredCounts` is
        returned as is.
    partial : bool, default False
        Read files that lack their closing frame too (a run still in
        progress or cut short, or a version-1 file): their items as they are,
        each described in :attr:`StoredCounts.incomplete`.  Without it such a
        file is refused, saying how many items it holds of how many expected.

    Returns
    -------
    StoredCounts

    Raises
    ------
    ValueError
        If a file is not a counts file, is damaged or incomplete (see
        ``partial``), the files disagree on the settings, or an item name
        occurs twice.
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
    return StoredCounts(paths, partial=partial)
