"""Sampling for the MagicAnimate-style model: DDIM, reference-dropping guidance, sliding windows that wrap around.

What the public MagicAnimate inference does (magic-research/magic-animate,
pipelines/pipeline_animation.py and pipelines/context.py), and we do too:

* diffusers' `DDIMScheduler` with betas linear from 0.00085 to 0.012 ("linear", not SD's
  "scaled_linear"), epsilon prediction, ``steps_offset`` 1, no sample clipping, eta 0;
  25 steps, guidance 7.5;
* classifier-free guidance whose unconditional half runs the denoiser without the
  reference (plain self-attention); the DensePose ControlNet residuals are computed once
  per window and used by both halves, the prompt is "" in both;
* long video: windows of `window` (16) frames starting every window - overlap (12)
  frames, taken modulo the video length, so the last windows wrap around to the start
  (32 frames: 0-15, 12-27, 24-31 + 0-7). At every step each window is denoised and the
  noise predictions are averaged per frame before the guidance and the DDIM step;
* the initial noise is one `window`-frame clip tiled along the video (``tile_noise``).

The tiny config trains with v-prediction and zero terminal SNR instead (set in its
``[scheduler]`` table); the same sampler follows whatever the run trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from diffusers import DDIMScheduler
from torch import nn

from toolkit.models.diffusion import as_float
from toolkit.models.pretrained import from_table

#: MagicAnimate's noise schedule and sampler (configs/inference/inference.yaml and the pipeline's overrides).
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear",
                 prediction_type="epsilon", steps_offset=1, clip_sample=False)


def make_scheduler(**overrides: Any) -> DDIMScheduler:
    """MagicAnimate's DDIM, with a config's ``[scheduler]`` overrides (e.g. v-prediction for the tiny model)."""
    return DDIMScheduler(**{**SCHEDULER, **overrides})


@dataclass
class SamplingConfig:
    """How frames are sampled; the `[sampling]` table of a config."""

    steps: int = 25
    guidance: float = 7.5
    window: int = 16
    overlap: int = 4
    tile_noise: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.window < 1 or not 0 <= self.overlap < self.window:
            raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window={self.window}, "
                             f"overlap={self.overlap}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplingConfig:
        return from_table(cls, values, "sampling")


def context_windows(n_frames: int, window: int = 16, overlap: int = 4) -> list[list[int]]:
    """Frame indices of each window: starts 0, w - o, 2(w - o), ... below n_frames, indices modulo n_frames."""
    if n_frames <= window:
        return [list(range(n_frames))]
    return [[(s + i) % n_frames for i in range(window)] for s in range(0, n_frames, window - overlap)]


class MagicAnimatePipeline:
    """Reference image + DensePose renders -> frames, with a trained `MagicAnimateModel`, its codec and scheduler."""

    def __init__(self, model: nn.Module, codec: nn.Module, sampling: SamplingConfig | None = None,
                 scheduler: dict[str, Any] | None = None):
        self.model, self.codec = model, codec
        self.sampling = sampling or SamplingConfig()
        self.scheduler = make_scheduler(**(scheduler or {}))  # invalid settings fail here, not mid-sampling

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _guided(self, latents: torch.Tensor, t: torch.Tensor, densepose: torch.Tensor, bank: dict[str, torch.Tensor],
                guidance: float) -> torch.Tensor:
        """Guided prediction for one window (1, C, F, h, w): [unconditional, conditional] in one batch of two."""
        control = self.model.control(latents, t, densepose)
        both = tuple(torch.cat([r, r]) for r in control[0]), torch.cat([control[1], control[1]])
        use = torch.tensor([False, True], device=latents.device)
        out = self.model.denoise(latents.expand(2, *latents.shape[1:]), t, bank, use, both)
        uncond, cond = out[:1], out[1:]
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def denoise(self, reference_latent: torch.Tensor, densepose: torch.Tensor, generator: torch.Generator,
                steps: int, guidance: float, windowed: bool = True) -> torch.Tensor:
        """Clean latents (1, C, F, h, w) for a reference latent (1, C, h, w) and renders (1, F, 3, H, W)."""
        s = self.sampling
        scheduler = self.scheduler
        scheduler.set_timesteps(steps, device=self.device)
        n = densepose.shape[1]
        c, h, w = reference_latent.shape[1:]
        frames_drawn = min(s.window, n) if s.tile_noise else n
        noise = torch.randn((1, c, frames_drawn, h, w), generator=generator, device=generator.device,
                            dtype=reference_latent.dtype).to(self.device)
        latents = noise.repeat(1, 1, -(-n // frames_drawn), 1, 1)[:, :, :n] * scheduler.init_noise_sigma
        windows = context_windows(n, s.window, s.overlap) if windowed else [list(range(n))]
        for k, t in enumerate(scheduler.timesteps):
            tt = t.reshape(1).to(self.device)
            bank = self.model.encode_reference(reference_latent, tt)
            total = torch.zeros_like(latents)
            count = torch.zeros(n, device=latents.device, dtype=latents.dtype)
            for idx in windows:
                index = torch.tensor(idx, device=latents.device)
                pred = self._guided(latents[:, :, index], tt, densepose[:, index].to(self.device), bank, guidance)
                total.index_add_(2, index, pred)
                count.index_add_(0, index, torch.ones(len(idx), device=latents.device, dtype=latents.dtype))
            step = scheduler.step(total / count.view(1, 1, n, 1, 1), t, latents, eta=0.0)
            # the last step returns the clean estimate: with trailing spacing (the tiny config) DDIM's last "previous"
            # timestep can be 0, which still holds noise; with MagicAnimate's leading spacing the two are equal
            latents = step.pred_original_sample if k == len(scheduler.timesteps) - 1 else step.prev_sample
        return latents

    def iter_frames(self, reference: torch.Tensor, densepose: torch.Tensor, steps: int | None = None,
                    guidance: float | None = None, seed: int | None = None,
                    windowed: bool = True) -> Iterator[np.ndarray]:
        """Frames as (k, H, W, 3) uint8 chunks for a reference (3, H, W) and DensePose renders (F, 3, H, W).

        Images are uint8 or float in [0, 1]; `windowed=False` denoises all frames in one pass
        (what the windows reduce to when the video fits in one).
        """
        s = self.sampling
        self.model.eval()
        dtype = next(self.model.parameters()).dtype
        generator = torch.Generator().manual_seed(s.seed if seed is None else seed)
        ref_latent = self.codec.encode(as_float(reference[None], self.device, dtype))
        latents = self.denoise(ref_latent, as_float(densepose[None], None, dtype), generator, steps or s.steps,
                               s.guidance if guidance is None else guidance, windowed)
        with torch.no_grad():
            for k in range(0, latents.shape[2], 8):
                images = self.codec.decode(latents[0, :, k:k + 8].transpose(0, 1))
                yield (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def __call__(self, reference: torch.Tensor, densepose: torch.Tensor, **kwargs: Any) -> np.ndarray:
        """All frames (F, H, W, 3) uint8; keyword arguments as `iter_frames`."""
        return np.concatenate(list(self.iter_frames(reference, densepose, **kwargs)))
