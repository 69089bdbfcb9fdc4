"""Generated training batches -> the (T, H, W, 3) uint8 clips the harness's metrics score.

Models produce float tensors (B, T, 3, H, W) in [0, 1]; the metrics take (T, H, W, 3) uint8 frames, as the
harness scores them (predictions are quantised to uint8 there too). Used by the tests that score a model's
output as a training loop would (the library's methods convert their own outputs).
"""

from __future__ import annotations

import numpy as np
import torch

from toolkit.metrics.functional.frames import as_frames


def batch_frames(images: torch.Tensor) -> list[np.ndarray]:
    """(B, T, 3, H, W) float (or uint8) -> B arrays (T, H, W, 3) uint8: floats clamped to [0, 1] (model outputs
    overshoot), then converted by the metrics' one rule (``as_frames``: round(x * 255), as images are saved)."""
    if images.ndim != 5 or images.shape[2] != 3:
        raise ValueError(f"expected (B, T, 3, H, W) images, got {tuple(images.shape)}")
    if images.is_floating_point():
        images = images.detach().clamp(0, 1)
    return [as_frames(f"images[{k}]", clip.permute(0, 2, 3, 1)) for k, clip in enumerate(images)]
