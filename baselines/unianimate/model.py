"""UniAnimate's denoiser: a ModelScope/VGen video UNet with pose, reference and image conditioning.

The UNet is diffusers' `UNet3DConditionModel`, which is the same network family as UniAnimate's
`UNetSD_UniAnimate` (ali-vilab/UniAnimate, tools/modules/unet/unet_unianimate.py): per layer a
ResBlock, a temporal conv block (4x GroupNorm-SiLU-Conv3d(3,1,1)), a spatial transformer
(self-attn, cross-attn, GEGLU) and a temporal transformer (two self-attentions over frames, GEGLU),
plus a temporal transformer right after conv_in. The conditioning modules are ours, laid out
like UniAnimate's so that its published checkpoint maps one to one (see `convert.py`):

- pose encoder: per-frame convs (3 -> widths -> concat_dim, downsampling by `pose_downsample`)
  and a one-layer transformer over time at every latent pixel; its features are concatenated
  with the noisy latent on channels (conv_in takes latent_channels + concat_dim);
- reference branch: the reference latent through stride-1 convs to latent_channels + concat_dim,
  plus the reference pose through a pose-style encoder, placed along time as frame 0; the UNet
  sees F + 1 frames and frame 0 is dropped from the output;
- context: a fixed text context (paper: OpenCLIP ViT-H-14's penultimate-layer embedding of "",
  77 x 1024, held as a buffer to fill with `set_text_context`; tiny: learned tokens), followed by
  `num_tokens` tokens projected from the pooled image embedding (zeros when none is given).

Positional encoding: UniAnimate's temporal transformers have none. diffusers 0.42 builds every
`TransformerTemporalModel` of `UNet3DConditionModel` with `positional_embeddings=None`, so its
temporal attention has none either: the two agree, and frame order reaches the UNet only through
the temporal convs. The small adapter transformers (ours) have none, as in UniAnimate.

What differs from the published model, all without effect on inference with converted weights:
- temporal transformers project in/out with `nn.Linear` where UniAnimate uses a kernel-1
  `nn.Conv1d` (the same map; the converter squeezes the weights);
- diffusers' ResBlocks have no dropout (UniAnimate: 0.1) and attention has no dropout;
- UniAnimate pools the pose renders with `AdaptiveAvgPool2d` to half its fixed training
  resolution; ours is `AvgPool2d` by the same factor, which equals it for any even size;
- UniAnimate's training-time condition dropout (`misc_dropout`, p_all_zero/p_all_keep) is left to
  the training loop: pass None for a dropped condition, which gives the zero features UniAnimate
  uses for its unconditional branch;
- diffusers' 3D blocks ignore gradient checkpointing, so `enable_gradient_checkpointing` wraps
  each UNet block here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel
from torch import nn
from torch.utils.checkpoint import checkpoint

from toolkit.models.pretrained import ModelConfig, PretrainedModel

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class UniAnimateConfig(ModelConfig):
    """Sizes of a UniAnimate model; defaults are the paper's."""

    config_dir: ClassVar[Path] = CONFIG_DIR

    latent_channels: int = 4
    sample_size: tuple[int, int] = (96, 64)
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    attention_head_dim: int = 64
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",)
    up_block_types: tuple[str, ...] = ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3
    norm_num_groups: int = 32
    cross_attention_dim: int = 1024
    concat_dim: int = 8
    pose_downsample: int = 8
    pose_channels: tuple[int, ...] = (32, 32)
    reference_channels: tuple[int, ...] = (32, 32)
    adapter_heads: int = 2
    adapter_layers: int = 1
    adapter_dropout: float = 0.05
    num_tokens: int = 4
    image_embed_dim: int = 1024
    text_tokens: int = 77
    learned_text_context: bool = False
    local_image: bool = True
    temporal: str = "transformer"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sample_size, int):
            object.__setattr__(self, "sample_size", (self.sample_size, self.sample_size))
        if self.temporal not in ("transformer", "mamba"):
            raise ValueError(f"temporal must be 'transformer' or 'mamba', not {self.temporal!r}")
        n = len(self.pose_channels)
        if self.pose_downsample % 2**n:
            raise ValueError(f"pose_downsample {self.pose_downsample} is not a multiple of 2**len(pose_channels)")


class FrameAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and head dim equal to the width."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * dim, bias=False)
        self.to_out = nn.Linear(heads * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, f, _ = x.shape
        q, k, v = self.to_qkv(x).view(n, f, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.dropout(self.to_out(out.transpose(1, 2).reshape(n, f, -1)))


class FrameTransformerLayer(nn.Module):
    """Pre-norm attention then an un-normed 4x GELU feed-forward, both residual (UniAnimate's Transformer_v2)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = FrameAttention(dim, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn(self.norm(x)) + x
        return self.ff(x) + x


class ConditionEncoder(nn.Module):
    """Per-frame convs, then a small transformer over time at every output pixel (no positional encoding)."""

    def __init__(self, convs: nn.Sequential, out_channels: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.convs = convs
        self.layers = nn.ModuleList(FrameTransformerLayer(out_channels, heads, dropout) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) -> (B, D, F, h, w)."""
        b, _, f = x.shape[:3]
        y = self.convs(x.transpose(1, 2).flatten(0, 1))
        _, d, h, w = y.shape
        y = y.view(b, f, d, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, d)
        for layer in self.layers:
            y = layer(y)
        return y.view(b, h, w, f, d).permute(0, 4, 3, 1, 2)


def pixel_convs(widths: tuple[int, ...], out_channels: int, downsample: int) -> nn.Sequential:
    """RGB -> conv, SiLU, average pool, then one stride-2 conv per width (SiLU between)."""
    pool = downsample // 2 ** len(widths)
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1), nn.SiLU()]
    layers.append(nn.AvgPool2d(pool) if pool > 1 else nn.Identity())
    chans = (*widths, out_channels)
    for i in range(len(widths)):
        if i:
            layers.append(nn.SiLU())
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1))
    return nn.Sequential(*layers)


def latent_convs(in_channels: int, widths: tuple[int, ...], out_channels: int) -> nn.Sequential:
    """Stride-1 3x3 convs in_channels -> widths -> out_channels with SiLU between."""
    chans = (in_channels, *widths, out_channels)
    layers: list[nn.Module] = []
    for i in range(len(chans) - 1):
        if i:
            layers.append(nn.SiLU())
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1))
    return nn.Sequential(*layers)


class SinusoidalTimesteps(nn.Module):
    """UniAnimate's timestep embedding: [cos, sin] of t * 10000 ** (-i / half), in float32.

    diffusers' `Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0)` is the same function but forms the
    frequencies as exp(-ln(10000) * i / half); in float32 the two differ by an ulp per frequency, which at
    t ~ 1000 moves the angles by ~1e-4. Forming them as the release does keeps the UNet within float32
    rounding of the release (scripts/reference_unianimate.py)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        t = timesteps.float()
        angles = torch.outer(t, torch.pow(10000, -torch.arange(half, device=t.device).to(t).div(half)))
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def _kept(features: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """`features` (B, ...) times a per-sample mask (B,) of 0 and 1, or unchanged without one."""
    if keep is None:
        return features
    return features * keep.to(features.dtype).view(-1, *(1,) * (features.dim() - 1))


def _checkpointed(forward: Any, *args: Any, **kwargs: Any) -> Any:
    if torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


class UniAnimateModel(PretrainedModel):
    """UniAnimate denoiser: v for F video frames from noisy latents, poses, a reference and an image embedding."""

    config_class = UniAnimateConfig

    def __init__(self, config: UniAnimateConfig):
        super().__init__()
        self.config = c = config
        frame0 = c.latent_channels + c.concat_dim
        adapter = dict(heads=c.adapter_heads, layers=c.adapter_layers, dropout=c.adapter_dropout)
        self.pose_encoder = ConditionEncoder(
            pixel_convs(c.pose_channels, c.concat_dim, c.pose_downsample), c.concat_dim, **adapter)
        self.reference_encoder = ConditionEncoder(
            latent_convs(c.latent_channels, c.reference_channels, frame0), frame0, **adapter)
        self.reference_pose_encoder = ConditionEncoder(
            pixel_convs(c.pose_channels, frame0, c.pose_downsample), frame0, **adapter)
        self.local_image_encoder = (
            ConditionEncoder(pixel_convs(c.pose_channels, c.concat_dim, c.pose_downsample), c.concat_dim, **adapter)
            if c.local_image else None)
        d = c.cross_attention_dim
        self.image_proj = nn.Sequential(nn.Linear(c.image_embed_dim, d), nn.SiLU(), nn.Linear(d, d * c.num_tokens))
        if c.learned_text_context:
            self.text_context = nn.Parameter(torch.randn(1, c.text_tokens, d) * d**-0.5)
        else:
            self.register_buffer("text_context", torch.zeros(1, c.text_tokens, d))
        self.unet = UNet3DConditionModel(
            sample_size=c.sample_size,
            in_channels=frame0,
            out_channels=c.latent_channels,
            down_block_types=c.down_block_types,
            up_block_types=c.up_block_types,
            block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block,
            norm_num_groups=c.norm_num_groups,
            cross_attention_dim=d,
            attention_head_dim=c.attention_head_dim,
        )
        self.unet.time_proj = SinusoidalTimesteps(c.block_out_channels[0])
        if c.temporal == "mamba":
            from toolkit.models.temporal_mamba import replace_temporal_transformers

            replace_temporal_transformers(self.unet)

    def set_text_context(self, embedding: torch.Tensor) -> None:
        """Set the fixed text tokens, e.g. OpenCLIP's penultimate-layer embedding of "" (1, text_tokens, D)."""
        with torch.no_grad():
            self.text_context.copy_(embedding.reshape(self.text_context.shape))

    def context(self, image_embeds: torch.Tensor | None, batch: int,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-attention tokens: the text context, then num_tokens image tokens (zeros without an embedding, and
        for the samples where `keep` (B,) is 0)."""
        c = self.config
        text = self.text_context.expand(batch, -1, -1)
        if image_embeds is None:
            image = text.new_zeros(batch, c.num_tokens, c.cross_attention_dim)
        else:
            image = _kept(self.image_proj(image_embeds.to(text.dtype)).view(batch, c.num_tokens,
                                                                              c.cross_attention_dim), keep)
        return torch.cat([text, image], dim=1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        pose: torch.Tensor | None,
        reference_latent: torch.Tensor | None,
        reference_pose: torch.Tensor | None,
        image_embeds: torch.Tensor | None = None,
        *,
        local_image: torch.Tensor | None = None,
        keep: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """v-prediction for the F video frames.

        sample (B, C, F, h, w) noisy latents; timestep (B,) or scalar; pose (B, 3, F, H, W) renders in
        [0, 1] with H = h * pose_downsample; reference_latent (B, C, h, w); reference_pose (B, 3, H, W)
        in [0, 1]; image_embeds (B, image_embed_dim); local_image (B, 3, H, W) in [0, 1], UniAnimate's
        optional pixel reference added to every frame (only when config.local_image). A condition given
        as None contributes zeros, as in UniAnimate's unconditional branch. `keep` ("pose", "local_image",
        "image" -> (B,) masks of 0 and 1): training-time dropout of those conditions' encoded features per sample,
        where UniAnimate's `misc_dropout` drops them (a dropped sample gets the zeros of an absent condition).
        Returns (B, C, F, h, w).
        """
        keep = keep or {}
        c = self.config
        b, _, f, h, w = sample.shape
        if pose is not None and tuple(pose.shape[-2:]) != (h * c.pose_downsample, w * c.pose_downsample):
            raise ValueError(f"pose is {tuple(pose.shape[-2:])}, expected latent size x {c.pose_downsample}")
        concat = sample.new_zeros(b, c.concat_dim, f, h, w)
        if pose is not None:
            concat = concat + _kept(self.pose_encoder(pose.to(sample.dtype)), keep.get("pose"))
        if local_image is not None:
            if self.local_image_encoder is None:
                raise ValueError("this config has no local_image branch")
            concat = concat + _kept(self.local_image_encoder(local_image.to(sample.dtype)[:, :, None]),
                                    keep.get("local_image"))
        frame0 = sample.new_zeros(b, c.latent_channels + c.concat_dim, 1, h, w)
        if reference_latent is not None:
            frame0 = frame0 + self.reference_encoder(reference_latent.to(sample.dtype)[:, :, None])
        if reference_pose is not None:
            frame0 = frame0 + self.reference_pose_encoder(reference_pose.to(sample.dtype)[:, :, None])
        x = torch.cat([frame0, torch.cat([sample, concat], dim=1)], dim=2)
        out = self.unet(x, timestep, encoder_hidden_states=self.context(image_embeds, b, keep.get("image")),
                        return_dict=False)[0]
        return out[:, :, 1:]

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each UNet block in the backward pass (diffusers' 3D blocks ignore their own flag)."""
        for block in self._unet_blocks():
            if "forward" not in vars(block):
                block.forward = functools.partial(_checkpointed, block.forward)

    def disable_gradient_checkpointing(self) -> None:
        for block in self._unet_blocks():
            vars(block).pop("forward", None)

    def _unet_blocks(self) -> list[nn.Module]:
        return [self.unet.transformer_in, *self.unet.down_blocks, self.unet.mid_block, *self.unet.up_blocks]
