"""DensePose part images in MagicAnimate's style, and back to part indices.

MagicAnimate is conditioned on videos of the DensePose fine segmentation: the
part index I (0 = background, 1..24 = body parts) of every pixel, drawn the way
detectron2's fine-segmentation visualiser draws it: I scaled by 255/24, truncated
to uint8 and passed through OpenCV's viridis colour map. Checked against
MagicAnimate's driving videos: the background is viridis(0) (dark purple, not
black), there is no blending with the photo, and the colours are viridis in RGB
order when the video is decoded as RGB.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

N_PARTS = 24  # body parts; index 0 is background


@functools.lru_cache(maxsize=1)
def densepose_palette() -> np.ndarray:
    """(25, 3) uint8 RGB colour of part index 0..24."""
    values = (np.arange(N_PARTS + 1, dtype=np.float32) * np.float32(255.0 / N_PARTS)).astype(np.uint8)
    bgr = cv2.applyColorMap(values[None, :], cv2.COLORMAP_VIRIDIS)[0]
    return np.ascontiguousarray(bgr[:, ::-1])


def _part_index(iuv: np.ndarray) -> np.ndarray:
    arr = np.asarray(iuv)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., 0]
    elif arr.ndim != 2:
        raise ValueError(
            f"expected a part-index map (H, W) or an IUV image (H, W, 3) with I in channel 0, got {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise ValueError("part indices must be whole numbers")
    elif arr.dtype.kind not in "ui":
        raise ValueError(f"part indices must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > N_PARTS):
        raise ValueError(f"part indices must lie in 0..{N_PARTS}, got {arr.min()}..{arr.max()}")
    return arr.astype(np.intp)


def render_densepose(iuv: np.ndarray) -> np.ndarray:
    """Render a part-index map (H, W), or an IUV image (H, W, 3) with I in channel 0, as (H, W, 3) uint8 RGB."""
    return densepose_palette()[_part_index(iuv)]


def render_denseposes(iuv: np.ndarray) -> np.ndarray:
    """Render a (T, H, W) part-index sequence (or (T, H, W, 3) IUV) as (T, H, W, 3) uint8 RGB frames."""
    arr = np.asarray(iuv)
    if arr.ndim not in (3, 4):
        raise ValueError(f"expected (T, H, W) or (T, H, W, 3), got {arr.shape}")
    if len(arr) == 0:
        return np.zeros(arr.shape[:3] + (3,), np.uint8)
    return np.stack([render_densepose(frame) for frame in arr])


_LUT_BITS = 6


@functools.lru_cache(maxsize=1)
def _nearest_part_lut() -> np.ndarray:
    """Nearest palette index for every RGB colour quantised to _LUT_BITS bits per channel."""
    n = 1 << _LUT_BITS
    step = 256 // n
    centres = np.arange(n, dtype=np.float32) * step + (step - 1) / 2
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    palette = densepose_palette().astype(np.float32)
    best = np.full(len(grid), np.inf, np.float32)
    label = np.zeros(len(grid), np.uint8)
    for k, colour in enumerate(palette):
        d = ((grid - colour) ** 2).sum(-1)
        closer = d < best
        best[closer], label[closer] = d[closer], k
    return label


def densepose_render_to_parts(image: np.ndarray) -> np.ndarray:
    """Map a rendered DensePose image (..., H, W, 3) uint8 RGB back to part indices (..., H, W) uint8.

    Each pixel gets the part whose palette colour is nearest (via a lookup table of
    colours quantised to 6 bits per channel, so codec noise of a few levels is
    absorbed).
    """
    img = np.asarray(image)
    if img.ndim < 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected (..., H, W, 3) uint8 RGB, got shape {img.shape} dtype {img.dtype}")
    shift = 8 - _LUT_BITS
    q = (img >> shift).astype(np.int32)
    idx = (q[..., 0] << (2 * _LUT_BITS)) | (q[..., 1] << _LUT_BITS) | q[..., 2]
    return _nearest_part_lut()[idx]
