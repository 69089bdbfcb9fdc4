"""The FID Inception v3 (pytorch-fid's port of TF inception-2015-12-05), returning 2048-d pool features.

Built from torchvision's Inception3 with the four block types pytorch-fid patches to match the
TensorFlow graph (its ``FIDInceptionA/C/E_1/E_2``), so the state-dict keys are those of
``pt_inception-2015-12-05-6726825d.pth``. Weights come from the registry
(artifact ``fid-inception-pytorch``), never from pytorch-fid's downloader.
"""

from __future__ import annotations

import torch
from torchvision.models.inception import Inception3

from toolkit import weights
from toolkit.weights import Artifact, TORCH_LOAD
from toolkit.metrics.networks.loading import load_checkpoint, load_strict, unreadable_as

ARTIFACT = "fid-inception-pytorch"

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="fid-inception-pytorch",
        filename="metrics/pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        size=95628359,
        license="Apache-2.0 (pytorch-fid port of the TF Inception graph)",
        used_by=("FID (disco)", "FID (disco-tm)", "FID (standard)"),
        description="pytorch-fid's FID Inception v3 (TF inception-2015-12-05 port). The same bytes as "
        "torch-fidelity's weights-inception-2015-12-05-6726825d.pth (same size and sha256 prefix).",
        loader=TORCH_LOAD + ": flat state dict of the patched torchvision Inception3 (1008 classes)",
        sha256_prefix="6726825d",
    ),
)
INPUT_SIZE = 299
FEATURE_DIM = 2048


class FIDInceptionV3(Inception3):
    """Inception v3 with the TF-FID block variants; ``forward`` maps (B, 3, 299, 299) in [-1, 1] to (B, 2048)."""

    def __init__(self) -> None:
        # The optional 'metrics' extra; imported here so the toolkit imports without it.
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

        super().__init__(num_classes=1008, aux_logits=False, init_weights=False)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FIDInceptionV3 expects (B, 3, H, W) images in [-1, 1], got {tuple(x.shape)}")
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = self.maxpool1(x)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = self.maxpool2(x)
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = self.Mixed_5d(x)
        x = self.Mixed_6a(x)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)
        x = self.Mixed_7a(x)
        x = self.Mixed_7b(x)
        x = self.Mixed_7c(x)
        return torch.flatten(self.avgpool(x), 1)


def load_fid_inception(device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID Inception with the registry's weights, in eval mode (raises weights.WeightsMissing if absent)."""
    file = weights.path(ARTIFACT)
    model = FIDInceptionV3()
    with unreadable_as(ARTIFACT):
        load_strict(model, load_checkpoint(file), file)
    return model.eval().requires_grad_(False).to(device)
