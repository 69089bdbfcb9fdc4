"""What converting an author's released checkpoint into one of our models takes, whatever the model.

Each method's ``convert.py`` holds its own name mapping; this module holds what they share: the error,
the published-keys table, reading a release's pickle weights-only, writing the converted folder
atomically, and the provenance string of the registry files a release run uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from toolkit import safe_pickle
from toolkit.io import atomic_write_text


class ConversionError(KeyError):
    """Published and model keys do not correspond."""


def read_key_table(path: str | Path) -> list[tuple[list[str], tuple[int, ...]]]:
    """Rows of a ``published_keys.tsv``: (the leading columns, the shape "AxBxC" of the last column; "" is a
    scalar), one per published tensor."""
    rows = []
    for line in Path(path).read_text().splitlines():
        *names, shape = line.split("\t")
        rows.append((names, tuple(int(s) for s in shape.split("x")) if shape else ()))
    return rows


def load_release_pickle(path: str | Path) -> dict[str, Any]:
    """A released pickle read weights-only (`toolkit.safe_pickle`) with a 'state_dict' entry unwrapped, as the
    releases' loaders unwrap it; anything but a dict is a ConversionError."""
    state = safe_pickle.load(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: not a state dict ({type(state).__name__})")
    return dict(state)


def write_converted(destination: str | Path, state: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                    metadata: Mapping[str, str]) -> Path:
    """Write a converted release as a model folder: ``model.safetensors`` (with `metadata`) and ``config.json``
    (the model config as a dict), each written whole or not at all."""
    from safetensors.torch import save_file

    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    weights = destination / "model.safetensors"
    partial = weights.with_name(weights.name + ".partial")
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, partial, metadata=dict(metadata))
        partial.replace(weights)
    finally:
        partial.unlink(missing_ok=True)
    atomic_write_text(destination / "config.json", json.dumps(dict(config), indent=2) + "\n")
    return destination


def registry_sha256(names: Iterable[str]) -> str:
    """Provenance of a release run: "name=sha256" of each registry file it reads, ";"-joined (hashes cached)."""
    from toolkit import weights

    return ";".join(f"{n}={weights.file_sha256(n)}" for n in names)
