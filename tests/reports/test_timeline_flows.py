"""Timelines in Perfetto's nanoseconds: no overlaps, dependency arrows, gzipped files."""

from __future__ import annotations

import gzip

import numpy as np

import hwsim
from hwsim.reports import timeline

from .test_timeline import check_trace_events, perfetto_ns


def back_to_back_gemms(n: int = 400) -> hwsim.Trace:
    """One stream of GEMMs of varied sizes: each starts on the cycle the previous one ends."""
    return hwsim.Trace.from_ops([{"op_id": i, "kind": "gemm", "m": 128 + 37 * (i % 17), "n": 256, "k": 512,
                                  "src": "weights", "bytes_read": 4096} for i in range(n)])


def test_back_to_back_slices_meet_exactly_in_perfettos_nanoseconds():
    result = hwsim.simulate(hwsim.load_arch("h200"), back_to_back_gemms())   # 1.98 GHz
    records = result.records.copy()
    # Lay the ops end to end (whatever gaps the machine's launch model leaves between them).
    durations = (records["end_cycle"] - records["start_cycle"]).to_numpy() + (np.arange(len(records)) * 7919) % 1013
    records["start_cycle"] = np.r_[0, np.cumsum(durations)[:-1]]
    records["end_cycle"] = records["start_cycle"] + durations
    starts, ends = records["start_cycle"].to_numpy(), records["end_cycle"].to_numpy()
    assert (starts[1:] == ends[:-1]).all()   # the premise: each op starts when the last ends
    trace = timeline.timeline_trace(records, result.machine, streams=False)
    slices = sorted((e for e in check_trace_events(trace)["X"] if e["cat"] == "gemm"), key=lambda e: e["ts"])
    assert len(slices) == len(records)
    begin = np.array([perfetto_ns(e["ts"]) for e in slices])
    end = begin + np.array([perfetto_ns(e["dur"]) for e in slices])
    assert (begin[1:] == end[:-1]).all()
    assert begin.tolist() == timeline.whole_ns(starts, 1.98e9).tolist()
    # Rounding start and duration separately, as microseconds, does overlap: the check can fail.
    us_start, us_end = np.round(starts / 1.98e9 * 1e6, 6), np.round(ends / 1.98e9 * 1e6, 6)
    old_end = np.rint(us_start * 1000) + np.rint(np.round(us_end - us_start, 6) * 1000)
    assert (old_end[:-1] > np.rint(us_start[1:] * 1000)).any()


def test_whole_ns_is_monotone_and_exact_on_a_gigahertz_clock():
    cycles = np.arange(0, 10**12, 7_919_777, dtype=np.int64)
    assert timeline.whole_ns(cycles, 1e9).tolist() == cycles.tolist()
    odd = timeline.whole_ns(cycles, 1.98e9)
    assert (np.diff(odd) >= 0).all() and np.abs(odd - cycles / 1.98).max() <= 0.5


def flows_by_op(trace: dict) -> set[tuple[int, int]]:
    """(dependency op_id, dependent op_id) of every flow arrow, found through the slices the
    arrow's two ends bind to (same track; "s" strictly inside its slice unless that is empty,
    "f" at its slice's start)."""
    events = check_trace_events(trace)
    slices = [e for e in events["X"] if e["pid"] != timeline.PROCESSES["streams"]]

    def op_at(event: dict) -> int:
        t = perfetto_ns(event["ts"])
        (hit,) = [s for s in slices if (s["pid"], s["tid"]) == (event["pid"], event["tid"])
                  and (perfetto_ns(s["ts"]) == t if event["ph"] == "f" or not s["dur"] else
                       perfetto_ns(s["ts"]) < t < perfetto_ns(s["ts"]) + perfetto_ns(s["dur"]))]
        return hit["args"]["op_id"]

    starts = {e["id"]: op_at(e) for e in events["s"]}
    finishes = {e["id"]: op_at(e) for e in events["f"]}
    assert sorted(starts) == sorted(finishes) and all(e["bp"] == "e" for e in events["f"])
    return {(starts[i], finishes[i]) for i in starts}


def test_every_dependency_between_shown_ops_is_one_flow_arrow(two_streams_systolic):
    records = two_streams_systolic.records
    trace = timeline.timeline_trace(records, two_streams_systolic.machine)
    expected = set()
    for _, row in records[records["deps"].astype(str) != ""].iterrows():
        for dep in str(row["deps"]).split(";"):
            expected.add((int(dep), int(row["op_id"])))
    expected -= {(d, o) for d, o in expected if o == 14}   # 13 is an alloc: an instant, no slice
    assert expected == {(10, 12), (11, 12), (10, 15), (11, 15)}
    assert flows_by_op(trace) == expected
    assert timeline.timeline_trace(records, two_streams_systolic.machine, flows=False)["traceEvents"] == \
        [e for e in trace["traceEvents"] if e["ph"] not in "sf"]


def test_a_gzipped_timeline_is_deterministic_and_reads_back(tmp_path, two_streams_systolic):
    records, machine = two_streams_systolic.records, two_streams_systolic.machine
    a = timeline.write_timeline(records, machine, tmp_path / "a" / timeline.TIMELINE_JSON)
    b = timeline.write_timeline(records, machine, tmp_path / "b" / timeline.TIMELINE_JSON)
    data = a.read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"   # gzip, no time stamp
    assert data == b.read_bytes()
    assert timeline.read_trace_json(a) == timeline.timeline_trace(records, machine)
    assert len(data) < len(gzip.decompress(data)) / 4
