"""`Recipe`: what a method gives the training loop -- its config, model, dataset and loss.

The loop owns everything else (optimizer, EMA, precision, data order, checkpoints), so a
method's training code is only what is particular to it. A recipe is found through its method's
package description (the ``toolkit.methods`` entry point, toolkit/package.py), or as a ``pkg.module:Class`` spec.
"""

from __future__ import annotations

import inspect
import tomllib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    import torch


@dataclass
class Trainee:
    """What `Recipe.build_model` returns: the model the loop trains and saves, and what `loss` needs besides it.

    `needs` holds the method's settings parsed from the config (objective, noise schedule, stage, ...) and the
    parts it builds but does not train (the codec, frozen encoders); the loop hands it back to `loss`,
    `clean_estimate`, `trainable_parameters`, `after_init` and `load_published`, so a recipe keeps no state and
    the order of calls cannot matter.
    """

    model: torch.nn.Module
    needs: Any = None

    def model_and_needs(self) -> tuple[torch.nn.Module, Any]:
        return self.model, self.needs


class Recipe(ABC):
    """The contract between a method and `toolkit.train.loop.train`.

    A recipe keeps no state: `build_model` returns the model with what the later calls need (`Trainee`).
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
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
        try:
            self.check_config(config)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        return config

    def parse_config(self, config: dict[str, Any]) -> Any:
        """The method's tables of a (stage-selected) config as one typed object, validated: an unknown key or a
        wrong type raises ValueError naming the table, key and expected type. The loop calls it once per run and
        hands the result to `build_model`, `build_dataset` and `check_fsdp`; run.json stores its ``to_dict()``
        (when it has one) over the config: the config resolved, defaults filled. Default: the dict itself."""
        return config

    def check_config(self, config: dict[str, Any]) -> None:
        """Validate a freshly read config file (`load_config` adds the file's name to the error): `parse_config`
        by default; a staged method checks every stage."""
        self.parse_config(config)

    def build(self, config: dict[str, Any]) -> Trainee:
        """`build_model` of a config dict, parsed first: for scripts and tests that hold a dict."""
        return self.build_model(self.parse_config(config))

    @abstractmethod
    def build_model(self, config: Any) -> Trainee:
        """The model to train, freshly initialised (or from pretrained weights the config names), with what
        `loss` needs besides it; `config` is `parse_config`'s result."""

    @abstractmethod
    def build_dataset(self, shards: Path, config: Any) -> torch.utils.data.Dataset:
        """The training items read from a shard folder; random-access and deterministic per (index, epoch);
        `config` is `parse_config`'s result."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator,
             needs: Any) -> torch.Tensor:
        """The scalar loss of one batch (already on the model's device); `needs`: `build_model`'s `Trainee.needs`.

        Draw every random number of the step -- noise, timesteps, condition dropout -- from
        `generator` (on the batch's device), so a step is a pure function of (weights, batch,
        seed, step). Call ``model(...)`` rather than its submodules so that distributed data
        parallel sees the forward pass; `model` may be wrapped (use ``accelerate``'s
        ``unwrap_model`` to reach attributes).
        """

    def check_fsdp(self, config: Any) -> None:
        """Raise ValueError if, with this config, `loss` may leave a trainable parameter out on some processes
        of a step but not others (``[train] distributed = "fsdp"`` is then refused before anything is written).

        FSDP2 reduces the gradients of each unit in one collective per step and includes only the
        parameters that got a gradient, so every process must give gradients to the same parameters;
        otherwise the processes stop in a collective mismatch (pytorch/pytorch#158719). DDP has no such
        need. Default: no check.
        """

    def load_published(self, model: torch.nn.Module, needs: Any) -> str:
        """Load the authors' released weights into `model` (``--init published``: fine-tune the release) and
        return their provenance (registry names and sha256s, recorded in run.json).

        A method with a release overrides this, reading it through the weights registry (a missing file
        raises its fix) and refusing a config the release does not fit. Default: there is none.
        """
        raise ValueError(f"{self.display_name()} has no released weights to start from; --init takes a run "
                         "folder, a model folder or a .safetensors file")

    def after_init(self, model: torch.nn.Module, needs: Any, init: str | None) -> str | None:
        """Change the model once ``--init``'s weights are in (`init`: the weights file, ``"published"``, or None
        without ``--init``), before anything is written; e.g. load pretrained parts that must replace what an
        earlier stage left (MagicAnimate's stage 2: AnimateDiff's motion modules). Returns the provenance of what
        it loaded (registry names and sha256s), recorded in run.json as ``after_init``, or None. Default: nothing."""
        return None

    def clean_estimate(self, model: torch.nn.Module, batch: dict[str, Any], t: int, generator: torch.Generator,
                       needs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(the model's clean-latent estimate, the clean latents) for the batch noised to timestep `t` with every
        condition kept: a diagnostic of where a diffusion model's one-step denoising is good (the learning check
        prints its error per timestep). Default: the recipe has none."""
        raise NotImplementedError(f"{self.display_name()} has no clean-sample estimate")

    def trainable_parameters(self, model: torch.nn.Module, needs: Any) -> Iterable[torch.nn.Parameter]:
        """The parameters the optimizer updates and EMA averages (default: all with requires_grad)."""
        return [p for p in model.parameters() if p.requires_grad]

    def display_name(self) -> str:
        return self.name or f"{type(self).__module__}:{type(self).__qualname__}"


def select_stage(config: Mapping[str, Any], stage: int | None, method: str, init: Path | None = None) -> dict[str, Any]:
    """The config of one training stage, for methods trained in stages (MagicAnimate: 1 images, 2 motion).

    A staged config has ``[stages.N.TABLE]`` tables whose keys update the top-level TABLE for
    stage N (``[stages.2.data] n_frames = 8``), and may say ``requires_init = true`` in
    ``[stages.N]`` (that stage starts from an earlier stage's weights, ``--init``). The result
    has no ``stages`` and records ``stage = N``, so runs of different stages never resume
    each other. A config without stages takes no `stage`.
    """
    stages = config.get("stages")
    if stages is None:
        if stage is not None:
            raise ValueError(f"{method} trains in one stage: leave out --stage")
        return dict(config)
    if not isinstance(stages, dict) or not all(k.isdigit() and isinstance(v, dict) for k, v in stages.items()):
        raise ValueError(f"{method}: [stages] must hold tables named by number ([stages.1], [stages.2])")
    known = ", ".join(sorted(stages, key=int))
    if stage is None:
        raise ValueError(f"{method} trains in stages {known}: pass --stage")
    if str(stage) not in stages:
        raise ValueError(f"{method} has no stage {stage} (stages: {known})")
    chosen = dict(stages[str(stage)])
    if chosen.pop("requires_init", False) and init is None:
        raise ValueError(f"{method} stage {stage} starts from the weights of stage {stage - 1}: pass --init RUN "
                         f"(the run folder of stage {stage - 1})")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items() if k != "stages"}
    for table, values in chosen.items():
        if not isinstance(values, dict):
            raise ValueError(f"{method}: [stages.{stage}] {table} must be a table ([stages.{stage}.{table}])")
        out[table] = {**out.get(table, {}), **values}
    out["stage"] = stage
    return out


#: The `[data]` keys `clip_dataset` reads.
DATA_KEYS = frozenset({"size", "n_frames", "stride", "samples_per_video", "videos", "split", "reference",
                       "pose_draw_scale"})


def check_data(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The config's ``[data]`` table, refused if it has keys `clip_dataset` does not read."""
    data = config.get("data", {})
    unknown = set(data) - DATA_KEYS
    if unknown:
        raise ValueError(f"unknown [data] keys {sorted(unknown)}; known: {sorted(DATA_KEYS)}")
    scale = data.get("pose_draw_scale", 1)  # toolkit.conditions.pose_labels' draw_scale; methods sample with it
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"[data] pose_draw_scale must be an integer >= 1, got {scale!r}")
    return data


def clip_dataset(shards: Path, config: Mapping[str, Any], columns: tuple[str, ...], n_frames: int = 8,
                 stride: int = 2) -> Any:
    """The `ClipDataset` a config's ``[data]`` table describes (uint8 images; `n_frames`, `stride` as defaults).

    Renders come as label maps (a third of the bytes to move from the loader's workers); the training loop
    colours them on the device (:func:`toolkit.conditions.colour_batch`), so a recipe's `loss` sees images."""
    import torch

    from toolkit.data import ClipDataset

    data = check_data(config)
    size = data.get("size", 64)
    return ClipDataset(shards, n_frames=int(data.get("n_frames", n_frames)), stride=int(data.get("stride", stride)),
                       size=size if isinstance(size, int) else tuple(size), columns=columns,
                       split=data.get("split", "train"), seed=int(config.get("train", {}).get("seed", 0)),
                       samples_per_video=int(data.get("samples_per_video", 1)),
                       reference=data.get("reference", "random"), videos=data.get("videos"), dtype=torch.uint8,
                       renders="labels", pose_style={"draw_scale": data.get("pose_draw_scale", 1)})

