"""How `toolkit train --method unianimate` trains the model: config tables, dataset, loss.

A config file (``configs/tiny.toml``, ``configs/paper.toml`` or your own) has the
tables ``[model]`` (:class:`~baselines.unianimate.model.UniAnimateConfig`),
``[codec]`` (:func:`toolkit.models.codec.build_codec`), ``[data]`` (the
`ClipDataset` clip: size, n_frames, stride, samples_per_video, optionally
videos), ``[objective]`` (:class:`~baselines.unianimate.objective.ObjectiveConfig`),
``[sampling]`` (:class:`~baselines.unianimate.pipeline.SamplingConfig`, used
after training) and ``[train]`` (the loop's settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from baselines.unianimate.objective import ObjectiveConfig, training_loss
from baselines.unianimate.pipeline import make_scheduler
from toolkit.data import ClipDataset
from toolkit.models.codec import build_codec, check_fits
from toolkit.train.recipe import Recipe, check_data, clip_dataset



class UniAnimateRecipe(Recipe):
    name = "unianimate"

    def __init__(self) -> None:
        self._codec: torch.nn.Module | None = None
        self._scheduler = make_scheduler()
        self._objective: ObjectiveConfig | None = None

    def load_config(self, config: str) -> dict[str, Any]:
        out = super().load_config(config)
        check_data(out)
        ObjectiveConfig.from_dict(out.get("objective", {}))
        UniAnimateConfig.from_dict(out.get("model", {}))
        return out

    def build_model(self, config: dict[str, Any]) -> UniAnimateModel:
        self._objective = ObjectiveConfig.from_dict(config.get("objective", {}))
        self._codec = build_codec(config.get("codec", {}))
        model_cfg = UniAnimateConfig.from_dict(config["model"])
        check_fits(self._codec, model_cfg.latent_channels, model_cfg.pose_downsample, "pose_downsample")
        return UniAnimateModel(model_cfg)

    def build_dataset(self, shards: Path, config: dict[str, Any]) -> ClipDataset:
        return clip_dataset(shards, config, ("pose",), n_frames=8, stride=2)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        if self._codec is None or self._objective is None:
            raise RuntimeError("build_model must run before loss (it builds the codec)")
        self._codec.to(batch["frames"].device)
        return training_loss(model, self._codec, batch, generator, self._objective, self._scheduler)
