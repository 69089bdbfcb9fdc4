"""`toolkit prepare`: sources -> annotate -> shards, resumable, one video at a time.

Each video is read in chunks, annotated by the chosen pose / DensePose / mask backends,
encoded (PNG for evaluation splits, JPEG q95 for training splits unless told
otherwise) and written as its own frames shard. A video that cannot be read is
recorded as failed with its reason and the run goes on; rerunning the same
command skips finished videos and retries failed ones, redoes a video whose source
changed, and reports (or with `prune` removes) one whose source is gone.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from toolkit import video as vid
from toolkit.annotate.backends import MASK_BACKENDS
from toolkit.keypoints import person_box
from toolkit.io import FolderLock, atomic_write_json
from toolkit.shards import writer
from toolkit.shards.schema import ROW_GROUP_FRAMES, STORED_POSE_STYLE
from toolkit.sources import SourceVideo, discover, load_card
from toolkit.sources.base import iter_source_chunks, path_stat, plan_geometry, source_checksum
from toolkit.sources.card import DatasetCard

OPTIONS_FILE = "_options.json"
MIN_SIZE = 16
IMAGE_FORMATS = ("auto", "png", "jpeg", "webp")
# Where person masks come from: "source" the masks a video ships (TikTok's masks/), "none" no masks, or a mask
# backend (toolkit.annotate.backends.MASK_BACKENDS) for the videos that ship none: shipped masks are never replaced.
MASK_SOURCES = ("source", "none")


@dataclass(frozen=True)
class PrepareOptions:
    """Everything that changes the bytes of the shards (recorded, and checked on resume)."""

    size: int | None = 512
    fps: float | None = None
    image_format: str = "auto"          # auto: png for evaluation splits, jpeg for the rest
    jpeg_quality: int = 95
    pose: str = "none"
    densepose: str = "none"
    mask: str = "source"                 # see MASK_SOURCES; default_mask() is what the CLI picks
    splits: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Refuse options that could only fail later, video by video (checked before anything is written)."""
        if self.size is not None and (not isinstance(self.size, int) or self.size < MIN_SIZE):
            raise ValueError(f"size must be at least {MIN_SIZE} pixels (0 keeps the source size), "
                             f"got {self.size}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number (or None for the source rate), got {self.fps}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must lie in 1..100, got {self.jpeg_quality}")
        if self.mask not in MASK_SOURCES and self.mask not in MASK_BACKENDS:
            raise ValueError(f"mask must be one of {', '.join([*MASK_SOURCES, *MASK_BACKENDS])}, got {self.mask!r}")

    def format_for(self, card: DatasetCard, split: str) -> str:
        if self.image_format != "auto":
            return self.image_format
        return "png" if card.is_eval_split(split) else "jpeg"

    def fingerprint(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("splits")
        return d


@dataclass
class PrepareReport:
    out: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    gone: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] != "ok"]


def default_mask(pose: str) -> str:
    """The mask choice when none is given: "mediapipe" when the pose backend is mediapipe (the masks come out of
    the same Holistic pass), else "source". Either way a video that ships masks keeps them."""
    return "mediapipe" if pose == "mediapipe" else "source"


# Backends are built once per process (workers included) and reused across videos.
_BACKENDS: dict[tuple[str, ...], Any] = {}


def _backend(kind: str, name: str, pose: str = "none"):
    """The backend `name` of `kind` ("pose", "densepose", "mask"); None for "none" (and a mask "source"). A
    mediapipe mask backend runs through the mediapipe pose backend when `pose` is mediapipe too."""
    if name == "none" or (kind == "mask" and name in MASK_SOURCES):
        return None
    shared = kind == "mask" and name == pose == "mediapipe"
    key = (kind, name, "shared") if shared else (kind, name)
    if key not in _BACKENDS:
        from toolkit.annotate import backends

        if kind == "mask":
            _BACKENDS[key] = backends.get_mask_backend(name, **({"pose": _backend("pose", pose)} if shared else {}))
        else:
            getter = backends.get_pose_backend if kind == "pose" else backends.get_densepose_backend
            _BACKENDS[key] = getter(name)
    return _BACKENDS[key]


def backend_versions(options: PrepareOptions) -> dict[str, str]:
    """Build the chosen backends now, so a missing one fails before any video is touched."""
    out = {}
    for kind, name in (("pose", options.pose), ("densepose", options.densepose), ("mask", options.mask)):
        b = _backend(kind, name, options.pose)
        out[kind] = "none" if b is None else f"{name} {b.version()}"
    if options.mask == "source":
        out["mask"] = "source (the masks a video ships, if any)"
    elif options.mask != "none":
        out["mask"] += " (videos that ship masks keep them)"
    return out


def _binary_mask(m: np.ndarray) -> np.ndarray:
    cut = 127 if m.max() > 1 else 0
    return np.where(m > cut, 255, 0).astype(np.uint8)


def _pose_label_planes(keypoints: np.ndarray, height: int, width: int) -> list[bytes]:
    """The pose renders of a chunk's keypoints at the stored size, as encoded label planes (what ClipDataset
    reads instead of rendering when it takes clips at that size in the stored style)."""
    from toolkit import conditions

    stored = np.asarray(keypoints, np.float32)  # the values the keypoints column holds, so a render from it agrees
    labels = conditions.pose_labels(stored, (height, width), (height, width), **STORED_POSE_STYLE)
    return [vid.encode_plane(plane) for plane in labels]


def mask_source(sv: SourceVideo, options: PrepareOptions) -> str | None:
    """Where a video's masks come from: "source" (it ships them; never replaced), the mask backend's name, or
    None (no masks)."""
    if options.mask == "none":
        return None
    if sv.masks is not None:
        return "source"
    return None if options.mask == "source" else options.mask


def _annotate(chunk, pose, dense, masker) -> tuple[np.ndarray | None, np.ndarray | None, list]:
    """A chunk's keypoints, IUV maps and masks (None per frame without one); keypoints and masks come from one
    pass when the mask backend runs through the pose backend."""
    if masker is not None and pose is not None and getattr(masker, "pose", None) is pose:
        kp, masks = masker.keypoints_and_masks(chunk.frames)
    else:
        kp = pose(chunk.frames, chunk.ground_truth) if pose else None
        masks = masker(chunk.frames, chunk.ground_truth) if masker else None
    iuv = dense(chunk.frames, chunk.ground_truth) if dense else None
    return kp, iuv, list(masks) if masks is not None else chunk.masks


def _frame_batches(sv: SourceVideo, card: DatasetCard, options: PrepareOptions, geo, fmt: str, flags: dict):
    pose, dense = _backend("pose", options.pose), _backend("densepose", options.densepose)
    source = mask_source(sv, options)
    masker = _backend("mask", options.mask, options.pose) if source == options.mask else None
    flags["mask_source"] = source
    for chunk in iter_source_chunks(sv, geo, chunk=ROW_GROUP_FRAMES):
        t = len(chunk.frames)
        if source is None:
            chunk.masks = [None] * t
        kp, iuv, masks = _annotate(chunk, pose, dense, masker)
        flags["keypoints"] |= kp is not None
        flags["iuv"] |= iuv is not None
        flags["mask"] |= any(m is not None for m in masks)
        yield {
            "video_id": [sv.video_id] * t,
            "frame_index": list(range(flags["n"], flags["n"] + t)),
            "source_frame": chunk.source_frames.tolist(),
            "timestamp": chunk.timestamps.tolist(),
            "split": [sv.split] * t,
            "width": [geo.width] * t,
            "height": [geo.height] * t,
            "image": [vid.encode_image(f, fmt, options.jpeg_quality) for f in chunk.frames],
            "image_format": [fmt] * t,
            "keypoints": writer.keypoint_column(kp, t),
            "person_box": [None] * t if kp is None else [person_box(k) for k in kp],
            "iuv": [None] * t if iuv is None else [vid.encode_image(np.ascontiguousarray(x), "png") for x in iuv],
            "parts": [None] * t if iuv is None else [vid.encode_plane(x[..., 0]) for x in iuv],
            "pose_labels": [None] * t if kp is None else _pose_label_planes(kp, geo.height, geo.width),
            "mask": [None if m is None else vid.encode_image(_binary_mask(m), "png") for m in masks],
        }
        flags["n"] += t


def failed_record(sv: SourceVideo, card: DatasetCard, reason: str | None) -> dict[str, Any]:
    """The record of a video that did not (or not yet) come out: what it is and why."""
    return {"video_id": sv.video_id, "split": sv.split, "source": card.name, "source_path": sv.relative_path,
            "status": "failed", "failure_reason": reason}


def process_video(sv: SourceVideo, card: DatasetCard, options: PrepareOptions, out: Path) -> dict[str, Any]:
    """Prepare one video into its shard and record; never raises for bad input, records it instead."""
    record = failed_record(sv, card, None)
    try:
        geo = plan_geometry(sv, options.size, options.fps)
        fmt = options.format_for(card, sv.split)
        flags = {"keypoints": False, "iuv": False, "mask": False, "mask_source": None, "n": 0}
        rel, sha, nbytes, n = writer.write_frames(out, sv.split, sv.video_id,
                                                  _frame_batches(sv, card, options, geo, fmt, flags))
        record.update(
            source_sha256=source_checksum(sv), source_stat=path_stat(sv.path), source_fps=geo.source_fps,
            fps=geo.fps, width=geo.width, height=geo.height, n_frames=n, image_format=fmt,
            has_keypoints=flags["keypoints"], has_iuv=flags["iuv"], has_mask=flags["mask"],
            mask_source=flags["mask_source"] if flags["mask"] else None, frames_file=rel,
            frames_sha256=sha, frames_bytes=nbytes, status="ok",
        )
    except (vid.DecodeError, ValueError, OSError, RuntimeError) as exc:
        record["failure_reason"] = f"{type(exc).__name__}: {exc}"
    writer.write_state(out, record)
    return record


def _check_options(out: Path, card: DatasetCard, options: PrepareOptions) -> None:
    """Refuse to mix shards made with different options in one folder; a folder without a finished video (say,
    after a run that failed on its options) takes the new ones."""
    path = out / writer.STATE_DIR / OPTIONS_FILE
    # "recipe_sha256" (and the manifest's "recipe" table) keep the name the dataset card had when folders that
    # resume were written
    want = {"dataset": card.name, "recipe_sha256": card.sha256, **options.fingerprint()}
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            have = {}
        if have and "mask" not in have:  # written before the mask option: those runs kept the shipped masks
            have["mask"] = "source"
        diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        if not diff:
            return
        if writer.finished_ids(out):
            desc = ", ".join(f"{k}: {a!r} before, {b!r} now" for k, (a, b) in diff.items())
            raise ValueError(f"{out} holds shards prepared with other options ({desc}); "
                             "use another --out, or delete the folder to start over")
    atomic_write_json(path, want)


def _up_to_date(out: Path, sv: SourceVideo) -> bool:
    """Is the video finished, from the source as it is now? A source whose size or mtime changed is hashed again:
    the same content (a touched file) only refreshes the record; other content means the video is redone."""
    rec = writer.read_state(out, sv.video_id)
    if not writer.record_finished(out, rec):
        return False
    try:
        stat = path_stat(sv.path)
        if rec.get("source_stat") == stat:
            return True
        if rec.get("source_sha256") != source_checksum(sv):
            return False
    except OSError:
        return False
    writer.write_state(out, {**rec, "source_stat": stat})
    return True


def _gone(out: Path, videos: list[SourceVideo], splits: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Records of videos prepared here whose source is no longer found (within the splits being prepared)."""
    present = {v.video_id for v in videos}
    return [rec for rec in writer.records(out)
            if rec["video_id"] not in present and (not splits or rec.get("split") in splits)]


def ensure_generated(card: DatasetCard, source: Path, progress: bool = True, workers: int = 1) -> None:
    """For generated datasets (the synthetic default), write the source files if they are not there yet."""
    gen = card.raw.get("generator")
    if not gen:
        return
    if gen.get("name") != "synthetic":
        raise ValueError(f"dataset card {card.name}: unknown generator {gen.get('name')!r}")
    from toolkit.sources import synthetic

    synthetic.generate(source, n_videos=gen.get("n_videos", 36), n_frames=gen.get("n_frames", 48),
                       size=gen.get("size", 512), seed=gen.get("seed", 0), fps=card.fps or 24.0,
                       progress=progress, workers=workers)


def _run_local(todo: list[SourceVideo], card: DatasetCard, options: PrepareOptions, out: Path, workers: int):
    """(video, record) as each video finishes, in this process or a spawn process pool."""
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(process_video, v, card, options, out): v for v in todo}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
    else:
        for v in todo:
            yield v, process_video(v, card, options, out)


def _run_ray(todo: list[SourceVideo], card: DatasetCard, options: PrepareOptions, out: Path):
    """(video, record) as each video finishes on the Ray cluster. A task that raised, or whose worker died, is
    recorded here as failed with why (a rerun retries it, like any failed video). The annotation backends here
    run on CPU, so the tasks ask Ray for one CPU each and no GPU."""
    from toolkit import ray_executor

    for sv, result in ray_executor.map_tasks(process_video, todo, (card, options, out)):
        if isinstance(result, BaseException):
            result = failed_record(sv, card, ray_executor.describe_failure(result))
            writer.write_state(out, result)
        yield sv, result


def prepare(dataset: str | DatasetCard, source: str | Path, out: str | Path, options: PrepareOptions | None = None,
            workers: int | None = None, progress: bool = True, prune: bool = False, executor: str = "local",
            ray_address: str | None = None) -> PrepareReport:
    """Prepare a dataset into shards under `out`; see the module docstring.

    A finished video whose source changed (size or mtime, then sha256) is redone. A video
    prepared earlier whose source is gone is listed in `report.gone` and kept, unless
    `prune` removes it from the shards.

    `executor` "local" runs `workers` processes here (default 1); "ray" runs one Ray task per video on the
    cluster at `ray_address`, or on a local cluster of `workers` CPUs (default: all cores) that it starts and
    stops. Both write the same shards; on a cluster of several nodes `source` and `out` must be the same
    shared folders on every node.
    """
    from toolkit import ray_executor

    t0 = time.perf_counter()
    card = dataset if isinstance(dataset, DatasetCard) else load_card(dataset)
    options = options or PrepareOptions()
    source, out = Path(source), Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; shards go into a folder")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    ray_executor.check_executor(executor, ray_address)
    versions = backend_versions(options)  # a missing backend fails here, before anything is written
    started_ray = executor == "ray" and ray_executor.connect(ray_address, workers)
    try:
        return _prepare(card, source, out, options, workers or 1, progress, prune, executor, versions, t0)
    finally:
        if started_ray:
            ray_executor.require_ray().shutdown()


def _prepare(card: DatasetCard, source: Path, out: Path, options: PrepareOptions, workers: int, progress: bool,
             prune: bool, executor: str, versions: dict[str, str], t0: float) -> PrepareReport:
    """`prepare` once its arguments are checked and its executor is ready."""
    ensure_generated(card, source, progress, workers)
    videos = discover(card, source)
    if options.splits:
        videos = [v for v in videos if v.split in options.splits]
        if not videos:
            raise ValueError(f"{source}: no videos in split(s) {', '.join(options.splits)}")
    out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock.acquire(out)  # one writer at a time: a second prepare into `out` is refused
    try:
        return _prepare_locked(card, source, out, options, workers, progress, prune, executor, versions, t0,
                               videos)
    finally:
        lock.release()


def _prepare_locked(card: DatasetCard, source: Path, out: Path, options: PrepareOptions, workers: int, progress: bool,
                    prune: bool, executor: str, versions: dict[str, str], t0: float,
                    videos: list[SourceVideo]) -> PrepareReport:
    """The writing part of `prepare`, under the folder's lock."""
    _check_options(out, card, options)
    writer.remove_stale_temporaries(out)
    report = PrepareReport(out=out)
    report.gone = [rec["video_id"] for rec in _gone(out, videos, options.splits)]
    if prune:
        for video_id in report.gone:
            writer.remove_video(out, video_id)
    todo = [v for v in videos if not _up_to_date(out, v)]
    report.skipped = len(videos) - len(todo)
    bar = tqdm(total=len(todo), desc=f"prepare {card.name}", unit="video", disable=not progress or not todo)
    runs = _run_ray(todo, card, options, out) if executor == "ray" else _run_local(todo, card, options, out,
                                                                                      workers)
    for _, record in runs:
        report.records.append(record)
        bar.update()
    bar.close()
    report.manifest = writer.finalize(out, {
        "dataset": card.name,
        "recipe": {"name": card.name, "title": card.title, "sha256": card.sha256, "citation": card.citation},
        "options": options.fingerprint(),
        "backends": versions,
        "source": str(source.resolve()),
    })
    report.seconds = time.perf_counter() - t0
    return report
