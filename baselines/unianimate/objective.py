"""The UniAnimate-style training objective: v-prediction on a noised clip, with the unified noise input.

For a batch of clips: encode frames and the reference with the codec, draw a
timestep per clip and noise (with a little offset noise, as UniAnimate trains),
and regress the velocity v = sqrt(a) * noise - sqrt(1 - a) * x0 (diffusers'
`get_velocity`) under the zero-terminal-SNR schedule of the sampler. Two
dropouts teach the two sampling modes:

* with probability `p_uncond` every condition of a clip is dropped (zero pose,
  zero reference latent and pose, zero local image, zero image embedding): the
  unconditional branch classifier-free guidance needs;
* with probability `p_first_frame` the clip's first frame is given clean instead
  of noised and left out of the loss: first-frame conditioning, which `chain`
  sampling uses to continue one segment from the last frame of the previous one.

`snr_gamma` (optional) clamps how much the low-noise timesteps weigh. The plain
v-loss weighs the clean-image error of a timestep by 1 + SNR(t), so nearly
noise-free steps, where the model must find per-pixel noise that hardly changes
the sample, dominate the gradient. With `snr_gamma` g each clip's v-loss is
scaled by min(1, g / (1 + SNR)): the clean-image weight becomes min(1 + SNR, g)
(the idea of Min-SNR-g, Hang et al. 2023, which the field's open trainers use
with g = 5; this form keeps the weight 1 at the zero-SNR timestep the sampler
starts from, where Min-SNR's min(SNR, g) / (1 + SNR) would be 0).

Every random number comes from the step's generator, so a step is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from baselines.unianimate.pipeline import make_scheduler
from toolkit.models.diffusion import as_float, encode_frames, snr_weight
from toolkit.models.pretrained import from_table


@dataclass
class ObjectiveConfig:
    """The `[objective]` table of a config."""

    p_uncond: float = 0.1
    p_first_frame: float = 0.3
    offset_noise: float = 0.1
    snr_gamma: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ObjectiveConfig:
        out = from_table(cls, values, "objective")
        for key in ("p_uncond", "p_first_frame"):
            if not 0 <= getattr(out, key) <= 1:
                raise ValueError(f"[objective] {key} must lie in [0, 1], got {getattr(out, key)}")
        if out.snr_gamma is not None and not out.snr_gamma > 0:
            raise ValueError(f"[objective] snr_gamma must be > 0 (or left out), got {out.snr_gamma}")
        return out


def training_loss(model: nn.Module, codec: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator,
                  objective: ObjectiveConfig, scheduler: Any = None,
                  image_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of the predicted velocity on one batch (see the module docstring).

    `image_embeds` (B, D): the references' image embeddings (OpenCLIP's, as UniAnimate conditions on), zeroed
    with the other conditions of a dropped clip, as the sampler's unconditional half zeroes them.
    """
    scheduler = scheduler or make_scheduler()
    device = batch["frames"].device
    frames, pose = as_float(batch["frames"]), as_float(batch["pose"])           # (B, F, 3, H, W)
    reference, reference_pose = as_float(batch["reference"]), as_float(batch["reference_pose"])
    with torch.no_grad():
        z0 = encode_frames(codec, frames, generator)                     # (B, C, F, h, w)
        ref_latent = codec.encode(reference, generator)                  # (B, C, h, w)
    b = z0.shape[0]
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=generator, device=device)
    noise = torch.randn(z0.shape, generator=generator, device=device)
    noise = noise + objective.offset_noise * torch.randn((*z0.shape[:2], 1, 1, 1), generator=generator,
                                                         device=device)
    zt = scheduler.add_noise(z0, noise, t)
    target = scheduler.get_velocity(z0, noise, t)

    keep = (torch.rand(b, generator=generator, device=device) >= objective.p_uncond).float()
    first = torch.rand(b, generator=generator, device=device) < objective.p_first_frame
    zt[first, :, 0] = z0[first, :, 0]
    mask = torch.ones(b, 1, z0.shape[2], 1, 1, device=device)
    mask[first, :, 0] = 0

    k4, k5 = keep.view(b, 1, 1, 1), keep.view(b, 1, 1, 1, 1)
    local = reference * k4 if _config(model).local_image else None
    embeds = None if image_embeds is None else image_embeds.to(device) * keep.view(b, 1)
    pred = model(zt, t, pose.transpose(1, 2) * k5, ref_latent * k4, reference_pose * k4, image_embeds=embeds,
                 local_image=local)
    weight = snr_weight(scheduler, t, objective.snr_gamma).view(b, 1, 1, 1, 1)
    err = (pred.float() - target.float()) ** 2 * mask * weight
    return err.sum() / (mask.sum() * err.shape[1] * err.shape[3] * err.shape[4])


def _config(model: nn.Module):
    """The model's config, through a distributed wrapper if there is one."""
    return getattr(model, "module", model).config
