"""Numba kernels. No validation happens here: the public API validates first.

Every kernel is compiled with ``cache=True``; one submodule per concern.
"""
