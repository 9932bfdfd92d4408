"""Output files of every command and study: a writable folder, names that never overwrite,
and the one lock that keeps a second writer out of a folder.

Infrastructure shared by the power studies, the stored-counts commands and the
plugin's runs (whose certify and repair commands take :class:`FolderLock`).
Imports only the standard library.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path

__all__ = ["FolderLock", "folder_path", "output_folder", "output_name"]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Never follow a link planted in the folder; never block opening a planted FIFO.
_NO_FOLLOW = sum(getattr(os, flag, 0) for flag in ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC"))


def folder_path(out: str | os.PathLike, option: str = "--out") -> Path:
    """``out`` as a path, refusing an empty one (which would mean the current folder)."""
    if not os.fspath(out):
        raise ValueError(f"{option} must name a folder; got an empty string")
    return Path(out)


def output_folder(out: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``out`` (with parents) and check it is a writable folder, before any work.

    Raises ``ValueError`` naming ``option`` when it is empty, a file, lies under
    a file, or cannot be created or written.
    """
    path = folder_path(out, option)
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


def _create(path: Path) -> bool:
    """Create ``path`` empty if no file (or link) of that name exists; atomic."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o644))
    except FileExistsError:
        return False
    return True


def output_name(
    out: Path,
    name: str | None,
    default: str,
    suffixes: tuple[str, ...],
    *,
    overwrite: bool = False,
    claim: bool = False,
) -> str:
    """The base name for this run's files in ``out``: never a silent overwrite.

    An explicit ``name`` must be a plain file name (no folders, cannot leave
    ``out``); if its files exist the run is refused unless ``overwrite``.
    Without a name, ``default`` is used, or ``default-2``, ``default-3``, ...
    when files of that name already exist.  With ``claim`` the name is also
    taken atomically: its first file (``suffixes[0]``) is created, empty and
    exclusively, so that runs choosing a name at the same moment never get the
    same one (the caller then writes that file).
    """

    def taken(stem: str) -> bool:
        return any((out / f"{stem}{s}").exists() for s in suffixes)

    def free(stem: str) -> bool:
        return not taken(stem) and (not claim or _create(out / f"{stem}{suffixes[0]}"))

    if name is not None:
        if not _PLAIN_NAME.fullmatch(name) or ".." in name:
            raise ValueError(
                f"--name must be a plain file name (letters, digits, '.', '_', '-'), "
                f"not a path; got {name!r}"
            )
        if not overwrite and not free(name):
            raise ValueError(
                f"--name {name!r}: {out / name}.* exists; pass --overwrite or another --name"
            )
        return name
    if overwrite or free(default):
        return default
    i = 2
    while not free(f"{default}-{i}"):
        i += 1
    return f"{default}-{i}"


class FolderLock:
    """An exclusive, non-blocking lock on an output folder (``fcntl.flock`` on a lock file).

    The lock file is created exclusively without following links, or, when it
    exists, opened without following them and accepted only as a plain file
    with one link: a link planted in its place is refused, never written
    through.  The operating system releases the lock when the process ends,
    however it ends.  While held, the file names the holder (pid and host, for
    the error message of a second run); a clean release empties it, so a lock
    file still naming a holder when the lock is free was left by a run that
    died, and taking it over says so in one line on stderr.  Where ``fcntl``
    does not exist (Windows) no lock is taken.

    Parameters
    ----------
    path : Path
        The lock file, e.g. ``out / ".lock"``.
    option : str, default "--out"
        The option that named the folder (for messages).
    """

    def __init__(self, path: Path, option: str = "--out"):
        self.path = Path(path)
        self.option = option
        self._fd: int | None = None

    def _refuse(self, what: str) -> ValueError:
        return ValueError(
            f"{self.option} {self.path.parent}: its lock file {self.path.name} is {what}; "
            "refused (remove it if no run uses the folder)"
        )

    def _open(self) -> int:
        for _ in range(3):  # the file may vanish between the two opens
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o644)
            except FileExistsError:
                pass
            try:
                fd = os.open(self.path, os.O_RDWR | _NO_FOLLOW)
            except FileNotFoundError:
                continue
            except OSError:  # ELOOP: a symbolic link; EISDIR, EACCES, ...
                raise self._refuse("a link or not a writable plain file") from None
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                os.close(fd)
                raise self._refuse("not a plain file of one link")
            return fd
        raise self._refuse("created and removed by someone else meanwhile")

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ValueError(
                f"{self.option} {self.path.parent} is in use by another run ({holder}); wait "
                f"for it to finish or choose another {self.option}"
            ) from None
        left = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if left:
            print(
                f"note: {self.option} {self.path.parent}: taking over the lock of a run that "
                f"ended without releasing it ({left})",
                file=sys.stderr,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a released lock names no holder
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
