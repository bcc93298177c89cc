"""Component facts: each shipped machine's records against counts made from its YAML text,
the records as written into a run, and the one-way import between config and components."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import hwsim
from hwsim.components.base import REGISTRY, _load_builtin_components
from hwsim.components.facts import (
    FACTS_KEY,
    ComponentFacts,
    facts_section,
    machine_facts,
    read_facts,
)
from hwsim.config.fields import field_unit
from hwsim.config.machine import read_arch, resolve_arch
from hwsim.engine.machine import Machine
from hwsim.errors import ResultError
from hwsim.units import parse_quantity

from ..conftest import ARCH

MACHINES = sorted(p.name for p in ARCH.glob("*.yaml"))
#: Written out here rather than read from the classes, so that a class that changes role fails.
ROLE_OF_KIND = {"systolic_array": "compute", "matrix_engine": "compute", "vector_unit": "compute",
                "similarity_engine": "compute", "cam_unit": "compute", "dma_engine": "compute",
                "memory_tier": "tier", "sram": "tier", "link": "link", "host_runtime": "host",
                "fabric": "link", "network": "link"}
#: Units of each kind's energy and power keys, from the meaning of the constant.
ENERGY_UNITS = {"energy_per_flop": "pJ/FLOP", "energy_per_compare": "pJ/compare", "energy_per_bit": "pJ/bit",
                "search_energy_per_bit": "pJ/bit", "write_energy_per_bit": "pJ/bit",
                "read_energy": "pJ/access", "write_energy": "pJ/access", "leakage_power": "W"}


def expected_facts(raw: dict, clock: float) -> dict:
    """What one component block's record must say, counted from the block's YAML text."""
    kind = raw["kind"]

    def q(key, dimension, default=0.0):
        return parse_quantity(raw[key], dimension) if key in raw else default

    count = int(raw.get("count", 1))
    own_clock = q("clock", "frequency") or clock
    out = {"role": ROLE_OF_KIND[kind], "instances": 1, "clock_hz": own_clock, "peaks": {}, "bandwidth": {},
           "capacity": 0.0, "on_chip": 0}
    if out["role"] == "compute":
        out["instances"] = count
    if kind == "systolic_array":
        out["instances"] = count if raw.get("partition", "folds") == "ops" else 1
        out["peaks"] = {"any": 2.0 * raw["rows"] * raw["cols"] * count * own_clock}
    elif kind == "vector_unit":
        out["peaks"] = {"any": raw["lanes"] * float(raw.get("flops_per_lane", 2)) * count * own_clock}
    elif kind == "similarity_engine":
        out["peaks"] = {"any": 2.0 * raw["lanes"] * raw["vector_width"] * count * own_clock}
    elif kind == "matrix_engine":
        out["peaks"] = {d: parse_quantity(v, "flops") for d, v in raw["peak_flops"].items()}
    elif kind == "dma_engine":
        out["instances"] = count * int(raw.get("queue_depth", 1))
        out["bandwidth"] = {"move": (q("bandwidth", "bandwidth"),) * 2}
    elif kind == "cam_unit":
        out["on_chip"] = raw["entries"] * raw["key_bits"] * count // 8
    elif kind == "memory_tier":
        peak, eff = q("bandwidth", "bandwidth"), float(raw.get("efficiency", 1.0))
        write = float(raw.get("write_efficiency", 0.0)) or eff
        out["bandwidth"] = {"read": (peak, peak * eff), "write": (peak, peak * write)}
        out["capacity"] = q("capacity", "bytes")
        out["on_chip"] = int(out["capacity"]) if raw.get("on_chip") else 0
    elif kind == "sram":
        bandwidth = raw["num_banks"] * parse_quantity(raw["bank_width"], "bytes") * raw.get("ports", 1) * own_clock
        out["bandwidth"] = {"read": (bandwidth, bandwidth), "write": (bandwidth, bandwidth)}
        out["capacity"] = q("capacity", "bytes")
        out["on_chip"] = int(out["capacity"])
    elif kind in ("fabric", "network"):   # one port per direction (every device's is alike)
        peak = q("bandwidth", "bandwidth")
        out["bandwidth"] = {"port": (peak, peak * float(raw.get("efficiency", {}).get("default", 1.0)))}
    elif kind == "link":
        a, b = raw["between"]
        peak, eff = q("bandwidth", "bandwidth"), float(raw.get("efficiency", 1.0))
        to = raw.get("efficiency_to", {})
        out["bandwidth"] = {f"{a}->{b}": (peak, peak * float(to.get(b, eff))),
                            f"{b}->{a}": (peak, peak * float(to.get(a, eff)))}
    return out


@pytest.mark.parametrize("name", MACHINES)
def test_facts_of_every_shipped_machine_match_counts_from_its_yaml(name):
    raw = read_arch(ARCH / name)   # the merged YAML text, units not yet parsed
    clock = parse_quantity(raw["clock"], "frequency")
    facts = machine_facts(hwsim.load_arch(ARCH / name))
    assert list(facts) == list(raw["components"])
    for cname, block in raw["components"].items():
        record, expected = facts[cname], expected_facts(block, clock)
        assert (record.kind, record.role, record.instances) == (block["kind"], expected["role"],
                                                                expected["instances"]), cname
        assert record.clock_hz == pytest.approx(expected["clock_hz"])
        assert record.peak_flops == pytest.approx(expected["peaks"]), cname
        got = {b.direction: (b.peak_bytes_per_s, b.sustained_bytes_per_s) for b in record.bandwidth}
        assert got.keys() == expected["bandwidth"].keys(), cname
        for direction, pair in expected["bandwidth"].items():
            assert got[direction] == pytest.approx(pair), (cname, direction)
        assert (record.capacity_bytes, record.on_chip_bytes) == (pytest.approx(expected["capacity"]),
                                                                 expected["on_chip"]), cname
        for constant in record.energy:
            assert constant.unit == ENERGY_UNITS[constant.name], (cname, constant.name)
            written = block.get(constant.name)
            if isinstance(written, str | int | float):   # a {ref: ...} is scaled by the library
                dimension = {"W": "power", "pJ/bit": "energy_bit"}.get(constant.unit, "energy")
                if constant.name in ("search_energy_per_bit", "write_energy_per_bit"):
                    dimension = "energy"
                assert constant.value == pytest.approx(parse_quantity(written, dimension)), (cname, constant.name)
            assert constant.source and constant.source != "(no source given)" or "source" not in block


def test_h100_fp32_peak_is_sms_times_lanes_times_two_times_the_clock():
    """The YAML's own derivation: 132 SMs x 128 FP32 lanes x 2 FLOP (FMA) x 1.98 GHz."""
    facts = machine_facts(hwsim.load_arch(ARCH / "h100-sxm.yaml"))
    assert facts["tensor"].peak_flops["fp32"] == pytest.approx(132 * 128 * 2 * 1.98e9, rel=1e-3)
    assert facts["vector"].peak_flops["any"] == pytest.approx(132 * 128 * 2 * 1.98e9, rel=1e-3)


def test_every_registered_kind_states_a_role_and_a_unit_for_each_energy_field():
    _load_builtin_components()
    assert set(REGISTRY) == set(ROLE_OF_KIND)
    for kind, cls in REGISTRY.items():
        assert cls.role == ROLE_OF_KIND[kind], kind
        for f in dataclasses.fields(cls.Config):
            if f.metadata.get("unit") in ("energy", "energy_bit", "power"):
                assert field_unit(f) == ENERGY_UNITS[f.name], (kind, f.name)


def test_records_survive_the_resolved_machine_file_unchanged(tmp_path, tiny, tiny_trace):
    result = hwsim.simulate(tiny, tiny_trace)
    folder = hwsim.write_run(result, tmp_path / "run")
    _, _, machine, _ = hwsim.results.load_run(folder)
    assert read_facts(machine) == machine_facts(tiny)
    assert machine[FACTS_KEY] == Machine(tiny).config_dict[FACTS_KEY]
    assert all(isinstance(r, ComponentFacts) for r in read_facts(machine).values())


def test_a_resolved_machine_without_facts_is_refused_with_what_to_do(tiny):
    machine = tiny.to_dict()
    with pytest.raises(ResultError, match="no 'facts' section.*run it again"):
        read_facts(machine)
    broken = {**Machine(tiny).config_dict, FACTS_KEY: {"hbm": {"kind": "memory_tier"}}}
    with pytest.raises(ResultError, match="facts.hbm: not a component facts record"):
        read_facts(broken)


def test_importing_the_config_package_does_not_import_the_components():
    """config -> components is one way: components import config.fields; config looks
    kinds up only when it validates a machine."""
    code = ("import sys, hwsim.config.machine, hwsim.config.fields, hwsim.config.catalog, "
            "hwsim.config.yaml_file, hwsim.config.json_schema\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('hwsim.components'))\n"
            "assert not loaded, loaded\n"
            "hwsim.config.machine.load_arch('tiny')\n"
            "assert 'hwsim.components.base' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_points_that_share_a_component_config_share_its_record_and_others_get_their_own():
    raw = read_arch(ARCH / "h200.yaml")
    slow = resolve_arch(raw, ARCH / "h200.yaml", {"components.hbm.bandwidth": "2 TB/s"})
    fast = resolve_arch(raw, ARCH / "h200.yaml", {"components.hbm.bandwidth": "4 TB/s"})
    a, b = facts_section(slow), facts_section(fast)
    assert a["hbm"]["bandwidth"][0]["peak_bytes_per_s"] == 2e12
    assert b["hbm"]["bandwidth"][0]["peak_bytes_per_s"] == 4e12
    assert a["tensor"] == b["tensor"]
    renamed = hwsim.load_arch(ARCH / "tiny.yaml")
    assert {n: r["kind"] for n, r in facts_section(renamed).items()} == {s.name: s.kind for s in renamed.components}


@pytest.mark.parametrize("name", MACHINES)
def test_a_record_read_back_from_its_plain_form_is_the_same_to_the_last_type(name):
    # A summary reads the records of its own run's machine without parsing them again
    # (read_facts knows the plain dicts it made): parsing must give the same records.
    config = hwsim.load_arch(ARCH / name)
    section = facts_section(config)
    for component, record in machine_facts(config).items():
        assert repr(ComponentFacts.from_dict(component, dict(section[component]))) == repr(record)
    assert read_facts({FACTS_KEY: section}) == read_facts({FACTS_KEY: {k: dict(v) for k, v in section.items()}})
