"""pytest-benchmark suites. Run with ``make bench`` (benchmarks are disabled in ``make test``)."""
