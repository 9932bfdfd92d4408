"""Makes ``torch`` and ``mtcert_torch`` unimportable, as on an install without them.

Put this folder first on ``PYTHONPATH`` (``make test-without-torch`` does): Python
imports ``sitecustomize`` at start-up, in every process that inherits the variable.
Every finder on ``sys.meta_path`` then finds nothing for the two names, so
``import torch`` raises ModuleNotFoundError and ``importlib.util.find_spec("torch")``
is None, exactly as if torch were not installed.
"""

import sys

HIDDEN = frozenset({"torch", "mtcert_torch"})


class _Hiding:
    """A meta-path finder that answers for ``finder`` except for the hidden names."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find_spec = getattr(self._finder, "find_spec", None)
        return None if find_spec is None else find_spec(name, path, target)

    def __getattr__(self, attr):  # invalidate_caches, find_distributions, ...
        return getattr(self._finder, attr)


if not any(isinstance(f, _Hiding) for f in sys.meta_path):
    sys.meta_path[:] = [_Hiding(f) for f in sys.meta_path]
