"""Pure functions behind the metric classes: frame batches (numpy or torch, see ``as_frames``) in, per-frame
arrays or frame means out."""

from toolkit.metrics.functional.frames import PROFILES, Frames, as_frames, frame_mean, match_size
from toolkit.metrics.functional.l1 import l1, l1_per_frame
from toolkit.metrics.functional.pixel import metric_names, pixel_metrics
from toolkit.metrics.functional.psnr import PSNR_CAP_DB, psnr, psnr_legacy, psnr_legacy_per_frame, psnr_per_frame
from toolkit.metrics.functional.ssim import ssim, ssim_per_frame

__all__ = [
    "PROFILES",
    "PSNR_CAP_DB",
    "Frames",
    "as_frames",
    "frame_mean",
    "l1",
    "l1_per_frame",
    "match_size",
    "metric_names",
    "pixel_metrics",
    "psnr",
    "psnr_legacy",
    "psnr_legacy_per_frame",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
]
