"""The one table from a metric's name, as protocol cards name it, to the class that computes it.

The harness builds a card's metrics from here (each with the card's settings, ``Metric.from_protocol``) and
scores them all through :class:`toolkit.metrics.base.Metric`. The pixel metrics are one class: one pass per
frame gives them all (with their ``_fg``/``_bg`` variants under the standard profile).
"""

from __future__ import annotations

from toolkit.metrics.base import Metric
from toolkit.metrics.features import FID, FIDVID, FVD
from toolkit.metrics.lpips import LPIPS
from toolkit.metrics.pixel import PixelMetrics

METRICS: dict[str, type[Metric]] = {
    "l1": PixelMetrics, "psnr": PixelMetrics, "psnr_legacy": PixelMetrics, "ssim": PixelMetrics,
    "lpips": LPIPS, "fid": FID, "fid_vid": FIDVID, "fvd": FVD,
}
