"""Records carry their times in seconds as well as cycles, at the machine's reference clock."""

from __future__ import annotations

import numpy as np
import pytest

import hwsim
from hwsim.engine.analytic import roofline

from ..conftest import EXAMPLES


@pytest.mark.parametrize("fidelity", ["event", "roofline"])
def test_seconds_columns_are_the_cycles_over_the_clock(fidelity):
    machine = hwsim.load_arch("h200")   # 1.98 GHz: a cycle is not a whole number of ns
    trace = hwsim.read_trace(EXAMPLES / "offload.csv")
    result = (hwsim.simulate if fidelity == "event" else roofline)(machine, trace)
    records = result.records
    start = records["start_cycle"].to_numpy()
    end = records["end_cycle"].to_numpy()
    assert np.array_equal(records["start_seconds"].to_numpy(), start / 1.98e9)
    assert np.array_equal(records["seconds"].to_numpy(), (end - start) / 1.98e9)
    last = int(records["end_cycle"].max())
    assert records["start_seconds"].max() <= result.summary["seconds"] == pytest.approx(last / 1.98e9)


def test_on_a_one_gigahertz_machine_a_cycle_is_a_nanosecond(tiny, tiny_trace):
    records = hwsim.simulate(tiny, tiny_trace).records
    assert records["seconds"].tolist() == pytest.approx(
        ((records["end_cycle"] - records["start_cycle"]) * 1e-9).tolist(), rel=1e-15)
