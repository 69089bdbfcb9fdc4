"""The embedded synthetic dataset: short clips of dancing figures with exact ground truth.

Each video shows one articulated figure (``toolkit.sources.synthetic_figure``) with
its own clothing print, trouser/shorts/dress colour, skin tone, hair colour and
style, shoes and background, dancing to its own tempo. Because the toolkit renders
the frames, every frame comes with its true 133 DWPose-order keypoints and a
DensePose-style IUV map, so pose following and appearance preservation can both be
measured. The clips are written in the TikTok layout (frame folders plus an mp4 per
video) and then go through the same adapter path as real data.

Everything is deterministic from ``seed``: video ``i`` draws from its own random
generator seeded with (seed, i), so a video never depends on the others, and PNG
and x264 encoding are deterministic, so a rerun reproduces the same bytes.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.io import atomic_write_json
from toolkit.video import encode_image, write_video
from toolkit.sources.synthetic_figure import (
    BOTTOM_STYLES,
    HAIR_STYLES,
    PATTERN_KINDS,
    Look,
    Pattern,
    Placement,
    Pose,
    figure_extent,
    figure_frame,
)

GENERATOR_VERSION = "1"
MANIFEST = "synthetic.json"
_PARTIAL = ".synthetic.partial.json"

_SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 138), (198, 134, 100), (170, 110, 75),
               (141, 85, 54), (110, 66, 42), (80, 50, 35))
_HAIR_COLOURS = ((25, 20, 18), (55, 38, 28), (95, 62, 38), (150, 105, 60), (215, 180, 110), (165, 70, 35),
                 (180, 180, 180), (210, 90, 150), (60, 110, 200))
_EYE_COLOURS = ((60, 40, 25), (90, 60, 35), (60, 100, 150), (70, 110, 70), (30, 25, 20))


def video_id(index: int) -> str:
    """The id of video ``index``: synth_000, synth_001, ..."""
    return f"synth_{index:03d}"


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5EED]))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    c = np.asarray(colour, dtype=np.float64) * (1.0 + rng.uniform(-amount, amount)) + rng.uniform(-8, 8, 3)
    return tuple(int(v) for v in np.clip(np.rint(c), 0, 255))  # type: ignore[return-value]


def sample_look(rng: np.random.Generator, hue: float | None = None) -> Look:
    """A random appearance; ``hue`` (0..1) fixes the main clothing hue so looks differ across videos."""
    base = float(rng.uniform()) if hue is None else hue
    kind = PATTERN_KINDS[int(rng.integers(len(PATTERN_KINDS)))]
    n_cols = 2 if kind in ("checks", "dots", "gradient") else int(rng.integers(2, 4))
    cols = [_hsv(base, rng.uniform(0.55, 0.95), rng.uniform(0.55, 0.95))]
    for k in range(1, n_cols):
        if rng.uniform() < 0.4:
            cols.append(_hsv(0.0, 0.0, rng.choice([0.1, 0.93])))
        else:
            cols.append(_hsv(base + rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.9), rng.uniform(0.4, 1.0)))
    pattern = Pattern(kind=kind, colors=tuple(cols), period=float(rng.uniform(0.02, 0.06)),
                      angle=float(rng.choice([0.0, 90.0, 45.0, -30.0, 15.0])))
    bottom_style = BOTTOM_STYLES[int(rng.choice(len(BOTTOM_STYLES), p=[0.5, 0.3, 0.2]))]
    bottom = _hsv(base + rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.7))
    return Look(
        skin=_jitter(rng, _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], 0.04),
        hair=_jitter(rng, _HAIR_COLOURS[int(rng.choice(len(_HAIR_COLOURS),
                                                       p=[.2, .2, .15, .12, .1, .08, .05, .05, .05]))], 0.08),
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        eyes=_EYE_COLOURS[int(rng.integers(len(_EYE_COLOURS)))],
        lips=_jitter(rng, (175, 85, 85), 0.12),
        top=pattern,
        sleeves=float(rng.choice([0.0, 0.45, 0.7, 1.0, 2.0])),
        bottom=bottom,
        bottom_style=bottom_style,
        shoes=_hsv(rng.uniform(), rng.uniform(0, 0.7), rng.uniform(0.1, 0.9)),
        shoulders=float(rng.uniform(0.88, 1.12)),
        hips=float(rng.uniform(0.9, 1.12)),
        girth=float(rng.uniform(0.85, 1.15)),
        head=float(rng.uniform(0.95, 1.1)),
    )


class _Waves:
    """Smooth bounded signals: a centre plus sinusoids whose amplitudes fit the range."""

    def __init__(self, rng: np.random.Generator, t: np.ndarray, beat_hz: float) -> None:
        self.rng, self.t, self.beat = rng, t, beat_hz

    def _terms(self, lo: float, hi: float, beats: tuple[float, ...], energy: float, centre: float | None):
        rng = self.rng
        c = float(lo + (hi - lo) * rng.beta(2.0, 2.0)) if centre is None else float(np.clip(centre, lo, hi))
        budget = min(c - lo, hi - c) * float(np.clip(energy, 0.0, 1.0))
        amps = budget * rng.dirichlet(np.ones(len(beats)))
        phases = rng.uniform(0, 2 * np.pi, len(beats))
        return c, amps, phases

    def _eval(self, c: float, amps: np.ndarray, phases: np.ndarray, beats: tuple[float, ...]) -> np.ndarray:
        out = np.full_like(self.t, c)
        for mult, a, ph in zip(beats, amps, phases):
            out += a * np.sin(2 * np.pi * mult * self.beat * self.t + ph)
        return out

    def __call__(self, lo: float, hi: float, beats: tuple[float, ...], energy: float = 1.0,
                 centre: float | None = None) -> np.ndarray:
        return self._eval(*self._terms(lo, hi, beats, energy, centre), beats)

    def pair(self, lo: float, hi: float, beats: tuple[float, ...], energy: float,
             relation: str) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) signals: 'mirror' moves both sides together, 'alternate' half a cycle apart."""
        c, amps, phases = self._terms(lo, hi, beats, energy, None)
        if relation == "free":
            return self._eval(c, amps, phases, beats), self(lo, hi, beats, energy)
        shift = 0.0 if relation == "mirror" else np.pi
        jitter = self.rng.uniform(-0.2, 0.2, len(beats))
        return self._eval(c, amps, phases, beats), self._eval(c, amps, phases + shift + jitter, beats)


def sample_dance(rng: np.random.Generator, n_frames: int, fps: float) -> list[Pose]:
    """A smooth random dance: joint angles as sums of beat-locked sinusoids within joint limits."""
    t = np.arange(n_frames, dtype=np.float64) / fps
    beat = float(rng.uniform(84, 132)) / 60.0
    wave = _Waves(rng, t, beat)
    energy = float(rng.uniform(0.55, 1.0))
    style = ["mirror", "alternate", "free"][int(rng.integers(3))]

    def pair(lo: float, hi: float, beats: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        return wave.pair(lo, hi, beats, energy, style)

    knee_base = float(rng.uniform(3, 25))
    bounce = float(rng.uniform(5, 30)) * energy
    ph = float(rng.uniform(0, 2 * np.pi))
    knee_l = knee_base + bounce * (0.5 - 0.5 * np.cos(2 * np.pi * beat * t + ph))
    knee_r = knee_base + bounce * (0.5 - 0.5 * np.cos(2 * np.pi * beat * t + ph + (np.pi if style != "mirror"
                                                                                   else 0.3)))
    lift_side = int(rng.integers(2))
    lift = wave(-8, float(rng.uniform(15, 60)), (0.5, 0.25), energy)
    other = wave(-8, 12, (0.5,), energy)
    leg_fwd = (lift, other) if lift_side == 0 else (other, lift)
    knee = (np.maximum(knee_l, 0.8 * np.maximum(leg_fwd[0], 0)), np.maximum(knee_r, 0.8 * np.maximum(leg_fwd[1], 0)))
    jump = float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.01, 0.04)]))
    hop = jump * np.maximum(0.0, np.sin(np.pi * beat * t + rng.uniform(0, 2 * np.pi))) ** 4
    arm_lo = float(rng.uniform(5, 60))
    arm_hi = float(rng.uniform(arm_lo + 40, 170))
    series = {
        "x": wave(-0.1, 0.1, (0.25, 0.5), energy),
        "hop": hop,
        "yaw": wave(-35, 35, (0.125, 0.25), energy, centre=float(rng.uniform(-12, 12))),
        "hip_roll": wave(-8, 8, (0.5, 1.0), energy),
        "lean_side": wave(-12, 12, (0.25, 0.5), energy),
        "lean_forward": wave(-4, 16, (1.0, 0.5), energy),
        "twist": wave(-20, 20, (0.5, 0.25), energy),
        "head_roll": wave(-12, 12, (0.5,), energy),
        "head_nod": wave(-10, 12, (1.0,), energy),
        "head_yaw": wave(-28, 28, (0.125, 0.25), energy),
        "mouth": np.clip(wave(-0.3, 1.0, (1.0, 2.0), 1.0), 0.0, 1.0),
        "shrug": pair(0.0, 0.025, (1.0,)),
        "arm_raise": pair(arm_lo, arm_hi, (0.5, 0.25)),
        "arm_forward": pair(-20, 65, (0.5, 1.0)),
        "arm_twist": pair(-45, 45, (0.25, 0.5)),
        "elbow": pair(0, 135, (0.5, 1.0)),
        "elbow_dir": pair(5, 100, (0.25,)),
        "wrist": pair(-20, 30, (1.0,)),
        "grip": pair(0.0, 1.0, (0.5,)),
        "leg_out": pair(0, 28, (0.25, 0.5)),
        "leg_forward": leg_fwd,
        "knee": knee,
        "toe_out": pair(8, 32, (0.125,)),
        "ankle": pair(-5, 25, (0.5,)),
    }
    poses = []
    for k in range(n_frames):
        kw = {}
        for name, val in series.items():
            if isinstance(val, tuple):
                kw[name] = (float(val[0][k]), float(val[1][k]))
            else:
                kw[name] = float(val[k])
        poses.append(Pose(**kw))
    return poses


def sample_background(rng: np.random.Generator, size: int, horizon: float) -> np.ndarray:
    """A static room: a two-colour wall gradient with a few shapes above a floor from ``horizon`` down."""
    y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, size, dtype=np.float32)[None, :]
    hue = float(rng.uniform())
    c0 = np.asarray(_hsv(hue, rng.uniform(0.05, 0.5), rng.uniform(0.55, 0.95)), dtype=np.float32)
    c1 = np.asarray(_hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.05, 0.6), rng.uniform(0.3, 0.8)),
                    dtype=np.float32)
    ang = float(rng.uniform(0, np.pi))
    w = np.clip(0.5 + 0.7 * ((x - 0.5) * math.cos(ang) + (y - 0.5) * math.sin(ang)), 0.0, 1.0)
    img = c0 * (1 - w[..., None]) + c1 * w[..., None]
    img = np.broadcast_to(img, (size, size, 3)).copy()
    for _ in range(int(rng.integers(3, 7))):
        col = tuple(int(v) for v in _hsv(rng.uniform(), rng.uniform(0.1, 0.7), rng.uniform(0.3, 1.0)))
        cx, cy = rng.uniform(0, size), rng.uniform(0, max(horizon, 1.0))
        r = rng.uniform(0.04, 0.14) * size
        if rng.uniform() < 0.5:
            cv2.circle(img, (int(cx), int(cy)), int(r), col, -1, lineType=cv2.LINE_AA)
        else:
            w2, h2 = r * rng.uniform(0.6, 1.6), r * rng.uniform(0.6, 1.6)
            cv2.rectangle(img, (int(cx - w2), int(cy - h2)), (int(cx + w2), int(cy + h2)), col, -1)
            if rng.uniform() < 0.5:
                cv2.rectangle(img, (int(cx - w2), int(cy - h2)), (int(cx + w2), int(cy + h2)),
                              tuple(int(v * 0.5) for v in col), max(1, size // 128))
    fl0 = np.asarray(_hsv(rng.uniform(), rng.uniform(0.05, 0.5), rng.uniform(0.25, 0.7)), dtype=np.float32)
    top = int(np.clip(round(horizon), 0, size))
    fy = np.linspace(0.0, 1.0, max(size - top, 1), dtype=np.float32)[:, None, None]
    img[top:] = fl0 * (0.8 + 0.35 * fy)
    if rng.uniform() < 0.5:  # floor boards
        period = int(rng.integers(size // 16, size // 6))
        cols = np.arange(size) // period % 2 == 0
        img[top:, cols] *= 0.9
    img[max(top - max(1, size // 200), 0):top] *= 0.6
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class VideoPlan:
    """What video ``index`` will show: appearance, per-frame poses, placement and background."""

    look: Look
    poses: list[Pose]
    placement: Placement
    background: np.ndarray


def plan_video(seed: int, index: int, n_frames: int, size: int, fps: float) -> VideoPlan:
    """Everything random about video ``index``: look, dance, placement and background."""
    rng = _rng(seed, index)
    hue = (0.618033988749895 * index + 0.37 * seed + rng.uniform(-0.06, 0.06)) % 1.0
    look = sample_look(rng, hue=hue)
    poses = sample_dance(rng, n_frames, fps)
    ext = np.array([figure_extent(p, look) for p in poses])
    x0, y0 = float(ext[:, 0].min()), float(ext[:, 1].min())
    x1, y1 = float(ext[:, 2].max()), float(ext[:, 3].max())
    margin = 0.02 * size
    usable = size - 2 * margin
    height = float(rng.uniform(0.6, 0.85)) * size
    height = min(height, usable / (y1 - y0), usable / (x1 - x0))
    cx_lo, cx_hi = margin - x0 * height, size - margin - x1 * height
    gy_lo, gy_hi = margin - y0 * height, size - margin - y1 * height
    cx = float(rng.uniform(cx_lo, cx_hi)) if cx_hi > cx_lo else 0.5 * (cx_lo + cx_hi)
    gy = float(rng.uniform(gy_lo, gy_hi)) if gy_hi > gy_lo else 0.5 * (gy_lo + gy_hi)
    placement = Placement(height=height, center_x=cx, ground_y=gy)
    horizon = gy - float(rng.uniform(0.08, 0.3)) * height
    background = sample_background(rng, size, horizon)
    return VideoPlan(look=look, poses=poses, placement=placement, background=background)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _is_complete(root: Path, vid: str, n_frames: int) -> bool:
    folder = root / vid
    if not (folder.is_dir() and (root / "videos" / f"{vid}.mp4").is_file()):
        return False
    try:
        kp = np.load(folder / "keypoints.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    if kp.shape != (n_frames, 133, 3):
        return False
    return all(len(list((folder / sub).glob("*.png"))) == n_frames for sub in ("images", "masks", "densepose"))


def _render_video(root: Path, index: int, n_frames: int, size: int, seed: int, fps: float) -> str:
    """Render video ``index`` into ``root/<id>.tmp/``, encode its mp4, then rename the folder into place.

    Files inside the temporary folder are written plainly (no per-file fsync): the
    folder becomes visible under its final name only by the single rename at the
    end, so a reader never sees a partial video.
    """
    vid = video_id(index)
    final = root / vid
    tmp = root / f"{vid}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("images", "masks", "densepose"):
        (tmp / sub).mkdir(parents=True)
    plan = plan_video(seed, index, n_frames, size, fps)
    frames = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    keypoints = np.empty((n_frames, 133, 3), dtype=np.float32)
    for k, pose in enumerate(plan.poses):
        fr = figure_frame(pose, plan.look, size, plan.placement, plan.background)
        frames[k] = fr.image
        keypoints[k] = fr.keypoints
        name = f"{k:04d}.png"
        (tmp / "images" / name).write_bytes(encode_image(fr.image))
        (tmp / "masks" / name).write_bytes(encode_image(fr.mask))
        (tmp / "densepose" / name).write_bytes(encode_image(fr.iuv))
    (tmp / "keypoints.npy").write_bytes(_npy_bytes(keypoints))
    write_video(root / "videos" / f"{vid}.mp4", frames, fps=fps)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return vid


def _params(n_videos: int, n_frames: int, size: int, seed: int, fps: float) -> dict:
    return {"generator_version": GENERATOR_VERSION, "seed": int(seed), "n_videos": int(n_videos),
            "n_frames": int(n_frames), "size": int(size), "fps": float(fps)}


def _check_existing(path: Path, params: dict) -> None:
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc}); remove it or pick another root") from None
    diff = {k: (old.get(k), v) for k, v in params.items() if old.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: {a!r} there vs {b!r} asked" for k, (a, b) in diff.items())
        raise ValueError(f"{path}: this folder holds a synthetic dataset made with other settings ({detail}); "
                         f"use another root or delete the folder")


def generate(root: Path, n_videos: int = 36, n_frames: int = 48, size: int = 512, seed: int = 0,
             fps: float = 24.0, progress: bool = True, workers: int = 1) -> list[str]:
    """Write the synthetic dataset under root; returns the video ids. Skips videos already complete (resumable).

    `workers` > 1 renders videos in parallel processes; every video depends only on
    (seed, its index), so the bytes are the same either way.
    """
    root = Path(root)
    if n_videos < 1 or n_frames < 1:
        raise ValueError(f"generate: n_videos and n_frames must be >= 1, got {n_videos} and {n_frames}")
    if size < 32 or size % 2:
        raise ValueError(f"generate: size must be an even number >= 32 (x264 yuv420p), got {size}")
    if not fps > 0:
        raise ValueError(f"generate: fps must be positive, got {fps}")
    params = _params(n_videos, n_frames, size, seed, fps)
    _check_existing(root / MANIFEST, params)
    _check_existing(root / _PARTIAL, params)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / MANIFEST).is_file():
        atomic_write_json(root / _PARTIAL, params)
    ids = [video_id(i) for i in range(n_videos)]
    todo = [i for i, vid in enumerate(ids) if not _is_complete(root, vid, n_frames)]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="synthetic videos", unit="video")
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_render_video, root, i, n_frames, size, seed, fps) for i in todo]
            for fut in as_completed(futures):
                fut.result()
                if bar is not None:
                    bar.update(1)
    else:
        for i in todo:
            _render_video(root, i, n_frames, size, seed, fps)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    for vid in ids:  # debris of an interrupted run whose video was finished since
        shutil.rmtree(root / f"{vid}.tmp", ignore_errors=True)
    atomic_write_json(root / MANIFEST, {**params, "videos": ids})
    (root / _PARTIAL).unlink(missing_ok=True)
    return ids
