"""FID, FID-VID and FVD: network features of generated and ground-truth frames or clips, compared with the
Fréchet distance.

Each metric is a small accumulating class (a :class:`toolkit.metrics.base.Metric`: ``update(pred, target)`` /
``compute()`` / ``reset()`` / ``state()`` / ``merge()``) that keeps only features, plus functional twins:
``*_features`` turns frames or one video into feature vectors (the class calls it), and ``fid`` / ``fid_vid`` /
``fvd`` run the whole metric in one call.
Inputs are RGB frames, numpy or torch in either layout, uint8 or float in [0, 1] (quantised to uint8 first;
rules in ``toolkit.metrics.functional.frames.as_frames``): frames (N, H, W, 3) for FID, videos (T, H, W, 3)
-- or a list / a (B, T, H, W, 3) batch of them -- for FID-VID and FVD (channels-first: (B, T, 3, H, W)).
The two sides are unpaired sets; either may be None in an ``update``. Results carry the weights' sha256
and every protocol choice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from toolkit import weights
from toolkit.metrics.base import Metric, Video
from toolkit.metrics.frechet import frechet_distance_from_features
from toolkit.metrics.functional.frames import Frames, as_frames
from toolkit.metrics.networks import i3d, inception_fid, resnet3d
from toolkit.metrics.networks.resize import pil_resize_float, torch_resize

PROTOCOLS: dict[str, dict[str, str]] = {
    "fid": {
        "disco": "fid/disco/v1: pytorch-fid (the FID of DisCo's and MagicAnimate's tables): all frames pooled; "
        "frames to [0,1], torch bilinear resize to 299x299 (align_corners=False, no antialias), scaled to "
        "[-1,1]; 2048-d pool3 features of pt_inception-2015-12-05; Fréchet distance.",
        "standard": "fid/standard/v1: all frames pooled; each channel resized to 299x299 with PIL bicubic on "
        "float values (clean-fid's resize, no rounding), scaled to [-1,1]; 2048-d pool3 features of the same "
        "pytorch-fid Inception (not clean-fid's TorchScript network); Fréchet distance.",
    },
    "fid_vid": {
        "disco": "fid_vid/disco/v1: DisCo FVD-3DRN50: frames resized to 112x112 with PIL bicubic on float values, "
        "0..255 minus the Kinetics mean (114.7748, 107.7354, 99.4750); 3D ResNet-50 (Hara et al., shortcut B, "
        "Kinetics-400) 2048-d avgpool features of 16-frame clips; Fréchet distance over samples.",
    },
    "fvd": {
        "disco": "fvd/disco/v1: DisCo FVD-3DInception: frames squashed to 224x224 with PIL bicubic on float values, "
        "x/127.5-1; I3D-400 (piergiaj port, i3d_pretrained_400.pt) logits averaged over time, one vector per "
        "16-frame window; Fréchet distance over windows.",
        "standard": "fvd/standard/v1: StyleGAN-V-style clip sampling (16 consecutive frames, start frames drawn "
        "per video from a recorded seed) with the I3D-400 network and DisCo's preprocessing (PIL bicubic "
        "224x224, [-1,1], logits averaged over time). StyleGAN-V's own detector (i3d_torchscript.pt) is "
        "TorchScript and is not loaded; numbers are comparable with I3D-400 FVDs only.",
    },
}

CLIP_LENGTH = 16


@dataclass
class FrechetResult:
    """A Fréchet-distance metric value with what it was computed from."""

    metric: str
    value: float
    profile: str
    num_pred: int
    num_target: int
    weights: str
    weights_sha256: str
    protocol: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_profile(metric: str, profile: str) -> str:
    if profile not in PROTOCOLS[metric]:
        raise ValueError(f"unknown {metric} profile {profile!r}: use one of {sorted(PROTOCOLS[metric])}")
    return profile


def _check_videos(name: str, videos: object) -> list[np.ndarray]:
    """One video (T, H, W, 3), a batch (B, T, H, W, 3) or a list of videos (numpy or torch, either layout)
    -> list of (T, H, W, 3) uint8 arrays."""
    if isinstance(videos, (list, tuple)):
        pass
    elif isinstance(videos, (np.ndarray, torch.Tensor)):
        videos = list(videos) if videos.ndim == 5 else [videos]
    else:
        raise TypeError(f"{name} must be a video (T, H, W, 3), a batch (B, T, H, W, 3) or a list of videos, "
                        f"got {type(videos).__name__}")
    return [as_frames(f"{name}[{i}]", v) for i, v in enumerate(videos)]


def _to_numpy(features: torch.Tensor) -> np.ndarray:
    return features.detach().to("cpu", torch.float64).numpy()


class _FrechetMetric(Metric):
    """Shared accumulation: per-side feature lists (the state), the weights' hash, and the Fréchet step."""

    metric = ""
    artifact = ""
    states = {"pred_features": [], "target_features": [], "skipped": {"pred": 0, "target": 0}}
    needs_weights = True

    def __init__(self, profile: str, device: str | torch.device) -> None:
        self.profile = _check_profile(self.metric, profile)
        self.device = torch.device(device)
        self.weights_sha256 = weights.file_sha256(self.artifact)
        self.reset()

    @abstractmethod
    def _features(self, data: object, side: str) -> list[np.ndarray]:
        """Feature vectors of one side's data (frames or videos)."""

    def update(self, pred: object = None, target: object = None) -> None:
        """Add generated (pred) and/or ground-truth (target) data; the two sets need not be paired."""
        if pred is None and target is None:
            raise ValueError("update() needs pred, target or both")
        if pred is not None:
            self.pred_features += self._features(pred, "pred")
        if target is not None:
            self.target_features += self._features(target, "target")

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Add the video as one sample source (its clips); a distribution metric reports no per-frame values."""
        self.update(pred=[video.pred], target=[video.target])
        return {}

    def _details(self) -> dict:
        return {}

    def compute(self) -> FrechetResult:
        """The Fréchet distance between the two accumulated feature sets (each needs >= 2 samples)."""
        for side, feats in (("pred", self.pred_features), ("target", self.target_features)):
            if len(feats) < 2:
                raise ValueError(f"{self.metric}: {len(feats)} {side} sample(s) so far; the Fréchet distance "
                                 f"needs at least 2 per side (covariance)")
        pred = np.stack(self.pred_features)
        target = np.stack(self.target_features)
        return FrechetResult(
            metric=self.metric,
            value=frechet_distance_from_features(pred, target),
            profile=self.profile,
            num_pred=len(pred),
            num_target=len(target),
            weights=self.artifact,
            weights_sha256=self.weights_sha256,
            protocol=PROTOCOLS[self.metric][self.profile],
            details=self._details(),
        )


# ----------------------------------------------------------------------------- FID

def fid_features(model: torch.nn.Module, frames: Frames, profile: str = "disco",
                 batch_size: int = 50) -> np.ndarray:
    """(N, 2048) float64 Inception pool features of a batch of frames (see the module docstring) under a profile."""
    _check_profile("fid", profile)
    frames = as_frames("frames", frames)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        if profile == "disco":
            x = torch_resize(chunk, inception_fid.INPUT_SIZE)
        else:
            x = torch.from_numpy(pil_resize_float(chunk, inception_fid.INPUT_SIZE)).permute(0, 3, 1, 2) / 255.0
        with torch.inference_mode():
            out.append(_to_numpy(model(x.to(device) * 2.0 - 1.0)))
    return np.concatenate(out)


class FID(_FrechetMetric):
    """Fréchet Inception Distance over all frames seen (frames pooled across videos)."""

    metric = name = "fid"
    artifact = inception_fid.ARTIFACT

    def __init__(self, profile: str = "disco", device: str | torch.device = "cpu", batch_size: int = 50) -> None:
        super().__init__(profile, device)
        self.batch_size = batch_size
        self.model = inception_fid.load_fid_inception(self.device)

    def _features(self, data: object, side: str) -> list[np.ndarray]:
        return list(fid_features(self.model, as_frames(side, data), self.profile, self.batch_size))

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Add the video's frames to the pooled frames."""
        self.update(pred=video.pred, target=video.target)
        return {}


def fid(pred: Frames, target: Frames, profile: str = "disco", device: str | torch.device = "cpu",
        batch_size: int = 50) -> FrechetResult:
    """FID between two sets of frames, (N, H, W, 3) or (N, 3, H, W), numpy or torch."""
    metric = FID(profile, device, batch_size)
    metric.update(pred, target)
    return metric.compute()


# ----------------------------------------------------------------------------- clip sampling

def segment_starts(num_frames: int, clip_length: int = CLIP_LENGTH) -> list[int]:
    """Starts of consecutive non-overlapping clips covering the video (the last one padded)."""
    return list(range(0, num_frames, clip_length))


def sliding_starts(num_frames: int, clip_length: int = CLIP_LENGTH, stride: int = 1) -> list[int]:
    """Starts of every full window of ``clip_length`` frames, ``stride`` apart (none if the video is shorter)."""
    return list(range(0, num_frames - clip_length + 1, stride))


def video_key(video: int | str) -> int:
    """The clip sampler's key of a video: its id's first 8 sha256 bytes (an int is taken as it is), so a video
    gets the same clips whichever other videos are scored with it."""
    if isinstance(video, str):
        return int.from_bytes(hashlib.sha256(video.encode("utf-8")).digest()[:8], "little")
    return int(video)


def sampled_starts(num_frames: int, count: int, seed: int, video: int | str,
                   clip_length: int = CLIP_LENGTH) -> list[int]:
    """``count`` clip starts drawn uniformly (with replacement) from numpy's default_rng([seed, video_key(video)])."""
    rng = np.random.default_rng([seed, video_key(video)])
    return [int(s) for s in rng.integers(0, max(num_frames - clip_length, 0) + 1, size=count)]


def _clip_batches(video: torch.Tensor, starts: Sequence[int], clip_length: int,
                  batch_size: int) -> Iterable[torch.Tensor]:
    """Clips (B, C, clip_length, H, W) from a (T, C, H, W) video; frames past the end repeat the last frame."""
    last = video.shape[0] - 1
    for i in range(0, len(starts), batch_size):
        index = torch.tensor([[min(s + k, last) for k in range(clip_length)] for s in starts[i:i + batch_size]])
        yield video[index].permute(0, 2, 1, 3, 4)


# ----------------------------------------------------------------------------- FID-VID

FID_VID_CLIPS = ("segments", "sliding")


def fid_vid_features(model: resnet3d.ResNet3D50, video: Frames, clips: str = "segments",
                     batch_size: int = 8) -> np.ndarray:
    """3D ResNet-50 features of one (T, H, W, 3) video (or (T, 3, H, W); numpy or torch, see the module docstring).

    ``segments``: consecutive 16-frame clips, the last padded with its final frame, features averaged
    into one (1, 2048) vector per video (DisCo on video files). ``sliding``: one (2048,) row per
    16-frame window at stride 1 (DisCo on frame folders); a video shorter than 16 frames gives none.
    """
    if clips not in FID_VID_CLIPS:
        raise ValueError(f"unknown FID-VID clip mode {clips!r}; use one of {FID_VID_CLIPS}")
    video = as_frames("video", video)
    length = resnet3d.CLIP_LENGTH
    starts = segment_starts(len(video), length) if clips == "segments" else sliding_starts(len(video), length)
    if not starts:
        return np.zeros((0, resnet3d.FEATURE_DIM))
    device = next(model.parameters()).device
    pixels = pil_resize_float(video, resnet3d.INPUT_SIZE) - np.asarray(resnet3d.PIXEL_MEAN, dtype=np.float32)
    frames = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    out = []
    for batch in _clip_batches(frames, starts, length, batch_size):
        with torch.inference_mode():
            out.append(_to_numpy(model.features(batch.to(device))))
    feats = np.concatenate(out)
    return feats.mean(axis=0, keepdims=True) if clips == "segments" else feats


class FIDVID(_FrechetMetric):
    """FID-VID (DisCo's FVD-3DRN50): 3D ResNet-50 features per video (or per window), Fréchet distance."""

    metric = name = "fid_vid"
    artifact = resnet3d.ARTIFACT

    def __init__(self, profile: str = "disco", device: str | torch.device = "cpu", clips: str = "segments",
                 batch_size: int = 8) -> None:
        if clips not in FID_VID_CLIPS:
            raise ValueError(f"unknown FID-VID clip mode {clips!r}; use one of {FID_VID_CLIPS}")
        super().__init__(profile, device)
        self.clips = clips
        self.batch_size = batch_size
        self.model = resnet3d.load_resnet3d50(self.device)

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> FIDVID:
        """One network definition (DisCo's) under every card, so always the disco profile; the card picks the
        clips (``fid_vid_clips``), as it does FVD's."""
        return cls(profile="disco", device=device, clips=protocol.fid_vid_clips)

    def _features(self, data: object, side: str) -> list[np.ndarray]:
        rows: list[np.ndarray] = []
        for video in _check_videos(side, data):
            feats = fid_vid_features(self.model, video, self.clips, self.batch_size)
            self.skipped[side] += int(len(feats) == 0)
            rows += list(feats)
        return rows

    def _details(self) -> dict:
        return {"clips": self.clips, "clip_length": resnet3d.CLIP_LENGTH, "skipped_short_videos": dict(self.skipped)}


def fid_vid(pred: object, target: object, profile: str = "disco", device: str | torch.device = "cpu",
            clips: str = "segments", batch_size: int = 8) -> FrechetResult:
    """FID-VID between two sets of videos."""
    metric = FIDVID(profile, device, clips, batch_size)
    metric.update(pred, target)
    return metric.compute()


# ----------------------------------------------------------------------------- FVD

FVD_CLIPS = {"disco": ("sliding", "whole"), "standard": ("sampled",)}


def fvd_features(model: i3d.InceptionI3D, video: Frames, starts: Sequence[int] | None = None,
                 batch_size: int = 4) -> np.ndarray:
    """(len(starts), 400) I3D logits of 16-frame clips of one (T, H, W, 3) video (as ``fid_vid_features``).

    ``starts=None`` feeds the whole video as one clip (DisCo on video files).
    """
    video = as_frames("video", video)
    device = next(model.parameters()).device
    frames = torch.from_numpy(pil_resize_float(video, i3d.INPUT_SIZE) / 127.5 - 1.0).permute(0, 3, 1, 2)
    if starts is None:
        batches: Iterable[torch.Tensor] = [frames.permute(1, 0, 2, 3)[None]]
    else:
        if not starts:
            return np.zeros((0, i3d.NUM_CLASSES))
        batches = _clip_batches(frames, starts, CLIP_LENGTH, batch_size)
    out = []
    for batch in batches:
        with torch.inference_mode():
            out.append(_to_numpy(model(batch.to(device))))
    return np.concatenate(out)


class FVD(_FrechetMetric):
    """Fréchet Video Distance with I3D-400 logits.

    disco: every 16-frame window at stride 1 is a sample (``clips='sliding'``), or each whole video is
    one sample (``clips='whole'``, DisCo on 16-frame mp4 clips). standard: ``clips_per_video`` clips
    of 16 frames per video, starts drawn from ``seed`` and the video's id (``update(..., video_ids=)``;
    without ids, its position in the update order);
    videos shorter than 16 frames are padded with their last frame.
    """

    metric = name = "fvd"
    artifact = i3d.ARTIFACT
    states = {**_FrechetMetric.states, "videos_seen": {"pred": 0, "target": 0}}

    def __init__(self, profile: str = "disco", device: str | torch.device = "cpu", clips: str | None = None,
                 clips_per_video: int = 16, seed: int = 0, batch_size: int = 4) -> None:
        _check_profile("fvd", profile)
        clips = clips or FVD_CLIPS[profile][0]
        if clips not in FVD_CLIPS[profile]:
            raise ValueError(f"FVD profile {profile!r} takes clips in {FVD_CLIPS[profile]}, got {clips!r}")
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
        super().__init__(profile, device)
        self.clips = clips
        self.clips_per_video = clips_per_video
        self.seed = seed
        self.batch_size = batch_size
        self.model = i3d.load_i3d(self.device)

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> FVD:
        """The card's clips (``fvd_clips``, else the computation's default) and, where it sets
        ``fvd_clips_per_video``, that many sampled clips per video from its ``seed``."""
        extra: dict[str, Any] = {}
        if "fvd_clips_per_video" in protocol.raw:
            extra.update(clips_per_video=protocol.raw["fvd_clips_per_video"], seed=protocol.raw.get("seed", 0))
        return cls(profile=protocol.base, device=device, clips=protocol.fvd_clips or None, **extra)

    def reset(self) -> None:
        super().reset()
        self._ids: list[str] | None = None

    def update(self, pred: object = None, target: object = None, video_ids: Sequence[str] | None = None) -> None:
        """Add videos; `video_ids` (one per video, the same for pred and target) key the sampled clips, so a
        video's clips do not depend on which other videos are scored (without ids: its position so far)."""
        self._ids = None if video_ids is None else [str(v) for v in video_ids]
        try:
            super().update(pred, target)
        finally:
            self._ids = None

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Add the video, its clips keyed by its id (the same clips in any subset of videos)."""
        self.update(pred=[video.pred], target=[video.target], video_ids=[video.video_id])
        return {}

    def _starts(self, num_frames: int, side: str, k: int) -> list[int] | None:
        if self.clips == "whole":
            return None
        if self.clips == "sliding":
            return sliding_starts(num_frames)
        key = self._ids[k] if self._ids is not None else self.videos_seen[side]
        return sampled_starts(num_frames, self.clips_per_video, self.seed, key)

    def _features(self, data: object, side: str) -> list[np.ndarray]:
        rows: list[np.ndarray] = []
        videos = _check_videos(side, data)
        if self._ids is not None and len(self._ids) != len(videos):
            raise ValueError(f"fvd: {len(self._ids)} video ids for {len(videos)} {side} videos")
        for k, video in enumerate(videos):
            feats = fvd_features(self.model, video, self._starts(len(video), side, k), self.batch_size)
            self.videos_seen[side] += 1
            self.skipped[side] += int(len(feats) == 0)
            rows += list(feats)
        return rows

    def _details(self) -> dict:
        details = {"clips": self.clips, "clip_length": CLIP_LENGTH, "videos": dict(self.videos_seen),
                   "skipped_short_videos": dict(self.skipped)}
        if self.clips == "sampled":
            details.update(clips_per_video=self.clips_per_video, seed=self.seed,
                           sampler="numpy default_rng([seed, key]).integers, with replacement; key = first 8 "
                                   "bytes of sha256(video id), little-endian (the video's position without ids)")
        return details


def fvd(pred: object, target: object, profile: str = "disco", device: str | torch.device = "cpu",
        clips: str | None = None, clips_per_video: int = 16, seed: int = 0, batch_size: int = 4) -> FrechetResult:
    """FVD between two sets of videos."""
    metric = FVD(profile, device, clips, clips_per_video, seed, batch_size)
    metric.update(pred, target)
    return metric.compute()
