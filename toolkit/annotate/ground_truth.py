"""The `synthetic` (alias `source`) backends: annotations the source ships with its frames.

The synthetic dataset renders its people from known keypoints and IUV maps, and some
real sources ship annotations; those arrive in `ground_truth`, already transformed to
the stored frame coordinates. These backends validate and return them, so the rest of
the pipeline treats shipped annotations exactly like estimated ones.
"""

from __future__ import annotations

import numpy as np

from toolkit.annotate.backends import check_frames
from toolkit.keypoints import N_KEYPOINTS


def status() -> tuple[bool, str]:
    """Always available: it needs no library and no weights."""
    return True, "returns the annotations the source ships (needs a source that has them)"


def _ground_truth(ground_truth: dict | None, key: str, flag: str, real_fix: str) -> np.ndarray:
    if not ground_truth or ground_truth.get(key) is None:
        raise ValueError(
            f"{flag} synthetic needs a source that ships {key} (the synthetic dataset does); "
            f"use {real_fix} for real videos"
        )
    return np.asarray(ground_truth[key])


class GroundTruthPose:
    """Return the source's keypoints (T, 133, 3) float32, after checking they fit the frames."""

    name = "synthetic"

    def version(self) -> str:
        return "ground truth from the source"

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        kp = _ground_truth(ground_truth, "keypoints", "--pose", "--pose mediapipe")
        if kp.shape != (len(frames), N_KEYPOINTS, 3):
            raise ValueError(f"{self.name}: ground-truth keypoints have shape {kp.shape}, "
                             f"expected ({len(frames)}, {N_KEYPOINTS}, 3) for {len(frames)} frames")
        return kp.astype(np.float32, copy=True)


class GroundTruthDensepose:
    """Return the source's IUV maps (T, H, W, 3) uint8, after checking they fit the frames."""

    name = "synthetic"

    def version(self) -> str:
        return "ground truth from the source"

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        iuv = _ground_truth(ground_truth, "iuv", "--densepose", "--densepose densepose")
        if iuv.shape != frames.shape:
            raise ValueError(f"{self.name}: ground-truth IUV has shape {iuv.shape}, expected {frames.shape}")
        if iuv.dtype != np.uint8:
            raise ValueError(f"{self.name}: ground-truth IUV must be uint8, got {iuv.dtype}")
        if iuv[..., 0].max(initial=0) > 24:
            raise ValueError(f"{self.name}: ground-truth IUV part index (channel 0) exceeds 24")
        return iuv.copy()
