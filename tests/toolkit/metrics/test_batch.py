"""Generated training batches scored with the harness's pixel metrics: a batch's clips given to `PixelMetrics`
(the class the harness scores with) give the mean of the per-frame values of each clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.batch_frames import batch_frames
from toolkit.metrics import PixelMetrics, pixel_metrics


def _batch_metrics(generated: torch.Tensor, batch: dict, profile: str = "standard") -> dict[str, float]:
    """Mean per-frame pixel metrics of generated clips against `batch["frames"]` (and `batch["mask"]`, if any)."""
    metric = PixelMetrics(profile)
    masks = batch.get("mask")
    for k, (pred, target) in enumerate(zip(batch_frames(generated), batch_frames(batch["frames"]))):
        metric.update(pred, target, mask=None if masks is None else masks[k, :, 0].cpu().numpy() > 0.5)
    return metric.compute()


def test_batch_metrics_equal_the_harness_metrics_on_the_same_frames():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 3, 24, 20, generator=g)
    generated = (frames + 0.1 * torch.randn(frames.shape, generator=g)).clamp(0, 1)
    mask = torch.zeros(2, 3, 1, 24, 20)
    mask[..., 6:18, 5:15] = 1
    got = _batch_metrics(generated, {"frames": frames, "mask": mask})
    preds, targets = batch_frames(generated), batch_frames(frames)
    expected = {}
    for k in range(2):
        for name, arr in pixel_metrics(preds[k], targets[k], "standard", mask=mask[k, :, 0].numpy() > 0.5).items():
            expected.setdefault(name, []).extend(arr.tolist())
    assert set(got) == set(expected) and "l1_fg" in got
    for name in got:
        assert got[name] == pytest.approx(np.mean(expected[name]), rel=1e-12)
    assert _batch_metrics(frames, {"frames": frames})["l1"] == 0


def test_batch_frames_rounds_like_saved_images_and_checks_shapes():
    x = torch.tensor([0.0, 0.5, 1.0, 1.2]).view(1, 1, 1, 2, 2).expand(1, 1, 3, 2, 2)
    assert batch_frames(x)[0][0, :, :, 0].tolist() == [[0, 128], [255, 255]]
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        batch_frames(torch.rand(2, 3, 8, 8))
