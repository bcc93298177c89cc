"""PyTorch profiler traces (Kineto's Chrome-trace JSON) as calibration measurements.

``torch.profiler`` with ``record_shapes=True`` exports every GPU kernel (``cat: kernel``,
its duration ``dur`` in microseconds) and every operator (``cat: cpu_op``, with ``Input
Dims`` and ``Input type``); a kernel carries the ``External id`` of the operator that
launched it (or a ``correlation`` to the runtime call that does). Each kernel is matched to
its operator and becomes an hwsim op:

=====================================================  ==================================
operator                                               hwsim op
=====================================================  ==================================
``aten::mm``, ``addmm``, ``bmm``, ``baddbmm``,          ``gemm`` (m, n, k, batch, dtype)
``linear``, ``_scaled_mm``
``aten::_scaled_dot_product_flash_attention``,          ``attention`` (FlashAttention-2)
``aten::_flash_attention_forward``
their ``_backward``                                     ``attention_bwd``
any other operator with tensor inputs                  ``elementwise`` over its bytes
``gpu_memcpy`` events                                  ``transfer`` (host <-> device)
=====================================================  ==================================

Each matched kernel is replayed alone on the machine as the profiler timed it (its time on
the device, no host launch), so measured and predicted times compare kernel by kernel.
Kernels whose operator is unknown or has no shapes are counted and reported, not guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.calibration.cases import Case
from hwsim.calibration.fit import FitResult, Parameter, fit
from hwsim.calibration.parameters import CATALOGUE
from hwsim.calibration.table import Measurement, replay
from hwsim.engine.machine import Machine
from hwsim.errors import ConfigError

#: PyTorch's scalar type names (``Input type``) and their hwsim dtype and width in bytes.
TORCH_TYPES = {"c10::BFloat16": ("bf16", 2), "c10::Half": ("fp16", 2), "float": ("fp32", 4),
               "double": ("fp64", 8), "c10::Float8_e4m3fn": ("fp8", 1), "c10::Float8_e5m2": ("fp8", 1),
               "signed char": ("int8", 1), "unsigned char": ("int8", 1), "int": ("int32", 4),
               "long int": ("int32", 8), "bool": ("bool", 1)}
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::_scaled_mm")
ATTENTION_OPS = {"aten::_scaled_dot_product_flash_attention": "fwd", "aten::_flash_attention_forward": "fwd",
                 "aten::_scaled_dot_product_flash_attention_backward": "bwd",
                 "aten::_flash_attention_backward": "bwd"}
#: Index of ``is_causal`` among the operators' arguments (their ATen schemas).
CAUSAL_ARGUMENT = {"aten::_scaled_dot_product_flash_attention": 4, "aten::_flash_attention_forward": 7,
                   "aten::_scaled_dot_product_flash_attention_backward": 9,
                   "aten::_flash_attention_backward": 10}
KERNEL_CATEGORIES = ("kernel", "Kernel")
MEMCPY_CATEGORIES = ("gpu_memcpy", "Memcpy")


@dataclass
class Profile:
    """The kernels of one profiler trace: matched ones as measurements, the rest counted."""

    source: str
    kernels: list[Measurement]
    unmatched: dict[str, list[float]] = field(default_factory=dict)  # reason -> kernel durations, s


def read_profile(path: str | Path) -> Profile:
    """Read and match a profiler trace. ConfigError names the file when it is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a readable profiler trace ({err})") from None
    events = document.get("traceEvents") if isinstance(document, dict) else document
    if not isinstance(events, list):
        raise ConfigError(f"{path}: no 'traceEvents' list (expected a Chrome-trace JSON from torch.profiler)")
    operators, launches, kernels = {}, {}, []
    for event in events:
        if not isinstance(event, dict) or event.get("ph") != "X":
            continue
        category, args = event.get("cat"), event.get("args") or {}
        if category == "cpu_op" and "External id" in args:
            previous = operators.get(args["External id"])
            # Nested operators can share an id; the innermost (shortest) one launched the kernel.
            if previous is None or float(event.get("dur", 0)) < float(previous.get("dur", 0)):
                operators[args["External id"]] = event
        elif category == "cuda_runtime" and "correlation" in args:
            launches[args["correlation"]] = args.get("External id")
        elif category in KERNEL_CATEGORIES + MEMCPY_CATEGORIES:
            kernels.append(event)
    if not kernels:
        raise ConfigError(f"{path}: the trace has no GPU kernels (profile with ProfilerActivity.CUDA)")
    profile = Profile(source=str(path), kernels=[])
    for number, event in enumerate(kernels):
        seconds = float(event.get("dur", 0)) * 1e-6
        if not seconds > 0 or not math.isfinite(seconds):
            profile.unmatched.setdefault("no duration", []).append(0.0)
            continue
        op, reason = _op_of(event, operators, launches)
        if op is None:
            profile.unmatched.setdefault(reason, []).append(seconds)
            continue
        profile.kernels.append(Measurement(
            id=f"{number}:{event.get('name', '')[:60]}", category=op.pop("_category"), machine="profile",
            replay="", harness="kernel", value=seconds * 1e6, unit="us", use="fit", source=str(path),
            case=Case(op["kind"], (op,), flops=float(op.get("flops", 0)), bytes=0.0)))
    return profile


def _op_of(event: dict, operators: dict, launches: dict) -> tuple[dict | None, str]:
    """The hwsim op of one kernel event, or (None, why not)."""
    args = event.get("args") or {}
    if event.get("cat") in MEMCPY_CATEGORIES:
        nbytes = int(args.get("bytes", 0) or 0)
        name = str(event.get("name", ""))
        direction = ("cpu_dram", "hbm") if "HtoD" in name else ("hbm", "cpu_dram") if "DtoH" in name else ("hbm", "hbm")
        if nbytes <= 0:
            return None, "memcpy without a byte count"
        return dict(op_id=0, kind="transfer", src=direction[0], dst=direction[1], bytes_read=nbytes,
                    _category="transfer"), ""
    external = args.get("External id")
    if external is None and "correlation" in args:
        external = launches.get(args["correlation"])
    operator = operators.get(external)
    if operator is None:
        return None, "no operator recorded for the kernel"
    name = str(operator.get("name", ""))
    op_args = operator.get("args") or {}
    dims, types = op_args.get("Input Dims"), op_args.get("Input type")
    if not isinstance(dims, list) or not isinstance(types, list):
        return None, f"{name} without shapes (profile with record_shapes=True)"
    tensors = [(d, t) for d, t in zip(dims, types, strict=False) if isinstance(d, list) and d and t in TORCH_TYPES]
    if name in GEMM_OPS:
        return _gemm(name, tensors)
    if name in ATTENTION_OPS:
        return _attention(name, tensors, op_args.get("Concrete Inputs"))
    if not tensors:
        return None, f"{name} has no tensor inputs"
    sizes = [math.prod(d) * TORCH_TYPES[t][1] for d, t in tensors]
    largest = max(range(len(tensors)), key=lambda i: sizes[i])
    elements = math.prod(tensors[largest][0])
    return dict(op_id=0, kind="elementwise", elements=elements, flops=elements,
                dtype=TORCH_TYPES[tensors[largest][1]][0], src="act", bytes_read=sum(sizes), dst="act",
                bytes_written=sizes[largest], _category="elementwise"), ""


def _gemm(name: str, tensors: list) -> tuple[dict | None, str]:
    mats = [(d, t) for d, t in tensors if len(d) >= 2]
    if len(mats) < 2:
        return None, f"{name} with fewer than two matrices"
    (a, ta), (b, _) = mats[-2:] if name in ("aten::addmm", "aten::baddbmm") else mats[:2]
    if name == "aten::linear":
        m, k, n, batch = math.prod(a[:-1]), a[-1], b[0], 1  # weight is [out, in]
    elif len(a) == 3 and len(b) == 3:
        batch, m, k, n = a[0], a[1], a[2], b[2]
    else:
        m, k, n, batch = math.prod(a[:-1]), a[-1], b[-1], 1
    dtype, width = TORCH_TYPES[ta]
    out = 4 if width >= 4 else 2
    return dict(op_id=0, kind="gemm", m=m, n=n, k=k, batch=batch, dtype=dtype, flops=2 * m * n * k * batch,
                src="weights", bytes_read=k * n * width * batch, src2="act", bytes_read2=m * k * width * batch,
                dst="act", bytes_written=m * n * out * batch, _category="gemm"), ""


def _attention(name: str, tensors: list, concrete) -> tuple[dict | None, str]:
    if len(tensors) < 3 or len(tensors[0][0]) != 4:
        return None, f"{name} without 4-d query, key and value"
    (q, tq), (kv, _) = tensors[0], tensors[1]
    # SDPA's operators take [batch, heads, seq, dim]; flash-attention's own take [batch, seq, heads, dim].
    if name.startswith("aten::_scaled_dot_product"):
        batch, heads, s_q, d = q
        s_k = kv[2]
    else:
        batch, s_q, heads, d = q
        s_k = kv[1]
    index = CAUSAL_ARGUMENT[name]
    causal = isinstance(concrete, list) and len(concrete) > index and str(concrete[index]).lower() == "true"
    pass_name = ATTENTION_OPS[name]
    pairs = s_q * (s_q + 1) // 2 if causal and s_q == s_k else s_q * s_k
    per_pair = 4 if pass_name == "fwd" else 10
    dtype, width = TORCH_TYPES[tq]
    tensor = batch * heads * s_q * d * width
    reads, writes = (3, 1) if pass_name == "fwd" else (5, 3)
    return dict(op_id=0, kind="attention" if pass_name == "fwd" else "attention_bwd", m=s_q, n=s_k, k=d,
                batch=batch * heads, dtype=dtype, kernel="flash2", flops=per_pair * pairs * d * heads * batch,
                src="act", bytes_read=reads * tensor, dst="act", bytes_written=writes * tensor,
                _category="attention"), ""


def compare(profile: Profile, machine: Machine) -> pd.DataFrame:
    """Per op kind: kernels, measured and simulated device time (s), and their ratio."""
    table = replay(profile.kernels, machines={"profile": machine})
    if table.empty:
        raise ConfigError(f"{profile.source}: none of its kernels could be matched to an operator with shapes")
    table["measured_s"] = table["published"] * 1e-6
    table["simulated_s"] = table["predicted"] * 1e-6
    out = table.groupby("category", sort=True).agg(kernels=("id", "size"), measured_s=("measured_s", "sum"),
                                                   simulated_s=("simulated_s", "sum"),
                                                   median_abs_error=("error", lambda e: float(np.median(np.abs(e)))))
    out["speed"] = out["measured_s"] / out["simulated_s"]
    return out.reset_index()


def format_comparison(table: pd.DataFrame, profile: Profile) -> str:
    """The per-kind comparison and the unmatched kernels, for the terminal."""
    lines = [f"{profile.source}: {len(profile.kernels)} kernels matched",
             f"{'op kind':<12} {'kernels':>8} {'measured':>12} {'simulated':>12} {'speed':>8} {'median |error|':>15}"]
    for r in table.itertuples():
        lines.append(f"{r.category:<12} {r.kernels:>8} {r.measured_s * 1e3:>10.3f}ms {r.simulated_s * 1e3:>10.3f}ms "
                     f"{r.speed:>7.3f}x {100 * r.median_abs_error:>14.1f}%")
    for reason, durations in sorted(profile.unmatched.items()):
        lines.append(f"  not matched: {len(durations)} kernels, {sum(durations) * 1e3:.3f} ms ({reason})")
    lines.append("speed = measured time / simulated time (above 1: hwsim is faster than the machine)")
    return "\n".join(lines)


def parameters_for(profile: Profile, machine: Machine) -> list[Parameter]:
    """The constants a profile can inform: those of the op kinds it has, on the units that run them."""
    kinds = {m.category for m in profile.kernels}
    config = machine.config.to_dict()["components"]
    out: list[Parameter] = []
    if "gemm" in kinds and "tensor" in config:
        dtypes = {m.case.ops[0]["dtype"] for m in profile.kernels if m.category == "gemm"}
        for p in CATALOGUE["gemm"]:
            if p.key.endswith(".efficiency") or any(p.key.endswith(f".{d}") for d in dtypes):
                out.append(p)
        out.append(Parameter("components.tensor.op_overhead", 0.0, 10e-6, "us"))
    if "attention" in kinds and "tensor" in config:
        out += [p for p in CATALOGUE["attention"] if ".flash2_" in p.key and "fp8" not in p.key]
    if kinds & {"elementwise", "transfer"}:
        out += [p for p in CATALOGUE["memory_bandwidth"] if p.key.split(".")[1] in config]
    if "elementwise" in kinds and "vector" in config:
        out.append(Parameter("components.vector.op_overhead", 0.0, 10e-6, "us"))
    return out


def fit_profile(profile: Profile, arch: str | Path, parameters: Sequence[Parameter],
                overrides: list[str] | None = None) -> FitResult:
    """Fit ``parameters`` of the machine at ``arch`` to the profile's kernel times."""
    def speeds(machine: Machine) -> np.ndarray:
        return replay(profile.kernels, machines={"profile": machine})["speed"].to_numpy()

    return fit(arch, parameters, speeds, overrides=overrides or ())
