"""Validation while training: the run's EMA weights, sampled as `toolkit eval` samples them, scored as it scores.

At every ``[train] validate_every`` steps the loop writes its checkpoint (the EMA weights go to
``model/``) and the main process builds the run's method from the run folder, exactly as
``toolkit eval --method METHOD --checkpoint RUN`` does, generates the first ``validate_videos``
videos of the shards' ``validate_split`` split and scores them with the harness's pixel metrics
under the standard protocol (person region included); the network metrics (LPIPS, FID, FVD) are
left to `toolkit eval`. Each validation is a line of ``validation.jsonl``: the step, the videos and
each metric's mean over their frames, the numbers `toolkit eval` gives for those videos.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

VALIDATION_LOG = "validation.jsonl"


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

    def run(self, run_dir: Path) -> dict[str, float]:
        """Each pixel metric's mean over the frames of the validation videos, for the weights in `run_dir`."""
        from toolkit.harness.protocols import load_protocol
        from toolkit.harness.registry import get_method
        from toolkit.harness.runner import pixel_only, score_video
        from toolkit.shards.reader import Shards

        shards, protocol = Shards(self.shards), load_protocol("standard")
        runner = get_method(self.method, checkpoint=run_dir, **self.options)
        learned, frames = pixel_only(protocol), {}
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            for video_id in self.videos:
                scored = score_video(shards, video_id, protocol, learned, self.method, runner)
                for metric, values in scored.values.items():
                    frames.setdefault(metric, []).append(np.asarray(values, np.float64))
        return {metric: _mean(np.concatenate(parts)) for metric, parts in frames.items()}


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def log_validation(run_dir: Path, step: int, validation: Validation, metrics: Mapping[str, float],
                   seconds: float) -> dict[str, Any]:
    """Append one line to the run's validation.jsonl and return it."""
    record = {"step": step, "split": validation.split, "videos": validation.videos, "seconds": round(seconds, 3),
              **{k: (None if math.isnan(v) else v) for k, v in sorted(metrics.items())}}
    with open(run_dir / VALIDATION_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return record


def validate(run_dir: Path, step: int, validation: Validation) -> dict[str, Any]:
    """Validate the weights in `run_dir` at `step` and log the result."""
    began = time.monotonic()
    metrics = validation.run(run_dir)
    return log_validation(run_dir, step, validation, metrics, time.monotonic() - began)
