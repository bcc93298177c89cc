"""HRM-Text forward recurrence kernels and FLOP counts (WORKLOADS §3.2–3.4)."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.hrm import flops
from workloads.hrm import kernels as nb
from workloads.hrm import kernels_numpy as ref

D, HEADS, D_FF, LAYERS, VOCAB = 16, 2, 24, 2, 40


@pytest.fixture
def params():
    return nb.init_hrm_params(np.random.default_rng(2605), D, HEADS, D_FF, LAYERS, VOCAB)


@pytest.fixture
def tokens():
    return np.random.default_rng(20613).integers(0, VOCAB, size=10)


def test_same_seed_gives_same_params_and_forward(params, tokens):
    again = nb.init_hrm_params(np.random.default_rng(2605), D, HEADS, D_FF, LAYERS, VOCAB)
    assert params.keys() == again.keys()
    for name in params:
        np.testing.assert_array_equal(params[name], again[name])
    first, second = nb.hrm_forward(params, tokens, 2, 3), nb.hrm_forward(again, tokens, 2, 3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_params_have_documented_shapes_and_scales(params):
    assert params["embed"].shape == (VOCAB, D)
    assert params["L.w_gqkv"].shape == (LAYERS, D, 4 * D)
    assert params["H.w_down"].shape == (LAYERS, D_FF, D)
    assert np.abs(params["z_L0"]).max() <= 2.0                 # truncated at ±2σ
    assert np.abs(params["H.w_down"]).max() <= 2.0 * D_FF**-0.5


def test_forward_is_finite_and_normalised_for_4_h_cycles_of_8_l_steps(params, tokens):
    z_H, z_L = nb.hrm_forward(params, tokens, N=4, T=8)
    assert z_H.shape == z_L.shape == (len(tokens), D)
    assert np.isfinite(z_H).all() and np.isfinite(z_L).all()
    # Both states leave a module-final RMSNorm, so every row has unit RMS.
    np.testing.assert_allclose(np.sqrt((z_H**2).mean(axis=-1)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.sqrt((z_L**2).mean(axis=-1)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("prefix_len", [0, 4])
def test_numba_forward_matches_numpy_twin(params, tokens, prefix_len):
    got = nb.hrm_forward(params, tokens, 2, 3, prefix_len=prefix_len)
    want = ref.hrm_forward_numpy(params, tokens, 2, 3, prefix_len=prefix_len)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_numba_forward_matches_numpy_twin_in_float32_and_batches(tokens):
    p32 = nb.init_hrm_params(np.random.default_rng(1), D, HEADS, D_FF, LAYERS, VOCAB,
                             dtype=np.float32)
    batch = np.stack([tokens, tokens[::-1]])
    got = nb.hrm_forward(p32, batch, 2, 2)
    want = ref.hrm_forward_numpy(p32, batch, 2, 2)
    assert got[0].dtype == np.float32 and got[0].shape == (2, len(tokens), D)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_causal_mask_hides_later_tokens(params, tokens):
    changed = tokens.copy()
    changed[-3:] = (changed[-3:] + 1) % VOCAB
    base, other = nb.hrm_forward(params, tokens, 2, 2), nb.hrm_forward(params, changed, 2, 2)
    np.testing.assert_array_equal(base[0][:-3], other[0][:-3])
    assert not np.allclose(base[0][-3:], other[0][-3:])


def test_prefix_tokens_see_each_other(params, tokens):
    changed = tokens.copy()
    changed[3] = (changed[3] + 1) % VOCAB
    causal = [nb.hrm_forward(params, t, 1, 1)[0] for t in (tokens, changed)]
    prefix = [nb.hrm_forward(params, t, 1, 1, prefix_len=5)[0] for t in (tokens, changed)]
    np.testing.assert_array_equal(causal[0][0], causal[1][0])
    assert not np.allclose(prefix[0][0], prefix[1][0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"tokens": np.array([0, VOCAB])}, ValueError, r"tokens: ids must lie in \[0, 40\)"),
    ({"tokens": np.array([0.5, 1.0])}, TypeError, "tokens: dtype float64 not supported"),
    ({"N": 0}, ValueError, "N: must be >= 1"),
])
def test_bad_forward_arguments_raise(params, kwargs, error, message):
    args = {"tokens": np.array([1, 2, 3]), "N": 1, "T": 1} | kwargs
    with pytest.raises(error, match=message):
        nb.hrm_forward(params, **args)


def test_init_rejects_odd_head_dim():
    with pytest.raises(ValueError, match="even head dim"):
        nb.init_hrm_params(np.random.default_rng(0), 6, 2, 8, 1, 10)


class CountingWeight(np.ndarray):
    """Weight matrix that tallies 2·m·k·n FLOPs for every matrix product it takes part in."""

    flops = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) for x in inputs]
        if ufunc is np.matmul:
            a, b = plain
            CountingWeight.flops += 2 * a.size // a.shape[-1] * a.shape[-1] * b.shape[-1]
        return getattr(ufunc, method)(*plain, **kwargs)


def counting_attention(q, k, v, cos, sin, mask):
    """Masked attention one key at a time; counts 2 FLOPs per multiply-add of QKᵀ and PV."""
    q, k = ref.apply_rope(q, cos, sin), ref.apply_rope(k, cos, sin)
    B, n, H, dh = q.shape
    out = np.zeros_like(v)
    for b in range(B):
        for h in range(H):
            for i in range(n):
                keys = np.flatnonzero(mask[i])
                logits = np.array([q[b, i, h] @ k[b, j, h] for j in keys]) * dh**-0.5
                p = np.exp(logits - logits.max())
                out[b, i, h] = sum(pj * v[b, j, h] for pj, j in zip(p, keys, strict=True)) / p.sum()
                counting_attention.flops += 2 * 2 * dh * len(keys)
    return out


def test_forward_flops_equal_instrumented_count(params, tokens):
    N, T, n = 2, 2, len(tokens)
    counted = {name: (value.view(CountingWeight) if name.startswith(("L.", "H.")) else value)
               for name, value in params.items()}
    CountingWeight.flops = 0
    counting_attention.flops = 0
    cos, sin = ref.rope_tables(n, D // HEADS, np.float64)
    ctx = (cos, sin, ref.visible(n, 0), counting_attention, ref.rms_norm)
    z_H, _ = ref.recurrence(counted, tokens[None], N, T, ctx)
    np.testing.assert_allclose(np.asarray(z_H)[0], nb.hrm_forward(params, tokens, N, T)[0],
                               atol=1e-12)
    assert CountingWeight.flops == n * flops.forward_flops_per_token(D, D_FF, LAYERS, N, T)
    causal = sum(flops.attention_flops_per_token(D, i + 1, LAYERS, N, T) for i in range(n))
    assert counting_attention.flops == causal


def test_forward_flops_match_workloads_xl_figures():
    assert flops.block_params(1536, 4096) == 30_670_848                  # ≈ 30.67M
    blocks = flops.forward_flops_per_token(1536, 4096, 16, 2, 3)
    assert round(blocks / 1e9, 2) == 7.85
    head = flops.forward_flops_per_token(1536, 4096, 16, 2, 3, vocab=151_808) - blocks
    assert round(head / 1e9, 2) == 0.47
    assert flops.attention_flops_per_block(1536, 1024) == 6_291_456     # ≈ 6.3 MFLOP
