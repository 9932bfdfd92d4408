"""Pieces every ``python -m mtcert`` sub-command shares: parser class, help format, outputs.

Kept apart from :mod:`mtcert.cli` so that command modules can use them without
importing the dispatcher (no import cycles).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

__all__ = [
    "Formatter",
    "Parser",
    "UsageError",
    "comma_list",
    "fail",
    "floats",
    "ints",
    "markdown_table",
    "names",
    "output_folder",
    "output_name",
    "positive_int",
    "save_figure",
]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class UsageError(ValueError):
    """A user error on the command line: printed as one line, exit status 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default and keeps hand-wrapped epilogs."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one stderr line and exit status 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def fail(prog: str, message: str) -> int:
    """Print one error line for ``prog`` and return exit status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def output_folder(out: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``out`` (with parents) and check it is a writable folder, before any work.

    Raises :class:`UsageError` naming ``option`` when it is a file, lies under
    a file, or cannot be created or written.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{option} {str(path)!r}: a part of the path is a file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{option} {str(path)!r} is not a writable folder ({reason})") from None
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
            raise UsageError(
                f"--name must be a plain file name (letters, digits, '.', '_', '-'), "
                f"not a path; got {name!r}"
            )
        if taken(name) and not overwrite:
            raise UsageError(
                f"--name {name!r}: {out / name}.* exists; pass --overwrite or another --name"
            )
        return name
    if overwrite or not taken(default):
        return default
    i = 2
    while taken(f"{default}-{i}"):
        i += 1
    return f"{default}-{i}"


def comma_list(cast, what: str):
    """An argparse ``type``: a comma-separated list of ``cast`` values (at least one)."""

    def parse(text: str) -> list:
        try:
            out = [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a comma-separated list of {what}: {text!r}"
            ) from None
        if not out:
            raise argparse.ArgumentTypeError(f"empty list of {what}")
        return out

    return parse


floats = comma_list(float, "numbers")
ints = comma_list(int, "integers")
names = comma_list(str, "names")


def markdown_table(df) -> str:
    """A GitHub Markdown table of ``df`` (floats to 4 significant digits, NaN as ``-``)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines) + "\n"


def save_figure(prog: str, draw, path: Path) -> None:
    """Save the figure ``draw()`` returns to ``path`` and release it.

    Without matplotlib the figure is skipped with a one-line note on stderr
    (the caller's CSV files are written regardless).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"{prog}: matplotlib is not installed: figure skipped", file=sys.stderr)
        return
    fig = draw()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure -> {path}")


class ExplicitDefaultsFormatter(Formatter):
    """:class:`Formatter` whose defaults read as words: ``(required)``, ``(default: off)``
    for a switch, ``(default: none)``; a help text that names its default keeps it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "(default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)"
        if isinstance(action, argparse._StoreConstAction):  # store_true / store_false switches
            return f"{text} (default: off)"
        if action.default is None:
            return f"{text} (default: none)"
        return super()._get_help_string(action)


def json_object(text: str) -> dict:
    """An argparse ``type``: a JSON object (``'{"width": 16}'``)."""
    import json

    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not a JSON object: {exc}") from None
    if not isinstance(out, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return out


def module_program(module: str, argv0: str | None = None) -> str:
    """``python -m <module>`` when run as a module (or from Python), else the script's name."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    base = os.path.basename(argv0 or "")
    if not base or base in ("__main__.py", "-c") or base.startswith("python"):
        return f"python -m {module}"
    return base


def one_line(message: object) -> str:
    """``message`` (an exception, a text) as one line: its non-empty lines joined by ``; ``."""
    return "; ".join(line.strip() for line in str(message).strip().splitlines() if line.strip())


__all__ += ["ExplicitDefaultsFormatter", "json_object", "module_program", "one_line"]
