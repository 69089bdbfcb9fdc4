"""Reads shards: the videos table, the manifest, and any frames of any video by index.

Random access reads only the row groups that hold the requested frames and only
the requested columns, so a training clip costs one or two row-group reads.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit import video as vid
from toolkit.shards.schema import ROW_GROUP_FRAMES


class ShardError(ValueError):
    """A shard file that cannot be read; the message names the file and says what to run."""


def _unreadable(path: Path, what: str, exc: Exception) -> ShardError:
    return ShardError(f"{path}: {what} ({type(exc).__name__}: {exc}); `toolkit verify` checks the folder, and "
                      "rerunning `toolkit prepare` into it rebuilds what is missing")


def keypoint_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """(N, 133, 3) float32 from the shards' fixed-size keypoint lists, zeros where a frame has none (one flat
    copy when no row is null, no Python float per value)."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if col.null_count == 0:
        return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, 133, 3)
    return np.stack([np.zeros((133, 3), np.float32) if k is None else np.asarray(k, np.float32).reshape(133, 3)
                     for k in col.to_pylist()])


class Shards:
    """A prepared dataset folder (see toolkit.shards.schema for the layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / "videos.parquet").is_file():
            raise FileNotFoundError(f"{self.root}: not a shard folder (no videos.parquet); "
                                    "run `toolkit prepare` first")
        self._files: dict[str, pq.ParquetFile] = {}

    @cached_property
    def manifest(self) -> dict:
        p = self.root / "manifest.json"
        if not p.exists():
            return {}
        try:
            manifest = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _unreadable(p, "not valid JSON", exc) from None
        if not isinstance(manifest, dict):
            raise ShardError(f"{p}: a manifest is a JSON object, this holds a {type(manifest).__name__}")
        return manifest

    @cached_property
    def videos(self) -> pd.DataFrame:
        """All videos, failed ones included (status != 'ok')."""
        p = self.root / "videos.parquet"
        try:
            return pq.read_table(p).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(p, "not a readable Parquet file", exc) from None

    def video_ids(self, split: str | None = None) -> list[str]:
        """Ids of the successfully prepared videos, optionally of one split, in table order."""
        v = self.videos[self.videos.status == "ok"]
        if split is not None:
            v = v[v.split == split]
        return v.video_id.tolist()

    def splits(self) -> list[str]:
        return sorted(self.videos.split.unique().tolist())

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.videos.video_id)}

    def video(self, video_id: str) -> pd.Series:
        if video_id not in self._positions:
            raise KeyError(f"{self.root}: no video {video_id!r}")
        return self.videos.iloc[self._positions[video_id]]

    def _file(self, video_id: str) -> pq.ParquetFile:
        if video_id not in self._files:
            rec = self.video(video_id)
            if rec.status != "ok":
                raise KeyError(f"{self.root}: video {video_id!r} failed to prepare: {rec.failure_reason}")
            path = self.root / rec.frames_file
            try:
                self._files[video_id] = pq.ParquetFile(path, memory_map=True)
            except (pa.ArrowException, OSError) as exc:
                raise _unreadable(path, f"frames of {video_id} not readable", exc) from None
        return self._files[video_id]

    def read(self, video_id: str, indices: Sequence[int] | None = None,
             columns: Sequence[str] = ("image",)) -> pa.Table:
        """Rows of one video (all, or the given frame indices in the given order) with the chosen columns."""
        f = self._file(video_id)
        try:
            return self._read(f, video_id, indices, list(dict.fromkeys(["frame_index", *columns])))
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(self.root / self.video(video_id).frames_file, f"frames of {video_id} not readable",
                              exc) from None

    @staticmethod
    def _read(f: pq.ParquetFile, video_id: str, indices: Sequence[int] | None, cols: list[str]) -> pa.Table:
        if indices is None:
            return f.read(columns=cols)
        idx = np.asarray(indices, dtype=np.int64)
        n = f.metadata.num_rows
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"{video_id}: frame index out of range 0..{n - 1}")
        groups = sorted(set((idx // ROW_GROUP_FRAMES).tolist()))
        table = f.read_row_groups(groups, columns=cols)
        # Row groups are consecutive blocks of ROW_GROUP_FRAMES frames, so positions are offsets.
        offsets = {g: sum(f.metadata.row_group(k).num_rows for k in groups[:i]) for i, g in enumerate(groups)}
        pos = [offsets[i // ROW_GROUP_FRAMES] + i % ROW_GROUP_FRAMES for i in idx.tolist()]
        return table.take(pa.array(pos, type=pa.int64()))

    def frames(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray:
        """Decoded RGB frames (T, H, W, 3) uint8."""
        col = self.read(video_id, indices, ["image"]).column("image").to_pylist()
        return np.stack([vid.decode_image(b, name=f"{video_id}") for b in col])

    def keypoints(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray:
        """(T, 133, 3) keypoints; frames without pose are all zeros."""
        return keypoint_array(self.read(video_id, indices, ["keypoints"]).column("keypoints"))

    def iuv(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray | None:
        """(T, H, W, 3) IUV maps, or None if the video has none."""
        col = self.read(video_id, indices, ["iuv"]).column("iuv").to_pylist()
        if any(b is None for b in col):
            return None
        return np.stack([vid.decode_image(b, name=f"{video_id} iuv") for b in col])

    def columns(self, video_id: str) -> list[str]:
        """The columns of a video's frames file (shards of schema version 1 have no `parts`)."""
        return self._file(video_id).schema_arrow.names

    def _planes(self, video_id: str, indices: Sequence[int] | None, column: str) -> np.ndarray | None:
        """(T, H, W) label planes of a `video.encode_plane` column, or None where a frame has none."""
        table = self.read(video_id, indices, [column, "width", "height"])
        col = table.column(column).to_pylist()
        if not col or any(b is None for b in col):
            return None
        h, w = table.column("height")[0].as_py(), table.column("width")[0].as_py()
        return np.stack([vid.decode_plane(b, h, w, name=f"{video_id} {column}") for b in col])

    def parts(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray | None:
        """(T, H, W) DensePose part indices (IUV's channel I), or None if the video has no DensePose; from the
        `parts` column where the shards have it, else from the IUV maps."""
        if "parts" not in self.columns(video_id):
            iuv = self.iuv(video_id, indices)
            return None if iuv is None else np.ascontiguousarray(iuv[..., 0])
        return self._planes(video_id, indices, "parts")

    def pose_labels(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray | None:
        """(T, H, W) label canvases of the pose renders stored at prepare time (schema.STORED_POSE_STYLE at the
        stored size; `toolkit.conditions.pose_palette` colours them), or None where the shards have none."""
        if "pose_labels" not in self.columns(video_id):
            return None
        return self._planes(video_id, indices, "pose_labels")

    def masks(self, video_id: str, indices: Sequence[int] | None = None) -> np.ndarray | None:
        """(T, H, W) uint8 person masks (0/255), or None if the video has none."""
        col = self.read(video_id, indices, ["mask"]).column("mask").to_pylist()
        if any(b is None for b in col):
            return None
        return np.stack([vid.decode_image(b, grayscale=True, name=f"{video_id} mask") for b in col])


def open_shards(root: str | Path) -> Shards:
    return Shards(root)
