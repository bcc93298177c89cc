"""Timeline: a Perfetto trace of one run (Chrome trace-event JSON, gzipped).

Open the file in https://ui.perfetto.dev ("Open trace file"; it reads ``.json.gz`` as it
is, and nothing leaves your machine). It uses the JSON Object Format:
``{"traceEvents": [...], "otherData": {...}}``, timestamps in microseconds from cycle 0.
Every time is first converted once to whole nanoseconds (``round(cycles * 1e9 / clock_hz)``)
and written as ``ns / 1000`` with three decimals, and each duration is the difference of two
such whole-ns times: the nanoseconds Perfetto reads back are exactly those, so an op that
starts on the cycle another ends starts on the nanosecond it ends, never 1 ns before.

Layout, from the records DataFrame and the machine dict only:

* process "compute units": one track per unit; an op is a complete event (``"ph": "X"``)
  with args op_id, kind, flops, bytes, phase, layer, step, tag, dtype and its cycles. A unit
  that runs ops concurrently (``count > 1``) gets one track per lane ("tensor #1", ...),
  lanes assigned greedily in start order, so slices on one track never overlap;
* processes "memory tiers" and "links": transfers on the tier or link that was their
  bottleneck (the record's component), a counter ``"<tier> occupancy"`` (bytes allocated,
  from alloc/free records) and a counter ``"<name> bandwidth"`` (GB/s per time bucket: each
  op's ``bytes_<name>`` spread evenly over its start..end; DMA groups get one too, in
  "compute units");
* process "streams": every op again on its stream's track (alloc/free as instant events),
  to read the order and overlap of the command queues;
* flow arrows (``"ph": "s"`` / ``"f"``, category ``dependency``) from each shown op's
  dependencies (the trace's ``deps``) to the op, on the compute, tier and link tracks.

Runs with more ops than ``max_events`` are better written in Perfetto's protobuf format,
which keeps every op (:mod:`hwsim.reports.timeline_proto`); the JSON must down-sample.

Large runs stay loadable: ``window=(start_cycle, end_cycle)`` keeps only what overlaps the
window (slices clipped to it), and ``max_events`` caps the complete events: each track keeps
a share of the budget proportional to its size (at least one), filled with its *longest*
ops; the number hidden per track is in the thread name and in ``otherData.hidden_ops``
(keyed ``"<process>/<track>"``).
Counters use ``buckets`` time buckets per resource (occupancy keeps each bucket's peak).
At about 360 bytes per complete event, the default budget keeps files under about 40 MB
before compression (a few MB gzipped).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwsim.atomic import atomic_write_bytes
from hwsim.components.facts import read_facts
from hwsim.errors import HwsimError
from hwsim.metrics.summary import occupancy_timeline

DEFAULT_MAX_EVENTS = 100_000
DEFAULT_BUCKETS = 500
PROCESSES = {"compute units": 1, "memory tiers": 2, "links": 3, "streams": 4}
_PROCESS_NAMES = {pid: name for name, pid in PROCESSES.items()}
#: The file name reports write.
TIMELINE_JSON = "timeline.json.gz"
#: How to open the file, for reports and the CLI.
HOW_TO_OPEN = ("open it in https://ui.perfetto.dev (Open trace file; it reads the gzipped file "
               "as it is, and the file stays on your machine)")
FLOW_CATEGORY = "dependency"


def component_groups(machine: dict[str, Any]) -> dict[str, str]:
    """Process name of each component (from its facts' role): compute units, memory tiers or links."""
    process = {"compute": "compute units", "link": "links"}
    return {name: process.get(record.role, "memory tiers") for name, record in read_facts(machine).items()}


def timeline_trace(records: pd.DataFrame, machine: dict[str, Any], *,
                   window: tuple[int | None, int | None] | None = None,
                   max_events: int | None = DEFAULT_MAX_EVENTS, buckets: int = DEFAULT_BUCKETS,
                   streams: bool = True, flows: bool = True) -> dict[str, Any]:
    """Build the trace-event dict (see the module docstring); ``max_events=None`` keeps all.

    ``window`` is in cycles (``None`` on either side is open); raises HwsimError for a window
    that does not satisfy ``0 <= start <= end``.
    """
    clock = float(machine["clock_hz"])
    last = int(records["end_cycle"].max()) if len(records) else 0
    w0, w1 = _window(window, last)
    start = records["start_cycle"].to_numpy(dtype=np.int64)
    end = records["end_cycle"].to_numpy(dtype=np.int64)
    kinds = records["kind"].astype(str).to_numpy(dtype=object)
    comps = records["component"].astype(str).to_numpy(dtype=object)
    stream_names = records["stream"].astype(str).to_numpy(dtype=object)
    inside = np.where(end > start, (end > w0) & (start < w1), (start >= w0) & (start <= w1))
    marks = (kinds == "alloc") | (kinds == "free")
    groups = component_groups(machine)

    tracks: list[tuple[int, str]] = []  # (pid, thread name) by tid - 1
    slice_rows, slice_tids = [], []

    def add_tracks(pid: int, label: str, rows: np.ndarray) -> None:
        lanes = assign_lanes(start[rows], end[rows])
        for lane in range(int(lanes.max()) + 1 if len(lanes) else 0):
            tracks.append((pid, label if lane == 0 else f"{label} #{lane}"))
            mine = rows[lanes == lane]
            slice_rows.append(mine)
            slice_tids.append(np.full(len(mine), len(tracks), dtype=np.int64))

    work = inside & ~marks
    names = [*machine["components"], *sorted(set(comps[work]) - set(machine["components"]) - {""})]
    for name in names:
        rows = np.flatnonzero(work & (comps == name))
        if len(rows):
            add_tracks(PROCESSES[groups.get(name, groups.get(name.split(":")[0], "compute units"))], name, rows)
    stream_tid: dict[str, int] = {}
    if streams:
        for name in sorted(set(stream_names[inside])):
            rows = np.flatnonzero(work & (stream_names == name))
            if len(rows):
                add_tracks(PROCESSES["streams"], name, rows)
            else:
                tracks.append((PROCESSES["streams"], name))
            stream_tid[name] = next(t for t, (p, n) in enumerate(tracks, 1)
                                    if p == PROCESSES["streams"] and n == name)

    rows = np.concatenate(slice_rows) if slice_rows else np.zeros(0, dtype=np.int64)
    tids = np.concatenate(slice_tids) if slice_tids else np.zeros(0, dtype=np.int64)
    keep, hidden = _downsample(rows, tids, np.minimum(end[rows], w1) - np.maximum(start[rows], w0),
                               records["op_id"].to_numpy()[rows], max_events)
    rows, tids = rows[keep], tids[keep]

    def us(cycles: np.ndarray) -> np.ndarray:
        return whole_ns(cycles, clock) / 1000.0

    events: list[dict[str, Any]] = []
    for name, pid in PROCESSES.items():
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": name}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"sort_index": pid}})
    for tid, (pid, label) in enumerate(tracks, 1):
        n_hidden = hidden.get(tid, 0)
        shown = f"{label} ({n_hidden:,} shorter ops hidden)" if n_hidden else label
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": shown}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"sort_index": tid}})

    order = np.lexsort((records["op_id"].to_numpy()[rows], start[rows], tids))
    rows, tids = rows[order], tids[order]
    begin_ns = whole_ns(np.maximum(start[rows], w0), clock)
    ts = begin_ns / 1000.0
    dur = np.maximum(whole_ns(np.minimum(end[rows], w1), clock) - begin_ns, 0) / 1000.0
    args = _args(records, rows)
    for i, row in enumerate(rows.tolist()):
        tid = int(tids[i])
        events.append({"name": _label(kinds[row], args[i]["tag"]), "cat": kinds[row], "ph": "X",
                       "pid": tracks[tid - 1][0], "tid": tid, "ts": float(ts[i]),
                       "dur": float(dur[i]), "args": args[i]})
    if streams:
        mark_rows = np.flatnonzero(inside & marks)
        mark_args = _args(records, mark_rows)
        for i, row in enumerate(mark_rows.tolist()):
            events.append({"name": _label(kinds[row], mark_args[i]["tag"]), "cat": kinds[row],
                           "ph": "i", "s": "t", "pid": PROCESSES["streams"],
                           "tid": stream_tid[stream_names[row]], "ts": float(us(np.array(start[row]))),
                           "args": mark_args[i]})
    if flows and "deps" in records:
        events += _flow_events(records, rows, tids, ts, dur, tracks)
    bucket = max(1, -(-(w1 - w0) // max(buckets, 1)))
    edges = w0 + bucket * np.arange(max(1, -(-(w1 - w0) // bucket)) + 1, dtype=np.int64)
    events += occupancy_counters(records, machine, w0, w1, edges, us)
    events += bandwidth_counters(records, machine, start, end, edges, clock, us)
    return {
        "traceEvents": events,
        "otherData": {
            "machine": machine["name"], "clock_hz": clock, "time_unit": "us",
            "window_cycles": [w0, w1], "bucket_cycles": int(bucket),
            "max_events": max_events, "ops_in_window": int(inside.sum()),
            "hidden_ops": {f"{_PROCESS_NAMES[tracks[t - 1][0]]}/{tracks[t - 1][1]}": n
                           for t, n in sorted(hidden.items())},
        },
    }


def write_timeline(records: pd.DataFrame, machine: dict[str, Any], path: str | os.PathLike,
                   **options: Any) -> Path:
    """Write :func:`timeline_trace` as compact JSON to ``path``, gzipped when it ends in
    ``.gz`` (atomic and deterministic: no time stamp in the gzip header)."""
    return write_trace_json(timeline_trace(records, machine, **options), path)


def write_trace_json(trace: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a trace-event dict as compact JSON (gzipped for a ``.gz`` path), atomically."""
    data = (json.dumps(trace, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, data)


def read_trace_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a timeline written by :func:`write_trace_json` (gzipped or not)."""
    data = Path(path).read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def whole_ns(cycles: np.ndarray, clock_hz: float) -> np.ndarray:
    """Cycles at ``clock_hz`` as whole nanoseconds (int64), rounded to nearest: monotone, so
    equal cycles give equal nanoseconds and later cycles never earlier ones."""
    return np.rint(np.asarray(cycles, dtype=np.float64) * 1e9 / clock_hz).astype(np.int64)


def dependency_edges(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(dependency row, dependent row) pairs from the records' ``deps`` column (the trace's
    ``;``-separated op ids), as two index arrays into ``records``."""
    if "deps" not in records or not len(records):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    text = records["deps"].astype(str).to_numpy(dtype=object)
    has = np.flatnonzero(text != "")
    lists = [t.split(";") for t in text[has].tolist()]
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    dep_ids = np.fromiter((int(v) for x in lists for v in x), dtype=np.int64, count=int(counts.sum()))
    dependent = np.repeat(has, counts)
    op_ids = records["op_id"].to_numpy(dtype=np.int64)
    order = np.argsort(op_ids, kind="stable")
    at = np.minimum(np.searchsorted(op_ids[order], dep_ids), len(order) - 1)
    found = op_ids[order][at] == dep_ids
    return order[at][found], dependent[found]


def _flow_events(records: pd.DataFrame, rows: np.ndarray, tids: np.ndarray, ts: np.ndarray,
                 dur: np.ndarray, tracks: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """A flow arrow per dependency whose two ops are both shown on a component track. Its
    start binds to the dependency's slice at the slice's middle (inside it even when another
    slice ends where it begins), its end to the dependent's slice at that slice's start."""
    component = np.array([tracks[t - 1][0] != PROCESSES["streams"] for t in tids.tolist()], dtype=bool)
    shown = np.full(len(records), -1, dtype=np.int64)
    shown[rows[component]] = np.flatnonzero(component)   # record row -> index into rows/ts/tids
    source, target = dependency_edges(records)
    keep = (shown[source] >= 0) & (shown[target] >= 0)
    source, target = shown[source[keep]], shown[target[keep]]
    order = np.lexsort((source, target))
    middle = (np.rint(ts * 1000).astype(np.int64) + np.rint(dur * 1000).astype(np.int64) // 2) / 1000.0
    events: list[dict[str, Any]] = []
    for flow_id, (a, b) in enumerate(zip(source[order].tolist(), target[order].tolist(), strict=True), 1):
        common = {"name": "dependency", "cat": FLOW_CATEGORY, "id": flow_id}
        events.append({**common, "ph": "s", "pid": tracks[tids[a] - 1][0], "tid": int(tids[a]),
                       "ts": float(middle[a])})
        events.append({**common, "ph": "f", "bp": "e", "pid": tracks[tids[b] - 1][0], "tid": int(tids[b]),
                       "ts": float(ts[b])})
    return events


def _window(window: tuple[int | None, int | None] | None, last: int) -> tuple[int, int]:
    lo, hi = window if window is not None else (None, None)
    lo = 0 if lo is None else int(lo)
    hi = last if hi is None else int(hi)
    if lo < 0 or hi < lo:
        raise HwsimError(f"timeline window ({lo}, {hi}): expected 0 <= start <= end "
                         f"(the run ends at cycle {last:,})")
    return lo, hi


def assign_lanes(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Lane of each op so that ops on one lane never overlap (greedy, lowest free lane)."""
    n = len(start)
    lanes = np.zeros(n, dtype=np.int64)
    if n < 2:
        return lanes
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    if (s[1:] >= np.maximum.accumulate(e)[:-1]).all():
        return lanes
    free_at: list[int] = []
    for i, (a, b) in enumerate(zip(s.tolist(), e.tolist(), strict=True)):
        for lane, t in enumerate(free_at):
            if t <= a:
                free_at[lane] = b
                lanes[order[i]] = lane
                break
        else:
            free_at.append(b)
            lanes[order[i]] = len(free_at) - 1
    return lanes


def _downsample(rows: np.ndarray, tids: np.ndarray, dur: np.ndarray, op_ids: np.ndarray,
                max_events: int | None) -> tuple[np.ndarray, dict[int, int]]:
    """Which slices to keep: per track, a budget share of its longest (ties: lower op_id)."""
    n = len(rows)
    if max_events is None or n <= max_events:
        return np.ones(n, dtype=bool), {}
    frame = pd.DataFrame({"tid": tids, "dur": dur, "op": op_ids, "i": np.arange(n)})
    sizes = frame.groupby("tid").size()
    budget = np.maximum(1, np.floor(max_events * sizes / n)).astype(np.int64)
    ranked = frame.sort_values(["tid", "dur", "op"], ascending=[True, False, True], kind="stable")
    rank = ranked.groupby("tid").cumcount().to_numpy()
    chosen = ranked["i"].to_numpy()[rank < budget.loc[ranked["tid"]].to_numpy()]
    keep = np.zeros(n, dtype=bool)
    keep[chosen] = True
    hidden = (sizes - np.minimum(sizes, budget))
    return keep, {int(t): int(h) for t, h in hidden.items() if h}


def _args(records: pd.DataFrame, rows: np.ndarray) -> list[dict[str, Any]]:
    sub = records.iloc[rows]
    cols = {
        "op_id": sub["op_id"].tolist(), "kind": sub["kind"].astype(str).tolist(),
        "component": sub["component"].astype(str).tolist(), "stream": sub["stream"].astype(str).tolist(),
        "flops": sub["flops"].tolist(),
        "bytes": (sub["bytes_read"] + sub["bytes_written"]).tolist(),
        "phase": sub["phase"].astype(str).tolist(), "layer": sub["layer"].tolist(),
        "step": sub["step"].tolist(), "tag": sub["tag"].astype(str).tolist(),
        "dtype": sub["dtype"].astype(str).tolist(), "start_cycle": sub["start_cycle"].tolist(),
        "end_cycle": sub["end_cycle"].tolist(), "stall_cycles": sub["stall_cycles"].tolist(),
    }
    keys = list(cols)
    return [dict(zip(keys, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def _label(kind: str, tag: str) -> str:
    return f"{kind} {tag}" if tag else kind


def occupancy_counters(records, machine, w0, w1, edges, us) -> list[dict[str, Any]]:
    out = []
    groups = component_groups(machine)
    for tier in machine["components"]:
        if groups[tier] != "memory tiers":
            continue
        line = occupancy_timeline(records, tier)
        if line.empty:
            continue
        cycles = line["cycle"].to_numpy(dtype=np.int64)
        values = line["bytes"].to_numpy(dtype=np.int64)
        last_at = np.r_[cycles[1:] != cycles[:-1], True]  # the value after a cycle's last move
        cycles, values = cycles[last_at], values[last_at]
        before = values[cycles < w0]
        inside = (cycles >= w0) & (cycles <= w1)
        cycles, values = cycles[inside], values[inside]
        if len(cycles) > 2 * (len(edges) - 1):
            slot = np.minimum(np.searchsorted(edges, cycles, side="right") - 1, len(edges) - 2)
            peak = pd.Series(values).groupby(slot).max()
            cycles, values = edges[peak.index.to_numpy()], peak.to_numpy()
        if len(before):
            cycles, values = np.r_[w0, cycles], np.r_[before[-1], values]
        for t, v in zip(us(cycles).tolist(), values.tolist(), strict=True):
            out.append({"name": f"{tier} occupancy", "ph": "C", "pid": PROCESSES["memory tiers"],
                        "ts": t, "args": {"bytes": int(v)}})
    return out


def bandwidth_counters(records, machine, start, end, edges, clock, us) -> list[dict[str, Any]]:
    out = []
    groups = component_groups(machine)
    seconds = (edges[1:] - edges[:-1]) / clock
    stamps = us(edges).tolist()
    for name, group in groups.items():
        column = f"bytes_{name}"  # tiers, links and DMA groups
        if column not in records:
            continue
        nbytes = records[column].to_numpy(dtype=np.float64)
        moved = nbytes > 0
        if not moved.any():
            continue
        per_bucket = bucket_bytes(start[moved], end[moved], nbytes[moved], edges)
        rates = per_bucket / seconds / 1e9
        pid = PROCESSES[group]
        for t, v in zip(stamps[:-1], rates.tolist(), strict=True):
            out.append({"name": f"{name} bandwidth", "ph": "C", "pid": pid, "ts": t,
                        "args": {"GB/s": round(v, 6)}})
        out.append({"name": f"{name} bandwidth", "ph": "C", "pid": pid, "ts": stamps[-1],
                    "args": {"GB/s": 0.0}})
    return out


def bucket_bytes(start: np.ndarray, end: np.ndarray, nbytes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bytes falling in each bucket ``[edges[i], edges[i+1])`` when each op's bytes are spread
    evenly over its ``[start, end)`` (a zero-length op's bytes fall at its start)."""
    spread = end > start
    s, e, b = start[spread].astype(np.float64), end[spread].astype(np.float64), nbytes[spread]
    rate = b / (e - s)
    t = edges.astype(np.float64)

    def integral(points: np.ndarray) -> np.ndarray:
        # sum over ops with point < t of rate * (t - point), via sorted prefix sums
        order = np.argsort(points, kind="stable")
        p, r = points[order], rate[order]
        cr, crp = np.r_[0.0, np.cumsum(r)], np.r_[0.0, np.cumsum(r * p)]
        k = np.searchsorted(p, t, side="left")
        return t * cr[k] - crp[k]

    cumulative = integral(s) - integral(e)
    out = np.maximum(np.diff(cumulative), 0.0)
    if (~spread).any():
        out += np.histogram(start[~spread], bins=edges, weights=nbytes[~spread])[0]
    return out
