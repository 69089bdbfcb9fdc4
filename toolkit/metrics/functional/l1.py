"""L1 (mean absolute error) between generated and ground-truth frames, under the two profiles.

disco:    mean over pixels and channels of |pred - target| on 0..255, divided by H*W
          (DisCo's ``l1_eval``); the value therefore shrinks with resolution.
standard: mean over pixels and channels of |pred - target| / 255, i.e. the MAE in [0, 1].
          With a mask, the mean runs over the masked pixels only (all three channels).
"""

from __future__ import annotations

import numpy as np

from toolkit.metrics.functional.errors import ErrorSums, error_sums
from toolkit.metrics.functional.frames import Frames, check_inputs, frame_mean, map_frames


def l1_value(sums: ErrorSums, profile: str, height: int, width: int) -> float:
    """L1 of one frame (or region) from its error sums; NaN when the region is empty."""
    if sums.pixels == 0:
        return float("nan")
    if profile == "disco":
        return sums.abs_total / (3 * sums.pixels) / (height * width)
    return sums.abs_total / (255.0 * 3 * sums.pixels)


def l1_per_frame(pred: Frames, target: Frames, profile: str = "standard",
                 mask: Frames | None = None, workers: int | None = None) -> np.ndarray:
    """Per-frame L1 as an (N,) float64 array; ``mask`` (H, W) or (N, H, W) bool is for the standard profile."""
    pred, target, masks = check_inputs(pred, target, profile, mask)
    h, w = target.shape[1:3]

    def one(i: int) -> float:
        region = None if masks is None else masks[i]
        return l1_value(error_sums(pred[i], target[i], [region])[0], profile, h, w)

    return np.asarray(map_frames(one, len(pred), workers), dtype=np.float64)


def l1(pred: Frames, target: Frames, profile: str = "standard", mask: Frames | None = None) -> float:
    """L1 averaged over frames (frames with an empty masked region are skipped)."""
    return frame_mean(l1_per_frame(pred, target, profile, mask))
