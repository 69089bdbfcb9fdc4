"""Sampling for the UniAnimate-style model: DDIM with v-prediction and zero terminal SNR, guidance, long video.

One call turns a reference image, its pose render and a driving pose sequence
into frames. What the public UniAnimate inference does, and we do too:

* diffusers' `DDIMScheduler`: betas linear in sqrt from 0.00085 to 0.012
  ("scaled_linear"), rescaled to zero terminal SNR, v-prediction, trailing
  timestep spacing, eta 0;
* classifier-free guidance (2.5) where the unconditional branch drops every
  condition (pose, reference latent, reference pose, local image, image embedding);
* a noise prior: the start latents are the reference latent noised to t = 949,
  not pure noise.

Three settings say how close to the released inference code a run is (the paper config and
the published checkpoint use the released values):

* ``timesteps``: "trailing" (diffusers' spacing: 30 steps are 30 evaluations from t = 999, the
  last returning the clean estimate) or "unianimate" (the released loop: t = 1 + k * (1000 // steps)
  from the top down, 31 evaluations at 991, 958, ..., 1 for 30 steps, each step going 1000 // steps
  down to at least t = 0, whose alpha_bar the last step lands on);
* ``offset_noise``: the released code adds 0.1 x per-frame, per-channel offset noise to the start
  noise before the noise prior, as in its training;
* ``uncond``: "zeros" (the unconditional half gets zero condition inputs, as our objective drops
  them in training) or "none" (no conditions at all: zero condition features and zero image tokens,
  the unconditional branch of the released model, which was trained that way);
* ``conditions``: which conditions the conditional half gets. "all" (ours: the pose, the local
  image, the reference latent and the reference pose as frame 0, the image embedding) or one of the
  release's ``partial_keys`` sets: "local_image" ({image, local_image, dwpose}: no frame-0 reference,
  the released model then ignores the reference pose) or "randomref" ({image, randomref, dwpose}: the
  reference latent and pose as frame 0, no local image);
* ``offset_order``: where the offset noise goes, "before" the noise prior (UniAnimate_infer.yaml's
  entrance: noise + 0.1 offset, then q_sample at t = 949) or "after" it (the long entrance: q_sample at
  t = 939, then + 0.1 offset);
* ``precision``: "fp32", or "fp16" (the release: the model cast to fp16 and run under fp16
  autocast, the latents and DDIM update in float32, the offset noise from a CUDA generator; the
  method casts the model on CUDA only, so a CPU run stays fp32).

`RELEASE_CONFIGS` holds the release's two inference configs by name (`release_sampling` turns one
into `[sampling]` values): seed, noise prior, offset order, key set, windows, generation size and
pose stride.

Long video, two modes:

* ``windows``: overlapping windows of `window` frames (stride window - overlap,
  the last window flush with the end); at every step each window is denoised
  and the noise predictions are averaged per frame before the guidance and the
  scheduler step, as the released long-video code does;
* ``chain``: first-frame conditioning, as the paper describes: segments of
  `window` frames, each starting from the previous segment's last generated frame
  (given clean, not re-generated), so later segments continue earlier ones.

Model activations are bounded by the window in both modes; what grows with the
video is only the latents and the output frames (kilobytes per frame at tiny
size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from diffusers import DDIMScheduler
from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr
from torch import nn

from toolkit.models import diffusion
from toolkit.models.diffusion import as_float
from toolkit.models.pretrained import from_table

LONG_MODES = ("windows", "chain")
TIMESTEPS = ("trailing", "unianimate")
UNCOND = ("zeros", "none")
CONDITIONS = ("all", "local_image", "randomref")
OFFSET_ORDER = ("before", "after")
PRECISION = ("fp32", "fp16")

# The release's inference configs (ali-vilab/UniAnimate configs/UniAnimate_infer*.yaml and their entrances):
# seed, noise prior t, where the offset noise goes, the partial_keys sets they run, windows, generation size
# (height, width: their `resolution` is [W, H]), every `frame_interval`-th pose, and how many poses (None: all).
RELEASE_CONFIGS: dict[str, dict[str, Any]] = {
    "UniAnimate_infer": {"seed": 11, "noise_prior_t": 949, "offset_order": "before",
                         "key_sets": ("local_image", "randomref"), "long": None, "size": (768, 512),
                         "frame_interval": 2, "max_frames": 32},
    "UniAnimate_infer_long": {"seed": 7, "noise_prior_t": 939, "offset_order": "after", "key_sets": ("randomref",),
                              "long": (32, 8), "size": (1216, 768), "frame_interval": 2, "max_frames": None},
}
# The entrances' own default when a config names no partial_keys, and the one set both configs run.
RELEASE_KEYS = "randomref"
RELEASE_COMMON: dict[str, Any] = {"steps": 30, "timesteps": "unianimate", "guidance": 2.5, "offset_noise": 0.1}


#: UniAnimate's noise schedule and sampler in diffusers terms (see the module docstring).
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
                 clip_sample=False, set_alpha_to_one=True, steps_offset=0)


def make_scheduler(**overrides: Any) -> DDIMScheduler:
    """UniAnimate's DDIM, with a config's ``[scheduler]`` overrides (e.g. x0 prediction for the tiny model)."""
    return diffusion.make_scheduler(SCHEDULER, **overrides)


@dataclass
class SamplingConfig:
    """How frames are sampled; the `[sampling]` table of a method config."""

    steps: int = 30
    guidance: float = 2.5
    noise_prior_t: int | None = 949      # None: start from pure noise
    window: int = 16                     # frames per window / chain segment
    overlap: int = 4                     # frames shared by neighbouring windows
    long: str = "windows"
    seed: int = 0
    timesteps: str = "trailing"          # or "unianimate" (the released loop, steps + 1 evaluations)
    offset_noise: float = 0.0            # the released inference: 0.1
    uncond: str = "zeros"                # or "none" (the released model's unconditional branch)
    conditions: str = "all"              # or a release key set: "local_image" / "randomref"
    offset_order: str = "before"         # offset noise before the noise prior, or "after" it (long config)
    precision: str = "fp32"              # "fp16": the model in half precision under autocast, on CUDA only
    scheduler: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, allowed in (("long", LONG_MODES), ("timesteps", TIMESTEPS), ("uncond", UNCOND),
                             ("conditions", CONDITIONS), ("offset_order", OFFSET_ORDER), ("precision", PRECISION)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.window < 2 or not 0 <= self.overlap < self.window:
            raise ValueError(f"need window >= 2 and 0 <= overlap < window, got window={self.window}, "
                             f"overlap={self.overlap}")
        if self.noise_prior_t is not None and not 0 <= self.noise_prior_t < 1000:
            raise ValueError(f"noise_prior_t must lie in 0..999 or be None, got {self.noise_prior_t}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplingConfig:
        return from_table(cls, values, "sampling")


def release_sampling(config: str, keys: str = RELEASE_KEYS) -> dict[str, Any]:
    """`[sampling]` values particular to the release's `config` ("UniAnimate_infer" or "UniAnimate_infer_long")
    run with its partial_keys set `keys` ("local_image" or "randomref"): the config's seed, noise prior, offset
    order and windows, the key set, no conditions in the unconditional half, fp16 (on CUDA). What both configs
    share (30 DDIM steps as the released loop takes them, guidance 2.5, offset noise 0.1) is `RELEASE_COMMON`,
    also in configs/paper.toml's [sampling]."""
    if config not in RELEASE_CONFIGS:
        raise ValueError(f"unknown release config {config!r}; known: {sorted(RELEASE_CONFIGS)}")
    release = RELEASE_CONFIGS[config]
    if keys not in release["key_sets"]:
        raise ValueError(f"{config} runs the key sets {release['key_sets']}, not {keys!r}")
    values = {"uncond": "none", "precision": "fp16", "conditions": keys, "seed": release["seed"],
              "noise_prior_t": release["noise_prior_t"], "offset_order": release["offset_order"], "long": "windows"}
    if release["long"] is not None:
        values["window"], values["overlap"] = release["long"]
    return values


def unianimate_timesteps(steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """The released DDIM loop's timesteps: 1 + k * (T // steps) for k = 0, 1, ... below T, highest first."""
    return (1 + torch.arange(0, num_train_timesteps, num_train_timesteps // steps)).clamp(
        max=num_train_timesteps - 1).flip(0)


def make_sampler(sampling: SamplingConfig, steps: int, device: torch.device | str) -> DDIMScheduler:
    """The scheduler with its timesteps set for `steps` steps as `sampling.timesteps` says.

    For "unianimate", diffusers' DDIM step already goes T // steps down from each timestep; with
    `set_alpha_to_one=False` a step below t = 0 lands on alpha_bar at t = 0, as the released loop's
    clamp does.
    """
    released = sampling.timesteps == "unianimate"
    scheduler = make_scheduler(**({"set_alpha_to_one": False} if released else {}), **sampling.scheduler)
    scheduler.set_timesteps(steps, device=device)
    if released:
        scheduler.timesteps = unianimate_timesteps(steps, scheduler.config.num_train_timesteps).to(device)
        # the release forms its schedule in float64 (schedules.py, diffusion_ddim.py) and rounds each
        # coefficient to the latents' dtype where it is used; diffusers' is float32 throughout
        c = scheduler.config
        betas = torch.linspace(c.beta_start**0.5, c.beta_end**0.5, c.num_train_timesteps, dtype=torch.float64) ** 2
        if c.rescale_betas_zero_snr:
            betas = rescale_zero_terminal_snr(betas)
        scheduler.alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        scheduler.final_alpha_cumprod = scheduler.alphas_cumprod[0]
    return scheduler


def window_starts(n_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of the overlapping windows covering n_frames: stride window - overlap, the last flush with the end."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, window - overlap))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return starts


class UniAnimatePipeline:
    """Reference image + driving poses -> frames, with a trained `UniAnimateModel` and its codec.

    All images are float tensors in [0, 1] at the model's pixel size; poses may be
    uint8 (converted per window, so a long pose sequence costs 1 byte per value).
    `image_encoder` (optional) maps the reference (1, 3, H, W) to a pooled
    embedding (1, D), e.g. OpenCLIP ViT-H in the paper config.
    """

    def __init__(self, model: nn.Module, codec: nn.Module, sampling: SamplingConfig | None = None,
                 image_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.model, self.codec = model, codec
        self.sampling = sampling or SamplingConfig()
        self.image_encoder = image_encoder
        self.progress: Callable[[int, int], None] | None = None  # (evaluations done, more planned): Method.progress

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def model_conditions(self, cond: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
        """The conditions the conditional half gets under `sampling.conditions`: all of them, or the release's
        {image, local_image, dwpose} (no frame-0 reference) or {image, randomref, dwpose} (no local image)."""
        keys = self.sampling.conditions
        drop = {"all": (), "local_image": ("reference_latent", "reference_pose"), "randomref": ("local_image",)}[keys]
        return {k: None if k in drop else v for k, v in cond.items()}

    def _guided(self, latents: torch.Tensor, t: torch.Tensor, poses: torch.Tensor, cond: dict[str, torch.Tensor],
                guidance: float) -> torch.Tensor:
        """Guided v-prediction for latents (1, C, F, h, w). `cond` holds the conditional inputs (batch 1); the
        unconditional half has them zeroed (one batch of two) or, with uncond = "none", none at all."""
        pose = as_float(poses, self.device)
        cond = self.model_conditions(cond)
        if self.sampling.uncond == "none":
            v_cond = self.model(latents, t, pose, **cond)
            v_uncond = self.model(latents, t, None, None, None, None, local_image=None)
        else:
            both = {k: None if v is None else torch.cat([v, torch.zeros_like(v)]) for k, v in cond.items()}
            out = self.model(latents.expand(2, *latents.shape[1:]), t.expand(2),
                             torch.cat([pose, torch.zeros_like(pose)]), **both)
            v_cond, v_uncond = out[:1], out[1:]
        return v_uncond + guidance * (v_cond - v_uncond)

    def _windowed(self, latents: torch.Tensor, t: torch.Tensor, poses: torch.Tensor, cond: dict[str, torch.Tensor],
                  guidance: float, window: int, overlap: int) -> torch.Tensor:
        """Guided prediction over overlapping windows, averaged per frame (the released long-video scheme)."""
        n = latents.shape[2]
        total = torch.zeros_like(latents)
        count = torch.zeros(n, device=latents.device, dtype=latents.dtype)
        for s in window_starts(n, window, overlap):
            e = min(s + window, n)
            total[:, :, s:e] += self._guided(latents[:, :, s:e], t, poses[:, :, s:e], cond, guidance)
            count[s:e] += 1
        return total / count.view(1, 1, n, 1, 1)

    def start_latents(self, scheduler: DDIMScheduler, ref: torch.Tensor, n: int, generator: torch.Generator,
                      offset_generator: torch.Generator | None = None) -> torch.Tensor:
        """The start latents (1, C, n, h, w) from the reference latent (1, C, h, w): noise from `generator`,
        per-frame, per-channel offset noise (from `offset_generator`, else `generator`) added before or after
        the noise prior (`offset_order`), the prior being the reference latent noised to `noise_prior_t`."""
        s = self.sampling
        shape = (1, ref.shape[1], n, ref.shape[2], ref.shape[3])
        dtype = torch.float64 if ref.dtype == torch.float64 else torch.float32  # at least float32, as the release
        noise = torch.randn(shape, generator=generator, device=generator.device).to(self.device, dtype)

        def offset() -> torch.Tensor:
            g = offset_generator or generator
            return s.offset_noise * torch.randn((*shape[:3], 1, 1), generator=g, device=g.device).to(self.device, dtype)

        if s.offset_noise and s.offset_order == "before":
            noise = noise + offset()
        if s.noise_prior_t is None:
            latents = noise * scheduler.init_noise_sigma
        else:
            prior_t = torch.tensor([s.noise_prior_t], device=self.device)
            latents = scheduler.add_noise(ref.to(dtype).unsqueeze(2).expand(shape), noise, prior_t)
        if s.offset_noise and s.offset_order == "after":
            latents = latents + offset()
        return latents

    @torch.no_grad()
    def _denoise(self, poses: torch.Tensor, cond: dict[str, torch.Tensor], first_latent: torch.Tensor | None,
                 generator: torch.Generator, steps: int, guidance: float, windowed: bool,
                 offset_generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM from the noise prior to clean latents (1, C, F, h, w); frame 0 held at `first_latent` if given."""
        s = self.sampling
        scheduler = make_sampler(s, steps, self.device)
        n = poses.shape[2]
        ref = cond["reference_latent"]
        latents = self.start_latents(scheduler, ref, n, generator, offset_generator)
        half = next(self.model.parameters()).dtype == torch.float16
        windows = len(window_starts(n, s.window, s.overlap)) if windowed else 1
        if self.progress is not None:
            self.progress(0, windows * len(scheduler.timesteps))
        for k, t in enumerate(scheduler.timesteps):
            if first_latent is not None:
                latents[:, :, 0] = first_latent
            tt = t.reshape(1).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=half):
                if windowed:
                    v = self._windowed(latents, tt, poses, cond, guidance, s.window, s.overlap)
                else:
                    v = self._guided(latents, tt, poses, cond, guidance)
            step = scheduler.step(v.to(latents.dtype), t, latents, eta=0.0)
            # with trailing spacing the last step returns the clean estimate: DDIM's last "previous" timestep
            # can be t = 0 (e.g. 7 steps), which still holds sqrt(1 - alpha_0) of noise; the released loop
            # returns its last step's sample (at alpha_bar of t = 0)
            last = k == len(scheduler.timesteps) - 1 and s.timesteps == "trailing"
            latents = step.pred_original_sample if last else step.prev_sample
            if self.progress is not None:
                self.progress(windows, 0)
        if first_latent is not None:
            latents[:, :, 0] = first_latent
        return latents

    def _decode(self, latents: torch.Tensor) -> Iterator[np.ndarray]:
        """(1, C, F, h, w) latents -> (k, H, W, 3) uint8 chunks of frames, a few frames at a time."""
        for k in range(0, latents.shape[2], 8):
            images = self.codec.decode(latents[0, :, k:k + 8].transpose(0, 1))
            yield (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def __call__(self, reference: torch.Tensor, reference_pose: torch.Tensor, poses: torch.Tensor,
                 first_frame: torch.Tensor | None = None, long: str | None = None, steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, windowed: bool = True,
                 image_embeds: torch.Tensor | None = None) -> np.ndarray:
        """Frames (F, H, W, 3) uint8 for poses (F, 3, H, W); reference, reference_pose, first_frame (3, H, W).

        `first_frame`: first-frame conditioning (the unified noise input): the given
        frame is frame 0 of the output and the rest continue it. `long` picks the
        long-video mode ("windows" or "chain"); `windowed=False` denoises all frames
        in one pass (what "windows" reduces to when the video fits one window).
        """
        return np.concatenate(list(self.iter_frames(reference, reference_pose, poses, first_frame, long, steps,
                                                    guidance, seed, windowed, image_embeds)))

    @torch.no_grad()
    def iter_frames(self, reference: torch.Tensor, reference_pose: torch.Tensor, poses: torch.Tensor,
                    first_frame: torch.Tensor | None = None, long: str | None = None, steps: int | None = None,
                    guidance: float | None = None, seed: int | None = None, windowed: bool = True,
                    image_embeds: torch.Tensor | None = None) -> Iterator[np.ndarray]:
        """The frames of `__call__` as (k, H, W, 3) uint8 chunks in order, made as they are needed (chain
        segments are sampled one after another), so a long video can be written without holding it all.
        `image_embeds` (1, D): the reference's image embedding, computed by the caller (else by
        `image_encoder` from the reference, if the pipeline has one)."""
        s = self.sampling
        long = long or s.long
        if long not in LONG_MODES:
            raise ValueError(f"long must be one of {LONG_MODES}, got {long!r}")
        steps, guidance = steps or s.steps, s.guidance if guidance is None else guidance
        generator = torch.Generator().manual_seed(s.seed if seed is None else seed)
        self.model.eval()
        dtype = next(self.model.parameters()).dtype
        offset_generator = None
        if dtype == torch.float16:
            # a half-precision model runs under autocast (the release's CUDA run): the codec, the conditions'
            # pixels and the latents stay float32; the release draws its offset noise on the GPU
            dtype = torch.float32
            if self.device.type == "cuda":
                offset_generator = torch.Generator(self.device).manual_seed(generator.initial_seed())
        poses = poses.permute(1, 0, 2, 3).unsqueeze(0)  # (1, 3, F, H, W)
        ref = as_float(reference[None], self.device, dtype)
        ref_pose = as_float(reference_pose[None], self.device, dtype)
        # a sampling codec draws the reference's posterior noise first, from the same generator as the start
        # noise (the release: both from torch's CPU generator, in this order)
        ref_latent = self.codec.encode(ref, generator)
        if image_embeds is None and self.image_encoder is not None:
            image_embeds = self.image_encoder(ref)
        cond = {"reference_latent": ref_latent, "reference_pose": ref_pose,
                "image_embeds": None if image_embeds is None else image_embeds.to(self.device, dtype),
                "local_image": ref if self.model.config.local_image else None}
        first_latent = None
        if first_frame is not None:
            first_latent = self.codec.encode(as_float(first_frame[None], self.device, dtype))[0]
        if long == "windows" or poses.shape[2] <= s.window:
            chunks = self._decode(self._denoise(poses, cond, first_latent, generator, steps, guidance, windowed,
                                                offset_generator))
        else:
            chunks = self._chain(poses, cond, first_latent, generator, steps, guidance)
        for k, chunk in enumerate(chunks):
            if k == 0 and first_frame is not None:  # the given frame is returned as given, not re-decoded
                chunk[0] = (first_frame.float().clamp(0, 1) * 255 if first_frame.dtype.is_floating_point
                            else first_frame.float()).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            yield chunk

    def _chain(self, poses: torch.Tensor, cond: dict[str, torch.Tensor], first_latent: torch.Tensor | None,
               generator: torch.Generator, steps: int, guidance: float) -> Iterator[np.ndarray]:
        """Segments of `window` frames; each after the first starts from the previous one's last frame."""
        n, w = poses.shape[2], self.sampling.window
        start = 0
        while True:
            end = min(start + w, n)
            latents = self._denoise(poses[:, :, start:end], cond, first_latent, generator, steps, guidance, False)
            frames = np.concatenate(list(self._decode(latents)))
            yield frames if start == 0 else frames[1:]  # frame `start` was the previous segment's last
            if end == n:
                return
            first_latent, start = latents[0, :, -1], end - 1
