"""Loading released checkpoints into our modules: safe unpickling and loud key checks."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn


def load_checkpoint(path: Path) -> object:
    """Read a pickled checkpoint with ``weights_only=True`` (tensors and plain containers only), after the static
    check of its imports (:mod:`toolkit.safe_pickle`); raises UnsafeCheckpoint (a ValueError) naming the file."""
    from toolkit import safe_pickle

    return safe_pickle.load(path)


@contextmanager
def unreadable_as(artifact: str) -> Iterator[None]:
    """Inside, a ValueError (a file that does not load or does not fit) becomes `weights.WeightsUnreadable` naming
    the artifact, which the harness records as the metric being unavailable, with the reason."""
    from toolkit import weights

    try:
        yield
    except weights.WeightsMismatch:
        raise
    except ValueError as exc:
        raise weights.WeightsUnreadable(str(exc), artifact=artifact) from None


def check_fits(module: nn.Module, state_dict: dict[str, torch.Tensor], source: Path | str) -> None:
    """Raise ValueError naming the offenders unless ``state_dict`` has exactly ``module``'s keys and shapes (the
    module may live on the meta device: nothing is loaded). BatchNorm ``num_batches_tracked`` may be absent."""
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


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], source: Path | str) -> None:
    """Load ``state_dict`` into ``module`` requiring exactly its keys and shapes (:func:`check_fits`)."""
    check_fits(module, state_dict, source)
    expected = module.state_dict()
    full = dict(state_dict)
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in full:
            full[k] = torch.zeros_like(v)
    module.load_state_dict(full, strict=True)
