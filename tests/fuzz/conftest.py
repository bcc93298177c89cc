"""Example budgets of the property-based tests: a few per format in ``make test``, many in
``make fuzz`` (``HWSIM_FUZZ_EXAMPLES`` examples per test, 2,000 by default)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much]}
settings.register_profile("hwsim-test", max_examples=int(os.environ.get("HWSIM_TEST_EXAMPLES", "25")),
                          derandomize=True, database=None, **_COMMON)
settings.register_profile("hwsim-fuzz", max_examples=int(os.environ.get("HWSIM_FUZZ_EXAMPLES", "2000")), **_COMMON)
settings.load_profile(os.environ.get("HWSIM_FUZZ_PROFILE", "hwsim-test"))
