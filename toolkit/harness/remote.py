"""`toolkit eval --executor ray`: each test video scored as a Ray task, the metrics' states merged here.

A task generates (or loads) one video and scores it with the same code as the local executor
(:func:`toolkit.harness.scoring.score_video`); the method and the metric networks are built once per Ray
worker process and kept for the next video. Each task resets its metrics, scores its video and sends back every
metric's `state()` (for FID, FID-VID and FVD the video's features); this process `merge`s them in the split's
order (``toolkit.metrics.base.Metric``), so the Fréchet distances are computed from the same feature matrices as
a local run.

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
from toolkit.harness.scoring import ProtocolMetrics, score_video
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
    """A video's scores and every metric's state after that video alone (metric -> state)."""

    scores: Any
    states: dict[str, dict]


# The run whose method and metric networks this worker process holds: (token, shards, protocol, metrics, runner).
_HELD: dict[str, tuple] = {}


def _held(job: RemoteScoring) -> tuple:
    """This worker's shards reader, protocol, metric networks and method for `job`, built on its first video."""
    if job.token not in _HELD:
        import socket

        _HELD.clear()  # one run at a time: free the previous run's networks
        protocol = load_protocol(job.profile)
        metrics = ProtocolMetrics(protocol, job.device)
        if sorted(metrics.metrics) != job.metrics:
            missing = {m: metrics.unavailable.get(m, "?") for m in job.metrics if m not in metrics.metrics}
            raise RuntimeError(f"Ray worker on {socket.gethostname()} cannot compute the metrics the run started "
                               f"with: {missing}; give every node the same weights cache (toolkit weights status)")
        runner = job.method
        if isinstance(runner, str):
            runner = get_method(runner, **job.method_options)
        _HELD[job.token] = (Shards(job.shards), protocol, metrics, runner)
    return _HELD[job.token]


def score_remote(video_id: str, job: RemoteScoring) -> RemoteScores:
    """The Ray task: score one video with this worker's networks; return its scores and its metrics' states."""
    shards, protocol, metrics, runner = _held(job)
    metrics.reset()  # this video's state alone
    scores = score_video(shards, video_id, protocol, metrics, job.method_name, runner, job.found.get(video_id),
                         job.keep)
    return RemoteScores(scores, metrics.states())


def score_on_ray(job: RemoteScoring, video_ids: list[str], metrics: ProtocolMetrics, bar: tqdm, address: str | None,
                 workers: int | None) -> list[Any]:
    """Score `video_ids` on the cluster (`bar` advances as tasks finish); return their scores in `video_ids`
    order, with their metrics' states merged into `metrics` in that order."""
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
        metrics.merge(done[video_id].states)
    return [done[video_id].scores for video_id in video_ids]
