"""Inception-v1 I3D (Carreira & Zisserman, "Quo Vadis, Action Recognition?"), 400 Kinetics classes: the FVD
network of VideoGPT, TATS and DisCo.

Module and attribute names follow the piergiaj/pytorch-i3d port (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias`` ...), so ``i3d_pretrained_400.pt`` loads
strictly. Convolutions and max-pools pad like TensorFlow's 'SAME' (computed from the input size,
zeros). ``forward`` returns the 400 logits averaged over the remaining time steps.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from toolkit import weights
from toolkit.weights import Artifact, TORCH_LOAD
from toolkit.metrics.networks.loading import check_fits, load_checkpoint, load_strict, unreadable_as

ARTIFACT = "fvd-i3d-400"

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="fvd-i3d-400",
        filename="metrics/i3d_pretrained_400.pt",
        url="https://huggingface.co/spaces/LanguageBind/Open-Sora-Plan-v1.0.0/resolve/"
        "810fa8c4bdb3a4c8eec9bd57375c29bde6fb46de/opensora/eval/fvd/videogpt/i3d_pretrained_400.pt",
        sha256=None,
        size=None,
        license="Apache-2.0 (piergiaj/pytorch-i3d port of DeepMind kinetics-i3d)",
        used_by=("FVD (disco)", "FVD (disco-tm)", "FVD (standard)"),
        description="InceptionI3d, 400 Kinetics classes, as used by VideoGPT, TATS and DisCo "
        "(eval_fvd/i3d_pretrained_400.pt). Also on OneDrive (TATS README) and Google Drive id "
        "1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT (VideoGPT).",
        loader=TORCH_LOAD + ": flat state dict with piergiaj key names (pickle imports: OrderedDict, "
        "_rebuild_tensor_v2, FloatStorage)",
        check="toolkit.metrics.networks.i3d:check_state",
    ),
    Artifact(
        name="fvd-i3d-styleganv",
        filename="metrics/i3d_torchscript.pt",
        url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
        sha256=None,
        size=None,
        license="Apache-2.0 (TF-Hub i3d-kinetics-400); TorchScript packaging by the StyleGAN-V authors",
        used_by=(),
        description="StyleGAN-V's FVD detector. Registered for provenance only: it is TorchScript, i.e. "
        "code, and the toolkit does not torch.jit.load untrusted code. Standard FVD uses fvd-i3d-400.",
        loader="TorchScript archive: not loaded by the toolkit",
        first_use="none",
    ),
)
INPUT_SIZE = 224
NUM_CLASSES = 400


def _same_padding(size: tuple[int, int, int], kernel: tuple[int, int, int],
                  stride: tuple[int, int, int]) -> tuple[int, ...]:
    """F.pad amounts (w_front, w_back, h_front, h_back, t_front, t_back) for TF 'SAME' padding."""
    pads: list[int] = []
    for s, k, st in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class MaxPool3dSame(nn.Module):
    """3D max-pool with TF 'SAME' zero padding (parameter-free)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d (no bias unless asked) with TF 'SAME' padding, then BatchNorm (eps 1e-3) and ReLU when enabled."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, activation: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.activation = activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, _same_padding(tuple(x.shape[2:]), self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionBlock3D(nn.Module):
    """Four branches: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | 3x3x3 max-pool -> 1x1x1, concatenated."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1_reduce)
        self.b1b = Unit3D(b1_reduce, b1, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, b2_reduce)
        self.b2b = Unit3D(b2_reduce, b2, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, b3)
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3D(nn.Module):
    """I3D on RGB clips (B, 3, T, 224, 224) in [-1, 1] -> (B, 400) logits averaged over time."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock3D(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = InceptionBlock3D(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionBlock3D(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = InceptionBlock3D(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = InceptionBlock3D(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = InceptionBlock3D(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = InceptionBlock3D(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock3D(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = InceptionBlock3D(832, (384, 192, 384, 48, 128, 128))
        self.avg_pool = nn.AvgPool3d(kernel_size=(1, 7, 7), stride=(1, 1, 1))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, activation=False, bias=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the average pool: (B, 3, T, 224, 224) -> (B, 1024, T/8, 7, 7)."""
        for stage in (self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, self.Conv3d_2b_1x1, self.Conv3d_2c_3x3,
                      self.MaxPool3d_3a_3x3, self.Mixed_3b, self.Mixed_3c, self.MaxPool3d_4a_3x3,
                      self.Mixed_4b, self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f,
                      self.MaxPool3d_5a_2x2, self.Mixed_5b, self.Mixed_5c):
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3 or tuple(x.shape[3:]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"InceptionI3D expects clips (B, 3, T, {INPUT_SIZE}, {INPUT_SIZE}) in [-1, 1], "
                             f"got {tuple(x.shape)}")
        logits = self.logits(self.avg_pool(self.trunk(x)))  # dropout of the original is the identity in eval
        return logits.squeeze(4).squeeze(3).mean(dim=2)


def load_i3d(device: str | torch.device = "cpu") -> InceptionI3D:
    """The Kinetics-400 I3D with the registry's weights, in eval mode (raises weights.WeightsMissing if absent)."""
    file = weights.path(ARTIFACT)
    model = InceptionI3D()
    with unreadable_as(ARTIFACT):
        load_strict(model, load_checkpoint(file), file)
    return model.eval().requires_grad_(False).to(device)


def check_state(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise ValueError unless `tensors` are exactly InceptionI3D's names and shapes (the registry's first-use
    check of fvd-i3d-400; built on the meta device, nothing loaded)."""
    with torch.device("meta"):
        model = InceptionI3D()
    check_fits(model, tensors, source)
