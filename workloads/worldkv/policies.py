"""Per-chunk decisions of a WorldKV rollout: attention-window size, retrieved chunks, kept tokens.

The decisions come from running the reference kernels, not from constants:

* which chunks are retrieved: :func:`kernels_numpy.select_chunks` scores the chunk-mean
  camera poses of the trajectory (Eqs. 1.7–1.12) once per chunk;
* how many tokens a banked chunk keeps: :func:`kernels_numpy.compress_chunk_keys` runs
  World Compression (Eqs. 1.13–1.16) once per chunk on synthetic keys drawn from the rng.
  The keys have the chunk's real token count (c x F_s) but a small width
  (``compress_proxy_dim``): the kept count does not depend on the width, and the real keys
  are hundreds of MB per chunk. Above ``KERNEL_MAX_TOKENS_PER_FRAME`` tokens per frame the
  kernel runs on that many tokens per frame and the count for the real F_s follows Eq. 1.16,
  after checking the kernel kept exactly that formula's count at the proxy size. The same
  count is used for every layer (keys differ by layer, the budget does not).

Window size per chunk j (Eq. 1.6, in tokens):

* ``full``: (j + 1) c F_s;
* ``sliding``: min((j + 1) c, N) F_s;
* ``worldkv``: s F_s + (selected chunks) x n_store + m F_s once retrieval candidates exist;
  before that the plain ring of up to W = s + r + m frames, min((j + 1) c, W) F_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.worldkv.kernels_numpy import compress_chunk_keys, select_chunks
from workloads.worldkv.spec import WorldKVSpec, store_tokens
from workloads.worldkv.trajectory import trajectory_poses

KERNEL_MAX_TOKENS_PER_FRAME = 4096


@dataclass(frozen=True)
class RolloutPlan:
    """What each chunk of the rollout attends to and banks."""

    poses: np.ndarray                  #: camera-to-world pose per latent frame [n, 4, 4]
    window_tokens: np.ndarray          #: N_kv of every chunk's self-attention
    candidates: np.ndarray             #: chunks scored for retrieval per chunk (0 = no scoring)
    selected: tuple[np.ndarray, ...]   #: retrieved chunk indices per chunk, best first
    store_tokens: int                  #: tokens per banked chunk (0 when nothing is banked)
    kept_tokens: np.ndarray            #: tokens the compression kernel kept per chunk


def plan_rollout(spec: WorldKVSpec, rng: np.random.Generator) -> RolloutPlan:
    """Run the trajectory, retrieval scoring and compression for every chunk of ``spec``."""
    poses = trajectory_poses(spec, rng)
    n_chunks, c, fs = spec.num_chunks, spec.chunk_frames, spec.tokens_per_frame
    frames_so_far = (np.arange(n_chunks) + 1) * c
    candidates = np.zeros(n_chunks, dtype=np.int64)
    selected: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_chunks
    kept = np.zeros(n_chunks, dtype=np.int64)
    n_store = 0
    if spec.policy == "full":
        window = frames_so_far * fs
    elif spec.policy == "sliding":
        window = np.minimum(frames_so_far, spec.sliding_window_frames) * fs
    else:
        window = np.minimum(frames_so_far, spec.window_frames) * fs
    if spec.banks:
        kept = _kept_counts(spec, rng)
        n_store = int(kept[0])
        for j in range(n_chunks):
            candidates[j] = spec.candidates(j)
            if candidates[j] == 0:
                continue
            chosen = np.asarray(select_chunks(poses[: (j + 1) * c], j, c, spec.sink_frames,
                                              spec.retrieved_chunks * c, spec.recent_frames,
                                              spec.retrieved_chunks), dtype=np.int64)
            selected[j] = chosen
            window[j] = (spec.sink_frames + spec.recent_frames) * fs + len(chosen) * n_store
    return RolloutPlan(poses, window.astype(np.int64), candidates, tuple(selected), n_store, kept)


def _kept_counts(spec: WorldKVSpec, rng: np.random.Generator) -> np.ndarray:
    """Tokens kept per chunk: the compression kernel on synthetic keys (c F_s each when it is off)."""
    n_chunks, c, fs = spec.num_chunks, spec.chunk_frames, spec.tokens_per_frame
    if not spec.compressed:
        return np.full(n_chunks, c * fs, dtype=np.int64)
    proxy = min(fs, KERNEL_MAX_TOKENS_PER_FRAME)
    expected = store_tokens(proxy, c, spec.keep_ratio)
    counts = np.empty(n_chunks, dtype=np.int64)
    for j in range(n_chunks):
        keys = synthetic_keys(rng, c, proxy, spec.compress_proxy_dim)
        kept = compress_chunk_keys(keys, proxy, c, spec.keep_ratio, pooled=spec.compression_pooled)
        if len(kept) != expected:
            raise RuntimeError(f"compression kernel kept {len(kept)} tokens of chunk {j}, "
                               f"Eq. 1.16 says {expected}")
        counts[j] = len(kept) if proxy == fs else spec.store_tokens
    return counts


def synthetic_keys(rng: np.random.Generator, chunk_frames: int, tokens_per_frame: int,
                   width: int) -> np.ndarray:
    """Keys [c x F_s, width] (float32) with a drawn similarity structure.

    Every token is a mix of a shared scene direction and its own novelty; how much novelty a
    token carries is drawn per frame and per token, so similarities to the anchor centroid
    spread the way a moving camera's do (some content persists, some is new).
    """
    scene = rng.standard_normal(width, dtype=np.float32)
    n = chunk_frames * tokens_per_frame
    frame_drift = np.repeat(rng.uniform(0.0, 1.0, size=chunk_frames), tokens_per_frame)
    novelty = (frame_drift * rng.gamma(2.0, 0.5, size=n)).astype(np.float32)
    noise = rng.standard_normal((n, width), dtype=np.float32)
    noise *= novelty[:, None]
    noise += scene
    return noise
