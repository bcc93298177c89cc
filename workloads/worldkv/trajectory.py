"""Camera trajectories for WorldKV rollouts: synthetic paths and pose files.

A trajectory is one camera-to-world 4x4 pose per *latent* frame (OpenCV convention, as the
released code uses after interpolating per-video-frame poses).

Synthetic paths (seeded by the generator's rng; a little positional and heading jitter):

* ``loop``: a circle walked once per ``trajectory_period_frames`` latent frames, heading
  along the tangent; the camera comes back to its start every period.
* ``back_and_forth``: a dolly out along a line for half a period and back again, facing the
  same way, so the way back sees the views of the way out.
* ``straight``: forward along +z at a jittered speed with a fixed heading; it never
  revisits a place, so the pose distance always prefers the most recent candidates.

Pose files (``trajectory_file``):

* ``.npy``: an array of shape ``[n, 4, 4]``;
* any other suffix: text, one pose per line as 16 numbers in row-major order separated by
  spaces or commas; blank lines and lines starting with ``#`` are skipped.

With ``trajectory_file_frames=video`` (the released code's convention) the file has one pose
per video frame and latent frame ``i`` takes video frame ``4 i`` (latent frame 0 is video
frame 0; latent frame i >= 1 covers video frames 4i-3..4i); with ``latent`` it has one pose
per latent frame. Extra poses are ignored; too few is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import ConfigError
from workloads.worldkv.spec import FAMILY, WorldKVSpec

#: Distance walked per latent frame by the synthetic paths (arbitrary: scores are max-normalised).
STEP = 1.0
POSITION_JITTER = 0.02
HEADING_JITTER_RAD = 0.01


def trajectory_poses(spec: WorldKVSpec, rng: np.random.Generator) -> np.ndarray:
    """Poses ``[latent_frames, 4, 4]`` (float64) for the rollout of ``spec``."""
    n = spec.latent_frames
    if spec.trajectory == "file":
        return load_poses(spec.trajectory_file, n, per_video_frame=spec.trajectory_file_frames == "video")
    period = spec.trajectory_period_frames
    i = np.arange(n, dtype=np.float64)
    position = np.zeros((n, 3))
    heading = np.zeros(n)
    if spec.trajectory == "straight":
        speed = STEP * rng.uniform(0.8, 1.2, size=n)
        position[:, 2] = np.concatenate([[0.0], np.cumsum(speed[1:])])
        position[:, 0] = rng.normal(0.0, POSITION_JITTER, size=n)
        return _poses(position, None)
    if spec.trajectory == "loop":
        radius = STEP * period / (2 * np.pi)
        angle = 2 * np.pi * i / period + rng.uniform(0, 2 * np.pi)
        position[:, 0] = radius * np.cos(angle)
        position[:, 2] = radius * np.sin(angle)
        heading = angle + np.pi / 2
    else:  # back_and_forth
        half = period / 2
        phase = np.mod(i, period)
        outward = phase <= half
        position[:, 2] = STEP * np.where(outward, phase, period - phase)
    position += rng.normal(0.0, POSITION_JITTER, size=(n, 3)) * np.array([1.0, 0.0, 1.0])
    heading = heading + rng.normal(0.0, HEADING_JITTER_RAD, size=n)
    return _poses(position, heading)


def _poses(position: np.ndarray, heading: np.ndarray | None) -> np.ndarray:
    """Camera-to-world poses from positions and yaw angles (None = identity rotation)."""
    n = len(position)
    poses = np.zeros((n, 4, 4))
    poses[:, 3, 3] = 1.0
    poses[:, :3, 3] = position
    if heading is None:
        poses[:, :3, :3] = np.eye(3)
    else:
        cos, sin = np.cos(heading), np.sin(heading)
        poses[:, 0, 0], poses[:, 0, 2] = cos, sin
        poses[:, 1, 1] = 1.0
        poses[:, 2, 0], poses[:, 2, 2] = -sin, cos
    return poses


def load_poses(path: str | Path, latent_frames: int, *, per_video_frame: bool = True) -> np.ndarray:
    """Read a pose file and return one pose per latent frame, ``[latent_frames, 4, 4]``.

    Raises ConfigError naming ``trajectory_file`` when the file is missing, does not parse,
    has the wrong shape, non-finite values, or too few poses.
    """
    path = Path(path)
    where = f"{FAMILY}.trajectory_file"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file {str(path)!r}")
    if path.suffix.lower() == ".npy":
        try:
            poses = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ConfigError(f"{where}: {path} is not a readable .npy array ({err})") from None
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ConfigError(f"{where}: {path} has shape {poses.shape}, expected [n, 4, 4]")
        try:
            poses = poses.astype(np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {path} does not hold numbers (dtype {poses.dtype})") from None
    else:
        poses = _read_text_poses(path, where)
    if not np.isfinite(poses).all():
        bad = int(np.flatnonzero(~np.isfinite(poses).reshape(len(poses), -1).all(axis=1))[0])
        raise ConfigError(f"{where}: pose {bad} of {path} is not finite")
    if per_video_frame:
        needed = 4 * latent_frames - 3
        if len(poses) < needed:
            raise ConfigError(f"{where}: {path} has {len(poses)} poses but the rollout needs {needed} "
                              f"(one per video frame); lower rollout_frames or set "
                              f"trajectory_file_frames=latent")
        return poses[4 * np.arange(latent_frames)]
    if len(poses) < latent_frames:
        raise ConfigError(f"{where}: {path} has {len(poses)} poses but the rollout needs "
                          f"{latent_frames} (one per latent frame); lower rollout_frames")
    return poses[:latent_frames]


def _read_text_poses(path: Path, where: str) -> np.ndarray:
    rows = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{where}: cannot read {path} as text ({err})") from None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.replace(",", " ").split()
        if len(parts) != 16:
            raise ConfigError(f"{where}: {path} line {number}: expected 16 numbers (a row-major "
                              f"4x4 pose), got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ConfigError(f"{where}: {path} line {number}: not a number in {text!r}") from None
    if not rows:
        raise ConfigError(f"{where}: {path} holds no poses")
    return np.array(rows, dtype=np.float64).reshape(-1, 4, 4)


def save_text_poses(path: str | Path, poses: np.ndarray) -> None:
    """Write poses ``[n, 4, 4]`` in the text format (one row-major pose per line)."""
    lines = [" ".join(f"{v:.9g}" for v in pose.reshape(16)) for pose in np.asarray(poses)]
    Path(path).write_text("\n".join(lines) + "\n")
