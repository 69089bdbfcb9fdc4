"""Exact integer sums of absolute and squared pixel errors of a frame pair, over the frame or over regions.

L1 and PSNR are both means of these sums. Computing them as integers makes them exact at any resolution, so
the disco values equal DisCo's float64 ``np.mean`` of the same integers bit for bit. (OpenCV's uint8
``NORM_L2SQR`` is not exact; the squared differences are therefore formed in int32 first.)
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np


class ErrorSums(NamedTuple):
    """Sums over the pixels of one region and the three channels of a frame pair."""

    abs_total: int  # sum of |pred - target| (0..255 units)
    sq_total: int  # sum of (pred - target)**2
    pixels: int  # pixels in the region (each has three channels)


def error_sums(pred: np.ndarray, target: np.ndarray,
               regions: Sequence[np.ndarray | None] = (None,)) -> list[ErrorSums]:
    """ErrorSums of one (H, W, 3) uint8 frame pair for each region: None = whole frame, else (H, W) bool."""
    diff = cv2.absdiff(np.ascontiguousarray(pred), np.ascontiguousarray(target))
    squared = cv2.multiply(diff, diff, dtype=cv2.CV_32S)
    out = []
    for region in regions:
        mask = None if region is None else np.ascontiguousarray(region).view(np.uint8)
        pixels = diff.shape[0] * diff.shape[1] if mask is None else cv2.countNonZero(mask)
        out.append(ErrorSums(int(cv2.norm(diff, cv2.NORM_L1, mask=mask)),
                             int(cv2.norm(squared, cv2.NORM_L1, mask=mask)), pixels))
    return out
