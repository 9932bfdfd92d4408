"""Output files of every command and study: a writable folder, names that never overwrite.

Infrastructure shared by the power studies, the stored-counts commands and the
plugin's runs.  Imports only the standard library.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

__all__ = ["output_folder", "output_name"]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def output_folder(out: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``out`` (with parents) and check it is a writable folder, before any work.

    Raises ``ValueError`` naming ``option`` when it is a file, lies under
    a file, or cannot be created or written.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{option} {str(path)!r}: a part of the path is a file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{option} {str(path)!r} is not a writable folder ({reason})") from None
    return path


def output_name(
    out: Path,
    name: str | None,
    default: str,
    suffixes: tuple[str, ...],
    *,
    overwrite: bool = False,
) -> str:
    """The base name for this run's files in ``out``: never a silent overwrite.

    An explicit ``name`` must be a plain file name (no folders, cannot leave
    ``out``); if its files exist the run is refused unless ``overwrite``.
    Without a name, ``default`` is used, or ``default-2``, ``default-3``, ...
    when files of that name already exist.
    """

    def taken(stem: str) -> bool:
        return any((out / f"{stem}{s}").exists() for s in suffixes)

    if name is not None:
        if not _PLAIN_NAME.fullmatch(name) or ".." in name:
            raise ValueError(
                f"--name must be a plain file name (letters, digits, '.', '_', '-'), "
                f"not a path; got {name!r}"
            )
        if taken(name) and not overwrite:
            raise ValueError(
                f"--name {name!r}: {out / name}.* exists; pass --overwrite or another --name"
            )
        return name
    if overwrite or not taken(default):
        return default
    i = 2
    while taken(f"{default}-{i}"):
        i += 1
    return f"{default}-{i}"
