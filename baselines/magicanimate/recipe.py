"""How `toolkit train --method magicanimate --stage 1|2` trains the model: config tables, dataset, loss, what trains.

MagicAnimate trains in two stages (paper, section 3.4), both here:

* stage 1, images: pairs of a reference frame and a target frame of the same video with its
  DensePose render (ClipDataset clips of one frame); the appearance encoder, the ControlNet and
  the denoiser's spatial layers train, the motion modules stay at their zero initialisation
  (the identity), so the video UNet is the image UNet;
* stage 2, motion: clips of ``n_frames``; only the motion modules train, everything else is
  frozen at stage 1's weights (``--init`` the stage-1 run).

A config file has ``[model]`` (:class:`~baselines.magicanimate.model.MagicAnimateConfig`),
``[codec]`` (:func:`toolkit.models.codec.build_codec`), ``[scheduler]`` (DDIMScheduler
overrides of MagicAnimate's schedule), ``[objective]``
(:class:`~baselines.magicanimate.objective.ObjectiveConfig`), ``[sampling]``
(:class:`~baselines.magicanimate.pipeline.SamplingConfig`), ``[data]`` and ``[train]``, and per
stage ``[stages.N.TABLE]`` tables that update them (:func:`toolkit.train.recipe.select_stage`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch

from baselines.magicanimate.model import MagicAnimateConfig, MagicAnimateModel
from baselines.magicanimate.objective import ObjectiveConfig, training_loss
from baselines.magicanimate.pipeline import SamplingConfig, make_scheduler
from toolkit.data import ClipDataset
from toolkit.models.codec import build_codec, check_fits
from toolkit.train.recipe import Recipe, check_data, clip_dataset, select_stage

STAGES = (1, 2)


def check_config(config: dict[str, Any]) -> None:
    """Validate the method's tables of a (stage-selected) config; raises ValueError naming the table."""
    check_data(config)
    ObjectiveConfig.from_dict(config.get("objective", {}))
    SamplingConfig.from_dict(config.get("sampling", {}))
    MagicAnimateConfig.from_dict(config.get("model", {}))
    make_scheduler(**config.get("scheduler", {}))


class MagicAnimateRecipe(Recipe):
    name = "magicanimate"

    def __init__(self) -> None:
        self._codec: torch.nn.Module | None = None
        self._objective: ObjectiveConfig | None = None
        self._scheduler: Any = None
        self._stage = 1

    def load_config(self, config: str) -> dict[str, Any]:
        out = super().load_config(config)
        if sorted(int(k) for k in out.get("stages", {})) != list(STAGES):
            raise ValueError(f"{config}: a magicanimate config needs [stages.1] and [stages.2] tables")
        for stage in STAGES:
            check_config(select_stage(out, stage, self.name, init=Path("-")))
        return out

    def build_model(self, config: dict[str, Any]) -> MagicAnimateModel:
        self._stage = int(config.get("stage", 1))
        if self._stage not in STAGES:
            raise ValueError(f"magicanimate trains in stages {STAGES}, not {self._stage}")
        self._objective = ObjectiveConfig.from_dict(config.get("objective", {}))
        self._scheduler = make_scheduler(**config.get("scheduler", {}))
        self._codec = build_codec(config.get("codec", {}))
        model_cfg = MagicAnimateConfig.from_dict(config["model"])
        check_fits(self._codec, model_cfg.latent_channels, model_cfg.control_downsample,
                   "controlnet_embedding_channels")
        return MagicAnimateModel(model_cfg)

    def trainable_parameters(self, model: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
        """Stage 1: all but the motion modules (and the encoder's unused tail); stage 2: the motion modules only."""
        motion = model.motion_parameter_names()
        if self._stage == 2:
            keep = motion
        else:
            keep = {n for n, _ in model.named_parameters()} - motion - set(model.unused_encoder_parameters())
        for name, p in model.named_parameters():
            p.requires_grad_(name in keep)
        return [p for n, p in model.named_parameters() if n in keep]

    def build_dataset(self, shards: Path, config: dict[str, Any]) -> ClipDataset:
        return clip_dataset(shards, config, ("densepose",), n_frames=1, stride=1)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        if self._codec is None or self._objective is None:
            raise RuntimeError("build_model must run before loss (it builds the codec)")
        self._codec.to(batch["frames"].device)
        return training_loss(model, self._codec, batch, generator, self._objective, self._scheduler)
