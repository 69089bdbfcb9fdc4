"""Keypoints and IUV maps -> the images models are conditioned on: one builder for training and evaluation.

`ClipDataset` (training), the harness's `Conditions` (evaluation), `toolkit animate`
and the report strips all call these functions, so a model sees the same inputs
when it is trained and when it is scored. Every function maps stored-frame
geometry to an output size the same way: scale to cover, then centre-crop
(:func:`cover_crop`). Renders are drawn directly at the output size (no
full-size render that is then shrunk), DensePose colours come from a lookup
table, so conditions cost little next to decoding the frames.
"""

from __future__ import annotations

import functools
from typing import Sequence

import cv2
import numpy as np

from toolkit.annotate.render_densepose import densepose_palette
from toolkit.annotate.render_pose import render_pose

Size = tuple[int, int]  # (height, width)


def cover_crop(source: Size, size: Size) -> tuple[float, int, int]:
    """Scale that makes `source` cover `size`, and the (y, x) offsets of the centred crop after scaling."""
    (h, w), (out_h, out_w) = source, size
    scale = max(out_h / h, out_w / w)
    sh, sw = round(h * scale), round(w * scale)
    return scale, (sh - out_h) // 2, (sw - out_w) // 2


def fit_image(image: np.ndarray, size: Size, nearest: bool = False) -> np.ndarray:
    """Resize to cover `size` and centre-crop: area when shrinking, bilinear when growing, nearest for labels."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    scale, oy, ox = cover_crop((h, w), size)
    sh, sw = round(h * scale), round(w * scale)
    if (sh, sw) != (h, w):
        interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        image = cv2.resize(image, (sw, sh), interpolation=interp)
    return image[oy:oy + size[0], ox:ox + size[1]]


def fit_keypoints(keypoints: np.ndarray, source: Size, size: Size) -> np.ndarray:
    """(..., 133, 3) keypoints in `source` pixels -> pixels of the fitted `size` image; missing points stay (0, 0, 0)."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    scale, oy, ox = cover_crop(source, size)
    absent = kp[..., 2] <= 0
    kp[..., 0] = kp[..., 0] * scale - ox
    kp[..., 1] = kp[..., 1] * scale - oy
    kp[absent] = 0
    return kp


def _output(n: int, size: Size, chw: bool) -> np.ndarray:
    return np.empty((n, 3, size[0], size[1]) if chw else (n, size[0], size[1], 3), np.uint8)


def _put(out: np.ndarray, t: int, image: np.ndarray, chw: bool) -> None:
    """Store an (h, w, 3) image as frame t; for CHW one cv2.split into the planes (cheaper than a transpose)."""
    if chw:
        cv2.split(image, [out[t, 0], out[t, 1], out[t, 2]])
    else:
        out[t] = image


def pose_images(keypoints: np.ndarray, source: Size, size: Size, style: str = "unianimate",
                hands: bool = True, face: bool = False, align_to: np.ndarray | None = None,
                chw: bool = False) -> np.ndarray:
    """Pose renders of (T, 133, 3) keypoints given in `source` pixels, as (T, h, w, 3) uint8 at `size`.

    `chw=True` returns (T, 3, h, w) instead, the layout models take.

    `align_to`: reference keypoints (133, 3) in `source` pixels; when given, the
    sequence is first moved onto the reference body (UniAnimate's alignment,
    :func:`toolkit.annotate.align.align_pose_sequence`).
    """
    seq = np.asarray(keypoints)
    if seq.ndim != 3 or seq.shape[1:] != (133, 3):
        raise ValueError(f"expected keypoints of shape (T, 133, 3), got {seq.shape}")
    if align_to is not None:
        from toolkit.annotate.align import align_pose_sequence

        seq = align_pose_sequence(seq, align_to)
    fitted = fit_keypoints(seq, source, size)
    out = _output(len(seq), size, chw)
    for t, kp in enumerate(fitted):
        _put(out, t, render_pose(kp, size[0], size[1], face=face, hands=hands, style=style), chw)
    return out


@functools.lru_cache(maxsize=1)
def _densepose_luts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (256, 1) uint8 table per colour plane for cv2.LUT: part index -> R, G, B (indices above 24 -> 0)."""
    lut = np.zeros((256, 3), np.uint8)
    palette = densepose_palette()
    lut[:len(palette)] = palette
    return tuple(np.ascontiguousarray(lut[:, c:c + 1]) for c in range(3))


def densepose_images(iuv: np.ndarray | Sequence[np.ndarray], size: Size, chw: bool = False) -> np.ndarray:
    """MagicAnimate-style DensePose renders of (T, H, W, 3) IUV (I in channel 0) as (T, h, w, 3) uint8 at `size`.

    Each frame may also be its (H, W) part-index plane alone. `chw=True` returns
    (T, 3, h, w): each colour plane is then one table lookup written in place.
    """
    frames = list(iuv)
    out = _output(len(frames), size, chw)
    luts = _densepose_luts()
    for t, frame in enumerate(frames):
        part = np.ascontiguousarray(frame[..., 0] if frame.ndim == 3 else frame)
        if part.dtype != np.uint8:
            raise ValueError(f"IUV maps must be uint8, got {part.dtype}")
        if part.max(initial=0) > 24:
            raise ValueError(f"DensePose part indices must lie in 0..24, got up to {part.max()}")
        part = fit_image(part, size, nearest=True)
        if chw:  # outside the person's bounding box every pixel is background (part 0): fill, look up the box
            x, y, w, h = cv2.boundingRect(part)
            for c in range(3):
                plane, background = out[t, c], luts[c][0, 0]
                plane[:y], plane[y + h:], plane[y:y + h, :x], plane[y:y + h, x + w:] = (background,) * 4
                cv2.LUT(part[y:y + h, x:x + w], luts[c], dst=plane[y:y + h, x:x + w])
        else:
            out[t] = cv2.merge([cv2.LUT(part, lut) for lut in luts])
    return out


def to_chw_float(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1], the layout models take."""
    return np.moveaxis(images, -1, -3).astype(np.float32) / 255


def generation_size(trained: Size, multiple: int, height: int, width: int) -> Size:
    """The size a model trained at `trained` generates a height x width video at: the trained area with the
    video's aspect, each side a multiple of `multiple` (what the UNet and codec take)."""
    h = np.sqrt(trained[0] * trained[1] * height / width)
    return (max(multiple, int(round(h / multiple)) * multiple),
            max(multiple, int(round(h * width / height / multiple)) * multiple))
