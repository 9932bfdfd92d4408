"""pytest-benchmark suites. Run with ``make bench`` (benchmarks are disabled in ``make test``)."""

from mtcert import _jit

# Time compiled kernels (small calls would otherwise start interpreted; see mtcert._jit).
_jit.set_mode("always")
