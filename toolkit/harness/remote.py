"""`toolkit eval --executor ray`: each test video scored as a Ray task, the distribution metrics merged here.

A task generates (or loads) one video and scores it with the same code as the local executor
(:func:`toolkit.harness.scoring.score_video`); the method and the metric networks are built once per Ray
worker process and kept for the next video. FID, FID-VID and FVD need every video's features: each task
sends its video's features back and this process adds them in the split's order, so the Fréchet
distances are computed from the same feature matrices as a local run.

A task whose worker died is retried (Ray re-executes it, up to `RETRIES` times: scoring is deterministic);
an error of the method or the data stops the run with that video named, as the local executor does, and
nothing is written. With saved predictions each task writes its video's files into the run's partial folder
itself (the results store path is sent resolved, so it must be one the workers share, as the shards must be).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from toolkit import ray_executor
from toolkit.harness.protocols import load_protocol
from toolkit.harness.registry import get_method
from toolkit.harness.scoring import LearnedMetrics, score_video
from toolkit.shards.reader import Shards

RETRIES = 3


@dataclass
class RemoteScoring:
    """What a worker needs to score any video of one run (sent to the cluster once)."""

    shards: Path
    method: Any                       # a registered name / module:Class spec, a Method instance, or None
    method_options: dict[str, Any]
    method_name: str
    found: dict[str, Any]             # video id -> prediction (predictions runs)
    profile: str
    device: str
    metrics: list[str]                # the network metrics available where the run was started
    keep: Any = None                  # a PredictionWriter: each worker writes its videos' predictions
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class RemoteScores:
    """A video's scores and its features for the distribution metrics (metric -> state)."""

    scores: Any
    frechet: dict[str, dict]


# The run whose method and metric networks this worker process holds: (token, shards, protocol, learned, runner).
_HELD: dict[str, tuple] = {}


def _held(job: RemoteScoring) -> tuple:
    """This worker's shards reader, protocol, metric networks and method for `job`, built on its first video."""
    if job.token not in _HELD:
        import socket

        _HELD.clear()  # one run at a time: free the previous run's networks
        protocol = load_protocol(job.profile)
        learned = LearnedMetrics(protocol, job.device)
        if sorted(learned.metrics) != job.metrics:
            missing = {m: learned.unavailable.get(m, "?") for m in job.metrics if m not in learned.metrics}
            raise RuntimeError(f"Ray worker on {socket.gethostname()} cannot compute the metrics the run started "
                               f"with: {missing}; give every node the same weights cache (toolkit weights status)")
        runner = job.method
        if isinstance(runner, str):
            runner = get_method(runner, **job.method_options)
        _HELD[job.token] = (Shards(job.shards), protocol, learned, runner)
    return _HELD[job.token]


def score_remote(video_id: str, job: RemoteScoring) -> RemoteScores:
    """The Ray task: score one video with this worker's networks; return its scores and its features."""
    shards, protocol, learned, runner = _held(job)
    for metric in learned.metrics.values():
        metric.reset()  # this video's features alone
    scores = score_video(shards, video_id, protocol, learned, job.method_name, runner, job.found.get(video_id),
                         job.keep)
    frechet = {name: m.state() for name, m in learned.metrics.items() if hasattr(m, "state")}
    return RemoteScores(scores, frechet)


def score_on_ray(job: RemoteScoring, video_ids: list[str], learned: LearnedMetrics, bar: tqdm, address: str | None,
                 workers: int | None) -> list[Any]:
    """Score `video_ids` on the cluster (`bar` advances as tasks finish); return their scores in `video_ids`
    order, with their features merged into `learned` in that order."""
    ray = ray_executor.require_ray()
    started = ray_executor.connect(address, workers)
    try:
        gpus = 0.0
        if job.device.startswith("cuda"):
            gpus = ray_executor.cluster_gpu_share()
            if not gpus:
                raise ValueError(f"--device {job.device}: the Ray cluster has no GPU")
        done: dict[str, RemoteScores] = {}
        for video_id, result in ray_executor.map_tasks(score_remote, video_ids, (job,), num_gpus=gpus,
                                                       max_retries=RETRIES):
            if isinstance(result, BaseException):
                cause = ray_executor.task_cause(result)
                if cause is result:  # the worker died, RETRIES times
                    raise RuntimeError(f"{video_id}: {ray_executor.describe_failure(result)}") from result
                raise cause
            done[video_id] = result
            bar.update()
    finally:
        if started:
            ray.shutdown()
    for video_id in video_ids:
        for name, state in done[video_id].frechet.items():
            learned.metrics[name].merge(state)
    return [done[video_id].scores for video_id in video_ids]
