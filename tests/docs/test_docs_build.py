"""The strict documentation build (``make docs``) passes, and it can fail.

The site is built with ``mkdocs build --strict`` in a subprocess: once from the
repository as it is (it must pass) and once from a copy of the docs with a broken link
appended to a page (it must fail, naming the link), so that a build that silences its
warnings cannot pass unnoticed.  The docs hook's docstring rewriting is checked directly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def _build(config_dir: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(config_dir)},
    )


@pytest.mark.slow
def test_strict_build_passes(tmp_path):
    done = _build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()
    # the offline plugin: search reads its index from a script, so it works from file://
    assert (tmp_path / "site" / "search" / "search_index.js").is_file()


@pytest.mark.slow
def test_strict_build_fails_on_a_broken_link(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy)
    for package in ("mtcert", "mtcert_torch"):  # the API reference reads their sources
        (copy / package).symlink_to(ROOT / package)
    page = copy / "docs" / "binomial.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n")
    done = _build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr


def _hook():
    spec = importlib.util.spec_from_file_location(
        "sphinx_roles", ROOT / "docs" / "hooks" / "sphinx_roles.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_moves_free_text_after_parameters_into_notes():
    hook = _hook()
    text = "Summary.\n\nParameters\n----------\nx : int\n    The x.\n\nUnder a group, more.\n"
    assert hook._notes_after_items(text) == (
        "Summary.\n\nParameters\n----------\nx : int\n    The x.\n\n"
        "Notes\n-----\nUnder a group, more.\n"
    )
    items = "Parameters\n----------\na, b : float\n    A.\n\n*args\n    More.\n"
    assert hook._notes_after_items(items) == items
    returns = "Returns\n-------\nint\n\nSome prose here.\n"
    assert hook._notes_after_items(returns) == returns


def test_hook_unwraps_an_item_name_written_as_a_literal():
    hook = _hook()
    text = 'Methods\n-------\n``"holm"``\n    Holm, with ``k`` kept.\n'
    assert (
        hook._LONE_SPAN.sub(r"\1", text) == 'Methods\n-------\n"holm"\n    Holm, with ``k`` kept.\n'
    )


def test_hook_drops_literal_backticks_in_item_types():
    hook = _hook()
    text = "x : array_like ``(N,)``\n    The ``x``.\n"
    assert hook._plain_item_literals(text) == "x : array_like (N,)\n    The ``x``.\n"
