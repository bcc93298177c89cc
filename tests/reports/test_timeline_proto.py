"""The protobuf timeline keeps every op, in whole nanoseconds, with dependency flows."""

from __future__ import annotations

from collections import defaultdict

import hwsim
from hwsim.reports import timeline, timeline_proto


def many_ops(n: int = 3000) -> hwsim.Trace:
    """Two compute streams and a copy stream, each op depending on one of the other stream."""
    ops = []
    for i in range(n):
        stream = ("a", "b", "copy")[i % 3]
        op = {"op_id": i, "stream": stream, "kind": "transfer" if stream == "copy" else "gemm",
              "src": "kv_bank" if stream == "copy" else "weights", "bytes_read": 65536 + 64 * (i % 50)}
        if stream != "copy":
            op.update(m=64 + 16 * (i % 9), n=256, k=256)
        else:
            op["dst"] = "act"
        if i >= 3:
            op["deps"] = str(i - 2)
        ops.append(op)
    return hwsim.Trace.from_ops(ops)


def slices_by_track(trace) -> dict[int, list[tuple[int, int, int, list[int], list[int]]]]:
    """(begin ns, end ns, op_id, flow_ids, terminating_flow_ids) per track uuid, checking that
    every begin has its end on the same track and that no two slices of a track overlap."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TrackEvent

    open_at: dict[int, tuple] = {}
    out: dict[int, list] = defaultdict(list)
    for p in trace.packet:
        assert p.trusted_packet_sequence_id == timeline_proto.SEQUENCE_ID
        if not p.HasField("track_event"):
            continue
        ev = p.track_event
        if ev.type == TrackEvent.TYPE_SLICE_BEGIN:
            assert ev.track_uuid not in open_at   # a track's slices never nest or overlap
            op_id = next(a.int_value for a in ev.debug_annotations if a.name == "op_id")
            open_at[ev.track_uuid] = (p.timestamp, op_id, list(ev.flow_ids), list(ev.terminating_flow_ids))
        elif ev.type == TrackEvent.TYPE_SLICE_END:
            begin, op_id, outs, ins = open_at.pop(ev.track_uuid)
            assert p.timestamp >= begin
            out[ev.track_uuid].append((begin, p.timestamp, op_id, outs, ins))
    assert not open_at
    return out


def test_every_op_is_kept_with_its_nanoseconds_and_dependencies(tmp_path):
    result = hwsim.simulate(hwsim.load_arch("h200"), many_ops())
    records, machine = result.records, result.machine
    assert len(records) > 100
    path = timeline_proto.write_timeline_proto(records, machine, tmp_path / timeline_proto.TIMELINE_PROTO)
    trace = timeline_proto.read_timeline_proto(path)
    names = {p.track_descriptor.uuid: p.track_descriptor for p in trace.packet if p.HasField("track_descriptor")}
    tracks = slices_by_track(trace)
    component = {u: s for u, s in tracks.items() if names[u].parent_uuid != timeline.PROCESSES["streams"]}
    shown = [row for rows in component.values() for row in rows]
    assert sorted(r[2] for r in shown) == sorted(records["op_id"].tolist())   # every op, none hidden
    by_op = {r[2]: r for r in shown}
    ns_start = timeline.whole_ns(records["start_cycle"].to_numpy(), 1.98e9)
    ns_end = timeline.whole_ns(records["end_cycle"].to_numpy(), 1.98e9)
    for op_id, a, b in zip(records["op_id"].tolist(), ns_start.tolist(), ns_end.tolist(), strict=True):
        assert by_op[op_id][:2] == (a, b)
    flow_source = {f: r[2] for r in shown for f in r[3]}
    flow_target = {f: r[2] for r in shown for f in r[4]}
    assert sorted(flow_source) == sorted(flow_target)
    edges = {(flow_source[f], flow_target[f]) for f in flow_source}
    assert edges == {(i - 2, i) for i in range(3, 3000)}
    streams = {u: s for u, s in tracks.items() if names[u].parent_uuid == timeline.PROCESSES["streams"]}
    assert {names[u].name for u in streams} == {"a", "b", "copy"}
    assert sum(len(s) for s in streams.values()) == len(records)
    counters = {names[p.track_event.track_uuid].name for p in trace.packet
                if p.HasField("track_event") and p.track_event.type == 4}   # TYPE_COUNTER
    assert {"hbm bandwidth", "pcie bandwidth"} <= counters


def test_the_file_is_byte_identical_for_identical_input(tmp_path, two_streams_systolic):
    records, machine = two_streams_systolic.records, two_streams_systolic.machine
    a = timeline_proto.write_timeline_proto(records, machine, tmp_path / "a.pftrace.gz")
    b = timeline_proto.write_timeline_proto(records, machine, tmp_path / "b.pftrace.gz")
    assert a.read_bytes() == b.read_bytes() and timeline_proto.available()
