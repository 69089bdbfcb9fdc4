"""All pixel metrics of a profile in one pass over the frames: ``pixel_metrics``.

Each frame pair is handled by one task: exact integer error sums (OpenCV norms) and one SSIM map, each
reduced over the whole frame and, for the standard profile with a mask, over the region (``_fg``) and its
complement (``_bg``). Frames run in parallel on a thread pool.
"""

from __future__ import annotations

import numpy as np

from toolkit.metrics.functional.frames import Frames, check_inputs, map_frames
from toolkit.metrics.functional.errors import error_sums
from toolkit.metrics.functional.l1 import l1_value
from toolkit.metrics.functional.psnr import psnr_legacy_frame, psnr_value
from toolkit.metrics.functional.ssim import check_ssim_size, ssim_from_map, ssim_map

METRICS: dict[str, tuple[str, ...]] = {
    "disco": ("l1", "psnr", "psnr_legacy", "ssim"),
    "standard": ("l1", "psnr", "ssim"),
}


def metric_names(profile: str, masked: bool = False) -> tuple[str, ...]:
    """Keys ``pixel_metrics`` returns for a profile (with ``_fg``/``_bg`` variants when a mask is given)."""
    names = METRICS[profile]
    if masked:
        names = names + tuple(f"{n}_{part}" for part in ("fg", "bg") for n in names)
    return names


def _frame_values(pred: np.ndarray, target: np.ndarray, profile: str, region: np.ndarray | None) -> dict[str, float]:
    h, w = target.shape[:2]
    smap = ssim_map(pred, target, profile)
    parts: list[tuple[str, np.ndarray | None]] = [("", None)]
    if region is not None:
        parts += [("_fg", region), ("_bg", ~region)]
    sums = error_sums(pred, target, [reg for _, reg in parts])
    out: dict[str, float] = {}
    for (suffix, reg), s in zip(parts, sums):
        out["l1" + suffix] = l1_value(s, profile, h, w)
        out["psnr" + suffix] = psnr_value(s, profile)
        out["ssim" + suffix] = ssim_from_map(smap, profile, reg)
    if profile == "disco":
        out["psnr_legacy"] = psnr_legacy_frame(pred, target)
    return out


def pixel_metrics(pred: Frames, target: Frames, profile: str = "standard", mask: Frames | None = None,
                  workers: int | None = None) -> dict[str, np.ndarray]:
    """Per-frame values of every pixel metric of ``profile``: {name: (N,) float64}, names from ``metric_names``.

    pred, target: RGB frames, numpy or torch, (N, H, W, 3) or (N, 3, H, W), uint8 or float in [0, 1] (float is
    quantised to uint8 first; rules in ``frames.as_frames``). disco resizes pred to the target size and takes no
    mask; standard needs equal sizes and takes an optional bool mask (H, W) or (N, H, W), True on the person region.
    ``workers`` threads (default os.cpu_count()). Frames whose masked region is empty give NaN in _fg/_bg.
    """
    pred, target, masks = check_inputs(pred, target, profile, mask)
    check_ssim_size(target.shape[1], target.shape[2], profile)
    rows = map_frames(lambda i: _frame_values(pred[i], target[i], profile, None if masks is None else masks[i]),
                      len(pred), workers)
    return {name: np.array([r[name] for r in rows], dtype=np.float64)
            for name in metric_names(profile, masks is not None)}
