"""Small pieces every diffusion objective and pipeline here shares: image conversion, clip encoding, targets, weights."""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
from diffusers import DDIMScheduler
from torch import nn


def make_scheduler(defaults: Mapping[str, Any], **overrides: Any) -> DDIMScheduler:
    """The one scheduler factory: a method's DDIM settings (`defaults`) with a config's ``[scheduler]`` table
    over them. A key DDIMScheduler does not take is an error here (diffusers would only warn and drop it)."""
    known = set(inspect.signature(DDIMScheduler.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown [scheduler] keys {unknown}; DDIMScheduler takes {sorted(known)}")
    return DDIMScheduler(**{**defaults, **overrides})


def as_float(x: torch.Tensor, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images -> `dtype` in [0, 1]; float images only cast; moved to `device` if given."""
    if device is not None:
        x = x.to(device)
    return x.to(dtype) / 255 if x.dtype == torch.uint8 else x.to(dtype)


def encode_frames(codec: nn.Module, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, F, 3, H, W) images in [0, 1] -> (B, C, F, h, w) latents, one codec call for all frames."""
    b, f = frames.shape[:2]
    z = codec.encode(frames.flatten(0, 1), generator)
    return z.unflatten(0, (b, f)).transpose(1, 2)


def prediction_target(scheduler: Any, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the model regresses under the scheduler's ``prediction_type``: the noise, the velocity, or the clean sample."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(z0, noise, t)
    if kind == "sample":
        return z0
    raise ValueError(f"prediction_type {kind!r} is not trained here (epsilon, v_prediction or sample)")


def snr_weight(scheduler: Any, t: torch.Tensor, snr_gamma: float | None) -> torch.Tensor:
    """Per-sample loss weights that cap the clean-image weight of low-noise timesteps at `snr_gamma` (None: ones).

    The plain loss weighs a timestep's clean-image error by SNR (epsilon) or 1 + SNR (v);
    scaling by min(1, g / SNR) or min(1, g / (1 + SNR)) caps that weight at g (the idea of
    Min-SNR-g, Hang et al. 2023). For v the weight stays 1 at the zero-SNR timestep. A
    clean-sample loss already weighs every timestep 1 (ones for g >= 1).
    """
    if snr_gamma is None or scheduler.config.prediction_type == "sample":
        return torch.ones(t.shape, device=t.device)
    alpha = scheduler.alphas_cumprod.to(t.device)[t].float()
    if scheduler.config.prediction_type == "v_prediction":
        return torch.clamp(snr_gamma * (1 - alpha), max=1.0)
    return torch.clamp(snr_gamma * (1 - alpha) / alpha.clamp(min=1e-12), max=1.0)


def clean_from_prediction(scheduler: Any, zt: torch.Tensor, pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean-sample estimate x0 that a prediction of `scheduler`'s ``prediction_type`` implies for noised
    latents `zt` (B, ...) at timesteps `t` (B,): what DDIM's ``pred_original_sample`` is."""
    kind = scheduler.config.prediction_type
    alpha = scheduler.alphas_cumprod.to(zt.device)[t].to(torch.float64).view(-1, *(1,) * (zt.dim() - 1))
    a, s = alpha.sqrt(), (1 - alpha).sqrt()
    zt, pred = zt.to(torch.float64), pred.to(torch.float64)
    if kind == "sample":
        return pred.float()
    if kind == "v_prediction":
        return (a * zt - s * pred).float()
    if kind == "epsilon":
        return ((zt - s * pred) / a.clamp(min=1e-8)).float()
    raise ValueError(f"prediction_type {kind!r} is not trained here (epsilon, v_prediction or sample)")
