"""The version is written once (mtcert/_version.py) and every place reports it; the license.

The plugin's version is checked in tests/torch/test_packaging.py.
"""

import importlib.metadata
from pathlib import Path

import pytest

import mtcert
from mtcert._version import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_one_version_everywhere():
    assert mtcert.__version__ == __version__
    assert importlib.metadata.version("mtcert") == __version__


def test_pyproject_reads_the_version_module():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "mtcert._version.__version__"}
    assert project["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
