"""Generated training batches -> the harness's pixel metrics, so a training loop validates with the same numbers.

Models produce float tensors (B, T, 3, H, W) in [0, 1]; the metrics take (T, H, W, 3)
uint8 frames, as the harness scores them (predictions are quantised to uint8 there
too). `batch_frames` converts; `batch_metrics` scores a generated batch against the
batch's ground truth clips, with the person region from the batch's `mask` when it has one.
"""

from __future__ import annotations

import numpy as np
import torch

from toolkit.metrics.functional.frames import as_frames
from toolkit.metrics.functional.pixel import pixel_metrics


def batch_frames(images: torch.Tensor) -> list[np.ndarray]:
    """(B, T, 3, H, W) float (or uint8) -> B arrays (T, H, W, 3) uint8: floats clamped to [0, 1] (model outputs
    overshoot), then converted by the metrics' one rule (``as_frames``: round(x * 255), as images are saved)."""
    if images.ndim != 5 or images.shape[2] != 3:
        raise ValueError(f"expected (B, T, 3, H, W) images, got {tuple(images.shape)}")
    if images.is_floating_point():
        images = images.detach().clamp(0, 1)
    return [as_frames(f"images[{k}]", clip.permute(0, 2, 3, 1)) for k, clip in enumerate(images)]


def batch_metrics(generated: torch.Tensor, batch: dict, profile: str = "standard") -> dict[str, float]:
    """Mean per-frame pixel metrics of generated clips against `batch["frames"]` (and `batch["mask"]`, if any)."""
    preds, targets = batch_frames(generated), batch_frames(batch["frames"])
    masks = batch.get("mask")
    values: dict[str, list[np.ndarray]] = {}
    for k, (pred, target) in enumerate(zip(preds, targets)):
        if pred.shape != target.shape:
            raise ValueError(f"clip {k}: generated {pred.shape} but the batch holds {target.shape}")
        mask = None if masks is None or profile != "standard" else masks[k, :, 0].cpu().numpy() > 0.5
        for name, arr in pixel_metrics(pred, target, profile, mask=mask).items():
            values.setdefault(name, []).append(np.asarray(arr, np.float64))
    return {name: float(np.nanmean(np.concatenate(arrs))) for name, arrs in values.items()}
