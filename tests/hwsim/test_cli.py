from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pandas as pd
import pytest

import hwsim
from hwsim.cli.main import main

from ..conftest import ARCH, EXAMPLES, ROOT


def test_run_writes_records_summary_config_and_meta(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["run", "--arch", str(ARCH / "h200.yaml"), "--trace", str(EXAMPLES / "offload.csv"),
                   "--out", str(out), "--csv", "--set", "components.pcie.bandwidth=126 GB/s"])
    assert status == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["machine.resolved.yaml", "records.csv", "records.parquet", "run.json", "summary.json",
                     "trace_meta.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["throughput_unit"] == "frame/s"
    printed = capsys.readouterr().out
    for fragment in ("total", "cycles", "throughput", "busiest", "hbm", "energy", str(out)):
        assert fragment in printed


@pytest.mark.parametrize(("args", "fragment"), [
    (["--set", "components.link.bandwith=1"], "components.link.bandwith: unknown key (did you mean 'bandwidth'?)"),
    (["--set", "components.pcie.bandwidth=1"], "override components.pcie.bandwidth: no key components.pcie"),
    (["--set", "nokeyvalue"], "--set 'nokeyvalue': expected key.path=value"),
])
def test_bad_option_is_one_line_and_exit_2(tmp_path, capsys, args, fragment):
    status = main(["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(EXAMPLES / "gemm.csv"),
                   "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert fragment in err
    assert err.count("\n") == 1 and err.startswith("hwsim: error: ")


def test_bad_trace_names_file_row_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("op_id,kind\n0,sync\n1,gem\n")
    status = main(["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(bad), "--out", str(tmp_path / "o")])
    assert status == 2
    assert f"{bad}: row 2 (op_id 1), column 'kind'" in capsys.readouterr().err


def test_overflow_fails_unless_allowed(tmp_path, capsys):
    trace = tmp_path / "big.csv"
    trace.write_text("op_id,kind,dst,bytes_written\n0,alloc,weights,2000000000\n")
    args = ["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(trace), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "the working set does not fit (hbm: peak 2 GB > capacity 1.074 GB)" in capsys.readouterr().err
    assert main([*args, "--allow-overflow"]) == 0
    assert "OVERFLOW" in capsys.readouterr().out


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli.main", "--debug", "run", "--arch",
                           str(tmp_path / "missing.yaml"), "--trace", str(EXAMPLES / "gemm.csv"),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "no such machine file" in proc.stderr


def test_a_missing_option_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--arch", "x.yaml"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "hwsim: error: run: the following arguments are required: --trace, --out\n"


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # `true` exits without reading, long before hwsim has started, so every write fails.
    command = f"{shlex.quote(sys.executable)} -m hwsim energy --library | true"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_run_at_roofline_fidelity_and_the_gap_report(tmp_path, capsys):
    # Two streams whose transfers share tiny's link: the event level queues one behind the other.
    trace = tmp_path / "shared_link.csv"
    trace.write_text("op_id,stream,kind,bytes_read,src,dst\n"
                     "0,a,transfer,8192,dram,hbm\n1,b,transfer,8192,dram,hbm\n2,a,vector,4096,hbm,\n")
    base = ["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(trace), "--quiet"]
    assert main([*base, "--out", str(tmp_path / "event"), "--gap"]) == 0
    assert main([*base, "--out", str(tmp_path / "roof"), "--fidelity", "roofline"]) == 0
    event = pd.read_parquet(tmp_path / "event" / "records.parquet").set_index("op_id")
    roof = pd.read_parquet(tmp_path / "roof" / "records.parquet").set_index("op_id")
    assert json.loads((tmp_path / "roof" / "summary.json").read_text())["fidelity"] == "roofline"
    gap = pd.read_csv(tmp_path / "event" / "gap_by_kind.csv").set_index("kind")
    # Independently: per kind, event time from ready to end minus the roofline duration.
    kinds = event["kind"].astype(str)
    expected = ((event["end_cycle"] - event["ready_cycle"]) - (roof["end_cycle"] - roof["start_cycle"])).groupby(kinds).sum()
    assert gap["gap_cycles"].to_dict() == expected.to_dict()
    assert gap.loc["transfer", "gap_cycles"] > 0 and gap.loc["transfer", "gap_share"] == 1.0
    assert main(["report", str(tmp_path / "event")]) == 0
    summary_md = (tmp_path / "event" / "summary.md").read_text()
    assert "## Contention per op kind" in summary_md and f"{gap.loc['transfer', 'gap_cycles']:,}" in summary_md
    assert main([*base, "--out", str(tmp_path / "bad"), "--fidelity", "roofline", "--gap"]) == 2
    assert "--gap: compares the event level with the roofline" in capsys.readouterr().err


def test_run_writes_records_as_it_goes_one_row_group_per_batch(tmp_path):
    import pyarrow.parquet as pq

    from hwsim.results import read_records

    rows = [{"op_id": i, "kind": "vector", "flops": 128 * (i % 7 + 1), "stream": f"s{i % 2}"} for i in range(70)]
    trace = hwsim.write_trace(hwsim.Trace.from_ops(rows), tmp_path / "t.parquet", row_group_rows=20)
    out = tmp_path / "run"
    assert main(["run", "--arch", str(ARCH / "tiny.yaml"), "--trace", str(trace), "--out", str(out), "--csv",
                 "--quiet"]) == 0
    assert pq.ParquetFile(out / "records.parquet").num_row_groups == 4
    in_memory = hwsim.simulate(hwsim.load_arch(ARCH / "tiny.yaml"), hwsim.read_trace(trace)).records
    pd.testing.assert_frame_equal(read_records(out), in_memory)
    assert (out / "records.csv").read_text() == in_memory.to_csv(index=False)
