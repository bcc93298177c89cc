"""Chakra execution traces: the schema hwsim carries is Chakra's, hwsim traces survive a round
trip, and traces built by hand the way other tools write them are read and simulated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hwsim
from hwsim.errors import TraceError
from hwsim.trace.chakra import (
    COLLECTIVE_TYPES,
    GlobalMetadata,
    Node,
    iter_messages,
    read_chakra,
    write_chakra,
)
from hwsim.trace.chakra import node_type as chakra_type
from workloads.registry import generate_trace

PROTO = Path(hwsim.__file__).parent / "trace" / "chakra" / "et_def.proto"


def test_the_carried_descriptor_is_the_proto_files_schema():
    text = PROTO.read_text()
    for message in (GlobalMetadata, Node):
        body = re.search(rf"message {message.DESCRIPTOR.name} \{{(.*?)\n\}}", text, re.S).group(1)
        declared = {name: int(number) for name, number in re.findall(r"(\w+) = (\d+);", body)}
        assert declared == {f.name: f.number for f in message.DESCRIPTOR.fields}
    types = dict(re.findall(r"(\w+_NODE) = (\d+);", text))
    assert {k: int(v) for k, v in types.items()} == {v.name: v.number for v in Node.DESCRIPTOR.fields_by_name["type"].enum_type.values}


def _ops(frame):
    cols = [c for c in frame.columns if c != "deps"]
    return frame[cols].reset_index(drop=True)


def test_an_hwsim_trace_round_trips_through_chakra(tmp_path):
    trace = generate_trace("transformer", "llama-2-7b", {"mode": "train", "seq_len": "512",
                                                        "tokens_per_step": "2048", "num_layers": "2", "fsdp": "4"})
    paths = write_chakra(trace, tmp_path / "step")
    assert [p.name for p in paths] == [f"step.{r}.et" for r in range(4)]
    back = read_chakra(paths[0])
    original = trace.to_frame()
    assert back.num_ops == trace.num_ops     # every op of this SPMD trace runs on rank 0
    pd_equal = _ops(back.to_frame()).equals(_ops(original))
    assert pd_equal
    assert back.to_frame()["deps"].tolist() == original["deps"].tolist()
    machine = hwsim.load_arch("hgx-h100")
    assert hwsim.simulate(machine, back).summary["total_cycles"] == hwsim.simulate(machine, trace).summary["total_cycles"]
    assert back.meta_dict()["work_units"] == trace.meta_dict()["work_units"]


def _write(path, nodes, rank=0):
    meta = GlobalMetadata(version="0.0.4")
    blobs = [meta.SerializeToString()] + [n.SerializeToString() for n in nodes]
    from google.protobuf.internal.encoder import _VarintBytes

    path.write_bytes(b"".join(_VarintBytes(len(b)) + b for b in blobs))
    return path


def _node(i, name, kind, deps=(), **attrs):
    node = Node(id=i, name=name, type=chakra_type(kind))
    node.data_deps.extend(deps)
    for key, value in attrs.items():
        a = node.attr.add()
        a.name = key
        if isinstance(value, str):
            a.string_val = value
        else:
            a.int64_val = value
    return node


def test_a_hand_built_chakra_trace_reads_and_runs_on_a_node(tmp_path):
    all_reduce = 0   # CollectiveCommType.ALL_REDUCE
    nodes = [_node(1, "aten::mm", "COMP_NODE", num_ops=2 * 4096**3, tensor_size=3 * 2 * 4096**2),
             _node(2, "aten::gelu", "COMP_NODE", [1], num_ops=4096**2 * 8, tensor_size=4 * 4096**2),
             _node(3, "nccl:all_reduce", "COMM_COLL_NODE", [2], comm_type=all_reduce, comm_size=2 * 4096**2,
                   pg_name="0-7"),
             _node(4, "send", "COMM_SEND_NODE", [3], comm_src=0, comm_dst=1, comm_size=1 << 20),
             _node(5, "mem", "MEM_LOAD_NODE", [3], tensor_size=1 << 20)]
    trace = read_chakra(_write(tmp_path / "hand.0.et", nodes))
    frame = trace.to_frame()
    assert frame["kind"].tolist() == ["gemm", "vector", "all_reduce", "send", "transfer"]
    assert frame.loc[0, "m"] == 4096 and frame.loc[0, "flops"] == 2 * 4096**3
    assert frame.loc[2, "device"] == "0-7" and frame.loc[2, "bytes_read"] == 2 * 4096**2
    assert frame.loc[3, "peer"] == 1 and frame["deps"].tolist()[1:3] == ["1", "2"]
    result = hwsim.simulate(hwsim.load_arch("hgx-h100"), trace)
    rec = result.records.set_index("op_id")
    assert rec.loc[3, "start_cycle"] >= rec.loc[2, "end_cycle"]
    assert result.summary["communication"]["communication_seconds"] > 0


def test_the_files_of_several_ranks_merge_each_collective_into_one_op(tmp_path):
    paths = []
    for rank in range(2):
        nodes = [_node(10, "aten::mm", "COMP_NODE", num_ops=2 * 1024**3 * (rank + 1), tensor_size=1 << 20),
                 _node(11, "ar", "COMM_COLL_NODE", [10], comm_type=0, comm_size=1 << 20, pg_name="0-1"),
                 _node(12, "p2p", "COMM_SEND_NODE" if rank == 0 else "COMM_RECV_NODE", [11],
                       comm_src=0, comm_dst=1, comm_size=1 << 16)]
        paths.append(_write(tmp_path / f"job.{rank}.et", nodes))
    frame = read_chakra(paths).to_frame()
    assert sorted(frame["kind"]) == ["all_reduce", "gemm", "gemm", "recv", "send"]
    ar = frame[frame["kind"] == "all_reduce"].iloc[0]
    gemms = frame[frame["kind"] == "gemm"]
    assert sorted(map(int, ar["deps"].split(";"))) == sorted(gemms["op_id"].tolist())
    assert gemms["device"].tolist() == ["0", "1"]
    recv = frame[frame["kind"] == "recv"].iloc[0]
    assert str(int(frame[frame["kind"] == "send"]["op_id"].iloc[0])) in recv["deps"].split(";")


def test_a_damaged_chakra_file_is_one_error_naming_it(tmp_path):
    path = _write(tmp_path / "bad.0.et", [_node(1, "x", "COMP_NODE", num_ops=1)])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TraceError, match="bad.0.et: truncated Chakra record"):
        read_chakra(path)
    with pytest.raises(TraceError, match="collective type"):
        read_chakra(_write(tmp_path / "odd.0.et", [_node(1, "r", "COMM_COLL_NODE", comm_type=9, comm_size=8)]))
    assert len(list(iter_messages(_write(tmp_path / "ok.0.et", [])))) == 1
    assert set(COLLECTIVE_TYPES) <= {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast"}
