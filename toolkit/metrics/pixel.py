"""Pixel metrics as small accumulating classes: update(pred, target, mask=None) / compute() / reset().

Each class calls its functional twin in ``toolkit.metrics.functional`` and keeps a sum and a count of the
per-frame values, so ``compute()`` is the mean over every frame seen (frames pooled across videos, as DisCo
and the papers that copy its tables do). Frames whose masked region is empty (NaN) are not counted.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from toolkit.metrics.functional.frames import Frames, check_profile
from toolkit.metrics.functional.l1 import l1_per_frame
from toolkit.metrics.functional.pixel import pixel_metrics
from toolkit.metrics.functional.psnr import psnr_legacy_per_frame, psnr_per_frame
from toolkit.metrics.functional.ssim import ssim_per_frame


class _FrameMean:
    """Mean over frames of a per-frame metric; subclasses name the functional twin."""

    _per_frame: Callable[..., np.ndarray]

    def __init__(self, profile: str = "standard") -> None:
        self.profile = check_profile(profile)
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self.total = 0.0
        self.count = 0
        self.frames = 0

    def update(self, pred: Frames, target: Frames, mask: Frames | None = None) -> None:
        """Add a batch of frame pairs, numpy or torch (``as_frames``: (N, H, W, 3) or (N, 3, H, W), uint8 or float in
        [0, 1]); mask: bool (H, W) or (N, H, W), standard only."""
        values = type(self)._per_frame(pred, target, self.profile, mask)
        kept = values[~np.isnan(values)]
        self.total += float(kept.sum())
        self.count += int(kept.size)
        self.frames += int(values.size)

    def compute(self) -> float:
        """Mean over the counted frames; NaN if every frame had an empty region."""
        if self.frames == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return self.total / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile!r}, frames={self.frames})"


class L1(_FrameMean):
    """L1 error: disco = MAE on 0..255 divided by H*W; standard = MAE in [0, 1]."""

    _per_frame = staticmethod(l1_per_frame)


class PSNR(_FrameMean):
    """PSNR in dB: disco = MAX 255, 100 if identical; standard = [0, 1] data, capped at 100 dB."""

    _per_frame = staticmethod(psnr_per_frame)


class SSIM(_FrameMean):
    """SSIM: disco = gray, 7x7 uniform, sample covariance; standard = RGB, Gaussian 11/1.5, Wang et al. 2004."""

    _per_frame = staticmethod(ssim_per_frame)


class PSNRLegacy(_FrameMean):
    """DisCo's pre-6190108 uint8 wrap-around PSNR (always >= 24.07 dB); only for matching published tables."""

    @staticmethod
    def _per_frame(pred: Frames, target: Frames, profile: str, mask: Frames | None) -> np.ndarray:
        if mask is not None:
            raise ValueError("PSNRLegacy reproduces DisCo's whole-frame value and takes no mask")
        return psnr_legacy_per_frame(pred, target)

    def __init__(self) -> None:
        super().__init__("disco")


class PixelMetrics:
    """Every pixel metric of a profile at once (one pass per frame); compute() gives {name: mean over frames}."""

    def __init__(self, profile: str = "standard", workers: int | None = None) -> None:
        self.profile = check_profile(profile)
        self.workers = workers
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.frames = 0

    def update(self, pred: Frames, target: Frames, mask: Frames | None = None) -> None:
        """Add a batch of frame pairs; with a mask the _fg/_bg metrics are accumulated too (use it every time)."""
        values = pixel_metrics(pred, target, self.profile, mask, self.workers)
        if self.frames and set(values) != set(self.totals):
            raise ValueError("mixing updates with and without a mask: give a mask to every update() or to none")
        for name, v in values.items():
            kept = v[~np.isnan(v)]
            self.totals[name] = self.totals.get(name, 0.0) + float(kept.sum())
            self.counts[name] = self.counts.get(name, 0) + int(kept.size)
        self.frames += len(pred)

    def compute(self) -> dict[str, float]:
        """Mean over frames of every metric (NaN for a region that was empty in every frame)."""
        if self.frames == 0:
            raise RuntimeError("PixelMetrics.compute() called before any update()")
        return {name: self.totals[name] / self.counts[name] if self.counts[name] else float("nan")
                for name in self.totals}

    def __repr__(self) -> str:
        return f"PixelMetrics(profile={self.profile!r}, frames={self.frames})"
