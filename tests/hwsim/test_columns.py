"""The columnar trace: integer codes for text, deps as id lists, one layout in memory and in Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.errors import TraceError
from hwsim.trace.columns import OpColumns, Vocabulary
from workloads.common.ops import OpTable


def mixed_ops(n=12):
    ops = []
    for i in range(n):
        op = {"op_id": i, "kind": ("vector", "transfer", "gemm")[i % 3], "stream": ("a", "b")[i % 2],
              "deps": str(i - 2) if i >= 2 and i % 4 == 0 else "", "phase": f"p{i // 5}"}
        if op["kind"] == "transfer":
            op.update(src="kv_bank", dst="act", bytes_read=64 * (i + 1))
        elif op["kind"] == "gemm":
            op.update(m=16, n=16, k=16 + i)
        else:
            op.update(flops=100 * i)
        ops.append(op)
    return ops


def test_parquet_traces_store_text_as_dictionaries_and_deps_as_lists(tmp_path):
    path = hwsim.write_trace(hwsim.Trace.from_ops(mixed_ops()), tmp_path / "t.parquet", row_group_rows=5)
    schema = pq.read_schema(path)
    assert pa.types.is_dictionary(schema.field("kind").type)
    assert pa.types.is_dictionary(schema.field("stream").type)
    assert schema.field("deps").type == pa.list_(pa.int64())
    table = pq.read_table(path)
    assert table.column("deps").to_pylist()[4] == [2]


def test_a_value_keeps_its_code_in_every_batch(tmp_path):
    # "p2" first appears in the third row group: earlier codes must not move.
    path = hwsim.write_trace(hwsim.Trace.from_ops(mixed_ops()), tmp_path / "t.parquet", row_group_rows=5)
    trace = hwsim.read_trace(path)
    batches = list(trace.iter_batches())
    vocab = trace.vocab["phase"]
    for batch in batches:
        assert batch.vocab["phase"] is vocab
        decoded = np.asarray(vocab.values, dtype=object)[batch.codes["phase"]]
        assert (decoded == batch["phase"]).all()
    assert [b["phase"][0] for b in batches] == ["p0", "p1", "p2"]


def test_parquet_written_with_plain_strings_and_text_deps_reads_the_same(tmp_path):
    trace = hwsim.Trace.from_ops(mixed_ops())
    frame = trace.to_frame().astype({c: str for c in ("stream", "kind", "unit", "src", "src2", "dst", "dtype",
                                                      "kernel", "access", "phase", "tag")})
    path = tmp_path / "old.parquet"
    frame.to_parquet(path, row_group_size=4)
    deps_type = pq.read_schema(path).field("deps").type
    assert pa.types.is_string(deps_type) or pa.types.is_large_string(deps_type)
    pd.testing.assert_frame_equal(hwsim.read_trace(path).to_frame(), trace.to_frame())


def test_deps_may_be_lists_text_or_integers():
    base = [{"op_id": 0, "kind": "sync"}, {"op_id": 1, "kind": "sync"}]
    as_text = hwsim.Trace.from_ops([*base, {"op_id": 2, "kind": "sync", "deps": "0; 1"}])
    as_list = hwsim.Trace.from_ops([*base, {"op_id": 2, "kind": "sync", "deps": [0, 1]}])
    assert as_text.to_frame()["deps"].tolist() == as_list.to_frame()["deps"].tolist() == ["", "", "0;1"]
    with pytest.raises(TraceError, match=r"row 1 \(op_id 0\), column 'deps': op 0 is not defined on an earlier row"):
        hwsim.Trace.from_frame(pd.DataFrame({"op_id": [0, 1], "kind": ["sync", "sync"], "deps": [0, 0]}))
    one_each = hwsim.Trace.from_frame(pd.DataFrame({"op_id": [0, 1], "kind": ["sync", "sync"], "deps": [None, 0]}))
    assert one_each.to_frame()["deps"].tolist() == ["", "0"]


def test_dep_rows_name_the_trace_row_of_each_dependency(tmp_path):
    ops = [{"op_id": 10 * i, "kind": "sync", "deps": str(10 * (i - 1)) if i else ""} for i in range(7)]
    path = hwsim.write_trace(hwsim.Trace.from_ops(ops), tmp_path / "t.parquet", row_group_rows=3)
    rows = np.concatenate([b.dep_rows for b in hwsim.read_trace(path).iter_batches()])
    assert rows.tolist() == [0, 1, 2, 3, 4, 5]


def test_a_list_deps_column_pointing_forward_names_row_and_column(tmp_path):
    table = pa.table({"op_id": [0, 1], "kind": ["sync", "sync"], "deps": pa.array([[1], []], pa.list_(pa.int64()))})
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(TraceError, match=r"row 1 \(op_id 0\), column 'deps': op 1 is not defined on an earlier row"):
        list(hwsim.read_trace(tmp_path / "t.parquet").iter_batches())


def test_null_cells_take_the_column_default(tmp_path):
    table = pa.table({"op_id": [0, 1], "kind": ["vector", "vector"], "flops": pa.array([5, None], pa.int64()),
                      "stream": pa.array(["x", None]).dictionary_encode()})
    pq.write_table(table, tmp_path / "t.parquet")
    frame = hwsim.read_trace(tmp_path / "t.parquet").to_frame()
    assert frame["flops"].tolist() == [5, 0]
    assert frame["stream"].tolist() == ["x", "main"]


def test_text_columns_read_as_decoded_strings_by_cost_models():
    batch = hwsim.Trace.from_ops(mixed_ops()).columns()
    kinds = np.asarray(batch["kind"], dtype=object)
    assert kinds[:3].tolist() == ["vector", "transfer", "gemm"]
    assert "kernel" in batch and "nonsense" not in batch
    taken = batch.take(np.array([2, 0]))
    assert len(taken) == 2 and taken["kind"].tolist() == ["gemm", "vector"]


def test_vocabulary_codes_never_change_meaning():
    vocab = Vocabulary(["a", "b"])
    assert vocab.encode(["b", "c", "a"]).tolist() == [1, 2, 0]
    assert vocab.values == ["a", "b", "c"] and vocab.find("zz") == -1


def test_op_table_builds_columns_without_deps_text():
    table = OpTable()
    first = table.one("vector", flops=10)
    ids = table.grid((3,), [dict(kind="vector", flops=5, deps=(first, first)), dict(kind="sync", after=0)])
    columns = table.build_columns()
    assert isinstance(columns, OpColumns)
    trace = hwsim.Trace.from_columns(columns)
    deps = trace.to_frame()["deps"].tolist()
    # a repeated id counts once; "after" adds the cell's first op
    assert deps == ["", "0", str(ids[0, 0]), "0", str(ids[1, 0]), "0", str(ids[2, 0])]


def test_slices_share_memory_and_keep_their_rows(tmp_path):
    columns = hwsim.Trace.from_ops(mixed_ops()).columns()
    part = columns.slice(4, 9)
    assert part.first_row == 4 and len(part) == 5
    assert np.shares_memory(part.ints["m"], columns.ints["m"])
    assert part.to_frame(["op_id", "deps"])["deps"].tolist() == ["2", "", "", "", "6"]


def test_columns_taken_lazily_equal_columns_taken_at_once():
    ops = hwsim.Trace.from_ops([{"op_id": i, "kind": "gemm" if i % 2 else "vector", "m": i, "n": 2, "k": 3,
                                 "flops": 7 * i, "src": "w" if i % 3 else "a"} for i in range(20)]).columns()
    rows = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    lazy, eager = ops.take_lazily(rows), ops.take(rows)
    assert len(lazy) == len(eager) == len(rows) and "m" in lazy and "nope" not in lazy
    for name in ("m", "flops", "kind", "src"):
        np.testing.assert_array_equal(lazy[name], eager[name])
    np.testing.assert_array_equal(lazy.equals("kind", "gemm"), eager.equals("kind", "gemm"))
    assert lazy.factorize("src")[1] == eager.factorize("src")[1]
    assert sorted(lazy.keys()) == sorted(eager.keys())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["", "1", "2;3", "4", "x", "y"]), max_size=8), max_size=5))
def test_vocabulary_encodes_like_a_dict_of_first_appearances(batches):
    vocab, seen = Vocabulary(), {}
    for values in batches:
        for v in values:
            seen.setdefault(v, len(seen))
        assert vocab.encode(values).tolist() == [seen[v] for v in values]
    assert vocab.values == list(seen)
