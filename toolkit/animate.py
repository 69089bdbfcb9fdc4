"""`toolkit animate`: one reference image + a driving pose sequence -> a video, with any registered method.

The inputs become the same :class:`~toolkit.harness.method.Conditions` the harness
hands a method, so a method animates exactly as it is evaluated. Driving poses
come from a shard video, a keypoints ``.npy`` file, or a video annotated on the
fly with a pose backend; by default they are aligned to the reference person's
body (UniAnimate's alignment, :func:`toolkit.annotate.align.align_pose_sequence`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from toolkit.harness.method import Conditions, Method
from toolkit.shards.reader import Shards
from toolkit.video import read_image, read_video, video_info

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"}


@dataclass
class Driving:
    """A driving pose sequence: keypoints (T, 133, 3) in pixels of frames of `size` (height, width), at `fps`;
    from shards also the IUV maps (T, H, W, 3) that DensePose-driven methods (magicanimate) need."""

    keypoints: np.ndarray
    size: tuple[int, int]
    fps: float
    source: str
    iuv: np.ndarray | None = None


def _split_ref(spec: str) -> tuple[str, int]:
    video_id, _, frame = spec.partition("@")
    if frame and not frame.isdigit():
        raise ValueError(f"--reference {spec}: the frame after @ must be a number")
    return video_id, int(frame or 0)


def load_reference(spec: str, shards: Shards | None, pose_backend: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(image, keypoints or None): an image file (annotated with `pose_backend` if given) or VIDEO_ID[@FRAME] of the shards."""
    path = Path(spec)
    if path.is_file():
        image = read_image(path)
        if pose_backend is None:
            return image, None
        from toolkit.annotate.backends import get_pose_backend

        return image, get_pose_backend(pose_backend)(image[None])[0]
    if shards is None:
        raise FileNotFoundError(f"--reference {spec}: no such image file (a shard video id needs --shards)")
    video_id, frame = _split_ref(spec)
    row = _video(shards, video_id, "--reference")
    if frame >= int(row.n_frames):
        raise ValueError(f"--reference {spec}: {video_id} has {int(row.n_frames)} frames")
    image = shards.frames(video_id, [frame])[0]
    kp = shards.keypoints(video_id, [frame])[0] if row.has_keypoints else None
    return image, kp


def _video(shards: Shards, video_id: str, option: str):
    try:
        return shards.video(video_id)
    except KeyError:
        raise ValueError(f"{option} {video_id}: not an image file and not a video of {shards.root} "
                         f"(e.g. {', '.join(shards.videos.video_id[:3])})") from None


def load_driving(spec: str, shards: Shards | None, pose_backend: str | None, reference_size: tuple[int, int]) -> Driving:
    """Driving keypoints from a `.npy` (T, 133, 3) in reference pixels, a video file, or a shard video id."""
    path = Path(spec)
    if path.suffix == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"--pose {spec}: no such file")
        kp = np.load(path, allow_pickle=False)
        if kp.ndim != 3 or kp.shape[1:] != (133, 3):
            raise ValueError(f"--pose {spec}: expected keypoints of shape (T, 133, 3), got {kp.shape}")
        return Driving(kp.astype(np.float32), reference_size, 25.0, str(path))
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--pose {spec}: no such video file")
        if pose_backend is None:
            raise ValueError(f"--pose {spec}: a driving video is annotated on the fly; name a backend with "
                             "--pose-backend (e.g. mediapipe, dwpose)")
        from toolkit.annotate.backends import get_pose_backend

        backend = get_pose_backend(pose_backend)  # unavailable backends fail here, before decoding
        frames = read_video(path)
        info = video_info(path)
        return Driving(backend(frames), frames.shape[1:3], float(info.fps or 25.0), str(path))
    if shards is None:
        raise FileNotFoundError(f"--pose {spec}: not a .npy, not a video file, and no --shards to look it up in")
    row = _video(shards, spec, "--pose")
    if not row.has_keypoints:
        raise ValueError(f"--pose {spec}: the shards in {shards.root} have no keypoints for it")
    return Driving(shards.keypoints(spec), (int(row.height), int(row.width)), float(row.fps), f"{shards.root}:{spec}",
                   iuv=shards.iuv(spec))


MIN_REFERENCE_SIDE = 8


def even_size(height: int, width: int) -> tuple[int, int]:
    """The largest even (height, width) within the given one: what an H.264 (yuv420p) video can hold."""
    return height - height % 2, width - width % 2


def build_conditions(reference: np.ndarray, reference_keypoints: np.ndarray | None, driving: Driving,
                     frames: int | None = None, align: bool = True) -> Conditions:
    """The Conditions a method animates from: driving keypoints moved into the reference's pixels.

    IUV maps (driving from shards) are fitted to the reference size as they are: alignment moves
    keypoints only, so DensePose-driven methods follow the driving person's own body shape, as
    MagicAnimate does. A reference of odd height or width loses its last row or column, as
    H.264 video (yuv420p) needs even sizes; keypoints keep their pixel coordinates.
    """
    kp = driving.keypoints[:frames] if frames else driving.keypoints
    if frames and frames > len(driving.keypoints):
        raise ValueError(f"--frames {frames}: the driving sequence has only {len(driving.keypoints)} frames")
    h, w = reference.shape[:2]
    if min(h, w) < MIN_REFERENCE_SIDE:
        raise ValueError(f"the reference image is {w}x{h} pixels: too small to animate (at least "
                         f"{MIN_REFERENCE_SIDE}x{MIN_REFERENCE_SIDE})")
    if align:
        if reference_keypoints is None:
            raise ValueError("pose alignment needs the reference's keypoints: give --pose-backend to annotate the "
                             "reference image, use a shard frame as reference, or pass --no-align")
        from toolkit.annotate.align import align_pose_sequence

        kp = align_pose_sequence(kp, reference_keypoints)
    elif driving.size != (h, w):
        sy, sx = h / driving.size[0], w / driving.size[1]
        kp = kp * np.array([sx, sy, 1], np.float32)
    h, w = even_size(h, w)
    reference = reference[:h, :w]
    iuv = None
    if driving.iuv is not None:
        from toolkit.conditions import fit_image

        iuv = np.stack([fit_image(m, (h, w), nearest=True) for m in driving.iuv[:len(kp)]])
    return Conditions(video_id="animate", n_frames=len(kp), height=h, width=w, fps=driving.fps,
                      reference=reference, reference_keypoints=reference_keypoints if reference_keypoints is not None
                      else kp[0], keypoints=np.asarray(kp, np.float32), iuv=iuv)


def animate(method: Method, cond: Conditions, progress: bool = False) -> Iterator[np.ndarray]:
    """The method's frames as checked (k, H, W, 3) uint8 chunks, streamed (see `Method.generate_chunks`).

    With `progress`, tqdm bars show the frames made and, for a method that reports its sampling
    (`Method.progress`: diffusion methods), the model evaluations: windows x sampling steps.
    """
    with contextlib.ExitStack() as stack:
        frames, sampling = None, []
        if progress:
            from tqdm.auto import tqdm

            frames = stack.enter_context(tqdm(total=cond.n_frames, desc="frames", unit="frame", dynamic_ncols=True))

            def advance(done: int, planned: int) -> None:
                if not sampling:  # shown once the method reports
                    sampling.append(stack.enter_context(tqdm(total=0, desc="sampling", unit="eval",
                                                             dynamic_ncols=True)))
                sampling[0].total += planned
                sampling[0].update(done)
                sampling[0].refresh()

            method.progress = advance
        try:
            for chunk in _checked_chunks(method, cond):
                if frames is not None:
                    frames.update(len(chunk))
                yield chunk
        finally:
            method.progress = None


def _checked_chunks(method: Method, cond: Conditions) -> Iterator[np.ndarray]:
    done = 0
    for chunk in method.generate_chunks(cond):
        chunk = np.asarray(chunk)
        if chunk.ndim != 4 or chunk.shape[1:] != (cond.height, cond.width, 3) or chunk.dtype != np.uint8:
            raise ValueError(f"method {method.name} returned {chunk.shape} {chunk.dtype}, expected "
                             f"(k, {cond.height}, {cond.width}, 3) uint8")
        done += len(chunk)
        if done > cond.n_frames:
            raise ValueError(f"method {method.name} returned more than the {cond.n_frames} frames asked for")
        yield chunk
    if done != cond.n_frames:
        raise ValueError(f"method {method.name} returned {done} frames, expected {cond.n_frames}")
