"""What a method generated during `toolkit eval`, kept in the results store so it can be watched and re-scored.

Layout, one folder per stored run (the run id is already a safe file name; a video id becomes a file name
only when it is one, see :func:`video_file_name`)::

    RESULTS/predictions/<run_id>/videos/<video_id>.mp4          every frame, lossless H.264 RGB
    RESULTS/predictions/<run_id>/frames/<video_id>/000000.png   with --save-frames

Both ``videos/`` and ``frames/`` are predictions folders in the form ``toolkit eval --predictions`` reads, and
both decode to exactly the frames the method returned, so re-scoring either gives the run's numbers.
The videos are encoded with libx264rgb at crf 0: lossless in RGB (no YUV conversion, which near-lossless
yuv444/yuv420 H.264 cannot avoid), decoded by decord like any H.264 file. Players without H.264 4:4:4
(Safari, Firefox) may not play them; the leaderboard makes its own tile-sized yuv420p copies to watch.

Files are written into ``RESULTS/predictions/.partial-<token>/`` and the folder is renamed to the run id
only when the run is stored, so an interrupted evaluation leaves no predictions under a run id.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.io import sha256_file
from toolkit.paths import safe_filename, safe_video_id
from toolkit.video import write_image, write_video

FOLDER = "predictions"
VIDEO_CODEC = "libx264rgb"
VIDEO_FORMAT = "mp4, H.264 RGB lossless (libx264rgb, crf 0)"
FRAMES_FORMAT = "png frames (lossless)"


def video_file_name(video_id: str) -> str:
    """`video_id` as a file-name stem, refused unless it is one already (the shards store only such ids), so
    a stored file's stem is the video id `toolkit eval --predictions` matches and never leaves its folder."""
    if video_id in ("", ".", "..") or safe_video_id(video_id) != video_id:
        raise ValueError(f"video id {video_id!r} is not a safe file name: its prediction cannot be stored")
    return video_id


@dataclass
class PredictionWriter:
    """Writes each video's frames into a run's partial folder; picklable, so a Ray worker can write too
    (the results store must then be on a file system the workers share, as the shards already must be)."""

    results: Path
    frames: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def partial(self) -> Path:
        return Path(self.results) / FOLDER / f".partial-{self.token}"

    def save(self, video_id: str, frames: np.ndarray, fps: float) -> dict[str, str]:
        """Write one video (and its PNG frames with `frames`); return {path in the run folder: sha256}."""
        stem = video_file_name(video_id)
        written = [write_video(self.partial / "videos" / f"{stem}.mp4", frames, fps=fps or 24.0,
                               codec=VIDEO_CODEC, crf=0, pix_fmt="rgb24")]
        if self.frames:
            written += [write_image(self.partial / "frames" / stem / f"{t:06d}.png", f) for t, f in enumerate(frames)]
        return {p.relative_to(self.partial).as_posix(): sha256_file(p) for p in written}

    def commit(self, run_id: str, files: dict[str, str]) -> dict[str, Any]:
        """Rename the partial folder to the run's; return the provenance entry (folder relative to the store)."""
        if safe_filename(run_id) != run_id:
            raise ValueError(f"run id {run_id!r} is not a safe file name")
        target = Path(self.results) / FOLDER / run_id
        if target.exists():
            raise FileExistsError(f"{target}: predictions already stored for this run")
        self.partial.mkdir(parents=True, exist_ok=True)
        self.partial.rename(target)
        return {"folder": f"{FOLDER}/{run_id}", "videos": "videos", "video_format": VIDEO_FORMAT,
                "frames": "frames" if self.frames else None, "frames_format": FRAMES_FORMAT if self.frames else None,
                "sha256": dict(sorted(files.items()))}

    def discard(self) -> None:
        """Remove the partial folder (the run failed or was interrupted)."""
        shutil.rmtree(self.partial, ignore_errors=True)


def stored_videos(results: str | Path, provenance: dict[str, Any]) -> tuple[Path | None, str]:
    """The folder of a run's stored videos, or None and why there is none (for the report's notes)."""
    saved = provenance.get("saved_predictions")
    if "saved_predictions" not in provenance:
        return None, "the run was stored before toolkit eval kept predictions"
    if not saved:
        return None, provenance.get("saved_predictions_note") or "the run was made with --no-save-predictions"
    rel = Path(saved["folder"]) / saved.get("videos", "videos")
    if rel.is_absolute() or ".." in rel.parts:
        return None, f"its predictions folder {rel} is not inside the results store"
    folder = Path(results) / rel
    if not folder.is_dir():
        return None, f"its predictions folder {folder} is missing"
    return folder, ""
