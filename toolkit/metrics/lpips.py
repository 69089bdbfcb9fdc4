"""LPIPS (Zhang et al. 2018) per frame, under the two evaluation profiles, on the ``lpips`` package's networks.

disco:    LPIPS-VGG, v0.1 heads; frames converted with ``ToTensor`` semantics to [0, 1] and fed as they
          are (``normalize=False``), exactly as DisCo's ``compute_lpips`` does -- the network therefore
          sees inputs it expects in [-1, 1] squeezed into [0, 1]; pred is resized to the target size
          (cv2 bilinear) if they differ, like the other disco metrics. Whole frames only.
standard: LPIPS-AlexNet, v0.1 heads, inputs scaled to [-1, 1] (the package's and torchmetrics' default).
          With a mask, the value is the package's spatial LPIPS map (each layer's distance map upsampled
          bilinearly to the frame) averaged over the masked pixels; with an all-True mask this is close
          to, not bit-identical with, the unmasked value.

``lpips_per_frame`` is the functional twin the ``LPIPS`` class (a :class:`toolkit.metrics.base.Metric`) calls;
``lpips_score`` runs it all in one call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from toolkit import weights
from toolkit.metrics.base import Metric, Video
from toolkit.metrics.functional.frames import Frames, check_frames, check_mask
from toolkit.metrics.networks.lpips_net import BACKBONES, load_lpips

PROFILES: dict[str, dict[str, str]] = {
    "disco": {
        "net": "vgg",
        "protocol": "lpips/disco/v1: lpips 0.1.4 LPIPS-VGG v0.1 heads, torchvision vgg16-397923af backbone; "
        "inputs in [0,1] not rescaled (normalize=False, as DisCo); pred resized to target size if needed; "
        "mean over frames.",
    },
    "standard": {
        "net": "alex",
        "protocol": "lpips/standard/v1: lpips 0.1.4 LPIPS-Alex v0.1 heads, torchvision alexnet-owt-7be5be79 "
        "backbone; inputs in [-1,1]; optional region mask over the spatial map; mean over frames.",
    },
}


@dataclass
class LPIPSResult:
    """Mean LPIPS over the counted frames, the per-frame values, and provenance."""

    value: float
    per_frame: np.ndarray
    profile: str
    net: str
    weights: str
    weights_sha256: str
    protocol: str
    masked: bool

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["per_frame"] = [None if np.isnan(v) else float(v) for v in self.per_frame]
        return out


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown LPIPS profile {profile!r}: use one of {sorted(PROFILES)}")
    return profile


def _to_input(frames: np.ndarray, profile: str, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    return x if profile == "disco" else x * 2.0 - 1.0


def lpips_per_frame(model: nn.Module, pred: Frames, target: Frames, profile: str = "standard",
                    mask: Frames | None = None, batch_size: int = 16) -> np.ndarray:
    """(N,) float64 LPIPS of each (pred, target) frame pair; NaN where the mask region is empty.

    ``model`` is the profile's network (``load_lpips(PROFILES[profile]['net'])``); ``mask`` is a
    boolean (H, W) or (N, H, W) region, standard profile only. Frames are numpy or torch in either layout,
    uint8 or float in [0, 1], quantised to uint8 first like the pixel metrics' (``frames.as_frames``).
    """
    _check_profile(profile)
    pred, target = check_frames(pred, target, resize=profile == "disco")
    if mask is not None and profile == "disco":
        raise ValueError("the disco LPIPS profile scores whole frames (DisCo has no mask); use profile='standard'")
    masks = check_mask(mask, *target.shape[:3])
    device = next(model.parameters()).device
    values = np.empty(len(pred), dtype=np.float64)
    spatial = model.spatial
    try:
        model.spatial = masks is not None
        for start in range(0, len(pred), batch_size):
            stop = start + batch_size
            with torch.inference_mode():
                out = model(_to_input(pred[start:stop], profile, device),
                            _to_input(target[start:stop], profile, device), normalize=False)
            if masks is None:
                values[start:stop] = out.reshape(-1).double().cpu().numpy()
                continue
            region = torch.from_numpy(np.ascontiguousarray(masks[start:stop])).to(device)[:, None]
            area = region.sum(dim=(1, 2, 3)).double()
            total = (out.double() * region).sum(dim=(1, 2, 3))
            values[start:stop] = torch.where(area > 0, total / area.clamp(min=1), torch.nan).cpu().numpy()
    finally:
        model.spatial = spatial
    return values


class LPIPS(Metric):
    """Mean LPIPS over frames: ``update(pred, target, mask=None)`` / ``compute()`` / ``reset()``; the state is the
    per-frame values."""

    name = "lpips"
    states = {"values": [], "masked": False}
    needs_weights = True

    def __init__(self, profile: str = "disco", device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        self.profile = _check_profile(profile)
        self.net = PROFILES[profile]["net"]
        self.artifact = BACKBONES[self.net]
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.weights_sha256 = weights.file_sha256(self.artifact)
        self.model = load_lpips(self.net, self.device)
        self.reset()

    def update(self, pred: Frames, target: Frames, mask: Frames | None = None) -> np.ndarray:
        """Score a batch of frame pairs (as ``lpips_per_frame`` takes them); return and keep the per-frame values."""
        values = lpips_per_frame(self.model, pred, target, self.profile, mask, self.batch_size)
        self.values.append(values)
        self.masked = self.masked or mask is not None
        return values

    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Whole frames (accumulated), and with a region also ``lpips_fg`` / ``lpips_bg`` (returned only)."""
        out = {self.name: self.update(video.pred, video.target)}
        if video.region is not None:
            for part, region in (("fg", video.region), ("bg", ~video.region)):
                out[f"{self.name}_{part}"] = lpips_per_frame(self.model, video.pred, video.target, self.profile,
                                                             mask=region)
        return out

    def compute(self) -> LPIPSResult:
        """Mean over frames, skipping frames whose masked region was empty (NaN if none is left)."""
        if not self.values:
            raise RuntimeError("LPIPS.compute() called before any update()")
        per_frame = np.concatenate(self.values)
        kept = per_frame[~np.isnan(per_frame)]
        return LPIPSResult(
            value=float(kept.mean()) if kept.size else float("nan"),
            per_frame=per_frame,
            profile=self.profile,
            net=self.net,
            weights=self.artifact,
            weights_sha256=self.weights_sha256,
            protocol=PROFILES[self.profile]["protocol"],
            masked=self.masked,
        )


def lpips_score(pred: Frames, target: Frames, profile: str = "disco", mask: Frames | None = None,
                device: str | torch.device = "cpu", batch_size: int = 16) -> LPIPSResult:
    """LPIPS of frame pairs (as ``lpips_per_frame`` takes them) under a profile, network from the registry."""
    metric = LPIPS(profile, device, batch_size)
    metric.update(pred, target, mask)
    return metric.compute()
