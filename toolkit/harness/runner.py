"""`toolkit eval`: run a method (or load predictions) on a test split and score it under one protocol.

For each test video the harness takes the reference (frame 0), the driving
conditions and the frame count from the shards, asks the method for frames (or
loads the predictions), then scores the protocol's frames: pixel metrics and
LPIPS per frame, FID over all frames pooled, FID-VID and FVD over the clips the card names. A
metric whose weights are absent is stored as `unavailable (weights: NAME missing)`.
The run is written to the append-only results store only when it is complete.
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from toolkit import __version__
from toolkit.harness.method import Method
from toolkit.harness.predictions import PredictionsInvalid, find_predictions
from toolkit.harness.protocols import DISTRIBUTION_METRICS, higher_is_better, load_protocol
from toolkit.harness.registry import get_method
from toolkit.harness.remote import RemoteScoring, score_on_ray
from toolkit.harness.saved_predictions import PredictionWriter
from toolkit.harness.scoring import ProtocolMetrics, score_video
from toolkit.harness.store import write_run
from toolkit.io import sha256_file
from toolkit.paths import default_results, safe_filename
from toolkit.ray_executor import check_executor
from toolkit.shards.reader import Shards

DEFAULT_RESULTS = default_results()   # $TOOLKIT_RESULTS, else ./eval/results (toolkit/paths.py)


@dataclass
class EvalReport:
    run_id: str
    aggregate: dict[str, float]                 # metric -> value (NaN if unavailable)
    notes: dict[str, str]                       # metric -> why unavailable
    provenance: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None


def toolkit_commit() -> str:
    """`git describe --always --dirty` of the toolkit checkout, or 'unknown' outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def evaluate(shards_path: str | Path, method: str | Method | None = None, predictions: str | Path | None = None,
             split: str = "test", profile: str = "standard", results: str | Path = DEFAULT_RESULTS,
             allow_partial: bool = False, device: str = "cpu", progress: bool = True,
             write: bool = True, name: str | None = None, tags: Sequence[str] = (),
             method_options: dict[str, Any] | None = None, video_ids: Sequence[str] | None = None,
             executor: str = "local", ray_address: str | None = None, workers: int | None = None,
             save_predictions: bool | None = None, save_frames: bool = False) -> EvalReport:
    """Score one method (or a predictions folder) on one split under one protocol; see the module docstring.

    `method` is a registered name, a ``package.module:Class`` spec or a Method instance;
    `method_options` are passed to its constructor (e.g. ``{"checkpoint": "runs/ua-tiny", "steps": 5}``) and
    recorded in the provenance.
    `name` labels the run in reports (default: the method's name) and `tags` are free
    labels stored with it; both go into the provenance with the method's config and
    checkpoint sha256. `video_ids` restricts the run to those ids of the split (recorded as partial coverage).
    `executor` "ray" scores the videos as Ray tasks (toolkit/harness/remote.py) on the cluster at `ray_address`,
    or on a local one of `workers` CPUs (default: all cores); the results are the same as the local executor's.
    `save_predictions` keeps what the method generated under ``RESULTS/predictions/<run_id>/``
    (toolkit/harness/saved_predictions.py), with each file's sha256 in the provenance; None (the default) means
    "when the run is written and a method generates", so `write=False` calls write no files. `save_frames` adds
    PNG frames beside the videos.
    """
    if (method is None) == (predictions is None):
        raise ValueError("give exactly one of method or predictions")
    check_executor(executor, ray_address, workers)
    if name is not None and not name.strip():
        raise ValueError("a run name must not be empty")
    if save_predictions and predictions is not None:
        raise ValueError("save_predictions: a predictions run generates nothing to save (its folder is recorded)")
    if save_predictions and not write:
        raise ValueError("save_predictions needs write=True: saved predictions belong to a stored run")
    if save_frames and save_predictions is False:
        raise ValueError("save_frames needs save_predictions (the frames are saved with the videos)")
    save = (write and predictions is None) if save_predictions is None else save_predictions
    keep = PredictionWriter(Path(results), frames=save_frames) if save else None
    protocol = load_protocol(profile)
    shards = Shards(shards_path)
    videos = shards.videos[(shards.videos.status == "ok") & (shards.videos.split == split)]
    if videos.empty:
        raise ValueError(f"{shards.root}: no prepared videos in split {split!r} (splits: {shards.splits()})")
    if video_ids is not None:
        unknown = sorted(set(video_ids) - set(videos.video_id))
        if unknown:
            raise ValueError(f"{shards.root}: no prepared {split}-split video named {', '.join(unknown)} "
                             f"(e.g. {', '.join(list(videos.video_id)[:3])})")
        videos = videos[videos.video_id.isin(list(video_ids))]
    dataset = shards.manifest.get("dataset", shards.root.name)

    runner: Method | None = None
    found = {}
    skipped: list[str] = []
    conversions: dict[str, str] = {}
    if predictions is not None:
        expected = {r.video_id: (int(r.n_frames), int(r.width), int(r.height)) for r in videos.itertuples()}
        found, problems = find_predictions(predictions, expected, exact_size=protocol.base != "disco")
        if problems and not allow_partial:
            raise PredictionsInvalid(Path(predictions), problems)
        for problem in problems:  # --allow-partial: each video left out is named with why, here and in provenance
            print(f"skipped: {problem}", file=sys.stderr)
        skipped = problems
        conversions = {k: v.note for k, v in sorted(found.items()) if v.note}
        for video_id, note in conversions.items():
            print(f"note: {video_id}: {note}", file=sys.stderr)
        if not found:
            raise PredictionsInvalid(Path(predictions), problems or ["no usable prediction"])
        videos = videos[videos.video_id.isin(found)]
        method_name, codec = f"predictions:{Path(predictions).name}", sorted({p.codec for p in found.values()})
    else:
        runner = get_method(method, **(method_options or {})) if isinstance(method, str) else method
        method_name, codec = name or runner.name or type(runner).__name__, ["in-memory uint8 (lossless)"]

    metrics = ProtocolMetrics(protocol, device)
    per_frame: dict[str, list[tuple[str, int, float]]] = {}
    region_sources = set()
    n_frames = 0
    ids = list(videos.video_id)
    bar = tqdm(ids, desc=f"eval {method_name} [{protocol.name}]", unit="video", disable=not progress)
    try:
        if executor == "ray":
            if keep is not None:
                keep = PredictionWriter(Path(results).resolve(), frames=save_frames, token=keep.token)
            job = RemoteScoring(shards=shards.root, method=method if runner is not None else None,
                                method_options=method_options or {}, method_name=method_name, found=found,
                                profile=protocol.name, device=device, metrics=sorted(metrics.metrics), keep=keep)
            scored = score_on_ray(job, ids, metrics, bar, ray_address, workers)
        else:
            scored = [score_video(shards, video_id, protocol, metrics, method_name, runner, found.get(video_id),
                                  keep) for video_id in bar]
    except BaseException:
        if keep is not None:
            keep.discard()
        raise
    bar.close()
    for video in scored:
        n_frames += len(video.frames)
        region_sources.add(video.region_source)
        for metric, arr in video.values.items():
            per_frame.setdefault(metric, []).extend(zip([video.video_id] * len(video.frames), video.frames,
                                                        arr.tolist()))

    stamp = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}"
    run_id = safe_filename(f"{stamp}-{method_name.replace(':', '_')}-{dataset}-{split}-{protocol.name}")
    base = {"run_id": run_id, "method": method_name, "dataset": dataset, "split": split,
            "profile": protocol.name, "profile_version": protocol.version}
    rows: list[dict[str, Any]] = []
    aggregate: dict[str, float] = {}
    notes: dict[str, str] = {}

    def add(level: str, metric: str, value: float, video=None, frame=None, status="ok", note=None):
        rows.append({**base, "level": level, "video_id": video, "frame_index": frame, "metric": metric,
                     "value": float(value), "higher_is_better": higher_is_better(metric), "status": status,
                     "note": note})

    for metric, triples in per_frame.items():
        vals = np.array([v for _, _, v in triples], dtype=np.float64)
        aggregate[metric] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        add("aggregate", metric, aggregate[metric])
        by_video: dict[str, list[float]] = {}
        for video, frame, v in triples:
            add("frame", metric, v, video, frame)
            by_video.setdefault(video, []).append(v)
        for video, vs in by_video.items():
            arr = np.array(vs)
            add("video", metric, float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan"), video)
    details = {}
    for metric in protocol.metrics:
        if metric in metrics.unavailable:
            notes[metric] = metrics.unavailable[metric]
        elif metric in DISTRIBUTION_METRICS:
            try:
                res = metrics.metric(metric).compute()
                aggregate[metric] = float(res.value)
                details[metric] = {"num_pred": res.num_pred, "num_target": res.num_target, **res.details}
            except ValueError as exc:
                notes[metric] = f"unavailable ({exc})"
        if metric in notes:
            aggregate[metric] = float("nan")
            add("aggregate", metric, float("nan"), status="unavailable", note=notes[metric])
        elif metric in DISTRIBUTION_METRICS:
            add("aggregate", metric, aggregate[metric])

    sizes = sorted({f"{int(r.width)}x{int(r.height)}" for r in videos.itertuples()})
    provenance = {
        **base,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "method_class": f"{type(runner).__module__}:{type(runner).__qualname__}" if runner is not None else None,
        "method_config": runner.config() if runner is not None else None,
        # the constructor options the run was given (--checkpoint, --device, --method-option), as given
        "method_options": ({k: v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
                            for k, v in (method_options or {}).items()} if isinstance(method, str) else None),
        "checkpoint_sha256": runner.checkpoint_sha256() if runner is not None else None,
        "tags": sorted(set(tags)),
        "predictions": str(Path(predictions).resolve()) if predictions is not None else None,
        "shards": str(shards.root.resolve()),
        "shards_manifest_sha256": sha256_file(shards.root / "manifest.json"),
        "profile_title": protocol.title,
        "profile_sha256": protocol.sha256,
        "definitions": protocol.definitions,
        "frames_scored": protocol.raw["frames"],
        "frame_size": sizes,
        "n_videos": int(len(videos)),
        "skipped": skipped,
        "conversions": conversions,
        "n_videos_in_split": int(((shards.videos.status == "ok") & (shards.videos.split == split)).sum()),
        "n_frames": n_frames,
        "clips": details,
        "codec": codec,
        "region_source": sorted(region_sources),
        "weights_sha256": metrics.weights_sha256(),
        "unavailable": notes,
        "toolkit_version": __version__,
        "toolkit_commit": toolkit_commit(),
        "python": platform.python_version(),
    }
    if keep is None:
        provenance["saved_predictions"] = None
        provenance["saved_predictions_note"] = (
            "a predictions run: its frames are the folder named in `predictions`" if predictions is not None
            else "the run was made with --no-save-predictions (save_predictions=False)" if write
            else "the run was not stored (write=False)")
    report = EvalReport(run_id=run_id, aggregate=aggregate, notes=notes, provenance=provenance, rows=rows)
    if write:
        committed = None
        try:
            if keep is not None:
                provenance["saved_predictions"] = keep.commit(run_id, {k: v for s in scored
                                                                       for k, v in s.saved.items()})
                committed = Path(results) / provenance["saved_predictions"]["folder"]
            report.path = write_run(results, run_id, rows, provenance)
        except BaseException:  # no run stored: none of its predictions either
            if keep is not None:
                keep.discard()
            if committed is not None:
                shutil.rmtree(committed, ignore_errors=True)
            raise
    return report
