"""LPIPS networks from the ``lpips`` package, with their ImageNet backbones loaded from the registry.

The package builds its backbone through torchvision with ``pretrained=True``, which downloads. We build
it with ``pnet_rand=True`` (random backbone, no download) and ``pretrained=False`` (no implicit
heads), then load two files ourselves with ``torch.load(weights_only=True)``:

* the linear heads that ship inside the package (``lpips/weights/v0.1/{alex,vgg}.pth``);
* the torchvision backbone file from the registry, its ``features.<i>.*`` keys mapped onto the
  package's slices (``net.slice<k>.<i>.*``; the slices keep torchvision's layer indices as names).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from toolkit import weights
from toolkit.weights import Artifact, TORCH_LOAD
from toolkit.metrics.networks.loading import load_checkpoint, unreadable_as

BACKBONES = {"vgg": "lpips-vgg16-backbone", "alex": "lpips-alexnet-backbone"}

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="lpips-vgg16-backbone",
        filename="metrics/vgg16-397923af.pth",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        size=553433881,
        license="BSD-3-Clause (torchvision); trained on ImageNet",
        used_by=("LPIPS (disco)", "LPIPS (disco-tm)"),
        description="torchvision VGG16 ImageNet weights; LPIPS-VGG uses its 'features' convolutions "
        "(the LPIPS linear heads ship inside the lpips package).",
        loader=TORCH_LOAD + ": torchvision state dict",
        sha256_prefix="397923af",
    ),
    Artifact(
        name="lpips-alexnet-backbone",
        filename="metrics/alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        size=244408911,
        license="BSD-3-Clause (torchvision); trained on ImageNet",
        used_by=("LPIPS (standard)",),
        description="torchvision AlexNet ImageNet weights; LPIPS-Alex uses its 'features' convolutions.",
        loader=TORCH_LOAD + ": torchvision state dict",
        sha256_prefix="7be5be79",
    ),
)


def head_file(net: str) -> Path:
    """The package's v0.1 linear-head file for ``net``."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def backbone_state_dict(model: nn.Module, torchvision_state: dict[str, torch.Tensor],
                        source: str) -> dict[str, torch.Tensor]:
    """Map torchvision ``features.<i>.<param>`` keys to the lpips model's ``net.slice<k>.<i>.<param>`` keys.

    Every backbone parameter of the lpips model must be found; ``classifier.*`` keys are ignored.
    """
    mapped: dict[str, torch.Tensor] = {}
    for key in model.state_dict():
        if not key.startswith("net.slice"):
            continue
        _, _slice, index, param = key.split(".")
        src = f"features.{index}.{param}"
        if src not in torchvision_state:
            raise ValueError(f"{source}: has no {src!r}, needed for the LPIPS backbone "
                             f"(is it a torchvision {'VGG16' if 'vgg' in source else 'AlexNet'} file?)")
        mapped[key] = torchvision_state[src]
    return mapped


def build_lpips(net: str, backbone: dict[str, torch.Tensor], source: str) -> nn.Module:
    """An ``lpips.LPIPS`` model for ``net`` ('vgg' or 'alex') with the package heads and the given backbone."""
    import lpips

    if net not in BACKBONES:
        raise ValueError(f"unknown LPIPS network {net!r}; use one of {sorted(BACKBONES)}")
    with warnings.catch_warnings():  # torchvision's notice about the package's 'pretrained=' argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    heads = load_checkpoint(head_file(net))
    if not isinstance(heads, dict):
        raise ValueError(f"{head_file(net)}: expected the lpips package's linear-head state dict")
    state = backbone_state_dict(model, backbone, source)
    state.update(heads)
    own = model.state_dict()
    for key in own:
        if key.startswith("scaling_layer."):  # fixed ImageNet shift/scale constants, not learned
            state[key] = own[key]
        elif key.startswith("lins."):  # the package registers each head twice: lin<i> and lins.<i>
            _, index, rest = key.split(".", 2)
            if f"lin{index}.{rest}" in state:
                state[key] = state[f"lin{index}.{rest}"]
    missing = [k for k in model.state_dict() if k not in state]
    unexpected = [k for k in state if k not in model.state_dict()]
    if missing or unexpected:
        raise ValueError(f"{source} / {head_file(net)}: LPIPS-{net} weights incomplete "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def load_lpips(net: str, device: str | torch.device = "cpu") -> nn.Module:
    """LPIPS-``net`` with the registry backbone (raises weights.WeightsMissing if the backbone is absent)."""
    if net not in BACKBONES:
        raise ValueError(f"unknown LPIPS network {net!r}; use one of {sorted(BACKBONES)}")
    file = weights.path(BACKBONES[net])
    with unreadable_as(BACKBONES[net]):
        backbone = load_checkpoint(file)
        if not isinstance(backbone, dict):
            raise ValueError(f"{file}: expected a torchvision state dict, got {type(backbone).__name__}")
        return build_lpips(net, backbone, str(file)).to(device)
