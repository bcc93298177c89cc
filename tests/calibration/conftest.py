"""The calibration set replayed once per test session (a full replay takes tens of seconds)."""

from __future__ import annotations

import pytest

from hwsim.calibration.table import read_measurements, replay


@pytest.fixture(scope="session")
def measurements():
    return read_measurements()


@pytest.fixture(scope="session")
def table(measurements):
    return replay(measurements)
