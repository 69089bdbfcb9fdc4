"""What every reference model shares: a frozen dataclass config read from TOML, and safetensors save/load the
Hugging Face Hub way.

A model is ``class MyModel(PretrainedModel)`` with ``config_class = MyConfig`` and an
``__init__(self, config)``. ``save_pretrained(dir)`` writes ``config.json``, the weights and a model
card; ``MyModel.from_pretrained(dir_or_repo_id)`` reads them back from a folder or a Hub repo (no
pickle), and ``push_to_hub(repo_id)`` uploads them: huggingface_hub's ``ModelHubMixin``. Submodules
named in ``components`` that are diffusers models are saved as diffusers saves a pipeline's parts, each
in its own folder (``unet/config.json`` + ``unet/diffusion_pytorch_model.safetensors``), so diffusers
users can read them; the rest goes to ``model.safetensors``. Folders written before components
existed (everything in ``model.safetensors``) still load.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

import torch
from huggingface_hub import ModelHubMixin
from safetensors.torch import load_file, save_file
from torch import nn

from toolkit.io import sha256_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
COMPONENT_WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"  # diffusers' name for a model folder's weights

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
        """Build from a mapping (a `[model]` table); unknown keys and values of the wrong type are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        check_types(cls, values, "model")
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


class PretrainedModel(nn.Module, ModelHubMixin, library_name="animation-toolkit"):
    """An `nn.Module` built from one config object, saved as config.json + safetensors (see the module doc)."""

    config_class: ClassVar[type[ModelConfig]]
    #: Submodules (diffusers models) saved in folders of their own, named as the attributes.
    components: ClassVar[tuple[str, ...]] = ()

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write config.json, each component's folder and model.safetensors (what is left, if anything)."""
        save_directory = Path(save_directory)
        (save_directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        for name in self.components:
            folder = save_directory / name
            folder.mkdir(parents=True, exist_ok=True)
            getattr(self, name).save_config(folder)
            prefix = name + "."
            save_file({k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)},
                      folder / COMPONENT_WEIGHTS_FILE)
        if state or not self.components:
            save_file(state, save_directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls: type[M], pretrained_model_name_or_path: str | Path, **kwargs: Any) -> M:
        """Load what `save_pretrained` wrote, from a folder or a Hub repo id ("user/name"; `revision`, `token`,
        `cache_dir`, `local_files_only` as huggingface_hub takes them; HF_ENDPOINT and HF_TOKEN are honoured).
        A string that names no folder here and is no repo id is a FileNotFoundError."""
        where = str(pretrained_model_name_or_path)
        if not Path(where).is_dir() and not _looks_like_repo_id(where):
            raise FileNotFoundError(f"{where}: no such model folder (nor a Hub repo id, which is \"user/name\")")
        return super().from_pretrained(where, **kwargs)

    @classmethod
    def _from_pretrained(cls: type[M], *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         **model_kwargs: Any) -> M:
        hub = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                   local_files_only=local_files_only, token=token)
        get = _file_getter(model_id, hub)
        config_file = get(CONFIG_FILE)
        if config_file is None:
            raise FileNotFoundError(f"{model_id}: no {CONFIG_FILE}")
        model = cls(cls.config_class.from_dict(json.loads(config_file.read_text())))
        files = weight_files(get, cls.components)
        if not files:
            raise FileNotFoundError(f"{model_id}: no {WEIGHTS_FILE} and no component folders "
                                    f"({', '.join(cls.components) or 'none declared'})")
        model.load_state_dict(read_state(files))
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


def weight_files(folder: Path | Callable[[str], Path | None],
                 components: tuple[str, ...] | None = None) -> dict[str, Path]:
    """{prefix: file} of a saved model's weights: "" for model.safetensors, "NAME." for each component folder's.

    `folder`: a model folder, or a function from a file name to its local path (None when absent);
    `components` None takes every subfolder that holds diffusers weights."""
    if isinstance(folder, Path):
        root = folder
        folder = lambda name: (root / name) if (root / name).is_file() else None  # noqa: E731
        if components is None:
            components = tuple(sorted(p.parent.name for p in root.glob(f"*/{COMPONENT_WEIGHTS_FILE}")))
    found = {"": folder(WEIGHTS_FILE)}
    found.update({f"{name}.": folder(f"{name}/{COMPONENT_WEIGHTS_FILE}") for name in components or ()})
    return {prefix: path for prefix, path in found.items() if path is not None}


def read_state(files: dict[str, Path] | Path) -> dict[str, torch.Tensor]:
    """The whole state dict of a saved model (a model folder, or its `weight_files`)."""
    if isinstance(files, Path):
        files = weight_files(files)
    return {prefix + k: v for prefix, path in files.items() for k, v in load_file(path).items()}


def weights_sha256(folder: Path) -> str:
    """One sha256 for a saved model's weights: the file's own when it is one model.safetensors (so the hashes
    of older run folders are unchanged), else the sha256 of the lines "<file> <sha256>" of every weights file."""
    files = weight_files(Path(folder))
    if list(files) == [""]:
        return sha256_file(files[""])
    lines = "".join(f"{p.relative_to(folder)} {sha256_file(p)}\n" for p in sorted(files.values()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _looks_like_repo_id(name: str) -> bool:
    """Whether `name` reads as a Hub repo id ("user/name"), not as a path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((".", "/", "~")) or os.sep != "/" and os.sep in name or name.count("/") != 1:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _file_getter(model_id: str, hub: dict[str, Any]) -> Callable[[str], Path | None]:
    """A function from a file name in the model folder or Hub repo to its local path (None when absent)."""
    folder = Path(model_id)
    if folder.is_dir():
        return lambda name: (folder / name) if (folder / name).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def get(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(model_id, name, **hub))
        except EntryNotFoundError:
            return None

    return get


@functools.lru_cache(maxsize=8)
def _state_shapes(cls: type[PretrainedModel], config: ModelConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = cls(config)
    return {k: v.shape for k, v in model.state_dict().items()}


T = TypeVar("T")


def from_table(cls: type[T], values: dict[str, Any], table: str) -> T:
    """A dataclass built from one config table (``[sampling]``, ``[objective]``...); unknown keys and values of
    the wrong type are errors."""
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown [{table}] keys {unknown}; known: {known}")
    check_types(cls, values, table)
    return cls(**values)


def check_types(cls: type, values: dict[str, Any], table: str) -> None:
    """Raise a one-line ValueError "[table] key = value: expected TYPE" for the first value that does not fit its
    dataclass field's annotation (int, float, str, bool, tuples and lists of them, X | None, dict)."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        expected = hints.get(key)
        if expected is not None and not _fits(value, expected):
            raise ValueError(f"[{table}] {key} = {value!r}: expected {_type_name(expected)}, "
                             f"got {type(value).__name__}")


def _fits(value: Any, expected: Any) -> bool:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if expected is type(None):
        return value is None
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return all(_fits(v, args[0]) for v in value) if args else True
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if expected is dict or origin is dict:
        return isinstance(value, dict)
    return True  # an annotation these configs do not use: left to the dataclass


def _type_name(expected: Any) -> str:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none (left out)" if a is type(None) else _type_name(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or expected is dict:
        return "a table"
    if expected is bool:
        return "true or false"
    return getattr(expected, "__name__", str(expected))
