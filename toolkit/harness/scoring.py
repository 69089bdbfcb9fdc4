"""Scoring one video: the harness's inputs for it, the method's frames (or the stored ones), every metric.

Shared by the local executor (:mod:`toolkit.harness.runner`), the Ray tasks (:mod:`toolkit.harness.remote`),
validation while training and the leaderboard's strips, so that a video is given to a method and scored the
same way wherever it runs. :class:`ProtocolMetrics` holds the protocol's metrics, built once per process from the
metrics' one table (``toolkit.metrics.registry.METRICS``) with the card's settings; a metric whose weights or package
are missing is recorded with why. Every metric is given each video the same way (``Metric.update_video``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from toolkit import plugins, weights
from toolkit.harness.method import Conditions, Method
from toolkit.harness.protocols import Protocol
from toolkit.harness.saved_predictions import PredictionWriter
from toolkit.harness.store import Note
from toolkit.metrics.base import Metric, Video
from toolkit.metrics.registry import METRICS
from toolkit.shards.reader import Shards


class ProtocolMetrics:
    """The protocol's metrics, built once (`metrics`: by each class's name, e.g. one "pixel" entry for l1, psnr,
    ...); a missing one is recorded, never dropped.

    `unavailable` maps a card's metric to its note; a note caused by weights is a
    :class:`~toolkit.harness.store.Note` that also names the artifact, which the store keeps in its own column
    (`weights_artifact`).
    """

    def __init__(self, protocol: Protocol, device: str, names: Sequence[str] | None = None):
        """`names`: build only the metrics of these of the card's names (default: all)."""
        self.metrics: dict[str, Metric] = {}
        self.unavailable: dict[str, str] = {}
        self.weights_artifacts: dict[str, str] = {}     # metric -> the artifact that is missing or mismatched
        for name in protocol.metrics:
            if names is not None and name not in names:
                continue
            try:
                cls = METRICS.get(name)
                if cls.name not in self.metrics:
                    self.metrics[cls.name] = cls.from_protocol(protocol, device)
            except weights.WeightsMissing as exc:
                self.weights_artifacts[name] = exc.artifact
                self.unavailable[name] = Note(f"unavailable ({exc.reason})", weights_artifact=exc.artifact)
            except weights.WeightsMismatch as exc:  # a wrong file in the cache is never used
                if exc.artifact:
                    self.weights_artifacts[name] = exc.artifact
                self.unavailable[name] = Note(f"unavailable (weights: {exc})", weights_artifact=exc.artifact)
            except (ImportError, plugins.PluginError) as exc:
                missing = exc.__cause__ if isinstance(exc, plugins.PluginError) else exc
                if not isinstance(missing, ImportError):  # a broken metric module is an error, not a gap
                    raise
                self.unavailable[name] = f"unavailable (package: {missing.name} missing)"

    def metric(self, name: str) -> Metric:
        """The metric that computes the card's metric `name` (KeyError when it was not built)."""
        return self.metrics[METRICS.get(name).name]

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Give the video to every metric; the per-frame values they report, by name."""
        values: dict[str, np.ndarray] = {}
        for metric in self.metrics.values():
            values.update(metric.update_video(video))
        return values

    def reset(self) -> None:
        """Every metric emptied (a Ray task scores each video from empty states)."""
        for metric in self.metrics.values():
            metric.reset()

    def states(self) -> dict[str, dict]:
        """Every metric's `state()`, by name (what a Ray task sends back)."""
        return {name: metric.state() for name, metric in self.metrics.items()}

    def merge(self, states: dict[str, dict]) -> None:
        """Add `states()` of another instance built from the same card, metric by metric."""
        for name, state in states.items():
            self.metrics[name].merge(state)

    def weights_sha256(self) -> dict[str, str]:
        return {k: m.weights_sha256 for k, m in self.metrics.items() if m.needs_weights}


def pixel_only(protocol: Protocol) -> ProtocolMetrics:
    """No network metrics: `score_video` then scores the protocol's pixel metrics alone (validation in training)."""
    return ProtocolMetrics(protocol, "cpu", names=[n for n in protocol.metrics if not _needs_weights(n)])


def _needs_weights(name: str) -> bool:
    """Whether the card's metric `name` reads pretrained weights (one whose package is missing counts as such)."""
    try:
        return METRICS.get(name).needs_weights
    except plugins.PluginError:
        return True


def _region(shards: Shards, row, sl: slice) -> tuple[np.ndarray | None, str]:
    """The person region of the ground truth for the scored frames, and where it came from."""
    if row.has_mask:
        return shards.masks(row.video_id)[sl] > 127, "mask"
    if row.has_iuv:
        return shards.iuv(row.video_id)[sl][..., 0] > 0, "iuv"
    return None, "none"


def conditions_for(shards: Shards, video_id: str, max_frames: int | None = None,
                   with_ground_truth: bool = False) -> tuple[np.ndarray, Conditions]:
    """The ground truth (all frames, or the first max_frames) and the inputs the harness gives a method for it."""
    row = shards.video(video_id)
    n = int(row.n_frames) if max_frames is None else min(int(max_frames), int(row.n_frames))
    idx = None if n == int(row.n_frames) else list(range(n))
    gt = shards.frames(video_id, idx)
    kp = shards.keypoints(video_id, idx) if row.has_keypoints else None
    iuv = shards.iuv(video_id, idx) if row.has_iuv else None
    cond = Conditions(
        video_id=video_id, n_frames=len(gt), height=gt.shape[1], width=gt.shape[2], fps=float(row.fps),
        reference=gt[0].copy(), reference_keypoints=None if kp is None else kp[0], keypoints=kp,
        iuv=iuv, reference_iuv=None if iuv is None else iuv[0],
        ground_truth=gt.copy() if with_ground_truth else None,
    )
    return gt, cond


@dataclass
class VideoScores:
    """One video's scores: per-frame values of the scored frames, and where its person region came from."""

    video_id: str
    frames: list[int]
    values: dict[str, np.ndarray]
    region_source: str
    saved: dict[str, str] = field(default_factory=dict)   # stored prediction files: path in run folder -> sha256


def score_video(shards: Shards, video_id: str, protocol: Protocol, metrics: ProtocolMetrics, method_name: str,
                runner: Method | None = None, prediction: Any = None,
                keep: PredictionWriter | None = None) -> VideoScores:
    """Generate (or load) one video and give its scored frames to every metric in `metrics`; the per-frame values
    are returned (the distribution metrics keep their samples). `keep` stores what the method generated (every frame,
    losslessly)."""
    row = shards.video(video_id)
    if runner is not None:
        gt, cond = conditions_for(shards, video_id, with_ground_truth=runner.uses_ground_truth)
        pred = np.asarray(runner.generate(cond))
        if pred.shape != gt.shape or pred.dtype != np.uint8:
            raise ValueError(f"method {method_name} returned {pred.shape} {pred.dtype} for {video_id}, "
                             f"expected {gt.shape} uint8")
        saved = keep.save(video_id, pred, float(row.fps)) if keep is not None else {}
    else:
        gt, pred = shards.frames(video_id), prediction.load()
        saved = {}
    sl = protocol.scored_frames(len(gt))
    p, g = pred[sl], gt[sl]
    idx = list(range(len(gt)))[sl]
    region, source = _region(shards, row, sl) if protocol.uses_regions else (None, "none")
    values = metrics.update_video(Video(video_id, p, g, region))
    return VideoScores(video_id, idx, values, source, saved)
