"""MagicAnimate's networks on diffusers blocks: a video UNet, an appearance encoder and a DensePose ControlNet.

What the public MagicAnimate (magic-research/magic-animate) runs, and the diffusers piece for each:

- denoising UNet: Stable Diffusion 1.5's UNet inflated to video with AnimateDiff motion modules
  after every down and up layer and none in the mid block (2 temporal self-attentions, 8 heads,
  sinusoidal positions, GEGLU): `UNetMotionModel` with ``use_motion_mid_block=False``. The motion
  modules' output projections are zero-initialised, as AnimateDiff's are, so a fresh motion module
  is the identity and the video UNet is the image UNet applied per frame;
- appearance encoder: a second `UNet2DConditionModel` of the same layout, without its output
  head (``conv_norm_out``, ``conv_out``), run on the clean reference latent at the denoising
  timestep with the empty-prompt context. Its mid- and up-block self-attention inputs are banked
  and read by the denoiser's paired self-attentions as extra keys and values
  (`toolkit.models.reference_attention`);
- DensePose ControlNet: `ControlNetModel` whose conditioning embedder is strided convolutions
  (16/32/96/256 channels, zero-initialised output), run per frame on the DensePose render; its
  residuals are added to the denoiser's skip connections and mid block. ControlNet residuals are
  zero at initialisation (diffusers' zero convolutions).

The text context is fixed: every MagicAnimate prompt is "" (paper: CLIP ViT-L/14's embedding of "",
77 x 768, a buffer filled by `set_text_context`; tiny: learned tokens).

Where diffusers' blocks compute otherwise than the release, the release wins by default (each a
config field, the model card says why one would change it):

- ``video_norm = "release"``: the release's 3D UNet runs its ResNet blocks and output norm on
  (b, c, f, h, w) tensors, so their GroupNorm statistics pool every frame of the window, while the
  motion modules' GroupNorm runs per frame; diffusers' `UNetMotionModel` does the opposite
  (``"diffusers"``). `VideoGroupNorm` switches the axes without renaming a tensor;
- ``reference_bank_dtype = "float16"``: the release copies the banked reference tokens to float16
  before the denoiser reads them (``ReferenceAttentionControl.update``), which rounds them in a
  float32 run (``"model"`` keeps the model's precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from diffusers import ControlNetModel, UNet2DConditionModel, UNetMotionModel
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from toolkit.models import reference_attention
from toolkit.models.pretrained import ModelConfig, PretrainedModel

CONFIG_DIR = Path(__file__).parent / "configs"

Control = tuple[tuple[torch.Tensor, ...], torch.Tensor]

#: "release": ResNet and output norms pool the window's frames, motion-module norms are per frame (MagicAnimate's
#: resnet.py / unet_controlnet.py / motion_module.py); "diffusers": the other way round (diffusers' UNetMotionModel).
VIDEO_NORMS = ("release", "diffusers")
#: "float16": the denoiser reads the bank through float16, as the release does; "model": in the model's dtype.
BANK_DTYPES = {"float16": torch.float16, "model": None}


@dataclass(frozen=True)
class MagicAnimateConfig(ModelConfig):
    """Sizes of a MagicAnimate model; defaults are the paper's (SD 1.5 layout)."""

    config_dir: ClassVar[Path] = CONFIG_DIR

    latent_channels: int = 4
    sample_size: int = 64
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    # block types in 2D names; the denoiser uses the Motion variants of the same blocks
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    attention_heads: int = 8
    norm_num_groups: int = 32
    cross_attention_dim: int = 768
    text_tokens: int = 77
    learned_text_context: bool = False
    motion_heads: int = 8
    motion_max_seq_length: int = 24
    controlnet_embedding_channels: tuple[int, ...] = (16, 32, 96, 256)
    video_norm: str = "release"
    reference_bank_dtype: str = "float16"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.video_norm not in VIDEO_NORMS:
            raise ValueError(f"video_norm must be one of {VIDEO_NORMS}, got {self.video_norm!r}")
        if self.reference_bank_dtype not in BANK_DTYPES:
            raise ValueError(f"reference_bank_dtype must be one of {sorted(BANK_DTYPES)}, "
                             f"got {self.reference_bank_dtype!r}")
        n = len(self.block_out_channels)
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError(f"need {n} down and up block types for {n} block_out_channels")
        known = {"CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}
        odd = sorted(set(self.down_block_types + self.up_block_types) - known)
        if odd:
            raise ValueError(f"unknown block types {odd}; use {sorted(known)}")

    @property
    def control_downsample(self) -> int:
        """How much the ControlNet's conditioning embedder shrinks the DensePose render: image size / latent size."""
        return 2 ** (len(self.controlnet_embedding_channels) - 1)


def _motion(block_type: str) -> str:
    return block_type.replace("2D", "Motion")


class FrameCount:
    """The number of frames of the window a video UNet is running on, shared by its `VideoGroupNorm`s."""

    def __init__(self) -> None:
        self.n = 1

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Forward pre-hook of the UNet: read the frame count off its (B, C, F, h, w) sample."""
        sample = args[0] if args else kwargs["sample"]
        self.n = sample.shape[2]


class VideoGroupNorm(nn.GroupNorm):
    """A GroupNorm of the video UNet whose statistics pool all frames of the window, or each frame alone.

    diffusers' UNetMotionModel calls its ResNet and output norms on frames folded into the
    batch, ((B F), C, h, w), and its motion modules' norm on (B, C, F, h, w). The input's
    layout says which it is; `pool_frames` says what the statistics cover, whatever the layout.
    Same parameters and names as `nn.GroupNorm`.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float, affine: bool, frames: FrameCount,
                 pool_frames: bool):
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)
        self.frames, self.pool_frames = frames, pool_frames

    @classmethod
    def replacing(cls, norm: nn.GroupNorm, frames: FrameCount, pool_frames: bool) -> VideoGroupNorm:
        """A `VideoGroupNorm` of `norm`'s sizes (its parameters are not copied: used at construction)."""
        return cls(norm.num_groups, norm.num_channels, norm.eps, norm.affine, frames, pool_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:   # (B, C, F, h, w)
            if self.pool_frames:
                return super().forward(x)
            b, c, f = x.shape[:3]
            y = super().forward(x.transpose(1, 2).flatten(0, 1))
            return y.unflatten(0, (b, f)).transpose(1, 2)
        f = self.frames.n  # ((B F), C, h, w)
        if not self.pool_frames or f == 1:
            return super().forward(x)
        y = super().forward(x.unflatten(0, (-1, f)).transpose(1, 2))
        return y.transpose(1, 2).flatten(0, 1)


def use_video_norms(unet: UNetMotionModel, video_norm: str) -> FrameCount:
    """Give `unet` the release's norm axes (``video_norm="release"``); returns the frame count its norms read.

    ResNet norms and ``conv_norm_out`` pool the window's frames, motion-module norms are per
    frame. With ``"diffusers"`` the UNet is left as diffusers builds it.
    """
    frames = FrameCount()
    if video_norm == "diffusers":
        return frames
    for module in unet.modules():
        if isinstance(module, ResnetBlock2D):
            module.norm1 = VideoGroupNorm.replacing(module.norm1, frames, pool_frames=True)
            module.norm2 = VideoGroupNorm.replacing(module.norm2, frames, pool_frames=True)
    if unet.conv_norm_out is not None:
        unet.conv_norm_out = VideoGroupNorm.replacing(unet.conv_norm_out, frames, pool_frames=True)
    for blocks in (unet.down_blocks, unet.up_blocks):
        for block in blocks:
            for motion in getattr(block, "motion_modules", []):
                motion.norm = VideoGroupNorm.replacing(motion.norm, frames, pool_frames=False)
    unet.register_forward_pre_hook(frames, with_kwargs=True)
    return frames


class MagicAnimateModel(PretrainedModel):
    """Noise (or velocity) prediction for F frames from noisy latents, DensePose renders and a reference latent."""

    config_class = MagicAnimateConfig
    # saved as diffusers folders (unet/, appearance_encoder/, controlnet/); text_context in model.safetensors
    components = ("unet", "appearance_encoder", "controlnet")

    def __init__(self, config: MagicAnimateConfig):
        super().__init__()
        self.config = c = config
        spatial = dict(block_out_channels=c.block_out_channels, layers_per_block=c.layers_per_block,
                       norm_num_groups=c.norm_num_groups, cross_attention_dim=c.cross_attention_dim)
        self.unet = UNetMotionModel(
            sample_size=c.sample_size, in_channels=c.latent_channels, out_channels=c.latent_channels,
            down_block_types=tuple(map(_motion, c.down_block_types)),
            up_block_types=tuple(map(_motion, c.up_block_types)),
            num_attention_heads=c.attention_heads, motion_num_attention_heads=c.motion_heads,
            motion_max_seq_length=c.motion_max_seq_length, use_motion_mid_block=False, **spatial)
        self.frames = use_video_norms(self.unet, c.video_norm)
        self.appearance_encoder = UNet2DConditionModel(
            sample_size=c.sample_size, in_channels=c.latent_channels, out_channels=c.latent_channels,
            down_block_types=c.down_block_types, up_block_types=c.up_block_types,
            attention_head_dim=c.attention_heads, **spatial)
        self.appearance_encoder.conv_norm_out = None      # MagicAnimate's encoder has no output head:
        self.appearance_encoder.conv_out = nn.Identity()  # only its banked attention inputs are used
        self.controlnet = ControlNetModel(
            in_channels=c.latent_channels, conditioning_channels=3, down_block_types=c.down_block_types,
            attention_head_dim=c.attention_heads,
            conditioning_embedding_out_channels=c.controlnet_embedding_channels, **spatial)
        d = c.cross_attention_dim
        if c.learned_text_context:
            self.text_context = nn.Parameter(torch.randn(1, c.text_tokens, d) * d**-0.5)
        else:
            self.register_buffer("text_context", torch.zeros(1, c.text_tokens, d))
        for name, module in self.motion_modules():
            nn.init.zeros_(module.proj_out.weight)
            nn.init.zeros_(module.proj_out.bias)
        self.bank = reference_attention.ReferenceBank(read_dtype=BANK_DTYPES[c.reference_bank_dtype])
        self.reference_blocks = reference_attention.attach(self.appearance_encoder, self.unet, self.bank)

    def motion_modules(self) -> list[tuple[str, nn.Module]]:
        """(name, module) of every AnimateDiff motion module of the denoiser."""
        return [(f"unet.{n}", m) for n, m in self.unet.named_modules() if n.split(".")[-2:-1] == ["motion_modules"]]

    def motion_parameter_names(self) -> set[str]:
        """Names (in this model's state dict) of the motion modules' parameters: what stage 2 trains."""
        return {f"{name}.{p}" for name, m in self.motion_modules() for p, _ in m.named_parameters()}

    def set_text_context(self, context: torch.Tensor) -> None:
        """Set the fixed context, e.g. the text encoder's embedding of "" (1, text_tokens, cross_attention_dim)."""
        if tuple(context.shape) != tuple(self.text_context.shape):
            raise ValueError(f"text context must be {tuple(self.text_context.shape)}, got {tuple(context.shape)}")
        with torch.no_grad():
            self.text_context.copy_(context)

    def _context(self, n: int) -> torch.Tensor:
        return self.text_context.expand(n, -1, -1)

    def encode_reference(self, reference_latent: torch.Tensor, timestep: torch.Tensor) -> dict[str, torch.Tensor]:
        """The appearance encoder's banked tokens for reference latents (B, C, h, w) at `timestep` (B,) or scalar."""
        self.bank.clear()
        b = reference_latent.shape[0]
        self.appearance_encoder(reference_latent, timestep.reshape(-1).expand(b), self._context(b))
        store, self.bank.store = self.bank.store, {}
        return store

    def control(self, sample: torch.Tensor, timestep: torch.Tensor, densepose: torch.Tensor) -> Control:
        """ControlNet residuals for latents (B, C, F, h, w) and DensePose renders (B, F, 3, H, W) in [0, 1], per frame."""
        b, _, f = sample.shape[:3]
        t = timestep.reshape(-1).expand(b).repeat_interleave(f)
        down, mid = self.controlnet(sample.transpose(1, 2).flatten(0, 1), t, self._context(b * f),
                                    densepose.flatten(0, 1).to(sample.dtype), return_dict=False)
        return tuple(down), mid

    def denoise(self, sample: torch.Tensor, timestep: torch.Tensor, bank: dict[str, torch.Tensor] | None = None,
                use_reference: torch.Tensor | None = None, control: Control | None = None) -> torch.Tensor:
        """The denoiser on latents (B, C, F, h, w), reading `bank` (from `encode_reference`) where `use_reference`."""
        b, _, f = sample.shape[:3]
        self.bank.store, self.bank.n_frames, self.bank.use = bank or {}, f, use_reference
        try:
            out = self.unet(sample, timestep, self._context(b * f),  # diffusers wants one context per frame
                            down_block_additional_residuals=None if control is None else control[0],
                            mid_block_additional_residual=None if control is None else control[1],
                            return_dict=False)[0]
        finally:
            self.bank.clear()
        return out

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, densepose: torch.Tensor | None,
                reference_latent: torch.Tensor | None, use_reference: torch.Tensor | None = None) -> torch.Tensor:
        """Prediction (B, C, F, h, w) for noisy latents (B, C, F, h, w) at timesteps (B,).

        densepose: (B, F, 3, H, W) renders in [0, 1] (None: no ControlNet); reference_latent:
        (B, C, h, w) clean reference latents (None: no reference); use_reference: (B,) bool,
        False where a sample ignores the reference (classifier-free guidance's unconditional half).
        """
        bank = self.encode_reference(reference_latent, timestep) if reference_latent is not None else None
        control = self.control(sample, timestep, densepose) if densepose is not None else None
        return self.denoise(sample, timestep, bank, use_reference, control)

    def unused_encoder_parameters(self) -> list[str]:
        """Appearance-encoder parameters no banked token depends on (after the last banked attention): left frozen.

        Found by one backward pass of the encoder at the smallest latent size the UNet takes.
        """
        enc = self.appearance_encoder
        p = next(enc.parameters())
        side = 2 ** (len(self.config.block_out_channels) - 1)
        x = torch.zeros(1, self.config.latent_channels, side, side, device=p.device, dtype=p.dtype)
        with torch.enable_grad():
            store = self.encode_reference(x, torch.zeros((), dtype=torch.long, device=p.device))
            total = sum(v.float().sum() for v in store.values())
            names, params = zip(*[(n, q) for n, q in enc.named_parameters() if q.requires_grad])
            grads = torch.autograd.grad(total, params, allow_unused=True)
        return [f"appearance_encoder.{n}" for n, g in zip(names, grads) if g is None]

    def enable_gradient_checkpointing(self) -> None:
        for net in (self.unet, self.appearance_encoder, self.controlnet):
            net.enable_gradient_checkpointing()
