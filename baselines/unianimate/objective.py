"""The UniAnimate-style training objective: v-prediction on a noised clip, with the unified noise input.

For a batch of clips: encode frames and the reference with the codec, draw a
timestep per clip and noise (plus offset noise, as UniAnimate trains), and
regress the scheduler's target under the zero-terminal-SNR schedule of the
sampler: the release's velocity v = sqrt(a) * noise - sqrt(1 - a) * x0
(diffusers' `get_velocity`), or what a config's ``[scheduler]`` table names
(the tiny config predicts the clean sample x0).

Offset noise (`offset_noise`, 0.1 in UniAnimate's config): with
``offset_noise_shape = "frame"`` (the release: diffusion_ddim.py `sample_loss`
draws ``randn(b, c, f, 1, 1)``) every frame and channel of a clip gets its own
constant shift; ``"clip"`` shares one shift over the clip's frames.

The local image (`local_image` models): with ``local_image = "first_frame"`` (the
release's ``misc_data[:, :1]``, the first frame of the clip) the branch sees the
clip's first frame, so it learns "the video starts like this picture"; with
``"reference"`` it sees the clip's reference frame.

Condition dropout teaches the unconditional branch of classifier-free guidance:

* ``condition_dropout = "release"`` (the default), UniAnimate's own scheme
  (unet_unianimate.py `DropPath` and the start of `forward`), per batch: a count
  of clips ~ Binomial(B, `p_all_zero`) lose every condition, a count ~
  Binomial(B, `p_all_keep`) of the others keep every condition (both sets are
  chosen by one random permutation), and then each condition on its own -- the
  local image, the pose sequence, the image embedding, in that order -- is
  dropped from a count ~ Binomial(B, `p_condition`) of the remaining clips (at
  most all of them). The reference latent and the reference pose are never
  dropped. With one clip per batch: all-zero 0.1, all-keep 0.09, else each
  condition dropped with 0.5;
* ``"joint"``: with probability `p_uncond` every condition of a clip is dropped
  together, the reference and its pose included.

With ``"release"`` a dropped condition's encoded features are zeroed inside the
model (`UniAnimateModel.forward`'s ``keep``), where UniAnimate's `misc_dropout`
zeroes them, which is what the sampler's ``uncond = "none"`` gives (both configs
sample so); with ``"joint"`` the inputs are zeroed (zero pose, local image,
image embedding, reference latent and pose), as ``uncond = "zeros"`` gives. With probability `p_first_frame` the clip's first
frame is given clean instead of noised and left out of the loss: first-frame
conditioning, which `chain` sampling uses to continue one segment from the last
frame of the previous one (ours, not the release's).

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
from toolkit.models.diffusion import (
    as_float, clean_from_prediction, encode_frames, prediction_target, snr_weight)
from toolkit.models.pretrained import from_table


DROPOUTS = ("release", "joint")
OFFSET_SHAPES = ("frame", "clip")
LOCAL_IMAGES = ("first_frame", "reference")
#: The conditions the release drops one by one, in the order it draws them (unet_unianimate.py forward).
CONDITIONS = ("local_image", "pose", "image")


@dataclass
class ObjectiveConfig:
    """The `[objective]` table of a config."""

    condition_dropout: str = "release"   # "release" (per condition) or "joint" (all together)
    p_condition: float = 0.5             # release: each condition's drop share (misc_dropout)
    p_all_zero: float = 0.1              # release: share of clips that lose every condition
    p_all_keep: float = 0.1              # release: share of clips that keep every condition
    p_uncond: float = 0.1                # joint: the probability that a clip loses every condition
    p_first_frame: float = 0.3
    offset_noise: float = 0.1
    offset_noise_shape: str = "frame"    # "frame" (the release) or "clip"
    local_image: str = "first_frame"     # "first_frame" (the release) or "reference"
    snr_gamma: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ObjectiveConfig:
        out = from_table(cls, values, "objective")
        for key in ("p_condition", "p_all_zero", "p_all_keep", "p_uncond", "p_first_frame"):
            if not 0 <= getattr(out, key) <= 1:
                raise ValueError(f"[objective] {key} must lie in [0, 1], got {getattr(out, key)}")
        for key, allowed in (("condition_dropout", DROPOUTS), ("offset_noise_shape", OFFSET_SHAPES),
                             ("local_image", LOCAL_IMAGES)):
            if getattr(out, key) not in allowed:
                raise ValueError(f"[objective] {key} must be one of {', '.join(map(repr, allowed))}, "
                                 f"got {getattr(out, key)!r}")
        if out.snr_gamma is not None and not out.snr_gamma > 0:
            raise ValueError(f"[objective] snr_gamma must be > 0 (or left out), got {out.snr_gamma}")
        return out


def training_loss(model: nn.Module, codec: nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator,
                  objective: ObjectiveConfig, scheduler: Any = None,
                  image_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of the model's prediction (velocity, or the config's target) on one batch (see the
    module docstring).

    `image_embeds` (B, D): the references' image embeddings (OpenCLIP's, as UniAnimate conditions on), zeroed
    where a clip drops its image condition, as the sampler's unconditional half zeroes them.
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
    frames_axis = z0.shape[2] if objective.offset_noise_shape == "frame" else 1
    noise = noise + objective.offset_noise * torch.randn((*z0.shape[:2], frames_axis, 1, 1), generator=generator,
                                                         device=device)
    zt = scheduler.add_noise(z0, noise, t)
    target = prediction_target(scheduler, z0, noise, t)

    keep = condition_keep(b, objective, generator, device)
    first = torch.rand(b, generator=generator, device=device) < objective.p_first_frame
    zt[first, :, 0] = z0[first, :, 0]
    mask = torch.ones(b, 1, z0.shape[2], 1, 1, device=device)
    mask[first, :, 0] = 0

    joint = objective.condition_dropout == "joint"

    def kept(x: torch.Tensor, name: str) -> torch.Tensor:  # "joint" zeroes the inputs; "release" the features
        return x * keep[name].view(b, *(1,) * (x.dim() - 1)) if joint else x

    local = _local_image(model, objective, frames, reference)
    if local is not None:
        local = kept(local, "local_image")
    embeds = None if image_embeds is None else kept(image_embeds.to(device), "image")
    pred = model(zt, t, kept(pose.transpose(1, 2), "pose"), kept(ref_latent, "reference"),
                 kept(reference_pose, "reference"), image_embeds=embeds, local_image=local,
                 keep=None if joint else {name: keep[name] for name in CONDITIONS})
    weight = snr_weight(scheduler, t, objective.snr_gamma).view(b, 1, 1, 1, 1)
    err = (pred.float() - target.float()) ** 2 * mask * weight
    return err.sum() / (mask.sum() * err.shape[1] * err.shape[3] * err.shape[4])


@torch.no_grad()
def clean_estimate(model: nn.Module, codec: nn.Module, batch: dict[str, torch.Tensor], t: int,
                   generator: torch.Generator, objective: ObjectiveConfig, scheduler: Any,
                   image_embeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's clean-latent estimate, the clean latents), both (B, C, F, h, w), for the batch's clips noised
    to timestep `t` without offset noise, every condition kept: how far from clean one denoising step at `t` lands
    (a diagnostic; see ``scripts/learn_one_video.py``)."""
    device = batch["frames"].device
    frames, pose = as_float(batch["frames"]), as_float(batch["pose"])
    reference, reference_pose = as_float(batch["reference"]), as_float(batch["reference_pose"])
    z0 = encode_frames(codec, frames, generator)
    ref_latent = codec.encode(reference, generator)
    tt = torch.full((z0.shape[0],), t, device=device, dtype=torch.long)
    zt = scheduler.add_noise(z0, torch.randn(z0.shape, generator=generator, device=device), tt)
    local = _local_image(model, objective, frames, reference)
    pred = model(zt, tt, pose.transpose(1, 2), ref_latent, reference_pose, image_embeds=image_embeds,
                 local_image=local)
    return clean_from_prediction(scheduler, zt, pred, tt), z0


def condition_keep(b: int, objective: ObjectiveConfig, generator: torch.Generator,
                   device: torch.device | str) -> dict[str, torch.Tensor]:
    """Per condition (`CONDITIONS` and "reference": the reference latent with its pose), a (b,) float mask that is
    1 where a clip keeps it and 0 where it is dropped, drawn as `condition_dropout` says (module docstring)."""
    if objective.condition_dropout == "joint":
        keep = (torch.rand(b, generator=generator, device=device) >= objective.p_uncond).float()
        return {name: keep for name in (*CONDITIONS, "reference")}
    zero = torch.zeros(b, dtype=torch.bool, device=device)
    always = torch.zeros(b, dtype=torch.bool, device=device)
    n_zero = int((torch.rand(b, generator=generator, device=device) < objective.p_all_zero).sum())
    n_keep = int((torch.rand(b, generator=generator, device=device) < objective.p_all_keep).sum())
    order = torch.randperm(b, generator=generator, device=device)
    zero[order[:n_zero]] = True
    always[order[n_zero:n_zero + n_keep]] = True
    free = torch.where(~zero & ~always)[0]
    out = {"reference": torch.ones(b, device=device)}
    for name in CONDITIONS:
        n = int((torch.rand(b, generator=generator, device=device) < objective.p_condition).sum())
        dropped = zero.clone()
        dropped[free[torch.randperm(len(free), generator=generator, device=device)[:n]]] = True
        out[name] = (~dropped).float()
    return out


def _local_image(model: nn.Module, objective: ObjectiveConfig, frames: torch.Tensor,
                 reference: torch.Tensor) -> torch.Tensor | None:
    """What a `local_image` model's branch sees (module docstring): the clip's first frame or its reference."""
    if not _config(model).local_image:
        return None
    return frames[:, 0] if objective.local_image == "first_frame" else reference


def _config(model: nn.Module):
    """The model's config, through a distributed wrapper if there is one."""
    return getattr(model, "module", model).config
