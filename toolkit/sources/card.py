"""Dataset cards: `datasets/NAME.toml` says where a dataset comes from, its splits and expected counts."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.paths import datasets_dir


@dataclass(frozen=True)
class DatasetCard:
    name: str
    adapter: str
    title: str
    citation: str = ""
    homepage: str = ""
    license: str = ""
    fps: float | None = None                       # frame rate of frame folders (the release does not store it)
    default_split: str = "train"
    eval_splits: tuple[str, ...] = ("test",)
    split_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)   # explicit id lists per split
    expected: dict[str, int] = field(default_factory=dict)                # expected video counts per split
    download: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)                 # adapter-specific settings
    raw: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def split_of(self, video_id: str, fallback: str | None = None) -> str:
        """The split a video belongs to: an explicit id list wins, then the adapter's guess, then the default."""
        for split, ids in self.split_ids.items():
            if video_id in ids:
                return split
        return fallback or self.default_split

    def is_eval_split(self, split: str) -> bool:
        return split in self.eval_splits


def card_path(name: str) -> Path:
    return datasets_dir() / f"{name}.toml"


def available_cards() -> list[str]:
    return sorted(p.stem for p in datasets_dir().glob("*.toml"))


def load_card(name_or_path: str | Path) -> DatasetCard:
    """Load a dataset card by name (datasets/NAME.toml) or from a path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = card_path(str(name_or_path))
    if not path.exists():
        raise FileNotFoundError(f"no dataset card {path}; known datasets: {', '.join(available_cards())}")
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML ({exc})") from None
    splits = raw.get("splits", {})
    split_ids = {k: tuple(str(i) for i in v.get("ids", ())) for k, v in splits.items() if isinstance(v, dict)}
    missing = [k for k in ("name", "adapter", "title") if k not in raw]
    if missing:
        raise ValueError(f"{path}: the dataset card lacks {', '.join(missing)}")
    return DatasetCard(
        name=raw["name"], adapter=raw["adapter"], title=raw["title"], citation=raw.get("citation", ""),
        homepage=raw.get("homepage", ""), license=raw.get("license", ""), fps=raw.get("fps"),
        default_split=splits.get("default", "train"), eval_splits=tuple(splits.get("eval", ("test",))),
        split_ids={k: v for k, v in split_ids.items() if v},
        expected={k: int(v) for k, v in raw.get("expected", {}).items()},
        download=raw.get("download", {}), options=raw.get("options", {}), raw=raw,
        sha256=hashlib.sha256(data).hexdigest(),
    )
