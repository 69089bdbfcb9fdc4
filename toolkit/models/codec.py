"""Image <-> latent codecs for latent video diffusion: a lossless pixel codec for tiny models, the SD VAE for paper ones.

Both map images in [0, 1], (N, 3, H, W), to latents (N, C, H/f, W/f) and back, and
say their `latent_channels` and `downsample` f. `PixelCodec` needs no weights
(pixel-unshuffle of the image scaled to [-1, 1]), so a tiny model trains from
nothing on a CPU; `VAECodec` wraps diffusers' `AutoencoderKL` with the latent
scaling the Stable Diffusion family uses.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class PixelCodec(nn.Module):
    """Latents are the image in [-1, 1], pixel-unshuffled by `factor`: exact, no parameters."""

    def __init__(self, factor: int = 2):
        super().__init__()
        if factor < 1:
            raise ValueError(f"pixel codec factor must be >= 1, got {factor}")
        self.factor = factor
        self.latent_channels = 3 * factor * factor
        self.downsample = factor

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.pixel_unshuffle(images * 2 - 1, self.factor)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((F.pixel_shuffle(latents, self.factor) + 1) / 2).clamp(0, 1)


class VAECodec(nn.Module):
    """diffusers `AutoencoderKL` (frozen), latents scaled by `scaling_factor` (0.18215 for SD 1.x/2.x)."""

    def __init__(self, vae: nn.Module, scaling_factor: float = 0.18215, sample: bool = True):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        self.scaling_factor = scaling_factor
        self.sample = sample
        self.latent_channels = int(vae.config.latent_channels)
        self.downsample = 2 ** (len(vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        dist = self.vae.encode(images * 2 - 1).latent_dist
        z = dist.sample(generator) if self.sample else dist.mean
        return z * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(latents / self.scaling_factor).sample + 1) / 2).clamp(0, 1)


# The Stable Diffusion 1.x/2.x autoencoder (KL-f8), as diffusers' AutoencoderKL arguments.
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
              layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32)


def sd_vae_from_checkpoint(path: str | Any, allow: tuple[str, ...] = ()) -> nn.Module:
    """diffusers `AutoencoderKL` from a Stable Diffusion checkpoint: a `.safetensors` of AutoencoderKL, or an LDM
    `.ckpt` whose `first_stage_model.*` tensors are renamed by diffusers' own converter (read weights-only through
    :mod:`toolkit.safe_pickle`; `allow`: the training metadata globals the file is known to carry, e.g. SD 2.1's
    Lightning callback and numpy scalars, which load as inert placeholders)."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae = AutoencoderKL(**SD_VAE)
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        from toolkit import safe_pickle

        state = safe_pickle.load(path, allow)
        state = convert_ldm_vae_checkpoint(state.get("state_dict", state), dict(vae.config))
    vae.load_state_dict(state, strict=True)
    return vae


def build_codec(config: dict[str, Any]) -> nn.Module:
    """The codec a `[codec]` config table names: {kind = "pixel", factor} or {kind = "vae", weights = ARTIFACT}
    (a weights-registry artifact holding the SD VAE; a missing file raises WeightsMissing with the fix)."""
    kind = config.get("kind", "pixel")
    if kind == "pixel":
        return PixelCodec(int(config.get("factor", 2)))
    if kind == "vae":
        from toolkit import weights

        name = config["weights"]
        vae = sd_vae_from_checkpoint(weights.path(name), weights.get(name).allow_globals)
        return VAECodec(vae, float(config.get("scaling_factor", 0.18215)), bool(config.get("sample", True)))
    raise ValueError(f"unknown codec kind {kind!r}; choose 'pixel' or 'vae'")


def check_fits(codec: nn.Module, latent_channels: int, downsample: int, downsample_key: str) -> None:
    """Refuse a `[model]` table whose latent width or condition downsampling (`downsample_key`) is not the codec's."""
    if latent_channels != codec.latent_channels:
        raise ValueError(f"[model] latent_channels = {latent_channels} but the codec makes "
                         f"{codec.latent_channels}-channel latents")
    if downsample != codec.downsample:
        raise ValueError(f"[model] {downsample_key} downsamples by {downsample} but the codec by {codec.downsample}")
