"""PSNR between generated and ground-truth frames: DisCo's two versions and the standard one.

disco ``psnr``:        MSE on float values in 0..255 over the whole frame, 20*log10(255/sqrt(MSE)),
                       exactly 100 when the frames are identical (DisCo after commit 6190108; UniAnimate's PSNR*).
disco ``psnr_legacy``: DisCo before 6190108 took ``np.mean((a - b) ** 2)`` on uint8 arrays, so both the
                       difference and its square wrap modulo 256. Each squared term is at most 255, so the
                       value is always >= 10*log10(255) = 24.07 dB; this is the "PSNR ~ 29" of most tables.
standard ``psnr``:     frames in [0, 1], PSNR = 10*log10(1/MSE) per frame, capped at 100 dB (MSE 1e-10, an RMS
                       error of about 1/400 of a grey level), so identical frames give 100 and the mean over frames
                       stays finite. With a mask, the MSE runs over the masked pixels (all three channels).
"""

from __future__ import annotations

import math

import numpy as np

from toolkit.metrics.functional.errors import ErrorSums, error_sums
from toolkit.metrics.functional.frames import Frames, check_inputs, frame_mean, map_frames

PSNR_CAP_DB = 100.0


def psnr_value(sums: ErrorSums, profile: str) -> float:
    """PSNR of one frame (or region) from its error sums; NaN when the region is empty."""
    if sums.pixels == 0:
        return float("nan")
    if profile == "disco":
        mse = sums.sq_total / (3 * sums.pixels)
        return 100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))
    mse = sums.sq_total / (255.0 * 255.0 * 3 * sums.pixels)
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(1.0 / mse))


def psnr_legacy_frame(pred: np.ndarray, target: np.ndarray) -> float:
    """DisCo's pre-6190108 PSNR of one uint8 frame: ((a - b) mod 256)**2 mod 256 averaged, MAX 255, 100 if zero."""
    wrapped = np.subtract(pred, target, dtype=np.uint8)
    squared = np.multiply(wrapped, wrapped, dtype=np.uint8)
    mse = int(squared.sum(dtype=np.int64)) / squared.size
    return 100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def psnr_per_frame(pred: Frames, target: Frames, profile: str = "standard",
                   mask: Frames | None = None, workers: int | None = None) -> np.ndarray:
    """Per-frame PSNR in dB as an (N,) float64 array; ``mask`` (H, W) or (N, H, W) bool is for standard."""
    pred, target, masks = check_inputs(pred, target, profile, mask)

    def one(i: int) -> float:
        region = None if masks is None else masks[i]
        return psnr_value(error_sums(pred[i], target[i], [region])[0], profile)

    return np.asarray(map_frames(one, len(pred), workers), dtype=np.float64)


def psnr(pred: Frames, target: Frames, profile: str = "standard", mask: Frames | None = None) -> float:
    """PSNR averaged over frames (mean of per-frame dB values, frames with an empty region skipped)."""
    return frame_mean(psnr_per_frame(pred, target, profile, mask))


def psnr_legacy_per_frame(pred: Frames, target: Frames, workers: int | None = None) -> np.ndarray:
    """Per-frame wrap-around PSNR (DisCo before 6190108) as an (N,) float64 array; pred resized as in disco."""
    pred, target, _ = check_inputs(pred, target, "disco")
    return np.asarray(map_frames(lambda i: psnr_legacy_frame(pred[i], target[i]), len(pred), workers),
                      dtype=np.float64)


def psnr_legacy(pred: Frames, target: Frames) -> float:
    """Wrap-around PSNR averaged over frames; reported only so that published "PSNR" columns can be matched."""
    return frame_mean(psnr_legacy_per_frame(pred, target))
