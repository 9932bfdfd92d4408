"""Pieces every ``python -m mtcert`` sub-command shares: parser class, help format, outputs.

Kept apart from :mod:`mtcert.cli` so that command modules can use them without
importing the dispatcher (no import cycles).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

__all__ = [
    "Formatter",
    "Parser",
    "comma_list",
    "draw_figure",
    "fail",
    "floats",
    "ints",
    "json_object",
    "markdown_table",
    "module_program",
    "names",
    "one_line",
    "positive_int",
]


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default once, in words, and keeps hand-wrapped epilogs.

    ``(required)``, ``(default: off)`` for a switch, ``(default: none)``, a list
    as it is typed (``(default: 0.6,0.75)``); a help text that names its default
    itself keeps it.
    """

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
        if isinstance(action.default, list | tuple):  # as it is typed: 1,2 (or 1 2 for nargs)
            sep = " " if action.nargs in ("+", "*") else ","
            return f"{text} (default: {sep.join(map(str, action.default))})"
        return super()._get_help_string(action)


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


def draw_figure(prog: str, draw, path: Path) -> None:
    """Save the figure ``draw()`` returns to ``path`` (:func:`mtcert.plotting.save_figure`).

    Without matplotlib the figure is skipped with a one-line note on stderr
    (the caller's CSV files are written regardless).
    """
    from mtcert.plotting import save_figure

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"{prog}: matplotlib is not installed: figure skipped", file=sys.stderr)
        return
    save_figure(draw(), path)
    print(f"figure -> {path}")


def json_object(text: str) -> dict:
    """An argparse ``type``: a JSON object (``'{"width": 16}'``)."""
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
