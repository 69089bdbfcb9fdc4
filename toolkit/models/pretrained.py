"""What every reference model shares: a frozen dataclass config read from TOML, and safetensors save/load.

A model is ``class MyModel(PretrainedModel)`` with ``config_class = MyConfig`` and an
``__init__(self, config)``; ``save_pretrained(dir)`` writes ``config.json`` and
``model.safetensors`` and ``MyModel.from_pretrained(dir)`` reads them back (no pickle).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

C = TypeVar("C", bound="ModelConfig")
M = TypeVar("M", bound="PretrainedModel")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Base of the models' configs: lists become tuples, unknown keys are an error, TOML `[model]` tables load."""

    #: Where `named("tiny")` looks: the method's configs/ folder (set by each subclass).
    config_dir: ClassVar[Path | None] = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build from a mapping; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        return cls(**values)

    @classmethod
    def from_toml(cls: type[C], path: str | Path) -> C:
        """Read the `[model]` table of a TOML file; other tables are ignored."""
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f)["model"])

    @classmethod
    def named(cls: type[C], name: str) -> C:
        """A bundled config: "tiny" or "paper"."""
        if cls.config_dir is None:
            raise ValueError(f"{cls.__name__} has no bundled configs")
        return cls.from_toml(cls.config_dir / f"{name}.toml")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class PretrainedModel(nn.Module):
    """An `nn.Module` built from one config object, saved as config.json + model.safetensors."""

    config_class: ClassVar[type[ModelConfig]]

    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json and model.safetensors."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path) -> M:
        """Load what `save_pretrained` wrote."""
        directory = Path(directory)
        config = cls.config_class.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        model = cls(config)
        model.load_state_dict(load_file(directory / WEIGHTS_FILE))
        return model

    @classmethod
    def state_shapes(cls, config: ModelConfig) -> dict[str, torch.Size]:
        """Names and shapes of the model's state dict for `config`, from a model built on the meta device (no
        memory for weights; kept per class and config, since building the paper-size models takes seconds)."""
        return _state_shapes(cls, config)

    @classmethod
    def assigned(cls: type[M], config: ModelConfig, state: dict[str, torch.Tensor]) -> M:
        """The model built on the meta device and given `state` by assignment (every entry, strictly), so large
        weights are held once; raises ValueError naming any parameter or buffer still left unloaded."""
        with torch.device("meta"):
            model = cls(config)
        model.load_state_dict(state, strict=True, assign=True)
        left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
        if left:
            raise ValueError(f"{cls.__name__}: not loaded: {left[:10]}")
        return model


@functools.lru_cache(maxsize=8)
def _state_shapes(cls: type[PretrainedModel], config: ModelConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = cls(config)
    return {k: v.shape for k, v in model.state_dict().items()}


T = TypeVar("T")


def from_table(cls: type[T], values: dict[str, Any], table: str) -> T:
    """A dataclass built from one config table (``[sampling]``, ``[objective]``...); unknown keys are an error."""
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown [{table}] keys {unknown}; known: {known}")
    return cls(**values)
