"""Systolic arrays with output-, weight- or input-stationary dataflow.

GEMM compute cycles follow SCALE-Sim's fold model. For an array of R rows and C columns
and a GEMM of (M x K) @ (K x N), the dataflow maps the GEMM to a spatial extent Sr x Sc
and a temporal extent T:

=========  ====  ====  ====  ==========================
dataflow   Sr    Sc    T     cycles per fold
=========  ====  ====  ====  ==========================
``os``     M     N     K     T + R + C - 2
``ws``     K     N     M     2R + C + T - 2
``is``     K     M     N     2R + C + T - 2
=========  ====  ====  ====  ==========================

and ``ceil(Sr / R) * ceil(Sc / C)`` folds run one after another. A machine with ``count``
arrays spreads one op's folds over all of them (``partition: folds``, the default, as a
compiler does for one layer: ``ceil(folds / count)`` rounds) or runs independent ops on
separate arrays (``partition: ops``). Per fold, OS streams T
operand rows and drains the outputs (R + C - 2 cycles of skew); WS and IS first load the
stationary operand (R cycles), then stream T rows through the skewed array. These are the
row counts of SCALE-Sim's demand matrices; ``tests/hwsim/test_systolic.py`` rebuilds those
matrices on small shapes and counts their rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwsim.components.base import ComputeUnit, ceil_div, register
from hwsim.components.facts import ANY_DTYPE, ComponentFacts, Peak
from hwsim.config.fields import param
from hwsim.trace.columns import OpColumns

DATAFLOWS = ("os", "ws", "is")


def fold_geometry(m, n, k, rows: int, cols: int, dataflow: str) -> tuple[np.ndarray, np.ndarray]:
    """(folds, cycles per fold) of an (m x k) @ (k x n) GEMM on a rows x cols array.

    Works element-wise on integer arrays. Raises ValueError for an unknown dataflow.
    """
    m, n, k = (np.asarray(x, dtype=np.int64) for x in (m, n, k))
    if dataflow == "os":
        sr, sc, t = m, n, k
        per_fold = t + rows + cols - 2
    elif dataflow == "ws":
        sr, sc, t = k, n, m
        per_fold = 2 * rows + cols + t - 2
    elif dataflow == "is":
        sr, sc, t = k, m, n
        per_fold = 2 * rows + cols + t - 2
    else:
        raise ValueError(f"unknown dataflow {dataflow!r} (expected one of {DATAFLOWS})")
    return ceil_div(sr, rows) * ceil_div(sc, cols), per_fold


def gemm_cycles(m, n, k, rows: int, cols: int, dataflow: str) -> np.ndarray:
    """SCALE-Sim compute cycles of an (m x k) @ (k x n) GEMM on one rows x cols array."""
    folds, per_fold = fold_geometry(m, n, k, rows, cols, dataflow)
    return folds * per_fold


@register("systolic_array")
class SystolicArray(ComputeUnit):
    """A rows x cols array of MAC units; ``count`` identical arrays run ops in parallel."""

    handles = {"gemm": 2, "attention": 2, "attention_bwd": 2}

    @dataclass(frozen=True, kw_only=True)
    class Config:
        rows: int = param(unit="count", minimum=1, help="processing elements per column")
        cols: int = param(unit="count", minimum=1, help="processing elements per row")
        dataflow: str = param("os", unit="text", choices=DATAFLOWS,
                              help="os (output), ws (weight) or is (input) stationary")
        count: int = param(1, unit="count", minimum=1, help="identical arrays")
        partition: str = param("folds", unit="text", choices=("folds", "ops"),
                               help="folds: one op's folds spread over all arrays; ops: one op per array")
        clock: float = param(0.0, unit="frequency", help="array clock (0 = the machine clock)")
        memory: str = param(unit="text", help="memory tier the array's operands stream from")
        energy_per_flop: float = param(0.0, unit="energy", per="FLOP",
                                        help="dynamic energy per FLOP (MAC = 2 FLOPs), pJ")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the energy and timing figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

    @property
    def instances(self) -> int:
        """``partition: folds`` makes the arrays one unit that runs one op at a time."""
        return self.config.count if self.config.partition == "ops" else 1

    def facts(self) -> ComponentFacts:
        """Peak: a MAC (2 FLOPs) per processing element per cycle on every array."""
        cfg = self.config
        return replace(super().facts(), peaks=(Peak(ANY_DTYPE, 2.0 * cfg.rows * cfg.cols * cfg.count * self.clock_hz),))

    def cycles(self, ops: OpColumns) -> np.ndarray:
        cfg = self.config
        arrays = cfg.count if cfg.partition == "folds" else 1
        kind = np.asarray(ops["kind"])
        m, n, k, batch = (np.asarray(ops[c]) for c in ("m", "n", "k", "batch"))
        out = np.zeros(len(ops), dtype=np.int64)
        gemm = kind == "gemm"
        if gemm.any():
            out[gemm] = self._spread(batch[gemm], m[gemm], n[gemm], k[gemm], arrays)
        attn = (kind == "attention") & (m > 0) & (n > 0) & (k > 0)
        if attn.any():
            # Q K^T is (m x k) @ (k x n); P V is (m x n) @ (n x k); both per head.
            out[attn] = (self._spread(batch[attn], m[attn], n[attn], k[attn], arrays)
                         + self._spread(batch[attn], m[attn], k[attn], n[attn], arrays))
        other = ~(gemm | attn)
        if other.any():
            flops_per_cycle = 2 * cfg.rows * cfg.cols * arrays
            out[other] = ceil_div(np.asarray(ops["flops"])[other], flops_per_cycle)
        return out

    def _spread(self, batch, m, n, k, arrays: int) -> np.ndarray:
        """Cycles of ``batch`` GEMMs whose folds are dealt round-robin over ``arrays`` arrays."""
        cfg = self.config
        folds, per_fold = fold_geometry(m, n, k, cfg.rows, cfg.cols, cfg.dataflow)
        return ceil_div(batch * folds, arrays) * per_fold
