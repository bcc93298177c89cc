"""WorldKV retrieval, compression and window attention kernels (WORKLOADS §1.2–1.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workloads.worldkv import flops
from workloads.worldkv import kernels as nb
from workloads.worldkv import kernels_numpy as ref


@pytest.fixture
def rng():
    return np.random.default_rng(22718)


def yaw_pose(angle: float, position) -> np.ndarray:
    """Camera-to-world pose turned by ``angle`` about +y, at ``position``."""
    c, s = math.cos(angle), math.sin(angle)
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    pose[:3, 3] = position
    return pose


def loop_poses(n_frames: int, period: int, radius: float = 5.0) -> np.ndarray:
    """A circle walked once every ``period`` latent frames, heading along the tangent."""
    angles = 2 * np.pi * np.arange(n_frames) / period
    return np.stack([yaw_pose(a, [radius * math.cos(a), 0.0, radius * math.sin(a)])
                     for a in angles])


def random_poses(rng, n: int) -> np.ndarray:
    return np.stack([yaw_pose(rng.uniform(-np.pi, np.pi), rng.normal(size=3)) for _ in range(n)])


def test_candidates_follow_eq_1_8():
    # s = 3, m = 6, c = 3: candidates are 1 .. j − 3 (chunk j − 2 is neither recent nor candidate).
    np.testing.assert_array_equal(ref.retrieval_candidates(10, 3, 3, 18, 6), np.arange(1, 8))
    np.testing.assert_array_equal(nb.retrieval_candidates(3, 3, 3, 18, 6), np.arange(0))
    np.testing.assert_array_equal(ref.retrieval_candidates(9, 3, 0, 6, 3), np.arange(0, 8))


def test_trajectory_returning_to_its_start_selects_the_early_chunks():
    c, period_chunks = 3, 11
    poses = loop_poses(12 * c, period_chunks * c)      # chunk 11 is back where chunk 0 was
    selected = nb.select_chunks(poses, j=11, c=c, s=3, r=6, m=6, k=2)
    np.testing.assert_array_equal(selected, [1, 2])    # chunk 0 is the sink, not a candidate
    np.testing.assert_array_equal(ref.select_chunks(poses, 11, c, 3, 6, 6, 2), selected)


def test_straight_path_prefers_the_most_recent_candidates():
    poses = np.stack([yaw_pose(0.0, [0.0, 0.0, float(f)]) for f in range(30)])
    np.testing.assert_array_equal(nb.select_chunks(poses, 9, 3, 3, 9, 6, 3), [6, 5, 4])


def test_pose_scores_numba_matches_numpy_twin(rng):
    poses = random_poses(rng, 40)
    candidates = np.arange(1, 10)
    np.testing.assert_allclose(nb.chunk_pose_scores(poses, 12, 3, candidates),
                               ref.chunk_pose_scores(poses, 12, 3, candidates), atol=1e-14)
    for j in range(4, 13):
        np.testing.assert_array_equal(nb.select_chunks(poses, j, 3, 3, 9, 6, 3),
                                      ref.select_chunks(poses, j, 3, 3, 9, 6, 3))


def test_zero_translation_spread_leaves_that_term_unnormalised():
    # All chunks share one position: max δ_t = 0, so D is the normalised rotation term alone.
    poses = np.stack([yaw_pose(0.1 * f, [1.0, 2.0, 3.0]) for f in range(15)])
    _, R = ref.chunk_means(poses, np.arange(5), 3)
    d_R = np.arccos(np.clip((np.einsum("nab,ab->n", R[:3], R[4]) - 1) / 2, -1, 1))
    scores = nb.chunk_pose_scores(poses, 4, 3, [0, 1, 2])
    np.testing.assert_allclose(scores, 0.5 * d_R / d_R.max(), atol=1e-14)


def test_equal_scores_break_ties_by_lower_chunk_index():
    poses = np.tile(np.eye(4), (30, 1, 1))
    np.testing.assert_array_equal(nb.select_chunks(poses, 9, 3, 3, 9, 6, 3), [1, 2, 3])


def test_fewer_candidates_than_k_returns_them_all(rng):
    poses = random_poses(rng, 18)
    assert sorted(nb.select_chunks(poses, 5, 3, 3, 18, 6, 6).tolist()) == [1, 2]


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((10, 3, 4)), ValueError, r"poses: expected shape \[n, 4, 4\]"),
    (np.full((30, 4, 4), np.nan), ValueError, "poses contains NaN"),
    (np.tile(np.eye(4), (20, 1, 1)), ValueError, "chunk 9: needs latent frames up to 29"),
])
def test_bad_poses_raise(bad, error, message):
    with pytest.raises(error, match=message):
        nb.select_chunks(bad, 9, 3, 3, 9, 6, 3)


def brute_force_similarity(keys, F_s):
    """Cosine similarity to the anchor centroid, one Python float at a time (float64)."""
    d = keys.shape[1]
    mu = [sum(float(keys[i, a]) for i in range(F_s)) / F_s for a in range(d)]
    mu_norm = math.sqrt(sum(m * m for m in mu))
    sims = []
    for n in range(F_s, keys.shape[0]):
        row = [float(x) for x in keys[n]]
        dot = sum(x * m for x, m in zip(row, mu, strict=True))
        sims.append(dot / (math.sqrt(sum(x * x for x in row)) * mu_norm + 1e-8))
    return sims


@pytest.mark.parametrize("rho", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "per_frame"])
def test_compression_keeps_exactly_the_budget(rng, rho, pooled):
    F_s, c = 10, 3
    keys = rng.standard_normal((c * F_s, 12))
    kept = nb.compress_chunk_keys(keys, F_s, c, rho, pooled=pooled)
    assert len(kept) == F_s + (c - 1) * math.ceil(rho * F_s)
    np.testing.assert_array_equal(kept[:F_s], np.arange(F_s))
    assert np.all(np.diff(kept) > 0)
    np.testing.assert_array_equal(kept, ref.compress_chunk_keys(keys, F_s, c, rho, pooled))


def test_pooled_compression_keeps_the_least_similar_tokens(rng):
    F_s, c, rho = 8, 4, 0.25
    keys = rng.standard_normal((c * F_s, 6))
    keys[F_s + 3] = keys[:F_s].mean(axis=0)            # identical to the centroid: dropped
    sims = brute_force_similarity(keys, F_s)
    budget = (c - 1) * math.ceil(rho * F_s)
    expected = sorted(F_s + i for _, i in sorted(zip(sims, range(len(sims)), strict=True))[:budget])
    kept = nb.compress_chunk_keys(keys, F_s, c, rho)
    assert kept[F_s:].tolist() == expected
    assert F_s + 3 not in kept


def test_per_frame_compression_keeps_the_least_similar_of_each_frame(rng):
    F_s, c, rho = 6, 3, 0.5
    keys = rng.standard_normal((c * F_s, 5))
    sims = brute_force_similarity(keys, F_s)
    keep = math.ceil(rho * F_s)
    expected = []
    for f in range(c - 1):
        frame = [(sims[f * F_s + i], F_s * (f + 1) + i) for i in range(F_s)]
        expected += [index for _, index in sorted(frame)[:keep]]
    assert nb.compress_chunk_keys(keys, F_s, c, rho, pooled=False)[F_s:].tolist() == sorted(expected)


def test_compression_ties_keep_the_lower_index():
    F_s, c = 4, 2
    keys = np.ones((c * F_s, 3), np.float32)           # every similarity equals 1
    np.testing.assert_array_equal(nb.compress_chunk_keys(keys, F_s, c, 0.5), [0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compression_numba_matches_numpy_twin(rng, dtype):
    keys = rng.standard_normal((3 * 40, 32)).astype(dtype)
    for pooled in (True, False):
        np.testing.assert_array_equal(nb.compress_chunk_keys(keys, 40, 3, 0.25, pooled),
                                      ref.compress_chunk_keys(keys, 40, 3, 0.25, pooled))


@pytest.mark.parametrize("kwargs, message", [
    ({"rho": 0.0}, r"rho: must be in \(0, 1\]"),
    ({"rho": 1.5}, r"rho: must be in \(0, 1\]"),
    ({"F_s": 7}, r"keys: expected shape \[c\*F_s, d\] with c\*F_s = 21"),
])
def test_compression_rejects_bad_arguments(rng, kwargs, message):
    args = {"keys": rng.standard_normal((30, 4)), "F_s": 10, "c": 3, "rho": 0.5} | kwargs
    with pytest.raises(ValueError, match=message):
        nb.compress_chunk_keys(**args)


def naive_attention(q, k, v, scale):
    """Textbook softmax(q kᵀ·scale) v per head, no max subtraction."""
    out = np.zeros((q.shape[0], q.shape[1], v.shape[2]))
    for h in range(q.shape[1]):
        weights = np.exp(q[:, h] @ k[:, h].T * scale)
        out[:, h] = weights @ v[:, h] / weights.sum(axis=1, keepdims=True)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_attention_equals_naive_softmax(rng, dtype):
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((5, 3, 8), (11, 3, 8), (11, 3, 4)))
    o = nb.window_attention(q, k, v)
    assert o.dtype == dtype and o.shape == (5, 3, 4)
    expected = naive_attention(q.astype(np.float64), k, v, 8**-0.5)
    np.testing.assert_allclose(o, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(o, ref.window_attention(q, k, v), rtol=1e-6, atol=1e-12)


def test_window_attention_is_stable_for_huge_logits(rng):
    q, k, v = rng.standard_normal((2, 1, 4)), rng.standard_normal((6, 1, 4)), rng.standard_normal((6, 1, 4))
    o = nb.window_attention(q * 1e3, k, v)
    assert np.isfinite(o).all()
    np.testing.assert_allclose(o, ref.window_attention(q * 1e3, k, v), atol=1e-12)


def test_window_attention_rejects_mismatched_heads(rng):
    with pytest.raises(ValueError, match=r"k_window: expected shape \[Nkv, H, dh\]"):
        nb.window_attention(np.zeros((2, 3, 4)), np.zeros((5, 2, 4)), np.zeros((5, 2, 4)))


def test_assemble_window_orders_sink_retrieved_recent():
    part = [(np.full((n, 2, 3), tag), np.full((n, 2, 3), -tag)) for n, tag in
            ((2, 1.0), (3, 2.0), (1, 3.0), (4, 4.0))]
    K, V = nb.assemble_window(part[0], [part[1], part[2]], part[3])
    np.testing.assert_array_equal(K[:, 0, 0], [1, 1, 2, 2, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(V, -K)
    K0, _ = nb.assemble_window(None, [], part[3])
    assert K0.shape == (4, 2, 3)


def test_compression_flops_equal_instrumented_count(rng):
    F_s, c, d = 5, 3, 4
    keys = rng.standard_normal((c * F_s, d))
    count = 0
    mu = [0.0] * d
    for i in range(F_s):
        for a in range(d):
            mu[a] += keys[i, a]
            count += 1                                           # centroid add
    mu = [m / F_s for m in mu]
    mu_norm = math.sqrt(sum(m * m for m in mu))
    sims = []
    for n in range(F_s, c * F_s):
        dot = sq = 0.0
        for a in range(d):
            dot += keys[n, a] * mu[a]
            sq += keys[n, a] * keys[n, a]
            count += 4                                           # two multiply-adds
        sims.append(dot / (math.sqrt(sq) * mu_norm + 1e-8))
        count += 3                                               # sqrt, ×‖μ‖, ÷
    np.testing.assert_allclose(sims, ref.anchor_similarity(keys, F_s), atol=1e-14)
    assert count == flops.compression_flops(F_s, c, d)


def test_pose_scoring_flops_equal_instrumented_count(rng):
    poses, c, j, candidates = random_poses(rng, 30), 3, 9, list(range(1, 7))
    count = 0

    def mean(chunk):
        nonlocal count
        acc = np.zeros((3, 4))
        for f in range(chunk * c, chunk * c + c):
            acc += poses[f, :3, :]
            count += 12                                          # 3 + 9 adds
        count += 12                                              # divide by c
        return acc[:, 3] / c, acc[:, :3] / c

    t_j, R_j = mean(j)
    d_t, d_R = [], []
    for cand in candidates:
        t, R = mean(cand)
        d_t.append(float(((t - t_j) ** 2).sum()))
        count += 9                                               # 3 subtracts, 3 multiply-adds
        cos = min(max((float((R * R_j).sum()) - 1) / 2, -1.0), 1.0)
        d_R.append(math.acos(cos))
        count += 23                                              # trace, −1, /2, clip, arccos
        count += 2 + 5                                           # running maxima, blend
    scores = 0.5 * np.array(d_t) / max(d_t) + 0.5 * np.array(d_R) / max(d_R)
    np.testing.assert_allclose(nb.chunk_pose_scores(poses, j, c, candidates), scores, atol=1e-14)
    assert count == flops.pose_scoring_flops(len(candidates), c)


def test_attention_flops_equal_instrumented_count(rng):
    Nq, Nkv, H, dh = 3, 5, 2, 4
    q, k, v = rng.standard_normal((Nq, H, dh)), rng.standard_normal((Nkv, H, dh)), rng.standard_normal((Nkv, H, dh))
    multiply_adds = 0
    out = np.zeros((Nq, H, dh))
    for h in range(H):
        for i in range(Nq):
            logits = []
            for j in range(Nkv):
                logits.append(sum(q[i, h, a] * k[j, h, a] for a in range(dh)) * dh**-0.5)
                multiply_adds += dh
            p = np.exp(np.array(logits) - max(logits))
            for j in range(Nkv):
                out[i, h] += p[j] * v[j, h]
                multiply_adds += dh
            out[i, h] /= p.sum()
    np.testing.assert_allclose(out, nb.window_attention(q, k, v), atol=1e-12)
    assert 2 * multiply_adds == flops.attention_flops(Nq, Nkv, H * dh)
