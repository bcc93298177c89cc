"""`TransformerSpec`: a dense softmax-attention decoder, the baseline for linear attention."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.common.lm import LMScenario
from workloads.common.spec import PresetLibrary, spec_param, validate_fields

FAMILY = "transformer"


@dataclass(frozen=True)
class TransformerSpec(LMScenario):
    """A pre-norm decoder: per layer RMSNorm, MHA with RoPE and full causal attention, SwiGLU MLP."""

    d_model: int = spec_param(2304, minimum=1, help="model width D")
    num_layers: int = spec_param(18, minimum=1, help="decoder blocks")
    num_heads: int = spec_param(18, minimum=1, help="attention heads (MHA: as many K/V heads)")
    head_dim: int = spec_param(128, minimum=1, help="head dimension")
    d_ff: int = spec_param(6208, minimum=1, help="SwiGLU intermediate width")
    vocab_size: int = spec_param(32000, minimum=1, help="vocabulary (untied embedding and head)")

    def __post_init__(self) -> None:
        validate_fields(self, FAMILY)
        self.check_scenario(FAMILY)

    @property
    def attn_width(self) -> int:
        """Heads x head dim."""
        return self.num_heads * self.head_dim

    @property
    def block_params(self) -> int:
        """Parameters of one block: Q, K, V, O, the MLP and two norm weights."""
        return 4 * self.d_model * self.attn_width + 3 * self.d_model * self.d_ff + 2 * self.d_model

    @property
    def num_params(self) -> int:
        """All parameters: blocks, final norm, embedding and LM head."""
        return (self.num_layers * self.block_params + self.d_model
                + 2 * self.vocab_size * self.d_model)


LIBRARY = PresetLibrary(FAMILY, TransformerSpec, Path(__file__).parent / "presets")
