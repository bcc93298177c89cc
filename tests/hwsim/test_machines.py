"""Every shipped machine runs; tiered-memory designs move the cost of host-memory traffic."""

from __future__ import annotations

import pytest

import hwsim

from ..conftest import ARCH, EXAMPLES

MACHINES = sorted(ARCH.glob("*.yaml"))


@pytest.mark.parametrize("trace", sorted(EXAMPLES.glob("*.csv")), ids=lambda p: p.stem)
@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_every_machine_runs_every_example_trace(path, trace):
    result = hwsim.simulate(hwsim.load_arch(path), hwsim.read_trace(trace), allow_overflow=True)
    assert result.summary["total_cycles"] > 0
    assert result.summary["energy"]["total_pj"] > 0


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_every_machine_file_starts_with_a_description_comment(path):
    assert path.read_text().startswith("#"), f"{path.name} must be documented at the top"


def bank_run(arch: str, overrides=None):
    machine = hwsim.load_arch(ARCH / arch, overrides=overrides)
    return hwsim.simulate(machine, hwsim.read_trace(EXAMPLES / "offload.csv"))


def test_kv_bank_placement_moves_the_retrieval_cost_with_the_link():
    in_hbm = bank_run("h200.yaml", {"placement.kv_bank": "hbm"}).summary
    over_pcie = bank_run("h200.yaml").summary
    over_c2c = bank_run("gh200.yaml").summary
    assert in_hbm["links"]["pcie"]["bytes"] == 0
    assert over_pcie["links"]["pcie"]["bytes"] == over_c2c["links"]["c2c"]["bytes"] > 0
    assert in_hbm["total_cycles"] < over_c2c["total_cycles"] < over_pcie["total_cycles"]
    link_energy = {"pcie": over_pcie["energy"]["by_component_pj"]["pcie"],
                   "c2c": over_c2c["energy"]["by_component_pj"]["c2c"]}
    assert link_energy["c2c"] == pytest.approx(link_energy["pcie"] * 1.3 / 5.5)


def test_state_held_on_chip_beats_state_in_hbm_for_decode():
    trace = hwsim.read_trace(EXAMPLES / "decode_state.csv")
    on_chip = hwsim.simulate(hwsim.load_arch(ARCH / "gdn-decode-asic.yaml"), trace)
    in_hbm = hwsim.simulate(hwsim.load_arch(ARCH / "gdn-decode-asic.yaml", overrides={"placement.state": "hbm"}), trace)
    updates_on_chip = on_chip.records[on_chip.records["kind"] == "state_update"]
    updates_in_hbm = in_hbm.records[in_hbm.records["kind"] == "state_update"]
    assert updates_on_chip["bytes_hbm"].sum() == 0
    assert updates_in_hbm["bytes_hbm"].sum() == 2 * 2 * 1048576  # read + write, two tokens
    assert updates_on_chip["end_cycle"].sub(updates_on_chip["start_cycle"]).sum() < \
        updates_in_hbm["end_cycle"].sub(updates_in_hbm["start_cycle"]).sum()
    assert updates_on_chip["energy_pj"].sum() < updates_in_hbm["energy_pj"].sum()
