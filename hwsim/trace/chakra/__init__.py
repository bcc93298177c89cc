"""MLCommons Chakra execution traces: read them into hwsim traces, write hwsim traces as them.

A Chakra execution trace (what ASTRA-sim replays and PyTorch's execution-trace observer
records, converted by Chakra's tools) is one file per rank: a varint-length-prefixed
``GlobalMetadata`` message, then one ``Node`` per operation (``et_def.proto``). hwsim maps:

========================  =====================================================================
hwsim                     Chakra node
========================  =====================================================================
compute op                ``COMP_NODE``: ``num_ops`` (FLOPs), ``tensor_size`` (bytes moved)
transfer / gather         ``MEM_LOAD_NODE`` (``tensor_size``)
all_reduce, all_gather,   ``COMM_COLL_NODE``: ``comm_type`` (``CollectiveCommType``), ``comm_size``
reduce_scatter, ...       (bytes per rank), ``pg_name`` (the group, hwsim's device cell)
send / recv               ``COMM_SEND_NODE`` / ``COMM_RECV_NODE``: ``comm_src``, ``comm_dst``,
                          ``comm_size``, ``comm_tag``
alloc / free / sync       ``METADATA_NODE``
deps                      ``data_deps``
========================  =====================================================================

Every hwsim column is also kept as an ``hwsim.<column>`` attribute, so a trace written by
hwsim reads back identically. A node without them (a trace from another tool) is read by
its Chakra fields: a compute node whose name says it multiplies matrices (mm, matmul, gemm,
linear, conv) becomes a cube GEMM of its ``num_ops``, any other a vector op; bytes read are
its ``tensor_size``.

:func:`write_chakra` writes one file per rank (``<stem>.<rank>.et``): every op the rank runs
(its own and its groups'). :func:`read_chakra` reads one rank's file as the same op on every
device (SPMD), or the files of several ranks with each rank's ops on its device and the
k-th collective of every member merged into one op (NCCL orders a group's collectives alike
on every rank).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.decoder import _DecodeVarint32
from google.protobuf.internal.encoder import _VarintBytes

from hwsim.atomic import atomic_write_bytes
from hwsim.errors import TraceError
from hwsim.trace.chakra.descriptor import ET_DEF
from hwsim.trace.device_sets import parse_device_set
from hwsim.trace.schema import COLLECTIVE_KINDS, COLUMNS
from hwsim.trace.trace import Trace, TraceMeta

#: The Chakra schema version hwsim writes (GlobalMetadata.version).
VERSION = "0.0.4"
COLLECTIVE_TYPES = {"all_reduce": "ALL_REDUCE", "all_gather": "ALL_GATHER", "reduce_scatter": "REDUCE_SCATTER",
                    "all_to_all": "ALL_TO_ALL", "broadcast": "BROADCAST"}
MATMUL_WORDS = ("mm", "matmul", "gemm", "linear", "conv")
_META_KINDS = ("alloc", "free", "sync")
_MEMORY_KINDS = ("transfer", "gather")


def _messages():
    pool = descriptor_pool.DescriptorPool()   # private: no clash with another ChakraProtoMsg
    proto = descriptor_pb2.FileDescriptorProto.FromString(ET_DEF)
    pool.Add(proto)
    get = message_factory.GetMessageClass
    file = pool.FindFileByName(proto.name)
    return (get(pool.FindMessageTypeByName("ChakraProtoMsg.GlobalMetadata")),
            get(pool.FindMessageTypeByName("ChakraProtoMsg.Node")),
            file.enum_types_by_name["NodeType"], file.enum_types_by_name["CollectiveCommType"])


GlobalMetadata, Node, NODE_TYPE, COMM_TYPE = _messages()


def node_type(name: str) -> int:
    return NODE_TYPE.values_by_name[name].number


def _attr(node, name: str, value) -> None:
    a = node.attr.add()
    a.name = name
    if isinstance(value, bool):
        a.bool_val = value
    elif isinstance(value, int | np.integer):
        a.int64_val = int(value)
    else:
        a.string_val = str(value)


def _attrs(node) -> dict:
    out = {}
    for a in node.attr:
        which = a.WhichOneof("value")
        out[a.name] = getattr(a, which) if which else None
    return out


# -- writing ------------------------------------------------------------------------------
def write_chakra(trace: Trace, stem: str | os.PathLike, devices: int | None = None) -> list[Path]:
    """Write ``trace`` as Chakra execution traces, one file ``<stem>.<rank>.et`` per rank of a
    machine of ``devices`` devices (default: the highest device the trace names, plus one);
    returns the paths. Files are written atomically."""
    frame = trace.to_frame()
    ranks = devices or _devices_named(frame)
    sets = {cell: parse_device_set(cell, ranks) for cell in frame["device"].astype(str).unique()}
    paths = []
    for rank in range(ranks):
        blobs = [_framed(_metadata(trace, rank, ranks))]
        here: set[int] = set()   # a rank's file depends only on its own nodes
        for row in frame.itertuples(index=False):
            row = row._asdict()
            members = sets[str(row["device"])]
            runs_here = rank in members if row["kind"] not in ("send", "recv") else rank == members[0]
            if runs_here:
                blobs.append(_framed(_node(row, members, here)))
                here.add(int(row["op_id"]))
        path = Path(f"{stem}.{rank}.et")
        atomic_write_bytes(path, b"".join(blobs))
        paths.append(path)
    return paths


def _devices_named(frame: pd.DataFrame) -> int:
    highest = 0
    for cell in frame["device"].astype(str).unique():
        for part in filter(None, cell.replace("-", ",").split(",")):
            highest = max(highest, int(part))
    peers = frame["peer"].to_numpy()
    return max(highest, int(peers.max(initial=0))) + 1


def _framed(message) -> bytes:
    data = message.SerializeToString()
    return _VarintBytes(len(data)) + data


def _metadata(trace: Trace, rank: int, ranks: int):
    meta = GlobalMetadata(version=VERSION)
    info = trace.meta_dict()
    for key in ("generator", "preset", "work_unit", "description"):
        _attr(meta, f"hwsim.{key}", info.get(key) or "")
    _attr(meta, "hwsim.work_units", repr(float(info.get("work_units") or 0.0)))
    _attr(meta, "rank", rank)
    _attr(meta, "world_size", ranks)
    return meta


def _node(row: dict, members: tuple[int, ...], here: set[int]):
    kind = row["kind"]
    node = Node(id=int(row["op_id"]), name=str(row["tag"] or kind))
    deps = [int(d) for d in str(row["deps"]).split(";") if d and int(d) in here]
    node.data_deps.extend(deps)
    nbytes = int(row["bytes_read"]) + int(row["bytes_read2"]) + int(row["bytes_written"])
    if kind in COLLECTIVE_TYPES:
        node.type = node_type("COMM_COLL_NODE")
        _attr(node, "comm_type", COMM_TYPE.values_by_name[COLLECTIVE_TYPES[kind]].number)
        _attr(node, "comm_size", int(row["bytes_read"]))
        _attr(node, "pg_name", ",".join(map(str, members)))
    elif kind in ("send", "recv"):
        node.type = node_type("COMM_SEND_NODE" if kind == "send" else "COMM_RECV_NODE")
        src, dst = (members[0], int(row["peer"])) if kind == "send" else (int(row["peer"]), members[0])
        _attr(node, "comm_src", src)
        _attr(node, "comm_dst", dst)
        _attr(node, "comm_size", int(row["bytes_read"]))
        _attr(node, "comm_tag", 0)
    elif kind in _META_KINDS:
        node.type = node_type("METADATA_NODE")
    elif kind in _MEMORY_KINDS:
        node.type = node_type("MEM_LOAD_NODE")
        _attr(node, "tensor_size", nbytes)
    else:
        node.type = node_type("COMP_NODE")
        _attr(node, "num_ops", int(row["flops"]))
        _attr(node, "tensor_size", nbytes)
    _attr(node, "is_cpu_op", False)
    for col in COLUMNS:
        if col.name not in ("op_id", "deps"):
            value = row[col.name]
            _attr(node, f"hwsim.{col.name}", int(value) if col.dtype == "int64" else str(value))
    return node


# -- reading ------------------------------------------------------------------------------
def iter_messages(path: str | os.PathLike) -> Iterator[bytes]:
    """The varint-length-prefixed messages of a Chakra file (metadata first)."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        try:
            size, pos = _DecodeVarint32(data, pos)
        except IndexError:
            raise TraceError(f"{path}: truncated Chakra record at byte {pos}") from None
        if pos + size > len(data):
            raise TraceError(f"{path}: truncated Chakra record at byte {pos} ({size} bytes announced)")
        yield data[pos:pos + size]
        pos += size


def _read_file(path) -> tuple[dict, list]:
    messages = iter_messages(path)
    first = next(messages, None)
    if first is None:
        raise TraceError(f"{path}: empty Chakra trace (no GlobalMetadata)")
    try:
        meta = GlobalMetadata.FromString(first)
        nodes = [Node.FromString(m) for m in messages]
    except Exception as err:   # protobuf's DecodeError and friends
        raise TraceError(f"{path}: not a Chakra execution trace ({type(err).__name__}: {err})") from None
    return _attrs(meta), nodes


def read_chakra(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Trace:
    """An hwsim trace of one rank's Chakra file (its ops on every device) or of the files of
    several ranks (given in rank order). TraceError names the file and node of a problem."""
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not paths:
        raise TraceError("read_chakra: no files")
    files = [_read_file(p) for p in paths]
    meta = files[0][0]
    rows: list[dict] = []
    if len(files) == 1:
        for node in files[0][1]:
            rows.append(_row(node, paths[0], None))
        rows = _renumber(rows)
    else:
        rows = _merge_ranks(files, paths)
    trace_meta = TraceMeta.from_dict({
        "generator": meta.get("hwsim.generator") or "chakra", "preset": meta.get("hwsim.preset") or "",
        "work_unit": meta.get("hwsim.work_unit") or "op", "work_units": float(meta.get("hwsim.work_units") or 0),
        "description": meta.get("hwsim.description") or f"Chakra trace {Path(paths[0]).name}"}, str(paths[0]))
    frame = pd.DataFrame(rows)
    return Trace.from_frame(frame, trace_meta, source=str(paths[0]))


def _row(node, path, rank: int | None) -> dict:
    """One node as an hwsim row (``op_id`` the node id, ``deps`` its data deps)."""
    attrs = _attrs(node)
    where = f"{path}: node {node.id} ({node.name})"
    row = {c.name: c.default for c in COLUMNS if c.name not in ("op_id", "deps")}
    row["stream"] = "main"
    own = {k[6:]: v for k, v in attrs.items() if k.startswith("hwsim.")}
    if own:
        for col in COLUMNS:
            if col.name in own:
                row[col.name] = int(own[col.name]) if col.dtype == "int64" else own[col.name]
    else:
        _foreign(node, attrs, row, where)
    if rank is not None and (row["kind"] not in COLLECTIVE_KINDS or row["kind"] in ("send", "recv")):
        row["device"] = str(rank)   # one rank's file: its own work
    row["op_id"] = int(node.id)
    row["deps"] = [int(d) for d in (*node.data_deps, *node.ctrl_deps)]
    return row


def _foreign(node, attrs: dict, row: dict, where: str) -> None:
    """Map a node another tool wrote by its Chakra fields alone."""
    kind = NODE_TYPE.values_by_number[node.type].name
    size = int(attrs.get("tensor_size") or attrs.get("comm_size") or 0)
    if kind == "COMP_NODE":
        flops = int(attrs.get("num_ops") or 0)
        if any(word in node.name.lower() for word in MATMUL_WORDS) and flops > 0:
            side = max(1, round((flops / 2) ** (1 / 3)))
            row.update(kind="gemm", m=side, n=side, k=side, flops=flops)
        else:
            row.update(kind="vector", elements=max(1, size // 2), flops=flops)
        if size:
            row.update(src="act", bytes_read=size)
    elif kind in ("MEM_LOAD_NODE", "MEM_STORE_NODE"):
        row.update(kind="transfer", src="act", dst="act", bytes_read=max(1, size))
    elif kind == "COMM_COLL_NODE":
        comm = COMM_TYPE.values_by_number.get(int(attrs.get("comm_type", -1)))
        names = {v: k for k, v in COLLECTIVE_TYPES.items()}
        if comm is None or comm.name not in names:
            raise TraceError(f"{where}: collective type {attrs.get('comm_type')!r} is not one hwsim times "
                             f"({', '.join(COLLECTIVE_TYPES.values())})")
        row.update(kind=names[comm.name], bytes_read=max(1, size), device=str(attrs.get("pg_name") or ""))
        if not _is_device_set(row["device"]):
            row["device"] = ""   # a process-group name hwsim cannot read as devices: all of them
    elif kind in ("COMM_SEND_NODE", "COMM_RECV_NODE"):
        src, dst = int(attrs.get("comm_src", -1)), int(attrs.get("comm_dst", -1))
        if src < 0 or dst < 0:
            raise TraceError(f"{where}: a send or recv needs comm_src and comm_dst")
        send = kind == "COMM_SEND_NODE"
        row.update(kind="send" if send else "recv", device=str(src if send else dst), peer=dst if send else src,
                   bytes_read=max(1, size))
    else:
        row.update(kind="sync")


def _is_device_set(text: str) -> bool:
    try:
        parse_device_set(text, 1 << 20)
        return True
    except ValueError:
        return False


def _renumber(rows: list[dict], offset: int = 0) -> list[dict]:
    """Rows with op ids kept (Chakra node ids); deps must point to earlier rows (checked by
    the trace's validation, naming the row)."""
    for row in rows:
        row["deps"] = ";".join(map(str, row["deps"]))
    return rows


def _merge_ranks(files: list, paths: list) -> list[dict]:
    """Each rank's nodes on its device; a group's k-th collective merged into one op whose
    deps are every member's; a recv's deps gain its send."""
    rows, new_id = [], {}
    pending: dict[tuple, list] = {}   # (kind, group, size, k) -> [row, ranks seen]
    count: dict[tuple, int] = {}
    sends: dict[tuple, list[int]] = {}
    for rank, (_, nodes) in enumerate(files):
        for node in nodes:
            row = _row(node, paths[rank], rank)
            deps = [new_id[(rank, d)] for d in row["deps"] if (rank, d) in new_id]
            if row["kind"] in COLLECTIVE_KINDS and row["kind"] not in ("send", "recv"):
                base = (row["kind"], row["device"], row["bytes_read"])
                k = count.get((rank, *base), 0)
                count[(rank, *base)] = k + 1
                key = (*base, k)
                if key in pending:
                    merged = pending[key]
                    merged["deps"] = sorted(set(merged["deps"]) | set(deps))
                    new_id[(rank, row["op_id"])] = merged["op_id"]
                    continue
                row.update(op_id=len(rows), deps=deps)
                pending[key] = row
            else:
                row.update(op_id=len(rows), deps=deps)
                if row["kind"] == "send":
                    sends.setdefault((int(row["device"]), int(row["peer"])), []).append(row["op_id"])
                elif row["kind"] == "recv":
                    queue = sends.get((int(row["peer"]), int(row["device"])))
                    if queue:
                        row["deps"] = sorted(set(deps) | {queue.pop(0)})
            new_id[(rank, node.id)] = row["op_id"]
            row["stream"] = f"r{rank}.{row['stream']}"
            rows.append(row)
    # A merged collective may wait for ops of a later rank: place every op after its deps.
    order = _topological(rows)
    ids = {row["op_id"]: i for i, row in enumerate(order)}
    for row in order:
        row["deps"] = ";".join(str(ids[d]) for d in row["deps"])
        row["op_id"] = ids[row["op_id"]]
    return order


def _topological(rows: list[dict]) -> list[dict]:
    """Rows ordered so that each comes after its deps (stable: file order otherwise)."""
    by_id = {row["op_id"]: row for row in rows}
    done, out = set(), []

    def visit(row, depth=0):
        stack = [row]
        while stack:
            top = stack[-1]
            missing = [by_id[d] for d in top["deps"] if d not in done and d in by_id and d != top["op_id"]]
            if missing:
                stack.append(missing[0])
                if len(stack) > len(rows) + 1:
                    raise TraceError("Chakra traces: the dependencies of the ranks form a cycle")
                continue
            stack.pop()
            if top["op_id"] not in done:
                done.add(top["op_id"])
                out.append(top)

    for row in rows:
        visit(row)
    return out


__all__ = ["COLLECTIVE_TYPES", "VERSION", "GlobalMetadata", "Node", "iter_messages", "read_chakra", "write_chakra"]
