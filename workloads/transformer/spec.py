"""`TransformerSpec`: a dense softmax-attention decoder, the baseline for linear attention and
the shape of mainstream LLMs (Llama 2 / Llama 3.1 presets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.common.lm import LMScenario
from workloads.common.spec import PresetLibrary, check, spec_param, validate_fields
from workloads.kvquant.format import KVCacheParams

FAMILY = "transformer"


@dataclass(frozen=True)
class TransformerSpec(KVCacheParams, LMScenario):
    """A pre-norm decoder: per layer RMSNorm, grouped-query attention with RoPE and full causal
    attention over a KV cache (bf16 or quantized), SwiGLU MLP; untied embedding and LM head."""

    d_model: int = spec_param(2304, minimum=1, help="model width D")
    num_layers: int = spec_param(18, minimum=1, help="decoder blocks")
    num_heads: int = spec_param(18, minimum=1, help="query heads")
    num_kv_heads: int = spec_param(0, minimum=0, help="K/V heads shared by the query heads (GQA; 1 = MQA; "
                                                      "0 = as many as query heads, MHA)")
    head_dim: int = spec_param(128, minimum=1, help="head dimension")
    d_ff: int = spec_param(6208, minimum=1, help="SwiGLU intermediate width")
    vocab_size: int = spec_param(32000, minimum=1, help="vocabulary (untied embedding and head)")
    rope_theta: float = spec_param(10000.0, minimum=0.0, exclusive_minimum=True,
                                   help="RoPE base (recorded with the preset; costs do not depend on it)")
    max_context: int = spec_param(0, minimum=0, help="positions the model supports (0 = unchecked); "
                                                     "sequences and decode contexts must fit")
    gemm_dtype: str = spec_param("bf16", unit="text", choices=("bf16", "fp8"), source="[A] scenario",
                                 help="linear layers: bf16, or fp8 weights and activations with bf16 "
                                      "outputs (TensorRT-LLM's FP8 builds; the LM head stays bf16)")

    def __post_init__(self) -> None:
        validate_fields(self, FAMILY)
        self.check_scenario(FAMILY)
        check(self.num_heads % self.kv_heads == 0, FAMILY, "num_kv_heads",
              f"{self.num_heads} query heads do not split into groups of {self.kv_heads} K/V heads")
        if self.max_context:
            longest = max(self.seq_len, self.context_tokens + self.decode_tokens if self.mode == "decode" else 0)
            name = "context_tokens" if self.mode == "decode" and longest > self.seq_len else "seq_len"
            check(longest <= self.max_context, FAMILY, name,
                  f"{longest} positions exceed the model's max_context of {self.max_context}")
        check(self.gemm_dtype == "bf16" or self.mode != "train", FAMILY, "gemm_dtype",
              "fp8 linear layers model inference builds; training keeps bf16 GEMMs here")
        if self.kv_dtype != "bf16":
            check(self.mode != "train", FAMILY, "kv_dtype",
                  "train keeps K and V in activations; a quantized KV cache applies to prefill and decode")
            self.kv_format.check_head_dim(self.head_dim, FAMILY)

    @property
    def kv_heads(self) -> int:
        """K/V heads (``num_kv_heads``, or ``num_heads`` when 0)."""
        return self.num_kv_heads or self.num_heads

    @property
    def attn_width(self) -> int:
        """Query heads x head dim."""
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """K/V heads x head dim."""
        return self.kv_heads * self.head_dim

    @property
    def block_params(self) -> int:
        """Parameters of one block: Q and O (D x heads·d_h), K and V (D x kv_heads·d_h), the MLP
        (3 D d_ff) and two norm weights."""
        return (2 * self.d_model * self.attn_width + 2 * self.d_model * self.kv_width
                + 3 * self.d_model * self.d_ff + 2 * self.d_model)

    @property
    def num_params(self) -> int:
        """All parameters: blocks, final norm, embedding and LM head."""
        return (self.num_layers * self.block_params + self.d_model
                + 2 * self.vocab_size * self.d_model)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights: 2 per parameter, 1 for the blocks' linear layers in fp8."""
        if self.gemm_dtype == "bf16":
            return 2 * self.num_params
        linear = self.num_layers * (self.block_params - 2 * self.d_model)
        return 2 * self.num_params - linear


LIBRARY = PresetLibrary(FAMILY, TransformerSpec, Path(__file__).parent / "presets")
