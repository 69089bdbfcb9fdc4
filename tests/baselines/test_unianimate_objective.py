"""The UniAnimate training objective: the SNR clamp weighs each clip's v-loss by min(1, gamma / (1 + SNR(t)))."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from baselines.unianimate.objective import ObjectiveConfig, snr_weight, training_loss
from baselines.unianimate.pipeline import make_scheduler
from toolkit.models.codec import PixelCodec


class ZeroModel(nn.Module):
    """Predicts zero velocity and records the timesteps it was asked about."""

    config = SimpleNamespace(local_image=False)

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, zt, t, pose, ref_latent, ref_pose, image_embeds=None, local_image=None):
        self.seen.append(t.clone())
        return torch.zeros_like(zt)


def batch(n: int = 1, frames: int = 3, size: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    img = lambda *s: torch.randint(0, 256, s, generator=g, dtype=torch.uint8)  # noqa: E731
    return {"frames": img(n, frames, 3, size, size), "pose": img(n, frames, 3, size, size),
            "reference": img(n, 3, size, size), "reference_pose": img(n, 3, size, size)}


def test_snr_weight_is_one_at_zero_snr_and_clamps_low_noise_timesteps():
    scheduler = make_scheduler()
    t = torch.tensor([999, 900, 500, 100, 10, 0])
    alpha = scheduler.alphas_cumprod[t].double()
    snr = alpha / (1 - alpha)
    expected = torch.minimum(torch.ones_like(snr), 5.0 / (1 + snr))
    got = snr_weight(scheduler, t, 5.0)
    assert torch.allclose(got.double(), expected, atol=1e-6)
    assert got[0] == 1.0 and got[-1] < 0.01
    assert torch.equal(snr_weight(scheduler, t, None), torch.ones(6))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_loss_of_a_clip_is_scaled_by_its_snr_weight(seed):
    scheduler, codec = make_scheduler(), PixelCodec(2)
    plain = ObjectiveConfig(p_uncond=0.0, p_first_frame=0.0)
    clamped = ObjectiveConfig(p_uncond=0.0, p_first_frame=0.0, snr_gamma=2.0)
    model = ZeroModel()
    base = training_loss(model, codec, batch(), torch.Generator().manual_seed(seed), plain, scheduler)
    weighted = training_loss(model, codec, batch(), torch.Generator().manual_seed(seed), clamped, scheduler)
    t = model.seen[-1]
    assert torch.equal(model.seen[0], t)  # the same draws: only the weight differs
    assert weighted.item() == pytest.approx(base.item() * snr_weight(scheduler, t, 2.0).item(), rel=1e-5)


def test_snr_gamma_must_be_positive():
    with pytest.raises(ValueError, match="snr_gamma"):
        ObjectiveConfig.from_dict({"snr_gamma": 0})
