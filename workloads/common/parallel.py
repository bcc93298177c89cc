"""Parallelism for any family's trace: data (``dp``), fully sharded data (``fsdp``, ZeRO-3),
tensor (``tp``, Megatron) and sequence parallelism (``sp``: Ulysses all-to-all, or ring
context parallelism), as a transform of the single-device trace of the global step.

The devices are laid out ``tp`` innermost, then ``sp``, then the data-parallel degree: device
``((d * sp) + s) * tp + t``. Every compute op is the same on every device (SPMD), so it is
written once, on the group of all the plan's devices; a collective is written once, on the
group of device 0 (the other groups run theirs at the same time on their own ports, which
are symmetric). Per device:

* ``dp``/``fsdp`` split the step's tokens (sequences) ``d`` ways: GEMM rows, attention
  sequences, element counts and the activation bytes; weights are read whole.
  ``dp`` all-reduces each layer's gradients as soon as its backward is done, on a stream of
  its own (``dp_comm``), overlapped with the backward of the layers below; the optimizer
  waits for the last. ``fsdp`` shards weights, gradients and optimizer state (the
  ``weights`` space and the optimizer step shrink ``d`` times), all-gathers each layer's
  weights before its forward and again before its backward (stream ``fsdp_comm``, one layer
  ahead of the compute), holds the gathered layer only while it runs, and reduce-scatters
  each layer's gradients after its backward.
* ``tp`` splits every per-layer op ``t`` ways (GEMM columns or rows, attention heads, element
  counts, weights and activations alike: Megatron with sequence-parallel norms) and
  all-reduces the activations after each row-parallel projection (``o_proj``, ``mlp_down``,
  ``ffn_down``, ``cross_o``) and the gradients before each norm's backward, on the compute
  stream (they block the layer).
* ``sp`` with ``sp_mode: ulysses`` splits the tokens ``s`` ways outside attention and the
  heads inside it, with an all-to-all of Q, K, V before each attention and of its output
  after (forward and backward); ``sp_mode: ring`` keeps the queries split and passes K, V
  around the ring: the attention is ``s`` chunks of ``1/s`` of the keys, chunk ``i`` waiting
  for the ``i``-th K,V block received from the previous device (stream ``cp_comm``).

Sizes round up where they do not divide. The memory bookkeeping (``alloc``/``free``) is
per device, so a machine's capacity check applies to the sharded sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.errors import ConfigError
from hwsim.trace import Trace

PARALLEL_PARAMS = ("dp", "fsdp", "tp", "sp", "sp_mode")
ROW_PARALLEL = ("o_proj", "mlp_down", "ffn_down", "cross_o")
ATTENTION = ("attention", "attention_bwd")
_ELEMENTS = ("vector", "elementwise", "state_update", "gather", "similarity", "topk", "quantize",
             "dequantize", "rotate", "transfer")


@dataclass(frozen=True)
class Parallelism:
    """Degrees of parallelism of a trace (1 = none)."""

    dp: int = 1
    fsdp: int = 1
    tp: int = 1
    sp: int = 1
    sp_mode: str = "ulysses"

    @property
    def data(self) -> int:
        return max(self.dp, self.fsdp)

    @property
    def devices(self) -> int:
        return self.data * self.sp * self.tp

    @property
    def active(self) -> bool:
        return self.devices > 1

    def group(self, kind: str) -> str:
        """The ``device`` cell of device 0's group of ``kind`` (tp, sp, data or all)."""
        stride, size = {"tp": (1, self.tp), "sp": (self.tp, self.sp),
                        "data": (self.tp * self.sp, self.data), "all": (1, self.devices)}[kind]
        if stride == 1:
            return f"0-{size - 1}"
        return ",".join(str(i * stride) for i in range(size))

    @classmethod
    def from_params(cls, params: dict, family: str) -> Parallelism:
        """Pop the parallelism keys of a generator's ``params``; ConfigError for bad values."""
        found = {}
        for key in PARALLEL_PARAMS:
            if key not in params:
                continue
            value = params.pop(key)
            if key == "sp_mode":
                if value not in ("ulysses", "ring"):
                    raise ConfigError(f"{family}: sp_mode: expected ulysses or ring, got {value!r}")
                found[key] = value
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{family}: {key}: expected a whole number of devices, got {value!r}") from None
            if number < 1:
                raise ConfigError(f"{family}: {key}: must be >= 1, got {number}")
            found[key] = number
        plan = cls(**found)
        if plan.dp > 1 and plan.fsdp > 1:
            raise ConfigError(f"{family}: dp and fsdp are two kinds of data parallelism; set one")
        return plan


def _split(value: int, by: int) -> int:
    return -(-int(value) // by)


def _scale(row: dict, by: int, *, tokens: bool, ring: bool = False) -> None:
    """Divide the work of ``row`` by ``by``: tokens (the weights stay whole) or the model."""
    if by == 1:
        return
    kind = row["kind"]
    if kind == "gemm":
        dim = "m" if tokens else "n" if row["n"] % by == 0 or row["k"] % by else "k"
        row[dim] = _split(row[dim], by)
    elif kind in ATTENTION:
        if ring and tokens:
            row["m"] = _split(row["m"], by)
        else:
            row["batch"] = _split(row["batch"], by)
    elif kind in _ELEMENTS:
        row["elements"] = _split(row["elements"], by)
    elif kind in ("alloc", "free"):
        space = row["dst"] if kind == "alloc" else row["src"]
        column = "bytes_written" if kind == "alloc" else "bytes_read"
        if not (tokens and space == "weights"):
            row[column] = _split(row[column], by)
        return
    else:
        return
    row["flops"] = _split(row["flops"], by)
    for column, space in (("bytes_read", "src"), ("bytes_read2", "src2"), ("bytes_written", "dst")):
        if row[column] and not (tokens and row[space] == "weights"):
            row[column] = max(1, _split(row[column], by)) if row[column] else 0


def parallelize(trace: Trace, plan: Parallelism) -> Trace:
    """The per-device trace of ``trace`` (one device's view of the global step) under ``plan``."""
    if not plan.active:
        return trace
    frame = trace.to_frame()
    rows = frame.to_dict("records")
    # Weight bytes each layer reads (bf16), after the model split: its gradients' size.
    for row in rows:
        if plan.tp > 1 and (row["layer"] >= 0 or row["kind"] in ("alloc", "free") or row["tag"] == "adamw"
                            or row["tag"].startswith("lm_head") or row["tag"].startswith("embed")):
            _scale(row, plan.tp, tokens=False)
        if plan.data > 1 and row["tag"] != "adamw":
            _scale(row, plan.data, tokens=True)
        if plan.sp > 1 and row["tag"] != "adamw":
            _scale(row, plan.sp, tokens=True, ring=plan.sp_mode == "ring")
        if plan.fsdp > 1 and (row["tag"] == "adamw" or (row["kind"] in ("alloc", "free") and row["tag"] == "weights")):
            _scale(row, plan.fsdp, tokens=False)
    return _Emitter(plan, rows, trace).build()


class _Emitter:
    """Rows of the parallel trace, with new op ids and the communication inserted."""

    def __init__(self, plan: Parallelism, rows: list[dict], trace: Trace) -> None:
        self.plan, self.rows, self.trace = plan, rows, trace
        self.out: list[dict] = []
        self.new_id: dict[int, int] = {}
        self.all = plan.group("all")
        fwd = [r for r in rows if r["layer"] >= 0 and r["src"] == "weights" and r["phase"] != "bwd"]
        self.layer_bytes: dict[int, int] = {}
        for r in fwd:
            self.layer_bytes[r["layer"]] = self.layer_bytes.get(r["layer"], 0) + int(r["bytes_read"])
        other = [r for r in rows if r["layer"] < 0 and r["src"] == "weights" and r["phase"] != "bwd"
                 and r["kind"] in ("gemm", "gather")]
        self.other_bytes = sum(int(r["bytes_read"]) for r in other)

    def emit(self, row: dict, deps: list[int] = (), old: int | None = None) -> int:
        op_id = len(self.out)
        row = dict(row, op_id=op_id, deps=";".join(map(str, deps)))
        self.out.append(row)
        if old is not None:
            self.new_id[old] = op_id
        return op_id

    def comm(self, kind: str, group: str, nbytes: int, stream: str, deps: list[int], row: dict,
             tag: str) -> int:
        return self.emit(dict(_blank(row), kind=kind, device=group, bytes_read=max(1, int(nbytes)),
                              stream=stream, tag=tag), deps)

    def build(self) -> Trace:
        plan, rows = self.plan, self.rows
        last_of: dict[tuple[int, str], int] = {}    # (layer, phase) -> index of its last row
        first_of: dict[tuple[int, str], int] = {}
        for i, r in enumerate(rows):
            key = (r["layer"], "bwd" if r["phase"] == "bwd" else "fwd")
            if r["layer"] >= 0:
                first_of.setdefault(key, i)
                last_of[key] = i
        grad_syncs: list[int] = []
        gathered: dict[tuple[int, str], int] = {}
        for i, r in enumerate(rows):
            phase = "bwd" if r["phase"] == "bwd" else "fwd"
            key = (r["layer"], phase)
            deps = [self.new_id[int(d)] for d in str(r["deps"]).split(";") if d != ""]
            if plan.fsdp > 1 and r["layer"] >= 0 and first_of.get(key) == i:
                deps.append(self._gather(r, key, first_of))
                gathered[key] = 1
            if plan.tp > 1 and r["layer"] >= 0 and phase == "bwd" and r["tag"].endswith("norm_bwd"):
                ar = self.comm("all_reduce", plan.group("tp"), r["bytes_written"] * plan.tp, r["stream"],
                               [len(self.out) - 1] if self.out else [], r, "tp_grad_allreduce")
                deps.append(ar)
            if r["kind"] == "free" and r["tag"] == "weights" and grad_syncs:
                deps.append(grad_syncs[-1])
            if r["tag"] == "adamw" and grad_syncs:
                deps.append(grad_syncs[-1])   # the comm stream is in order: its last op ends last
            if plan.sp > 1 and r["kind"] in ATTENTION and plan.sp_mode == "ulysses":
                deps.append(self.comm("all_to_all", plan.group("sp"), r["bytes_read"] + r["bytes_read2"],
                                      r["stream"], [len(self.out) - 1] if self.out else [], r, "ulysses_qkv"))
            if plan.sp > 1 and r["kind"] in ATTENTION and plan.sp_mode == "ring":
                self._ring_attention(r, i, deps)
                continue
            here = self.emit(dict(r, device=self.all if r.get("device", "") == "" else r["device"]),
                             sorted(set(deps)), old=r["op_id"])
            if plan.sp > 1 and r["kind"] in ATTENTION and plan.sp_mode == "ulysses":
                self.new_id[r["op_id"]] = self.comm("all_to_all", plan.group("sp"), r["bytes_written"], r["stream"],
                                           [here], r, "ulysses_out")
            if plan.tp > 1 and r["layer"] >= 0 and phase == "fwd" and r["tag"].endswith(ROW_PARALLEL) \
                    and r["kind"] == "gemm":
                self.new_id[r["op_id"]] = self.comm("all_reduce", plan.group("tp"), r["bytes_written"] * plan.tp,
                                           r["stream"], [here], r, "tp_allreduce")
            if r["layer"] >= 0 and last_of.get(key) == i:
                if plan.fsdp > 1 and key in gathered:
                    self.emit(dict(_blank(r), kind="free", src="weights", bytes_read=self.layer_bytes.get(r["layer"], 1),
                                   tag="fsdp_gathered"), [self.new_id[r["op_id"]]])
                if phase == "bwd" and plan.data > 1 and r["layer"] in self.layer_bytes:
                    grad = self.layer_bytes[r["layer"]]
                    kind = "reduce_scatter" if plan.fsdp > 1 else "all_reduce"
                    grad_syncs.append(self.comm(kind, plan.group("data"), grad, "fsdp_comm" if plan.fsdp > 1
                                                else "dp_comm", [self.new_id[r["op_id"]]], r, "grad_" + kind))
            if plan.data > 1 and r["tag"] == "lm_head_wgrad" and self.other_bytes:
                kind = "reduce_scatter" if plan.fsdp > 1 else "all_reduce"
                grad_syncs.append(self.comm(kind, plan.group("data"), self.other_bytes,
                                            "fsdp_comm" if plan.fsdp > 1 else "dp_comm", [here], r, "grad_" + kind))
        frame = pd.DataFrame(self.out)
        meta = self.trace.meta_dict()
        meta["params"] = {**meta.get("params", {}), **{k: getattr(plan, k) for k in PARALLEL_PARAMS},
                          "devices": plan.devices}
        meta["description"] = (meta.get("description", "") + f" on {plan.devices} devices "
                               f"(dp {plan.dp}, fsdp {plan.fsdp}, tp {plan.tp}, sp {plan.sp} {plan.sp_mode})")
        from hwsim.trace import TraceMeta

        return Trace.from_frame(frame, TraceMeta.from_dict(meta, self.trace.source), source=self.trace.source)

    def _gather(self, r: dict, key: tuple[int, str], first_of: dict) -> int:
        """FSDP: alloc the layer's gathered weights and all-gather them, one layer ahead."""
        layer, phase = key
        full = self.layer_bytes.get(layer, 0)
        if not full:
            return len(self.out) - 1
        self.emit(dict(_blank(r), kind="alloc", dst="weights", bytes_written=full, tag="fsdp_gathered"))
        ahead = (layer - 1, phase) if phase == "fwd" else (layer + 1, phase)
        after = self.new_id.get(self.rows[first_of[ahead]]["op_id"]) if ahead in first_of else None
        deps = [after] if after is not None else []
        return self.comm("all_gather", self.plan.group("data"), _split(full, self.plan.fsdp), "fsdp_comm", deps, r,
                         "fsdp_allgather")

    def _ring_attention(self, r: dict, i: int, deps: list[int]) -> None:
        """Ring context parallelism: ``sp`` chunks over 1/sp of the keys each; chunk j waits for
        the j-th K,V block, received from the previous device while the last chunk runs."""
        sp = self.plan.sp
        stride = self.plan.tp
        block = int(r["bytes_read2"] or r["bytes_read"])   # this shard's K,V as the attention reads them
        prev, nxt = (sp - 1) * stride, stride
        chunk = dict(r, n=_split(r["n"], sp), flops=_split(r["flops"], sp), bytes_read=_split(r["bytes_read"], sp),
                     bytes_written=_split(r["bytes_written"], sp), device=self.all)
        last = self.emit(chunk, sorted(set(deps)))
        for _ in range(1, sp):
            out = self.comm("send", str(0), block, "cp_comm", [last], r, "ring_kv_send")
            self.out[out]["peer"] = nxt
            incoming = self.comm("send", str(prev), block, "cp_comm", [last], r, "ring_kv_recv")
            self.out[incoming]["peer"] = 0
            last = self.emit(chunk, [last, incoming])
        self.new_id[r["op_id"]] = last


def _blank(row: dict) -> dict:
    """A row with ``row``'s tags and stream but no work."""
    keep = ("stream", "layer", "step", "phase")
    base = {k: row[k] for k in keep}
    return {**base, "kind": "sync", "m": 0, "n": 0, "k": 0, "batch": 1, "elements": 0, "flops": 0,
            "bytes_read": 0, "bytes_read2": 0, "bytes_written": 0, "src": "", "src2": "", "dst": "",
            "dtype": "bf16", "kernel": "", "access": "seq", "unit": "", "tag": "", "device": "", "peer": -1}


def per_device_peak(trace: Trace, space: str = "weights") -> float:
    """Peak bytes of ``space`` one device holds (alloc/free in trace order)."""
    frame = trace.to_frame()
    delta = np.where((frame["kind"] == "alloc") & (frame["dst"] == space), frame["bytes_written"], 0) - \
        np.where((frame["kind"] == "free") & (frame["src"] == space), frame["bytes_read"], 0)
    return float(np.maximum.accumulate(np.cumsum(delta)).max(initial=0))
