"""Metrics, torchmetrics-style: small classes on one base (``Metric``: update / compute / reset / state / merge),
each calling a pure functional twin; ``METRICS`` maps the names protocol cards use to the classes.

Pixel metrics (numpy/OpenCV): L1, PSNR, PSNR legacy, SSIM under the `disco` and `standard`
profiles. Network metrics (torch, weights from the registry): LPIPS, FID, FID-VID, FVD.
"""

from toolkit.metrics.base import Metric, Video
from toolkit.metrics.features import FID, FIDVID, FVD, FrechetResult, fid, fid_vid, fvd
from toolkit.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from toolkit.metrics.functional import PROFILES, metric_names, pixel_metrics
from toolkit.metrics.lpips import LPIPS, LPIPSResult, lpips_per_frame, lpips_score
from toolkit.metrics.pixel import L1, PSNR, SSIM, PixelMetrics, PSNRLegacy
from toolkit.metrics.registry import METRICS

__all__ = [
    "Metric", "Video", "METRICS",
    "L1", "PSNR", "PSNRLegacy", "SSIM", "PixelMetrics", "PROFILES", "metric_names", "pixel_metrics",
    "LPIPS", "LPIPSResult", "lpips_per_frame", "lpips_score",
    "FID", "FIDVID", "FVD", "FrechetResult", "fid", "fid_vid", "fvd",
    "feature_statistics", "frechet_distance", "frechet_distance_from_features",
]
