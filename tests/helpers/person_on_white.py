"""Test oracle: the person mask of a frame shot against a plain white studio background (UBC-Fashion).

The background colour is the median of the frame's top rows and side columns. A pixel
is person when it is clearly darker than that background or clearly coloured (the
spread of its channels); an opening removes specks, a closing joins thin gaps, and the
largest connected component is the person. Holes are not filled: the floor shadow can
join the feet and would close the gap between the legs. It is part of the tests, not of
the toolkit: it works only on such backgrounds, which is what lets it check a learned
segmentation there.
"""

from __future__ import annotations

import cv2
import numpy as np

DARKER = 30        # grey levels below the background's mean
COLOURED = 40      # max - min over the channels
BORDER = 8         # rows / columns sampled for the background colour


def person_on_white(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) bool person mask."""
    f = np.asarray(frame, np.int16)
    border = np.concatenate([f[:BORDER].reshape(-1, 3), f[:, :BORDER].reshape(-1, 3), f[:, -BORDER:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    darker = background.mean() - f.mean(axis=2) > DARKER
    coloured = f.max(axis=2) - f.min(axis=2) > COLOURED
    mask = (darker | coloured).astype(np.uint8)
    size = max(3, (min(f.shape[:2]) // 50) | 1)  # 5 pixels at 256
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
