"""`hwsim describe` and `hwsim schema`: documentation and JSON Schemas from the typed fields."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from hwsim.cli.describe_cmd import describe_lines, schema_text
from hwsim.cli.main import main
from hwsim.components.base import REGISTRY
from hwsim.components.facts import machine_facts
from hwsim.config.machine import load_arch
from hwsim.units import format_quantity

from ..conftest import ARCH, ROOT

FILES = {"machine": sorted(ARCH.glob("*.yaml")),
         "sweep": sorted((ROOT / "examples" / "sweeps").glob("*.yaml")),
         "regress": sorted((ROOT / "tests" / "regress").glob("*.yaml"))}
MODELINE = "# yaml-language-server: $schema=../docs/schema/machine.schema.json"


@pytest.mark.parametrize("kind", sorted(FILES))
def test_committed_schemas_are_what_hwsim_schema_prints(kind):
    committed = (ROOT / "docs" / "schema" / f"{kind}.schema.json").read_text()
    assert committed == schema_text(kind), f"rerun: hwsim schema {kind} -o docs/schema/{kind}.schema.json"
    jsonschema.Draft202012Validator.check_schema(json.loads(committed))


@pytest.mark.parametrize(("kind", "path"), [(k, p) for k, paths in FILES.items() for p in paths],
                         ids=lambda x: getattr(x, "name", x))
def test_every_shipped_file_is_valid_under_its_schema(kind, path):
    validator = jsonschema.Draft202012Validator(json.loads(schema_text(kind)))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("path", FILES["machine"], ids=lambda p: p.name)
def test_shipped_machines_point_editors_at_the_schema(path):
    assert path.read_text().splitlines()[0] == MODELINE
    assert (path.parent / MODELINE.split("=", 1)[1]).is_file()


@pytest.mark.parametrize(("block", "where"), [
    ({"kind": "sram", "capacity": "8 MiB", "num_banks": 16, "bank_width": 64, "bandwith": 1}, "bandwith"),
    ({"kind": "memory_tier", "capacity": "1 GiB", "bandwidth": "64 GHz"}, "bandwidth"),
    ({"kind": "vector_unit", "lanes": 8, "memory": "hbm", "dataflow": "os"}, "dataflow"),
])
def test_the_machine_schema_flags_unknown_keys_and_wrong_units(block, where):
    validator = jsonschema.Draft202012Validator(json.loads(schema_text("machine")))
    machine = {"clock": "1 GHz", "components": {"x": block}}
    assert not validator.is_valid(machine)
    machine["components"]["x"] = {k: v for k, v in block.items() if k != where}
    assert validator.is_valid(machine)


def test_describe_lists_every_component_kind_and_file_kind(capsys):
    assert main(["describe"]) == 0
    out = capsys.readouterr().out
    for name in (*REGISTRY, "machine", "sweep", "regress", "trace-meta"):
        assert f"  {name} " in out


@pytest.mark.parametrize("kind", [*sorted(REGISTRY), "machine", "sweep", "regress", "trace-meta"])
def test_describe_prints_every_parameter_with_unit_default_and_range(kind):
    text = "\n".join(describe_lines(kind))
    if kind in REGISTRY:
        for name in REGISTRY[kind].Config.__dataclass_fields__:
            assert f"  {name} " in text
    assert "default" in text


def test_describe_of_sram_shows_units_ranges_and_required():
    lines = {line.split()[0]: line for line in describe_lines("sram")[1:]}
    assert "B" in lines["capacity"].split() and "(required)" in lines["capacity"] and "> 0" in lines["capacity"]
    assert ">= 0" in lines["read_energy"] and "pJ/access" in lines["read_energy"].split()


def test_describe_of_a_machine_prints_each_components_facts(tmp_path):
    lines = describe_lines("gh200")
    facts = machine_facts(load_arch("gh200"))
    c2c = lines.index("c2c (link, link)")
    for i, b in enumerate(facts["c2c"].bandwidth, start=1):
        assert lines[c2c + i].split()[:2] == ["bandwidth", b.direction]
        assert lines[c2c + i].endswith(f"{format_quantity(b.sustained_bytes_per_s, 'bandwidth')} of "
                                       f"{format_quantity(b.peak_bytes_per_s, 'bandwidth')}")
    tensor = lines.index(f"tensor (matrix_engine, compute, 1 at once, {format_quantity(1.98e9, 'frequency')})")
    assert lines[tensor + 1].startswith("  peak        bf16 989.4 TFLOP/s, ")
    copy = tmp_path / "m.yaml"
    copy.write_text((ARCH / "tiny.yaml").read_text())
    assert describe_lines(str(copy))[2:] == describe_lines("tiny")[2:]
    assert describe_lines("machine")[0].startswith("machine file (top level)")   # the file kind wins


def test_describe_of_a_node_of_two_kinds_names_each_kind_and_its_file():
    lines = describe_lines("h200x4-pcie-kvasic")
    kind = [line for line in lines if line.startswith("  device 4: kind 'kvasic'")]
    assert len(kind) == 1 and "worldkv-asic.yaml" in kind[0]
    assert "tensor (matrix_engine" in "\n".join(lines)   # the file's own devices, 0-3


def test_describe_of_an_unknown_kind_is_one_line_with_a_suggestion(capsys):
    assert main(["describe", "sramm"]) == 2
    assert capsys.readouterr().err == "hwsim: error: describe: unknown kind 'sramm' (did you mean 'sram'?)\n"


def test_schema_can_be_written_to_a_file(tmp_path, capsys):
    assert main(["schema", "sweep", "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "hwsim sweep file"
