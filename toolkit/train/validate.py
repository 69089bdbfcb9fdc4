"""Validation while training: the run's EMA weights, sampled as `toolkit eval` samples them, scored as it scores.

At every ``[train] validate_every`` steps the loop writes its checkpoint (the EMA weights go to
``model/``) and the main process builds the run's method from the run folder, exactly as
``toolkit eval --method METHOD --checkpoint RUN`` does, generates the first ``validate_videos``
videos of the shards' ``validate_split`` split and scores them with the harness's pixel metrics
under the standard protocol (person region included); the network metrics (LPIPS, FID, FVD) are
left to `toolkit eval`. Each validation is a line of ``validation.jsonl``: the step, the videos and
each metric's mean over their frames, the numbers `toolkit eval` gives for those videos.

The generated videos are kept as samples in ``validation/step-N/``: per video ``VIDEO.mp4`` (the generated
video) and ``VIDEO.png`` (a grid: ground-truth frames above the generated ones, at up to 8 evenly spaced
frames). The folder is written under a temporary name and renamed when complete; the grids also go to the
run's tracker (tensorboard images).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

VALIDATION_LOG = "validation.jsonl"
SAMPLES_DIR = "validation"
GRID_FRAMES = 8


@dataclass
class Validation:
    """What a run validates on: its method by name, the videos, and the method's sampling options."""

    method: str
    shards: Path
    split: str
    videos: list[str]
    options: dict[str, Any]

    @classmethod
    def from_config(cls, method: str, shards: Path, train_cfg: Mapping[str, Any], device: str = "cpu") -> Validation:
        """Check everything validation needs (a method of that name, videos in the split) before a run writes."""
        from toolkit.harness.registry import method_class
        from toolkit.shards.reader import Shards

        method_class(method)  # an unknown method fails here, naming the known ones
        table = Shards(shards).videos
        ok = table[(table.status == "ok") & (table.split == train_cfg["validate_split"])]
        if ok.empty:
            raise ValueError(f"[train] validate_split = {train_cfg['validate_split']!r}: {shards} has no prepared "
                             "videos in that split")
        options: dict[str, Any] = {"device": device}
        if train_cfg["validate_steps"]:
            options["steps"] = train_cfg["validate_steps"]
        videos = sorted(ok.video_id)[:train_cfg["validate_videos"]]
        return cls(method, Path(shards), train_cfg["validate_split"], videos, options)

    def run(self, run_dir: Path, samples: Path | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Each pixel metric's mean over the frames of the validation videos, for the weights in `run_dir`, and
        each video's sample grid; with `samples`, each generated video and its grid are written there."""
        from toolkit.harness.protocols import load_protocol
        from toolkit.harness.registry import get_method
        from toolkit.harness.scoring import pixel_only, score_video
        from toolkit.shards.reader import Shards

        shards, protocol = Shards(self.shards), load_protocol("standard")
        runner = _Keeping(get_method(self.method, checkpoint=run_dir, **self.options))
        metrics, frames, grids = pixel_only(protocol), {}, {}
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            for video_id in self.videos:
                scored = score_video(shards, video_id, protocol, metrics, self.method, runner)
                for metric, values in scored.values.items():
                    frames.setdefault(metric, []).append(np.asarray(values, np.float64))
                grids[video_id] = sample_grid(shards, video_id, runner.last)
                if samples is not None:
                    _write_sample(samples, video_id, runner.last, grids[video_id], float(shards.video(video_id).fps))
        return {metric: _mean(np.concatenate(parts)) for metric, parts in frames.items()}, grids


class _Keeping:
    """A method that keeps the last video it generated, for the samples (the harness only scores it)."""

    def __init__(self, method: Any):
        self.method, self.last = method, None

    @property
    def uses_ground_truth(self) -> bool:
        return self.method.uses_ground_truth

    def generate(self, cond: Any) -> np.ndarray:
        self.last = np.asarray(self.method.generate(cond))
        return self.last


def sample_grid(shards: Any, video_id: str, generated: np.ndarray, columns: int = GRID_FRAMES) -> np.ndarray:
    """An (2H, kW, 3) uint8 image: k evenly spaced frames of the ground truth above the same generated frames."""
    picked = np.unique(np.linspace(0, len(generated) - 1, min(columns, len(generated))).round().astype(int))
    truth = shards.frames(video_id, [int(i) for i in picked])
    rows = [np.concatenate(list(frames), axis=1) for frames in (truth, generated[picked])]
    return np.concatenate(rows, axis=0)


def _write_sample(folder: Path, video_id: str, generated: np.ndarray, grid: np.ndarray, fps: float) -> None:
    from toolkit.video import write_image, write_video

    h, w = generated.shape[1] // 2 * 2, generated.shape[2] // 2 * 2  # H.264 (yuv420p) needs even sizes
    write_video(folder / f"{video_id}.mp4", generated[:, :h, :w], fps=fps or 25.0)
    write_image(folder / f"{video_id}.png", grid)


def samples_dir(run_dir: Path, step: int) -> Path:
    """Where the samples of the validation at `step` are."""
    return Path(run_dir) / SAMPLES_DIR / f"step-{step}"


def drop_samples_after(run_dir: Path, step: int) -> None:
    """Remove the sample folders of validations after `step` (a killed run's, past the checkpoint it resumes
    from) and any folder a kill left half written."""
    root = Path(run_dir) / SAMPLES_DIR
    if not root.is_dir():
        return
    for folder in root.iterdir():
        number = folder.name.removeprefix("step-")
        if folder.name.startswith(".") or (number.isdigit() and int(number) > step):
            shutil.rmtree(folder, ignore_errors=True)


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def log_validation(run_dir: Path, step: int, validation: Validation, metrics: Mapping[str, float],
                   seconds: float) -> dict[str, Any]:
    """Append one line to the run's validation.jsonl and return it."""
    record = {"step": step, "split": validation.split, "videos": validation.videos, "seconds": round(seconds, 3),
              "samples": samples_dir(Path("."), step).as_posix(),
              **{k: (None if math.isnan(v) else v) for k, v in sorted(metrics.items())}}
    with open(run_dir / VALIDATION_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return record


def validate(run_dir: Path, step: int, validation: Validation) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validate the weights in `run_dir` at `step`: write the samples, log the metrics; returns the log line and
    each video's sample grid."""
    began = time.monotonic()
    final = samples_dir(run_dir, step)
    partial = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    metrics, grids = validation.run(run_dir, partial)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return log_validation(run_dir, step, validation, metrics, time.monotonic() - began), grids
