"""Numeric validation of every workload family's reference kernels (``hwsim validate``).

Each check compares two independent computations and reports the largest absolute error
(or, where stated, a relative one) against a tolerance:

* delta rules: the chunkwise WY kernels equal the token-serial recurrences (GDN-2, KDA,
  GDN; float64 and float32; lengths that are and are not multiples of the chunk; with and
  without an initial state), and the tied-gate reductions GDN-2 → KDA → GDN are exact;
* WorldKV: attention over the compressed, retrieved window against full-KV attention on a
  synthetic world whose revisited views produce similar keys — the project's stand-in for
  the paper's memory-fidelity claim (retrieval must beat the window without it, for every
  seed: the world is built so that a retrievable revisit always exists);
* HRM-Text: the recurrence is deterministic and finite for long N x T and matches its
  NumPy twin;
* KV-cache quantization (:mod:`workloads.kvquant.checks`): the kernels equal their twins
  and store the bytes the traces count; the attention error against bf16 of every bit
  width, plain and OScaR-style, on a cache with norm-imbalanced tokens, where OScaR-style
  INT2 must clearly beat plain per-channel INT2;
* FLOP counts: what the trace generators emit equals the kernels' closed-form counts.
"""

from __future__ import annotations

import numpy as np

from workloads.common.checks import Check
from workloads.deltanet2 import kernels as dn
from workloads.deltanet2.flops import gdn2_chunked_flops, gdn2_recurrent_flops
from workloads.hrm import kernels as hrm
from workloads.hrm.kernels_numpy import hrm_forward_numpy, init_hrm_params
from workloads.kvquant.checks import kv_quant_checks
from workloads.worldkv import kernels as wk
from workloads.worldkv.flops import compression_flops

F64_ATOL = 1e-10
F32_RTOL = 1e-4


def run_checks(seed: int = 0) -> list[Check]:
    """Run every check with inputs drawn from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [*delta_rule_checks(rng), *reduction_checks(rng), *worldkv_fidelity_checks(rng),
            *hrm_checks(rng), *kv_quant_checks(rng), *flop_checks()]


# -- delta rules ----------------------------------------------------------------------------
def _delta_inputs(rng, T: int, dtype, B: int = 1, H: int = 2, K: int = 16, V: int = 8):
    def unit(shape):
        x = rng.standard_normal(shape)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    q, k = unit((B, T, H, K)), unit((B, T, H, K))
    v = rng.standard_normal((B, T, H, V))
    g = -np.log1p(np.exp(rng.standard_normal((B, T, H, K)))) * 0.1  # log decay <= 0
    b = 1 / (1 + np.exp(-rng.standard_normal((B, T, H, K))))
    w = 1 / (1 + np.exp(-rng.standard_normal((B, T, H, V))))
    beta = 1 / (1 + np.exp(-rng.standard_normal((B, T, H))))
    g_head = g[..., 0]
    s0 = rng.standard_normal((B, H, K, V)) * 0.1
    cast = {name: a.astype(dtype) for name, a in dict(q=q, k=k, v=v, g=g, b=b, w=w, beta=beta,
                                                       g_head=g_head, s0=s0).items()}
    return cast


def _error(a: np.ndarray, b: np.ndarray, relative: bool) -> float:
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    if relative:
        return diff / max(float(np.max(np.abs(b.astype(np.float64)))), 1e-30)
    return diff


def delta_rule_checks(rng) -> list[Check]:
    checks = []
    chunk = 32
    for dtype, tol, relative in ((np.float64, F64_ATOL, False), (np.float32, F32_RTOL, True)):
        for T in (4 * chunk, 3 * chunk + 7):
            for with_state in (False, True):
                x = _delta_inputs(rng, T, dtype)
                s0 = x["s0"] if with_state else None
                runs = {
                    "gdn2": ((x["q"], x["k"], x["v"], x["g"], x["b"], x["w"]), dn.gdn2_recurrent, dn.gdn2_chunked),
                    "kda": ((x["q"], x["k"], x["v"], x["g"], x["beta"]), dn.kda_recurrent, dn.kda_chunked),
                    "gdn": ((x["q"], x["k"], x["v"], x["g_head"], x["beta"]), dn.gdn_recurrent, dn.gdn_chunked),
                }
                for variant, (args, recurrent, chunked) in runs.items():
                    o_r, s_r = recurrent(*args, initial_state=s0)
                    o_c, s_c = chunked(*args, initial_state=s0, chunk_size=chunk)
                    error = max(_error(o_c, o_r, relative), _error(s_c, s_r, relative))
                    label = (f"{variant} chunked == recurrent ({np.dtype(dtype).name}, T={T}"
                             f"{' = 4C' if T % chunk == 0 else ', partial chunk'}, "
                             f"{'with' if with_state else 'no'} initial state)")
                    checks.append(Check(label, error, tol, "relative" if relative else "absolute"))
    return checks


def reduction_checks(rng) -> list[Check]:
    x = _delta_inputs(rng, 77, np.float64)
    K, V = x["k"].shape[-1], x["v"].shape[-1]
    tied_b = np.repeat(x["beta"][..., None], K, axis=-1)
    tied_w = np.repeat(x["beta"][..., None], V, axis=-1)
    checks = []
    for form, gdn2_fn, kda_fn, gdn_fn, extra in (
            ("recurrent", dn.gdn2_recurrent, dn.kda_recurrent, dn.gdn_recurrent, {}),
            ("chunked", dn.gdn2_chunked, dn.kda_chunked, dn.gdn_chunked, {"chunk_size": 32})):
        o2, s2 = gdn2_fn(x["q"], x["k"], x["v"], x["g"], tied_b, tied_w, initial_state=x["s0"], **extra)
        ok, sk = kda_fn(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=x["s0"], **extra)
        checks.append(Check(f"gdn2 with b = w = beta*1 equals kda ({form}, float64)",
                            max(_error(o2, ok, False), _error(s2, sk, False)), 0.0, "exact"))
        scalar_g = np.repeat(x["g_head"][..., None], K, axis=-1)
        ok2, sk2 = kda_fn(x["q"], x["k"], x["v"], scalar_g, x["beta"], initial_state=x["s0"], **extra)
        og, sg = gdn_fn(x["q"], x["k"], x["v"], x["g_head"], x["beta"], initial_state=x["s0"], **extra)
        checks.append(Check(f"kda with a scalar decay equals gdn ({form}, float64)",
                            max(_error(ok2, og, False), _error(sk2, sg, False)), 0.0, "exact"))
    return checks


# -- WorldKV memory fidelity ------------------------------------------------------------------
def _synthetic_world(rng, frames: int, F_s: int, H: int, dh: int, period: int):
    """A camera circling a world of ``period`` places, one place in view per latent frame.

    Each place has its own landmark keys and values; every visit sees them again with fresh
    noise, so a revisit produces keys similar to the first visit's while the recent frames
    (other places) do not. Queries of the current chunk look for the landmarks in view.
    The poses do not depend on ``rng``: which chunks are revisits is fixed by ``period``.
    """
    theta = 2 * np.pi * np.arange(frames) / period
    poses = np.repeat(np.eye(4)[None], frames, axis=0)
    poses[:, 0, 0], poses[:, 0, 2] = np.cos(theta), np.sin(theta)
    poses[:, 2, 0], poses[:, 2, 2] = -np.sin(theta), np.cos(theta)
    poses[:, :3, 3] = np.stack([np.cos(theta), np.zeros(frames), np.sin(theta)], axis=1) * 5
    place = np.arange(frames) % period
    landmark_keys = rng.standard_normal((period, F_s, H, dh))
    landmark_values = rng.standard_normal((period, F_s, H, dh))
    keys = landmark_keys[place] + 0.3 * rng.standard_normal((frames, F_s, H, dh))
    values = landmark_values[place] + 0.3 * rng.standard_normal((frames, F_s, H, dh))
    queries = 3.0 * landmark_keys[place]  # logit 3*sqrt(dh) for a landmark vs N(0, 3) background
    return poses, keys, values, queries


def _relative_rms(approx: np.ndarray, exact: np.ndarray) -> float:
    """||approx - exact||_F / ||exact||_F."""
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def worldkv_fidelity_checks(rng, c: int = 3, F_s: int = 24, H: int = 2, dh: int = 64) -> list[Check]:
    """Compressed-window attention vs full KV for rho in {0.25, 0.5, 1.0}, retrieval on/off.

    The error is the relative RMS error of the attention output over all queries of the
    chunk. Its worst single query is no measure of retrieval: compression keeps only some
    of a revisit's non-anchor tokens, and a query whose landmark was dropped from every
    retrieved copy has exactly the retrieval-off error whatever the seed. What does hold
    for every seed: the world period is a whole number of chunks, so the chunk being
    generated shows the places of chunks j - 8 and j - 16; pose retrieval selects them
    (the poses are fixed), and compression keeps their anchor frames whole for any rho, so
    the queries of the current anchor frame find their landmarks again.
    """
    chunks, period, s, m, k = 20, 8 * c, 3, 6, 3
    frames = chunks * c
    poses, keys, values, queries = _synthetic_world(rng, frames, F_s, H, dh, period)
    j = chunks - 1  # generate the last chunk: its view was seen 8 chunks ago
    current = slice(j * c, (j + 1) * c)
    q = queries[current].reshape(-1, H, dh)

    def tokens(frame_range):
        return keys[frame_range].reshape(-1, H, dh), values[frame_range].reshape(-1, H, dh)

    full = wk.window_attention(q, *tokens(slice(0, (j + 1) * c)))
    sink, recent = tokens(slice(0, s)), tokens(slice((j + 1) * c - m, (j + 1) * c))

    def error_of(retrieved):
        k_w, v_w = wk.assemble_window(sink, retrieved, recent)
        return _relative_rms(wk.window_attention(q, k_w, v_w), full)

    without = error_of([])
    checks = [Check("worldkv window error vs full KV, retrieval off (sink + recent)", without, 1.0,
                    "relative RMS; baseline")]
    selected = wk.select_chunks(poses, j, c, s, k * c, m, k)
    revisits = [chunk for chunk in selected.tolist() if (j - chunk) * c % period == 0]
    if not revisits:
        raise RuntimeError(f"pose retrieval selected no revisit of chunk {j}: {selected.tolist()}")
    for rho in (0.25, 0.5, 1.0):
        retrieved = []
        for chunk in selected.tolist():
            ck, cv = tokens(slice(chunk * c, (chunk + 1) * c))
            kept = wk.compress_chunk_keys(ck.reshape(c * F_s, H * dh), F_s, c, rho)
            retrieved.append((ck[kept], cv[kept]))
        checks.append(Check(f"worldkv window error vs full KV, retrieval on, rho={rho}", error_of(retrieved),
                            without, f"relative RMS; must beat retrieval off; chunks {selected.tolist()}"))
    return checks


# -- HRM-Text ---------------------------------------------------------------------------------
def hrm_checks(rng) -> list[Check]:
    params = init_hrm_params(rng, d=32, n_heads=2, d_ff=64, layers_per_module=2, vocab=50)
    tokens = rng.integers(0, 50, size=12)
    N, T = 4, 8
    a_h, a_l = hrm.hrm_forward(params, tokens, N, T)
    b_h, b_l = hrm.hrm_forward(params, tokens, N, T)
    n_h, n_l = hrm_forward_numpy(params, tokens, N, T)
    finite = np.isfinite(a_h).all() and np.isfinite(a_l).all()
    return [
        Check(f"hrm recurrence deterministic (N={N}, T={T})",
              max(_error(a_h, b_h, False), _error(a_l, b_l, False)), 0.0, "exact"),
        Check(f"hrm recurrence finite (N={N}, T={T}, {N * (T + 1)} module passes)",
              0.0 if finite else float("inf"), 0.0),
        Check("hrm numba kernel equals its numpy twin (float64)",
              max(_error(a_h, n_h, False), _error(a_l, n_l, False)), F64_ATOL, "absolute"),
    ]


# -- FLOP counts: traces against kernels -------------------------------------------------------
def flop_checks() -> list[Check]:
    from workloads.registry import generate_trace  # trace generation only when checking counts

    dims = {"d_model": "64", "num_heads": "2", "head_k_dim": "16", "head_v_dim": "16", "num_blocks": "2",
            "d_ff": "128", "vocab_size": "100", "swa_heads": "2", "swa_head_dim": "32"}
    H, K, V, blocks = 2, 16, 16, 2
    decode = generate_trace("deltanet2", "gdn2-1.3b", {**dims, "mode": "decode", "context_tokens": "8",
                                                       "decode_tokens": "5", "decode_batch": "3"}, seed=0).to_frame()
    emitted = int(decode.loc[decode["tag"] == "state_update", "flops"].sum())
    expected = blocks * 3 * gdn2_recurrent_flops(5, H, K, V)
    checks = [Check("gdn2 decode: trace state-update FLOPs == recurrent kernel count",
                    abs(emitted - expected), 0, f"{emitted} vs {expected}")]
    for T in (96, 100):   # whole chunks, and a partial last chunk of 4 tokens
        prefill = generate_trace("deltanet2", "gdn2-1.3b", {**dims, "mode": "prefill", "seq_len": str(T),
                                                            "tokens_per_step": str(2 * T), "chunk_size": "32"},
                                 seed=0).to_frame()
        emitted = int(prefill.loc[prefill["tag"].str.startswith("chunk_"), "flops"].sum())
        expected = blocks * 2 * gdn2_chunked_flops(T, H, K, V, 32)
        checks.append(Check(f"gdn2 prefill: trace chunkwise FLOPs == chunked kernel count (T={T}, C=32)",
                            abs(emitted - expected), 0, f"{emitted} vs {expected}"))
    wkv = {"num_layers": "2", "d_model": "256", "num_heads": "2", "head_dim": "128", "d_ff": "512",
           "tokens_per_frame": "64", "rollout_frames": "144"}
    frame = generate_trace("worldkv", "lingbot-world-fast", wkv, seed=0).to_frame()
    per_store = frame[frame["tag"].isin(["anchor_centroid", "key_similarity"])].groupby(["step", "layer"])["flops"].sum()
    expected = compression_flops(64, 3, 256)
    checks.append(Check("worldkv compression: trace FLOPs per chunk and layer == kernel count",
                        float(np.max(np.abs(per_store.to_numpy() - expected))), 0, f"{len(per_store)} stores"))
    return checks


def format_table(checks: list[Check]) -> str:
    """The validation table as fixed-width text."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  {'max error':>11}  {'tolerance':>11}  result", "-" * (width + 37)]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {c.error:>11.3e}  {c.tolerance:>11.3e}  "
                     f"{'pass' if c.passed else 'FAIL'}" + (f"  ({c.note})" if c.note else ""))
    failed = sum(not c.passed for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines)
