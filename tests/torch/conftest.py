"""The plugin's tests: skipped here, once, where torch cannot be imported."""

import importlib.util

if importlib.util.find_spec("torch") is None:
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config):
    if importlib.util.find_spec("torch") is None:
        return "tests/torch: skipped (torch is not importable)"
    return None
