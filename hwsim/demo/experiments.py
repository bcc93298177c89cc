"""The demo's experiments: which workload traces run on which machines, and what to keep.

Four questions from the seed papers, each a small grid of (trace, machine) runs:

* **worldkv** — LingBot-World-Fast under full KV, a sliding window and WorldKV (rho 0.5 and
  0.25), on an H200 whose KV bank sits in CPU memory behind PCIe, a GH200 whose bank sits
  behind NVLink-C2C, and a WorldKV accelerator whose bank sits behind CXL;
* **worldkv-4xh200** — full KV and WorldKV as the released code runs them: the whole
  360-frame rollout on 4 H200s with Ulysses sequence parallelism (the paper's setup);
* **gdn2** — Gated DeltaNet-2 (hybrid) against the softmax transformer of the same size:
  training throughput at 16K tokens per step for 2K to 16K sequences on an H100, as the
  GDN-2 paper's scaling figure;
* **hrm** — HRM-Text-1B decode on an H100 and on an edge NPU;
* **kvquant** — bf16 against OScaR-style INT2 KV caches: long-context Llama-3.1-8B decode on
  an H200 and on an H200 with a dequantize unit, and whether WorldKV's bank fits in HBM.

Each run's folder is written under ``<out>/runs/``; the tidy table of all runs is the
input of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: 20 chunks = 237 video frames: long enough for full KV's window to grow 20-fold, short
#: enough that full KV still fits one H200 (the paper's 360-frame rollout needs more memory
#: than one GPU has; the released script shards it over 4).
WORLDKV_FRAMES = 237


@dataclass(frozen=True)
class Run:
    """One trace on one machine."""

    experiment: str
    label: str              # the variant: policy, model or mode
    machine: str            # a shipped machine's name (hwsim machines)
    family: str
    preset: str
    params: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    x: float = 0.0          # the experiment's x axis (sequence length), if any

    @property
    def folder(self) -> str:
        return f"{self.experiment}/{self.machine}/{self.label.replace(' ', '_').replace('=', '')}"


def worldkv_runs(frames: int = WORLDKV_FRAMES) -> list[Run]:
    policies = {
        "full KV": {"policy": "full"},
        "sliding 18": {"policy": "sliding"},
        "WorldKV rho=0.5": {"policy": "worldkv", "keep_ratio": "0.5"},
        "WorldKV rho=0.25": {"policy": "worldkv", "keep_ratio": "0.25"},
    }
    machines = ("h200", "gh200", "worldkv-asic")
    return [Run("worldkv", label, machine, "worldkv", "lingbot-world-fast",
                {**params, "rollout_frames": str(frames)})
            for label, params in policies.items() for machine in machines]


def worldkv_released_runs() -> list[Run]:
    """Full KV and WorldKV (rho 0.5) on the released setup: 4x H200 over NVLink, Ulysses
    sequence parallelism, the preset's 357-frame (360-frame) rollout."""
    return [Run("worldkv-4xh200", label, "h200x4", "worldkv", "lingbot-world-fast-4xh200", params)
            for label, params in {"full KV": {"policy": "full"},
                                  "WorldKV rho=0.5": {"policy": "worldkv", "keep_ratio": "0.5"}}.items()]


def gdn2_runs(seq_lens: tuple[int, ...] = (2048, 4096, 8192, 16384)) -> list[Run]:
    models = {"GDN-2 hybrid": ("deltanet2", "gdn2-1.3b-hybrid"), "Transformer": ("transformer", "transformer-1.3b")}
    return [Run("gdn2", f"{label} {seq // 1024}K", "h100-sxm", family, preset,
                {"mode": "train", "seq_len": str(seq), "tokens_per_step": "16384"}, x=seq)
            for label, (family, preset) in models.items() for seq in seq_lens]


def hrm_runs() -> list[Run]:
    params = {"mode": "decode", "context_tokens": "1024", "decode_tokens": "8"}
    return [Run("hrm", "HRM-Text-1B decode", machine, "hrm", "hrm-text-1b", params)
            for machine in ("h100-sxm", "edge-npu")]


def kvquant_runs() -> list[Run]:
    """What a 2-bit KV cache does: Llama-3.1-8B decoding at a 128K context (batch 1 and 8) on an
    H200 and on an H200 with a dequantize unit, bf16 vs OScaR-style INT2; and LingBot's
    357-frame WorldKV bank placed in HBM instead of CPU memory, bf16 vs INT2 (the
    ``overflow`` column says whether it fits)."""
    caches = {"bf16": {}, "INT2 OScaR": {"kv_dtype": "int2", "kv_quant": "oscar"}}
    runs = [Run("kvquant", f"Llama-3.1-8B 128K {label} batch {batch}", machine, "transformer",
                "llama-3.1-8b", {"mode": "decode", "decode_tokens": "4", "decode_batch": str(batch), **kv},
                x=batch)
            for label, kv in caches.items() for batch in (1, 8) for machine in ("h200", "h200-kvquant")]
    runs += [Run("kvquant", f"WorldKV bank in HBM {label}", "h200", "worldkv", "lingbot-world-fast",
                 {"rollout_frames": "357", **kv}, overrides={"placement.kv_bank": "hbm"})
             for label, kv in caches.items()]
    return runs


def all_runs() -> list[Run]:
    return [*worldkv_runs(), *worldkv_released_runs(), *gdn2_runs(), *hrm_runs(), *kvquant_runs()]
