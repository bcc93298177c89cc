"""`KVFormat`: how a KV cache is stored, and the bytes that storage takes.

Formats (``kv_dtype``):

* ``bf16``: 2 bytes per element, nothing quantized (the baseline);
* ``fp8``: 1 byte per element, cast on write with one scale per head fixed ahead of time
  [A] (no per-group parameters, no full-precision window);
* ``int8``, ``int4``, ``int2``: asymmetric min-max group quantization, codes packed along
  the channel axis (2 values per byte at INT4, 4 at INT2). Keys are grouped per channel
  over ``group_size`` consecutive tokens, values per token over ``group_size`` consecutive
  channels (KIVI's axes [S]); every group stores an fp16 scale and an fp16 zero point.
  Key groups need ``group_size`` tokens, so the newest tokens stay bf16 in a residual
  window: of n cached tokens, ``floor(max(n − residual_tokens, 0) / group_size) ·
  group_size`` are quantized and the rest are bf16.

Methods (``kv_quant``) for the integer and fp8 formats:

* ``plain``: quantize K and V as they are;
* ``oscar``: OScaR-style (arXiv 2605.19660): a Hadamard rotation of every K and V vector
  over its head dimension, then keys divided by their own L2 norm (one fp16 scale per
  token and head, multiplied back on read) so that every token enters the per-channel key
  groups with the same norm; values are already scaled per token by their groups [A].
  Queries are rotated the same way and the attention output rotated back.

OScaR's group size, residual window and value axis are not public; the defaults below
are our choices [A]: ``group_size`` 32 (two fp16 parameters per 32 values = 1 bit per
element, which with INT2 codes gives 5.2x less KV memory than bf16, close to the reported
5.3x [P/S]) and ``residual_tokens`` 128 (KIVI's residual length [S]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.common.spec import check, spec_param

KV_DTYPES = ("bf16", "fp8", "int8", "int4", "int2")
KV_METHODS = ("plain", "oscar")
BITS = {"bf16": 16, "fp8": 8, "int8": 8, "int4": 4, "int2": 2}
#: Bytes of one stored quantization parameter (fp16 scale, zero point or token norm).
PARAM_BYTES = 2
BF16_BYTES = 2


@dataclass(frozen=True)
class KVFormat:
    """Storage of a KV cache: element format, method, group size, bf16 residual window."""

    dtype: str = "bf16"
    method: str = "plain"
    group_size: int = 32
    residual_tokens: int = 128

    def __post_init__(self) -> None:
        if self.dtype not in KV_DTYPES:
            raise ValueError(f"kv_dtype: {self.dtype!r} is not one of {', '.join(KV_DTYPES)}")
        if self.method not in KV_METHODS:
            raise ValueError(f"kv_quant: {self.method!r} is not one of {', '.join(KV_METHODS)}")
        if self.group_size < 1 or self.residual_tokens < 0:
            raise ValueError("kv_group_size must be >= 1 and kv_residual_tokens >= 0")

    @property
    def quantized(self) -> bool:
        """Whether anything is stored below bf16."""
        return self.dtype != "bf16"

    @property
    def grouped(self) -> bool:
        """Integer formats: per-group scales and zero points, a bf16 residual window."""
        return self.dtype.startswith("int")

    @property
    def bits(self) -> int:
        """Bits per stored element."""
        return BITS[self.dtype]

    @property
    def rotated(self) -> bool:
        """Whether K, V and queries are Hadamard-rotated (OScaR)."""
        return self.quantized and self.method == "oscar"

    def quantized_tokens(self, tokens):
        """How many of ``tokens`` cached tokens are stored quantized (int or int array)."""
        if not self.quantized:
            return tokens * 0
        if not self.grouped:
            return tokens
        full = np.maximum(np.asarray(tokens) - self.residual_tokens, 0) // self.group_size * self.group_size
        return full if isinstance(tokens, np.ndarray) else int(full)

    def packed_bytes(self, tokens, kv_heads: int, head_dim: int):
        """Bytes of K and V of ``tokens`` quantized tokens (one layer, one sequence).

        Codes: 2 · tokens · kv_heads · head_dim · bits / 8. Integer formats add an fp16
        scale and zero point per key group (ceil(tokens / group_size) · kv_heads · head_dim
        groups) and per value group (tokens · kv_heads · ceil(head_dim / group_size)); OScaR
        adds one fp16 key norm per token and head.
        """
        codes = 2 * tokens * kv_heads * head_dim * self.bits // 8
        if not self.grouped:
            return codes
        G = self.group_size
        key_groups = -(-tokens // G) * kv_heads * head_dim
        value_groups = tokens * kv_heads * -(-head_dim // G)
        params = 2 * PARAM_BYTES * (key_groups + value_groups)
        if self.rotated:
            params = params + PARAM_BYTES * tokens * kv_heads
        return codes + params

    def cache_bytes(self, tokens, kv_heads: int, head_dim: int):
        """Bytes of a cache of ``tokens`` tokens: quantized part plus the bf16 residual."""
        n_q = self.quantized_tokens(tokens)
        return self.packed_bytes(n_q, kv_heads, head_dim) + (tokens - n_q) * 2 * kv_heads * head_dim * BF16_BYTES

    def check_head_dim(self, head_dim: int, family: str) -> None:
        """Raise ConfigError unless ``head_dim`` suits the format (whole bytes, power-of-two rotation)."""
        check(head_dim * self.bits % 8 == 0, family, "kv_dtype",
              f"{self.dtype} codes of a {head_dim}-channel head do not fill whole bytes")
        if self.rotated:
            check(head_dim & (head_dim - 1) == 0, family, "kv_quant",
                  f"oscar rotates each head with a Hadamard transform, which needs a power-of-two "
                  f"head dimension, got {head_dim}")


@dataclass(frozen=True)
class KVCacheParams:
    """Spec fields that choose the KV-cache format (mixed into a family's spec)."""

    kv_dtype: str = spec_param("bf16", unit="text", choices=KV_DTYPES, source="[A] scenario",
                               help="KV-cache element format: bf16, fp8, or int8/int4/int2 group "
                                    "quantization with packed codes")
    kv_quant: str = spec_param("plain", unit="text", choices=KV_METHODS, source="[A] scenario",
                               help="plain quantization, or oscar: Hadamard rotation and per-token "
                                    "key norm scaling before quantizing (OScaR)")
    kv_group_size: int = spec_param(32, minimum=1, source="[A] OScaR group size not public; 1 bit/element of "
                                                          "fp16 parameters, 5.2x vs bf16 at INT2",
                                    help="tokens per key group (per channel) and channels per value "
                                         "group (per token)")
    kv_residual_tokens: int = spec_param(128, minimum=0, source="[A] KIVI residual length [S]",
                                         help="newest tokens kept in bf16 before they fill a key group")

    @property
    def kv_format(self) -> KVFormat:
        """The :class:`KVFormat` these fields describe."""
        return KVFormat(self.kv_dtype, self.kv_quant, self.kv_group_size, self.kv_residual_tokens)
