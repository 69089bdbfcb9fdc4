"""The MagicAnimate-style training objective, the same for both stages.

For a batch of clips (stage 1: single frames, F = 1; stage 2: clips): encode the frames
and the reference with the codec, draw a timestep per clip and noise (plus optional offset
noise), and regress the scheduler's target (epsilon for the paper's schedule, velocity for
the tiny config's) from the noised latents, the frames' DensePose renders and the clean
reference latent. With probability `p_uncond` a clip is trained without the reference
(plain self-attention in the denoiser), the unconditional branch that classifier-free
guidance needs; the DensePose condition and the empty prompt are never dropped, as in
MagicAnimate's guidance. `snr_gamma` caps the weight of low-noise timesteps
(:func:`toolkit.models.diffusion.snr_weight`). Every random number comes from the step's
generator, so a step is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from toolkit.models.diffusion import (
    as_float, clean_from_prediction, encode_frames, prediction_target, snr_weight)
from toolkit.models.pretrained import from_table


@dataclass
class ObjectiveConfig:
    """The `[objective]` table of a config."""

    p_uncond: float = 0.1
    offset_noise: float = 0.0
    snr_gamma: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ObjectiveConfig:
        out = from_table(cls, values, "objective")
        if not 0 <= out.p_uncond <= 1:
            raise ValueError(f"[objective] p_uncond must lie in [0, 1], got {out.p_uncond}")
        if out.snr_gamma is not None and not out.snr_gamma > 0:
            raise ValueError(f"[objective] snr_gamma must be > 0 (or left out), got {out.snr_gamma}")
        return out


def training_loss(model: nn.Module, codec: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator,
                  objective: ObjectiveConfig, scheduler: Any) -> torch.Tensor:
    """Weighted mean squared error of the model's prediction on one batch (see the module docstring)."""
    device = batch["frames"].device
    frames, densepose = as_float(batch["frames"]), as_float(batch["densepose"])   # (B, F, 3, H, W)
    with torch.no_grad():
        z0 = encode_frames(codec, frames, generator)                              # (B, C, F, h, w)
        ref_latent = codec.encode(as_float(batch["reference"]), generator)        # (B, C, h, w)
    b = z0.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator, device=device)
    noise = torch.randn(z0.shape, generator=generator, device=device)
    if objective.offset_noise:
        noise = noise + objective.offset_noise * torch.randn((*z0.shape[:2], 1, 1, 1), generator=generator,
                                                             device=device)
    use_reference = torch.rand(b, generator=generator, device=device) >= objective.p_uncond
    pred = model(scheduler.add_noise(z0, noise, t), t, densepose, ref_latent, use_reference=use_reference)
    weight = snr_weight(scheduler, t, objective.snr_gamma).view(b, 1, 1, 1, 1)
    return ((pred.float() - prediction_target(scheduler, z0, noise, t).float()) ** 2 * weight).mean()


@torch.no_grad()
def clean_estimate(model: nn.Module, codec: nn.Module, batch: dict[str, torch.Tensor], t: int,
                   generator: torch.Generator, scheduler: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's clean-latent estimate, the clean latents), both (B, C, F, h, w), for the batch noised to
    timestep `t` without offset noise, with the reference: a diagnostic (see ``scripts/learn_one_video.py``)."""
    frames, densepose = as_float(batch["frames"]), as_float(batch["densepose"])
    z0 = encode_frames(codec, frames, generator)
    ref_latent = codec.encode(as_float(batch["reference"]), generator)
    tt = torch.full((z0.shape[0],), t, device=z0.device, dtype=torch.long)
    zt = scheduler.add_noise(z0, torch.randn(z0.shape, generator=generator, device=z0.device), tt)
    keep = torch.ones(z0.shape[0], dtype=torch.bool, device=z0.device)
    return clean_from_prediction(scheduler, zt, model(zt, tt, densepose, ref_latent, use_reference=keep), tt), z0
