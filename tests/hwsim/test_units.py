from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.errors import ConfigError
from hwsim.units import format_quantity, parse_quantity


@pytest.mark.parametrize(("text", "dimension", "expected"), [
    ("3.35 TB/s", "bandwidth", 3.35e12),
    ("63.0 GB/s", "bandwidth", 63e9),
    ("900 GiB/s", "bandwidth", 900 * 2**30),
    ("50 MiB", "bytes", 50 * 2**20),
    ("80 GB", "bytes", 80e9),
    ("512 bit", "bytes", 64),
    ("1.755 GHz", "frequency", 1.755e9),
    ("940 MHz", "frequency", 940e6),
    ("3.9 pJ/bit", "energy_bit", 3.9),
    ("1.3 nJ", "energy", 1300.0),
    ("2.89 fJ", "energy", 2.89e-3),
    ("600 ns", "time", 600e-9),
    ("1 us", "time", 1e-6),
    ("700 W", "power", 700.0),
    ("35 mW", "power", 0.035),
    ("989.4 TFLOP/s", "flops", 989.4e12),
    ("132", "count", 132.0),
    (4096, "bytes", 4096.0),
])
def test_parse_quantity_normalises_to_base_units(text, dimension, expected):
    assert parse_quantity(text, dimension, "x") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("text", "dimension", "fragment"), [
    ("3.35 TB/s", "bytes", "not a bytes unit"),
    ("fast", "bandwidth", "cannot read"),
    ("1 GHz", "time", "not a time unit"),
    (True, "count", "expected a count"),
])
def test_parse_quantity_rejects_wrong_units_naming_the_key(text, dimension, fragment):
    with pytest.raises(ConfigError) as err:
        parse_quantity(text, dimension, "components.hbm.bandwidth")
    assert "components.hbm.bandwidth" in str(err.value)
    assert fragment in str(err.value)


@given(st.floats(min_value=1e-3, max_value=1e15, allow_nan=False))
def test_formatted_bandwidth_parses_back_within_rounding(value):
    text = format_quantity(value, "bandwidth")
    assert parse_quantity(text, "bandwidth") == pytest.approx(value, rel=1e-3)
