"""Map MagicAnimate's released files (HF zcxu-eric/MagicAnimate) onto the paper-config `MagicAnimateModel`.

The release has three files; `published_keys.tsv` lists each one's tensor names and shapes, made by
instantiating the public model classes (magic-research/magic-animate @d2bc3bc, SD 1.5's UNet config,
configs/inference/inference.yaml) on the meta device:

- ``appearance_encoder/diffusion_pytorch_model.safetensors``: `AppearanceEncoderModel`, a diffusers
  `UNet2DConditionModel` without ``conv_norm_out``/``conv_out`` whose last up-block attention is
  pruned after ``norm1`` (662 tensors, 857,066,560 values = 3.43 GB fp32, the file's published size);
  same names as our ``appearance_encoder.*``;
- ``densepose_controlnet/diffusion_pytorch_model.safetensors``: a diffusers-layout `ControlNetModel`
  with a 16/32/96/256 conditioning embedder (340 tensors, 1.45 GB); same names as our ``controlnet.*``;
- ``temporal_attention/temporal_attention.ckpt``: a pickle the public loader reads with ``torch.load``,
  unwraps an optional ``state_dict`` entry, strips ``module.`` prefixes and loads into the 3D UNet with
  ``strict=False`` (``unet.`` prefixes are also accepted for motion-module keys). Its published size,
  5.11 GB, is exactly the whole 3D UNet in fp32 (1,277,503,364 values: SD 1.5's spatial layers, which
  MagicAnimate fine-tuned, plus 20 AnimateDiff motion modules with their position tables); motion
  modules alone would be 1.67 GB. Spatial names equal diffusers' `UNetMotionModel`'s; motion-module
  names are AnimateDiff's, renamed as diffusers' AnimateDiff conversion does (`MOTION_RENAMES`).
  Should a file hold the motion modules only, `from_published` takes the spatial layers from SD 1.5.

Nothing is silently dropped: `NO_PLACE` says which published tensors have no place and why,
`not_in_checkpoint` which model entries no published tensor fills and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from toolkit import safe_pickle

from .model import MagicAnimateConfig, MagicAnimateModel

PUBLISHED_KEYS = Path(__file__).parent / "published_keys.tsv"
# released file (first column of published_keys.tsv) -> registry artifact, and its prefix in our state dict
ARTIFACTS = {"appearance_encoder": "magicanimate-appearance-encoder",
             "densepose_controlnet": "magicanimate-densepose-controlnet",
             "temporal_attention": "magicanimate-temporal-attention"}
PREFIX = {"appearance_encoder": "appearance_encoder.", "densepose_controlnet": "controlnet.",
          "temporal_attention": "unet."}
# AnimateDiff motion-module names -> diffusers UNetMotionModel names, applied in order
MOTION_RENAMES = ((".temporal_transformer.", "."), (".attention_blocks.0.pos_encoder.", ".pos_embed."),
                  (".attention_blocks.0.", ".attn1."), (".attention_blocks.1.", ".attn2."),
                  (".norms.0.", ".norm1."), (".norms.1.", ".norm2."), (".ff_norm.", ".norm3."))
SECOND_POSITIONS = ".attention_blocks.1.pos_encoder.pe"
NO_PLACE = {SECOND_POSITIONS: "AnimateDiff keeps one sinusoid table per temporal attention; diffusers' block keeps "
            "one for both. The two published tables must be equal (checked), the first one is loaded"}
TEXT_CONTEXT = "text_context"
PRUNED = ("the release prunes the appearance encoder's last attention after norm1 (identities in the public code): "
          "nothing banked depends on it; filled with zeros")


class ConversionError(KeyError):
    """Published and model keys do not correspond."""


def read_published_keys(path: str | Path = PUBLISHED_KEYS) -> dict[str, dict[str, tuple[int, ...]]]:
    """Released file -> {tensor name: shape}, from published_keys.tsv."""
    table: dict[str, dict[str, tuple[int, ...]]] = {}
    for line in Path(path).read_text().splitlines():
        file, name, shape = line.split("\t")
        table.setdefault(file, {})[name] = tuple(int(s) for s in shape.split("x")) if shape else ()
    return table


def model_shapes(config: MagicAnimateConfig) -> dict[str, torch.Size]:
    """Names and shapes of our model's state dict (built on the meta device, once per config)."""
    return MagicAnimateModel.state_shapes(config)


def not_in_checkpoint(config: MagicAnimateConfig) -> dict[str, str]:
    """Model entries no released tensor fills, each with the reason: the "" text context (computed from SD 1.5's
    text encoder) and the appearance encoder's pruned tail."""
    tail = (f"appearance_encoder.up_blocks.{len(config.block_out_channels) - 1}."
            f"attentions.{config.layers_per_block}.")
    kept = tuple(tail + k for k in ("norm.", "proj_in.", "transformer_blocks.0.norm1."))
    out = {TEXT_CONTEXT: "MagicAnimate computes it at start-up with SD 1.5's CLIP text encoder (sd15-text-encoder)"}
    out.update({k: PRUNED for k in model_shapes(config) if k.startswith(tail) and not k.startswith(kept)})
    return out


def map_name(file: str, name: str) -> str | None:
    """Our state-dict name for tensor `name` of released `file` (None: no place, see NO_PLACE)."""
    if file == "temporal_attention" and "motion_modules" in name:
        if name.endswith(SECOND_POSITIONS):
            return None
        for old, new in MOTION_RENAMES:
            name = name.replace(old, new)
    return PREFIX[file] + name


def _strip(name: str) -> str:
    """The prefixes the public loader removes: DDP's `module.`, then `unet.`."""
    return name.removeprefix("module.").removeprefix("unet.")


def convert_state_dict(file: str, published: dict[str, torch.Tensor],
                       config: MagicAnimateConfig) -> dict[str, torch.Tensor]:
    """Rename one released file's tensors to our names, checking every name, shape and the coverage.

    Raises ConversionError listing tensors that map nowhere or to a wrong shape, and model entries of
    the file's part left uncovered (other than `not_in_checkpoint`). The temporal file may hold the
    whole 3D UNet or its motion modules only (then the result lacks the spatial layers).
    """
    shapes, skip = model_shapes(config), not_in_checkpoint(config)
    out: dict[str, torch.Tensor] = {}
    unmapped, mismatched, second = [], [], {}
    for raw, tensor in published.items():
        name = _strip(raw) if file == "temporal_attention" else raw
        ours = map_name(file, name)
        if ours is None:
            second[name] = tensor
            continue
        if ours not in shapes or ours in skip:
            unmapped.append(raw)
        elif tuple(tensor.shape) != tuple(shapes[ours]):
            mismatched.append(f"{raw} {tuple(tensor.shape)} -> {ours} {tuple(shapes[ours])}")
        else:
            out[ours] = tensor
    for name, tensor in second.items():
        first = out.get(map_name(file, name.replace(".attention_blocks.1.", ".attention_blocks.0.")))
        if first is None or first.shape != tensor.shape or (not tensor.is_meta and not torch.equal(first, tensor)):
            mismatched.append(f"{name}: differs from the first attention's position table")
    part = {k for k in shapes if k.startswith(PREFIX[file])} - set(skip)
    missing = part - set(out)
    if file == "temporal_attention" and not set(out) & spatial_keys(shapes):
        missing -= spatial_keys(shapes)  # a motion-modules-only file: the spatial UNet comes from SD 1.5
    if unmapped or mismatched or missing:
        raise ConversionError(f"{file}: unmapped published keys: {unmapped[:20]}; shape mismatches: "
                              f"{mismatched[:20]}; model keys not covered: {sorted(missing)[:20]}")
    return out


def motion_keys(shapes: dict[str, torch.Size]) -> set[str]:
    return {k for k in shapes if k.startswith("unet.") and ".motion_modules." in k}


def spatial_keys(shapes: dict[str, torch.Size]) -> set[str]:
    return {k for k in shapes if k.startswith("unet.")} - motion_keys(shapes)


# What ControlNet copies from the UNet it starts from (diffusers' `ControlNetModel.from_unet`): the rest, its
# conditioning embedder and zero convolutions, keeps its initialisation.
CONTROLNET_FROM_UNET = ("conv_in.", "time_embedding.", "down_blocks.", "mid_block.")


def from_sd15_unet(unet: dict[str, torch.Tensor], config: MagicAnimateConfig,
                   source: str | Path = "sd15-unet") -> dict[str, torch.Tensor]:
    """Our state entries an SD 1.5 UNet (diffusers names) starts training from, as MagicAnimate's and Animate
    Anyone's training do: the denoiser's spatial layers, the whole appearance encoder, and the ControlNet's
    copy of the UNet encoder. Motion modules, the ControlNet's embedder and zero convolutions are not filled.
    Raises ValueError naming `source` if it lacks a tensor or holds one of another shape."""
    shapes = model_shapes(config)
    wanted = {k: k.removeprefix("unet.") for k in spatial_keys(shapes)}
    wanted.update({k: k.removeprefix("appearance_encoder.") for k in shapes if k.startswith("appearance_encoder.")})
    wanted.update({k: k.removeprefix("controlnet.") for k in shapes
                   if k.startswith("controlnet.") and k.removeprefix("controlnet.").startswith(CONTROLNET_FROM_UNET)})
    lacking = sorted({name for name in wanted.values() if name not in unet})
    wrong = sorted(f"{name} {tuple(unet[name].shape)} (model: {tuple(shapes[ours])})" for ours, name in wanted.items()
                   if name in unet and tuple(unet[name].shape) != tuple(shapes[ours]))
    if lacking or wrong:
        raise ValueError(f"{source}: not a UNet of this config's SD 1.5 layout; lacks {lacking[:5]}"
                         f"{f' (+{len(lacking) - 5} more)' if len(lacking) > 5 else ''}; shapes differ: {wrong[:5]}")
    return {ours: unet[name] for ours, name in wanted.items()}


def load_published(file: str, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of one released file: safetensors as they are, the pickle weights-only ('state_dict' unwrapped)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    state = safe_pickle.load(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def convert_published_file(source: str | Path, destination: str | Path,
                           config: MagicAnimateConfig | None = None) -> Path:
    """`toolkit weights convert magicanimate-temporal-attention`: the 5.1 GB pickle -> our safetensors, once.

    Writes ``config.json`` and ``model.safetensors`` (our ``unet.*`` names) into `destination`. The
    pickle is read with ``weights_only=True``; nothing else in it is executed or kept.
    """
    from safetensors.torch import save_file

    config = config or MagicAnimateConfig.named("paper")
    state = convert_state_dict("temporal_attention", load_published("temporal_attention", source), config)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, destination / "model.safetensors",
              metadata={"source": Path(source).name})
    (destination / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return destination


def from_published(config: MagicAnimateConfig | None = None) -> MagicAnimateModel:
    """The paper-config model with MagicAnimate's released weights, from the weights registry.

    Reads the converted temporal file (`toolkit weights convert magicanimate-temporal-attention`),
    the appearance encoder and ControlNet safetensors, SD 1.5's UNet where the temporal file lacks
    the spatial layers, and fills `text_context` with SD 1.5's CLIP embedding of "". A missing file
    raises the registry's WeightsMissing, which names the command that fetches it. Built on the meta
    device and loaded by assignment, so the 10 GB of fp32 weights are held once.
    """
    from safetensors.torch import load_file

    from toolkit import weights
    from toolkit.models.clip_text import empty_prompt_embedding

    artifact = ARTIFACTS["temporal_attention"]
    converted = weights.converted_dir(artifact)
    if not (converted / "model.safetensors").is_file():
        weights.path(artifact, verify=False)  # absent: the registry's error with the fetch command
        raise FileNotFoundError(f"{converted}: {artifact} is not converted yet; run `toolkit weights convert "
                                f"{artifact}` once")
    saved = MagicAnimateConfig.from_dict(json.loads((converted / "config.json").read_text()))
    config = config or saved
    if saved != config:
        raise ValueError(f"{converted}: converted for another config ({saved}), not {config}")
    state = load_file(str(converted / "model.safetensors"))
    for file in ("appearance_encoder", "densepose_controlnet"):
        state.update(convert_state_dict(file, load_file(str(weights.path(ARTIFACTS[file]))), config))
    shapes = model_shapes(config)
    if spatial_keys(shapes) - set(state):
        sd15 = weights.path("sd15-unet")
        spatial = {f"unet.{k}": v for k, v in load_file(str(sd15)).items()}
        lacking = sorted(spatial_keys(shapes) - set(spatial))
        if lacking:
            raise ConversionError(f"{sd15}: not SD 1.5's UNet, it lacks {lacking[:5]}")
        state.update({k: spatial[k] for k in spatial_keys(shapes)})
    context = empty_prompt_embedding(weights.path("sd15-text-encoder"), config.text_tokens)
    state[TEXT_CONTEXT] = context.reshape(shapes[TEXT_CONTEXT])
    for key in not_in_checkpoint(config):
        state.setdefault(key, torch.zeros(shapes[key]))
    return MagicAnimateModel.assigned(config, state)


def published_sha256() -> str:
    """Provenance of a run of the release: each registry file's name and sha256 (hashes are cached)."""
    from toolkit import weights

    names = [*ARTIFACTS.values(), "sd15-text-encoder"]
    return ";".join(f"{n}={weights.file_sha256(n)}" for n in names)
