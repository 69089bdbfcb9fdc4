"""The one table from a metric's name, as protocol cards name it, to the class that computes it.

The harness builds a card's metrics from here (each with the card's settings, ``Metric.from_protocol``) and
scores them all through :class:`toolkit.metrics.base.Metric`. The pixel metrics are one class: one pass per
frame gives them all (with their ``_fg``/``_bg`` variants under the standard profile). A class is imported when
a card first asks for it, so a missing optional package (lpips) leaves only its metric unavailable.
"""

from __future__ import annotations

from toolkit.plugins import Registry

METRICS = Registry("metric", {
    "l1": "toolkit.metrics.pixel:PixelMetrics", "psnr": "toolkit.metrics.pixel:PixelMetrics",
    "psnr_legacy": "toolkit.metrics.pixel:PixelMetrics", "ssim": "toolkit.metrics.pixel:PixelMetrics",
    "lpips": "toolkit.metrics.lpips:LPIPS", "fid": "toolkit.metrics.features:FID",
    "fid_vid": "toolkit.metrics.features:FIDVID", "fvd": "toolkit.metrics.features:FVD",
})
