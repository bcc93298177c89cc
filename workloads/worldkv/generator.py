"""Trace generator for WorldKV rollouts of a chunked autoregressive video-diffusion model.

Per chunk j (c latent frames, N_q = c F_s query tokens) the trace holds, in order:

1. ``retrieve`` (worldkv policy, once candidates exist): pose scoring over the candidate
   chunks (``similarity``, then ``topk``) on the compute stream; then, on the ``copy``
   stream, one ``gather`` per layer of the selected chunks' K,V from ``kv_bank`` into
   ``kv_window`` (waiting for the scoring and for the bank stores it reads).
2. n_den ``denoise`` passes and one ``clean`` pass, each a full DiT forward. Per layer:
   ``q_proj``; ``kv_proj`` (writes the chunk's new K,V into ``kv_window``); ``self_attn``
   over the N_kv-token window (Q from ``act``, K,V from ``kv_window``; pass 0 waits for the
   layer's retrieval gather); ``o_proj``; ``cross_q``; ``cross_attn`` over the cached
   context K,V (``kv_cache``); ``cross_o``; ``ffn_up``; ``ffn_down``; and LingBot's
   ``cam_injector`` (``camera_injector_linears`` d x d linears). Weight GEMMs read
   ``weights`` (src) and ``act`` (src2). Norms, modulation, RoPE and GELU are not modelled
   (under 0.1% of the FLOPs).
3. ``compress`` (worldkv, keep_ratio < 1), per layer on the compute stream: anchor
   ``centroid`` (``vector``), key-key cosine ``similarity``, ``topk`` of the kept tokens.
4. ``store`` (worldkv), per layer on the ``copy`` stream: ``gather`` of the kept tokens
   (random access, after the layer's top-k) and the bank store (``transfer`` from
   ``kv_window`` to ``kv_bank``, after the clean pass wrote the layer's K,V).

With a quantized KV format (``kv_dtype``): after the clean pass each layer quantizes the
chunk's K,V in the window (``kv_window_quantize``, after a ``rotate`` under OScaR); the bank
stores the kept tokens quantized (``kv_bank_quantize`` after the compression gather, or the
window's packed chunk when compression is off) and the gathers move packed bytes. Every pass
then reads the window's stored part through a ``dequantize`` op and the attention reads only
the current chunk as bf16 (OScaR also rotates the queries and the attention output).

Memory bookkeeping: ``alloc`` of the weights and the context K,V at the start; the window
grows per chunk under ``full`` and is a fixed ring otherwise (N or W = s + r + m frames);
the bank grows by one stored chunk per chunk; the retrieved K,V buffer is allocated before
the gathers and freed after the clean pass. Everything is freed at the end.
"""

from __future__ import annotations

import numpy as np

from hwsim.trace import Trace
from workloads.common.layers import BF16, FP32, gemm
from workloads.common.lm import alloc, free
from workloads.common.ops import OpTable
from workloads.common.spec import trace_meta
from workloads.kvquant.ops import dequantize_op, quantize_ops, vector_rotation
from workloads.worldkv.flops import attention_flops, compression_flops, pose_scoring_flops
from workloads.worldkv.policies import RolloutPlan, plan_rollout
from workloads.worldkv.spec import FAMILY, WorldKVSpec

#: Floats describing one chunk for pose scoring: mean rotation (9) and mean translation (3).
POSE_WIDTH = 12


def generate(spec: WorldKVSpec, rng: np.random.Generator, *, seed: int | None = None,
             preset: str = "") -> Trace:
    """Operation trace of the rollout of ``spec``; the trajectory and keys are drawn from ``rng``."""
    plan = plan_rollout(spec, rng)
    table = build_ops(spec, plan)
    meta = trace_meta(FAMILY, spec, preset=preset, seed=seed, work_unit="frame",
                      work_units=spec.video_frames,
                      description=f"{spec.policy} rollout of {spec.num_chunks} chunks "
                                  f"({spec.video_frames} video frames)")
    return table.to_trace(meta, source=f"workloads.{FAMILY}")


def weight_bytes(spec: WorldKVSpec) -> int:
    """bf16 DiT weights: self and cross q,k,v,o, FFN and the camera injector, per layer."""
    d = spec.d_model
    per_layer = (8 + spec.camera_injector_linears) * d * d + 2 * d * spec.d_ff
    return spec.num_layers * per_layer * BF16


def build_ops(spec: WorldKVSpec, plan: RolloutPlan) -> OpTable:
    """All ops of the rollout (see the module docstring for their order and streams)."""
    table = OpTable()
    L, kv_token = spec.num_layers, spec.kv_bytes_per_token
    layers = np.arange(L)
    fs, c = spec.tokens_per_frame, spec.chunk_frames
    quantized = spec.kv_format.quantized
    setup = dict(phase="setup")
    table.one(**alloc("weights", weight_bytes(spec), "weights", **setup))
    context_bytes = L * spec.context_tokens * kv_token
    if spec.context_tokens:
        table.one(**alloc("kv_cache", context_bytes, "context_kv", **setup))
        table.grid((L,), [gemm("cross_kv_proj", spec.context_tokens, spec.d_model, 2 * spec.d_model,
                               dst="kv_cache", layer=layers, **setup)])
    ring = {"sliding": spec.sliding_window_frames, "worldkv": spec.window_frames}.get(spec.policy, 0)
    current = c * fs * L * kv_token          # the chunk being generated, bf16
    if quantized:   # stored frames packed, the current chunk bf16 (for full: a staging chunk)
        window_bytes = L * spec.frames_bytes(ring - c) + current if ring else current
        grow = L * spec.stored_bytes(c * fs)
    else:
        window_bytes, grow = ring * fs * L * kv_token, current
    if window_bytes:
        table.one(**alloc("kv_window", window_bytes, "kv_window", **setup))
    store_bytes = spec.stored_bytes(plan.store_tokens)
    store_ids = np.full((spec.num_chunks, L), -1, dtype=np.int64)
    passes = np.arange(spec.denoise_passes + 1)[:, None]
    phase = np.where(passes < spec.denoise_passes, "denoise", "clean").astype(object)
    first = (passes == 0) & (layers[None, :] == 0)
    last = (passes == spec.denoise_passes) & (layers[None, :] == L - 1)
    for j in range(spec.num_chunks):
        gathers = _retrieve(table, spec, plan, j, store_ids)
        templates = _pass_templates(spec, int(plan.window_tokens[j]), _stored_part(spec, plan, j),
                                    np.where(passes == 0, gathers[None, :], -1),
                                    layer=layers[None, :], step=j, phase=phase)
        if spec.policy == "full":
            templates.insert(0, alloc("kv_window", grow, "kv_window_grow", step=j,
                                      phase="denoise", mask=first))
        if len(plan.selected[j]):
            templates.append(free("kv_window", _retrieved_bytes(spec, plan, j), "retrieved_kv",
                                  step=j, phase="clean", mask=last))
        ids = table.grid((len(passes), L), templates)
        clean_kv = ids[-1, :, [t["tag"] for t in templates].index("kv_proj")]
        if quantized:
            clean_kv = table.grid((L,), quantize_ops(
                spec.kv_format, c * fs, spec.num_heads, spec.head_dim, src="kv_window", dst="kv_window",
                tag="kv_window", deps=clean_kv, layer=layers, step=j, phase="quantize"))[:, -1]
        if spec.banks:
            store_ids[j] = _store(table, spec, j, clean_kv, store_bytes)
    end = dict(phase="teardown")
    if spec.banks:
        table.one(**free("kv_bank", spec.num_chunks * L * store_bytes, "kv_bank", **end))
    grown = spec.num_chunks * grow + (current if quantized else 0) if spec.policy == "full" else window_bytes
    table.one(**free("kv_window", grown, "kv_window", **end))
    if spec.context_tokens:
        table.one(**free("kv_cache", context_bytes, "context_kv", **end))
    table.one(**free("weights", weight_bytes(spec), "weights", **end))
    return table


def _retrieved_bytes(spec: WorldKVSpec, plan: RolloutPlan, j: int) -> int:
    """K,V bytes of chunk j's retrieved chunks over all layers (as stored in the bank)."""
    return spec.num_layers * len(plan.selected[j]) * spec.stored_bytes(plan.store_tokens)


def _stored_part(spec: WorldKVSpec, plan: RolloutPlan, j: int) -> tuple[int, int]:
    """``(tokens, bytes per layer)`` of chunk j's window other than the chunk itself: sink and
    recent frames of the ring, and the retrieved chunks."""
    fs, c = spec.tokens_per_frame, spec.chunk_frames
    retrieved = len(plan.selected[j]) * plan.store_tokens
    ring_frames = (int(plan.window_tokens[j]) - retrieved) // fs - c
    return (ring_frames * fs + retrieved,
            spec.frames_bytes(ring_frames) + len(plan.selected[j]) * spec.stored_bytes(plan.store_tokens))


def _pass_templates(spec: WorldKVSpec, n_kv: int, stored: tuple[int, int], deps: np.ndarray,
                    **extra) -> list[dict]:
    """One layer of one DiT pass over the chunk's N_q tokens with an N_kv-token window.

    ``stored`` is the window's part other than the current chunk (tokens, bytes per layer):
    bf16 in the window, or read packed by a ``dequantize`` op under a quantized format.
    """
    nq, d, heads, hd = spec.query_tokens, spec.d_model, spec.num_heads, spec.head_dim
    kv_token = spec.kv_bytes_per_token
    q_bytes = nq * d * BF16
    fmt = spec.kv_format
    packed_tokens, packed_bytes = stored if fmt.quantized else (0, 0)
    bf16_keys = n_kv - packed_tokens
    ops = [gemm("q_proj", nq, d, d, **extra),
           dict(gemm("kv_proj", nq, d, 2 * d, dst="kv_window", **extra), _name="kv_proj")]
    if spec.concat_window:
        ops.append(dict(kind="transfer", tag="window_concat", src="kv_window", dst="kv_window",
                        bytes_read=packed_bytes + bf16_keys * kv_token, **extra))
    if packed_tokens:
        if fmt.rotated:
            ops.append(vector_rotation("q_rotate", nq * heads, hd, **extra))
        # Dequantized tiles stream into the attention kernel: the op runs beside it.
        ops.append(dequantize_op(fmt, packed_tokens, heads, hd, space="kv_window", nbytes=packed_bytes,
                                 deps=deps, stream="kv_dequant", after="kv_proj", _name="dequantize",
                                 **extra))
    ops += [
        dict(kind="attention", tag="self_attn", m=nq, n=n_kv, k=hd, batch=heads,
             flops=attention_flops(nq, n_kv, d), src="act", bytes_read=q_bytes,
             src2="kv_window", bytes_read2=bf16_keys * kv_token, dst="act", bytes_written=q_bytes,
             deps=deps, **extra)]
    if packed_tokens and fmt.rotated:
        ops.append(vector_rotation("o_rotate", nq * heads, hd, after="dequantize", **extra))
    ops += [
        dict(gemm("o_proj", nq, d, d, **extra), **({"after": "dequantize"} if packed_tokens else {})),
        gemm("cross_q", nq, d, d, **extra),
    ]
    if spec.context_tokens:
        ctx = spec.context_tokens
        ops.append(dict(kind="attention", tag="cross_attn", m=nq, n=ctx, k=hd, batch=heads,
                        flops=attention_flops(nq, ctx, d), src="act", bytes_read=q_bytes,
                        src2="kv_cache", bytes_read2=ctx * kv_token, dst="act",
                        bytes_written=q_bytes, **extra))
    ops += [gemm("cross_o", nq, d, d, **extra),
            gemm("ffn_up", nq, d, spec.d_ff, **extra),
            gemm("ffn_down", nq, spec.d_ff, d, **extra)]
    if spec.camera_injector_linears:
        ops.append(gemm("cam_injector", nq, d, d, batch=spec.camera_injector_linears, **extra))
    return ops


def _retrieve(table: OpTable, spec: WorldKVSpec, plan: RolloutPlan, j: int,
              store_ids: np.ndarray) -> np.ndarray:
    """Pose scoring and the per-layer gathers of chunk j; returns the gather op ids (-1 = none).

    Nothing is emitted before the first retrieval candidate exists (the early-chunk fallback
    to the plain ring window) or when the policy does not retrieve.
    """
    L = spec.num_layers
    selected = plan.selected[j]
    if not len(selected):
        return np.full(L, -1, dtype=np.int64)
    n_cand = int(plan.candidates[j])
    extra = dict(step=j, phase="retrieve")
    if spec.retrieval_search == "cam":
        # The same chunks are selected; the search runs as one CAM lookup of the current
        # chunk's quantised pose key over the banked chunks' keys.
        search = [dict(kind="cam_search", tag="pose_cam_search", elements=n_cand, k=spec.pose_key_bits,
                       flops=0, dst="act", bytes_written=len(selected) * 4, **extra)]
    else:
        search = [
            dict(kind="similarity", tag="pose_score", elements=n_cand, k=POSE_WIDTH,
                 flops=pose_scoring_flops(n_cand, spec.chunk_frames), src="act",
                 bytes_read=(n_cand + spec.chunk_frames) * POSE_WIDTH * FP32, dst="act",
                 bytes_written=n_cand * FP32, dtype="fp32", **extra),
            dict(kind="topk", tag="pose_topk", elements=n_cand, k=len(selected), flops=0, src="act",
                 bytes_read=n_cand * FP32, dst="act", bytes_written=len(selected) * 4, dtype="fp32",
                 **extra)]
    ids = table.grid((1,), [
        *search,
        alloc("kv_window", _retrieved_bytes(spec, plan, j), "retrieved_kv", stream="copy", **extra),
    ])
    tokens = len(selected) * plan.store_tokens
    newest = store_ids[int(selected.max())]
    gather = dict(kind="gather", tag="retrieve_gather", stream="copy", elements=tokens,
                  k=2 * spec.d_model, src="kv_bank",
                  bytes_read=len(selected) * spec.stored_bytes(plan.store_tokens),
                  dst="kv_window", access="strided", deps=(ids[0, len(search) - 1], newest),
                  layer=np.arange(L), **extra)
    return table.grid((L,), [gather])[:, 0]


def _store(table: OpTable, spec: WorldKVSpec, j: int, clean_kv: np.ndarray, store_bytes: int) -> np.ndarray:
    """World Compression (if on) and the bank store of chunk j; returns the store op ids per layer.

    Per layer: centroid, similarity and top-k on the compute stream, then on the copy stream
    the gather of the kept tokens (after the top-k), their quantization under a quantized
    format, and the bank store (after those, or after ``clean_kv`` — the clean pass's K,V
    write, or the window's quantized chunk — when compression is off).
    """
    L, d, c, fs = spec.num_layers, spec.d_model, spec.chunk_frames, spec.tokens_per_frame
    fmt = spec.kv_format
    table.one(**alloc("kv_bank", L * store_bytes, "kv_bank_grow", step=j, stream="copy", phase="store"))
    if spec.retrieval_search == "cam":
        table.one(kind="cam_write", tag="pose_key_write", elements=1, k=spec.pose_key_bits, step=j,
                  phase="store", stream="copy")
    store = dict(kind="transfer", tag="bank_store", stream="copy", src="kv_window", dst="kv_bank",
                 bytes_read=store_bytes, step=j, phase="store")
    if not spec.compressed:
        ids = table.grid((L,), [dict(store, deps=clean_kv, layer=np.arange(L))])
        return ids[:, 0]
    scores = (c - 1) * fs
    centroid_flops, sim_flops = fs * d, scores * (4 * d + 3)
    if centroid_flops + sim_flops != compression_flops(fs, c, d):
        raise ValueError("compression_flops disagrees with its centroid and similarity terms")
    n_store = spec.store_tokens
    keep = n_store - fs
    extra = dict(step=j, phase="compress", layer=np.arange(L))
    quantize = [] if not fmt.quantized else [dict(t, stream="copy", after=3 + i, phase="store")
                                              for i, t in enumerate(quantize_ops(
                                                  fmt, n_store, spec.num_heads, spec.head_dim,
                                                  src="kv_window", dst="kv_window", tag="kv_bank",
                                                  layer=extra["layer"], step=j))]
    ids = table.grid((L,), [
        dict(kind="vector", tag="anchor_centroid", elements=fs * d, flops=centroid_flops,
             src="kv_window", bytes_read=fs * d * BF16, dst="act", bytes_written=d * FP32,
             dtype="fp32", **extra),
        dict(kind="similarity", tag="key_similarity", elements=scores, k=d, flops=sim_flops,
             src="kv_window", bytes_read=scores * d * BF16, src2="act", bytes_read2=d * FP32,
             dst="act", bytes_written=scores * FP32, dtype="fp32", **extra),
        dict(kind="topk", tag="keep_topk", elements=scores, k=keep, flops=0, src="act",
             bytes_read=scores * FP32, dst="act", bytes_written=keep * 4, dtype="fp32", **extra),
        dict(kind="gather", tag="compress_gather", stream="copy", elements=n_store, k=2 * d,
             src="kv_window", bytes_read=n_store * spec.kv_bytes_per_token, dst="kv_window",
             access="random", after=2, **dict(extra, phase="store")),
        *quantize,
        dict(store, after=3 + len(quantize), layer=extra["layer"]),
    ])
    return ids[:, -1]
