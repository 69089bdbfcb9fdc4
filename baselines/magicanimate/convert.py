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
- ``temporal_attention/temporal_attention.ckpt``: a pickle, loaded into the 3D UNet by the loader of
  demo/animate.py (and pipelines/animation.py), which `release_unet_state` follows step by step:
  ``torch.load``; unwrap a ``state_dict`` entry; strip a leading ``module.``; load everything with
  ``strict=False``. Should any key then be unexpected or of a wrong shape, the tensors that did fit
  stay loaded and a second pass loads the keys containing ``motion_modules`` (a leading ``unet.``
  stripped); every other key is ignored (reported), and a motion key that still does not fit makes
  the release fail, and us. So a whole UNet with ``unet.`` prefixes gives its motion modules only,
  the spatial layers staying SD 1.5's. Its published size, 5.11 GB, is exactly the whole 3D UNet in
  fp32 (1,277,503,364 values: SD 1.5's spatial layers plus 20 AnimateDiff motion modules with their
  position tables); motion modules alone would be 1.67 GB. Spatial names equal diffusers'
  `UNetMotionModel`'s; motion-module names are AnimateDiff's, renamed as diffusers' AnimateDiff
  conversion does (`MOTION_RENAMES`). Whatever the file leaves out of the spatial UNet comes from
  SD 1.5's UNet, as ``from_pretrained_2d`` starts the release from it.

Nothing is silently dropped: `NO_PLACE` says which published tensors have no place and why,
`not_in_checkpoint` which model entries no published tensor fills and why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import torch

from toolkit.models.conversion import (  # noqa: F401 - ConversionError is this module's error too
    ConversionError, load_release_pickle, read_key_table, registry_sha256, write_converted)

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


def read_published_keys(path: str | Path = PUBLISHED_KEYS) -> dict[str, dict[str, tuple[int, ...]]]:
    """Released file -> {tensor name: shape}, from published_keys.tsv."""
    table: dict[str, dict[str, tuple[int, ...]]] = {}
    for (file, name), shape in read_key_table(path):
        table.setdefault(file, {})[name] = shape
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


def release_name(name: str) -> str:
    """The release's 3D-UNet name of one of our ``unet.`` names (the inverse of `map_name` for the temporal file)."""
    name = name.removeprefix("unet.")
    match = re.fullmatch(r"(.*\.motion_modules\.\d+)\.(.*)", name)
    if not match:
        return name
    head, rest = match.groups()
    for ours, theirs in (("pos_embed.", "attention_blocks.0.pos_encoder."), ("attn1.", "attention_blocks.0."),
                         ("attn2.", "attention_blocks.1."), ("norm1.", "norms.0."), ("norm2.", "norms.1."),
                         ("norm3.", "ff_norm.")):
        rest = rest.replace(ours, theirs)
    return f"{head}.temporal_transformer.{rest}"


def release_unet_shapes(config: MagicAnimateConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the release's 3D UNet state dict (both position tables of each motion module)."""
    out = {}
    for name, shape in model_shapes(config).items():
        if name.startswith("unet."):
            theirs = release_name(name)
            out[theirs] = tuple(shape)
            if theirs.endswith(".attention_blocks.0.pos_encoder.pe"):
                out[theirs.replace(".attention_blocks.0.", ".attention_blocks.1.")] = tuple(shape)
    return out


def _after_prefix(key: str, prefix: str) -> str:
    """``key.split(prefix)[-1]`` where the key starts with `prefix`, as the release's loader renames."""
    return key.split(prefix)[-1] if key.startswith(prefix) else key


def release_unet_state(published: dict[str, Any], config: MagicAnimateConfig
                       ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """What the release's loader (demo/animate.py L93-121) puts into the 3D UNet, by the release's names.

    Returns the loaded entries and a report: ``ignored`` (keys it drops) and ``pass`` ("1": every key
    fitted; "1+2": the first pass failed and the motion-module keys were loaded again). Raises
    ConversionError where the release's loader raises (a motion key that fits nowhere).
    """
    shapes = release_unet_shapes(config)

    def fits(key: str, value: Any) -> bool:
        return key in shapes and isinstance(value, torch.Tensor) and tuple(value.shape) == shapes[key]

    state = {}
    for key, value in published.items():
        state[_after_prefix(key, "module.")] = value
    loaded = {k: v for k, v in state.items() if fits(k, v)}
    if len(loaded) == len(state):
        return loaded, {"ignored": [], "pass": ["1"]}
    second = {}
    for key, value in state.items():
        if "motion_modules" in key:
            second[_after_prefix(key, "unet.")] = value
    bad = [f"{k} {tuple(getattr(v, 'shape', ()))}" for k, v in second.items() if not fits(k, v)]
    if bad:
        raise ConversionError(f"temporal_attention: the release's loader fails on these motion-module keys too "
                              f"(unexpected or of another shape): {bad[:20]}")
    loaded.update(second)
    ignored = [k for k, v in state.items() if "motion_modules" not in k and not fits(k, v)]
    return loaded, {"ignored": ignored, "pass": ["1", "2"]}


def convert_state_dict(file: str, published: dict[str, torch.Tensor],
                       config: MagicAnimateConfig) -> dict[str, torch.Tensor]:
    """Rename one released file's tensors to our names, checking every name, shape and the coverage.

    Raises ConversionError listing tensors that map nowhere or to a wrong shape, and model entries of
    the file's part left uncovered (other than `not_in_checkpoint`). The temporal file goes through
    `release_unet_state` first, so it yields what the release's loader loads, all of the motion
    modules and any part of the spatial layers (the rest is SD 1.5's, `unet_with_sd15`); what that
    loader ignores is ignored here too (`convert_published_file` reports it).
    """
    shapes, skip = model_shapes(config), not_in_checkpoint(config)
    if file == "temporal_attention":
        published = release_unet_state(published, config)[0]
    out: dict[str, torch.Tensor] = {}
    unmapped, mismatched, second = [], [], {}
    for raw, tensor in published.items():
        name = raw
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
    if file == "temporal_attention":
        missing -= spatial_keys(shapes)  # what the file does not load of the spatial UNet stays SD 1.5's
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


def load_published(file: str, path: str | Path) -> dict[str, Any]:
    """The entries of one released file: safetensors as they are, the pickle weights-only ('state_dict' unwrapped).

    A pickle's non-tensor entries are kept: the release's loader counts them as keys (unexpected ones
    make it fall back to loading motion modules only), and so does `release_unet_state`.
    """
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    return load_release_pickle(path)


def convert_published_file(source: str | Path, destination: str | Path,
                           config: MagicAnimateConfig | None = None) -> Path:
    """`toolkit weights convert magicanimate-temporal-attention`: the 5.1 GB pickle -> our safetensors, once.

    Writes ``config.json`` and ``model.safetensors`` (our ``unet.*`` names) into `destination`. The
    pickle is read with ``weights_only=True``; nothing else in it is executed or kept.
    """
    config = config or MagicAnimateConfig.named("paper")
    published = load_published("temporal_attention", source)
    report = release_unet_state(published, config)[1]
    state = convert_state_dict("temporal_attention", published, config)
    if report["ignored"]:
        print(f"{Path(source).name}: {len(report['ignored'])} keys ignored, as the release's loader ignores them "
              f"(its first pass failed, its second loads motion modules only): {report['ignored'][:5]}"
              f"{' ...' if len(report['ignored']) > 5 else ''}")
    return write_converted(destination, state, config.to_dict(),
                           {"source": Path(source).name, "ignored_keys": json.dumps(report["ignored"]),
                            "loader_passes": "+".join(report["pass"])})


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

    def sd15() -> dict[str, torch.Tensor]:
        return load_file(str(weights.path("sd15-unet")))

    context = empty_prompt_embedding(weights.path("sd15-text-encoder"), config.text_tokens)
    return assemble(config, load_file(str(converted / "model.safetensors")),
                    load_file(str(weights.path(ARTIFACTS["appearance_encoder"]))),
                    load_file(str(weights.path(ARTIFACTS["densepose_controlnet"]))), sd15, context)


def unet_with_sd15(unet: dict[str, torch.Tensor], sd15: Callable[[], dict[str, torch.Tensor]],
                   config: MagicAnimateConfig) -> dict[str, torch.Tensor]:
    """The converted temporal file's ``unet.*`` entries, the spatial ones it lacks taken from SD 1.5's UNet
    (`sd15` is called only when some are lacking), as the release starts from SD 1.5 (``from_pretrained_2d``)."""
    shapes = model_shapes(config)
    lacking = spatial_keys(shapes) - set(unet)
    state = dict(unet)
    if lacking:
        spatial = sd15()
        absent = sorted(k for k in lacking if k.removeprefix("unet.") not in spatial)
        if absent:
            raise ConversionError(f"SD 1.5's UNet lacks {absent[:5]}: not SD 1.5's layout")
        state.update({k: spatial[k.removeprefix("unet.")] for k in lacking})
    return state


def assemble(config: MagicAnimateConfig, temporal: dict[str, torch.Tensor], appearance: dict[str, torch.Tensor],
             controlnet: dict[str, torch.Tensor], sd15: Callable[[], dict[str, torch.Tensor]],
             text_context: torch.Tensor) -> MagicAnimateModel:
    """The model from the converted temporal file (our names), the two released safetensors (their names),
    SD 1.5's UNet for what the temporal file does not load, and the "" text context."""
    shapes = model_shapes(config)
    state = unet_with_sd15(temporal, sd15, config)
    state.update(convert_state_dict("appearance_encoder", appearance, config))
    state.update(convert_state_dict("densepose_controlnet", controlnet, config))
    state[TEXT_CONTEXT] = text_context.reshape(shapes[TEXT_CONTEXT])
    for key in not_in_checkpoint(config):
        state.setdefault(key, torch.zeros(shapes[key]))
    return MagicAnimateModel.assigned(config, state)


def published_sha256() -> str:
    """Provenance of a run of the release: each registry file's name and sha256 (hashes are cached)."""
    return registry_sha256([*ARTIFACTS.values(), "sd15-text-encoder"])
