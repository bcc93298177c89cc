"""KV-cache quantization kernels: rotation, norm scaling, group quantization, packing, the
fused attention over a quantized cache, stored bytes, and OScaR-style INT2 against plain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workloads.kvquant import KVFormat, checks
from workloads.kvquant import flops as kf
from workloads.kvquant import kernels as kb
from workloads.kvquant import kernels_numpy as kn


@pytest.fixture
def rng():
    return np.random.default_rng(20260519)


@pytest.mark.parametrize("d", [1, 2, 8, 64, 128])
def test_fwht_equals_the_sylvester_matrix_product_and_is_its_own_inverse(rng, d):
    x = rng.standard_normal((5, 3, d))
    H = np.array([[(-1) ** bin(i & j).count("1") for j in range(d)] for i in range(d)])  # H[i,j] = (-1)^popcount(i&j)
    np.testing.assert_allclose(kb.fwht(x), x @ H / np.sqrt(d), atol=1e-12)
    np.testing.assert_allclose(kn.fwht(x), x @ H / np.sqrt(d), atol=1e-12)
    np.testing.assert_allclose(kb.fwht(kb.fwht(x)), x, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(kb.fwht(x), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)


def test_fwht_rejects_a_size_that_is_not_a_power_of_two(rng):
    with pytest.raises(ValueError, match="power-of-two"):
        kb.fwht(rng.standard_normal((2, 48)))
    with pytest.raises(ValueError, match="power-of-two"):
        kn.hadamard(12)


def test_token_norm_scaling_gives_unit_vectors_and_fp16_norms(rng):
    x = rng.standard_normal((6, 2, 16)) * np.array([1e-3, 1, 50, 1, 1, 1])[:, None, None]
    x[2, 1] = 0.0
    scaled, s = kb.token_norm_scale(x)
    np.testing.assert_array_equal(s, kn.token_norm_scale(x)[1])
    assert np.all(s.astype(np.float16).astype(np.float64) == s)
    norms = np.linalg.norm(scaled, axis=-1)
    assert norms[2, 1] == 0 and s[2, 1] == 1
    np.testing.assert_allclose(np.delete(norms.ravel(), 5), 1, rtol=2e-3)   # fp16 norm: 11 bits


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("axis, group", [(0, 4), (0, 32), (2, 16), (2, 48)],
                         ids=["keys_g4", "keys_g32_partial", "values_g16", "values_g48_partial"])
def test_group_quantization_matches_the_twin_and_stays_within_half_a_step(rng, bits, axis, group):
    x = rng.standard_normal((37, 2, 64)) * rng.uniform(0.1, 10, (37, 1, 1))
    codes, scale, zero = kb.quantize_groups(x, bits, group, axis)
    for fast, twin in zip((codes, scale, zero), kn.quantize_groups(x, bits, group, axis), strict=True):
        np.testing.assert_array_equal(fast, twin)
    assert codes.dtype == np.uint8 and codes.max() <= 2**bits - 1
    assert scale.shape[axis] == math.ceil(x.shape[axis] / group)
    back = kb.dequantize_groups(codes, scale, zero, group, axis)
    np.testing.assert_array_equal(back, kn.dequantize_groups(codes, scale, zero, group, axis))
    step = np.take(scale, np.arange(x.shape[axis]) // group, axis=axis)
    # Half a step, plus what rounding the scale and zero point to fp16 can add at the top code.
    slack = step / 2 + (2**bits) * step * 2**-10 + np.abs(np.take(zero, np.arange(x.shape[axis]) // group, axis=axis)) * 2**-10
    assert np.all(np.abs(back - x) <= slack)


def test_quantization_error_shrinks_with_every_bit(rng):
    x = rng.standard_normal((256, 2, 64))
    errors = [np.abs(kb.dequantize_groups(*kb.quantize_groups(x, b, 32, 0), 32, 0) - x).mean() for b in (2, 4, 8)]
    assert errors[0] > 3 * errors[1] > 9 * errors[2]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packing_holds_8_over_bits_codes_per_byte_and_round_trips(rng, bits):
    codes = rng.integers(0, 2**bits, (5, 3, 64), dtype=np.uint8)
    packed = kn.pack_codes(codes, bits)
    assert packed.shape == (5, 3, 64 * bits // 8) and packed.dtype == np.uint8
    np.testing.assert_array_equal(kn.unpack_codes(packed, bits), codes)
    if bits == 2:
        assert kn.pack_codes(np.array([[1, 2, 3, 0]], np.uint8), 2)[0, 0] == 1 + (2 << 2) + (3 << 4)


@pytest.mark.parametrize("dtype, method, tokens, residual, group", [
    ("int2", "oscar", 300, 128, 32), ("int2", "plain", 300, 128, 32), ("int4", "plain", 97, 0, 16),
    ("int8", "oscar", 64, 10, 48), ("int2", "plain", 50, 128, 32), ("bf16", "plain", 40, 128, 32)])
def test_a_stored_cache_takes_exactly_the_bytes_the_format_counts(rng, dtype, method, tokens, residual, group):
    fmt = KVFormat(dtype, method, group, residual)
    qkv = kn.quantize_kv(rng.standard_normal((tokens, 2, 64)), rng.standard_normal((tokens, 2, 64)), fmt)
    assert qkv.storage_bytes == fmt.cache_bytes(tokens, 2, 64)
    assert qkv.quantized_tokens == fmt.quantized_tokens(tokens)
    assert qkv.k_residual.shape[0] == tokens - fmt.quantized_tokens(tokens)


def test_packed_bytes_count_codes_scales_zero_points_and_token_norms():
    # One layer, 2 KV heads of 128 channels, 1024 tokens, groups of 32.
    codes = 2 * 1024 * 2 * 128 * 2 // 8                        # INT2: 4 codes per byte
    groups = (1024 // 32) * 2 * 128 + 1024 * 2 * (128 // 32)   # key groups + value groups
    assert KVFormat("int2", "plain", 32, 0).packed_bytes(1024, 2, 128) == codes + 2 * 2 * groups
    assert KVFormat("int2", "oscar", 32, 0).packed_bytes(1024, 2, 128) == codes + 2 * 2 * groups + 2 * 1024 * 2
    assert KVFormat("int4", "plain", 32, 0).packed_bytes(1024, 2, 128) == 2 * codes + 2 * 2 * groups
    assert KVFormat("fp8").packed_bytes(1024, 2, 128) == 2 * 1024 * 2 * 128
    bf16 = 2 * 1024 * 2 * 128 * 2
    assert bf16 / KVFormat("int2", "oscar", 32, 0).packed_bytes(1024, 2, 128) == pytest.approx(5.22, abs=0.01)


def test_residual_window_keeps_the_newest_tokens_until_they_fill_a_key_group():
    fmt = KVFormat("int2", "plain", 32, 128)
    assert [fmt.quantized_tokens(n) for n in (0, 128, 159, 160, 191, 192)] == [0, 0, 0, 32, 32, 64]
    np.testing.assert_array_equal(fmt.quantized_tokens(np.array([159, 160])), [0, 32])
    assert KVFormat("fp8").quantized_tokens(100) == 100 and KVFormat("bf16").quantized_tokens(100) == 0


@pytest.mark.parametrize("fmt", [KVFormat("int2", "oscar", 32, 16), KVFormat("int4", "plain", 16, 0),
                                 KVFormat("int8", "oscar", 32, 0), KVFormat("bf16")],
                         ids=["int2_oscar_residual", "int4_plain", "int8_oscar", "bf16"])
@pytest.mark.parametrize("q_heads", [2, 8], ids=["mha", "gqa"])
def test_fused_attention_equals_the_twin(rng, fmt, q_heads):
    k, v = rng.standard_normal((130, 2, 32)), rng.standard_normal((130, 2, 32))
    q = rng.standard_normal((3, q_heads, 32))
    qkv = kn.quantize_kv(k, v, fmt)
    np.testing.assert_allclose(kb.attention_over_quantized(q, qkv), kn.attention_over_quantized(q, qkv),
                               atol=1e-12)


def test_bf16_cache_attention_is_plain_softmax_attention_on_rounded_kv(rng):
    k, v, q = rng.standard_normal((50, 1, 16)), rng.standard_normal((50, 1, 16)), rng.standard_normal((4, 1, 16))
    out = kb.attention_over_quantized(q, kn.quantize_kv(k, v, KVFormat("bf16")))
    kr, vr = kn.to_bf16(k).astype(float)[:, 0], kn.to_bf16(v).astype(float)[:, 0]
    logits = q[:, 0] @ kr.T / 4.0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out[:, 0], (p / p.sum(axis=1, keepdims=True)) @ vr, atol=1e-12)


def test_bf16_rounding_keeps_8_significant_bits_rounding_ties_to_even(rng):
    ties = np.array([1 + 2**-8, 1 + 3 * 2**-8, 1 + 3 * 2**-9, 3.0], np.float32)
    np.testing.assert_array_equal(kn.to_bf16(ties), [1.0, 1 + 2**-6, 1 + 2**-7, 3.0])
    x = (rng.standard_normal(10_000) * 10.0 ** rng.integers(-6, 6, 10_000)).astype(np.float32)
    r = kn.to_bf16(x)
    assert np.all(r.view(np.uint32) & 0xFFFF == 0)
    assert np.all(np.abs(r - x) <= np.abs(x) * 2.0**-8)


def test_fp8_has_no_kernel_model_and_says_so(rng):
    with pytest.raises(ValueError, match="not 'fp8'"):
        kn.quantize_kv(rng.standard_normal((4, 1, 8)), rng.standard_normal((4, 1, 8)), KVFormat("fp8"))


def test_mismatched_query_heads_fail_naming_the_shapes(rng):
    qkv = kn.quantize_kv(rng.standard_normal((40, 2, 16)), rng.standard_normal((40, 2, 16)), KVFormat("int4"))
    with pytest.raises(ValueError, match="3 heads of 16 do not fit a cache of 2 KV heads"):
        kb.attention_over_quantized(rng.standard_normal((1, 3, 16)), qkv)


def test_oscar_int2_beats_plain_per_channel_int2_by_the_margin_for_every_seed():
    ratios = {}
    for seed in range(48):
        errors = checks.attention_errors(np.random.default_rng(seed), bits=(2,))
        ratios[seed] = errors["oscar", 2] / errors["plain", 2]
    assert max(ratios.values()) < checks.OSCAR_MARGIN, ratios


def test_without_norm_imbalance_oscar_has_no_edge(rng):
    # The advantage comes from the imbalanced tokens: on i.i.d. Gaussian keys both methods
    # quantize alike (the check is not rigged by the quantizer alone).
    k, v = rng.standard_normal((512, 2, 64)), rng.standard_normal((512, 2, 64))
    q = 3 * k[rng.integers(0, 512, 16)].repeat(4, axis=1) / 8 + rng.standard_normal((16, 8, 64)) * 0.1
    ref = kb.attention_over_quantized(q, kn.quantize_kv(k, v, KVFormat("bf16")))
    err = {m: np.linalg.norm(kb.attention_over_quantized(q, kn.quantize_kv(k, v, KVFormat("int2", m, 32, 0))) - ref)
           for m in ("plain", "oscar")}
    assert 0.7 < err["oscar"] / err["plain"] < 1.3


def fwht_adds(d: int) -> int:
    """Adds and subtracts of a butterfly FWHT, counted by running one."""
    x, count, h = list(range(d)), 0, 1
    while h < d:
        for start in range(0, d, 2 * h):
            for i in range(start, start + h):
                x[i], x[i + h] = x[i] + x[i + h], x[i] - x[i + h]
                count += 2
        h *= 2
    return count


@pytest.mark.parametrize("d", [2, 16, 128])
def test_rotation_flops_are_the_butterflies_plus_the_normalisation(d):
    assert kf.rotate_flops(3, d) == 3 * (fwht_adds(d) + d)
    with pytest.raises(ValueError, match="power of two"):
        kf.rotate_flops(1, 12)


def counted_quantize(x: np.ndarray, group: int, axis: int) -> int:
    """FLOPs of min-max group quantization by the module's conventions, op by op."""
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    flops = 0
    for row in moved.reshape(-1, n):
        for g0 in range(0, n, group):
            values = row[g0:g0 + group]
            flops += 2 * values.size          # min and max: one compare per value each
            flops += 3                        # range, scale, 1/scale
            flops += 5 * values.size          # subtract, multiply, round, clip low, clip high
    return flops


@pytest.mark.parametrize("method", ["plain", "oscar"])
def test_quantize_and_dequantize_flops_equal_an_op_by_op_count(rng, method):
    tokens, heads, d, G = 64, 2, 16, 32
    fmt = KVFormat("int4", method, G, 0)
    k, v = rng.standard_normal((tokens, heads, d)), rng.standard_normal((tokens, heads, d))
    expected = counted_quantize(k, G, 0) + counted_quantize(v, G, 2)
    if method == "oscar":
        expected += tokens * heads * (2 * d + 1 + 1 + d)   # sum of squares, sqrt, 1/norm, scale
    assert kf.quantize_flops(fmt, tokens, heads, d) == expected
    elements = 2 * tokens * heads * d
    assert kf.dequantize_flops(fmt, tokens, heads, d) == 2 * elements + (elements // 2 if method == "oscar" else 0)
    assert kf.quantize_flops(KVFormat("bf16"), tokens, heads, d) == 0
