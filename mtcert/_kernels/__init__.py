"""Numba kernels, one submodule per concern; no validation here (the public API validates).

Every kernel is compiled with ``cache=True``.  The kernels that the library
calls from Python are declared :func:`~mtcert._jit.tiered` where they are
defined, so callers import them by name (``from mtcert._kernels.multitest
import holm_rows``) and small calls run interpreted until compiling pays;
helpers that only other kernels call are plain ``@njit`` functions.

The submodules import numpy, numba, :mod:`mtcert._jit`, :mod:`mtcert._tunables`
and one another only.
"""
