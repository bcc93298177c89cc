"""`HRMSpec`: HRM-Text, two pre-norm transformer modules applied N x (T + 1) times per token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.common.lm import LMScenario
from workloads.common.spec import PresetLibrary, check, spec_param, validate_fields
from workloads.kvquant.format import KVCacheParams

FAMILY = "hrm"


@dataclass(frozen=True)
class HRMSpec(KVCacheParams, LMScenario):
    """HRM-Text (WORKLOADS §3.2–3.5): modules M_L and M_H of ``module_layers`` blocks each.

    One forward runs ``h_cycles`` times: ``l_cycles`` applications of M_L, then one of M_H.
    Every block application has its own attention and, at inference, its own KV-cache slot
    (bf16 or quantized: ``kv_dtype``, ``kv_quant``).
    """

    d_model: int = spec_param(1536, minimum=1, help="model width d")
    num_heads: int = spec_param(12, minimum=1, help="attention heads (MHA)")
    head_dim: int = spec_param(128, minimum=1, help="head dimension (heads x head_dim = d)")
    d_ff: int = spec_param(4096, minimum=1, help="SwiGLU intermediate width")
    module_layers: int = spec_param(16, minimum=1, help="blocks per module (l_m = n_layers / 2)")
    h_cycles: int = spec_param(2, minimum=1, help="N: high-level cycles per forward")
    l_cycles: int = spec_param(3, minimum=1, help="T: low-level applications per high-level cycle")
    vocab_size: int = spec_param(151808, minimum=1, help="vocabulary (untied embedding and head)")
    bp: int = spec_param(2, minimum=1, help="module applications that receive gradient in train "
                                            "mode (warm-up grows it 2 -> 5)")
    prefix_tokens: int = spec_param(0, minimum=0, help="PrefixLM prefix per sequence: these tokens "
                                                       "attend bidirectionally (0 = causal)")

    def __post_init__(self) -> None:
        validate_fields(self, FAMILY)
        self.check_scenario(FAMILY)
        check(self.num_heads * self.head_dim == self.d_model, FAMILY, "head_dim",
              f"num_heads x head_dim must equal d_model ({self.d_model}), got "
              f"{self.num_heads} x {self.head_dim}")
        check(2 <= self.bp <= self.applications, FAMILY, "bp",
              f"must be between 2 and the {self.applications} module applications per forward, "
              f"got {self.bp}")
        check(self.prefix_tokens <= self.seq_len, FAMILY, "prefix_tokens",
              f"must not exceed seq_len ({self.seq_len}), got {self.prefix_tokens}")
        if self.kv_dtype != "bf16":
            check(self.mode != "train", FAMILY, "kv_dtype",
                  "train keeps K and V in activations; a quantized KV cache applies to prefill and decode")
            self.kv_format.check_head_dim(self.head_dim, FAMILY)

    @property
    def applications(self) -> int:
        """Module applications per forward: N x (T + 1)."""
        return self.h_cycles * (self.l_cycles + 1)

    @property
    def block_params(self) -> int:
        """P_blk = 5 d^2 (gate, q, k, v, o) + 3 d d_ff (SwiGLU); norms are parameter-free."""
        return 5 * self.d_model ** 2 + 3 * self.d_model * self.d_ff

    @property
    def num_params(self) -> int:
        """Both modules plus untied embedding and head."""
        return 2 * self.module_layers * self.block_params + 2 * self.vocab_size * self.d_model

    def module_of(self, app: int) -> str:
        """'L' or 'H' for module application ``app`` (0-based, in execution order)."""
        return "H" if app % (self.l_cycles + 1) == self.l_cycles else "L"

    def grad_applications(self) -> list[int]:
        """Applications that receive gradient: the last min(N, bp-1) H and the last rest L ones."""
        n_h = min(self.h_cycles, self.bp - 1)
        n_l = self.bp - n_h
        apps = range(self.applications)
        h_apps = [a for a in apps if self.module_of(a) == "H"][-n_h:]
        l_apps = [a for a in apps if self.module_of(a) == "L"][-n_l:]
        return sorted(h_apps + l_apps)


LIBRARY = PresetLibrary(FAMILY, HRMSpec, Path(__file__).parent / "presets")
