"""`DeltaNet2Spec`: Gated DeltaNet-2 language models (and the KDA / GDN special cases)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.common.lm import LMScenario
from workloads.common.spec import PresetLibrary, check, spec_param, validate_fields

FAMILY = "deltanet2"
VARIANTS = ("gdn2", "kda", "gdn")


@dataclass(frozen=True)
class DeltaNet2Spec(LMScenario):
    """A stack of delta-rule mixer blocks (optionally alternating with sliding-window attention).

    Variants (WORKLOADS §2.1–2.2): ``gdn2`` has channel-wise decay g, erase gate b (key axis)
    and write gate w (value axis) as separate projections; ``kda`` ties b and w to one
    per-head beta (projection D -> H); ``gdn`` also makes the decay a per-head scalar.
    """

    variant: str = spec_param("gdn2", unit="text", choices=VARIANTS,
                              help="mixer: gdn2 (decoupled erase/write gates), kda or gdn")
    d_model: int = spec_param(2304, minimum=1, help="model width D")
    num_blocks: int = spec_param(18, minimum=1, help="blocks (mixer + MLP each)")
    num_heads: int = spec_param(16, minimum=1, help="delta-rule heads H")
    head_k_dim: int = spec_param(128, minimum=1, help="key head dim d_k")
    head_v_dim: int = spec_param(128, minimum=1, help="value head dim d_v")
    d_ff: int = spec_param(6208, minimum=1, help="SwiGLU MLP intermediate width")
    vocab_size: int = spec_param(32000, minimum=1, help="vocabulary (untied embedding and head)")
    conv_kernel: int = spec_param(4, minimum=1, help="depthwise causal conv kernel on q, k, v")
    gate_rank: int = spec_param(128, minimum=1, help="rank of the low-rank decay (f) and output-gate paths")
    hybrid: bool = spec_param(False, unit="bool",
                              help="alternate mixer blocks (even) with sliding-window attention "
                                   "blocks (odd)")
    swa_window: int = spec_param(2048, minimum=1, help="SWA window in tokens (hybrid)")
    swa_heads: int = spec_param(18, minimum=1, help="SWA heads (hybrid)")
    swa_head_dim: int = spec_param(128, minimum=1, help="SWA head dim (hybrid)")
    chunk_size: int = spec_param(64, minimum=1, help="chunk length C of the chunkwise WY kernels")
    chunk_bwd_factor: float = spec_param(2.0, minimum=1.0, source="[A] 2-2.5x forward",
                                         help="backward/forward FLOP ratio of the chunkwise kernels")

    def __post_init__(self) -> None:
        validate_fields(self, FAMILY)
        self.check_scenario(FAMILY)
        check(not self.hybrid or self.num_blocks % 2 == 0, FAMILY, "num_blocks",
              f"a hybrid model alternates mixer and SWA blocks, so it needs an even count, "
              f"got {self.num_blocks}")

    @property
    def key_width(self) -> int:
        """H x d_k."""
        return self.num_heads * self.head_k_dim

    @property
    def value_width(self) -> int:
        """H x d_v."""
        return self.num_heads * self.head_v_dim

    @property
    def swa_width(self) -> int:
        """SWA heads x head dim."""
        return self.swa_heads * self.swa_head_dim

    @property
    def pattern(self) -> tuple[str, ...]:
        """Block types of one repeating group: ("mixer",) or ("mixer", "swa")."""
        return ("mixer", "swa") if self.hybrid else ("mixer",)

    @property
    def num_mixer_blocks(self) -> int:
        """Blocks whose token mixer is the delta rule."""
        return self.num_blocks // len(self.pattern)

    @property
    def num_swa_blocks(self) -> int:
        """Sliding-window attention blocks (hybrid only)."""
        return self.num_blocks - self.num_mixer_blocks

    def mixer_params(self) -> int:
        """Parameters of one delta-rule mixer (projections, gates, convs, output norm and gate)."""
        d, r, kw, vw, h = self.d_model, self.gate_rank, self.key_width, self.value_width, self.num_heads
        params = d * (2 * kw + vw) + vw * d                      # q, k, v, o
        params += (2 * kw + vw) * self.conv_kernel               # depthwise convs
        params += d * r + r * vw + vw + self.head_v_dim          # output gate (with bias), o-norm
        if self.variant == "gdn2":
            params += d * kw + d * vw                            # erase b and write w
        else:
            params += d * h                                      # beta
        if self.variant == "gdn":
            params += d * h + 2 * h                              # scalar decay, a, delta
        else:
            params += d * r + r * kw + kw + h                    # low-rank decay, delta, a
        return params

    def block_params(self, kind: str) -> int:
        """One block: mixer or SWA attention, SwiGLU MLP and two norm weights."""
        mixer = self.mixer_params() if kind == "mixer" else 4 * self.d_model * self.swa_width
        return mixer + 3 * self.d_model * self.d_ff + 2 * self.d_model

    @property
    def non_embedding_params(self) -> int:
        """Block parameters (the count the released config reports)."""
        return (self.num_mixer_blocks * self.block_params("mixer")
                + self.num_swa_blocks * self.block_params("swa"))

    @property
    def num_params(self) -> int:
        """Blocks, final norm, embedding and LM head."""
        return self.non_embedding_params + self.d_model + 2 * self.vocab_size * self.d_model


LIBRARY = PresetLibrary(FAMILY, DeltaNet2Spec, Path(__file__).parent / "presets")
