"""Calibration cases: a published measurement's workload as a trace, and its metric.

A measurement's ``replay`` names what the benchmark ran, in the benchmark's own terms::

    gemm m=4096 n=4096 k=4096 batch=1 dtype=bf16
    attention kernel=flash3 pass=fwd seqlen=512 head_dim=128 heads=16 batch=32 causal=false dtype=bf16
    stream op=triad elements=33554432 dtype=fp64          (BabelStream / STREAM kernels)
    copy src=cpu_dram dst=hbm bytes=536870912             (memcpy, nvbandwidth)
    workload family=deltanet2 preset=gdn2-1.3b-hybrid mode=train seq_len=2048
                                                          (a whole workload: its trace generator's parameters)
    generation family=transformer preset=llama-2-7b batch=768 input=128 output=128 gemm_dtype=fp8
                                                          (LLM serving: a prefill of the inputs, then decoding)
    gdn_chunk variant=gdn seq_len=16384 heads=8 batch=1   (the chunkwise delta-rule forward kernels
                                                          of one layer, as flash-linear-attention runs them)
    collective op=all_reduce bytes=16777216 devices=8 algorithm=nvls metric=busbw
                                                          (nccl-tests; also all_gather, reduce_scatter,
                                                          all_to_all, broadcast, send; permute pattern=ring)

and its ``harness`` how the benchmark timed it: ``isolated`` (one launch, timed from the
host: the launch latency counts), ``loop`` (back-to-back launches, the steady-state time
per launch) or ``kernel`` (the kernel's time on the device, as a profiler records it).
The *work* of a case is counted the way the benchmark counts it (FlashAttention's
``4 B S^2 H D``, halved for causal; BabelStream's bytes of the arrays each kernel touches),
so the predicted metric is comparable with the published one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.errors import ConfigError, did_you_mean
from hwsim.trace import DTYPE_BYTES, Trace

HARNESSES = ("isolated", "loop", "kernel")
#: Launches a ``loop`` harness replays; the time per launch is taken over the second half.
LOOP_LAUNCHES = 16
#: BabelStream kernels: (arrays read, arrays written, FLOPs per element).
STREAM_KERNELS = {"copy": (1, 1, 0), "mul": (1, 1, 1), "scale": (1, 1, 1), "add": (2, 1, 1),
                  "triad": (2, 1, 2), "dot": (2, 0, 2), "read": (1, 0, 1), "write": (0, 1, 0)}


@dataclass(frozen=True)
class Case:
    """One replayable measurement: the ops of one launch and the work the metric counts.

    A ``workload`` case instead names trace generators (family, preset, parameters): its
    traces are generated and replayed whole, one after the other, by the event engine, and
    its metric counts the last trace's own units (tokens, frames). A ``generation`` case is
    two of them: the prefill of ``batch`` inputs, then ``output`` decoded tokens each.
    """

    kind: str
    ops: tuple[dict, ...]  # the ops of one launch (op ids from 0; one stream unless ``streams``)
    flops: float           # FLOPs the benchmark counts for one launch
    bytes: float           # bytes the benchmark counts for one launch
    workloads: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()
    streams: int = 1       # ops of one launch on this many streams (replayed by the event engine)

    @property
    def whole(self) -> bool:
        """True for workload cases (replayed by the event engine, not per op)."""
        return bool(self.workloads)

    def traces(self) -> list[Trace]:
        """The generated traces of a workload case, in the order they run."""
        from workloads.registry import generate_trace  # a tool, like the demo, may meet both

        return [generate_trace(family, preset, dict(params), seed=0) for family, preset, params in self.workloads]

    def trace(self, harness: str) -> Trace:
        """The trace a harness replays: one launch, or ``LOOP_LAUNCHES`` back to back."""
        launches = 1 if harness in ("isolated", "kernel") else LOOP_LAUNCHES
        rows = []
        for launch in range(launches):
            for op in self.ops:
                rows.append({**op, "op_id": launch * len(self.ops) + op["op_id"], "step": -1})
        return Trace.from_ops(rows, meta={"work_unit": "launch", "work_units": launches,
                                           "description": "calibration case"})


def parse_replay(text: str, where: str) -> Case:
    """The case a ``replay`` spec describes; ConfigError naming ``where`` when it is malformed."""
    words = text.split()
    if not words:
        raise ConfigError(f"{where}: empty replay spec")
    kind, fields = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{where}: {word!r} is not key=value")
        fields[key] = value
    if kind in ("workload", "generation"):
        return (_workload if kind == "workload" else _generation)(fields, where)
    if kind == "gdn_chunk":
        return _gdn_chunk(fields, where)
    builders = {"gemm": _gemm, "attention": _attention, "stream": _stream, "copy": _copy,
                "collective": _collective}
    if kind not in builders:
        raise ConfigError(f"{where}: unknown replay kind {kind!r}"
                          f"{did_you_mean(kind, (*builders, 'workload', 'generation', 'gdn_chunk'))}")
    spec = _Fields(fields, where)
    case = builders[kind](spec)
    spec.check_all_used()
    return case


class _Fields:
    """The key=value fields of a spec, read once each, with the spec's location in errors."""

    def __init__(self, fields: dict[str, str], where: str) -> None:
        self.fields, self.where, self.used = fields, where, set()

    def int(self, key: str, default: int | None = None) -> int:
        value = self._get(key, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.where}: {key}={value!r} is not a whole number") from None
        if number <= 0:
            raise ConfigError(f"{self.where}: {key} must be > 0, got {number}")
        return number

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = str(self._get(key, default))
        if choices and value not in choices:
            raise ConfigError(f"{self.where}: {key}={value!r} is not one of {', '.join(choices)}")
        return value

    def dtype(self, default: str) -> str:
        return self.text("dtype", default, tuple(DTYPE_BYTES))

    def flag(self, key: str, default: bool) -> bool:
        return self.text(key, "true" if default else "false", ("true", "false")) == "true"

    def _get(self, key: str, default):
        self.used.add(key)
        if key in self.fields:
            return self.fields[key]
        if default is None:
            raise ConfigError(f"{self.where}: missing {key}=")
        return default

    def check_all_used(self) -> None:
        extra = sorted(set(self.fields) - self.used)
        if extra:
            raise ConfigError(f"{self.where}: unknown field {extra[0]!r}"
                              f"{did_you_mean(extra[0], tuple(sorted(self.used)))}")


def _gemm(f: _Fields) -> Case:
    m, n, k, batch = f.int("m"), f.int("n"), f.int("k"), f.int("batch", 1)
    dtype = f.dtype("bf16")
    width = DTYPE_BYTES[dtype]
    out = 4 if width >= 4 else 2
    op = dict(op_id=0, kind="gemm", m=m, n=n, k=k, batch=batch, dtype=dtype, flops=2 * m * n * k * batch,
              src="weights", bytes_read=k * n * width * batch, src2="act", bytes_read2=m * k * width * batch,
              dst="act", bytes_written=m * n * out * batch)
    return Case("gemm", (op,), flops=2.0 * m * n * k * batch, bytes=0.0)


def _attention(f: _Fields) -> Case:
    kernel = f.text("kernel", "")
    pass_name = f.text("pass", "fwd", ("fwd", "bwd"))
    s, d, heads, batch = f.int("seqlen"), f.int("head_dim"), f.int("heads"), f.int("batch", 1)
    causal = f.flag("causal", False)
    dtype = f.dtype("bf16")
    pairs = s * (s + 1) // 2 if causal else s * s
    per_pair = 4 if pass_name == "fwd" else 10
    flops = per_pair * pairs * d * heads * batch
    width = DTYPE_BYTES[dtype]
    tensor = batch * heads * s * d * width
    reads, writes = (3, 1) if pass_name == "fwd" else (5, 3)  # Q K V (O dO) in; O (dQ dK dV) out
    op = dict(op_id=0, kind="attention" if pass_name == "fwd" else "attention_bwd", m=s, n=s, k=d,
              batch=heads * batch, dtype=dtype, kernel=kernel, flops=flops, src="act",
              bytes_read=reads * tensor, dst="act", bytes_written=writes * tensor)
    counted = per_pair * s * s * d * heads * batch / (2 if causal else 1)  # FlashAttention's convention
    return Case("attention", (op,), flops=float(counted), bytes=0.0)


def _stream(f: _Fields) -> Case:
    name = f.text("op", None, tuple(STREAM_KERNELS))
    elements, dtype = f.int("elements"), f.dtype("fp64")
    reads, writes, per_element = STREAM_KERNELS[name]
    array = elements * DTYPE_BYTES[dtype]
    op = dict(op_id=0, kind="elementwise", elements=elements, flops=per_element * elements, dtype=dtype,
              src="act" if reads else "", bytes_read=reads * array, dst="act" if writes else "",
              bytes_written=writes * array)
    return Case("stream", (op,), flops=0.0, bytes=float((reads + writes) * array))


def _copy(f: _Fields) -> Case:
    src, dst, nbytes = f.text("src"), f.text("dst"), f.int("bytes")
    op = dict(op_id=0, kind="transfer", src=src, dst=dst, bytes_read=nbytes)
    counted = 2 * nbytes if src == dst else nbytes  # a copy within one memory reads and writes it
    return Case("copy", (op,), flops=0.0, bytes=float(counted))


def _family(fields: dict[str, str], where: str) -> tuple[str, str]:
    family, preset = fields.pop("family", None), fields.pop("preset", None)
    if not family or not preset:
        raise ConfigError(f"{where}: a workload case needs family= and preset=")
    from workloads.registry import get_family  # checked here so a bad name fails at load

    get_family(family)
    return family, preset


def _workload(fields: dict[str, str], where: str) -> Case:
    family, preset = _family(fields, where)
    return Case("workload", (), flops=0.0, bytes=0.0, workloads=((family, preset, tuple(sorted(fields.items()))),))


def _generation(fields: dict[str, str], where: str) -> Case:
    family, preset = _family(fields, where)
    spec = _Fields(fields, where)
    batch, inputs, outputs = spec.int("batch"), spec.int("input"), spec.int("output")
    rest = tuple(sorted((k, v) for k, v in fields.items() if k not in ("batch", "input", "output")))
    prefill = (("mode", "prefill"), ("seq_len", str(inputs)), ("tokens_per_step", str(batch * inputs)), *rest)
    decode = (("mode", "decode"), ("decode_batch", str(batch)), ("context_tokens", str(inputs)),
              ("decode_tokens", str(outputs)), *rest)
    return Case("generation", (), flops=0.0, bytes=0.0,
                workloads=((family, preset, tuple(sorted(prefill))), (family, preset, tuple(sorted(decode)))))


def _gdn_chunk(fields: dict[str, str], where: str) -> Case:
    """K0..K5 of the deltanet2 family's chunkwise forward for one layer: six kernels."""
    from workloads.common.ops import OpTable
    from workloads.deltanet2 import load_spec
    from workloads.deltanet2.generator import chunk_kernels

    spec = _Fields(fields, where)
    seq_len, heads, batch = spec.int("seq_len"), spec.int("heads"), spec.int("batch", 1)
    variant = spec.text("variant", "gdn", ("gdn", "kda", "gdn2"))
    dk, dv = spec.int("head_k_dim", 128), spec.int("head_v_dim", 128)
    spec.check_all_used()
    model = load_spec("gdn2-1.3b", {"variant": variant, "mode": "prefill", "seq_len": str(seq_len),
                                    "tokens_per_step": str(seq_len * batch), "num_heads": str(heads),
                                    "head_k_dim": str(dk), "head_v_dim": str(dv)})
    table = OpTable()
    table.grid((1,), chunk_kernels(model, batch))
    frame = table.build()
    frame["stream"] = "main"
    frame["deps"] = ""
    ops = tuple({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                for row in frame.to_dict("records"))
    return Case("gdn_chunk", ops, flops=float(frame["flops"].sum()), bytes=0.0)


#: nccl-tests' bus bandwidth factor per collective for ``n`` devices (busbw = algbw x factor).
BUS_FACTORS = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
               "reduce_scatter": lambda n: (n - 1) / n, "all_to_all": lambda n: (n - 1) / n,
               "broadcast": lambda n: 1.0, "send": lambda n: 1.0, "permute": lambda n: 1.0}
#: Collective-permute patterns: (source, destination) pairs for ``n`` devices.
PERMUTES = {"ring": lambda n: [(i, (i + 1) % n) for i in range(n)],
            "swap": lambda n: [(i, i ^ 1) for i in range(n)],
            "half": lambda n: [(i, i + n // 2) for i in range(n // 2)],
            "pair": lambda n: [(0, 1)], "bidir": lambda n: [(0, 1), (1, 0)]}


def _collective(f: _Fields) -> Case:
    """nccl-tests' conventions: ``bytes`` is their ``size`` (all-gather: the output, so each
    device contributes size/n; reduce-scatter: the input), ``algbw = size / time`` and
    ``busbw = algbw x`` :data:`BUS_FACTORS` (``metric``). ``permute`` (XLA's
    collective-permute, p2pBandwidthLatencyTest) is one send per pair of ``pattern``, all at once."""
    op = f.text("op", None, tuple(BUS_FACTORS))
    size, devices = f.int("bytes"), f.int("devices")
    metric = f.text("metric", "algbw", ("algbw", "busbw"))
    algorithm = f.text("algorithm", "auto", ("auto", "ring", "tree", "nvls"))
    group = f"0-{devices - 1}"
    kernel = "" if algorithm == "auto" else algorithm
    if op in ("send", "permute"):
        pattern = f.text("pattern", "pair" if op == "send" else "ring", tuple(PERMUTES))
        pairs = PERMUTES[pattern](devices)
        ops = tuple(dict(op_id=i, kind="send", device=str(a), peer=b, bytes_read=size, kernel=kernel,
                         stream=f"d{a}.to{b}") for i, (a, b) in enumerate(pairs))
        counted = size * (len(pairs) if pattern == "bidir" else 1)
        return Case("collective", ops, flops=0.0, bytes=float(counted), streams=len(pairs))
    per_device = size // devices if op == "all_gather" else size
    if op == "all_gather" and size % devices:
        raise ConfigError(f"{f.where}: an all_gather's bytes (its output) must divide by devices={devices}")
    row = dict(op_id=0, kind=op, device=group, bytes_read=per_device, kernel=kernel)
    counted = size * (BUS_FACTORS[op](devices) if metric == "busbw" else 1.0)
    return Case("collective", (row,), flops=0.0, bytes=float(counted))
