"""`toolkit verify` and `toolkit info`: check a shard folder and describe what is inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit import video as vid
from toolkit.io import sha256_file, stale_temporaries
from toolkit.shards.reader import ShardError, Shards
from toolkit.shards.schema import FRAMES_SCHEMA, SCHEMA_VERSION, VIDEOS_SCHEMA


def verify(root: str | Path, deep: bool = False, expected: dict[str, int] | None = None,
           progress: bool = False) -> list[str]:
    """Every problem found (empty list: the shards are sound).

    Checks the manifest's schema version and per-file sha256, both tables' schemas,
    frame counts, frame order, and (with expected) per-split video counts. With
    deep=True every stored image, IUV map and mask is decoded too. `progress` shows
    a bar per pass (checksums, then videos) on stderr.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    problems: list[str] = []
    try:
        shards = Shards(root)
    except FileNotFoundError as exc:
        return [str(exc)]
    try:
        manifest = shards.manifest
    except ShardError as exc:
        problems.append(str(exc))
        manifest = {"schema_version": SCHEMA_VERSION}
    if not manifest:
        problems.append(f"{root}/manifest.json: missing")
    elif manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"{root}/manifest.json: schema version {manifest.get('schema_version')}, "
                        f"this toolkit reads {SCHEMA_VERSION}")
    files = manifest.get("files", {})
    for rel, sha in tqdm(files.items(), total=len(files), desc="verify sha256", unit="file",
                         disable=not progress or not files):
        p = root / rel
        if not p.is_file():
            problems.append(f"{p}: listed in the manifest but missing")
        elif sha256_file(p) != sha:
            problems.append(f"{p}: sha256 differs from the manifest (file changed or corrupt)")
    try:
        videos = shards.videos
    except ShardError as exc:
        return problems + [str(exc)]
    if not pq.read_schema(root / "videos.parquet").equals(VIDEOS_SCHEMA):
        problems.append(f"{root}/videos.parquet: schema differs from schema version {SCHEMA_VERSION}")
    for row in tqdm(list(videos.itertuples()), desc="verify frames" + (" (decoding)" if deep else ""),
                    unit="video", disable=not progress or videos.empty):
        if row.status != "ok":
            continue
        p = root / row.frames_file
        if not p.is_file():
            problems.append(f"{p}: frames file of {row.video_id} missing")
            continue
        try:
            problems += _check_frames_file(p, row, deep)
        except (pa.ArrowException, OSError) as exc:
            problems.append(f"{p}: not a readable Parquet file ({exc})")
    if expected:
        ok = videos[videos.status == "ok"]
        for split, n in expected.items():
            have = int((ok.split == split).sum())
            if have != n:
                problems.append(f"{root}: split {split!r} has {have} videos, the dataset card expects {n}")
    failed = videos[videos.status != "ok"]
    for row in failed.itertuples():
        problems.append(f"{row.source_path}: failed to prepare ({row.failure_reason})")
    listed = {str(f) for f in videos[videos.status == "ok"].frames_file}
    for p in sorted(root.glob("frames/*/*.parquet")):
        if str(p.relative_to(root)) not in listed:
            problems.append(f"{p}: a frames file the videos table does not list (left over, or put there by hand)")
    for p in stale_temporaries(root):
        problems.append(f"{p}: temporary file of an interrupted run (the next `toolkit prepare` into this folder "
                        "removes it)")
    problems += _check_sources(root, manifest, videos)
    return problems


def _check_sources(root: Path, manifest: dict, videos) -> list[str]:
    """Finished videos whose source file is gone or changed since they were prepared. Checked only where the
    source folder the manifest names exists here (shards copied to another machine are not flagged)."""
    from toolkit.shards.writer import read_state
    from toolkit.sources.base import path_stat

    source = Path(manifest.get("source") or "")
    if not manifest.get("source") or not source.is_dir():
        return []
    problems = []
    for row in videos[videos.status == "ok"].itertuples():
        path = source / row.source_path
        if not path.exists():
            problems.append(f"{path}: source of {row.video_id} is gone (`toolkit prepare ... --prune` removes the "
                            "video from the shards)")
            continue
        rec = read_state(root, row.video_id) or {}
        try:
            changed = rec.get("source_stat") is not None and rec["source_stat"] != path_stat(path)
        except OSError:
            changed = True
        if changed:
            problems.append(f"{path}: source of {row.video_id} changed since it was prepared (size or mtime); "
                            "rerun `toolkit prepare` to redo it if its content changed")
    return problems


def _check_frames_file(p: Path, row, deep: bool) -> list[str]:
    problems = []
    f = pq.ParquetFile(p)
    if not f.schema_arrow.remove_metadata().equals(FRAMES_SCHEMA.remove_metadata()):
        return [f"{p}: frames schema differs from schema version {SCHEMA_VERSION}"]
    if f.metadata.num_rows != row.n_frames:
        problems.append(f"{p}: {f.metadata.num_rows} frames, videos table says {row.n_frames}")
    t = f.read(columns=["video_id", "frame_index", "split"])
    idx = t.column("frame_index").to_numpy()
    if not np.array_equal(idx, np.arange(len(idx))):
        problems.append(f"{p}: frame_index is not 0..{len(idx) - 1} in order")
    if set(t.column("video_id").to_pylist()) != {row.video_id}:
        problems.append(f"{p}: holds rows of other videos than {row.video_id}")
    if deep:
        problems += _decode_all(p, row)
    return problems


def _decode_all(path: Path, row) -> list[str]:
    problems = []
    table = pq.read_table(path, columns=["frame_index", "image", "iuv", "mask", "parts", "pose_labels"])
    iuv_parts: dict[int, np.ndarray] = {}
    for col in ("image", "iuv", "mask"):
        for i, data in enumerate(table.column(col).to_pylist()):
            if data is None:
                continue
            try:
                img = vid.decode_image(data, name=f"{path} {col}[{i}]")
            except vid.DecodeError as exc:
                problems.append(str(exc))
                continue
            if img.shape[:2] != (row.height, row.width):
                problems.append(f"{path}: {col} of frame {i} is {img.shape[1]}x{img.shape[0]}, "
                                f"expected {row.width}x{row.height}")
            elif col == "iuv":
                iuv_parts[i] = img[..., 0]
    for i, data in enumerate(table.column("parts").to_pylist()):
        if data is None:
            continue
        try:
            parts = vid.decode_plane(data, int(row.height), int(row.width), name=f"{path} parts[{i}]")
        except vid.DecodeError as exc:
            problems.append(str(exc))
            continue
        if i in iuv_parts and not np.array_equal(parts, iuv_parts[i]):
            problems.append(f"{path}: parts of frame {i} differ from its IUV map's part index")
    for i, data in enumerate(table.column("pose_labels").to_pylist()):
        if data is not None:
            try:
                vid.decode_plane(data, int(row.height), int(row.width), name=f"{path} pose_labels[{i}]")
            except vid.DecodeError as exc:
                problems.append(str(exc))
    return problems


def info(root: str | Path) -> dict:
    """A per-split summary of a shard folder (what `toolkit info` prints)."""
    shards = Shards(root)
    v = shards.videos
    out = {"root": str(root), "dataset": shards.manifest.get("dataset"), "backends": shards.manifest.get("backends", {}),
           "options": shards.manifest.get("options", {}), "splits": {}}
    for split, g in v.groupby("split"):
        ok = g[g.status == "ok"]
        sizes = sorted({f"{int(w)}x{int(h)}" for w, h in zip(ok.width, ok.height)})
        nbytes = sum((Path(root) / f).stat().st_size for f in ok.frames_file)
        out["splits"][split] = {
            "videos": len(ok), "failed": int((g.status != "ok").sum()), "frames": int(ok.n_frames.sum()),
            "bytes": nbytes, "sizes": sizes, "fps": sorted(set(ok.fps.round(3).tolist())),
            "image_formats": sorted(set(ok.image_format)),
            "annotations": [c for c in ("keypoints", "iuv", "mask") if ok[f"has_{c}"].any()],
        }
    return out
