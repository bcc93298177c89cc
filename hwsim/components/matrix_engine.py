"""GPU-like matrix engines: peaks per precision, GEMM tiles and waves, fused attention kernels.

Every op runs at the peak of its own ``dtype`` times the fraction of it the engine
sustains (``efficiency``, or ``efficiency_by_dtype``): measured large GEMMs on an H100 reach
about 0.8 of the BF16 peak but only 0.6-0.7 of the FP8 peak, because the chip's clock
falls under the power limit sooner at twice the math rate. A dtype the engine has no peak
for is an error naming the op, never a silent fallback.

* ``gemm``: the tile-and-wave model of :mod:`hwsim.components.gemm_tiles` over the
  candidate tiles the engine's library has (``tiles``), with stream-K for the dtypes in
  ``stream_k``.
* ``attention`` / ``attention_bwd``: the fused-kernel model of :mod:`hwsim.components.attention`
  for the kernel the op names (trace column ``kernel``) or the engine's ``attention_kernel``.
  Without a kernel the op is charged its FLOPs at the sustained peak.
* ``state_update``: a recurrence over its states' value tiles, one tile per unit, each
  step at least ``step_latency`` (see :func:`hwsim.components.vector.recurrence_cycles`); a
  step of few rows (decoding) pads its tiles, or runs on the FP32 pipes when that is faster.
* other kinds (similarity, rotations): FLOPs at the sustained peak.

``op_overhead`` is the fixed cost of every kernel, paid before its compute and its memory
traffic alike (see :attr:`ComputeUnit.fixed_cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hwsim.components.attention import KERNELS, PASSES, KernelOnMachine, attention_cycles
from hwsim.components.base import (
    ComputeUnit,
    OpError,
    ceil_cycles,
    register,
    seconds_to_cycles,
    text_equals,
    text_factorize,
)
from hwsim.components.facts import ComponentFacts, Peak
from hwsim.components.gemm_tiles import gemm_cycles, next_power_of_two, parse_tiles
from hwsim.components.vector import recurrence_cycles
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns
from hwsim.trace.schema import DTYPE_BYTES

__all__ = ["MatrixEngine", "next_power_of_two"]

#: Bytes of one output element: GEMMs of 16-bit and 8-bit inputs write bf16, wider ones fp32.
OUTPUT_BYTES = {dtype: (4 if width >= 4 else 2) for dtype, width in DTYPE_BYTES.items()}


@register("matrix_engine")
class MatrixEngine(ComputeUnit):
    """Tensor-core style engine with per-precision peaks, tile/wave GEMMs and attention kernels."""

    handles = {"gemm": 2, "attention": 2, "attention_bwd": 2, "state_update": 1, "similarity": 1,
               "rotate": 1}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        peak_flops: dict = param(unit="map:flops",
                                 help="dense peak FLOP/s per dtype, e.g. {bf16: 989.4 TFLOP/s}")
        num_units: int = param(1, unit="count", minimum=1, help="units (SMs) that run tiles in waves")
        tile_m: int = param(128, unit="count", minimum=1, help="output tile rows (the default tile)")
        tile_n: int = param(128, unit="count", minimum=1, help="output tile columns (the default tile)")
        tile_k: int = param(64, unit="count", minimum=1, help="reduction step of a tile, elements")
        tile_k_bytes: int = param(0, unit="count", minimum=0,
                                  help="reduction step in bytes (k = this / dtype bytes; 0 = tile_k)")
        tiles: dict = param({}, unit="map:text",
                            help="candidate tiles per dtype ('default' for the rest), e.g. "
                                 "{default: '128x128 128x256', fp8: '128x256'}; empty = tile_m x tile_n")
        stream_k: tuple = param((), unit="list", help="dtypes whose library has stream-K GEMM kernels")
        tile_overhead: float = param(0.0, unit="time", minimum=0.0,
                                     help="per-kernel pipeline fill and drain of a GEMM, s")
        epilogue_bandwidth: float = param(0.0, unit="bandwidth", minimum=0.0,
                                          help="bytes/s one unit writes an output tile at (0 = hidden)")
        min_tile_m: int = param(16, unit="count", minimum=1, help="fewest rows a tile may have (skinny GEMMs)")
        op_overhead: float = param(0.0, unit="time", minimum=0.0,
                                   help="fixed time per kernel (launch, ramp, tail), s")
        efficiency: float = param(1.0, unit="count", minimum=0.0, exclusive_minimum=True,
                                  help="fraction of peak a full tile sustains (0-1]")
        efficiency_by_dtype: dict = param({}, unit="map:count",
                                          help="per-dtype efficiency overriding 'efficiency'")
        attention_kernel: str = param("", unit="text", choices=("", *KERNELS),
                                      help="default fused attention kernel ('' = FLOPs at peak)")
        attention_efficiency: dict = param({}, unit="map:count",
                                           help="per <kernel>_<pass> (e.g. flash3_fwd): fraction of peak")
        attention_overlap: dict = param({}, unit="map:count",
                                        help="per <kernel>_<pass>: share of softmax hidden under matmul (0-1)")
        attention_tile_overhead: dict = param({}, unit="map:time",
                                              help="per <kernel>_<pass>: overhead per work unit, s")
        sfu_rate: float = param(0.0, unit="flops", minimum=0.0,
                                help="special-function (exp) throughput of the engine, ops/s")
        state_tile_n: int = param(64, unit="count", minimum=1,
                                  help="value columns of a recurrent state one unit updates")
        step_latency: float = param(0.0, unit="time", minimum=0.0,
                                    help="least time of one dependent step of a recurrence, s")
        clock: float = param(0.0, unit="frequency", help="engine clock (0 = the machine clock)")
        memory: str = param(unit="text", help="memory tier operands stream from")
        energy_per_flop: float = param(0.0, unit="energy", per="FLOP", help="dynamic energy per FLOP, pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            if not self.peak_flops:
                yield "peak_flops", "give at least one dtype"
            for dtype, peak in self.peak_flops.items():
                if peak <= 0:
                    yield f"peak_flops.{dtype}", f"must be > 0, got {peak:g}"
            for key, table in (("peak_flops", self.peak_flops), ("efficiency_by_dtype", self.efficiency_by_dtype),
                               ("stream_k", dict.fromkeys(self.stream_k)),
                               ("tiles", {k: v for k, v in self.tiles.items() if k != "default"})):
                for dtype in table:
                    if dtype not in DTYPE_BYTES:
                        yield f"{key}.{dtype}", f"unknown dtype (known: {', '.join(DTYPE_BYTES)})"
            for dtype, value in {"": self.efficiency, **self.efficiency_by_dtype}.items():
                if value > 1 or value <= 0:
                    yield f"efficiency_by_dtype.{dtype}" if dtype else "efficiency", f"must be in (0, 1], got {value:g}"
            for dtype, text in self.tiles.items():
                try:
                    parse_tiles(text, self.tile_k, f"tiles.{dtype}")
                except ValueError as err:
                    yield f"tiles.{dtype}", str(err).removeprefix(f"tiles.{dtype}: ")
            keys = set(self.attention_efficiency) | set(self.attention_overlap) | set(self.attention_tile_overhead)
            for key in sorted(keys):
                kernel, _, pass_name = key.partition("_")
                if kernel not in KERNELS or pass_name not in PASSES:
                    yield "attention_efficiency", (f"attention constant {key!r}: expected <kernel>_<pass> with kernel "
                                                   f"in {', '.join(KERNELS)} and pass in {', '.join(PASSES)}")
                if not 0 < self.attention_efficiency.get(key, 1.0) <= 1:
                    yield f"attention_efficiency.{key}", "must be in (0, 1]"
                if not 0 <= self.attention_overlap.get(key, 0.0) <= 1:
                    yield f"attention_overlap.{key}", "must be in [0, 1]"
            if (self.attention_kernel or keys) and self.sfu_rate <= 0:
                yield "sfu_rate", "attention kernels need the special-function rate"

    def __init__(self, name, config, ref_clock_hz) -> None:
        super().__init__(name, config, ref_clock_hz)
        self._shapes: dict[str, tuple] = {}
        self._attention = self._attention_constants()

    def _attention_constants(self) -> dict[tuple[str, str], KernelOnMachine]:
        """Each fused attention kernel's constants on this engine (validated by the config's hook)."""
        cfg = self.config
        keys = set(cfg.attention_efficiency) | set(cfg.attention_overlap) | set(cfg.attention_tile_overhead)
        return {tuple(key.split("_", 1)): KernelOnMachine(
            efficiency=cfg.attention_efficiency.get(key, 1.0),
            overlap=cfg.attention_overlap.get(key, 0.0),
            tile_cycles=cfg.attention_tile_overhead.get(key, 0.0) * self.clock_hz) for key in keys}

    # -- peaks ---------------------------------------------------------------------------
    def facts(self) -> ComponentFacts:
        """Peaks: the datasheet ``peak_flops`` of each dtype (the whole engine, before efficiency)."""
        return replace(super().facts(), peaks=tuple(Peak(str(d), float(v)) for d, v in self.config.peak_flops.items()))

    def efficiency_of(self, dtype: str) -> float:
        return self.config.efficiency_by_dtype.get(dtype, self.config.efficiency)

    def peaks(self, ops: OpColumns) -> tuple[np.ndarray, np.ndarray]:
        """Whole-engine peak FLOP per cycle and sustained fraction for each op's dtype.

        Raises OpError (the row and column) for a dtype the engine has no peak for.
        """
        peaks = self.config.peak_flops
        codes, names = text_factorize(ops, "dtype")
        for i, dtype in enumerate(names):
            if dtype not in peaks:
                raise OpError(int(np.flatnonzero(codes == i)[0]), "dtype",
                              f"unit {self.name!r} has no peak for {dtype!r} (it has: {', '.join(peaks)}); "
                              f"add peak_flops.{dtype} to the machine")
        peak = np.array([peaks[d] for d in names]) / self.clock_hz
        fraction = np.array([self.efficiency_of(d) for d in names])
        return peak[codes], fraction[codes]

    # -- timing --------------------------------------------------------------------------
    def cycles(self, ops: OpColumns) -> np.ndarray:
        flops = np.asarray(ops["flops"], dtype=np.float64)
        peak, fraction = self.peaks(ops)
        sustained = peak * fraction
        out = flops / sustained
        gemm = text_equals(ops, "kind", "gemm")
        if gemm.any():
            out[gemm] = self._gemm(ops, gemm, sustained[gemm])
        for pass_name, kind_name in (("fwd", "attention"), ("bwd", "attention_bwd")):
            rows = text_equals(ops, "kind", kind_name)
            if rows.any():
                out[rows] = self._attention_ops(ops, rows, pass_name, peak[rows], sustained[rows])
        recurrence = text_equals(ops, "kind", "state_update")
        if recurrence.any():
            out[recurrence] = self._recurrence(ops, recurrence, sustained[recurrence])
        return ceil_cycles(out)

    def _recurrence(self, ops: OpColumns, rows: np.ndarray, sustained: np.ndarray) -> np.ndarray:
        """State updates: a step's products are ``m`` rows (a chunk's tokens, or one token while
        decoding) padded to ``min_tile_m`` on the tensor cores; when that wastes more than the
        FP32 peak would, the kernel runs on the FP32 pipes instead."""
        cfg = self.config
        m = np.maximum(np.asarray(ops["m"], dtype=np.int64)[rows], 1)
        rate = sustained * np.minimum(1.0, m / cfg.min_tile_m)
        if "fp32" in cfg.peak_flops:
            rate = np.maximum(rate, cfg.peak_flops["fp32"] * self.efficiency_of("fp32") / self.clock_hz)
        return recurrence_cycles(
            np.asarray(ops["flops"], dtype=np.float64)[rows], np.asarray(ops["batch"], dtype=np.int64)[rows],
            np.asarray(ops["n"], dtype=np.int64)[rows], np.asarray(ops["elements"], dtype=np.int64)[rows],
            units=cfg.num_units, tile_n=cfg.state_tile_n, unit_flops_per_cycle=rate / cfg.num_units,
            step_cycles=cfg.step_latency * self.clock_hz)

    def _tile_shapes(self, dtype: str) -> tuple:
        """The candidate tiles for ``dtype``, with its reduction step (cached per dtype)."""
        if dtype not in self._shapes:
            cfg = self.config
            tile_k = max(cfg.tile_k_bytes // DTYPE_BYTES[dtype], 1) if cfg.tile_k_bytes else cfg.tile_k
            text = cfg.tiles.get(dtype) or cfg.tiles.get("default") or f"{cfg.tile_m}x{cfg.tile_n}"
            self._shapes[dtype] = parse_tiles(text, tile_k, f"components.{self.name}.tiles")
        return self._shapes[dtype]

    def _gemm(self, ops: OpColumns, rows: np.ndarray, peak: np.ndarray) -> np.ndarray:
        cfg = self.config
        m, n, k, batch = (np.asarray(ops[c], dtype=np.int64)[rows] for c in ("m", "n", "k", "batch"))
        codes, names = text_factorize(ops, "dtype")
        codes = codes[rows]
        out = np.empty(len(m))
        for code in pd.unique(codes).tolist():   # the dtypes in order of first appearance
            sel = codes == code
            dtype = names[code]
            epilogue = cfg.epilogue_bandwidth / self.clock_hz
            out[sel] = gemm_cycles(
                m[sel], n[sel], k[sel], batch[sel], unit_flops_per_cycle=peak[sel] / cfg.num_units,
                out_bytes=np.full(int(sel.sum()), OUTPUT_BYTES[dtype]), shapes=self._tile_shapes(dtype),
                units=cfg.num_units, min_tile_m=cfg.min_tile_m,
                stream_k=np.full(int(sel.sum()), dtype in cfg.stream_k),
                epilogue_bytes_per_cycle=epilogue,
                overhead_cycles=seconds_to_cycles(cfg.tile_overhead, self.clock_hz))
        return out

    def _attention_ops(self, ops: OpColumns, rows: np.ndarray, pass_name: str,
                       peak: np.ndarray, sustained: np.ndarray) -> np.ndarray:
        """Attention rows of one pass: the fused-kernel model, or FLOPs at the sustained peak."""
        cfg = self.config
        flops = np.asarray(ops["flops"], dtype=np.float64)[rows]
        named = np.asarray(ops["kernel"], dtype=object)[rows] if "kernel" in ops else np.full(int(rows.sum()), "")
        chosen = np.where(named == "", cfg.attention_kernel, named)
        dtypes = np.asarray(ops["dtype"], dtype=object)[rows]
        out = flops / sustained
        for kernel_name in pd.unique(chosen):
            if not kernel_name:
                continue
            if kernel_name not in KERNELS:
                raise OpError(int(np.flatnonzero(rows)[np.argmax(chosen == kernel_name)]), "kernel",
                              f"unknown attention kernel {kernel_name!r} (known: {', '.join(KERNELS)})")
            for fp8 in (False, True):
                sel = (chosen == kernel_name) & (np.char.startswith(dtypes.astype(str), "fp8") == fp8)
                if not sel.any():
                    continue
                key = (kernel_name, pass_name + ("_fp8" if fp8 else ""))
                on_machine = self._attention.get(key) or self._attention.get((kernel_name, pass_name))
                if on_machine is None:
                    raise OpError(int(np.flatnonzero(rows)[np.argmax(sel)]), "kernel",
                                  f"unit {self.name!r} has no constants for attention kernel "
                                  f"{'_'.join(key)} (set attention_efficiency.{'_'.join(key)} and the "
                                  "attention_overlap and attention_tile_overhead of it in the machine)")
                units = cfg.num_units
                exp_rate = cfg.sfu_rate / self.clock_hz / units
                fp32 = cfg.peak_flops.get("fp32", cfg.sfu_rate * 4) / self.clock_hz / units
                m, n, d, batch = (np.asarray(ops[c], dtype=np.int64)[rows][sel] for c in ("m", "n", "k", "batch"))
                out[sel] = attention_cycles(m, n, d, batch, flops[sel], kernel=KERNELS[kernel_name],
                                            pass_name=pass_name, on_machine=on_machine, units=units,
                                            unit_flops_per_cycle=peak[sel] / units,
                                            exp_per_cycle=exp_rate, fp32_per_cycle=fp32)
        return out
