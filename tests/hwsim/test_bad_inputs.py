"""Bad inputs found by mutating the shipped files: each ends in lines naming the file and the
key path, row or option, with exit status 2, never a traceback or a silently wrong result."""

from __future__ import annotations

import json
import os
import re

import pyarrow.parquet as pq
import pytest

import hwsim
from hwsim.errors import ConfigError, TraceError

from ..conftest import ARCH, EXAMPLES, ROOT
from ..contract import assert_sane_run, assert_user_error, run_cli

TINY = ARCH / "tiny.yaml"
GEMM = EXAMPLES / "gemm.csv"
REGRESS = ROOT / "tests" / "regress" / "regress.yaml"


def run(tmp_path, *extra, arch=TINY, trace=GEMM, out=None):
    return run_cli("run", "--arch", arch, "--trace", trace, "--out", tmp_path / "o" if out is None else out,
                   "--quiet", *extra)


def write(tmp_path, name, text):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- silently wrong ------------------------------------------------------------------------

def small_cases(tmp_path):
    cases = write(tmp_path, "cases.yaml", f"cases:\n  - {{name: tiny/gemm, machine: {TINY}, trace: {GEMM}}}\n")
    baseline = tmp_path / "base.csv"
    assert run_cli("regress", "--cases", cases, "--baseline", baseline, "--update", "--quiet").status == 0
    return cases, baseline


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_regress_refuses_a_baseline_value_that_is_not_finite(tmp_path, value):
    cases, baseline = small_cases(tmp_path)
    text = baseline.read_text().splitlines()
    text[1] = ",".join([*text[1].split(",")[:2], value])
    baseline.write_text("\n".join(text) + "\n")
    lines = assert_user_error(run_cli("regress", "--cases", cases, "--baseline", baseline), baseline)
    assert "row 2, column 'value'" in lines[0] and "not a finite number" in lines[0]


def test_regress_refuses_a_metric_pinned_twice(tmp_path):
    cases, baseline = small_cases(tmp_path)
    rows = baseline.read_text().splitlines()
    baseline.write_text("\n".join([*rows, rows[1].rsplit(",", 1)[0] + ",1"]) + "\n")
    lines = assert_user_error(run_cli("regress", "--cases", cases, "--baseline", baseline), baseline)
    assert f"row {len(rows) + 1}:" in lines[0] and "pinned twice (first on row 2)" in lines[0]


def test_a_run_folder_with_a_file_from_another_run_is_refused_by_report_and_compare(tmp_path):
    assert run(tmp_path, out=tmp_path / "a").status == 0
    assert run(tmp_path, trace=EXAMPLES / "offload.csv", arch=ARCH / "h200.yaml", out=tmp_path / "b").status == 0
    (tmp_path / "a" / "summary.json").write_bytes((tmp_path / "b" / "summary.json").read_bytes())
    assert_user_error(run_cli("report", tmp_path / "a"), "summary.json: differs from the manifest")
    assert_user_error(run_cli("compare", "--run", tmp_path / "a", "--run", tmp_path / "b", "--out", tmp_path / "c"),
                      "summary.json: differs from the manifest")


@pytest.mark.parametrize(("shape", "batch"), [(2**21, 1), (2**20, 4)], ids=["2^21-cube", "2^20-batch-4"])
def test_gemm_flops_that_overflow_int64_are_refused_with_row_and_column(tmp_path, shape, batch):
    trace = write(tmp_path, "big.csv", f"op_id,kind,m,n,k,batch\n0,gemm,{shape},{shape},{shape},{batch}\n")
    lines = assert_user_error(run(tmp_path, trace=trace), trace)
    assert "row 1 (op_id 0), column 'flops'" in lines[0]


@pytest.mark.parametrize("setting", ["components.hbm.bandwidth=1e-300 B/s", "components.tensor.clock=1e-300 Hz"])
def test_a_rate_so_small_that_time_overflows_is_refused_naming_the_op(tmp_path, setting):
    lines = assert_user_error(run(tmp_path, "--set", setting), TINY)
    assert "op " in lines[0] and "more than int64 cycle counts can hold" in lines[0]


def test_a_reference_clock_far_below_any_machine_is_refused(tmp_path):
    assert_user_error(run(tmp_path, "--set", "clock=1e-300"), "--set clock: must be >= 1,000")


@pytest.mark.parametrize(("setting", "message"), [
    ("components.hbm.energy_per_bit=-1 pJ/bit", "components.hbm.energy_per_bit: must be >= 0"),
    ("components.vector.leakage_power=-3 W", "components.vector.leakage_power: must be >= 0"),
    ("components.vector.clock=-1 GHz", "components.vector.clock: must be >= 0"),
    ("components.hbm.latency=.nan", "components.hbm.latency: must be a finite number"),
    ("components.hbm.bandwidth=.inf", "components.hbm.bandwidth: must be a finite number"),
    ("components.hbm.bandwidth=1e400 B/s", "components.hbm.bandwidth: must be a finite number"),
    ("components.tensor.efficiency=1.5", "components.tensor.efficiency: must be in (0, 1]"),
], ids=["negative-energy", "negative-leakage", "negative-clock", "nan-latency", "inf-bandwidth",
        "1e400-bandwidth", "efficiency-above-1"])
def test_physically_impossible_machines_are_refused_at_load(tmp_path, setting, message):
    assert_user_error(run(tmp_path, "--set", setting), message)


def test_load_arch_rejects_what_only_the_simulator_used_to(tmp_path):
    machine = write(tmp_path, "m.yaml", (ARCH / "edge-npu.yaml").read_text())
    with pytest.raises(ConfigError, match=r"m.yaml: --set components.sram.num_banks: must be a power of two, got 12"):
        hwsim.load_arch(machine, overrides={"components.sram.num_banks": 12})


def test_duplicate_yaml_keys_are_refused_with_both_lines(tmp_path):
    text = TINY.read_text().replace("bandwidth: 64 GB/s", "bandwidth: 64 GB/s\n    bandwidth: 32 GB/s")
    machine = write(tmp_path, "m.yaml", text)
    lines = assert_user_error(run(tmp_path, arch=machine), machine)
    assert "components.hbm.bandwidth: duplicate key (first written on line" in lines[0]


def test_a_duplicated_component_block_is_refused(tmp_path):
    text = TINY.read_text() + "\ncomponents:\n  hbm: {kind: memory_tier, capacity: 1 GiB, bandwidth: 1 TB/s}\n"
    machine = write(tmp_path, "m.yaml", text)
    assert "components: duplicate key" in assert_user_error(run(tmp_path, arch=machine), machine)[0]


def test_extends_cannot_be_overridden_silently(tmp_path):
    assert_user_error(run(tmp_path, "--set", "extends=missing.yaml"), "override extends")


@pytest.mark.parametrize(("entry", "message"), [
    ("allow_overflow: \"no\"", "cases[0].allow_overflow: expected true or false, got 'no'"),
    ("workload: {family: hrm, preset: hrm-text-1b, seed: 1.5}", "cases[0].workload.seed: expected a whole number"),
], ids=["truthy-no", "fractional-seed"])
def test_regress_case_values_are_typed(tmp_path, entry, message):
    body = f"cases:\n  - name: x\n    machine: {TINY}\n    {entry}\n"
    if "workload" not in entry:
        body += f"    trace: {GEMM}\n"
    cases = write(tmp_path, "c.yaml", body)
    assert_user_error(run_cli("regress", "--cases", cases, "--baseline", tmp_path / "b.csv"), message)


@pytest.mark.parametrize(("meta", "message"), [
    ('{"work_units": "abc"}', "metadata.work_units"),
    ('{"seed": 1.5}', "metadata.seed: expected a whole number"),
    ('{"work_unit": 3}', None),
    ('[1, 2]', "metadata must be a JSON object"),
    ('{"work_units": NaN}', "metadata is not valid JSON"),
])
def test_trace_metadata_types_are_checked(tmp_path, meta, message):
    trace = write(tmp_path, "t.csv", f"# hwsim-trace {meta}\nop_id,kind\n0,sync\n")
    outcome = run(tmp_path, trace=trace)
    if message is None:   # a number where text is expected is taken as that text
        assert outcome.status == 0
        return
    assert message in assert_user_error(outcome, trace)[0]


def test_an_empty_out_is_refused_rather_than_writing_into_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(run(tmp_path, out=""), "the path is empty")
    assert list(tmp_path.iterdir()) == []


# -- tracebacks instead of one line --------------------------------------------------------

@pytest.mark.parametrize("case", ["out-is-a-file", "out-inside-a-file"])
@pytest.mark.parametrize("command", ["run", "sweep", "trace", "regress-junit", "regress-update", "compare"])
def test_output_paths_are_checked_before_any_work(tmp_path, command, case):
    blocker = write(tmp_path, "afile", "x")
    target = blocker if case == "out-is-a-file" else blocker / "sub"
    sweep = ROOT / "examples" / "sweeps" / "systolic-array-size.yaml"
    args = {"run": ["run", "--arch", TINY, "--trace", GEMM, "--out", target],
            "sweep": ["sweep", sweep, "--out", target, "--workers", "0"],
            "trace": ["trace", "hrm", "--preset", "hrm-text-1b", "-o", target / "t.csv" if case != "out-is-a-file"
                      else tmp_path],
            "regress-junit": ["regress", "--cases", REGRESS, "--baseline", tmp_path / "b.csv", "--junit",
                              target if case != "out-is-a-file" else tmp_path],
            "regress-update": ["regress", "--cases", REGRESS, "--baseline", target if case != "out-is-a-file"
                               else tmp_path, "--update"],
            "compare": ["compare", "--arch", TINY, "--arch", ARCH / "h200.yaml", "--trace", GEMM, "--out", target]}
    assert_user_error(run_cli(*args[command], "--quiet") if command != "trace" else run_cli(*args[command]))


@pytest.mark.parametrize("damage", ["no-machine", "truncated-summary", "truncated-records", "summary-shape",
                                    "records-of-another-schema", "no-manifest"])
def test_report_and_compare_refuse_incomplete_or_damaged_run_folders(tmp_path, damage):
    folder = tmp_path / "run"
    assert run(tmp_path, out=folder).status == 0
    if damage == "no-machine":
        (folder / "machine.resolved.yaml").unlink()
    elif damage == "truncated-summary":
        (folder / "summary.json").write_text((folder / "summary.json").read_text()[:40])
    elif damage == "truncated-records":
        (folder / "records.parquet").write_bytes((folder / "records.parquet").read_bytes()[:100])
    elif damage == "summary-shape":
        (folder / "summary.json").write_text("[1, 2, 3]\n")
    elif damage == "records-of-another-schema":
        pq.write_table(pq.read_table(folder / "records.parquet").select(["op_id"]), folder / "records.parquet")
    else:
        (folder / "run.json").unlink()
    assert_user_error(run_cli("report", folder), folder)
    assert_user_error(run_cli("compare", "--run", folder, "--run", folder, "--out", tmp_path / "c"), folder)


@pytest.mark.parametrize("where", ["machine", "trace", "sweep", "cases", "baseline", "points"])
def test_bytes_that_are_not_utf8_are_one_line_naming_file_and_line(tmp_path, where):
    bad = write(tmp_path, "bad.csv" if where in ("trace", "baseline") else "bad.yaml", b"name: m\n\xff\xfe\n")
    sweep = ROOT / "examples" / "sweeps" / "systolic-array-size.yaml"
    args = {"machine": ["run", "--arch", bad, "--trace", GEMM, "--out", tmp_path / "o"],
            "trace": ["run", "--arch", TINY, "--trace", bad, "--out", tmp_path / "o"],
            "sweep": ["sweep", bad, "--dry-run"],
            "cases": ["regress", "--cases", bad, "--baseline", tmp_path / "b.csv"],
            "baseline": ["regress", "--cases", REGRESS, "--baseline", bad],
            "points": ["sweep", sweep, "--dry-run", "--points", f"@{bad}"]}[where]
    lines = assert_user_error(run_cli(*args), f"{bad}:2: ")
    assert "is not UTF-8 text" in lines[0]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("empty.csv", "", "is empty"),
    ("header-only.csv", "op_id,kind\n", "has no rows"),
    ("ragged.csv", "op_id,kind\n0,sync\n1,sync,3\n", "line 3: expected 2 fields (as in the header), saw 3"),
    ("nul.csv", "op_id,kind\n0,sync\x00\n", "nul.csv:2: the trace file holds a NUL byte"),
    ("int64.csv", "op_id,kind,flops\n0,vector,9223372036854775808\n", "'9223372036854775808' does not fit int64"),
    ("count-inf.csv", "op_id,kind,flops\n0,vector,inf\n", "expected an integer, got 'inf'"),
    ("count-nan.csv", "op_id,kind,flops\n0,vector,nan\n", "expected an integer"),
    ("count-2-64.csv", "op_id,kind,bytes_read,src\n0,vector,18446744073709551616,hbm\n", "does not fit int64"),
    ("deps.csv", "op_id,kind,deps\n0,sync,\n1,sync,99999999999999999999999\n", "column 'deps'"),
    ("twice.csv", "op_id,kind,kind\n0,sync,sync\n", "column 'kind' appears twice"),
])
def test_malformed_csv_traces_are_one_line(tmp_path, name, text, message):
    trace = write(tmp_path, name, text)
    lines = assert_user_error(run(tmp_path, trace=trace), trace)
    assert len(lines) == 1 and message in lines[0] and "-9223372036854775808" not in lines[0]


def test_a_folder_given_as_a_file_is_one_line(tmp_path):
    assert_user_error(run(tmp_path, trace=tmp_path), f"{tmp_path}: is a folder, not a trace file")
    assert_user_error(run(tmp_path, arch=tmp_path), f"{tmp_path}: is a folder, not a machine file")


def test_corrupt_parquet_data_pages_are_one_line(tmp_path):
    good = hwsim.write_trace(hwsim.read_trace(EXAMPLES / "offload.csv"), tmp_path / "t.parquet")
    data = bytearray(good.read_bytes())
    for i in range(8, len(data) // 2):    # inside the data pages, before the footer
        data[i] ^= 0x5A
    bad = write(tmp_path, "bad.parquet", bytes(data))
    assert_user_error(run(tmp_path, trace=bad), bad)


def test_a_constraint_nested_2000_deep_is_one_line(tmp_path):
    sweep = write(tmp_path, "s.yaml", f"machine: {TINY}\ntraces: [{GEMM}]\naxes: {{components.vector.lanes: [8]}}\n"
                  f"constraints: [\"{'(' * 2000}lanes{')' * 2000} > 1\"]\n")
    assert "constraints[0]" in assert_user_error(run_cli("sweep", sweep, "--dry-run"), sweep)[0]


def test_a_regress_name_template_with_a_lone_brace_is_one_line(tmp_path):
    cases = write(tmp_path, "c.yaml", f"matrix:\n  - machines: {TINY}\n    traces: {GEMM}\n    name: \"{{machine}}}}x}}\"\n")
    assert "matrix[0].name: not a name template" in assert_user_error(
        run_cli("regress", "--cases", cases, "--baseline", tmp_path / "b.csv"), cases)[0]


@pytest.mark.parametrize("args", [["trace", "hrm", "--preset", "hrm-text-1b", "--seed", "-1", "-o", "x.csv"],
                                  ["validate", "--seed", "-1"]], ids=["trace", "validate"])
def test_a_negative_seed_is_one_line(args):
    assert_user_error(run_cli(*args), "--seed")


def test_a_scheduler_address_without_a_known_protocol_is_one_line():
    sweep = ROOT / "examples" / "sweeps" / "systolic-array-size.yaml"
    assert_user_error(run_cli("sweep", sweep, "--out", "x", "--scheduler", "bogus://x"), "--scheduler 'bogus://x'")


def test_a_300_character_machine_name_is_refused(tmp_path):
    assert_user_error(run(tmp_path, "--set", "name=" + "x" * 300), "--set name:")


# -- resource exhaustion from small inputs ----------------------------------------------------

@pytest.mark.parametrize("text", ["len('a' * 1000 * 1000 * 1000) > 0", "'%s' % lanes == '8'", "-'a' == 'a'"])
def test_constraints_have_no_string_arithmetic(tmp_path, text):
    sweep = write(tmp_path, "s.yaml", f"machine: {TINY}\ntraces: [{GEMM}]\naxes: {{components.vector.lanes: [8]}}\n"
                  f"constraints: [\"{text}\"]\n")
    assert_user_error(run_cli("sweep", sweep, "--dry-run"), "constraints[0]")


def test_a_sweep_of_a_billion_points_is_refused_before_building_them(tmp_path):
    axes = "".join(f"  components.{c}: [{', '.join(['1'] * 1000)}]\n"
                   for c in ("vector.lanes", "vector.count", "tensor.num_units"))
    sweep = write(tmp_path, "s.yaml", f"machine: {TINY}\ntraces: [{GEMM}]\naxes:\n{axes}")
    lines = assert_user_error(run_cli("sweep", sweep, "--dry-run"), sweep)
    assert "1,000,000,000 combinations, more than the 100,000" in lines[0]


def test_extends_of_a_device_is_refused_without_reading_it(tmp_path):
    machine = write(tmp_path, "m.yaml", "extends: /dev/zero\n")
    assert_user_error(run(tmp_path, arch=machine), "/dev/zero: is not a regular file")


def test_nested_yaml_aliases_are_bounded(tmp_path):
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    machine = write(tmp_path, "m.yaml", text + "clock: 1 GHz\n")
    assert "aliases nested too far" in assert_user_error(run(tmp_path, arch=machine), machine)[0]


def test_a_local_cluster_never_has_more_workers_than_runs(monkeypatch):
    import distributed

    from hwsim.sweep import cluster

    started = {}

    class Stop(Exception):
        pass

    def fake_cluster(n_workers, **_):
        started["n"] = n_workers
        raise Stop

    monkeypatch.setattr(distributed, "LocalCluster", fake_cluster)
    with pytest.raises(Stop):
        cluster.run_on_dask(list(range(8)), lambda g: g, lambda pairs: None, lambda r, e: None, workers=12)
    assert started["n"] == 8


# -- unclear ------------------------------------------------------------------------------------

def test_a_bad_link_end_names_the_file_and_line(tmp_path):
    lines = assert_user_error(run(tmp_path, "--set", "components.link.between=[hbm, nowhere]"), TINY)
    assert "components.link.between: 'nowhere' is not a memory tier" in lines[0]
    machine = write(tmp_path, "m.yaml", TINY.read_text().replace("between: [hbm, dram]", "between: [hbm, dramm]"))
    line = assert_user_error(run(tmp_path, arch=machine), machine)[0]
    assert line.startswith(f"hwsim: error: {machine}:") and "did you mean 'dram'" in line


def test_every_problem_of_a_machine_file_is_reported_at_once(tmp_path):
    text = TINY.read_text().replace("lanes: 64", "lanes: -1").replace("capacity: 1 GiB", "capacity: 1 GHz")
    machine = write(tmp_path, "m.yaml", text + "colour: blue\n")
    lines = assert_user_error(run(tmp_path, arch=machine), machine)
    assert len(lines) == 3
    located = [re.match(rf"hwsim: error: {re.escape(str(machine))}:(\d+): ([\w.]+): ", line) for line in lines]
    assert all(located), lines
    assert sorted(m.group(2) for m in located) == ["colour", "components.hbm.capacity", "components.vector.lanes"]
    text = machine.read_text().splitlines()
    for m in located:   # each line number is the line of that key
        assert text[int(m.group(1)) - 1].strip().startswith(m.group(2).rsplit(".", 1)[-1] + ":")


def test_a_sweep_whose_machine_is_bad_names_the_sweep_file(tmp_path):
    machine = write(tmp_path, "m.yaml", TINY.read_text().replace("lanes: 64", "lanes: zero"))
    sweep = write(tmp_path, "s.yaml", f"machine: m.yaml\ntraces: [{GEMM}]\naxes: {{components.hbm.bandwidth: [1 TB/s]}}\n")
    line = assert_user_error(run_cli("sweep", sweep, "--dry-run"), sweep)[0]
    assert line.startswith(f"hwsim: error: {sweep}:1: machine: {machine}:") and "components.vector.lanes" in line


def test_messages_show_plain_values_not_numpy_reprs(tmp_path):
    sweep = write(tmp_path, "s.yaml", f"machine: {TINY}\ntraces: [{GEMM}]\n"
                  "axes: {components.hbm.bandwidth: {low: 1 GB/s, high: 2 GB/s, num: 2}}\n"
                  "constraints: ['hbm.bandwidth / 2']\n")
    line = assert_user_error(run_cli("sweep", sweep, "--dry-run"), sweep)[0]
    assert "gives 500000000.0" in line


def test_trace_reader_errors_are_trace_errors(tmp_path):
    with pytest.raises(TraceError, match="is empty"):
        hwsim.read_trace(write(tmp_path, "e.csv", ""))


def test_a_successful_run_is_finite_and_non_negative(tmp_path):
    assert run(tmp_path, trace=EXAMPLES / "offload.csv", arch=ARCH / "h200.yaml").status == 0
    assert_sane_run(tmp_path / "o")
    assert json.loads((tmp_path / "o" / "run.json").read_text())["files"].keys() >= {
        "records.parquet", "summary.json", "machine.resolved.yaml", "trace_meta.json"}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".o.hwsim-")]


def test_report_refuses_a_damaged_sweep_table(tmp_path):
    sweep = ROOT / "examples" / "sweeps" / "hbm-link-sample.yaml"
    out = tmp_path / "sw"
    assert run_cli("sweep", sweep, "--out", out, "--workers", "0", "--fidelity", "roofline", "--quiet").status == 0
    table = out / "results.parquet"
    table.write_bytes(table.read_bytes()[:300])
    assert "damaged sweep results table" in assert_user_error(run_cli("report", out), table)[0]


def test_a_regress_case_with_an_invalid_machine_is_bad_input_found_before_any_case_runs(tmp_path):
    cases = write(tmp_path, "c.yaml", f"cases:\n  - name: x\n    machine: {TINY}\n    trace: {GEMM}\n"
                  "    overrides: {components.hbm.bandwith: 1 TB/s}\n")
    line = assert_user_error(run_cli("regress", "--cases", cases, "--baseline", tmp_path / "b.csv"), cases)[0]
    assert line.startswith(f"hwsim: error: {cases}:2: cases[0]: case x: ") and "bandwith" in line


def test_debug_works_after_the_subcommand_too(tmp_path):
    outcome = run_cli("run", "--arch", tmp_path / "missing.yaml", "--trace", GEMM, "--out", tmp_path / "o", "--debug")
    assert outcome.status == 2 and "Traceback" in outcome.err and "no such machine file" in outcome.err


@pytest.mark.parametrize("damage", ["comparison.json", "comparison.parquet"])
def test_report_refuses_a_damaged_comparison_folder(tmp_path, damage):
    out = tmp_path / "cmp"
    assert run_cli("compare", "--arch", TINY, "--arch", ARCH / "h200.yaml", "--trace", GEMM, "--out", out,
                   "--quiet").status == 0
    (out / damage).write_bytes((out / damage).read_bytes()[:20])
    assert_user_error(run_cli("report", out), out / damage)


def test_a_space_the_machine_does_not_place_names_the_trace_and_the_machine(tmp_path):
    text = (ARCH / "edge-npu.yaml").read_text()
    machine = write(tmp_path, "m.yaml", text[:text.index("\nplacement:")] + "\nplacement: {act: sram, state: sram}\n")
    line = assert_user_error(run(tmp_path, arch=machine), machine)[0]
    assert "space 'weights' is not placed" in line and str(GEMM) in line


def test_a_missing_peak_names_the_machine_file_and_the_trace_row(tmp_path):
    text = TINY.read_text().replace("peak_flops: {bf16: 2.048 TFLOP/s, fp32: 0.512 TFLOP/s}",
                                    "peak_flops: {fp32: 0.512 TFLOP/s}")
    machine = write(tmp_path, "m.yaml", text)
    line = assert_user_error(run(tmp_path, arch=machine), machine)[0]
    assert line.startswith(f"hwsim: error: {machine}: {GEMM}: row ") and "no peak for 'bf16'" in line
