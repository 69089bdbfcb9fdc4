"""Evaluation protocols: named, versioned profiles kept as cards in `eval/protocols/NAME.toml`.

A card may name a ``base`` card: every key it does not set (frames, metrics, definitions one by one) is the
base's, so a variant states only what differs. The metric code knows two computations, ``disco`` and
``standard`` (:data:`METRIC_PROFILES`); a card's ``base`` chain must end in one of them, which is the
computation its pixel metrics, LPIPS and FID use (:attr:`Protocol.base`). Its clip keys, ``fid_vid_clips`` and
``fvd_clips``, say which clips of a video FID-VID and FVD score.
"""

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
# The computations the metric code implements; every card is one of them or derives from one (`base`).
METRIC_PROFILES = ("disco", "standard")
# Keys a derived card takes from its own file only (the rest come from its base when it does not set them).
_OWN_KEYS = ("name", "version", "title", "base", "changes")


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER[metric.removesuffix("_fg").removesuffix("_bg")]


@dataclass(frozen=True)
class Protocol:
    name: str
    version: str
    title: str
    frames: str                      # "all" or "skip-reference"
    metrics: tuple[str, ...]
    base: str = ""                   # the metric computation (one of METRIC_PROFILES); "" = the name
    fid_vid_clips: str = "segments"  # toolkit.metrics.features.FID_VID_CLIPS
    fvd_clips: str = ""              # toolkit.metrics.features.FVD_CLIPS[base]; "" = the computation's default
    definitions: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)

    @property
    def uses_regions(self) -> bool:
        return self.base == "standard"

    def scored_frames(self, n_frames: int) -> slice:
        return slice(1, n_frames) if self.frames == "skip-reference" else slice(0, n_frames)


def available_protocols() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.toml"))


def _read_card(name: str, chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], bytes]:
    """A card's keys with its base's filled in, and the bytes of every file read (its own first)."""
    path = protocols_dir() / f"{name}.toml"
    if name not in available_protocols():  # also keeps a name like '../x' from naming a file elsewhere
        known = ", ".join(available_protocols())
        raise ValueError(f"unknown profile {name!r}" + (f" (base of {chain[-1]})" if chain else "") +
                         f"; available: {known}")
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a readable TOML card ({exc})") from exc
    base = raw.get("base")
    if base is None:
        return raw, data
    if base == name or base in chain:
        raise ValueError(f"{path}: base {base!r} leads back to itself")
    inherited, base_data = _read_card(base, chain + (name,))
    merged = {k: v for k, v in inherited.items() if k not in _OWN_KEYS}
    merged.update(raw)
    merged["definitions"] = {**inherited.get("definitions", {}), **raw.get("definitions", {})}
    merged["base"] = inherited.get("base", base)
    return merged, data + base_data


def load_protocol(name: str) -> Protocol:
    """The card ``eval/protocols/NAME.toml`` (with its base's keys where it sets none), checked."""
    raw, data = _read_card(name)
    path = protocols_dir() / f"{name}.toml"
    for key in ("name", "version", "frames", "metrics"):
        if key not in raw:
            raise ValueError(f"{path}: missing key {key!r}")
    if raw["frames"] not in ("all", "skip-reference"):
        raise ValueError(f"{path}: frames must be 'all' or 'skip-reference'")
    unknown = set(raw["metrics"]) - set(HIGHER_IS_BETTER)
    if unknown:
        raise ValueError(f"{path}: unknown metrics {sorted(unknown)}")
    base = raw.get("base", raw["name"])
    if base not in METRIC_PROFILES:
        raise ValueError(f"{path}: base must lead to one of {', '.join(METRIC_PROFILES)} (the metric "
                         f"computations), got {base!r}")
    return Protocol(name=raw["name"], version=str(raw["version"]), title=raw.get("title", name),
                    frames=raw["frames"], metrics=tuple(raw["metrics"]), base=base,
                    fid_vid_clips=raw.get("fid_vid_clips", "segments"), fvd_clips=raw.get("fvd_clips", ""),
                    definitions=raw.get("definitions", {}), raw=raw, sha256=hashlib.sha256(data).hexdigest())
