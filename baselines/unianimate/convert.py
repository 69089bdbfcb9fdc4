"""Map UniAnimate's published UNet checkpoint onto `UniAnimateModel`.

The checkpoint (`unianimate_16f_32f_non_ema_223000.pth`) is a pickled flat dict of fp32 tensors,
the `state_dict()` of `UNetSD_UniAnimate` with no key prefix. The release's loader
(tools/inferences/inference_unianimate_entrance.py L250-257, the long entrance L269-276, @643c963),
and ours step by step:

1. ``torch.load(path, map_location='cpu')``: ours reads it with ``weights_only=True``
   (`toolkit.safe_pickle`), on the CPU;
2. ``if 'state_dict' in state_dict: state_dict = state_dict['state_dict']``: the same unwrapping;
3. ``'step'`` is read if present (for logging only): nothing to do;
4. ``model.load_state_dict(state_dict, strict=True)`` with no prefix handling: every entry must be a
   tensor of the model under its own name (a left-over non-tensor entry such as ``step`` would fail
   their strict load, and fails ours: `ConversionError`); `convert_state_dict` maps each name and
   refuses unmapped, misshapen and missing entries, our `strict`.

Its names and shapes are listed in `published_keys.tsv`. Every published tensor has a place in our
model; the only model entry without a published counterpart is `text_context` (UniAnimate computes it
at start-up as OpenCLIP's embedding of "", see `NOT_IN_CHECKPOINT`). scripts/reference_unianimate.py
runs this path on a reduced-width state dict saved by the authors' own model and compares outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from toolkit.models.conversion import (  # noqa: F401 - ConversionError is this module's error too
    ConversionError, load_release_pickle, read_key_table, registry_sha256, write_converted)

from .model import UniAnimateConfig, UniAnimateModel

PUBLISHED_KEYS = Path(__file__).parent / "published_keys.tsv"
NOT_IN_CHECKPOINT = ("text_context",)

RESBLOCK = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
ADAPTER_LAYER = {"0.norm": "norm", "0.fn.to_qkv": "attn.to_qkv", "0.fn.to_out.0": "attn.to_out",
                 "1.net.0.0": "ff.0", "1.net.2": "ff.3"}
ADAPTERS = {  # published convs, published transformer -> our encoder
    "dwpose_embedding": ("dwpose_embedding_after", "pose_encoder"),
    "local_image_embedding": ("local_image_embedding_after", "local_image_encoder"),
    "randomref_embedding2": ("randomref_embedding_after2", "reference_encoder"),
    "randomref_pose2_embedding": ("randomref_pose2_embedding_after", "reference_pose_encoder"),
}


def module_map(config: UniAnimateConfig) -> tuple[dict[str, str], set[str]]:
    """Published module path -> our module path, and the published temporal transformers (Conv1d projections)."""
    m: dict[str, str] = {"time_embed.0": "unet.time_embedding.linear_1", "time_embed.2": "unet.time_embedding.linear_2",
                         "out.0": "unet.conv_norm_out", "out.2": "unet.conv_out",
                         "pre_image_condition.0": "image_proj.0", "pre_image_condition.2": "image_proj.2",
                         "input_blocks.0.0": "unet.conv_in", "input_blocks.0.1": "unet.transformer_in"}
    temporal = {"input_blocks.0.1"}

    def layer(pub: str, ours: str, j: int, attn: bool, first: int = 1) -> None:
        for old, new in RESBLOCK.items():
            m[f"{pub}.0.{old}"] = f"{ours}.resnets.{j}.{new}"
        m[f"{pub}.0.temopral_conv"] = f"{ours}.temp_convs.{j}"
        if attn:
            m[f"{pub}.{first}"] = f"{ours}.attentions.{j}"
            m[f"{pub}.{first + 1}"] = f"{ours}.temp_attentions.{j}"
            temporal.add(f"{pub}.{first + 1}")

    levels = len(config.block_out_channels)
    k = 1
    for i, kind in enumerate(config.down_block_types):
        for j in range(config.layers_per_block):
            layer(f"input_blocks.{k}", f"unet.down_blocks.{i}", j, kind.startswith("CrossAttn"))
            k += 1
        if i < levels - 1:
            m[f"input_blocks.{k}.op"] = f"unet.down_blocks.{i}.downsamplers.0.conv"
            k += 1
    for old, new in RESBLOCK.items():
        m[f"middle_block.0.{old}"] = f"unet.mid_block.resnets.0.{new}"
        m[f"middle_block.3.{old}"] = f"unet.mid_block.resnets.1.{new}"
    m["middle_block.0.temopral_conv"] = "unet.mid_block.temp_convs.0"
    m["middle_block.3.temopral_conv"] = "unet.mid_block.temp_convs.1"
    m["middle_block.1"] = "unet.mid_block.attentions.0"
    m["middle_block.2"] = "unet.mid_block.temp_attentions.0"
    temporal.add("middle_block.2")
    k = 0
    for i, kind in enumerate(config.up_block_types):
        attn = kind.startswith("CrossAttn")
        for j in range(config.layers_per_block + 1):
            layer(f"output_blocks.{k}", f"unet.up_blocks.{i}", j, attn)
            if i < levels - 1 and j == config.layers_per_block:
                m[f"output_blocks.{k}.{3 if attn else 1}.conv"] = f"unet.up_blocks.{i}.upsamplers.0.conv"
            k += 1
    for n_layer in range(config.adapter_layers):
        for pub_after, ours in ADAPTERS.values():
            for old, new in ADAPTER_LAYER.items():
                m[f"{pub_after}.layers.{n_layer}.{old}"] = f"{ours}.layers.{n_layer}.{new}"
    for pub_convs, (_, ours) in ADAPTERS.items():
        m[pub_convs] = f"{ours}.convs"
    return m, temporal


def map_name(name: str, modules: dict[str, str]) -> str | None:
    """Our name for a published tensor name: the longest published module path that prefixes it, renamed."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        ours = modules.get(".".join(parts[:cut]))
        if ours is not None:
            return ".".join([ours, *parts[cut:]])
    return None


def model_shapes(config: UniAnimateConfig) -> dict[str, torch.Size]:
    """Names and shapes of our model's state dict (built on the meta device, once per config)."""
    return UniAnimateModel.state_shapes(config)


def convert_state_dict(published: dict[str, torch.Tensor], config: UniAnimateConfig) -> dict[str, torch.Tensor]:
    """Rename (and where needed reshape) a published UniAnimate state dict to our model's names.

    Raises ConversionError listing published tensors that map nowhere or to a wrong shape, and model
    entries left uncovered (other than `NOT_IN_CHECKPOINT`). Load the result with `strict=False` and
    fill `text_context` with `set_text_context`.
    """
    if config.temporal != "transformer":
        raise ValueError("published weights exist only for temporal='transformer'")
    modules, temporal = module_map(config)
    shapes = model_shapes(config)
    out: dict[str, torch.Tensor] = {}
    unmapped, mismatched = [], []
    for name, tensor in published.items():
        ours = map_name(name, modules)
        if ours is None or ours not in shapes:
            unmapped.append(name)
            continue
        module, _, leaf = name.rpartition(".")
        if module.rpartition(".")[2] in ("proj_in", "proj_out") and module.rpartition(".")[0] in temporal \
                and leaf == "weight" and tensor.ndim == 3:
            tensor = tensor.squeeze(-1)
        if tensor.shape != shapes[ours]:
            mismatched.append(f"{name} {tuple(tensor.shape)} -> {ours} {tuple(shapes[ours])}")
            continue
        out[ours] = tensor
    missing = sorted(set(shapes) - set(out) - set(NOT_IN_CHECKPOINT))
    if unmapped or mismatched or missing:
        raise ConversionError(f"unmapped published keys: {unmapped}; shape mismatches: {mismatched}; "
                              f"model keys not covered: {missing}")
    return out


def load_published_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read the published .pth as the release's entrance does: unwrap a 'state_dict' entry, then every entry
    must be a tensor (their load is strict; a non-tensor entry raises ConversionError)."""
    state = load_release_pickle(path)
    others = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if others:
        raise ConversionError(f"{path}: entries that are not tensors, which the release's strict load refuses: "
                              f"{others[:10]}")
    return state


def load_published_model(path: str | Path, config: UniAnimateConfig | None = None) -> UniAnimateModel:
    """A paper-config model with the published weights; `text_context` still needs `set_text_context`."""
    config = config or UniAnimateConfig.named("paper")
    model = UniAnimateModel(config)
    result = model.load_state_dict(convert_state_dict(load_published_checkpoint(path), config), strict=False)
    if sorted(result.missing_keys) != sorted(NOT_IN_CHECKPOINT) or result.unexpected_keys:
        raise ConversionError(f"load mismatch: {result}")
    return model


def read_published_keys(path: str | Path = PUBLISHED_KEYS) -> dict[str, tuple[int, ...]]:
    """The published tensor names and shapes from published_keys.tsv."""
    return {name: shape for (name,), shape in read_key_table(path)}


def check_published(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise ValueError unless `tensors` map onto the paper-config model with every name and shape right (the
    registry's first-use check of unianimate-16f-32f; `convert_state_dict` does the mapping)."""
    try:
        convert_state_dict(tensors, UniAnimateConfig.named("paper"))
    except ConversionError as exc:
        raise ValueError(f"{source}: not the published UniAnimate checkpoint ({str(exc)[:300]})") from None


def convert_published_file(source: str | Path, destination: str | Path,
                           config: UniAnimateConfig | None = None) -> Path:
    """`toolkit weights convert unianimate-16f-32f`: the published .pth -> our safetensors folder, once.

    Writes ``config.json`` and ``model.safetensors`` (our names, every published tensor) into
    `destination`, read back by :func:`load_converted`. The pickle is read with
    ``weights_only=True``; nothing else in it is executed or kept. `text_context` is not in the
    published file (UniAnimate computes it from OpenCLIP at start-up), so it is not written either.
    """
    config = config or UniAnimateConfig.named("paper")
    state = convert_state_dict(load_published_checkpoint(source), config)
    return write_converted(destination, state, config.to_dict(),
                           {"source": Path(source).name, "missing": ",".join(NOT_IN_CHECKPOINT)})


def load_converted(directory: str | Path, text_context: torch.Tensor | None = None) -> UniAnimateModel:
    """The model `convert_published_file` wrote, with `text_context` (1, text_tokens, context width) when given
    (else zeros: fill it with `set_text_context`). Built on the meta device and loaded by assignment, so the
    weights are held once."""
    import json

    from safetensors.torch import load_file

    directory = Path(directory)
    config = UniAnimateConfig.from_dict(json.loads((directory / "config.json").read_text()))
    state = load_file(directory / "model.safetensors")
    unexpected = sorted(set(state) - set(model_shapes(config)))
    missing = sorted(set(model_shapes(config)) - set(state) - set(NOT_IN_CHECKPOINT))
    if unexpected or missing:
        raise ConversionError(f"{directory}: load mismatch: unexpected {unexpected[:10]}, missing {missing[:10]}")
    shape = model_shapes(config)["text_context"]
    state["text_context"] = torch.zeros(shape) if text_context is None else text_context.reshape(shape).float()
    return UniAnimateModel.assigned(config, state)


PUBLISHED_ARTIFACT = "unianimate-16f-32f"
OPENCLIP_ARTIFACT = "openclip-vit-h-14-laion2b"


def converted_published_dir() -> Path:
    """Where `toolkit weights convert unianimate-16f-32f` wrote the release; a missing release raises the
    registry's WeightsMissing (with the fetch command), a release not converted yet FileNotFoundError."""
    from toolkit import weights

    converted = weights.converted_dir(PUBLISHED_ARTIFACT)
    if not (converted / "model.safetensors").is_file():
        weights.path(PUBLISHED_ARTIFACT, verify=False)
        raise FileNotFoundError(f"{converted}: {PUBLISHED_ARTIFACT} is not converted yet; run `toolkit weights "
                                f"convert {PUBLISHED_ARTIFACT}` once")
    return converted


def published_sha256(codec_weights: str) -> str:
    """Provenance of a run of the release: each registry file's name and sha256 (hashes are cached)."""
    return registry_sha256((PUBLISHED_ARTIFACT, OPENCLIP_ARTIFACT, codec_weights))
