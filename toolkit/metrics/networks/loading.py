"""Loading released checkpoints into our modules: safe unpickling and loud key checks."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_checkpoint(path: Path) -> object:
    """Read a pickled checkpoint with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({exc})") from exc


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: Path | str) -> None:
    """Load ``state_dict`` into ``module`` requiring exactly its keys and shapes; name the offenders if not.

    BatchNorm ``num_batches_tracked`` counters may be absent (files saved before PyTorch 0.4 lack them).
    """
    if not isinstance(state_dict, dict):
        raise ValueError(f"{source}: expected a state dict, got {type(state_dict).__name__}")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''} ({len(missing)})")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''} "
                         f"({len(unexpected)})")
        if wrong_shape:
            parts.append(f"wrong shapes {wrong_shape[:5]}")
        raise ValueError(f"{source}: does not fit {type(module).__name__}: " + "; ".join(parts))
    full = dict(state_dict)
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in full:
            full[k] = torch.zeros_like(v)
    module.load_state_dict(full, strict=True)
