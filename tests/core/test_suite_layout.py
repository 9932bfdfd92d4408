"""The test-suite's own layout, read from its source (no test module is imported).

- test modules share code only through tests/helpers (and fixtures through a
  conftest.py), never by importing another test module;
- tests/core and tests/helpers need neither torch nor the plugin: they import
  neither, at any depth, nor ``importorskip`` them (``make test-without-torch``
  runs tests/core with both unimportable);
- tests/torch does not ``importorskip("torch")``: its conftest.py skips the folder once;
- every module starts with a docstring saying what it checks;
- no test is named after a tracker number.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
FILES = sorted(p for p in TESTS.rglob("*.py") if p.name != "__init__.py")
PLUGIN = {"torch", "mtcert_torch"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imported(tree: ast.Module) -> set[str]:
    """Full names of the absolute imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _importorskipped(tree: ast.Module) -> set[str]:
    """The literal module names passed to ``pytest.importorskip``."""
    out = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "importorskip"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            out.add(node.args[0].value)
    return out


def _in(path: Path, *folders: str) -> bool:
    return path.relative_to(TESTS).parts[0] in folders


def test_the_checks_see_the_suite():
    names = {_rel(p) for p in FILES}
    assert {"tests/conftest.py", "tests/torch/conftest.py", _rel(Path(__file__).resolve())} <= names
    assert any(_in(p, "torch") for p in FILES) and any(_in(p, "helpers") for p in FILES)
    # the checks below do find what they look for
    sample = ast.parse("import torch.nn\nfrom tests.core.x import y\npytest.importorskip('torch')")
    assert _imported(sample) == {"torch.nn", "tests.core.x"}
    assert _importorskipped(sample) == {"torch"}


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_test_modules_share_code_only_through_helpers(path):
    tree = _tree(path)
    tests = [m for m in _imported(tree) if m == "tests" or m.startswith("tests.")]
    bad = sorted(m for m in tests if not m.startswith("tests.helpers"))
    assert not bad, f"{_rel(path)} imports test modules {bad}: share through tests/helpers"


@pytest.mark.parametrize("path", [p for p in FILES if _in(p, "core", "helpers")], ids=_rel)
def test_core_tests_need_neither_torch_nor_the_plugin(path):
    tree = _tree(path)
    used = {m.split(".")[0] for m in _imported(tree)} | _importorskipped(tree)
    assert not used & PLUGIN, f"{_rel(path)} uses {sorted(used & PLUGIN)}: move it to tests/torch"


@pytest.mark.parametrize("path", [p for p in FILES if _in(p, "torch")], ids=_rel)
def test_plugin_tests_do_not_skip_on_torch_themselves(path):
    assert not _importorskipped(_tree(path)) & PLUGIN, "tests/torch/conftest.py skips the folder"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_every_module_starts_with_a_docstring(path):
    doc = ast.get_docstring(_tree(path))
    assert doc and len(doc.split()) >= 4, f"{_rel(path)}: say what it checks in a docstring"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_no_test_is_named_after_a_tracker_number(path):
    names = [
        n.name
        for n in ast.walk(_tree(path))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    bad = [n for n in names if re.search(r"issue|ticket|_gh\d|_item\d", n, re.IGNORECASE)]
    assert not bad, f"{_rel(path)}: name {bad} after what they check"
