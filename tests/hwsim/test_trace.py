from __future__ import annotations

import pandas as pd
import pytest

import hwsim
from hwsim.errors import TraceError

from ..conftest import EXAMPLES


def ops(n=4):
    return [{"op_id": i, "kind": "vector", "flops": 100 * (i + 1), "elements": 64,
             "deps": str(i - 1) if i else ""} for i in range(n)]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.csv")), ids=lambda p: p.stem)
def test_example_traces_validate(path):
    trace = hwsim.read_trace(path)
    assert len(trace) > 0
    assert trace.meta.generator == "hand"


def test_csv_and_parquet_round_trip_identically(tmp_path):
    trace = hwsim.Trace.from_ops(ops(), meta={"generator": "t", "work_unit": "token", "work_units": 4})
    for suffix in ("csv", "parquet"):
        path = hwsim.write_trace(trace, tmp_path / f"t.{suffix}")
        back = hwsim.read_trace(path)
        pd.testing.assert_frame_equal(back.to_frame(), trace.to_frame())
        assert back.meta == trace.meta


def test_parquet_is_read_one_row_group_at_a_time(tmp_path):
    trace = hwsim.Trace.from_ops(ops(10))
    path = hwsim.write_trace(trace, tmp_path / "t.parquet", row_group_rows=3)
    streamed = hwsim.read_trace(path)
    assert not streamed.in_memory
    assert [len(b) for b in streamed.iter_batches()] == [3, 3, 3, 1]


def test_gemm_flops_default_to_2mnk_batch():
    trace = hwsim.Trace.from_ops([{"op_id": 0, "kind": "gemm", "m": 3, "n": 5, "k": 7, "batch": 2}])
    assert trace.to_frame()["flops"].iat[0] == 2 * 3 * 5 * 7 * 2


@pytest.mark.parametrize(("bad", "fragment"), [
    ({"kind": "gem"}, "row 2 (op_id 1), column 'kind': unknown kind 'gem' (did you mean 'gemm'?)"),
    ({"flops": -5}, "row 2 (op_id 1), column 'flops': must be >= 0, got -5"),
    ({"flops": "lots"}, "row 2 (op_id 1), column 'flops': expected an integer, got 'lots'"),
    ({"deps": "7"}, "row 2 (op_id 1), column 'deps': op 7 is not defined on an earlier row"),
    ({"deps": "0;x"}, "row 2 (op_id 1), column 'deps': 'x' is not an op_id"),
    ({"op_id": 0}, "row 2 (op_id 0), column 'op_id': duplicate op_id 0"),
    ({"dtype": "bf61"}, "column 'dtype': unknown dtype 'bf61' (did you mean 'bf16'?)"),
    ({"kind": "transfer", "src": "kv_bank"}, "column 'dst': a transfer or gather needs a destination space"),
    ({"bytes_read": 10}, "column 'src': bytes_read > 0 needs a source space"),
])
def test_bad_rows_name_row_and_column(bad, fragment):
    rows = ops(3)
    rows[1].update(bad)
    with pytest.raises(TraceError) as err:
        hwsim.Trace.from_ops(rows, source="t.csv")
    assert fragment in str(err.value)
    assert str(err.value).startswith("t.csv: ")


def test_bad_csv_row_is_named_by_file_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("op_id,kind,flops\n0,vector,10\n1,vector,ten\n")
    with pytest.raises(TraceError, match=r"bad.csv: row 2 \(op_id 1\), column 'flops': expected an integer"):
        hwsim.read_trace(path)


def test_unknown_column_suggests_the_schema_name(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("op_id,kind,flop\n0,vector,10\n")
    with pytest.raises(TraceError, match=r"unknown column 'flop' \(did you mean 'flops'\?\)"):
        hwsim.read_trace(path)


def test_bad_row_in_a_later_row_group_is_numbered_across_groups(tmp_path):
    rows = ops(7)
    frame = pd.DataFrame(rows)
    frame.loc[5, "deps"] = "99"
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, row_group_size=2)
    trace = hwsim.read_trace(path)
    with pytest.raises(TraceError, match=r"row 6 \(op_id 5\), column 'deps'"):
        list(trace.iter_batches())


def test_bad_metadata_json_is_reported(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# hwsim-trace {nope\nop_id,kind\n0,sync\n")
    with pytest.raises(TraceError, match=r"t.csv: line 1: metadata is not valid JSON"):
        hwsim.read_trace(path)


def test_missing_file_and_format_are_reported(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        hwsim.read_trace(tmp_path / "nope.csv")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(TraceError, match="unknown trace format"):
        hwsim.read_trace(tmp_path / "t.txt")
