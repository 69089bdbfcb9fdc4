"""Checks and helpers shared by the metrics: frame batches, masks, size matching, per-frame threading.

Every metric takes batches of RGB frames, ``pred`` (generated) and ``target`` (ground truth), as numpy
arrays or torch tensors in either layout, uint8 or float in [0, 1]; ``as_frames`` is the one place that
turns them into the (N, H, W, 3) uint8 numpy frames the metrics compute on (its docstring gives the
rules). Bad input raises a ValueError/TypeError that says which argument is wrong and how.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, TypeVar, Union

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

PROFILES: dict[str, str] = {
    "disco": (
        "disco/v1: DisCo's public evaluation (Wangt-CN/DisCo c4fa48a, tool/metrics/ssim_l1_lpips_psnr.py). "
        "Whole frame; pred resized to the target size with cv2 bilinear; L1 = mean |pred-target| on 0..255 "
        "divided by H*W; PSNR on float values, MAX 255, 100 for identical frames; psnr_legacy = the pre-6190108 "
        "uint8 wrap-around PSNR; SSIM on cv2 luma (0.299R+0.587G+0.114B, uint8) with a 7x7 uniform window, "
        "sample covariance, data range 255. Each metric is the mean over all frames."
    ),
    "standard": (
        "standard/v1: frames in [0,1]; L1 = mean absolute error; PSNR = 10*log10(1/MSE) per frame, capped at "
        "100 dB; SSIM (Wang et al. 2004) per RGB channel with an 11x11 Gaussian window (sigma 1.5), population "
        "covariance, K1=0.01, K2=0.03, data range 1, averaged over channels and over the map without its 5-pixel "
        "border. With a mask: the same quantities over the masked pixels (_fg) and over the rest (_bg). "
        "Each metric is the mean over frames."
    ),
}

T = TypeVar("T")
# What the metrics take as frames and masks: a numpy array or a torch tensor (rules: ``as_frames``).
Frames = Union[np.ndarray, "torch.Tensor"]


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known evaluation profile, else raise ValueError listing the known ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown pixel-metric profile {profile!r}: use one of {sorted(PROFILES)}")
    return profile


def _numpy(name: str, data: object) -> np.ndarray:
    """``data`` as a numpy array: numpy as it is, a torch tensor detached and copied to the CPU (float16 and
    bfloat16 as float32, which numpy lacks or cannot hold exactly); anything else is a TypeError."""
    if isinstance(data, np.ndarray):
        return data
    torch = sys.modules.get("torch")  # no tensor can exist unless torch was imported
    if torch is not None and isinstance(data, torch.Tensor):
        data = data.detach()
        if data.is_floating_point() and data.dtype not in (torch.float32, torch.float64):
            data = data.float()
        return data.cpu().numpy()
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(data).__name__}")


def as_frames(name: str, frames: object) -> np.ndarray:
    """(N, H, W, 3) uint8 numpy frames from a batch of RGB frames, numpy or torch (any device); raise on bad input.

    Layout: channels-last (N, H, W, 3) when the last dimension is 3, else channels-first (N, 3, H, W) when
    dimension 1 is 3. An (N, 3, H, 3) batch therefore reads as channels-last; permute a 3-pixel-wide
    channels-first batch yourself. Values: uint8 as they are (0..255); float (any precision) must lie in
    [0, 1] (NaN or anything outside is a ValueError: clamp first) and becomes uint8 as round(x * 255), halves
    to even (``np.rint``; ``torch.round`` rounds halves the same way), so a float batch equal to
    uint8 / 255 scores exactly as the uint8 batch. Other dtypes (bool, int) are a TypeError. The metrics
    compute on uint8, hence the quantisation; a tensor leaves its device once, here.
    """
    frames = _numpy(name, frames)
    if frames.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W, 3) or (N, 3, H, W) (a batch of RGB frames), got "
                         f"{frames.shape}; for a single frame pass frame[None]")
    channels_first = frames.shape[3] != 3
    if channels_first and frames.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, H, W, 3) or (N, 3, H, W) (RGB frames), got "
                         f"{frames.shape}: neither the last dimension nor dimension 1 is 3")
    if frames.shape[0] == 0:
        raise ValueError(f"{name} holds no frames (shape {frames.shape})")
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.floating):
            raise TypeError(f"{name} must be uint8 (0..255) or float in [0, 1], got dtype {frames.dtype}")
        values = frames if frames.dtype == np.float64 else frames.astype(np.float32)
        lo, hi = values.min(), values.max()
        if not (lo >= 0 and hi <= 1):
            raise ValueError(f"{name} is float with values from {lo:.6g} to {hi:.6g}; float frames must lie in "
                             f"[0, 1] with no NaN: pass values in 0..255 as uint8 (or divide them by 255), and "
                             f"clamp model outputs to [0, 1] first")
        frames = np.rint(values * 255).astype(np.uint8)
    return np.ascontiguousarray(frames.transpose(0, 2, 3, 1)) if channels_first else frames


def match_size(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize every frame to (height, width) with cv2 bilinear, as DisCo does with generated frames."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames])


def check_frames(pred: object, target: object, resize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (pred, target) pair of frame batches; resize pred to the target size if ``resize``.

    Without ``resize`` a size mismatch is an error, so a protocol never rescales frames silently.
    """
    pred = as_frames("pred", pred)
    target = as_frames("target", target)
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred has {pred.shape[0]} frames but target has {target.shape[0]}")
    if pred.shape[1:3] != target.shape[1:3]:
        if not resize:
            raise ValueError(f"pred frames are {pred.shape[1]}x{pred.shape[2]} but target frames are "
                             f"{target.shape[1]}x{target.shape[2]} (HxW); resize them first "
                             f"(toolkit.metrics.functional.match_size) or use profile='disco', which resizes")
        pred = match_size(pred, target.shape[1], target.shape[2])
    return pred, target


def check_mask(mask: object, n: int, height: int, width: int) -> np.ndarray | None:
    """Validate a boolean region mask (numpy or torch), (H, W) for all frames or (N, H, W) per frame; return it
    as a numpy (N, H, W) array."""
    if mask is None:
        return None
    mask = _numpy("mask", mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be boolean (True = region), got dtype {mask.dtype}; "
                        f"for a 0/255 image pass mask > 0")
    if mask.shape == (height, width):
        return np.broadcast_to(mask, (n, height, width))
    if mask.shape == (n, height, width):
        return mask
    raise ValueError(f"mask must have shape (H, W) = {(height, width)} or (N, H, W) = {(n, height, width)}, "
                     f"got {mask.shape}")


def map_frames(fn: Callable[[int], T], n: int, workers: int | None = None) -> list[T]:
    """Call ``fn(i)`` for i in range(n) on a thread pool (OpenCV and numpy release the GIL); keep order."""
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if n == 1 or workers == 1:
        return [fn(i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
        return list(pool.map(fn, range(n)))


def check_inputs(pred: object, target: object, profile: str,
                 mask: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate everything a pixel metric gets; return (pred, target, masks as (N, H, W) or None).

    The disco profile resizes pred to the target size and refuses masks (DisCo scores whole frames).
    """
    check_profile(profile)
    pred, target = check_frames(pred, target, resize=profile == "disco")
    if mask is not None and profile == "disco":
        raise ValueError("the disco profile scores whole frames (DisCo has no mask); use profile='standard' "
                         "for metrics inside and outside a region")
    return pred, target, check_mask(mask, *target.shape[:3])


def frame_mean(values: np.ndarray) -> float:
    """Mean of per-frame values, skipping NaN (frames whose masked region is empty); NaN if none is left."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")
