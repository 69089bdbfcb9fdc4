"""SSIM between generated and ground-truth frames under the two profiles, computed with OpenCV filters.

disco:    DisCo reads frames with ``cv2.imread`` (BGR) and converts them with ``cv2.COLOR_BGR2GRAY``, so the
          channel weights are the correct luma weights 0.299 R + 0.587 G + 0.114 B (OpenCV's fixed-point uint8
          conversion). It then calls ``skimage.metrics.structural_similarity`` with its defaults: 7x7 uniform
          window, sample covariance (N/(N-1), N = 49), data range 255 from uint8, K1 = 0.01, K2 = 0.03, mean of
          the map after cropping 3 pixels at each border (the scikit-image form: filters with the edge pixel
          repeated, scipy's 'reflect'). On our RGB frames, ``cv2.COLOR_RGB2GRAY`` gives the same uint8 gray image.
          Values match scikit-image to about 1e-13.
standard: torchmetrics' ``structural_similarity_index_measure`` with its defaults (v1.1 of the profile; v1.0
          followed scikit-image's Gaussian form, 0.003-0.004 lower): frames in [0, 1], data range 1, 11x11
          Gaussian window (sigma 1.5), population covariance with variances clamped at 0, K1 = 0.01,
          K2 = 0.03, one map per RGB channel computed on the frame mirror-padded by 5 pixels (torch's
          'reflect': the edge pixel not repeated, OpenCV's BORDER_REFLECT_101), and the mean of the whole
          map over channels and pixels, borders included. With a mask, the channel-averaged map is averaged
          over the masked pixels, so an all-True mask gives the unmasked value. Values match torchmetrics
          (float64) to about 1e-12.
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.metrics.functional.frames import Frames, check_inputs, frame_mean, map_frames

K1 = 0.01
K2 = 0.03
WINDOW = {"disco": 7, "standard": 11}
GAUSSIAN_SIGMA = 1.5


def ssim_border(profile: str) -> int:
    """Pixels cropped at each image border before the SSIM map is averaged: (window - 1) // 2 for disco (the
    scikit-image form), none for standard (torchmetrics averages the whole map)."""
    return (WINDOW[profile] - 1) // 2 if profile == "disco" else 0


def _gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


_KERNEL = _gaussian_kernel(GAUSSIAN_SIGMA, (WINDOW["standard"] - 1) // 2)


def _local_means(stack: np.ndarray, profile: str) -> np.ndarray:
    """Windowed means of every (H, W) plane of a float64 (..., H, W) stack, same shape: disco with the edge
    pixel repeated at the borders (scikit-image), standard mirrored without it (torchmetrics)."""
    out = np.empty_like(stack)
    w = WINDOW[profile]
    for src, dst in zip(stack.reshape(-1, *stack.shape[-2:]), out.reshape(-1, *stack.shape[-2:])):
        if profile == "disco":
            cv2.boxFilter(src, cv2.CV_64F, (w, w), dst=dst, normalize=True, borderType=cv2.BORDER_REFLECT)
        else:
            cv2.sepFilter2D(src, cv2.CV_64F, _KERNEL, _KERNEL, dst=dst, borderType=cv2.BORDER_REFLECT_101)
    return out


def ssim_map(pred: np.ndarray, target: np.ndarray, profile: str) -> np.ndarray:
    """SSIM map of one (H, W, 3) uint8 frame pair, (H - 2b, W - 2b) with b = ssim_border (0 for standard).

    disco: one map of the gray images; standard: the mean of the three per-channel maps. The arithmetic
    follows scikit-image's (disco) and torchmetrics' (standard) formulas, so results agree with them to rounding.
    """
    h, w = target.shape[:2]
    stack = np.empty((5, 1 if profile == "disco" else 3, h, w), dtype=np.float64)
    x, y, xx, yy, xy = stack
    if profile == "disco":
        x[0] = cv2.cvtColor(np.ascontiguousarray(pred), cv2.COLOR_RGB2GRAY)
        y[0] = cv2.cvtColor(np.ascontiguousarray(target), cv2.COLOR_RGB2GRAY)
        data_range, n = 255.0, WINDOW["disco"] ** 2
        cov_norm = n / (n - 1)
    else:
        np.divide(pred.transpose(2, 0, 1), 255.0, out=x)
        np.divide(target.transpose(2, 0, 1), 255.0, out=y)
        data_range, cov_norm = 1.0, 1.0
    np.multiply(x, x, out=xx)
    np.multiply(y, y, out=yy)
    np.multiply(x, y, out=xy)
    # Local means E[x], E[y], E[x^2], E[y^2], E[xy]; the buffers are then reused in place under new names.
    mu_x, mu_y, e_xx, e_yy, e_xy = _local_means(stack, profile)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    mu_xy = mu_x * mu_y
    cov_xy = np.subtract(e_xy, mu_xy, out=e_xy)
    mu_x2 = np.multiply(mu_x, mu_x, out=mu_x)
    mu_y2 = np.multiply(mu_y, mu_y, out=mu_y)
    var_x = np.subtract(e_xx, mu_x2, out=e_xx)
    var_y = np.subtract(e_yy, mu_y2, out=e_yy)
    if cov_norm != 1.0:
        var_x *= cov_norm
        var_y *= cov_norm
        cov_xy *= cov_norm
    if profile == "standard":  # torchmetrics clamps rounding below zero
        np.maximum(var_x, 0.0, out=var_x)
        np.maximum(var_y, 0.0, out=var_y)
    a1 = mu_xy  # 2 mu_x mu_y + C1
    a1 *= 2
    a1 += c1
    a2 = cov_xy  # 2 cov_xy + C2
    a2 *= 2
    a2 += c2
    b1 = mu_x2  # mu_x^2 + mu_y^2 + C1
    b1 += mu_y2
    b1 += c1
    b2 = var_x  # var_x + var_y + C2
    b2 += var_y
    b2 += c2
    s = a1  # (A1 A2) / (B1 B2)
    s *= a2
    b1 *= b2
    s /= b1
    s = s[0] if len(s) == 1 else s.mean(axis=0)
    p = ssim_border(profile)
    return s[p:h - p, p:w - p] if p else s


def ssim_from_map(smap: np.ndarray, profile: str, region: np.ndarray | None = None) -> float:
    """Frame SSIM from its ``ssim_map``; ``region`` is a full-size (H, W) bool mask (standard only).

    The region is cropped like the map; an empty cropped region gives NaN.
    """
    if region is None:
        return float(smap.mean(dtype=np.float64))
    p = ssim_border(profile)
    inner = region[p:region.shape[0] - p, p:region.shape[1] - p]
    if not inner.any():
        return float("nan")
    return float(smap[inner].mean(dtype=np.float64))


def check_ssim_size(height: int, width: int, profile: str) -> None:
    """Raise ValueError if frames are smaller than the SSIM window of the profile."""
    w = WINDOW[profile]
    if min(height, width) < w:
        raise ValueError(f"frames of {height}x{width} are smaller than the {w}x{w} SSIM window of profile {profile!r}")


def ssim_per_frame(pred: Frames, target: Frames, profile: str = "standard",
                   mask: Frames | None = None, workers: int | None = None) -> np.ndarray:
    """Per-frame SSIM as an (N,) float64 array; ``mask`` (H, W) or (N, H, W) bool is for the standard profile."""
    pred, target, masks = check_inputs(pred, target, profile, mask)
    check_ssim_size(target.shape[1], target.shape[2], profile)

    def one(i: int) -> float:
        return ssim_from_map(ssim_map(pred[i], target[i], profile), profile, None if masks is None else masks[i])

    return np.asarray(map_frames(one, len(pred), workers), dtype=np.float64)


def ssim(pred: Frames, target: Frames, profile: str = "standard", mask: Frames | None = None) -> float:
    """SSIM averaged over frames (frames with an empty region skipped)."""
    return frame_mean(ssim_per_frame(pred, target, profile, mask))
