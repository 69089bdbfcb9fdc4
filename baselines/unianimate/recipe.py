"""How `toolkit train --method unianimate` trains the model: config tables, dataset, loss.

A config file (``configs/tiny.toml``, ``configs/paper.toml`` or your own) has the
tables ``[model]`` (:class:`~baselines.unianimate.model.UniAnimateConfig`),
``[codec]`` (:func:`toolkit.models.codec.build_codec`), ``[data]`` (the
`ClipDataset` clip: size, n_frames, stride, samples_per_video, optionally
videos), ``[objective]`` (:class:`~baselines.unianimate.objective.ObjectiveConfig`),
``[sampling]`` (:class:`~baselines.unianimate.pipeline.SamplingConfig`, used
after training), ``[train]`` (the loop's settings) and, optionally, ``[scheduler]`` (DDIMScheduler
settings over the release's: v-prediction, zero terminal SNR, trailing; training and sampling both follow
it) and ``[openclip]``.

``[openclip] weights = "openclip-vit-h-14-laion2b"`` (the paper config) conditions the model as
UniAnimate is: its fixed text tokens are set to OpenCLIP's "" context before training, and every
clip's reference frame (as the clip gives it) is embedded by OpenCLIP's frozen visual tower and fed
to the image projection; `toolkit eval` / `toolkit animate` then embed each reference the same way.
Without the table (the tiny config) the text tokens are learned and the image tokens stay zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from baselines.unianimate.objective import ObjectiveConfig, clean_estimate, training_loss
from baselines.unianimate.openclip_table import check_openclip, load_openclip
from baselines.unianimate.pipeline import SamplingConfig, make_scheduler
from toolkit.data import ClipDataset
from toolkit.models.codec import build_codec, check_fits
from toolkit.models.openclip import OpenCLIPConditioner
from toolkit.train.recipe import Recipe, check_data, clip_dataset


def condition_on_openclip(model: UniAnimateModel, openclip: OpenCLIPConditioner) -> None:
    """Check that the model takes OpenCLIP's sizes and set its fixed text tokens to the "" context."""
    c = model.config
    if c.image_embed_dim != openclip.embed_dim:
        raise ValueError(f"[model] image_embed_dim = {c.image_embed_dim}, but the OpenCLIP weights embed images "
                         f"in {openclip.embed_dim}")
    if c.learned_text_context:
        return
    context = openclip.empty_text_context()
    if tuple(context.shape[1:]) != (c.text_tokens, c.cross_attention_dim):
        raise ValueError(f"[model] text_tokens x cross_attention_dim = {c.text_tokens} x {c.cross_attention_dim}, "
                         f"but OpenCLIP's \"\" context is {context.shape[1]} x {context.shape[2]}")
    model.set_text_context(context)


class UniAnimateRecipe(Recipe):
    name = "unianimate"

    def __init__(self) -> None:
        self._codec: torch.nn.Module | None = None
        self._scheduler = make_scheduler()
        self._objective: ObjectiveConfig | None = None
        self._openclip: OpenCLIPConditioner | None = None

    def check_config(self, config: dict[str, Any]) -> None:
        check_data(config)
        ObjectiveConfig.from_dict(config.get("objective", {}))
        make_scheduler(**config.get("scheduler", {}))
        UniAnimateConfig.from_dict(config.get("model", {}))
        SamplingConfig.from_dict(config.get("sampling", {}))
        check_openclip(config)

    def build_model(self, config: dict[str, Any]) -> UniAnimateModel:
        self._objective = ObjectiveConfig.from_dict(config.get("objective", {}))
        self._scheduler = make_scheduler(**config.get("scheduler", {}))
        self._codec = build_codec(config.get("codec", {}))
        model_cfg = UniAnimateConfig.from_dict(config["model"])
        check_fits(self._codec, model_cfg.latent_channels, model_cfg.pose_downsample, "pose_downsample")
        model = UniAnimateModel(model_cfg)
        self._openclip = load_openclip(config)
        if self._openclip is not None:
            condition_on_openclip(model, self._openclip)
        return model

    def load_published(self, model: torch.nn.Module, config: dict[str, Any]) -> str:
        """``--init published``: UniAnimate's released UNet (converted once by `toolkit weights convert
        unianimate-16f-32f`), for the paper config's [model] with its [openclip] table."""
        from baselines.unianimate import convert
        from toolkit.io import sha256_file

        if self._openclip is None:
            raise ValueError("the release is conditioned on OpenCLIP (its \"\" context and reference embeddings): "
                             "keep the paper config's [openclip] table")
        directory = convert.converted_published_dir()
        released = convert.load_converted(directory, model.text_context)
        if released.config != model.config:
            raise ValueError(f"{directory}: the release has the paper config's [model] sizes, not this config's; "
                             "train it with --config paper")
        model.load_state_dict(released.state_dict())
        return f"{convert.PUBLISHED_ARTIFACT} converted={sha256_file(directory / 'model.safetensors')}"

    def build_dataset(self, shards: Path, config: dict[str, Any]) -> ClipDataset:
        return clip_dataset(shards, config, ("pose",), n_frames=8, stride=2)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        if self._codec is None or self._objective is None:
            raise RuntimeError("build_model must run before loss (it builds the codec)")
        device = batch["frames"].device
        self._codec.to(device)
        embeds = None if self._openclip is None else self._openclip.to(device).embed_images(batch["reference"])
        return training_loss(model, self._codec, batch, generator, self._objective, self._scheduler, embeds)

    def clean_estimate(self, model: torch.nn.Module, batch: dict[str, Any], t: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self._codec is None or self._objective is None:
            raise RuntimeError("build_model must run before clean_estimate (it builds the codec)")
        device = batch["frames"].device
        self._codec.to(device)
        embeds = None if self._openclip is None else self._openclip.to(device).embed_images(batch["reference"])
        return clean_estimate(model, self._codec, batch, t, generator, self._objective, self._scheduler, embeds)
