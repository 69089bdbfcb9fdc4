"""Stand-in weights for tests: random networks of the right architecture, saved in the released files' on-disk
formats, imported into a temporary TOOLKIT_HOME through the real registry.

``install`` re-pins the artifact to the stand-in's sha256 and size (the table's real hash would rightly
reject it), so everything after it -- import, path() verification, loading -- runs the production code.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Callable

import pytest
import torch
import torchvision
from torch import nn

from toolkit import weights


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point the registry at an empty cache under ``home``."""
    monkeypatch.setenv("TOOLKIT_HOME", str(home))
    return home


def pin(monkeypatch: pytest.MonkeyPatch, name: str, file: Path) -> None:
    """Make the registry expect exactly ``file`` for artifact ``name``."""
    artifact = dataclasses.replace(weights.ARTIFACTS[name], sha256=sha256(file), size=file.stat().st_size,
                                   sha256_prefix=None)
    monkeypatch.setitem(weights.ARTIFACTS, name, artifact)


def install(monkeypatch: pytest.MonkeyPatch, name: str, obj: object, workdir: Path, legacy: bool = False) -> Path:
    """Save ``obj`` with torch.save, pin ``name`` to it and import it into the cache; returns the cached path.

    ``legacy`` writes PyTorch's pre-1.6 (non-zip) format, the format of checkpoints from 2017-2019.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / Path(weights.ARTIFACTS[name].filename).name
    torch.save(obj, src, _use_new_zipfile_serialization=not legacy)
    pin(monkeypatch, name, src)
    return weights.import_file(src, name)


def _well_scaled(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """A new module with random He-initialised weights and random BatchNorm statistics (activations stay O(1)).

    The module is built on the meta device and filled here, skipping the default initialisation
    (slow for the large classifier layers), so every parameter is set below.
    """
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.01)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1.0 + 0.1 * torch.rand(m.running_var.shape, generator=gen))
                m.num_batches_tracked.zero_()
    for name, tensor in module.state_dict().items():
        if not torch.isfinite(tensor.float()).all():
            raise AssertionError(f"stand-in left {name} uninitialised")
    return module


def vgg16_backbone(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision VGG16 state dict restricted to ``features.*`` (the part LPIPS uses)."""
    features = _well_scaled(lambda: torchvision.models.vgg16(weights=None).features, seed)
    return {f"features.{k}": v.clone() for k, v in features.state_dict().items()}


def alexnet_backbone(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision AlexNet state dict restricted to ``features.*`` (the part LPIPS uses)."""
    features = _well_scaled(lambda: torchvision.models.alexnet(weights=None).features, seed)
    return {f"features.{k}": v.clone() for k, v in features.state_dict().items()}


def fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the layout of pt_inception-2015-12-05-6726825d.pth."""
    from toolkit.metrics.networks.inception_fid import FIDInceptionV3

    return {k: v.clone() for k, v in _well_scaled(FIDInceptionV3, seed).state_dict().items()}


def resnet3d_checkpoint(seed: int = 0) -> dict[str, object]:
    """A checkpoint in the layout of resnet-50-kinetics.pth: DataParallel keys, no BN counters, training state."""
    from toolkit.metrics.networks.resnet3d import ResNet3D50

    state = _well_scaled(ResNet3D50, seed).state_dict()
    return {
        "arch": "resnet-50",
        "epoch": 200,
        "state_dict": {f"module.{k}": v.clone() for k, v in state.items() if not k.endswith("num_batches_tracked")},
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                      "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]},
    }


def i3d_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the layout of i3d_pretrained_400.pt (piergiaj key names)."""
    from toolkit.metrics.networks.i3d import InceptionI3D

    return {k: v.clone() for k, v in _well_scaled(InceptionI3D, seed).state_dict().items()}


def clip_text_state(width: int, tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random one-layer CLIP text encoder in `CLIPTextModel` names."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    layer = "text_model.encoder.layers.0."
    state = {"text_model.embeddings.token_embedding.weight": r(49408, width),
             "text_model.embeddings.position_embedding.weight": r(tokens, width),
             "text_model.final_layer_norm.weight": 1 + r(width), "text_model.final_layer_norm.bias": r(width)}
    for name, (out, inp) in {"self_attn.q_proj": (width, width), "self_attn.k_proj": (width, width),
                             "self_attn.v_proj": (width, width), "self_attn.out_proj": (width, width),
                             "mlp.fc1": (4 * width, width), "mlp.fc2": (width, 4 * width)}.items():
        state[f"{layer}{name}.weight"], state[f"{layer}{name}.bias"] = r(out, inp), r(out)
    for norm in ("layer_norm1", "layer_norm2"):
        state[f"{layer}{norm}.weight"], state[f"{layer}{norm}.bias"] = 1 + r(width), r(width)
    return state


def openclip_state(text_width: int = 64, text_layers: int = 2, vision_width: int = 80, vision_layers: int = 1,
                   embed_dim: int = 16, patch: int = 14, image_size: int = 224,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """A random OpenCLIP ViT state dict in the names of open_clip_pytorch_model.bin (the full 49,408-token
    vocabulary, 77 text positions); widths must be multiples of the head widths the caller runs it with."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    state = {"token_embedding.weight": r(49408, text_width), "positional_embedding": r(77, text_width),
             "ln_final.weight": 1 + r(text_width), "ln_final.bias": r(text_width),
             "text_projection": r(text_width, embed_dim), "logit_scale": torch.tensor(4.6052),
             "visual.conv1.weight": r(vision_width, 3, patch, patch), "visual.class_embedding": r(vision_width),
             "visual.positional_embedding": r((image_size // patch) ** 2 + 1, vision_width),
             "visual.proj": r(vision_width, embed_dim)}
    for norm, width in (("visual.ln_pre", vision_width), ("visual.ln_post", vision_width)):
        state[f"{norm}.weight"], state[f"{norm}.bias"] = 1 + r(width), r(width)
    for prefix, width, layers in (("transformer", text_width, text_layers),
                                  ("visual.transformer", vision_width, vision_layers)):
        for i in range(layers):
            b = f"{prefix}.resblocks.{i}."
            for name, shape in (("attn.in_proj", (3 * width, width)), ("attn.out_proj", (width, width)),
                                ("mlp.c_fc", (4 * width, width)), ("mlp.c_proj", (width, 4 * width))):
                state[f"{b}{name}{'_' if name == 'attn.in_proj' else '.'}weight"] = r(*shape)
                state[f"{b}{name}{'_' if name == 'attn.in_proj' else '.'}bias"] = r(shape[0])
            for norm in ("ln_1", "ln_2"):
                state[f"{b}{norm}.weight"], state[f"{b}{norm}.bias"] = 1 + r(width), r(width)
    return state


OPENCLIP_FIXTURE = Path(__file__).resolve().parents[1] / "toolkit" / "models" / "openclip_reference.safetensors"


def openclip_fixture(path: Path = OPENCLIP_FIXTURE) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], object]:
    """The open_clip-made fixture (scripts/openclip_reference.py): its OpenCLIP state dict (the token table
    rebuilt as zeros but the stored rows, the only ones "" reads), the expected tensors and the test image."""
    from safetensors.torch import load_file

    fixture = load_file(str(path))
    state = {k: v for k, v in fixture.items() if not k.startswith(("fixture.", "expected."))}
    table = torch.zeros(49408, fixture["fixture.token_rows"].shape[1])
    table[fixture["fixture.token_ids"]] = fixture["fixture.token_rows"]
    state["token_embedding.weight"] = table
    expected = {k.removeprefix("expected."): v for k, v in fixture.items() if k.startswith("expected.")}
    return state, expected, fixture["fixture.image"].numpy()


def ldm_vae_state(vae_state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """A diffusers `AutoencoderKL` state dict in an LDM checkpoint's `first_stage_model.*` names (attention
    projections as 1x1 convs, as in SD checkpoints); checked to convert back exactly with diffusers' converter."""
    import re

    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    up = lambda m: f"decoder.up.{levels - 1 - int(m[1])}."  # noqa: E731  (LDM numbers decoder levels upwards)
    renames = [(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block."),
               (r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
               (r"decoder\.up_blocks\.(\d+)\.resnets\.", lambda m: up(m) + "block."),
               (r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: up(m) + "upsample."),
               (r"mid_block\.resnets\.(\d)\.", lambda m: f"mid.block_{int(m[1]) + 1}."),
               (r"mid_block\.attentions\.0\.", "mid.attn_1."), (r"conv_shortcut", "nin_shortcut"),
               (r"conv_norm_out", "norm_out"), (r"group_norm", "norm"), (r"to_([qkv])\.", r"\1."),
               (r"to_out\.0\.", "proj_out.")]
    out = {}
    for name, tensor in vae_state.items():
        for pattern, repl in renames:
            name = re.sub(pattern, repl, name)
        attention = ".attn_1." in name and name.endswith("weight") and tensor.ndim == 2
        out[f"first_stage_model.{name}"] = tensor[:, :, None, None] if attention else tensor
    back = convert_ldm_vae_checkpoint(out, {"down_block_types": [0] * levels, "up_block_types": [0] * levels})
    assert back.keys() == vae_state.keys() and all(torch.equal(back[k], v) for k, v in vae_state.items())
    return out


def save_lightning_checkpoint(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """torch.save a checkpoint laid out like SD 2.1's: the state dict plus a Lightning ModelCheckpoint callback
    (keyed by its class) and numpy scalars. The class lives in throwaway modules named as Lightning's, removed
    again after saving, so loading must do without them."""
    import sys
    import types

    import numpy as np

    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    modules = {n: types.ModuleType(n) for n in names}
    callback = type("ModelCheckpoint", (), {"__module__": names[-1]})
    modules[names[-1]].ModelCheckpoint = callback
    modules[names[0]].callbacks, modules[names[1]].model_checkpoint = modules[names[1]], modules[names[2]]
    sys.modules.update(modules)
    try:
        torch.save({"state_dict": state_dict, "global_step": np.int64(110000), "epoch": 7,
                    "callbacks": {callback: {"best_model_score": np.float64(0.25), "monitor": "val/loss"}}}, path)
    finally:
        for n in names:
            sys.modules.pop(n, None)
