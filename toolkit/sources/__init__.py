"""Dataset adapters: each finds the videos of one dataset layout on disk (see base.SourceVideo)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from toolkit.paths import safe_video_id
from toolkit.plugins import Registry
from toolkit.sources.base import SourceVideo
from toolkit.sources.recipe import Recipe, load_recipe

# adapter name -> its discover(root, recipe) function, imported when a dataset uses it
ADAPTERS = Registry("source adapter", {
    "tiktok": "toolkit.sources.tiktok:discover",
    "ted": "toolkit.sources.ted:discover",
    "fashion": "toolkit.sources.fashion:discover",
    "folder": "toolkit.sources.folder:discover",
})


def discover(recipe: Recipe, root: str | Path) -> list[SourceVideo]:
    """Find the videos of a dataset under root with the recipe's adapter."""
    if recipe.adapter not in ADAPTERS:
        raise ValueError(f"recipe {recipe.name!r} names unknown adapter {recipe.adapter!r}; "
                         f"known: {', '.join(ADAPTERS)}")
    videos = []
    for sv in ADAPTERS.get(recipe.adapter)(Path(root), recipe):  # an id that cannot be a file name is shortened with a hash
        safe = safe_video_id(sv.video_id)
        if safe != sv.video_id:
            print(f"{sv.path}: video id shortened to {safe} (the id is {len(sv.video_id.encode())} bytes or not a "
                  f"file name)", file=sys.stderr)
            sv = dataclasses.replace(sv, video_id=safe)
        videos.append(sv)
    return videos


__all__ = ["ADAPTERS", "Recipe", "SourceVideo", "discover", "load_recipe"]
