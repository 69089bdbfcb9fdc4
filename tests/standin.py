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
