"""Scoring one video: the harness's inputs for it, the method's frames (or the stored ones), every metric.

Shared by the local executor (:mod:`toolkit.harness.runner`), the Ray tasks (:mod:`toolkit.harness.remote`),
validation while training and the leaderboard's strips, so that a video is given to a method and scored the
same way wherever it runs. :class:`LearnedMetrics` holds the protocol's network metrics (LPIPS, FID, FID-VID,
FVD), built once per process; a metric whose weights or package are missing is recorded with why.
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
from toolkit.metrics.functional.pixel import pixel_metrics
from toolkit.shards.reader import Shards

#: The network metrics by name; each is built with (profile=, device=, ...) and imported only when a protocol uses it.
LEARNED_METRICS = plugins.Registry("learned metric", {
    "lpips": "toolkit.metrics.lpips:LPIPS", "fid": "toolkit.metrics.features:FID",
    "fid_vid": "toolkit.metrics.features:FIDVID", "fvd": "toolkit.metrics.features:FVD",
})


class LearnedMetrics:
    """The protocol's network metrics, built once; a missing one is recorded, never dropped.

    `unavailable` maps a metric to its note; a note caused by weights is a :class:`~toolkit.harness.store.Note`
    that also names the artifact, which the store keeps in its own column (`weights_artifact`).
    """

    def __init__(self, protocol: Protocol, device: str, names: Sequence[str] | None = None):
        """`names`: build only these of the protocol's network metrics (default: all; () for none)."""
        self.metrics: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}
        self.weights_artifacts: dict[str, str] = {}     # metric -> the artifact that is missing or mismatched
        for name in protocol.metrics:
            if name not in LEARNED_METRICS or (names is not None and name not in names):
                continue
            try:
                build = LEARNED_METRICS.get(name)
                # FID-VID has one network definition (DisCo's); the card picks its clips, as it does FVD's
                profile = "disco" if name == "fid_vid" else protocol.base
                extra: dict[str, Any] = {}
                if name == "fid_vid":
                    extra = {"clips": protocol.fid_vid_clips}
                elif name == "fvd":
                    extra = {"clips": protocol.fvd_clips or None}
                    if "fvd_clips_per_video" in protocol.raw:
                        extra.update(clips_per_video=protocol.raw["fvd_clips_per_video"],
                                     seed=protocol.raw.get("seed", 0))
                self.metrics[name] = build(profile=profile, device=device, **extra)
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

    def weights_sha256(self) -> dict[str, str]:
        return {k: getattr(m, "weights_sha256", "") for k, m in self.metrics.items()}


def pixel_only(protocol: Protocol) -> LearnedMetrics:
    """No network metrics: `score_video` then scores the protocol's pixel metrics alone (validation in training)."""
    return LearnedMetrics(protocol, "cpu", names=())


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


def score_video(shards: Shards, video_id: str, protocol: Protocol, learned: LearnedMetrics, method_name: str,
                runner: Method | None = None, prediction: Any = None,
                keep: PredictionWriter | None = None) -> VideoScores:
    """Generate (or load) one video, score its frames, and add it to the distribution metrics in `learned`;
    `keep` stores what the method generated (every frame, losslessly)."""
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
    values = pixel_metrics(p, g, protocol.base, mask=region)
    if "lpips" in learned.metrics:
        lp = learned.metrics["lpips"]
        values["lpips"] = lp.update(p, g)
        if region is not None:
            from toolkit.metrics.lpips import lpips_per_frame

            values["lpips_fg"] = lpips_per_frame(lp.model, p, g, protocol.base, mask=region)
            values["lpips_bg"] = lpips_per_frame(lp.model, p, g, protocol.base, mask=~region)
    for metric in ("fid", "fid_vid", "fvd"):
        if metric in learned.metrics:
            m = learned.metrics[metric]
            if metric == "fvd":  # clips keyed by the video's id: the same clips in any subset of videos
                m.update(pred=[p], target=[g], video_ids=[video_id])
            else:
                m.update(pred=p if metric == "fid" else [p], target=g if metric == "fid" else [g])
    return VideoScores(video_id, idx, values, source, saved)
