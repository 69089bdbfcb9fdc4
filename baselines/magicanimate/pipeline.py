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
* the initial noise is one `window`-frame clip tiled along the video (``tile_noise``), drawn
  with a generator on the model's device (the release's is a CUDA generator);
* the driving video is edge-padded to a multiple of `window` frames and the padded frames are
  dropped from the result (demo/animate.py; ``pad_frames``);
* on CUDA the model and codec run in float16, as the release casts them (``precision``); on a
  CPU in float32.

The tiny config trains with v-prediction and zero terminal SNR instead (set in its
``[scheduler]`` table); the same sampler follows whatever the run trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from diffusers import DDIMScheduler
from torch import nn

from toolkit.models import diffusion
from toolkit.models.diffusion import as_float
from toolkit.models.pretrained import from_table

#: MagicAnimate's noise schedule and sampler (configs/inference/inference.yaml and the pipeline's overrides).
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear",
                 prediction_type="epsilon", steps_offset=1, clip_sample=False)


def make_scheduler(**overrides: Any) -> DDIMScheduler:
    """MagicAnimate's DDIM, with a config's ``[scheduler]`` overrides (e.g. x0 prediction for the tiny model)."""
    return diffusion.make_scheduler(SCHEDULER, **overrides)


@dataclass
class SamplingConfig:
    """How frames are sampled; the `[sampling]` table of a config."""

    steps: int = 25
    guidance: float = 7.5
    window: int = 16
    overlap: int = 4
    tile_noise: bool = True
    seed: int = 1
    #: edge-pad the driving video to a multiple of `window` frames, dropping the padded frames after (the release)
    pad_frames: bool = True
    #: "squash": reference and DensePose resized to the model's square size (the release, demo/animate.py);
    #: "aspect": the model's area at the aspect nearest the video's, resized to it and back (method.MagicAnimateMethod)
    frame_fit: str = "squash"
    #: "float16": on CUDA the model and codec in float16, as the release (a CPU stays float32); "float32": always
    precision: str = "float16"
    #: "device": the initial noise is drawn on the model's device (the release's CUDA generator); "cpu": on the CPU,
    #: so a seed gives the same noise on every machine
    generator: str = "device"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        for name, allowed in (("frame_fit", ("squash", "aspect")), ("precision", ("float16", "float32")),
                              ("generator", ("device", "cpu"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"sampling {name} must be one of {allowed}, got {getattr(self, name)!r}")
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


def pad_frames(frames: Any, multiple: int) -> Any:
    """Frames (numpy or torch, frames first) edge-padded to a multiple of `multiple`, as demo/animate.py pads
    the driving video (its last frame repeated)."""
    extra = -len(frames) % multiple
    if not extra:
        return frames
    if isinstance(frames, torch.Tensor):
        return torch.cat([frames, frames[-1:].expand(extra, *frames.shape[1:])])
    return np.concatenate([frames, np.repeat(frames[-1:], extra, axis=0)])


class MagicAnimatePipeline:
    """Reference image + DensePose renders -> frames, with a trained `MagicAnimateModel`, its codec and scheduler."""

    def __init__(self, model: nn.Module, codec: nn.Module, sampling: SamplingConfig | None = None,
                 scheduler: dict[str, Any] | None = None):
        self.model, self.codec = model, codec
        self.sampling = sampling or SamplingConfig()
        self.scheduler = make_scheduler(**(scheduler or {}))  # invalid settings fail here, not mid-sampling
        self.progress: Callable[[int, int], None] | None = None  # (evaluations done, more planned): Method.progress

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

    def initial_latents(self, reference_latent: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Initial noise (1, C, n, h, w): one `window`-frame clip drawn with `generator` on its device, tiled."""
        scheduler, s = self.scheduler, self.sampling
        c, h, w = reference_latent.shape[1:]
        frames_drawn = min(s.window, n) if s.tile_noise else n
        noise = torch.randn((1, c, frames_drawn, h, w), generator=generator, device=generator.device,
                            dtype=reference_latent.dtype).to(self.device)
        return noise.repeat(1, 1, -(-n // frames_drawn), 1, 1)[:, :, :n] * scheduler.init_noise_sigma

    def guided_noise(self, latents: torch.Tensor, t: torch.Tensor, reference_latent: torch.Tensor,
                     densepose: torch.Tensor, guidance: float, windowed: bool = True) -> torch.Tensor:
        """One step's prediction for latents (1, C, n, h, w): guided per window, averaged per frame."""
        s, n = self.sampling, latents.shape[2]
        tt = t.reshape(1).to(self.device)
        bank = self.model.encode_reference(reference_latent, tt)
        total = torch.zeros_like(latents)
        count = torch.zeros(n, device=latents.device, dtype=latents.dtype)
        for idx in context_windows(n, s.window, s.overlap) if windowed else [list(range(n))]:
            index = torch.tensor(idx, device=latents.device)
            pred = self._guided(latents[:, :, index], tt, densepose[:, index].to(self.device), bank, guidance)
            total.index_add_(2, index, pred)
            count.index_add_(0, index, torch.ones(len(idx), device=latents.device, dtype=latents.dtype))
        return total / count.view(1, 1, n, 1, 1)

    @torch.no_grad()
    def steps(self, reference_latent: torch.Tensor, densepose: torch.Tensor, generator: torch.Generator,
              steps: int, guidance: float, windowed: bool = True
              ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each DDIM step as (timestep, latents in, guided prediction, latents out) for a reference latent
        (1, C, h, w) and renders (1, F, 3, H, W); the last step's "out" is the clean estimate."""
        scheduler = self.scheduler
        scheduler.set_timesteps(steps, device=self.device)
        latents = self.initial_latents(reference_latent, densepose.shape[1], generator)
        s, n = self.sampling, densepose.shape[1]
        windows = len(context_windows(n, s.window, s.overlap)) if windowed else 1
        if self.progress is not None:
            self.progress(0, windows * len(scheduler.timesteps))
        for k, t in enumerate(scheduler.timesteps):
            pred = self.guided_noise(latents, t, reference_latent, densepose, guidance, windowed)
            if self.progress is not None:
                self.progress(windows, 0)
            step = scheduler.step(pred, t, latents, eta=0.0)
            # the last step returns the clean estimate: with trailing spacing (the tiny config) DDIM's last "previous"
            # timestep can be 0, which still holds noise; with MagicAnimate's leading spacing the two are equal
            out = step.pred_original_sample if k == len(scheduler.timesteps) - 1 else step.prev_sample
            yield int(t), latents, pred, out
            latents = out

    def denoise(self, reference_latent: torch.Tensor, densepose: torch.Tensor, generator: torch.Generator,
                steps: int, guidance: float, windowed: bool = True) -> torch.Tensor:
        """Clean latents (1, C, F, h, w) for a reference latent (1, C, h, w) and renders (1, F, 3, H, W)."""
        latents = None
        for _, _, _, latents in self.steps(reference_latent, densepose, generator, steps, guidance, windowed):
            pass
        return latents

    def run_dtype(self) -> torch.dtype:
        """The dtype to cast model and codec to: float16 on CUDA where `precision` is the release's, else float32."""
        half = self.sampling.precision == "float16" and self.device.type == "cuda"
        return torch.float16 if half else torch.float32

    def make_generator(self, seed: int) -> torch.Generator:
        """The noise generator: on the model's device (the release's CUDA generator) or on the CPU."""
        device = self.device if self.sampling.generator == "device" else torch.device("cpu")
        return torch.Generator(device=device).manual_seed(seed)

    def _prepared(self, reference: torch.Tensor, densepose: torch.Tensor,
                  seed: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Generator, int]:
        """Reference latent, renders (padded with `pad_frames`), generator and the video's frame count, in the
        model's dtype."""
        s = self.sampling
        self.model.eval()
        dtype = next(self.model.parameters()).dtype
        n = len(densepose)
        if s.pad_frames:
            densepose = pad_frames(densepose, s.window)
        ref_latent = self.codec.encode(as_float(reference[None], self.device, dtype))
        generator = self.make_generator(s.seed if seed is None else seed)
        return ref_latent, as_float(densepose[None], None, dtype), generator, n

    def trace(self, reference: torch.Tensor, densepose: torch.Tensor, steps: int | None = None,
              guidance: float | None = None, seed: int | None = None, dtype: torch.dtype | None = None
              ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """`steps` for images as `iter_frames` takes them, as numpy arrays of the model's dtype (or `dtype`,
        float32 for half): what the comparison with the authors' pipeline reads."""
        s = self.sampling
        ref_latent, renders, generator, _ = self._prepared(reference, densepose, seed)
        out = dtype or (torch.float32 if ref_latent.dtype == torch.float16 else ref_latent.dtype)
        for t, a, b, c in self.steps(ref_latent, renders, generator, steps or s.steps,
                                     s.guidance if guidance is None else guidance):
            yield t, a.to(out).cpu().numpy(), b.to(out).cpu().numpy(), c.to(out).cpu().numpy()

    def iter_frames(self, reference: torch.Tensor, densepose: torch.Tensor, steps: int | None = None,
                    guidance: float | None = None, seed: int | None = None,
                    windowed: bool = True) -> Iterator[np.ndarray]:
        """Frames as (k, H, W, 3) uint8 chunks for a reference (3, H, W) and DensePose renders (F, 3, H, W).

        Images are uint8 or float in [0, 1]; `windowed=False` denoises all frames in one pass
        (what the windows reduce to when the video fits in one). With `pad_frames` the renders are
        edge-padded to a multiple of the window and only the first F frames come back.
        """
        s = self.sampling
        ref_latent, renders, generator, n = self._prepared(reference, densepose, seed)
        latents = self.denoise(ref_latent, renders, generator, steps or s.steps,
                               s.guidance if guidance is None else guidance, windowed)
        with torch.no_grad():
            for k in range(0, n, 8):
                images = self.codec.decode(latents[0, :, k:min(k + 8, n)].transpose(0, 1)).float()
                yield (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def __call__(self, reference: torch.Tensor, densepose: torch.Tensor, **kwargs: Any) -> np.ndarray:
        """All frames (F, H, W, 3) uint8; keyword arguments as `iter_frames`."""
        return np.concatenate(list(self.iter_frames(reference, densepose, **kwargs)))
