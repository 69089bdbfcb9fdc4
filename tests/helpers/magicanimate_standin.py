"""Stand-ins of MagicAnimate-style models for the tests: a micro config, a model whose zero-initialised layers
act, inputs of the right shapes, and the weights of a model laid out as MagicAnimate's released files and
installed in a fresh registry cache."""

from __future__ import annotations

import re

import torch
from safetensors.torch import save_file

from baselines.magicanimate import convert
from baselines.magicanimate.convert import map_name, model_shapes, not_in_checkpoint
from baselines.magicanimate.model import MagicAnimateConfig, MagicAnimateModel

# A model small enough for many forward passes: 2 levels, 12-channel latents (a 2x pixel codec of 16x16 images).
MICRO = MagicAnimateConfig(
    latent_channels=12, sample_size=8, block_out_channels=(16, 32), layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_heads=2, norm_num_groups=4, cross_attention_dim=8, text_tokens=3, learned_text_context=True,
    motion_heads=2, motion_max_seq_length=16, controlnet_embedding_channels=(8, 16))


def fresh(seed: int = 0, config: MagicAnimateConfig = MICRO) -> MagicAnimateModel:
    torch.manual_seed(seed)
    return MagicAnimateModel(config).eval()


def nudged(seed: int = 0, config: MagicAnimateConfig = MICRO) -> MagicAnimateModel:
    """A model whose zero-initialised layers are no longer zero, so every part acts."""
    m = fresh(seed, config)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def inputs(b: int = 2, f: int = 3, seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 12, f, 8, 8, generator=g)
    t = torch.randint(0, 1000, (b,), generator=g)
    densepose = torch.rand(b, f, 3, 16, 16, generator=g)
    ref = torch.randn(b, 12, 8, 8, generator=g)
    return x, t, densepose, ref


# A small model as the release lays its weights out.
MOTION_BACK = (("pos_embed.", "attention_blocks.0.pos_encoder."), ("attn1.", "attention_blocks.0."),
               ("attn2.", "attention_blocks.1."), ("norm1.", "norms.0."), ("norm2.", "norms.1."),
               ("norm3.", "ff_norm."))


def released_name(name: str) -> str:
    """The AnimateDiff name of one of our UNet names (inverse of map_name for the temporal file, prefix removed)."""
    match = re.fullmatch(r"(.*\.motion_modules\.\d+)\.(.*)", name)
    if not match:
        return name
    head, rest = match.groups()
    for ours, theirs in MOTION_BACK:
        rest = rest.replace(ours, theirs)
    return f"{head}.temporal_transformer.{rest}"


def release(model: MagicAnimateModel, motion_only: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """A model's weights as MagicAnimate's three released files, the encoder's tail pruned."""
    skip = not_in_checkpoint(model.config)
    files: dict[str, dict[str, torch.Tensor]] = {f: {} for f in convert.PREFIX}
    for name, tensor in model.state_dict().items():
        if name in skip:
            continue
        file = next(f for f, p in convert.PREFIX.items() if name.startswith(p))
        rest = name.removeprefix(convert.PREFIX[file])
        if file == "temporal_attention":
            if motion_only and ".motion_modules." not in name:
                continue
            rest = released_name(rest)
            if rest.endswith(".attention_blocks.0.pos_encoder.pe"):
                files[file][rest.replace("attention_blocks.0", "attention_blocks.1")] = tensor.clone()
        assert map_name(file, rest) == name
        files[file][rest] = tensor.clone()
    return files


def install_release(monkeypatch, tmp_path, model: MagicAnimateModel, motion_only: bool = False) -> None:
    """Write the stand-in release (plus SD 1.5's text encoder and, for a motion-only file, its UNet) into a fresh
    registry cache, each pinned to its stand-in file so the production import and checks run unchanged."""
    from tests.helpers.standin import clip_text_state, pin, use_home
    from toolkit import weights

    use_home(monkeypatch, tmp_path / "home")
    files = release(model, motion_only)
    work = tmp_path / "release"
    work.mkdir()
    srcs = {}
    for file, tensors in files.items():
        artifact = convert.ARTIFACTS[file]
        src = work / weights.ARTIFACTS[artifact].filename  # the two safetensors share a base name
        src.parent.mkdir(parents=True, exist_ok=True)
        if file == "temporal_attention":
            torch.save({"global_step": 1, "state_dict": {f"module.{k}": v for k, v in tensors.items()}}, src)
        else:
            save_file({k: v.contiguous() for k, v in tensors.items()}, src)
        srcs[artifact] = src
    srcs["sd15-text-encoder"] = work / "model.safetensors"
    save_file(clip_text_state(model.config.cross_attention_dim, model.config.text_tokens), srcs["sd15-text-encoder"])
    if motion_only:
        srcs["sd15-unet"] = work / "diffusion_pytorch_model.safetensors"
        save_file({k.removeprefix("unet."): v.contiguous() for k, v in model.state_dict().items()
                   if k in convert.spatial_keys(model_shapes(model.config))}, srcs["sd15-unet"])
    for artifact, src in srcs.items():
        pin(monkeypatch, artifact, src)
        weights.import_file(src, artifact)
