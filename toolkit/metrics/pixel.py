"""Pixel metrics as small accumulating classes (:class:`toolkit.metrics.base.Metric`): update(pred, target,
mask=None) / compute() / reset() / state() / merge().

Each class calls its functional twin in ``toolkit.metrics.functional`` and keeps a sum and a count of the
per-frame values, so ``compute()`` is the mean over every frame seen (frames pooled across videos, as DisCo
and the papers that copy its tables do). Frames whose masked region is empty (NaN) are not counted.
:class:`PixelMetrics` computes every pixel metric of a profile in one pass; the harness scores with it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from toolkit.metrics.base import Metric, Video
from toolkit.metrics.functional.frames import Frames, check_profile
from toolkit.metrics.functional.l1 import l1_per_frame
from toolkit.metrics.functional.pixel import pixel_metrics
from toolkit.metrics.functional.psnr import psnr_legacy_per_frame, psnr_per_frame
from toolkit.metrics.functional.ssim import ssim_per_frame


class _FrameMean(Metric):
    """Mean over frames of a per-frame metric; subclasses name the functional twin."""

    _per_frame: Callable[..., np.ndarray]
    states = {"total": 0.0, "count": 0, "frames": 0}

    def __init__(self, profile: str = "standard") -> None:
        self.profile = check_profile(profile)
        self.reset()

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> _FrameMean:
        return cls(protocol.base)

    def update(self, pred: Frames, target: Frames, mask: Frames | None = None) -> np.ndarray:
        """Add a batch of frame pairs, numpy or torch (``as_frames``: (N, H, W, 3) or (N, 3, H, W), uint8 or float in
        [0, 1]); mask: bool (H, W) or (N, H, W), standard only. Returns the per-frame values."""
        values = type(self)._per_frame(pred, target, self.profile, mask)
        kept = values[~np.isnan(values)]
        self.total += float(kept.sum())
        self.count += int(kept.size)
        self.frames += int(values.size)
        return values

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """The video's frames, whole (and the region, when it has one: ``NAME_fg`` and ``NAME_bg`` are returned
        beside ``NAME`` but only the whole-frame values are accumulated)."""
        out = {self.name: self.update(video.pred, video.target)}
        if video.region is not None:
            for part, region in (("fg", video.region), ("bg", ~video.region)):
                out[f"{self.name}_{part}"] = type(self)._per_frame(video.pred, video.target, self.profile, region)
        return out

    def compute(self) -> float:
        """Mean over the counted frames; NaN if every frame had an empty region."""
        if self.frames == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return self.total / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile!r}, frames={self.frames})"


class L1(_FrameMean):
    """L1 error: disco = MAE on 0..255 divided by H*W; standard = MAE in [0, 1]."""

    name = "l1"
    _per_frame = staticmethod(l1_per_frame)


class PSNR(_FrameMean):
    """PSNR in dB: disco = MAX 255, 100 if identical; standard = [0, 1] data, capped at 100 dB."""

    name = "psnr"
    _per_frame = staticmethod(psnr_per_frame)


class SSIM(_FrameMean):
    """SSIM: disco = gray, 7x7 uniform, sample covariance; standard = RGB, Gaussian 11/1.5, Wang et al. 2004."""

    name = "ssim"
    _per_frame = staticmethod(ssim_per_frame)


class PSNRLegacy(_FrameMean):
    """DisCo's pre-6190108 uint8 wrap-around PSNR (always >= 24.07 dB); only for matching published tables."""

    name = "psnr_legacy"

    @staticmethod
    def _per_frame(pred: Frames, target: Frames, profile: str, mask: Frames | None) -> np.ndarray:
        if mask is not None:
            raise ValueError("PSNRLegacy reproduces DisCo's whole-frame value and takes no mask")
        return psnr_legacy_per_frame(pred, target)

    def __init__(self) -> None:
        super().__init__("disco")

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> PSNRLegacy:
        return cls()


class PixelMetrics(Metric):
    """Every pixel metric of a profile at once (one pass per frame); compute() gives {name: mean over frames}.

    The harness's pixel metrics: a card's ``l1``, ``psnr``, ``psnr_legacy`` and ``ssim`` are all this one class.
    """

    name = "pixel"
    states = {"totals": {}, "counts": {}, "frames": 0}

    def __init__(self, profile: str = "standard", workers: int | None = None) -> None:
        self.profile = check_profile(profile)
        self.workers = workers
        self.reset()

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> PixelMetrics:
        return cls(protocol.base)

    def update(self, pred: Frames, target: Frames, mask: Frames | None = None) -> dict[str, np.ndarray]:
        """Add a batch of frame pairs; with a mask the _fg/_bg metrics are accumulated too (use it every time).
        Returns the per-frame values ({name: (N,) float64}, as ``pixel_metrics``)."""
        values = pixel_metrics(pred, target, self.profile, mask, self.workers)
        if self.frames and set(values) != set(self.totals):
            raise ValueError("mixing updates with and without a mask: give a mask to every update() or to none")
        self._add(values, len(pred))
        return values

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """The video's per-frame values, with ``_fg``/``_bg`` where it has a region. Videos with and without a
        region may be mixed here: each ``_fg``/``_bg`` mean is over the frames that had one."""
        values = pixel_metrics(video.pred, video.target, self.profile, video.region, self.workers)
        self._add(values, len(video.pred))
        return values

    def _add(self, values: dict[str, np.ndarray], frames: int) -> None:
        for name, v in values.items():
            kept = v[~np.isnan(v)]
            self.totals[name] = self.totals.get(name, 0.0) + float(kept.sum())
            self.counts[name] = self.counts.get(name, 0) + int(kept.size)
        self.frames += frames

    def compute(self) -> dict[str, float]:
        """Mean over frames of every metric (NaN for a region that was empty in every frame)."""
        if self.frames == 0:
            raise RuntimeError("PixelMetrics.compute() called before any update()")
        return {name: self.totals[name] / self.counts[name] if self.counts[name] else float("nan")
                for name in self.totals}

    def __repr__(self) -> str:
        return f"PixelMetrics(profile={self.profile!r}, frames={self.frames})"
