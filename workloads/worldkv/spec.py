"""`WorldKVSpec`: a chunked autoregressive video-diffusion rollout under one KV policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from workloads.common.spec import PresetLibrary, check, spec_param, validate_fields
from workloads.kvquant.format import KVCacheParams
from workloads.worldkv.kernels_numpy import retrieval_candidates

FAMILY = "worldkv"
POLICIES = ("full", "sliding", "worldkv")
TRAJECTORIES = ("loop", "back_and_forth", "straight", "file")


@dataclass(frozen=True)
class _WorldKVFields:
    """Model dims (WORKLOADS §1.6), KV policy (§1.2–1.4) and rollout scenario of a WorldKV trace."""

    # --- DiT backbone -------------------------------------------------------------------
    num_layers: int = spec_param(40, minimum=1, help="DiT blocks L")
    d_model: int = spec_param(5120, minimum=1, help="model width d")
    num_heads: int = spec_param(40, minimum=1, help="attention heads n_h")
    head_dim: int = spec_param(128, minimum=1, help="head dim d_h (n_h x d_h = d)")
    d_ff: int = spec_param(13824, minimum=1, help="FFN width")
    tokens_per_frame: int = spec_param(1560, minimum=1, help="F_s: tokens per latent frame")
    chunk_frames: int = spec_param(3, minimum=1, help="c: latent frames per chunk")
    denoise_passes: int = spec_param(4, minimum=1, help="n_den: denoising passes per chunk "
                                                        "(a clean pass follows)")
    context_tokens: int = spec_param(512, minimum=0, help="L_ctx: cross-attention context tokens "
                                                          "(their K,V are computed once)")
    camera_injector_linears: int = spec_param(0, minimum=0, help="d x d linears per block on the "
                                                                 "camera embedding (LingBot: 4)")
    # --- KV policy ----------------------------------------------------------------------
    policy: str = spec_param("worldkv", unit="text", choices=POLICIES,
                             help="full (window grows), sliding (FIFO of sliding_window_frames) or "
                                  "worldkv (sink + retrieved chunks + recent)")
    sink_frames: int = spec_param(3, minimum=0, help="s: sink latent frames (worldkv)")
    recent_frames: int = spec_param(6, minimum=1, help="m: recent latent frames, current chunk "
                                                       "included (worldkv)")
    retrieved_chunks: int = spec_param(6, minimum=0, help="k: chunks retrieved per step by pose "
                                                          "(worldkv; r = k x c frames)")
    sliding_window_frames: int = spec_param(18, minimum=1, source="[A] demo files 'sliding18'",
                                            help="N: latent frames kept by the sliding policy")
    keep_ratio: float = spec_param(0.5, minimum=0.0, exclusive_minimum=True,
                                   help="rho: share of non-anchor tokens kept per frame by World "
                                        "Compression, in (0, 1]; 1 = off")
    compression_pooled: bool = spec_param(True, unit="bool",
                                          help="keep the least anchor-similar tokens jointly over "
                                               "the chunk's non-anchor frames (else per frame)")
    concat_window: bool = spec_param(False, unit="bool", source="[C] released code concatenates",
                                     help="model the released code's materialisation of the "
                                          "window by concatenation (one extra copy per layer per pass)")
    # --- scenario -----------------------------------------------------------------------
    rollout_frames: int = spec_param(357, minimum=1, source="[A] 30 chunks (§1.5)",
                                     help="video frames to generate (rounded up to whole chunks)")
    trajectory: str = spec_param("loop", unit="text", choices=TRAJECTORIES, source="[A] scenario",
                                 help="camera path: loop and back_and_forth revisit their start, "
                                      "straight never revisits, file reads trajectory_file")
    trajectory_period_frames: int = spec_param(48, minimum=2, source="[A] scenario",
                                               help="latent frames per loop or per out-and-back")
    trajectory_file: str = spec_param("", unit="text",
                                      help="camera-to-world 4x4 poses: .npy [n,4,4] or text with "
                                           "16 numbers per line (row-major); trajectory=file")
    trajectory_file_frames: str = spec_param("video", unit="text", choices=("video", "latent"),
                                             help="whether trajectory_file has one pose per video "
                                                  "frame or per latent frame")
    retrieval_search: str = spec_param("score", unit="text", choices=("score", "cam"), source="[A] hardware variant",
                                       help="how candidate chunks are found: score every candidate's pose "
                                            "(similarity + top-k, Eq. 1.7-1.12) or search a CAM of quantised "
                                            "pose keys (one cam_write per stored chunk, one cam_search per step)")
    pose_key_bits: int = spec_param(64, minimum=1, source="[A] quantised pose key",
                                    help="bits of the quantised pose key a CAM stores per chunk")
    compress_proxy_dim: int = spec_param(16, minimum=2, source="[A] kernel proxy",
                                         help="key width of the synthetic keys the compression "
                                              "kernel runs on (the kept count does not depend on it)")

    def __post_init__(self) -> None:
        validate_fields(self, FAMILY)
        check(self.num_heads * self.head_dim == self.d_model, FAMILY, "head_dim",
              f"num_heads x head_dim must equal d_model ({self.d_model}), "
              f"got {self.num_heads} x {self.head_dim}")
        check(self.keep_ratio <= 1.0, FAMILY, "keep_ratio", f"must be in (0, 1], got {self.keep_ratio}")
        if self.policy == "sliding":
            check(self.sliding_window_frames >= self.chunk_frames, FAMILY, "sliding_window_frames",
                  f"must hold at least the current chunk ({self.chunk_frames} frames), "
                  f"got {self.sliding_window_frames}")
        if self.policy == "worldkv":
            check(self.recent_frames >= self.chunk_frames, FAMILY, "recent_frames",
                  f"includes the current chunk, so must be >= chunk_frames ({self.chunk_frames}), "
                  f"got {self.recent_frames}")
            most = self.candidates(self.num_chunks - 1)
            if self.retrieved_chunks > most:
                gap = max(1, self.recent_frames // self.chunk_frames)
                chunks = self.retrieved_chunks + gap + math.ceil(self.sink_frames / self.chunk_frames) + 1
                check(False, FAMILY, "retrieved_chunks",
                      f"{self.retrieved_chunks} chunks per step, but a {self.num_chunks}-chunk rollout "
                      f"offers at most {most} retrieval candidates; lower it or raise rollout_frames "
                      f"to >= {self.video_frames_for(chunks)}")
        if self.kv_dtype != "bf16":
            self.kv_format.check_head_dim(self.head_dim, FAMILY)
        if self.trajectory == "file":
            check(bool(self.trajectory_file), FAMILY, "trajectory_file",
                  "trajectory=file needs a path (.npy or text)")
        else:
            check(not self.trajectory_file, FAMILY, "trajectory_file",
                  f"is only read with trajectory=file (trajectory is {self.trajectory!r})")

    # --- derived quantities -------------------------------------------------------------
    @property
    def num_chunks(self) -> int:
        """Chunks needed for ``rollout_frames`` video frames (chunk 0 has 1 + 4(c-1) frames)."""
        return max(1, math.ceil((self.rollout_frames + 3) / (4 * self.chunk_frames)))

    def video_frames_for(self, chunks: int) -> int:
        """Video frames produced by ``chunks`` chunks: 4 c J - 3."""
        return 4 * self.chunk_frames * chunks - 3

    @property
    def video_frames(self) -> int:
        """Video frames actually produced (``rollout_frames`` rounded up to whole chunks)."""
        return self.video_frames_for(self.num_chunks)

    @property
    def latent_frames(self) -> int:
        """Latent frames of the rollout: chunks x c."""
        return self.num_chunks * self.chunk_frames

    @property
    def query_tokens(self) -> int:
        """N_q = c F_s tokens per DiT pass."""
        return self.chunk_frames * self.tokens_per_frame

    @property
    def window_frames(self) -> int:
        """W = s + r + m: the ring cache of the worldkv policy, in latent frames."""
        return self.sink_frames + self.retrieved_chunks * self.chunk_frames + self.recent_frames

    def candidates(self, chunk: int) -> int:
        """Retrieval candidates of ``chunk`` (Eq. 1.8): ceil(s/c) <= j' < j - max(1, floor(m/c))."""
        return len(retrieval_candidates(chunk, self.chunk_frames, self.sink_frames,
                                        self.retrieved_chunks * self.chunk_frames, self.recent_frames))

    @property
    def store_tokens(self) -> int:
        """n_store: tokens banked per chunk, F_s + (c - 1) ceil(rho F_s) (c F_s when rho = 1)."""
        return store_tokens(self.tokens_per_frame, self.chunk_frames, self.keep_ratio)

    @property
    def banks(self) -> bool:
        """Whether chunks are banked (and compressed): the worldkv policy with retrieval on."""
        return self.policy == "worldkv" and self.retrieved_chunks > 0

    @property
    def compressed(self) -> bool:
        """Whether World Compression runs at store time."""
        return self.banks and self.keep_ratio < 1.0

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V of one token in one layer, bf16: 2 d x 2 B."""
        return 4 * self.d_model

    def stored_bytes(self, tokens: int) -> int:
        """K and V bytes of one stored chunk of ``tokens`` tokens in one layer (bf16 or packed)."""
        if not self.kv_format.quantized:
            return tokens * self.kv_bytes_per_token
        return self.kv_format.packed_bytes(tokens, self.num_heads, self.head_dim)

    def frames_bytes(self, frames: int) -> int:
        """Stored bytes of ``frames`` whole latent frames of one layer, chunk by chunk (a chunk
        is quantized as one run of key groups)."""
        full, rest = divmod(frames, self.chunk_frames)
        chunk = self.chunk_frames * self.tokens_per_frame
        return full * self.stored_bytes(chunk) + (self.stored_bytes(rest * self.tokens_per_frame) if rest else 0)


@dataclass(frozen=True)
class WorldKVSpec(KVCacheParams, _WorldKVFields):
    """A WorldKV rollout: the fields of :class:`_WorldKVFields`, then the KV-cache format.

    KV-cache format (``kv_dtype``, ``kv_quant``, ``kv_group_size``): the chunk being generated
    stays bf16 (every pass rewrites it); once its clean pass has written it, a chunk is
    stored quantized in the attention window, and its kept tokens quantized in the bank.
    ``kv_residual_tokens`` does not apply (the current chunk is the residual window).
    """


def store_tokens(tokens_per_frame: int, chunk_frames: int, keep_ratio: float) -> int:
    """Tokens of one banked chunk after compression (Eq. 1.16)."""
    if keep_ratio >= 1.0:
        return chunk_frames * tokens_per_frame
    keep = max(1, math.ceil(keep_ratio * tokens_per_frame))
    return tokens_per_frame + (chunk_frames - 1) * keep


LIBRARY = PresetLibrary(FAMILY, WorldKVSpec, Path(__file__).parent / "presets")
