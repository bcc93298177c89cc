from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

import hwsim
from hwsim.errors import HwsimError
from hwsim.reports import timeline

from ..conftest import ARCH

REQUIRED = {"X": {"name", "ph", "ts", "dur", "pid", "tid"}, "M": {"name", "ph", "pid", "args"},
            "C": {"name", "ph", "ts", "pid", "args"}, "i": {"name", "ph", "ts", "pid", "tid", "s"},
            "s": {"name", "ph", "ts", "pid", "tid", "id", "cat"}, "f": {"name", "ph", "ts", "pid", "tid", "id", "cat"}}


def perfetto_ns(microseconds: float) -> int:
    """The nanoseconds Perfetto's JSON importer reads from a ``ts`` or ``dur`` number
    (``llround(value * 1000)``)."""
    return int(np.rint(microseconds * 1000.0))


def check_trace_events(trace: dict) -> dict[str, list[dict]]:
    """Assert the Chrome/Perfetto JSON Object Format rules this project relies on; return the
    events by phase."""
    assert set(trace) >= {"traceEvents"}
    assert "displayTimeUnit" not in trace   # Perfetto ignores it and flags the file for it
    by_phase: dict[str, list[dict]] = defaultdict(list)
    for event in trace["traceEvents"]:
        assert event["ph"] in REQUIRED, event
        assert REQUIRED[event["ph"]] <= set(event), event
        assert isinstance(event["pid"], int)
        by_phase[event["ph"]].append(event)
        if "ts" in event:
            assert event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0
        if event["ph"] == "C":
            assert all(isinstance(v, int | float) for v in event["args"].values())
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "process_sort_index", "thread_sort_index")
    named = {(e["pid"], e["tid"]) for e in by_phase["M"] if e["name"] == "thread_name"}
    per_track = defaultdict(list)
    for event in by_phase["X"]:
        assert (event["pid"], event["tid"]) in named
        per_track[event["pid"], event["tid"]].append(event)
    for events in per_track.values():  # sorted, and no two slices of one track overlap, in Perfetto's ns
        for a, b in zip(events, events[1:], strict=False):
            assert b["ts"] >= a["ts"]
            assert perfetto_ns(b["ts"]) >= perfetto_ns(a["ts"]) + perfetto_ns(a["dur"]), (a, b)
    return by_phase


def track_names(trace: dict) -> dict[tuple[int, int], str]:
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def test_timeline_json_has_the_trace_event_structure(tmp_path, two_streams_systolic):
    path = timeline.write_timeline(two_streams_systolic.records, two_streams_systolic.machine,
                                   tmp_path / "t.json")
    trace = json.loads(path.read_text())
    check_trace_events(trace)
    processes = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert processes == {"compute units", "memory tiers", "links", "streams"}


def test_every_op_is_one_slice_on_its_component_with_its_duration(offload_tiny):
    records, machine = offload_tiny.records, offload_tiny.machine
    trace = timeline.timeline_trace(records, machine)
    events = check_trace_events(trace)
    names = track_names(trace)
    on_components = [e for e in events["X"] if e["pid"] != timeline.PROCESSES["streams"]]
    with_component = records[records["component"] != ""]
    assert sorted(e["args"]["op_id"] for e in on_components) == sorted(with_component["op_id"])
    by_id = records.set_index("op_id")
    for event in on_components:
        row = by_id.loc[event["args"]["op_id"]]
        assert names[event["pid"], event["tid"]] == row["component"]
        assert event["ts"] == pytest.approx(row["start_cycle"] / machine["clock_hz"] * 1e6, abs=1e-6)
        assert event["dur"] == pytest.approx((row["end_cycle"] - row["start_cycle"]) / 1e9 * 1e6, abs=1e-6)
        assert event["args"]["kind"] == row["kind"] and event["args"]["flops"] == row["flops"]
        assert event["args"]["bytes"] == row["bytes_read"] + row["bytes_written"]
        assert set(event["args"]) >= {"op_id", "kind", "flops", "bytes", "phase", "layer", "step", "tag"}


def test_streams_show_every_op_and_allocs_as_instants(offload_tiny):
    records = offload_tiny.records
    trace = timeline.timeline_trace(records, offload_tiny.machine)
    events = check_trace_events(trace)
    names = track_names(trace)
    on_streams = [e for e in events["X"] if e["pid"] == timeline.PROCESSES["streams"]]
    marks = records["kind"].isin(["alloc", "free"])
    assert sorted(e["args"]["op_id"] for e in on_streams) == sorted(records.loc[~marks, "op_id"])
    assert sorted(e["args"]["op_id"] for e in events["i"]) == sorted(records.loc[marks, "op_id"])
    for event in on_streams + events["i"]:
        assert names[event["pid"], event["tid"]] == event["args"]["stream"]


def test_a_unit_running_two_ops_at_once_gets_one_track_per_lane(two_streams_systolic):
    trace = timeline.timeline_trace(two_streams_systolic.records, two_streams_systolic.machine)
    check_trace_events(trace)  # includes: no overlap on any track
    names = set(track_names(trace).values())
    assert {"vector", "vector #1"} <= names and "vector #2" not in names
    assert "hbm" in names  # the transfer sits on its bottleneck tier


def test_occupancy_counter_peaks_at_the_summary_peak(offload_tiny):
    trace = timeline.timeline_trace(offload_tiny.records, offload_tiny.machine)
    for tier, stats in offload_tiny.summary["tiers"].items():
        values = [e["args"]["bytes"] for e in trace["traceEvents"]
                  if e["ph"] == "C" and e["name"] == f"{tier} occupancy"]
        assert max(values) == stats["peak_occupancy_bytes"]


def test_bandwidth_counters_add_up_to_the_bytes_each_resource_moved(two_streams_systolic):
    records, machine = two_streams_systolic.records, two_streams_systolic.machine
    trace = timeline.timeline_trace(records, machine, buckets=37)
    bucket_s = trace["otherData"]["bucket_cycles"] / machine["clock_hz"]
    for name in ("sram", "hbm", "hbm_bus"):
        rates = [e["args"]["GB/s"] for e in trace["traceEvents"]
                 if e["ph"] == "C" and e["name"] == f"{name} bandwidth"]
        assert len(rates) == 37 + 1
        assert sum(rates) * 1e9 * bucket_s == pytest.approx(records[f"bytes_{name}"].sum(), rel=1e-5)


def test_bucket_bytes_spreads_an_op_evenly_over_its_duration():
    edges = np.array([0, 10, 20, 30])
    out = timeline.bucket_bytes(np.array([5, 12]), np.array([25, 12]), np.array([200.0, 7.0]), edges)
    assert out.tolist() == pytest.approx([50.0, 100.0 + 7.0, 50.0])


def many_vector_ops(n: int) -> hwsim.RunResult:
    ops = [{"op_id": i, "stream": f"s{i % 3}", "kind": "vector", "flops": 128 * (1 + (i * 7919) % 97),
            "elements": 64} for i in range(n)]
    return hwsim.simulate(hwsim.load_arch(ARCH / "tiny.yaml"), hwsim.Trace.from_ops(ops))


def test_max_events_keeps_the_longest_ops_of_each_track_and_counts_the_rest():
    run = many_vector_ops(600)
    trace = timeline.timeline_trace(run.records, run.machine, max_events=120)
    events = check_trace_events(trace)
    assert len(events["X"]) <= 120
    hidden = trace["otherData"]["hidden_ops"]
    assert sum(hidden.values()) == 2 * 600 - len(events["X"])
    durations = (run.records["end_cycle"] - run.records["start_cycle"]).to_numpy()
    kept = [e for e in events["X"] if e["pid"] == timeline.PROCESSES["compute units"]]
    shortest_kept = min(e["args"]["end_cycle"] - e["args"]["start_cycle"] for e in kept)
    dropped = np.sort(durations)[: 600 - len(kept)]
    assert dropped.max() <= shortest_kept
    assert any("shorter ops hidden" in name for name in track_names(trace).values())


def test_window_keeps_only_ops_that_overlap_it_clipped_to_it():
    run = many_vector_ops(60)
    records = run.records
    lo, hi = 2000, 5000
    trace = timeline.timeline_trace(records, run.machine, window=(lo, hi), max_events=None)
    events = check_trace_events(trace)
    overlapping = records[(records["end_cycle"] > lo) & (records["start_cycle"] < hi)]
    units = [e for e in events["X"] if e["pid"] == timeline.PROCESSES["compute units"]]
    assert sorted(e["args"]["op_id"] for e in units) == sorted(overlapping["op_id"])
    for event in events["X"]:
        assert lo / 1e3 - 1e-9 <= event["ts"] and event["ts"] + event["dur"] <= hi / 1e3 + 1e-9
    assert trace["otherData"]["window_cycles"] == [lo, hi]
    with pytest.raises(HwsimError, match="expected 0 <= start <= end"):
        timeline.timeline_trace(records, run.machine, window=(10, 5))


def test_default_budget_keeps_the_file_well_under_50_megabytes(tmp_path):
    run = many_vector_ops(3000)
    path = timeline.write_timeline(run.records, run.machine, tmp_path / "t.json", max_events=None)
    trace = json.loads(path.read_text())
    slices = sum(e["ph"] == "X" for e in trace["traceEvents"])
    per_slice = path.stat().st_size / slices  # an upper bound: counters and metadata included
    assert per_slice * timeline.DEFAULT_MAX_EVENTS < 45e6


def test_timeline_file_is_byte_identical_for_identical_input(tmp_path, two_streams_systolic):
    a = timeline.write_timeline(two_streams_systolic.records, two_streams_systolic.machine, tmp_path / "a.json")
    b = timeline.write_timeline(two_streams_systolic.records.copy(), two_streams_systolic.machine,
                                tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()


def test_an_empty_run_gives_a_valid_trace(offload_tiny):
    empty = offload_tiny.records.iloc[0:0]
    trace = timeline.timeline_trace(pd.DataFrame(empty), offload_tiny.machine)
    check_trace_events(trace)


def test_dma_groups_get_a_bandwidth_counter_and_their_ops_a_compute_track(asic_run):
    trace = timeline.timeline_trace(asic_run.records, asic_run.machine)
    check_trace_events(trace)
    counters = {e["name"] for e in trace["traceEvents"] if e["ph"] == "C"}
    assert {"dma bandwidth", "sram bandwidth", "cxl bandwidth"} <= counters
    tracks = {name: pid for (pid, _), name in track_names(trace).items()}
    assert tracks["dma"] == tracks["cam"] == timeline.PROCESSES["compute units"]
