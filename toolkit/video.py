"""The one place that decodes and encodes video and frame images.

Decoding goes through decord (installed from the maintained ``decord2``
distribution, which provides the same ``decord`` module), the library the field's
training loaders use. Encoding goes through PyAV (libx264). Still images are
encoded and decoded with OpenCV. Every function speaks RGB uint8 arrays.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class DecodeError(RuntimeError):
    """A video or image could not be decoded; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    width: int
    height: int


def _quiet_decord():
    """decord with its bundled FFmpeg's log silenced (errors still arrive as exceptions)."""
    import decord

    global _DECORD_QUIET
    if not _DECORD_QUIET:
        try:
            decord.logging.set_level(decord.logging.QUIET)
        except AttributeError:  # a decord without the logging module: nothing to silence
            pass
        _DECORD_QUIET = True
    return decord


_DECORD_QUIET = False


def _probe(path: Path) -> None:
    """Open the container with PyAV first (its FFmpeg log is off by default), so a broken file fails here with
    one clean message, before decord, whose C++ layer prints its own error lines on stderr, ever sees it."""
    import av

    try:
        with av.open(str(path)) as container:
            has_video = bool(container.streams.video)
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or _first_line(exc)
        raise DecodeError(f"{path}: not a readable video ({reason})") from None
    if not has_video:
        raise DecodeError(f"{path}: not a readable video (no video stream)")


def _open(path: Path):
    path = Path(path)
    if not path.exists():
        raise DecodeError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DecodeError(f"{path}: file is empty (0 bytes)")
    _probe(path)
    decord = _quiet_decord()
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises its own DECORDError, or RuntimeError
        raise DecodeError(f"{path}: not a readable video ({_first_line(exc)})") from None
    if len(reader) == 0:
        raise DecodeError(f"{path}: video has no frames")
    return reader


def _first_line(exc: BaseException) -> str:
    """The first line of an error, without decord's "[12:00:00] /project/src/file.cc:218: " source prefixes."""
    import re

    text = re.sub(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ", "", str(exc)).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate and size of a video file."""
    reader = _open(Path(path))
    h, w = _get_batch(reader, Path(path), [0]).shape[1:3]
    return VideoInfo(n_frames=len(reader), fps=float(reader.get_avg_fps()), width=int(w), height=int(h))


def frame_times(path: str | os.PathLike) -> np.ndarray | None:
    """Presentation time in seconds of every frame of a video (variable frame rates kept as they are), or None
    where the container does not tell."""
    path = Path(path)
    reader = _open(path)
    try:
        times = np.asarray(reader.get_frame_timestamp(list(range(len(reader)))), dtype=np.float64)[:, 0]
    except Exception:  # decord could not say: the caller falls back to evenly spaced times
        return None
    if len(times) != len(reader) or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        return None
    return times


def frame_numbers(files: Sequence[Path]) -> list[int] | None:
    """The frame numbers in a frame folder's file names (`frame_0007.png` -> 7), or None unless every name ends
    in a number and the numbers rise: a folder numbered 0, 1, 2, 7, 8, 20 keeps those numbers."""
    import re

    numbers = []
    for f in files:
        m = re.search(r"(\d+)$", Path(f).stem)
        if m is None:
            return None
        numbers.append(int(m.group(1)))
    return numbers if all(b > a for a, b in zip(numbers, numbers[1:])) else None


def _get_batch(reader, path: Path, idx: list[int]) -> np.ndarray:
    try:
        return reader.get_batch(idx).asnumpy()
    except Exception as exc:
        if "size must exactly match" in str(exc):
            # decord2 3.4 miscomputes the row stride for a few narrow widths (16, 24, 32, 48, 96, 144
            # seen here); PyAV decodes the same stream correctly.
            return _read_pyav(path, idx)
        raise DecodeError(f"{path}: decoding failed near frame {idx[0] if idx else 0} ({_first_line(exc)})") from None


def _read_pyav(path: Path, idx: list[int]) -> np.ndarray:
    import av

    wanted = set(idx)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if len(got) == len(wanted):
                break
    missing = wanted - got.keys()
    if missing:
        raise DecodeError(f"{path}: frames {sorted(missing)[:5]} could not be decoded")
    return np.stack([got[i] for i in idx])


def read_video(path: str | os.PathLike, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames of a video as a (T, H, W, 3) RGB uint8 array (all frames if indices is None)."""
    path = Path(path)
    reader = _open(path)
    idx = list(range(len(reader))) if indices is None else [int(i) for i in indices]
    if idx and (min(idx) < 0 or max(idx) >= len(reader)):
        raise DecodeError(f"{path}: frame index out of range 0..{len(reader) - 1}")
    return np.ascontiguousarray(_get_batch(reader, path, idx))


def iter_video(path: str | os.PathLike, indices: Sequence[int] | None = None, chunk: int = 32) -> Iterator[np.ndarray]:
    """Decode frames in chunks of (t, H, W, 3) so long videos never sit whole in memory."""
    path = Path(path)
    reader = _open(path)
    idx = list(range(len(reader))) if indices is None else [int(i) for i in indices]
    for start in range(0, len(idx), chunk):
        yield _get_batch(reader, path, idx[start:start + chunk])


def _frames_of(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """(H, W, 3) frames one at a time from an array, a sequence of frames, or an iterable of (k, H, W, 3) chunks."""
    for item in frames:
        arr = np.asarray(item, dtype=np.uint8)
        if arr.ndim == 4:
            yield from arr
        else:
            yield arr


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float = 25.0,
                codec: str = "libx264", crf: int | None = None, gop: int | None = None,
                pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB uint8 frames to a video file atomically (x264 defaults unless crf/gop are given).

    `frames` may be an iterable of frames or of (k, H, W, 3) chunks, e.g. a generator,
    so a long video is written as it is made without holding it all in memory.
    The bytes are not guaranteed reproducible: libx264 through PyAV was seen here to give
    slightly different streams for the same frames on a busy machine, even single-threaded.
    """
    import av
    from fractions import Fraction

    path = Path(path)
    stream_frames = _frames_of(frames)
    first = next(stream_frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise ValueError(f"{path}: yuv420p needs even width and height, got {w}x{h}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    options = {}
    if crf is not None:
        options["crf"] = str(crf)
    if gop is not None:
        options["g"] = str(gop)
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            for frame in itertools.chain([first], stream_frames):
                if frame.shape[:2] != (h, w):
                    raise ValueError(f"{path}: frame of {frame.shape[1]}x{frame.shape[0]} after {w}x{h} frames")
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encode an RGB (H, W, 3) or single-channel (H, W) uint8 image to PNG, JPEG or lossless WebP bytes."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"encode_image expects uint8, got {img.dtype}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    fmt = fmt.lower()
    if fmt == "png":
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif fmt in ("jpeg", "jpg"):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "webp":  # quality above 100 selects lossless WebP in OpenCV
        ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])
    else:
        raise ValueError(f"unknown image format {fmt!r}: use png, jpeg or webp")
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {img.shape} image as {fmt}")
    return buf.tobytes()


def decode_image(data: bytes, grayscale: bool = False, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to RGB (H, W, 3) uint8, or (H, W) uint8 with grayscale=True.

    Colour images are read the way ``cv2.imread`` reads them by default (any image to
    8-bit 3-channel, EXIF orientation applied), as the field's evaluation code does.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. more pixels than OpenCV decodes
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise DecodeError(f"{name}: too many pixels to decode (OpenCV's limit is 2**30; resize the image, or "
                              "raise the limit with the OPENCV_IO_MAX_IMAGE_PIXELS environment variable)") from None
        raise DecodeError(f"{name}: not a decodable image ({str(exc).strip().splitlines()[-1]})") from None
    if img is None:
        raise DecodeError(f"{name}: not a decodable image ({len(data)} bytes)")
    return img if grayscale else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode_image_channel(data: bytes, channel: int, name: str = "<bytes>") -> np.ndarray:
    """One RGB channel (0, 1 or 2) of encoded image bytes as (H, W) uint8: `decode_image(data)[..., channel]`
    without the colour swap and the copy of the other two planes (e.g. the part index of an IUV map)."""
    if channel not in (0, 1, 2):
        raise ValueError(f"channel must be 0, 1 or 2 (R, G, B), got {channel}")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DecodeError(f"{name}: not a decodable image ({len(data)} bytes)")
    return cv2.extractChannel(img, 2 - channel)


def encode_plane(plane: np.ndarray) -> bytes:
    """A label plane (H, W) uint8 as the shards store it (DensePose part indices, pose label canvases): the raw
    plane, zstd-compressed.

    Decoding takes a tenth of the time of a PNG (about 0.1 ms against 1.6 ms for a 512x512 IUV map); the
    plane's size is the frame's, from the same row."""
    import pyarrow as pa

    plane = np.ascontiguousarray(plane)
    if plane.ndim != 2 or plane.dtype != np.uint8:
        raise ValueError(f"a label plane is (H, W) uint8, got {plane.shape} {plane.dtype}")
    return pa.Codec("zstd").compress(plane.tobytes(), asbytes=True)


def decode_plane(data: bytes, height: int, width: int, name: str = "<bytes>") -> np.ndarray:
    """The (height, width) uint8 plane of `encode_plane` bytes; DecodeError names what is wrong."""
    import pyarrow as pa

    try:
        raw = pa.Codec("zstd").decompress(data, decompressed_size=height * width, asbytes=True)
    except (pa.ArrowException, OSError) as exc:
        raise DecodeError(f"{name}: not a zstd-compressed {width}x{height} label plane ({exc})") from None
    if len(raw) != height * width:
        raise DecodeError(f"{name}: label plane holds {len(raw)} bytes, a {width}x{height} frame needs "
                          f"{height * width}")
    return np.frombuffer(raw, np.uint8).reshape(height, width)


def decode_images_chw(blobs: Sequence[bytes], transform=None, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded colour images into one (N, 3, H, W) RGB uint8 array, the layout models take.

    Pixels equal `decode_image`'s. `transform` (HWC -> HWC, e.g. resize + crop) runs
    on each decoded image first; the BGR -> RGB swap and the HWC -> CHW reordering
    happen in one cv2.split into the output planes, which is several times cheaper
    than a transpose copy.
    """
    out = None
    for i, data in enumerate(blobs):
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DecodeError(f"{name}: image {i} is not decodable ({len(data)} bytes)")
        if transform is not None:
            img = transform(img)
        if out is None:
            out = np.empty((len(blobs), 3, *img.shape[:2]), np.uint8)
        if img.shape[:2] != out.shape[2:]:
            raise DecodeError(f"{name}: image {i} is {img.shape[1]}x{img.shape[0]}, "
                              f"the first was {out.shape[3]}x{out.shape[2]}")
        cv2.split(np.ascontiguousarray(img), [out[i, 2], out[i, 1], out[i, 0]])
    if out is None:
        raise ValueError(f"{name}: no images to decode")
    return out


def read_image(path: str | os.PathLike, grayscale: bool = False) -> np.ndarray:
    """Read an image file as RGB uint8 (or (H, W) with grayscale=True); DecodeError names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise DecodeError(f"{path}: file is empty (0 bytes)")
    return decode_image(data, grayscale=grayscale, name=str(path))


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB or single-channel uint8 image atomically; the format follows the suffix."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    data = encode_image(image, "jpeg" if fmt == "jpg" else fmt)
    from toolkit.io import atomic_write_bytes

    return atomic_write_bytes(path, data)


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder in natural order (frame2 before frame10)."""
    import re

    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    key = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)]  # noqa: E731
    return sorted(files, key=key)


def resize(image: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    """Resize to (height, width): area filter when shrinking, bicubic when growing, nearest for labels."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if width * height < w * h else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)
