"""Shared pytest configuration."""

import os

from hypothesis import HealthCheck, settings

# "ci" keeps property tests bounded on a 2-core runner; "dev" digs deeper.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
