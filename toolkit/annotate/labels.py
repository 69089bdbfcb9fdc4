"""Label canvases -> colour images: one table lookup per colour plane.

The condition renders (pose skeletons, DensePose parts) are drawn with opaque,
un-blended colours, so each is exactly `palette[labels]` for a one-channel canvas
of colour indices. Drawing labels is cheaper than drawing colours, and labels are a
third of the bytes to move; these functions turn them into the images.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=8)
def _luts(palette: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (256, 1) uint8 table per colour plane for cv2.LUT: label -> R, G, B (labels past the palette -> 0)."""
    lut = np.zeros((256, 3), np.uint8)
    colours = np.frombuffer(palette, np.uint8).reshape(-1, 3)
    lut[:len(colours)] = colours
    return tuple(np.ascontiguousarray(lut[:, c:c + 1]) for c in range(3))


def colour(labels: np.ndarray, palette: np.ndarray, chw: bool = False) -> np.ndarray:
    """(..., h, w) uint8 labels -> (..., h, w, 3) uint8 `palette[labels]` ((..., 3, h, w) with `chw`).

    In the CHW layout each plane is looked up only inside the box around the labelled pixels; outside it every
    pixel is label 0, the background colour."""
    labels = np.asarray(labels)
    if labels.ndim < 2 or labels.dtype != np.uint8:
        raise ValueError(f"expected (..., h, w) uint8 labels, got {labels.shape} {labels.dtype}")
    luts = _luts(np.ascontiguousarray(palette, np.uint8).tobytes())
    planes = labels.reshape(-1, *labels.shape[-2:])
    h, w = labels.shape[-2:]
    out = np.empty((len(planes), 3, h, w) if chw else (len(planes), h, w, 3), np.uint8)
    for t, plane in enumerate(planes):
        if not chw:
            out[t] = cv2.merge([cv2.LUT(plane, lut) for lut in luts])
            continue
        x, y, bw, bh = cv2.boundingRect(plane)
        for c in range(3):
            dst, background = out[t, c], luts[c][0, 0]
            dst[:y], dst[y + bh:], dst[y:y + bh, :x], dst[y:y + bh, x + bw:] = (background,) * 4
            if bw and bh:
                cv2.LUT(plane[y:y + bh, x:x + bw], luts[c], dst=dst[y:y + bh, x:x + bw])
    return out.reshape(*labels.shape[:-2], *out.shape[1:])
