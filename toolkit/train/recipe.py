"""`Recipe`: what a method gives the training loop -- its config, model, dataset and loss.

The loop owns everything else (optimizer, EMA, precision, data order, checkpoints), so a
method's training code is only what is particular to it. A recipe is found by name through
the ``toolkit.recipes`` entry points, or as a ``pkg.module:Class`` spec (toolkit/plugins.py).
"""

from __future__ import annotations

import inspect
import tomllib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import torch


class Recipe(ABC):
    """The contract between a method and `toolkit.train.loop.train`.

    The model `build_model` returns must have ``save_pretrained(dir)`` (safetensors),
    a class method ``from_pretrained(dir)`` and a ``config`` attribute; if it has
    ``enable_gradient_checkpointing()`` the loop calls it when the config asks.
    Dataset items are dicts of tensors (strings and ints are collated to lists).
    A dataset with ``set_epoch(epoch)`` gets the epoch of every item it serves.
    """

    #: The name checkpoints record when the caller gives none (default: module:Class).
    name: str = ""

    def load_config(self, config: str) -> dict[str, Any]:
        """The config named "tiny" / "paper" (``configs/<name>.toml`` beside the recipe's module) or a .toml path.

        The dict has a ``[train]`` table (the loop fills missing keys with its defaults and
        rejects unknown ones) plus whatever the method needs, e.g. ``[model]`` and ``[data]``.
        """
        if config.endswith(".toml") or "/" in config or "\\" in config:
            path = Path(config)
        else:
            here = Path(inspect.getfile(type(self))).parent / "configs"
            path = here / f"{config}.toml"
            if not path.is_file():
                found = sorted(p.stem for p in here.glob("*.toml")) if here.is_dir() else []
                raise FileNotFoundError(f"{self.display_name()} has no config {config!r} in {here} "
                                        f"(available: {', '.join(found) or 'none'}; or give a path to a .toml)")
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc

    @abstractmethod
    def build_model(self, config: dict[str, Any]) -> torch.nn.Module:
        """The model to train, freshly initialised (or from pretrained weights the config names)."""

    @abstractmethod
    def build_dataset(self, shards: Path, config: dict[str, Any]) -> torch.utils.data.Dataset:
        """The training items read from a shard folder; random-access and deterministic per (index, epoch)."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        """The scalar loss of one batch (already on the model's device).

        Draw every random number of the step -- noise, timesteps, condition dropout -- from
        `generator` (on the batch's device), so a step is a pure function of (weights, batch,
        seed, step). Call ``model(...)`` rather than its submodules so that distributed data
        parallel sees the forward pass; `model` may be wrapped (use ``accelerate``'s
        ``unwrap_model`` to reach attributes).
        """

    def trainable_parameters(self, model: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
        """The parameters the optimizer updates and EMA averages (default: all with requires_grad)."""
        return [p for p in model.parameters() if p.requires_grad]

    def display_name(self) -> str:
        return self.name or f"{type(self).__module__}:{type(self).__qualname__}"
