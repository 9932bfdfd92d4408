"""The version of mtcert and mtcert_torch: the one place it is written.

``pyproject.toml`` reads it (setuptools' dynamic version), and both packages
re-export it as ``__version__``.
"""

__version__ = "0.1.0"
