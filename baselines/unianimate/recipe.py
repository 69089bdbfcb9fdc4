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

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from baselines.unianimate.objective import ObjectiveConfig, clean_estimate, training_loss
from baselines.unianimate.openclip_table import check_openclip, openclip_towers
from baselines.unianimate.pipeline import SamplingConfig, make_scheduler
from toolkit.data import ClipDataset
from toolkit.models.codec import build_codec, check_fits
from toolkit.models.openclip import OpenCLIPConditioner
from toolkit.train.recipe import Recipe, Trainee, check_data, clip_dataset


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


@dataclass(frozen=True)
class UniAnimateRunConfig:
    """A UniAnimate config's tables, parsed and validated once (`UniAnimateRecipe.parse_config`)."""

    model: UniAnimateConfig
    objective: ObjectiveConfig
    sampling: SamplingConfig
    scheduler: dict[str, Any]  # DDIMScheduler settings over the release's (keys checked)
    codec: dict[str, Any]  # the [codec] table (toolkit.models.codec.build_codec)
    openclip: str | None  # the [openclip] weights artifact; None without the table
    data: dict[str, Any]  # the [data] table (keys and pose_draw_scale checked)
    config: dict[str, Any]  # the whole config it was parsed from ([train] included)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> UniAnimateRunConfig:
        scheduler = dict(config.get("scheduler", {}))
        make_scheduler(**scheduler)  # an unknown key is an error
        return cls(model=UniAnimateConfig.from_dict(config.get("model", {})),
                   objective=ObjectiveConfig.from_dict(config.get("objective", {})),
                   sampling=SamplingConfig.from_dict(config.get("sampling", {})), scheduler=scheduler,
                   codec=dict(config.get("codec", {})), openclip=check_openclip(config),
                   data=dict(check_data(config)), config=dict(config))

    def to_dict(self) -> dict[str, Any]:
        """The method's tables resolved (every default written out), as run.json stores them."""
        tables = {"model": self.model.to_dict(), "objective": dataclasses.asdict(self.objective),
                  "sampling": dataclasses.asdict(self.sampling), "scheduler": self.scheduler, "codec": self.codec,
                  "data": self.data}
        return {**tables, **({"openclip": {"weights": self.openclip}} if self.openclip else {})}


@dataclass(frozen=True)
class Needs:
    """What UniAnimate's loss needs besides the model: the parsed config and the parts it does not train."""

    config: UniAnimateRunConfig
    scheduler: Any  # the training noise schedule ([scheduler])
    codec: torch.nn.Module  # pixels <-> latents ([codec]), frozen
    openclip: OpenCLIPConditioner | None  # reference-image embeddings ([openclip]), frozen; None without it


class UniAnimateRecipe(Recipe):
    name = "unianimate"

    def parse_config(self, config: dict[str, Any]) -> UniAnimateRunConfig:
        return UniAnimateRunConfig.from_dict(config)

    def build_model(self, config: UniAnimateRunConfig) -> Trainee:
        needs = Needs(config=config, scheduler=make_scheduler(**config.scheduler), codec=build_codec(config.codec),
                      openclip=openclip_towers(config.openclip))
        check_fits(needs.codec, config.model.latent_channels, config.model.pose_downsample, "pose_downsample")
        model = UniAnimateModel(config.model)
        if needs.openclip is not None:
            condition_on_openclip(model, needs.openclip)
        return Trainee(model, needs)

    def load_published(self, model: torch.nn.Module, needs: Needs) -> str:
        """``--init published``: UniAnimate's released UNet (converted once by `toolkit weights convert
        unianimate-16f-32f`), for the paper config's [model] with its [openclip] table."""
        from baselines.unianimate import convert
        from toolkit.io import sha256_file

        if needs.openclip is None:
            raise ValueError("the release is conditioned on OpenCLIP (its \"\" context and reference embeddings): "
                             "keep the paper config's [openclip] table")
        directory = convert.converted_published_dir()
        released = convert.load_converted(directory, model.text_context)
        if released.config != model.config:
            raise ValueError(f"{directory}: the release has the paper config's [model] sizes, not this config's; "
                             "train it with --config paper")
        model.load_state_dict(released.state_dict())
        return f"{convert.PUBLISHED_ARTIFACT} converted={sha256_file(directory / 'model.safetensors')}"

    def build_dataset(self, shards: Path, config: UniAnimateRunConfig) -> ClipDataset:
        return clip_dataset(shards, config.config, ("pose",), n_frames=8, stride=2)

    def loss(self, model: torch.nn.Module, batch: dict[str, Any], generator: torch.Generator,
             needs: Needs) -> torch.Tensor:
        codec, embeds = _on_device(needs, batch)
        return training_loss(model, codec, batch, generator, needs.config.objective, needs.scheduler, embeds)

    def clean_estimate(self, model: torch.nn.Module, batch: dict[str, Any], t: int, generator: torch.Generator,
                       needs: Needs) -> tuple[torch.Tensor, torch.Tensor]:
        codec, embeds = _on_device(needs, batch)
        return clean_estimate(model, codec, batch, t, generator, needs.config.objective, needs.scheduler, embeds)


def _on_device(needs: Needs, batch: dict[str, Any]) -> tuple[torch.nn.Module, torch.Tensor | None]:
    """The codec on the batch's device, and the reference images' OpenCLIP embeddings (None without OpenCLIP)."""
    device = batch["frames"].device
    codec = needs.codec.to(device)
    embeds = None if needs.openclip is None else needs.openclip.to(device).embed_images(batch["reference"])
    return codec, embeds
