"""WorldKV trace generator: closed-form counts (WORKLOADS §1.5), window policies, retrieval
and compression driven by the kernels, trajectories, determinism and parameter errors."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hwsim.errors import ConfigError
from workloads import worldkv
from workloads.worldkv import policies
from workloads.worldkv.policies import plan_rollout
from workloads.worldkv.spec import WorldKVSpec
from workloads.worldkv.trajectory import save_text_poses, trajectory_poses

PASS_PHASES = ("denoise", "clean")


def small_spec(**overrides) -> WorldKVSpec:
    """Tiny dims: 2 layers, d = 32, F_s = 8, c = 3, 2 + 1 passes, 14 chunks."""
    base = dict(num_layers=2, d_model=32, num_heads=2, head_dim=16, d_ff=48, tokens_per_frame=8,
                chunk_frames=3, denoise_passes=2, context_tokens=5, camera_injector_linears=4,
                policy="worldkv", sink_frames=3, recent_frames=6, retrieved_chunks=2,
                keep_ratio=0.5, rollout_frames=4 * 3 * 14 - 3, trajectory="loop",
                trajectory_period_frames=12, compress_proxy_dim=4)
    base.update(overrides)
    return WorldKVSpec(**base)


def frame_of(spec: WorldKVSpec, seed: int = 0) -> pd.DataFrame:
    return worldkv.generate(spec, np.random.default_rng(seed), seed=seed).to_frame()


# --- independent statements of WORKLOADS §1.2-1.5 -------------------------------------------

def n_store(fs: int, c: int, rho: float) -> int:
    return c * fs if rho >= 1 else fs + (c - 1) * math.ceil(rho * fs)


def n_candidates(j: int, s: int, m: int, c: int) -> int:
    return max(0, j - max(1, m // c) - math.ceil(s / c))


def window_tokens(spec: WorldKVSpec, j: int) -> int:
    """Eq. 1.6 and §1.2 (with the early-chunk ring fallback)."""
    c, fs = spec.chunk_frames, spec.tokens_per_frame
    history = (j + 1) * c
    if spec.policy == "full":
        return history * fs
    if spec.policy == "sliding":
        return min(history, spec.sliding_window_frames) * fs
    cand = n_candidates(j, spec.sink_frames, spec.recent_frames, c)
    if cand == 0 or spec.retrieved_chunks == 0:
        w = spec.sink_frames + spec.retrieved_chunks * c + spec.recent_frames
        return min(history, w) * fs
    k = min(spec.retrieved_chunks, cand)
    return (spec.sink_frames * fs + k * n_store(fs, c, spec.keep_ratio)
            + spec.recent_frames * fs)


def chunk_flops(spec: WorldKVSpec, n_kv: int) -> int:
    """Eq. 1.17-1.19 for one chunk (all passes)."""
    d, nq, L = spec.d_model, spec.chunk_frames * spec.tokens_per_frame, spec.num_layers
    f_lin = 8 * d * d + 4 * d * d + 4 * d * spec.d_ff + 2 * spec.camera_injector_linears * d * d
    attn = 4 * nq * n_kv * d + 4 * nq * spec.context_tokens * d
    return (spec.denoise_passes + 1) * (nq * L * f_lin + L * attn)


def per_chunk(frame: pd.DataFrame, column: str, mask) -> pd.Series:
    return frame[mask].groupby("step")[column].sum()


# --- closed-form counts at small dims (exact) -----------------------------------------------

@pytest.mark.parametrize("policy", ["full", "sliding", "worldkv"])
def test_small_dims_pass_flops_and_window_bytes_equal_eq_1_17_to_1_20(policy):
    spec = small_spec(policy=policy, sliding_window_frames=9)
    frame = frame_of(spec)
    passes = frame.phase.isin(PASS_PHASES)
    flops = per_chunk(frame, "flops", passes)
    window = per_chunk(frame, "bytes_read2", passes & (frame.tag == "self_attn"))
    for j in range(spec.num_chunks):
        n_kv = window_tokens(spec, j)
        assert flops[j] == chunk_flops(spec, n_kv), j
        assert window[j] == (spec.denoise_passes + 1) * spec.num_layers * n_kv * 2 * spec.d_model * 2


def test_small_dims_store_gather_compression_and_scoring_equal_closed_form():
    spec = small_spec()
    frame = frame_of(spec)
    plan = plan_rollout(spec, np.random.default_rng(0))
    L, d, fs, c = spec.num_layers, spec.d_model, spec.tokens_per_frame, spec.chunk_frames
    store = n_store(fs, c, spec.keep_ratio)
    kv = 2 * d * 2
    stores = per_chunk(frame, "bytes_read", frame.tag == "bank_store")
    gathers = per_chunk(frame, "bytes_read", frame.tag == "retrieve_gather")
    compress = per_chunk(frame, "flops", frame.phase == "compress")
    scoring = per_chunk(frame, "flops", frame.tag == "pose_score")
    for j in range(spec.num_chunks):
        assert stores[j] == L * store * kv                                     # Eq. 1.21
        assert compress[j] == L * (fs * d + (c - 1) * fs * (4 * d + 3))         # §1.4
        k = min(spec.retrieved_chunks, n_candidates(j, spec.sink_frames, spec.recent_frames, c))
        assert len(plan.selected[j]) == k
        if k:
            n = n_candidates(j, spec.sink_frames, spec.recent_frames, c)
            assert gathers[j] == L * k * store * kv                              # Eq. 1.21
            assert scoring[j] == n * (12 * c + 51) + 12 * (c + 1)
        else:
            assert j not in gathers.index and j not in scoring.index
    setup = frame[frame.phase == "setup"].flops.sum()
    assert setup == L * 2 * spec.context_tokens * d * 2 * d
    expected = setup + sum(chunk_flops(spec, window_tokens(spec, j)) for j in range(spec.num_chunks))
    expected += spec.num_chunks * L * (fs * d + (c - 1) * fs * (4 * d + 3))
    expected += sum(n_candidates(j, 3, 6, c) * (12 * c + 51) + 12 * (c + 1)
                    for j in range(spec.num_chunks) if n_candidates(j, 3, 6, c))
    assert frame.flops.sum() == expected


@pytest.mark.parametrize("policy", ["full", "sliding", "worldkv"])
def test_window_size_per_chunk_follows_eq_1_6(policy):
    spec = small_spec(policy=policy, sliding_window_frames=12, retrieved_chunks=3,
                      rollout_frames=4 * 3 * 20 - 3)
    frame = frame_of(spec)
    attn = frame[(frame.tag == "self_attn")].groupby("step").n.agg(["min", "max"])
    expected = [window_tokens(spec, j) for j in range(spec.num_chunks)]
    assert attn["min"].tolist() == expected
    assert attn["max"].tolist() == expected


def test_memory_bookkeeping_balances_and_bank_grows_by_one_stored_chunk():
    spec = small_spec()
    frame = frame_of(spec)
    allocs = frame[frame.kind == "alloc"].groupby("dst").bytes_written.sum()
    frees = frame[frame.kind == "free"].groupby("src").bytes_read.sum()
    assert allocs.sort_index().to_dict() == frees.sort_index().to_dict()
    grow = frame[(frame.kind == "alloc") & (frame.dst == "kv_bank")]
    assert (grow.bytes_written == spec.num_layers * spec.store_tokens * 4 * spec.d_model).all()
    assert len(grow) == spec.num_chunks


def test_streams_and_dependencies_link_retrieval_passes_and_stores():
    spec = small_spec()
    frame = frame_of(spec)
    by_id = frame.set_index("op_id")
    gathers = frame[frame.tag == "retrieve_gather"]
    assert set(gathers.stream) == {"copy"} and set(gathers.kind) == {"gather"}
    assert set(gathers.src) == {"kv_bank"} and set(gathers.dst) == {"kv_window"}
    first_pass = frame[(frame.tag == "self_attn") & (frame.phase == "denoise")]
    first_pass = first_pass.drop_duplicates(["step", "layer"])
    waits = {int(d) for text in first_pass.deps for d in text.split(";") if d}
    assert set(gathers.op_id) <= waits
    for _, store in frame[frame.tag == "bank_store"].iterrows():
        (dep,) = [int(d) for d in store.deps.split(";")]
        assert by_id.loc[dep, "tag"] == "compress_gather"
        assert by_id.loc[dep, "layer"] == store.layer and by_id.loc[dep, "step"] == store.step
    assert (frame[frame.tag == "compress_gather"].access == "random").all()
    for _, row in frame[frame.deps != ""].iterrows():
        assert all(int(d) < row.op_id for d in row.deps.split(";"))


def test_uncompressed_store_waits_for_the_clean_pass_kv_write():
    frame = frame_of(small_spec(keep_ratio=1.0))
    by_id = frame.set_index("op_id")
    assert not (frame.phase == "compress").any()
    for _, store in frame[frame.tag == "bank_store"].iterrows():
        dep = int(store.deps)
        assert by_id.loc[dep, "tag"] == "kv_proj" and by_id.loc[dep, "phase"] == "clean"
        assert by_id.loc[dep, "dst"] == "kv_window"


# --- compression ------------------------------------------------------------------------------

def test_keep_ratio_quarter_stores_exactly_half_a_chunk():
    half = frame_of(small_spec(keep_ratio=0.25))
    full = frame_of(small_spec(keep_ratio=1.0))
    stored = half[half.tag == "bank_store"].bytes_read
    uncompressed = full[full.tag == "bank_store"].bytes_read
    assert (2 * stored.to_numpy() == uncompressed.to_numpy()).all()


def test_kept_token_count_comes_from_running_the_compression_kernel(monkeypatch):
    calls = []
    kernel = policies.compress_chunk_keys

    def spy(keys, F_s, c, rho, pooled=True):
        kept = kernel(keys, F_s, c, rho, pooled=pooled)
        calls.append((keys.shape, len(kept)))
        return kept

    monkeypatch.setattr(policies, "compress_chunk_keys", spy)
    spec = small_spec(tokens_per_frame=20, keep_ratio=0.3, compression_pooled=False)
    plan = plan_rollout(spec, np.random.default_rng(3))
    assert len(calls) == spec.num_chunks
    assert all(shape == (3 * 20, 4) for shape, _ in calls)
    assert plan.store_tokens == 20 + 2 * math.ceil(0.3 * 20) == calls[0][1]
    assert (plan.kept_tokens == plan.store_tokens).all()


def test_kernel_runs_on_proxy_tokens_when_frames_are_huge(monkeypatch):
    monkeypatch.setattr(policies, "KERNEL_MAX_TOKENS_PER_FRAME", 16)
    spec = small_spec(tokens_per_frame=50, keep_ratio=0.25)
    plan = plan_rollout(spec, np.random.default_rng(0))
    assert plan.store_tokens == 50 + 2 * math.ceil(0.25 * 50)


# --- retrieval and trajectories ---------------------------------------------------------------

def test_loop_that_returns_to_its_start_retrieves_the_early_chunks():
    spec = small_spec(trajectory="loop", trajectory_period_frames=24, rollout_frames=4 * 3 * 12 - 3)
    plan = plan_rollout(spec, np.random.default_rng(5))
    back = 24 // 3                              # the chunk where the camera is back at the start
    assert plan.selected[back][0] == 1          # first candidate (chunk 0 is the sink)
    before = back - 3                           # half-way round: far from the start
    assert 1 not in plan.selected[before][:1]


def test_back_and_forth_revisits_retrieve_the_outward_chunks():
    spec = small_spec(trajectory="back_and_forth", trajectory_period_frames=24,
                      rollout_frames=4 * 3 * 12 - 3)
    plan = plan_rollout(spec, np.random.default_rng(2))
    assert min(plan.selected[8]) <= 2           # back at the start after one out-and-back


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_straight_trajectory_never_prefers_early_chunks(seed):
    spec = small_spec(trajectory="straight", retrieved_chunks=3, rollout_frames=4 * 3 * 20 - 3)
    plan = plan_rollout(spec, np.random.default_rng(seed))
    for j in range(spec.num_chunks):
        n = n_candidates(j, spec.sink_frames, spec.recent_frames, spec.chunk_frames)
        if n > spec.retrieved_chunks:
            newest = set(range(1 + n - spec.retrieved_chunks, 1 + n))
            assert set(plan.selected[j].tolist()) == newest, j


@pytest.mark.parametrize("suffix", [".npy", ".txt"])
def test_trajectory_file_gives_the_same_retrieval_as_the_same_poses(tmp_path, suffix):
    spec = small_spec()
    poses = trajectory_poses(spec, np.random.default_rng(9))
    path = tmp_path / f"poses{suffix}"
    np.save(path, poses) if suffix == ".npy" else save_text_poses(path, poses)
    from_file = replace(spec, trajectory="file", trajectory_file=str(path),
                        trajectory_file_frames="latent")
    plan = plan_rollout(from_file, np.random.default_rng(0))
    np.testing.assert_allclose(plan.poses, poses, rtol=1e-8)
    expected = plan_rollout(spec, np.random.default_rng(9))
    assert [s.tolist() for s in plan.selected] == [s.tolist() for s in expected.selected]


def test_per_video_frame_file_takes_every_fourth_pose(tmp_path):
    spec = small_spec()
    latent = trajectory_poses(spec, np.random.default_rng(1))
    video = np.repeat(latent, 4, axis=0)[3:]            # video frame 4i holds latent pose i
    path = tmp_path / "video.txt"
    save_text_poses(path, video)
    plan = plan_rollout(replace(spec, trajectory="file", trajectory_file=str(path)),
                        np.random.default_rng(0))
    np.testing.assert_allclose(plan.poses, latent, rtol=1e-8)


@pytest.mark.parametrize("content, message", [
    ("1 2 3\n", "expected 16 numbers"),
    ("1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 x\n", "not a number"),
    ("", "holds no poses"),
])
def test_unparseable_trajectory_file_names_the_parameter(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    spec = small_spec(trajectory="file", trajectory_file=str(path))
    with pytest.raises(ConfigError, match=rf"trajectory_file.*{message}"):
        worldkv.generate(spec, np.random.default_rng(0))


def test_bad_trajectory_files_name_the_parameter(tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((5, 3, 3)))
    short = tmp_path / "short.npy"
    np.save(short, np.tile(np.eye(4), (4, 1, 1)))
    for path, message in ((tmp_path / "missing.npy", "no such file"), (wrong, "expected"),
                          (short, "needs")):
        spec = small_spec(trajectory="file", trajectory_file=str(path))
        with pytest.raises(ConfigError, match=rf"worldkv\.trajectory_file: .*{message}"):
            plan_rollout(spec, np.random.default_rng(0))


# --- presets at full dims (within 1% of WORKLOADS §1.5) ---------------------------------------

def steady_chunk(frame: pd.DataFrame, j: int) -> pd.DataFrame:
    return frame[(frame.step == j) & frame.phase.isin(PASS_PHASES)]


@pytest.mark.parametrize("rho, tflop_chunk, attn_pass, store_gb, gather_gb, window_gb", [
    (1.0, 1573, 163.4, 3.83, 23.0, 34.5),
    (0.5, 1394, 127.6, 2.56, 15.3, 26.8),
    (0.25, 1304, 109.6, 1.92, 11.5, 23.0),
])
def test_lingbot_worldkv_matches_the_worked_numbers(rho, tflop_chunk, attn_pass, store_gb,
                                                    gather_gb, window_gb):
    spec = worldkv.load_spec("lingbot-world-fast", {"keep_ratio": rho, "rollout_frames": 4 * 3 * 12 - 3})
    frame = frame_of(spec)
    chunk = steady_chunk(frame, 11)
    passes = spec.denoise_passes + 1
    assert chunk.flops.sum() / 1e12 == pytest.approx(tflop_chunk, rel=0.01)
    assert chunk[chunk.kind == "gemm"].flops.sum() / passes / 1e12 == pytest.approx(151.1, rel=0.01)
    assert chunk[chunk.kind == "attention"].flops.sum() / passes / 1e12 == pytest.approx(attn_pass, rel=0.01)
    attn = chunk[chunk.tag == "self_attn"]
    assert attn.bytes_read2.sum() / passes / 1e9 == pytest.approx(window_gb, rel=0.01)
    at = frame[frame.step == 11]
    assert at[at.tag == "bank_store"].bytes_read.sum() / 1e9 == pytest.approx(store_gb, rel=0.01)
    assert at[at.tag == "retrieve_gather"].bytes_read.sum() / 1e9 == pytest.approx(gather_gb, rel=0.01)


def test_lingbot_full_kv_over_a_360_frame_rollout():
    spec = worldkv.load_spec("lingbot-world-fast", {"policy": "full"})
    assert spec.num_chunks == 30
    frame = frame_of(spec)
    passes = frame[frame.phase.isin(PASS_PHASES)]
    per_chunk_tflop = passes.groupby("step").flops.sum() / 1e12
    assert per_chunk_tflop[29] == pytest.approx(3457, rel=0.01)
    assert per_chunk_tflop.mean() == pytest.approx(2156, rel=0.01)
    assert passes[passes.tag == "self_attn"].n.max() == 140_400
    grown = frame[(frame.kind == "alloc") & (frame.dst == "kv_window")].bytes_written.sum()
    assert grown / 1e9 == pytest.approx(115, rel=0.01)


def test_lingbot_sliding_18_matches_the_worked_numbers():
    spec = worldkv.load_spec("lingbot-world-fast", {"policy": "sliding", "rollout_frames": 141})
    chunk = steady_chunk(frame_of(spec), 11)
    assert chunk.flops.sum() / 1e12 == pytest.approx(1304, rel=0.01)
    assert not chunk.tag.isin(["bank_store", "retrieve_gather"]).any()


def test_matrix_game_2_assumed_worldkv_setup():
    spec = worldkv.load_spec("matrix-game-2", {"rollout_frames": 4 * 3 * 12 - 3})
    frame = frame_of(spec)
    chunk = steady_chunk(frame, 11)
    assert chunk[chunk.tag == "self_attn"].n.iloc[0] == 13_200
    assert chunk.flops.sum() / 1e12 == pytest.approx(52.6, rel=0.01)
    at = frame[frame.step == 11]
    assert at[at.tag == "bank_store"].bytes_read.sum() / 1e9 == pytest.approx(0.24, rel=0.02)
    assert at[at.tag == "retrieve_gather"].bytes_read.sum() / 1e9 == pytest.approx(1.46, rel=0.01)


# --- metadata, determinism, errors ------------------------------------------------------------

def test_work_units_count_the_video_frames_produced():
    spec = small_spec(rollout_frames=100)
    trace = worldkv.generate(spec, np.random.default_rng(0), seed=0, preset="x")
    assert spec.num_chunks == 9                       # 1 + 4*2 = 9 frames, then 12 per chunk
    assert trace.meta.work_unit == "frame"
    assert trace.meta.work_units == (1 + 4 * 2) + 12 * 8 == 105
    assert trace.meta.generator == "workloads.worldkv"
    assert trace.meta.params["keep_ratio"] == 0.5 and trace.meta.seed == 0


def test_generation_is_deterministic_for_a_seed():
    spec = small_spec()
    pd.testing.assert_frame_equal(frame_of(spec, 7), frame_of(spec, 7))
    a, b = plan_rollout(spec, np.random.default_rng(1)), plan_rollout(spec, np.random.default_rng(2))
    assert not np.array_equal(a.poses, b.poses)


@pytest.mark.parametrize("params, name", [
    ({"keep_ratio": "0"}, "keep_ratio"),
    ({"keep_ratio": "1.5"}, "keep_ratio"),
    ({"tokens_per_frame": "-8"}, "tokens_per_frame"),
    ({"retrieved_chunks": "40"}, "retrieved_chunks"),
    ({"policy": "slidng"}, "policy"),
    ({"trajectory": "file"}, "trajectory_file"),
    ({"trajectory_file": "poses.npy"}, "trajectory_file"),
    ({"head_dim": "100"}, "head_dim"),
    ({"recent_frames": "2"}, "recent_frames"),
])
def test_bad_parameters_fail_naming_the_parameter(params, name):
    with pytest.raises(ConfigError, match=rf"worldkv\.{name}: "):
        worldkv.load_spec("lingbot-world-fast", params)


def test_unknown_parameter_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"'keep_ratoi'.*did you mean 'keep_ratio'"):
        worldkv.load_spec("lingbot-world-fast", {"keep_ratoi": "0.25"})


def test_cam_retrieval_replaces_pose_scoring_with_cam_search_and_writes():
    import numpy as np

    import hwsim
    from workloads.registry import generate_trace

    params = {"num_layers": "2", "rollout_frames": "120", "retrieval_search": "cam"}
    frame = generate_trace("worldkv", "lingbot-world-fast", params, seed=0).to_frame()
    scored = generate_trace("worldkv", "lingbot-world-fast", {**params, "retrieval_search": "score"}, seed=0).to_frame()
    kinds = frame["kind"].value_counts()
    steps_with_retrieval = scored.loc[scored["tag"] == "pose_score", "step"].nunique()
    assert kinds["cam_search"] == steps_with_retrieval > 0
    assert kinds["cam_write"] == frame["step"].max() + 1  # one pose key per stored chunk
    assert "pose_score" not in set(frame["tag"])
    # the gathers (which chunks come back) are the same in both variants
    cols = ["step", "layer", "bytes_read"]
    np.testing.assert_array_equal(frame.loc[frame["tag"] == "retrieve_gather", cols].to_numpy(),
                                  scored.loc[scored["tag"] == "retrieve_gather", cols].to_numpy())
    from ..conftest import ARCH

    result = hwsim.simulate(hwsim.load_arch(ARCH / "worldkv-asic.yaml"),
                            hwsim.Trace.from_frame(frame), allow_overflow=True)
    assert set(result.records.loc[result.records["kind"].isin(["cam_search", "cam_write"]), "component"]) == {"cam"}
