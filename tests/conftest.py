"""Shared pytest configuration: the hypothesis profiles, and a folder not to collect.

"ci" (the default) is derandomized and keeps no example database: every run of
the same code draws the same examples, so a property test cannot fail at random
in CI.  "dev" (``HYPOTHESIS_PROFILE=dev``) draws fresh random examples, five
times as many, to dig for new counterexamples; ``--hypothesis-seed=N`` replays
one such run.
"""

import os

from hypothesis import HealthCheck, settings

# sitecustomize for `make test-without-torch`: importing it would hide torch from the run
collect_ignore = ["helpers/no_torch"]

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
