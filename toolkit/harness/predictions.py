"""Scoring another system's outputs: find, validate and load `DIR/<video_id>/<frame>.png` or `DIR/<video_id>.mp4`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit import video as vid


class PredictionsInvalid(ValueError):
    """Problems found in a predictions folder, all of them, one per line."""

    def __init__(self, root: Path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{root}: {len(problems)} problem(s) in the predictions (nothing was scored):\n{lines}\n"
                         "fix them, or pass --allow-partial to score the videos that are complete")


@dataclass(frozen=True)
class PredictedVideo:
    video_id: str
    path: Path                  # frame folder or video file
    codec: str                  # "png frames", "jpeg frames", "mp4 (h264)", ...
    note: str | None = None     # how frames were converted to RGB (grayscale, alpha), if they were

    def load(self) -> np.ndarray:
        if self.path.is_dir():
            return np.stack([vid.read_image(f) for f in vid.list_frame_files(self.path)])
        return vid.read_video(self.path)


# Image modes read as RGB by decoding as the field's code does (cv2.imread: gray replicated, alpha dropped).
_CONVERTED = {"L": "grayscale", "LA": "grayscale with alpha", "I": "16-bit grayscale", "I;16": "16-bit grayscale",
              "RGBA": "RGBA (alpha dropped)", "P": "palette", "PA": "palette with alpha", "CMYK": "CMYK",
              "1": "1-bit"}


def _frame_folder_problems(d: Path, n: int, size: tuple[int, int], exact_size: bool,
                           modes: set[str] | None = None) -> list[str]:
    """Every problem of a frame folder; `modes` collects the image modes seen (to report conversions)."""
    files = vid.list_frame_files(d)
    problems = []
    if len(files) != n:
        problems.append(f"{d}: {len(files)} frames, the ground truth has {n}")
    for f in files:
        try:  # decoded in full: a file whose header and checksums pass can still fail to decompress
            with Image.open(f) as im:
                im.load()
                wh = im.size
                if modes is not None:
                    modes.add(im.mode)
        except Exception as exc:
            problems.append(f"{f}: unreadable image ({type(exc).__name__}: {exc})")
            continue
        if exact_size and wh != size:
            problems.append(f"{f}: {wh[0]}x{wh[1]}, the ground truth is {size[0]}x{size[1]}")
            break  # one size report per video is enough
    return problems


def _video_problems(p: Path, n: int, size: tuple[int, int], exact_size: bool) -> list[str]:
    try:
        info = vid.video_info(p)
    except vid.DecodeError as exc:
        return [str(exc)]
    problems = []
    if info.n_frames != n:
        problems.append(f"{p}: {info.n_frames} frames, the ground truth has {n}")
    if exact_size and (info.width, info.height) != size:
        problems.append(f"{p}: {info.width}x{info.height}, the ground truth is {size[0]}x{size[1]}")
    return problems


def find_predictions(root: str | Path, expected: dict[str, tuple[int, int, int]], exact_size: bool
                     ) -> tuple[dict[str, PredictedVideo], list[str]]:
    """Match predictions to the expected videos {id: (n_frames, width, height)}.

    Returns the valid predictions and every problem found (missing, extra, frame
    count, size, unreadable); a video with a problem is not in the first result.
    Frames that are not RGB (grayscale, RGBA, palette) are accepted and read as RGB
    the way cv2.imread reads them; each such video's `note` says so.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: predictions folder does not exist")
    entries: dict[str, Path] = {}
    problems: list[str] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        key = p.name if p.is_dir() else p.stem
        if p.is_file() and p.suffix.lower() not in vid.VIDEO_EXTENSIONS:
            continue
        if key in entries:
            problems.append(f"{p}: a second prediction for video {key} (also {entries[key]})")
            continue
        entries[key] = p
    for key in sorted(set(entries) - set(expected)):
        problems.append(f"{entries[key]}: extra prediction, no video {key!r} in this split")
    for key in sorted(set(expected) - set(entries)):
        problems.append(f"{root}/{key}: missing prediction (expected {key}/<frame>.png or {key}.mp4)")
    found = {}
    for key in sorted(set(expected) & set(entries)):
        n, w, h = expected[key]
        p = entries[key]
        modes: set[str] = set()
        if p.is_dir():
            own = _frame_folder_problems(p, n, (w, h), exact_size, modes)
            files = vid.list_frame_files(p)
            codec = f"{files[0].suffix.lstrip('.').lower()} frames" if files else "frames"
        else:
            own = _video_problems(p, n, (w, h), exact_size)
            codec = f"{p.suffix.lstrip('.').lower()} video"
        problems += own
        converted = sorted(_CONVERTED.get(m, m) for m in modes if m != "RGB")
        note = f"{', '.join(converted)} frames read as RGB" if converted else None
        if not own:
            found[key] = PredictedVideo(key, p, codec, note)
    return found, problems
