"""Timeline in Perfetto's protobuf trace format, for runs too large for JSON.

The JSON timeline (:mod:`hwsim.reports.timeline`) caps its slices to stay loadable; this
writer keeps every op. It uses the ``perfetto`` package's ``TraceProtoBuilder`` (no network,
no trace processor) and writes ``timeline.pftrace.gz``, which https://ui.perfetto.dev opens
as it is. The layout is the JSON timeline's: a parent track per process ("compute units",
"memory tiers", "links", "streams") with one child track per component, lane and stream;
each op a slice (``TYPE_SLICE_BEGIN`` / ``TYPE_SLICE_END``) at whole nanoseconds computed
once from its cycles (:func:`hwsim.reports.timeline.whole_ns`); dependencies as flows
(``flow_ids`` on the dependency's slice, ``terminating_flow_ids`` on the dependent's); tier
occupancy and bandwidth as counter tracks.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_bytes
from hwsim.errors import HwsimError
from hwsim.reports import timeline

TIMELINE_PROTO = "timeline.pftrace.gz"
#: Packets of one writer share this sequence id (the format requires one per writer).
SEQUENCE_ID = 1
#: Track uuids: a process track is its PROCESSES id; component tracks count up from here,
#: counter tracks from twice as far.
FIRST_TRACK = 1 << 20
FIRST_COUNTER = 1 << 40


def available() -> bool:
    """True when the ``perfetto`` package's trace builder can be imported."""
    try:
        _builder_class()
    except HwsimError:
        return False
    return True


def _builder_class():
    try:
        from perfetto.trace_builder.proto_builder import TraceProtoBuilder
    except ImportError as err:
        raise HwsimError(f"the protobuf timeline needs the 'perfetto' package ({err}); "
                         f"install it, or write the JSON timeline") from None
    return TraceProtoBuilder


def timeline_proto(records: pd.DataFrame, machine: dict[str, Any], *, buckets: int = timeline.DEFAULT_BUCKETS,
                   streams: bool = True, flows: bool = True) -> bytes:
    """The serialized (uncompressed) protobuf trace of every op in ``records``."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TracePacket, TrackEvent

    builder = _builder_class()()
    clock = float(machine["clock_hz"])
    start = records["start_cycle"].to_numpy(dtype=np.int64)
    end = records["end_cycle"].to_numpy(dtype=np.int64)
    begin_ns, end_ns = timeline.whole_ns(start, clock), timeline.whole_ns(end, clock)
    kinds = records["kind"].astype(str).to_numpy(dtype=object)
    tags = records["tag"].astype(str).to_numpy(dtype=object)
    comps = records["component"].astype(str).to_numpy(dtype=object)
    stream_names = records["stream"].astype(str).to_numpy(dtype=object)
    op_ids = records["op_id"].to_numpy(dtype=np.int64)
    work = ~np.isin(kinds, ("alloc", "free"))
    groups = timeline.component_groups(machine)

    first = True

    def packet():
        nonlocal first
        p = builder.add_packet()
        p.trusted_packet_sequence_id = SEQUENCE_ID
        if first:
            p.sequence_flags = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
            first = False
        return p

    for name, pid in timeline.PROCESSES.items():
        d = packet().track_descriptor
        d.uuid, d.name = pid, name
    track_of_row = np.zeros(len(records), dtype=np.int64)   # component track uuid per row
    stream_track_of_row = np.zeros(len(records), dtype=np.int64)
    next_uuid = FIRST_TRACK

    def add_track(parent: int, label: str) -> int:
        nonlocal next_uuid
        next_uuid += 1
        d = packet().track_descriptor
        d.uuid, d.parent_uuid, d.name = next_uuid, parent, label
        return next_uuid

    names = [*machine["components"], *sorted(set(comps[work]) - set(machine["components"]) - {""})]
    for name in names:
        rows = np.flatnonzero(work & (comps == name))
        lanes = timeline.assign_lanes(start[rows], end[rows])
        for lane in range(int(lanes.max()) + 1 if len(rows) else 0):
            uuid = add_track(timeline.PROCESSES[groups.get(name, groups.get(name.split(":")[0], "compute units"))],
                             name if lane == 0 else f"{name} #{lane}")
            track_of_row[rows[lanes == lane]] = uuid
    if streams:
        for name in sorted(set(stream_names)):
            rows = np.flatnonzero(work & (stream_names == name))
            lanes = timeline.assign_lanes(start[rows], end[rows])
            for lane in range(int(lanes.max()) + 1 if len(rows) else 1):
                uuid = add_track(timeline.PROCESSES["streams"], name if lane == 0 else f"{name} #{lane}")
                stream_track_of_row[rows[lanes == lane]] = uuid

    outgoing: dict[int, list[int]] = {}
    incoming: dict[int, list[int]] = {}
    if flows:
        source, target = timeline.dependency_edges(records)
        keep = work[source] & work[target]
        for flow_id, (a, b) in enumerate(zip(source[keep].tolist(), target[keep].tolist(), strict=True), 1):
            outgoing.setdefault(a, []).append(flow_id)
            incoming.setdefault(b, []).append(flow_id)

    def slice_events(rows: np.ndarray, tracks: np.ndarray, with_flows: bool) -> None:
        order = rows[np.lexsort((op_ids[rows], begin_ns[rows], tracks[rows]))]
        for row in order.tolist():
            kind, tag = kinds[row], tags[row]
            p = packet()
            p.timestamp = int(begin_ns[row])
            ev = p.track_event
            ev.type, ev.track_uuid = TrackEvent.TYPE_SLICE_BEGIN, int(tracks[row])
            ev.name = f"{kind} {tag}" if tag else kind
            ev.categories.append(kind)
            note = ev.debug_annotations.add()
            note.name, note.int_value = "op_id", int(op_ids[row])
            if with_flows:
                ev.flow_ids.extend(outgoing.get(row, ()))
                ev.terminating_flow_ids.extend(incoming.get(row, ()))
            p = packet()
            p.timestamp = int(end_ns[row])
            p.track_event.type, p.track_event.track_uuid = TrackEvent.TYPE_SLICE_END, int(tracks[row])

    slice_events(np.flatnonzero(work), track_of_row, with_flows=True)
    if streams:
        slice_events(np.flatnonzero(work), stream_track_of_row, with_flows=False)
    _counters(packet, records, machine, start, end, clock, buckets, TrackEvent)
    return builder.serialize()


def _counters(packet, records: pd.DataFrame, machine: dict[str, Any], start: np.ndarray, end: np.ndarray,
              clock: float, buckets: int, TrackEvent) -> None:
    """The JSON timeline's occupancy and bandwidth counters, each on its own counter track."""
    last = int(end.max()) if len(end) else 0
    bucket = max(1, -(-last // max(buckets, 1)))
    edges = bucket * np.arange(max(1, -(-last // bucket)) + 1, dtype=np.int64)

    def us(cycles: np.ndarray) -> np.ndarray:
        return timeline.whole_ns(cycles, clock) / 1000.0

    values = [*timeline.occupancy_counters(records, machine, 0, last, edges, us),
              *timeline.bandwidth_counters(records, machine, start, end, edges, clock, us)]
    uuids: dict[str, int] = {}
    for event in values:
        name = event["name"]
        if name not in uuids:
            uuids[name] = FIRST_COUNTER + len(uuids)
            d = packet().track_descriptor
            d.uuid, d.parent_uuid, d.name = uuids[name], event["pid"], name
            d.counter.SetInParent()
        (unit, value), = event["args"].items()
        p = packet()
        p.timestamp = int(np.rint(event["ts"] * 1000))
        p.track_event.type, p.track_event.track_uuid = TrackEvent.TYPE_COUNTER, uuids[name]
        p.track_event.double_counter_value = float(value)


def write_timeline_proto(records: pd.DataFrame, machine: dict[str, Any], path: str | os.PathLike,
                         **options: Any) -> Path:
    """Write :func:`timeline_proto` gzipped to ``path`` (atomic; no time stamp in the header).

    Raises HwsimError when the ``perfetto`` package is not installed."""
    return atomic_write_bytes(path, gzip.compress(timeline_proto(records, machine, **options),
                                                  compresslevel=6, mtime=0))


def read_timeline_proto(path: str | os.PathLike):
    """The ``Trace`` message of a file written by :func:`write_timeline_proto` (for checks)."""
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace()
    trace.ParseFromString(gzip.decompress(Path(path).read_bytes()))
    return trace
