"""Evaluation protocols: named, versioned profiles kept as cards in `eval/protocols/NAME.toml`."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from typing import Any

from toolkit.paths import protocols_dir

# Which way is better, for every metric any profile reports (region variants follow their base metric).
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "psnr_legacy": True, "ssim": True, "lpips": False,
                    "fid": False, "fid_vid": False, "fvd": False}
FRAME_METRICS = ("l1", "psnr", "psnr_legacy", "ssim", "lpips")
DISTRIBUTION_METRICS = ("fid", "fid_vid", "fvd")


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER[metric.removesuffix("_fg").removesuffix("_bg")]


@dataclass(frozen=True)
class Protocol:
    name: str
    version: str
    title: str
    frames: str                      # "all" or "skip-reference"
    metrics: tuple[str, ...]
    definitions: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    @property
    def uses_regions(self) -> bool:
        return self.name == "standard"

    def scored_frames(self, n_frames: int) -> slice:
        return slice(1, n_frames) if self.frames == "skip-reference" else slice(0, n_frames)


def available_protocols() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.toml"))


def load_protocol(name: str) -> Protocol:
    path = protocols_dir() / f"{name}.toml"
    if not path.exists():
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(available_protocols())}")
    data = path.read_bytes()
    raw = tomllib.loads(data.decode())
    if raw["frames"] not in ("all", "skip-reference"):
        raise ValueError(f"{path}: frames must be 'all' or 'skip-reference'")
    unknown = set(raw["metrics"]) - set(HIGHER_IS_BETTER)
    if unknown:
        raise ValueError(f"{path}: unknown metrics {sorted(unknown)}")
    return Protocol(name=raw["name"], version=str(raw["version"]), title=raw.get("title", name),
                    frames=raw["frames"], metrics=tuple(raw["metrics"]), definitions=raw.get("definitions", {}),
                    raw=raw, sha256=hashlib.sha256(data).hexdigest())
