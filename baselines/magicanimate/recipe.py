"""How `toolkit train --method magicanimate --stage 1|2` trains the model: config tables, dataset, loss, what trains.

MagicAnimate trains in two stages (paper, section 3.4), both here:

* stage 1, images: pairs of a reference frame and a target frame of the same video with its
  DensePose render (ClipDataset clips of one frame); the appearance encoder and the ControlNet
  train, as the paper says (the temporal layers left out, "appearance encoder and pose ControlNet"
  trained); the denoiser's spatial layers stay at their start (SD 1.5 in the paper config) unless
  ``[trainable] denoiser_spatial = true`` (:class:`TrainableConfig`; the tiny config, whose denoiser
  starts random). The motion modules stay at their zero initialisation (the identity), so the video
  UNet is the image UNet;
* stage 2, motion: clips of ``n_frames``; only the motion modules train, everything else is
  frozen at stage 1's weights (``--init`` the stage-1 run). The paper starts them from
  AnimateDiff's motion module: ``[stages.2.pretrained] motion_modules = "animatediff-mm-sd-v15"``
  loads it over ``--init``'s zero modules (:meth:`MagicAnimateRecipe.after_init`).

Image-video joint training (paper, section 3.4), stage 1: with ``[joint] image_prob`` > 0 that share of the
pairs are image items instead, one frame (of ``image_shards``, by default the training shards) that is both
the reference and the target with its own DensePose render, so the model learns to reconstruct the image;
a folder of photos prepared as shards is the image data. Stage 2 (``[joint] tau_1``, ``tau_2``): a step trains on
such image items (r <= tau_1), on single frames of a video with another frame as the reference (r <= tau_2), or
on the clips, with r drawn per step (:class:`ClipsWithImages`, :func:`select_kind`). Off in both configs: the
paper's thresholds could not be checked here (README, "Training recipe").

A config file has ``[model]`` (:class:`~baselines.magicanimate.model.MagicAnimateConfig`),
``[codec]`` (:func:`toolkit.models.codec.build_codec`), ``[scheduler]`` (DDIMScheduler
overrides of MagicAnimate's schedule), ``[joint]`` (:class:`JointConfig`), ``[pretrained]``
(:class:`PretrainedConfig`: the paper config's stage 1 starts from SD 1.5, its stage 2's motion modules from
AnimateDiff), ``[trainable]`` (:class:`TrainableConfig`), ``[objective]``
(:class:`~baselines.magicanimate.objective.ObjectiveConfig`), ``[sampling]``
(:class:`~baselines.magicanimate.pipeline.SamplingConfig`), ``[data]`` and ``[train]``, and per
stage ``[stages.N.TABLE]`` tables that update them (:func:`toolkit.train.recipe.select_stage`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from baselines.magicanimate.model import MagicAnimateConfig, MagicAnimateModel
from baselines.magicanimate.objective import ObjectiveConfig, clean_estimate, training_loss
from baselines.magicanimate.pipeline import SamplingConfig, make_scheduler
from toolkit.data import ClipDataset
from toolkit.models.codec import build_codec, check_fits
from toolkit.models.pretrained import from_table
from toolkit.models.run_folder import PUBLISHED
from toolkit.train.recipe import Recipe, Trainee, check_data, clip_dataset, select_stage

STAGES = (1, 2)


@dataclass(frozen=True)
class JointConfig:
    """``[joint]``: image-video joint training, the paper's random number r ~ U(0, 1) against thresholds.

    Stage 1 (`image_prob`, the paper's tau_0; per pair): r <= image_prob makes the pair an image item, an image
    that is its own reference with its own DensePose render. Stage 2 (`tau_1` <= `tau_2`; per step): r <= tau_1
    trains on image items (its own reference, i = ref), tau_1 < r <= tau_2 on single frames of a video with
    another frame as the reference (i != ref), r > tau_2 on the clips. Image items come from `image_shards`
    (default: the training shards). All zero: off (the paper gives no values that could be checked here).
    """

    image_prob: float = 0.0
    tau_1: float = 0.0
    tau_2: float = 0.0
    image_shards: str | None = None   # shards of the image data; None: the training shards
    image_split: str = "train"

    @classmethod
    def from_dict(cls, table: dict[str, Any], stage: int) -> "JointConfig":
        out = from_table(cls, table, "joint")
        for key in ("image_prob", "tau_1", "tau_2"):
            if not 0.0 <= float(getattr(out, key)) <= 1.0:
                raise ValueError(f"[joint] {key} must lie in [0, 1], got {getattr(out, key)}")
        if out.tau_1 > out.tau_2:
            raise ValueError(f"[joint] tau_1 ({out.tau_1}) must not exceed tau_2 ({out.tau_2})")
        if out.image_prob > 0 and stage != 1:
            raise ValueError("[joint] image_prob mixes image items into stage 1 only; stage "
                             f"{stage} sets image_prob = {out.image_prob} (stage 2 mixes with tau_1 and tau_2)")
        if out.tau_2 > 0 and stage != 2:
            raise ValueError(f"[joint] tau_1 and tau_2 mix images into stage 2's clips; stage {stage} sets "
                             f"tau_2 = {out.tau_2} (stage 1 mixes with image_prob)")
        return out


@dataclass(frozen=True)
class PretrainedConfig:
    """``[pretrained]``: registry files a model starts from.

    Stage 1: `unet`, SD 1.5's UNet, for the denoiser's spatial layers, the appearance encoder and the
    ControlNet's encoder copy (:func:`~baselines.magicanimate.convert.from_sd15_unet`); `text_encoder`, SD 1.5's
    CLIP text encoder, whose embedding of "" becomes the fixed text tokens, as MagicAnimate conditions on.
    Stage 2: `motion_modules`, AnimateDiff's motion-module file (its names mapped to ours as the release's are,
    `convert.MOTION_RENAMES`), loaded over the zero motion modules of ``--init``'s stage-1 weights.
    """

    unet: str | None = None
    text_encoder: str | None = None
    motion_modules: str | None = None

    @classmethod
    def from_dict(cls, table: dict[str, Any], stage: int) -> "PretrainedConfig":
        from toolkit import weights

        out = from_table(cls, table, "pretrained")
        for name in (out.unet, out.text_encoder, out.motion_modules):
            if name is not None:
                weights.get(name)  # an unknown artifact names the known ones
        if stage != 1 and (out.unet or out.text_encoder):
            raise ValueError(f"[pretrained] unet and text_encoder start stage 1 only (stage {stage} starts from "
                             "--init): put them under [stages.1.pretrained]")
        if stage != 2 and out.motion_modules:
            raise ValueError(f"[pretrained] motion_modules starts stage 2's motion modules (stage {stage} does not "
                             "train them): put it under [stages.2.pretrained]")
        return out

    def apply(self, model: MagicAnimateModel) -> None:
        """Load the named files into a fresh model (through the weights registry: a missing file names its fix)."""
        from safetensors.torch import load_file

        from baselines.magicanimate.convert import from_sd15_unet
        from toolkit import weights
        from toolkit.models.clip_text import empty_prompt_embedding

        if self.unet is not None:
            path = weights.path(self.unet)
            state = from_sd15_unet(load_file(str(path)), model.config, path)
            unexpected = model.load_state_dict(state, strict=False).unexpected_keys
            if unexpected:
                raise ValueError(f"{path}: tensors with no place in the model: {unexpected[:5]}")
        if self.text_encoder is not None:
            path = weights.path(self.text_encoder)
            try:
                model.set_text_context(empty_prompt_embedding(path, model.config.text_tokens))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None

    def load_motion_modules(self, model: MagicAnimateModel) -> None:
        """Load `motion_modules` (through the weights registry: a missing file names its fix) into the model's
        motion modules; every motion-module tensor must be in the file with its shape, and nothing else."""
        from baselines.magicanimate.convert import load_published
        from toolkit import weights

        if self.motion_modules is None:
            return
        path = weights.path(self.motion_modules)
        state = motion_module_state(load_published("temporal_attention", path), model.config, path)
        model.load_state_dict(state, strict=False)


def motion_module_state(tensors: dict[str, torch.Tensor], config: MagicAnimateConfig,
                        source: str | Path) -> dict[str, torch.Tensor]:
    """AnimateDiff motion-module tensors (its names, as in mm_sd_v15.ckpt) as our ``unet.*motion_modules*``
    entries, checked like the release's (`convert.convert_state_dict`): every motion-module tensor present with
    its shape, the two sinusoid tables of a module equal, no tensor without a place; raises ValueError naming
    `source` otherwise."""
    from baselines.magicanimate.convert import ConversionError, convert_state_dict, model_shapes, motion_keys

    try:
        state = convert_state_dict("temporal_attention", tensors, config)
    except ConversionError as exc:
        raise ValueError(f"{source}: not AnimateDiff motion modules of this config's layout ({exc.args[0]})") from None
    other = sorted(set(state) - motion_keys(model_shapes(config)))
    if other:
        raise ValueError(f"{source}: holds more than motion modules ({other[:3]}, ...); a motion-module file "
                         "(AnimateDiff's mm_sd_v15.ckpt) is expected")
    return state


def check_motion_module_file(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """The weights registry's first-use check of ``animatediff-mm-sd-v15``: the file's tensors are the motion
    modules of the paper config (20 modules, 8 heads, 24 positions, none in the mid block)."""
    motion_module_state(tensors, MagicAnimateConfig.named("paper"), path)


@dataclass(frozen=True)
class TrainableConfig:
    """``[trainable]``: what stage 1 trains besides the appearance encoder and the ControlNet.

    `denoiser_spatial` (default false, as the paper trains stage 1): also the denoiser's spatial layers. The
    paper config keeps them at SD 1.5's weights; the tiny config, whose denoiser starts from random weights,
    must train them.
    """

    denoiser_spatial: bool = False

    @classmethod
    def from_dict(cls, table: dict[str, Any], stage: int) -> "TrainableConfig":
        out = from_table(cls, table, "trainable")
        if not isinstance(out.denoiser_spatial, bool):
            raise ValueError(f"[trainable] denoiser_spatial must be true or false, got {out.denoiser_spatial!r}")
        if stage != 1 and out.denoiser_spatial:
            raise ValueError("[trainable] denoiser_spatial is a stage-1 choice (stage 2 trains the motion modules "
                             "only): put it under [stages.1.trainable]")
        return out


class ImageVideoPairs(Dataset):
    """Stage-1 pairs, each one (with probability `image_prob`, fixed for a seed, epoch and index) an image item
    instead of a video pair: a frame of `images` that is its own reference (``reference="self"``)."""

    def __init__(self, videos: ClipDataset, images: ClipDataset, image_prob: float, seed: int):
        self.videos, self.images, self.image_prob, self.seed, self.epoch = videos, images, image_prob, seed, 0

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.videos.set_epoch(epoch)
        self.images.set_epoch(epoch)

    def is_image(self, index: int) -> bool:
        return bool(np.random.default_rng([self.seed, self.epoch, index, 2]).random() < self.image_prob)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self.is_image(index):
            return self.images[index % len(self.images)]
        return self.videos[index]


#: What a `ClipsWithImages` item carries beside its clip: the stage-2 image item (i = ref) and frame pair (i != ref).
SINGLE_FRAME_KINDS = ("self_", "pair_")


class ClipsWithImages(Dataset):
    """Stage-2 clips, each item also carrying the single-frame items the step may train on instead (keys prefixed
    ``self_``: an image of `images` that is its own reference; ``pair_``: one frame of `pairs`, a frame of a
    training video with another frame as its reference). The loss picks one kind per step (`select_kind`)."""

    def __init__(self, clips: ClipDataset, images: ClipDataset, pairs: ClipDataset):
        self.clips, self.images, self.pairs = clips, images, pairs

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        for dataset in (self.clips, self.images, self.pairs):
            dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        item = dict(self.clips[index])
        for prefix, dataset in zip(SINGLE_FRAME_KINDS, (self.images, self.pairs)):
            single = dataset[index % len(dataset)]
            tensors = {k: v for k, v in single.items() if isinstance(v, torch.Tensor)}
            item.update({prefix + k: v for k, v in tensors.items()})
            for key in tensors:  # colour_batch finds a reference render's palette under the reference's name
                if key.startswith("reference_") and key.endswith("_labels"):
                    name = key.removeprefix("reference_").removesuffix("_labels")
                    item[f"{prefix}reference_{name}_palette"] = tensors[f"{name}_palette"]
        return item


def select_kind(batch: dict[str, Any], joint: JointConfig, generator: torch.Generator) -> dict[str, Any]:
    """The part of a `ClipsWithImages` batch this step trains on: r ~ U(0, 1) from the step's generator; r <= tau_1
    the image items, r <= tau_2 the frame pairs, else the clips (`JointConfig`)."""
    r = float(torch.rand(1, generator=generator, device=generator.device))
    prefix = "self_" if r <= joint.tau_1 else "pair_" if r <= joint.tau_2 else ""
    if prefix:
        return {k.removeprefix(prefix): v for k, v in batch.items() if k.startswith(prefix)}
    return {k: v for k, v in batch.items() if not k.startswith(SINGLE_FRAME_KINDS)}


@dataclass(frozen=True)
class MagicAnimateRunConfig:
    """The tables of one stage's config (`select_stage`), parsed and validated once
    (`MagicAnimateRecipe.parse_config`)."""

    stage: int  # 1 images, 2 motion
    model: MagicAnimateConfig
    joint: JointConfig
    pretrained: PretrainedConfig
    trainable: TrainableConfig
    objective: ObjectiveConfig
    sampling: SamplingConfig
    scheduler: dict[str, Any]  # DDIMScheduler settings over the release's (keys checked)
    codec: dict[str, Any]  # the [codec] table (toolkit.models.codec.build_codec)
    data: dict[str, Any]  # the [data] table (keys checked)
    config: dict[str, Any]  # the whole stage config it was parsed from ([train] included)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> MagicAnimateRunConfig:
        stage = config.get("stage", 1)
        if stage not in STAGES:
            raise ValueError(f"magicanimate trains in stages {STAGES}, not {stage!r}")
        scheduler = dict(config.get("scheduler", {}))
        make_scheduler(**scheduler)  # an unknown key is an error
        return cls(stage=stage, model=MagicAnimateConfig.from_dict(config.get("model", {})),
                   joint=JointConfig.from_dict(config.get("joint", {}), stage),
                   pretrained=PretrainedConfig.from_dict(config.get("pretrained", {}), stage),
                   trainable=TrainableConfig.from_dict(config.get("trainable", {}), stage),
                   objective=ObjectiveConfig.from_dict(config.get("objective", {})),
                   sampling=SamplingConfig.from_dict(config.get("sampling", {})), scheduler=scheduler,
                   codec=dict(config.get("codec", {})), data=dict(check_data(config)), config=dict(config))

    def to_dict(self) -> dict[str, Any]:
        """The method's tables resolved (every default written out), as run.json stores them."""
        return {"stage": self.stage, "model": self.model.to_dict(), "joint": dataclasses.asdict(self.joint),
                "pretrained": dataclasses.asdict(self.pretrained), "trainable": dataclasses.asdict(self.trainable),
                "objective": dataclasses.asdict(self.objective), "sampling": dataclasses.asdict(self.sampling),
                "scheduler": self.scheduler, "codec": self.codec, "data": self.data}


@dataclass(frozen=True)
class Needs:
    """What MagicAnimate's loss and the loop's later calls need besides the model: the parsed config and the
    codec it does not train."""

    config: MagicAnimateRunConfig
    scheduler: Any  # the training noise schedule ([scheduler])
    codec: torch.nn.Module  # pixels <-> latents ([codec]), frozen


class MagicAnimateRecipe(Recipe):
    name = "magicanimate"

    def parse_config(self, config: dict[str, Any]) -> MagicAnimateRunConfig:
        return MagicAnimateRunConfig.from_dict(config)

    def check_config(self, config: dict[str, Any]) -> None:
        if sorted(int(k) for k in config.get("stages", {})) != list(STAGES):
            raise ValueError("a magicanimate config needs [stages.1] and [stages.2] tables")
        for stage in STAGES:
            self.parse_config(select_stage(config, stage, self.name, init=Path("-")))

    def build_model(self, config: MagicAnimateRunConfig) -> Trainee:
        needs = Needs(config=config, scheduler=make_scheduler(**config.scheduler), codec=build_codec(config.codec))
        check_fits(needs.codec, config.model.latent_channels, config.model.control_downsample,
                   "controlnet_embedding_channels")
        model = MagicAnimateModel(config.model)
        config.pretrained.apply(model)
        return Trainee(model, needs)

    def after_init(self, model: torch.nn.Module, needs: Needs, init: str | None) -> str | None:
        """Stage 2: AnimateDiff's motion modules (``[pretrained] motion_modules``) over ``--init``'s stage-1 weights,
        whose motion modules are still zero; returns "NAME=sha256" of the file (run.json). With ``--init
        published`` the release's trained motion modules are kept (replacing them would discard what MagicAnimate
        trained) and a warning says so."""
        from toolkit import weights

        name = needs.config.pretrained.motion_modules
        if name is None:
            return None
        if init == PUBLISHED:
            warnings.warn(f"--init published: the release's motion modules are kept, [pretrained] motion_modules = "
                          f"{name!r} is not loaded", stacklevel=2)
            return None
        needs.config.pretrained.load_motion_modules(model)
        return f"{name}={weights.file_sha256(name)}"

    def load_published(self, model: torch.nn.Module, needs: Needs) -> str:
        """``--init published``: MagicAnimate's released weights (the paper config's [model] only), e.g. to
        fine-tune stage 2's motion modules or stage 1's spatial layers on your shards."""
        from baselines.magicanimate import convert

        model.load_state_dict(convert.from_published(model.config).state_dict())
        return convert.published_sha256()

    def check_fsdp(self, config: MagicAnimateRunConfig) -> None:
        """Refuse FSDP in stage 1 while the reference drops out: a process whose samples all drop it leaves the
        (trainable) appearance encoder out of its loss, so the processes' gradient collectives differ. Stage 2
        trains the motion modules only, which every sample uses, so it may shard."""
        p_uncond = config.objective.p_uncond
        if p_uncond > 0 and config.stage == 1:
            raise ValueError(f"magicanimate stage 1 with [objective] p_uncond = {p_uncond} trains with distributed = "
                             "\"ddp\" only: a process whose samples all drop the reference computes no gradient for "
                             "the appearance encoder in that step, and FSDP needs the same gradients on every process "
                             "(stage 2, motion modules only, may use fsdp)")

    def trainable_parameters(self, model: torch.nn.Module, needs: Needs) -> Iterable[torch.nn.Parameter]:
        """Stage 1: the appearance encoder (bar its unused tail), the ControlNet and learned text tokens, plus the
        denoiser's spatial layers with ``[trainable] denoiser_spatial``; stage 2: the motion modules only."""
        motion = model.motion_parameter_names()
        if needs.config.stage == 2:
            keep = motion
        else:
            keep = {n for n, _ in model.named_parameters()} - motion - set(model.unused_encoder_parameters())
            if not needs.config.trainable.denoiser_spatial:
                keep = {n for n in keep if not n.startswith("unet.")}
        for name, p in model.named_parameters():
            p.requires_grad_(name in keep)
        return [p for n, p in model.named_parameters() if n in keep]

    def build_dataset(self, shards: Path, run_config: MagicAnimateRunConfig) -> Dataset:
        config, joint = run_config.config, run_config.joint
        pairs = clip_dataset(shards, config, ("densepose",), n_frames=1, stride=1)
        if joint.image_prob == 0 and joint.tau_2 == 0:
            return pairs
        image_config = {**config, "data": {**config.get("data", {}), "reference": "self", "n_frames": 1,
                                           "split": joint.image_split}}
        image_config["data"].pop("videos", None)
        images = clip_dataset(Path(joint.image_shards or shards), image_config, ("densepose",), n_frames=1,
                              stride=1)
        if joint.tau_2 > 0:  # stage 2: `pairs` are the clips; single frames of the training videos besides
            frame_config = {**config, "data": {**config.get("data", {}), "n_frames": 1, "stride": 1}}
            frames = clip_dataset(shards, frame_config, ("densepose",), n_frames=1, stride=1)
            return ClipsWithImages(pairs, images, frames)
        return ImageVideoPairs(pairs, images, joint.image_prob, int(config.get("train", {}).get("seed", 0)))

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator,
             needs: Needs) -> torch.Tensor:
        codec = needs.codec.to(batch["frames"].device)
        if needs.config.stage == 2 and needs.config.joint.tau_2 > 0:
            batch = select_kind(batch, needs.config.joint, generator)
        return training_loss(model, codec, batch, generator, needs.config.objective, needs.scheduler)

    def clean_estimate(self, model: torch.nn.Module, batch: dict[str, Any], t: int, generator: torch.Generator,
                       needs: Needs) -> tuple[torch.Tensor, torch.Tensor]:
        codec = needs.codec.to(batch["frames"].device)
        return clean_estimate(model, codec, batch, t, generator, needs.scheduler)
