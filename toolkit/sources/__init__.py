"""Dataset adapters: each finds the videos of one dataset layout on disk (see base.SourceVideo)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from toolkit.paths import safe_video_id
from toolkit.plugins import Registry
from toolkit.sources.base import SourceVideo
from toolkit.sources.card import DatasetCard, load_card

# adapter name -> its discover(root, card) function, imported when a dataset uses it
ADAPTERS = Registry("source adapter", {
    "tiktok": "toolkit.sources.tiktok:discover",
    "ted": "toolkit.sources.ted:discover",
    "fashion": "toolkit.sources.fashion:discover",
    "folder": "toolkit.sources.folder:discover",
})


def discover(card: DatasetCard, root: str | Path) -> list[SourceVideo]:
    """Find the videos of a dataset under root with the card's adapter."""
    if card.adapter not in ADAPTERS:
        raise ValueError(f"dataset card {card.name!r} names unknown adapter {card.adapter!r}; "
                         f"known: {', '.join(ADAPTERS)}")
    videos = []
    for sv in ADAPTERS.get(card.adapter)(Path(root), card):  # an id that cannot be a file name is shortened with a hash
        safe = safe_video_id(sv.video_id)
        if safe != sv.video_id:
            print(f"{sv.path}: video id shortened to {safe} (the id is {len(sv.video_id.encode())} bytes or not a "
                  f"file name)", file=sys.stderr)
            sv = dataclasses.replace(sv, video_id=safe)
        videos.append(sv)
    return videos


__all__ = ["ADAPTERS", "DatasetCard", "SourceVideo", "discover", "load_card"]
