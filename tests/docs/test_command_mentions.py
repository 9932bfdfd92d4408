"""Every ``python -m mtcert <command>`` / ``python -m mtcert_torch <command>`` that a page,
a benchmark or a docstring mentions in running text names a command that exists.

The bash blocks of the guides are run by ``test_docs.py``; this covers the mentions in
prose, tables and docstrings, which nothing runs (a guide once pointed at a plugin
``demo`` command that was never there).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MENTION = re.compile(r"python -m (mtcert_torch|mtcert)\b(?:\s+(?:--?[\w-]+\s+)*)?([a-z][\w-]*)?")
FILES = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "mtcert").rglob("*.py"),
        *(ROOT / "mtcert_torch").rglob("*.py"),
    ]
)


def _commands(package: str) -> set[str]:
    if package == "mtcert":
        from mtcert.cli import COMMANDS
    else:
        pytest.importorskip("torch")
        from mtcert_torch.cli import COMMANDS
    return set(COMMANDS)


def mentions(text: str):
    """``(package, command)`` of every mention in ``text`` that names a command."""
    for m in MENTION.finditer(text):
        if m.group(2):
            yield m.group(1), m.group(2)


def test_the_pattern_reads_commands():
    text = "run `python -m mtcert run`, then ``python -m mtcert_torch certify --n 5``"
    assert list(mentions(text)) == [("mtcert", "run"), ("mtcert_torch", "certify")]
    assert list(mentions("python -m mtcert_torch demo:")) == [("mtcert_torch", "demo")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_mentioned_commands_exist(path):
    wrong = [
        f"python -m {package} {command}"
        for package, command in mentions(path.read_text(encoding="utf-8"))
        if command not in _commands(package) and command not in {"help"}
    ]
    assert not wrong, f"{path.relative_to(ROOT)} mentions commands that do not exist: {wrong}"
