"""Dataset adapters: each finds the videos of one dataset layout on disk (see base.SourceVideo)."""

from __future__ import annotations

import importlib
from pathlib import Path

from toolkit.sources.base import SourceVideo
from toolkit.sources.recipe import Recipe, load_recipe

# adapter name -> module under toolkit.sources with a discover(root, recipe) function
ADAPTERS = {"tiktok": "tiktok", "ted": "ted", "fashion": "fashion", "folder": "folder"}


def discover(recipe: Recipe, root: str | Path) -> list[SourceVideo]:
    """Find the videos of a dataset under root with the recipe's adapter."""
    if recipe.adapter not in ADAPTERS:
        raise ValueError(f"recipe {recipe.name!r} names unknown adapter {recipe.adapter!r}; known: {sorted(ADAPTERS)}")
    module = importlib.import_module(f"toolkit.sources.{ADAPTERS[recipe.adapter]}")
    return module.discover(Path(root), recipe)


__all__ = ["ADAPTERS", "Recipe", "SourceVideo", "discover", "load_recipe"]
