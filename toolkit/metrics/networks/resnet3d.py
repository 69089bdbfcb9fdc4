"""3D ResNet-50 (Hara et al., "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?"),
shortcut type B, Kinetics-400: the FID-VID feature network of DisCo.

Attribute names follow kenshohara/3D-ResNets-PyTorch so the state-dict keys are those of
``resnet-50-kinetics.pth`` once its DataParallel prefix ``module.`` is removed. The network is
built for 16-frame 112x112 clips (the pool kernel depends on that size, as in the original), and
``features`` returns the 2048-d average-pooled activation (the classifier is not applied).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from toolkit import weights
from toolkit.weights import Artifact, TORCH_LOAD
from toolkit.metrics.networks.loading import check_fits, load_checkpoint, load_strict, unreadable_as

ARTIFACT = "fidvid-r3d50-kinetics"

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="fidvid-r3d50-kinetics",
        filename="metrics/resnet-50-kinetics.pth",
        url="https://drive.google.com/drive/folders/1zvl89AgFAApbH0At-gMuZSeQB_LpNP-M",
        sha256=None,
        size=None,
        license="MIT (kenshohara/3D-ResNets-PyTorch)",
        used_by=("FID-VID (disco)", "FID-VID (disco-tm)", "FID-VID (standard)"),
        description="3D ResNet-50, shortcut B, Kinetics-400 (Hara et al. 2018), DisCo's FID-VID backbone "
        "(eval_fvd/resnet-50-kinetics.pth). The URL is the authors' Google Drive folder of the old "
        "pretrained models: download resnet-50-kinetics.pth there, then 'toolkit weights import'.",
        loader=TORCH_LOAD + ": dict with 'state_dict' (keys prefixed 'module.'), 'arch', 'epoch', 'optimizer'",
        direct_download=False,
        check="toolkit.metrics.networks.resnet3d:check_state",
    ),
)
CLIP_LENGTH = 16
INPUT_SIZE = 112
FEATURE_DIM = 2048
# Per-channel RGB mean on the 0..255 scale that the Kinetics models were trained with (no std scaling).
PIXEL_MEAN = (114.7748, 107.7354, 99.4750)


class Bottleneck3D(nn.Module):
    """1x1x1 reduce -> 3x3x3 (strided) -> 1x1x1 expand (x4), with a residual connection."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNet3D50(nn.Module):
    """ResNet-50 with 3D convolutions; shortcut B (1x1x1 conv + BN where the shape changes)."""

    layers_per_stage = (3, 4, 6, 3)

    def __init__(self, num_classes: int = 400, clip_length: int = CLIP_LENGTH, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.clip_length = clip_length
        self.input_size = input_size
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=(3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=(3, 3, 3), stride=2, padding=1)
        in_planes = 64
        stages = []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), self.layers_per_stage)):
            stage, in_planes = self._make_stage(in_planes, planes, blocks, stride=1 if i == 0 else 2)
            stages.append(stage)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AvgPool3d(
            (math.ceil(clip_length / 16), math.ceil(input_size / 32), math.ceil(input_size / 32)), stride=1
        )
        self.fc = nn.Linear(512 * Bottleneck3D.expansion, num_classes)

    @staticmethod
    def _make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> tuple[nn.Sequential, int]:
        out_planes = planes * Bottleneck3D.expansion
        downsample = None
        if stride != 1 or in_planes != out_planes:
            downsample = nn.Sequential(
                nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_planes),
            )
        layers = [Bottleneck3D(in_planes, planes, stride, downsample)]
        layers += [Bottleneck3D(out_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers), out_planes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 16, 112, 112) mean-subtracted clips -> (B, 2048) pooled features."""
        expected = (3, self.clip_length, self.input_size, self.input_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"ResNet3D50 expects clips shaped (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits."""
        return self.fc(self.features(x))


def state_dict_from_checkpoint(checkpoint: object, source: str) -> dict[str, torch.Tensor]:
    """The model weights inside a 3D-ResNets-PyTorch checkpoint ({'state_dict': {'module.*': ...}, ...})."""
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{source}: expected a 3D-ResNets-PyTorch checkpoint, a dict with 'state_dict'")
    state = checkpoint["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_resnet3d50(device: str | torch.device = "cpu") -> ResNet3D50:
    """The Kinetics 3D ResNet-50 with the registry's weights, in eval mode (raises weights.WeightsMissing)."""
    file = weights.path(ARTIFACT)
    model = ResNet3D50()
    with unreadable_as(ARTIFACT):
        load_strict(model, state_dict_from_checkpoint(load_checkpoint(file), str(file)), file)
    return model.eval().requires_grad_(False).to(device)


def check_state(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise ValueError unless `tensors` (a 3D-ResNets-PyTorch 'state_dict', 'module.' prefixes allowed) are
    exactly ResNet3D50's names and shapes (the registry's first-use check of fidvid-r3d50-kinetics)."""
    with torch.device("meta"):
        model = ResNet3D50()
    check_fits(model, {k.removeprefix("module."): v for k, v in tensors.items()}, source)
