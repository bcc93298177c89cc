from __future__ import annotations

import copy

import pytest

import hwsim
from hwsim.config.machine import load_arch, read_arch, resolve_arch
from hwsim.errors import ConfigError

from ..conftest import ARCH


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """
name: m
clock: 1 GHz
components:
  hbm: {kind: memory_tier, capacity: 1 GiB, bandwidth: 64 GB/s}
  vec: {kind: vector_unit, lanes: 8, memory: hbm}
placement: {default: hbm}
"""


@pytest.mark.parametrize("path", sorted(ARCH.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_machine_loads(path):
    machine = hwsim.load_arch(path)
    assert machine.clock_hz > 0
    assert machine.components


def test_units_are_parsed_once_at_load():
    machine = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    hbm = machine.component("hbm").config
    assert hbm.bandwidth == pytest.approx(3.35e12)
    assert hbm.capacity == pytest.approx(80e9)
    assert hbm.latency == pytest.approx(600e-9)
    assert machine.component("tensor").config.peak_flops["bf16"] == pytest.approx(989.4e12)


def test_unknown_key_names_path_and_suggests(tmp_path):
    path = write(tmp_path, "m.yaml", BASE.replace("bandwidth: 64 GB/s", "bandwith: 64 GB/s"))
    with pytest.raises(ConfigError) as err:
        hwsim.load_arch(path)
    message = str(err.value)
    assert str(path) in message
    assert "components.hbm.bandwith" in message
    assert "did you mean 'bandwidth'" in message


def test_unknown_component_kind_lists_known_kinds(tmp_path):
    path = write(tmp_path, "m.yaml", BASE.replace("kind: vector_unit", "kind: vectr_unit"))
    with pytest.raises(ConfigError, match=r"components.vec.kind: unknown component kind 'vectr_unit' \(did you mean 'vector_unit'\?\)"):
        hwsim.load_arch(path)


def test_missing_required_key_is_named(tmp_path):
    path = write(tmp_path, "m.yaml", BASE.replace(", bandwidth: 64 GB/s", ""))
    with pytest.raises(ConfigError, match=r"components.hbm.bandwidth: required key is missing"):
        hwsim.load_arch(path)


def test_bad_unit_is_named(tmp_path):
    path = write(tmp_path, "m.yaml", BASE.replace("64 GB/s", "64 GHz"))
    with pytest.raises(ConfigError, match=r"components.hbm.bandwidth: unit 'GHz'"):
        hwsim.load_arch(path)


def test_placement_must_name_a_tier(tmp_path):
    path = write(tmp_path, "m.yaml", BASE.replace("{default: hbm}", "{default: hbn}"))
    with pytest.raises(ConfigError, match=r"placement.default: 'hbn' is not a memory tier \(did you mean 'hbm'\?\)"):
        hwsim.load_arch(path)


def test_dispatch_rejects_a_unit_that_cannot_run_the_kind(tmp_path):
    path = write(tmp_path, "m.yaml", BASE + "dispatch: {transfer: vec}\n")
    with pytest.raises(ConfigError, match=r"dispatch.transfer: a vector_unit cannot run 'transfer'"):
        hwsim.load_arch(path)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "m.yaml", "name: m\nclock: [1 GHz\n")
    with pytest.raises(ConfigError, match=r"m.yaml:\d+: invalid YAML"):
        hwsim.load_arch(path)


def test_extends_merges_and_null_removes(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace(
        "placement:", "  dram: {kind: memory_tier, capacity: 8 GiB, bandwidth: 16 GB/s}\nplacement:"))
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nname: child\ncomponents:\n"
                  "  hbm: {bandwidth: 128 GB/s}\n  dram: null\n")
    machine = hwsim.load_arch(child)
    assert machine.name == "child"
    assert machine.component("hbm").config.bandwidth == 128e9
    assert machine.component("hbm").config.capacity == 2**30
    assert [c.name for c in machine.components] == ["hbm", "vec"]


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="extends cycle"):
        hwsim.load_arch(tmp_path / "a.yaml")


def test_h200_extends_h100_with_its_own_memory():
    h100 = hwsim.load_arch(ARCH / "h100-sxm.yaml")
    h200 = hwsim.load_arch(ARCH / "h200.yaml")
    assert h200.component("hbm").config.bandwidth == pytest.approx(4.8e12)
    assert h200.component("hbm").config.capacity == pytest.approx(141e9)
    assert h200.component("tensor").config == h100.component("tensor").config


def test_dotted_overrides_as_dict_and_strings(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    a = hwsim.load_arch(path, overrides={"components.hbm.bandwidth": "2 TB/s"})
    b = hwsim.load_arch(path, overrides=["components.hbm.bandwidth=2 TB/s", "components.vec.lanes=16"])
    assert a.component("hbm").config.bandwidth == 2e12
    assert b.component("hbm").config.bandwidth == 2e12
    assert b.component("vec").config.lanes == 16


def test_override_of_unknown_key_is_rejected_with_suggestion(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    with pytest.raises(ConfigError, match=r"components.vec.lane: unknown key \(did you mean 'lanes'\?\)"):
        hwsim.load_arch(path, overrides=["components.vec.lane=16"])


def test_out_of_range_value_is_rejected(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    with pytest.raises(ConfigError, match=r"components.vec.lanes: must be >= 1"):
        hwsim.load_arch(path, overrides={"components.vec.lanes": 0})


def test_resolved_config_round_trips_to_plain_data():
    machine = hwsim.load_arch(ARCH / "h200.yaml")
    data = machine.to_dict()
    assert data["components"]["hbm"]["bandwidth"] == pytest.approx(4.8e12)
    assert data["placement"]["kv_bank"] == "cpu_dram"


def test_override_may_create_a_missing_top_level_section(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    machine = hwsim.load_arch(path, overrides={"dispatch.vector": "vec"})
    assert machine.dispatch == {"vector": "vec"}


def test_override_into_a_missing_component_is_named(tmp_path):
    path = write(tmp_path, "m.yaml", BASE)
    with pytest.raises(ConfigError, match=r"override components.vc.lanes: no key components.vc \(did you mean 'vec'\?\)"):
        hwsim.load_arch(path, overrides={"components.vc.lanes": 4})


def test_resolving_variants_of_one_parsed_machine_equals_loading_each_and_leaves_it_unchanged():
    path = ARCH / "h200.yaml"
    raw = read_arch(path)
    before = copy.deepcopy(raw)
    for bandwidth in ("2 TB/s", "6 TB/s"):
        overrides = {"components.hbm.bandwidth": bandwidth, "placement.kv_window": "cpu_dram"}
        assert resolve_arch(raw, path, overrides) == load_arch(path, overrides=overrides)
    assert raw == before
    with pytest.raises(ConfigError, match=r"h200.yaml: override components.hbm.bandwith"):
        resolve_arch(raw, path, {"components.hbm.bandwith.x": 1})


def test_a_remembered_conversion_never_hides_a_problem_and_is_kept_per_field():
    """Values converted once are looked up later, but a bad value is reported each time it
    is written, naming its path, and a value is converted by the rules of its own field."""
    path = ARCH / "h200.yaml"
    raw = read_arch(path)
    good = resolve_arch(raw, path, {"components.hbm.bandwidth": "3 TB/s"})
    assert good.component("hbm").config.bandwidth == 3e12
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"components\.hbm\.bandwidth: .*3 TB"):
            resolve_arch(raw, path, {"components.hbm.bandwidth": "3 TB"})
    # The same text in a field of another dimension is that field's problem, not a value.
    with pytest.raises(ConfigError, match=r"components\.hbm\.capacity"):
        resolve_arch(raw, path, {"components.hbm.capacity": "3 TB/s"})
    assert resolve_arch(raw, path, {"components.hbm.bandwidth": "3 TB/s"}) == good


def test_machines_share_the_built_components_whose_config_they_share():
    """Two points of one parsed machine that differ in the HBM share every other built
    component; the HBM is their own, and each equals a machine built from its file."""
    from hwsim.engine.machine import Machine

    path = ARCH / "h200.yaml"
    raw = read_arch(path)
    slow, fast = (Machine(resolve_arch(raw, path, {"components.hbm.bandwidth": bw})) for bw in ("2 TB/s", "6 TB/s"))
    assert slow.components["hbm"] is not fast.components["hbm"]
    assert slow.components["hbm"].config.bandwidth == 2e12 and fast.components["hbm"].config.bandwidth == 6e12
    others = [name for name in slow.components if name != "hbm"]
    assert others and all(slow.components[n] is fast.components[n] for n in others)
    fresh = Machine(load_arch(path, overrides={"components.hbm.bandwidth": "6 TB/s"}))
    assert fresh.config_dict == fast.config_dict
