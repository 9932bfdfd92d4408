"""The plugin reports the version written once in mtcert/_version.py."""

import pytest

import mtcert_torch
from mtcert._version import __version__

pytestmark = pytest.mark.torch


def test_plugin_reports_the_one_version():
    assert mtcert_torch.__version__ == __version__
