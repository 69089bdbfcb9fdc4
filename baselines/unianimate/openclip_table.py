"""The `[openclip]` config table: which OpenCLIP weights condition a UniAnimate model, checked and loaded.

Training (recipe.py) checks the table and embeds each clip's reference; inference (method.py) loads the same
towers for a run trained with it. Apart from both so that inference needs nothing of the training code.
"""

from __future__ import annotations

from typing import Any

import torch

from toolkit import weights
from toolkit.models.openclip import OpenCLIPConditioner


def check_openclip(config: dict[str, Any]) -> str | None:
    """The `[openclip]` table's weights artifact (None without the table); unknown keys or artifacts fail."""
    table = config.get("openclip")
    if table is None:
        return None
    unknown = sorted(set(table) - {"weights"})
    if unknown or not isinstance(table.get("weights"), str):
        raise ValueError(f"[openclip] takes one key, weights = \"ARTIFACT\" (e.g. \"openclip-vit-h-14-laion2b\"); "
                         f"got {dict(table)}")
    weights.get(table["weights"])
    return table["weights"]


def load_openclip(config: dict[str, Any], device: str | torch.device = "cpu") -> OpenCLIPConditioner | None:
    """OpenCLIP's towers for a config with an `[openclip]` table (through the weights registry), else None."""
    return openclip_towers(check_openclip(config), device)


def openclip_towers(name: str | None, device: str | torch.device = "cpu") -> OpenCLIPConditioner | None:
    """The towers of the checked `[openclip]` weights artifact `name` (through the weights registry); None for
    None."""
    return None if name is None else OpenCLIPConditioner.from_file(weights.path(name), device)
