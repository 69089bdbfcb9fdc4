"""Writes shards atomically: one frames file per video, then the videos table and the manifest.

A frames file is written to a temporary name and renamed when complete, and its
per-video record (``.state/<video_id>.json``) is written after it, so a video is
either finished or absent; `finalize` rebuilds ``videos.parquet`` and
``manifest.json`` from the records, deterministically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit import __version__
from toolkit.io import atomic_write_json, sha256_file, stale_temporaries, temp_path_for
from toolkit.shards.schema import (FRAMES_SCHEMA, ROW_GROUP_FRAMES, SCHEMA_VERSION, VIDEOS_SCHEMA,
                                   frames_file)

STATE_DIR = ".state"
# Images and part planes are already compressed; the small numeric columns get zstd.
COMPRESSION = {name: ("none" if name in ("image", "iuv", "parts", "pose_labels", "mask") else "zstd")
               for name in FRAMES_SCHEMA.names}


def state_path(out: Path, video_id: str) -> Path:
    return Path(out) / STATE_DIR / f"{video_id}.json"


def read_state(out: Path, video_id: str) -> dict[str, Any] | None:
    p = state_path(out, video_id)
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_finished(out: Path, video_id: str) -> bool:
    """A video is finished when its record says ok and its frames file is there with the recorded size."""
    return record_finished(out, read_state(out, video_id))


def record_finished(out: Path, rec: dict[str, Any] | None) -> bool:
    """`is_finished` for a record already read."""
    if not rec or rec.get("status") != "ok":
        return False
    f = Path(out) / rec["frames_file"]
    return f.is_file() and f.stat().st_size == rec.get("frames_bytes")


def records(out: Path) -> list[dict[str, Any]]:
    """Every per-video record in the folder (unreadable ones skipped: that video is simply not finished)."""
    recs = []
    for p in sorted((Path(out) / STATE_DIR).glob("*.json")):
        if p.name.startswith("_"):
            continue
        try:
            rec = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            continue
        if isinstance(rec, dict) and "video_id" in rec:
            recs.append(rec)
    return recs


def finished_ids(out: Path) -> list[str]:
    """Ids of the videos finished in this folder."""
    return [rec["video_id"] for rec in records(out) if record_finished(out, rec)]


def remove_video(out: Path, video_id: str) -> None:
    """Take one video out of the shards: its frames file, then its record (finalize then drops it from the
    tables)."""
    rec = read_state(out, video_id) or {}
    if rec.get("frames_file"):
        (Path(out) / rec["frames_file"]).unlink(missing_ok=True)
    state_path(out, video_id).unlink(missing_ok=True)


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporaries a killed run left in the folder; returns what was removed."""
    stale = stale_temporaries(out)
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_frames(out: Path, split: str, video_id: str, batches: Iterable[dict[str, list]]) -> tuple[str, str, int, int]:
    """Write one video's frames; each batch (a dict of column lists) becomes one row group.

    Returns (relative path, sha256, bytes, n_rows).
    """
    rel = frames_file(split, video_id)
    final = Path(out) / rel
    tmp = temp_path_for(final)
    n = 0
    try:
        with pq.ParquetWriter(tmp, FRAMES_SCHEMA, compression=COMPRESSION, use_dictionary=["video_id", "split",
                              "image_format"], write_statistics=["video_id", "frame_index", "split"]) as writer:
            for batch in batches:
                table = pa.Table.from_pydict(batch, schema=FRAMES_SCHEMA)
                writer.write_table(table, row_group_size=max(ROW_GROUP_FRAMES, table.num_rows))
                n += table.num_rows
        if n == 0:
            raise ValueError(f"{video_id}: no frames to write")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rel, sha256_file(final), final.stat().st_size, n


def write_state(out: Path, record: dict[str, Any]) -> None:
    atomic_write_json(state_path(out, record["video_id"]), record)


def keypoint_column(kp: np.ndarray | None, t: int) -> list:
    """Rows for the flattened keypoints column (None where there is no pose)."""
    if kp is None:
        return [None] * t
    return [row.reshape(-1).astype(np.float32) for row in kp]


def finalize(out: Path, manifest_extra: dict[str, Any]) -> dict[str, Any]:
    """Rebuild videos.parquet and manifest.json from the per-video records (sorted by split, id)."""
    out = Path(out)
    records = []
    for p in sorted((out / STATE_DIR).glob("*.json")):
        if p.name.startswith("_"):
            continue
        rec = json.loads(p.read_text())
        records.append({k: rec.get(k) for k in VIDEOS_SCHEMA.names})
    records.sort(key=lambda r: (r["split"], r["video_id"]))
    table = pa.Table.from_pylist(records, schema=VIDEOS_SCHEMA)
    tmp = temp_path_for(out / "videos.parquet")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out / "videos.parquet")

    files = {r["frames_file"]: r["frames_sha256"] for r in records if r["status"] == "ok"}
    files["videos.parquet"] = sha256_file(out / "videos.parquet")
    counts: dict[str, dict[str, int]] = {}
    for r in records:
        c = counts.setdefault(r["split"], {"videos": 0, "failed": 0, "frames": 0})
        if r["status"] == "ok":
            c["videos"] += 1
            c["frames"] += r["n_frames"] or 0
        else:
            c["failed"] += 1
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "toolkit_version": __version__,
        **manifest_extra,
        "counts": counts,
        "files": dict(sorted(files.items())),
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
