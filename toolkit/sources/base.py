"""What every dataset adapter produces, and the one path that turns it into frames.

An adapter only *finds* videos: it returns SourceVideo records (where the frames
are, which split, crop box and frame range if the dataset defines them, and any
annotation files that ship with it). `iter_source_chunks` then reads any of them
the same way: decode (decord for video files, OpenCV for frame folders), pick
frames for the requested fps, crop, resize, and transform shipped annotations to
the stored frame's coordinates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from toolkit import video as vid
from toolkit.io import sha256_file


@dataclass(frozen=True)
class SourceVideo:
    """One video of a dataset as found on disk."""

    video_id: str
    split: str
    path: Path                                     # a video file or a folder of frame images
    root: Path                                     # dataset root, for relative paths in the videos table
    fps: float | None = None                       # frame rate when the source cannot tell (frame folders)
    crop: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in source pixels
    frame_range: tuple[int, int] | None = None     # [start, end) source frame indices
    masks: Path | None = None                      # folder of masks named like the frames
    densepose: Path | None = None                  # folder of IUV images named like the frames
    keypoints: Path | None = None                  # .npy (n_source_frames, 133, 3) ground truth
    densepose_order: str = "IUV"                   # channel order (R, G, B) of the DensePose images

    @property
    def is_frame_folder(self) -> bool:
        return self.path.is_dir()

    @property
    def relative_path(self) -> str:
        try:
            return str(self.path.relative_to(self.root))
        except ValueError:
            return str(self.path)


MIN_SOURCE_SIZE = 8


@dataclass
class Chunk:
    """Consecutive stored frames of one video with their transformed annotations."""

    frames: np.ndarray                      # (t, H, W, 3) uint8 RGB at stored size
    source_frames: np.ndarray               # (t,) source frame indices (a frame folder: the numbers in its names)
    timestamps: np.ndarray                  # (t,) seconds: the source frames' presentation times
    ground_truth: dict[str, np.ndarray] = field(default_factory=dict)  # keypoints (t,133,3), iuv (t,H,W,3)
    masks: list[np.ndarray | None] = field(default_factory=list)       # (H, W) uint8 or None per frame


@dataclass(frozen=True)
class SourceGeometry:
    """How source frames map to stored frames."""

    source_fps: float
    fps: float
    indices: tuple[int, ...]                 # source frame indices kept, in order
    crop: tuple[int, int, int, int]          # x0, y0, x1, y1 applied before resizing
    width: int                               # stored size
    height: int


def stored_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """Stored (width, height): shorter side scaled to `size`, aspect kept, both even (video codecs need it)."""
    if not size:
        return width - width % 2, height - height % 2
    scale = size / min(width, height)
    w, h = round(width * scale), round(height * scale)
    return w - w % 2, h - h % 2


def resample_indices(n_frames: int, source_fps: float, fps: float | None) -> list[int]:
    """Source frame indices nearest to a regular grid at `fps` (all frames when fps is None or not lower)."""
    if not fps or fps >= source_fps:
        return list(range(n_frames))
    duration = n_frames / source_fps
    times = np.arange(0.0, duration, 1.0 / fps)
    idx = np.minimum(np.round(times * source_fps).astype(int), n_frames - 1)
    return sorted(set(idx.tolist()))


def source_checksum(sv: SourceVideo) -> str:
    """sha256 of the video file, or of the frame files' own hashes in order for a frame folder."""
    if not sv.is_frame_folder:
        return sha256_file(sv.path)
    h = hashlib.sha256()
    for f in vid.list_frame_files(sv.path):
        h.update(f.name.encode() + b"\0" + bytes.fromhex(sha256_file(f)))
    return h.hexdigest()


def path_stat(path: Path) -> list:
    """[size, mtime_ns] of a video file, or [name, size, mtime_ns] of each frame file of a frame folder: when it
    changes, the source must be hashed again to know whether its content did."""
    path = Path(path)
    if not path.is_dir():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    return [[f.name, st.st_size, st.st_mtime_ns] for f in vid.list_frame_files(path) for st in [f.stat()]]


def _probe(sv: SourceVideo) -> tuple[int, float, int, int, list[Path] | None]:
    """(n_frames, fps, width, height, frame files or None) of the source."""
    if sv.is_frame_folder:
        files = vid.list_frame_files(sv.path)
        if not files:
            raise vid.DecodeError(f"{sv.path}: frame folder has no images")
        h, w = vid.read_image(files[0]).shape[:2]
        return len(files), float(sv.fps or 30.0), w, h, files
    info = vid.video_info(sv.path)
    return info.n_frames, float(sv.fps or info.fps), info.width, info.height, None


def plan_geometry(sv: SourceVideo, size: int | None, fps: float | None) -> SourceGeometry:
    """Decide which source frames are kept and at what size, without decoding them all."""
    n, source_fps, w, h, _ = _probe(sv)
    if w < MIN_SOURCE_SIZE or h < MIN_SOURCE_SIZE:
        raise ValueError(f"{sv.path}: the source is {w}x{h} pixels; a source must be at least "
                         f"{MIN_SOURCE_SIZE}x{MIN_SOURCE_SIZE} to hold a person")
    start, end = sv.frame_range or (0, n)
    end = min(end, n)
    if start >= end:
        raise ValueError(f"{sv.path}: frame range {sv.frame_range} is empty for {n} frames")
    indices = [start + i for i in resample_indices(end - start, source_fps, fps)]
    x0, y0, x1, y1 = sv.crop or (0, 0, w, h)
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"{sv.path}: crop box {sv.crop} is outside the {w}x{h} frame")
    out_w, out_h = stored_size(x1 - x0, y1 - y0, size)
    out_fps = source_fps if not fps or fps >= source_fps else float(fps)
    return SourceGeometry(source_fps, out_fps, tuple(indices), (x0, y0, x1, y1), out_w, out_h)


def _transform(image: np.ndarray, geo: SourceGeometry, nearest: bool = False) -> np.ndarray:
    x0, y0, x1, y1 = geo.crop
    return vid.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), geo.width, geo.height, nearest=nearest)


def transform_keypoints(kp: np.ndarray, geo: SourceGeometry) -> np.ndarray:
    """Map (..., 133, 3) source-pixel keypoints into stored-frame pixels (scores unchanged, absent stay 0)."""
    x0, y0, x1, y1 = geo.crop
    out = np.array(kp, dtype=np.float32, copy=True)
    sx, sy = geo.width / (x1 - x0), geo.height / (y1 - y0)
    absent = out[..., 2] <= 0
    out[..., 0] = (out[..., 0] - x0) * sx
    out[..., 1] = (out[..., 1] - y0) * sy
    out[absent] = 0.0
    return out


def _sidecar(folder: Path | None, frame_file: Path | None, index: int) -> Path | None:
    """The annotation file for a frame: same stem as the frame file, or the index, in any image format."""
    if folder is None or not folder.is_dir():
        return None
    stems = [frame_file.stem] if frame_file is not None else []
    stems += [f"{index:04d}", f"{index + 1:04d}"] if frame_file is None else []
    for stem in stems:
        for ext in (".png", ".jpg", ".jpeg", ".webp"):
            p = folder / f"{stem}{ext}"
            if p.exists():
                return p
    return None


def _to_iuv(image: np.ndarray, order: str, path: Path) -> np.ndarray:
    """Reorder a DensePose image's channels to (I, U, V)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise vid.DecodeError(f"{path}: DensePose image must have 3 channels, got shape {image.shape}")
    if sorted(order) != ["I", "U", "V"]:
        raise ValueError(f"densepose channel order must be a permutation of IUV, got {order!r}")
    return np.ascontiguousarray(image[..., [order.index(c) for c in "IUV"]])


def _source_numbers_and_times(sv: SourceVideo, files: list[Path] | None, geo: SourceGeometry
                              ) -> tuple[list[int], np.ndarray]:
    """Each source frame's number and presentation time (seconds). A video keeps its container's times (a
    variable frame rate stays variable); a frame folder the numbers in its file names, timed at the folder's
    frame rate; where neither is known, positions at the nominal rate."""
    if files is not None:
        numbers = vid.frame_numbers(files) or list(range(len(files)))
        return numbers, np.asarray(numbers, np.float64) / geo.source_fps
    times = vid.frame_times(sv.path)
    n = max(geo.indices) + 1
    if times is None or len(times) < n:
        times = np.arange(n, dtype=np.float64) / geo.source_fps
    return list(range(len(times))), times


def iter_source_chunks(sv: SourceVideo, geo: SourceGeometry, chunk: int = 32) -> Iterator[Chunk]:
    """Read the planned frames of a source video in chunks, with shipped annotations transformed."""
    files = vid.list_frame_files(sv.path) if sv.is_frame_folder else None
    gt_kp = None
    if sv.keypoints is not None:
        gt_kp = np.load(sv.keypoints)
        if gt_kp.ndim != 3 or gt_kp.shape[1:] != (133, 3):
            raise ValueError(f"{sv.keypoints}: expected (n_frames, 133, 3) keypoints, got {gt_kp.shape}")
        if gt_kp.shape[0] <= max(geo.indices):
            raise ValueError(f"{sv.keypoints}: {gt_kp.shape[0]} keypoint frames for a source of "
                             f"{max(geo.indices) + 1}+ frames")
    video_chunks = None if files is not None else vid.iter_video(sv.path, geo.indices, chunk=chunk)
    numbers, times = _source_numbers_and_times(sv, files, geo)
    for start in range(0, len(geo.indices), chunk):
        idx = geo.indices[start:start + chunk]
        if files is not None:
            raw = [vid.read_image(files[i]) for i in idx]
            shapes = {r.shape for r in raw}
            if len(shapes) != 1 or raw[0].ndim != 3:
                raise vid.DecodeError(f"{sv.path}: frames differ in size or are not RGB: {sorted(shapes)}")
        else:
            raw = list(next(video_chunks))
        frames = np.stack([_transform(f, geo) for f in raw])
        out = Chunk(frames=frames, source_frames=np.asarray([numbers[i] for i in idx], dtype=np.int32),
                    timestamps=np.asarray([times[i] for i in idx], dtype=np.float64))
        if gt_kp is not None:
            out.ground_truth["keypoints"] = transform_keypoints(gt_kp[list(idx)], geo)
        if sv.densepose is not None:
            iuv = []
            for i in idx:
                p = _sidecar(sv.densepose, files[i] if files else None, i)
                if p is None:
                    raise FileNotFoundError(f"{sv.densepose}: no DensePose image for frame {i}")
                iuv.append(_transform(_to_iuv(vid.read_image(p), sv.densepose_order, p), geo, nearest=True))
            out.ground_truth["iuv"] = np.stack(iuv)
        for i in idx:
            p = _sidecar(sv.masks, files[i] if files else None, i)
            out.masks.append(None if p is None else _transform(vid.read_image(p, grayscale=True), geo, nearest=True))
        yield out
