"""Gated DeltaNet-2 / KDA / GDN reference kernels (WORKLOADS §2.2–2.4)."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.deltanet2 import flops
from workloads.deltanet2 import kernels as nb
from workloads.deltanet2 import kernels_numpy as ref


@pytest.fixture
def rng():
    return np.random.default_rng(20260521)


def make_inputs(rng, B=2, T=37, H=2, K=8, V=6, dtype=np.float64, decay=0.3):
    """Normalised q, k, random v, log decays in [-decay, 0], gates in [0, 1], a state."""
    q = rng.standard_normal((B, T, H, K))
    k = rng.standard_normal((B, T, H, K))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    x = {"q": q, "k": k, "v": rng.standard_normal((B, T, H, V)),
         "g": -decay * rng.random((B, T, H, K)), "b": rng.random((B, T, H, K)),
         "w": rng.random((B, T, H, V)), "beta": rng.random((B, T, H)),
         "g_head": -decay * rng.random((B, T, H)), "S0": rng.standard_normal((B, H, K, V))}
    return {name: a.astype(dtype) for name, a in x.items()}


def call(module, variant, mode, x, with_state=True, **kw):
    """Run ``{variant}_{mode}`` of ``module`` on the inputs dict ``x``."""
    fn = getattr(module, f"{variant}_{mode}")
    gates = {"gdn2": (x["g"], x["b"], x["w"]), "kda": (x["g"], x["beta"]),
             "gdn": (x["g_head"], x["beta"])}[variant]
    state = x["S0"] if with_state else None
    return fn(x["q"], x["k"], x["v"], *gates, initial_state=state, **kw)


def dense_gdn2(x, scale):
    """Eq 2.8–2.9 with explicit matrices: S_t = (I − k (b⊙k)ᵀ) D S + k (w⊙v)ᵀ, o = Sᵀ q·scale."""
    B, T, H, K = x["q"].shape
    o = np.zeros(x["v"].shape)
    S_out = np.zeros(x["S0"].shape)
    for bi in range(B):
        for h in range(H):
            S = x["S0"][bi, h].copy()
            for t in range(T):
                q, k, v = x["q"][bi, t, h], x["k"][bi, t, h], x["v"][bi, t, h]
                D = np.diag(np.exp(x["g"][bi, t, h]))
                erase = np.eye(K) - np.outer(k, x["b"][bi, t, h] * k)
                S = erase @ D @ S + np.outer(k, x["w"][bi, t, h] * v)
                o[bi, t, h] = S.T @ q * scale
            S_out[bi, h] = S
    return o, S_out


def test_recurrent_matches_dense_matrix_form_of_eq_2_8(rng):
    x = make_inputs(rng, T=23)
    o, S = nb.gdn2_recurrent(x["q"], x["k"], x["v"], x["g"], x["b"], x["w"], scale=0.7,
                             initial_state=x["S0"])
    o_dense, S_dense = dense_gdn2(x, 0.7)
    np.testing.assert_allclose(o, o_dense, atol=1e-12)
    np.testing.assert_allclose(S, S_dense, atol=1e-12)


@pytest.mark.parametrize("variant", ["gdn2", "kda", "gdn"])
def test_numba_recurrent_kernel_matches_numpy_twin(rng, variant):
    # (The chunked kernel is the NumPy form itself; it is checked against these below.)
    x = make_inputs(rng, T=45)
    o, S = call(nb, variant, "recurrent", x)
    o_ref, S_ref = call(ref, variant, "recurrent", x)
    np.testing.assert_allclose(o, o_ref, atol=1e-12)
    np.testing.assert_allclose(S, S_ref, atol=1e-12)


@pytest.mark.parametrize("variant", ["gdn2", "kda", "gdn"])
@pytest.mark.parametrize("T, chunk_size", [(64, 16), (53, 16), (5, 8), (20, 1)],
                         ids=["multiple", "partial_last_chunk", "shorter_than_chunk", "C1"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no_state"])
def test_chunked_equals_recurrent_float64(rng, variant, T, chunk_size, with_state):
    x = make_inputs(rng, T=T)
    o_c, S_c = call(nb, variant, "chunked", x, with_state, chunk_size=chunk_size)
    o_r, S_r = call(nb, variant, "recurrent", x, with_state)
    np.testing.assert_allclose(o_c, o_r, rtol=0, atol=1e-10)
    np.testing.assert_allclose(S_c, S_r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("variant", ["gdn2", "kda", "gdn"])
@pytest.mark.parametrize("T", [64, 50], ids=["multiple", "partial_last_chunk"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "no_state"])
def test_chunked_equals_recurrent_float32(rng, variant, T, with_state):
    x = make_inputs(rng, T=T, dtype=np.float32)
    o_c, S_c = call(nb, variant, "chunked", x, with_state, chunk_size=16)
    o_r, S_r = call(nb, variant, "recurrent", x, with_state)
    assert o_c.dtype == S_c.dtype == np.float32
    np.testing.assert_allclose(o_c, o_r, rtol=1e-4, atol=1e-4 * np.abs(o_r).max())
    np.testing.assert_allclose(S_c, S_r, rtol=1e-4, atol=1e-4 * np.abs(S_r).max())


def test_chunked_equals_recurrent_over_many_tiny_chunks(rng):
    # 131 chunks of 2 tokens, the last one partial (zero-padded).
    x = make_inputs(rng, B=1, T=261, H=1, K=4, V=3)
    o_c, S_c = call(nb, "gdn2", "chunked", x, chunk_size=2)
    o_r, S_r = call(nb, "gdn2", "recurrent", x)
    np.testing.assert_allclose(o_c, o_r, rtol=0, atol=1e-10)
    np.testing.assert_allclose(S_c, S_r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype, decay", [(np.float32, 8.0), (np.float32, 40.0),
                                          (np.float64, 60.0), (np.float64, 400.0)])
def test_chunked_stays_exact_under_strong_decay(rng, dtype, decay):
    # Decays this strong overflow a one-shot γ^{-1}; the block and pairwise paths take over.
    x = make_inputs(rng, T=70, dtype=dtype, decay=decay)
    o_c, S_c = call(nb, "gdn2", "chunked", x, chunk_size=32)
    o_r, S_r = call(nb, "gdn2", "recurrent", x)
    assert np.isfinite(o_c).all() and np.isfinite(S_c).all()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(o_c, o_r, rtol=0, atol=tol * max(1.0, np.abs(o_r).max()))
    np.testing.assert_allclose(S_c, S_r, rtol=0, atol=tol * max(1.0, np.abs(S_r).max()))


@pytest.mark.parametrize("dtype, decay", [(np.float64, 0.3), (np.float32, 0.3), (np.float32, 3.0)],
                         ids=["float64", "float32", "float32_strong_decay"])
def test_chunked_equals_recurrent_at_sizes_that_leave_partial_blocks(rng, dtype, decay):
    # C = 24 is not a whole number of 16-row blocks and the last chunk is partial. At decay
    # 3 most chunks take the strong-decay path.
    x = make_inputs(rng, B=1, T=75, H=2, K=21, V=37, dtype=dtype, decay=decay)
    o_c, S_c = call(nb, "gdn2", "chunked", x, chunk_size=24)
    o_r, S_r = call(nb, "gdn2", "recurrent", x)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(o_c, o_r, rtol=0, atol=tol * max(1.0, np.abs(o_r).max()))
    np.testing.assert_allclose(S_c, S_r, rtol=0, atol=tol * max(1.0, np.abs(S_r).max()))


@pytest.mark.parametrize("cores, B, H", [(2, 1, 3), (3, 2, 2)], ids=["three_heads", "four_sequences"])
def test_recurrent_result_does_not_depend_on_threads(rng, monkeypatch, cores, B, H):
    x = make_inputs(rng, B=B, T=50, H=H, K=12, V=20)
    monkeypatch.setattr(nb, "_MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(nb, "_n_cores", lambda: 1)
    o_1, S_1 = call(nb, "gdn2", "recurrent", x)
    monkeypatch.setattr(nb, "_n_cores", lambda: cores)
    assert nb._threads(B, H, 50, 12, 20) == min(cores, B * H) > 1
    o_n, S_n = call(nb, "gdn2", "recurrent", x)
    np.testing.assert_array_equal(o_n, o_1)
    np.testing.assert_array_equal(S_n, S_1)


def test_chunked_matches_dense_matrix_form_of_eq_2_8(rng):
    # The chunkwise form against the oracle that shares no code with either kernel.
    x = make_inputs(rng, T=29)
    o, S = nb.gdn2_chunked(x["q"], x["k"], x["v"], x["g"], x["b"], x["w"], scale=0.7,
                           initial_state=x["S0"], chunk_size=8)
    o_dense, S_dense = dense_gdn2(x, 0.7)
    np.testing.assert_allclose(o, o_dense, atol=1e-12)
    np.testing.assert_allclose(S, S_dense, atol=1e-12)


def test_chunked_accepts_read_only_inputs(rng):
    x = make_inputs(rng, T=40)
    o, S = call(nb, "gdn2", "chunked", x, chunk_size=16)
    for a in x.values():
        a.setflags(write=False)
    o_ro, S_ro = call(nb, "gdn2", "chunked", x, chunk_size=16)
    np.testing.assert_array_equal(o_ro, o)
    np.testing.assert_array_equal(S_ro, S)


@pytest.mark.parametrize("mode", ["recurrent", "chunked"])
def test_gdn2_with_tied_gates_equals_kda_exactly(rng, mode):
    x = make_inputs(rng, T=40)
    K, V = x["q"].shape[-1], x["v"].shape[-1]
    tied = dict(x, b=x["beta"][..., None] * np.ones(K), w=x["beta"][..., None] * np.ones(V))
    kw = {"chunk_size": 16} if mode == "chunked" else {}
    o_2, S_2 = call(nb, "gdn2", mode, tied, **kw)
    o_k, S_k = call(nb, "kda", mode, x, **kw)
    np.testing.assert_array_equal(o_2, o_k)
    np.testing.assert_array_equal(S_2, S_k)


@pytest.mark.parametrize("mode", ["recurrent", "chunked"])
def test_kda_with_per_head_decay_equals_gdn_exactly(rng, mode):
    x = make_inputs(rng, T=40)
    K = x["q"].shape[-1]
    shared = dict(x, g=x["g_head"][..., None] * np.ones(K))
    kw = {"chunk_size": 16} if mode == "chunked" else {}
    o_k, S_k = call(nb, "kda", mode, shared, **kw)
    o_g, S_g = call(nb, "gdn", mode, x, **kw)
    np.testing.assert_array_equal(o_k, o_g)
    np.testing.assert_array_equal(S_k, S_g)


def test_default_scale_is_inverse_sqrt_of_key_dim(rng):
    x = make_inputs(rng, T=9)
    o_default, _ = call(nb, "gdn2", "recurrent", x)
    o_explicit, _ = call(nb, "gdn2", "recurrent", x, scale=x["q"].shape[-1] ** -0.5)
    np.testing.assert_array_equal(o_default, o_explicit)


def bad_call(**changes):
    x = make_inputs(np.random.default_rng(0), B=1, T=128, H=4, K=4, V=3)
    x.update(changes)
    return nb.gdn2_chunked(x["q"], x["k"], x["v"], x["g"], x["b"], x["w"],
                           initial_state=x.get("S0"), chunk_size=x.get("chunk_size", 16))


@pytest.mark.parametrize("changes, error, message", [
    ({"v": np.zeros((1, 64, 4, 3))}, ValueError,
     r"v: expected shape \[B,T,H,V\] with B,T,H = 1,128,4 from q, got \(1, 64, 4, 3\)"),
    ({"k": np.zeros((1, 128, 4, 5))}, ValueError, r"k: expected shape \[B,T,H,K\]"),
    ({"w": np.zeros((1, 128, 4, 4))}, ValueError, r"w: expected shape \[B,T,H,V\]"),
    ({"S0": np.zeros((1, 4, 3, 3))}, ValueError, r"initial_state: expected shape \[B,H,K,V\]"),
    ({"k": np.zeros((1, 128, 4, 4), np.float32)}, TypeError, r"k: dtype float32 does not match"),
    ({"q": np.zeros((1, 128, 4, 4), np.int64)}, TypeError, r"q: dtype int64 not supported"),
    ({"g": np.full((1, 128, 4, 4), np.nan)}, ValueError, r"g contains NaN"),
    ({"b": np.full((1, 128, 4, 4), np.inf)}, ValueError, r"b contains inf"),
    ({"chunk_size": 0}, ValueError, r"chunk_size: must be >= 1, got 0"),
    ({"chunk_size": 2.5}, TypeError, r"chunk_size: expected an int"),
])
def test_bad_inputs_raise_errors_naming_the_argument(changes, error, message):
    with pytest.raises(error, match=message):
        bad_call(**changes)


def test_gdn_rejects_nan_in_beta_by_name(rng):
    x = make_inputs(rng, T=8)
    x["beta"][0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="beta contains NaN"):
        call(nb, "gdn", "recurrent", x)


class Count:
    """FLOP tally: a multiply-add is 2, any other element-wise op is 1 (WORKLOADS §0)."""

    def __init__(self):
        self.flops = 0

    def mm(self, a, b):
        self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        return a @ b

    def ew(self, result):
        self.flops += np.size(result)
        return result


def counted_recurrent(x, scale, n):
    """The 4-step token-serial kernel for one head, op by op."""
    S = x["S0"][0, 0].copy()
    o = []
    for t in range(x["q"].shape[1]):
        q, k, v, g, b, w = (x[name][0, t, 0] for name in ("q", "k", "v", "g", "b", "w"))
        alpha = n.ew(np.exp(g))
        S = n.ew(alpha[:, None] * S)                                  # 1
        r = n.mm(S.T, n.ew(b * k)[:, None])[:, 0]
        u = n.ew(n.ew(w * v) - r)                                     # 2
        n.flops += 2 * S.size
        S = S + np.outer(k, u)                                        # 3
        o.append(n.mm(S.T, n.ew(q * scale)[:, None])[:, 0])           # 4
    return np.array(o), S


def counted_chunk(x, scale, t0, C, S, n):
    """Eq 2.10–2.18 for one chunk of one head, op by op, with explicit γ^{-1}."""
    q, k, v, g, b, w = (x[name][0, t0:t0 + C, 0] for name in ("q", "k", "v", "g", "b", "w"))
    C = q.shape[0]
    G = np.zeros_like(g)
    for r in range(C):
        G[r] = n.ew((G[r - 1] if r else 0.0) + g[r])                  # cumsum
    gam, ginv = n.ew(np.exp(G)), n.ew(np.exp(-G))
    Qg, E = n.ew(gam * n.ew(q * scale)), n.ew(gam * n.ew(b * k))
    Kbar = n.ew(ginv * k)
    K_tail = n.ew(n.ew(gam[-1] * ginv) * k)
    Z = n.ew(w * v)
    Tm = np.tril(n.mm(E, Kbar.T), -1)
    A = np.eye(C)
    for r in range(C):
        for s in range(r):
            n.flops += 2 * (s + 1)
            A[r, :s + 1] -= Tm[r, s] * A[s, :s + 1]
    Y, U = n.mm(A, E), n.mm(A, Z)
    R = n.ew(U - n.mm(Y, S))
    Aqk = np.tril(n.mm(Qg, Kbar.T))
    out = n.ew(n.mm(Qg, S) + n.mm(Aqk, R))
    S = n.ew(n.ew(gam[-1][:, None] * S) + n.mm(K_tail.T, R))
    return out, S


@pytest.mark.parametrize("K, V", [(3, 2), (5, 4)])
def test_recurrent_flops_equal_instrumented_count(rng, K, V):
    x = make_inputs(rng, B=1, T=6, H=1, K=K, V=V)
    n = Count()
    o, S = counted_recurrent(x, 0.5, n)
    o_ref, S_ref = call(nb, "gdn2", "recurrent", x, scale=0.5)
    np.testing.assert_allclose(o, o_ref[0, :, 0], atol=1e-12)
    np.testing.assert_allclose(S, S_ref[0, 0], atol=1e-12)
    assert n.flops == flops.gdn2_recurrent_flops(6, 1, K, V)


@pytest.mark.parametrize("T, C", [(12, 4), (10, 4), (3, 8)])
def test_chunked_flops_equal_instrumented_count_with_partial_chunk(rng, T, C):
    x = make_inputs(rng, B=1, T=T, H=1, K=3, V=2)
    n = Count()
    S, outs = x["S0"][0, 0], []
    for t0 in range(0, T, C):
        out, S = counted_chunk(x, 0.5, t0, C, S, n)
        outs.append(out)
    o_ref, S_ref = call(nb, "gdn2", "recurrent", x, scale=0.5)
    np.testing.assert_allclose(np.concatenate(outs), o_ref[0, :, 0], atol=1e-12)
    np.testing.assert_allclose(S, S_ref[0, 0], atol=1e-12)
    assert n.flops == flops.gdn2_chunked_flops(T, 1, 3, 2, C)


def test_flop_counts_match_workloads_figures():
    assert flops.gdn2_chunk_flops(64, 128, 128) == 11_760_960          # ≈ 11.76 MFLOP
    assert flops.gdn2_recurrent_token_flops(128, 128) == 115_328      # ≈ 7·d_k·d_v
    assert flops.gdn2_chunked_flops(130, 2, 8, 8, 64) == 2 * (
        2 * flops.gdn2_chunk_flops(64, 8, 8) + flops.gdn2_chunk_flops(2, 8, 8))
    with pytest.raises(ValueError, match="chunk_size"):
        flops.gdn2_chunked_flops(10, 1, 8, 8, 0)
