"""Metrics, torchmetrics-style: small classes with update/compute, each calling a pure functional twin.

Pixel metrics (numpy/OpenCV): L1, PSNR, PSNR legacy, SSIM under the `disco` and `standard`
profiles. Network metrics (torch, weights from the registry): LPIPS, FID, FID-VID, FVD.
"""

from toolkit.metrics.features import FID, FIDVID, FVD, FrechetResult, fid, fid_vid, fvd
from toolkit.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from toolkit.metrics.functional import PROFILES, metric_names, pixel_metrics
from toolkit.metrics.lpips import LPIPS, LPIPSResult, lpips_per_frame, lpips_score
from toolkit.metrics.pixel import L1, PSNR, SSIM, PixelMetrics, PSNRLegacy

__all__ = [
    "L1", "PSNR", "PSNRLegacy", "SSIM", "PixelMetrics", "PROFILES", "metric_names", "pixel_metrics",
    "LPIPS", "LPIPSResult", "lpips_per_frame", "lpips_score",
    "FID", "FIDVID", "FVD", "FrechetResult", "fid", "fid_vid", "fvd",
    "feature_statistics", "frechet_distance", "frechet_distance_from_features",
]
