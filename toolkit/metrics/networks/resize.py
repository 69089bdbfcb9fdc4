"""Resizing uint8 RGB frames for the metric networks.

``pil_resize_float`` is the resize DisCo's FID-VID/FVD code and clean-fid use: each channel becomes a
32-bit float PIL image, is resized with the given filter, and is kept as float (no rounding, no
clipping, so bicubic overshoot survives). ``torch_resize`` is ``F.interpolate`` on [0, 1] floats, the
resize pytorch-fid applies inside its Inception network.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def pil_resize_float(frames: np.ndarray, size: int, resample: str = "bicubic") -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size, size, 3) float32 on the 0..255 scale, squashed to a square."""
    if resample not in _FILTERS:
        raise ValueError(f"unknown resample filter {resample!r}; use one of {sorted(_FILTERS)}")
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.float32)
    for i, frame in enumerate(frames):
        for c in range(3):
            channel = Image.fromarray(np.ascontiguousarray(frame[:, :, c], dtype=np.float32))
            out[i, :, :, c] = np.asarray(channel.resize((size, size), resample=_FILTERS[resample]))
    return out


def torch_resize(frames: np.ndarray, size: int, antialias: bool = False) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float32 in [0, 1] via bilinear F.interpolate."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
