"""UniAnimate keeps the shared contracts (tests/helpers/contracts.py): the model (the tiny stand-in), the recipe
(the tiny config on 32-pixel clips of 3 frames) and the method (a run folder of the tiny stand-in, 2 steps)."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import pytest
import torch

from baselines.unianimate.method import UniAnimateMethod
from baselines.unianimate.recipe import UniAnimateRecipe
from tests.helpers.contracts import DiffusionMethodContractMixin, ModelTesterMixin, RecipeContractMixin
from tests.helpers.unianimate_standin import TINY, perturbed
from toolkit.harness.method import Method


def shrink(config: dict[str, Any]) -> dict[str, Any]:
    """The tiny config on 32-pixel clips of 3 frames, sampled in 2 steps."""
    config["data"] = {"size": 32, "n_frames": 3, "stride": 1, "samples_per_video": 2}
    config["train"].update(batch_size=1, num_workers=0)
    config["sampling"] = {"steps": 2, "window": 3, "overlap": 1}
    return config


class TestUniAnimateModel(ModelTesterMixin):
    def make_model(self, seed: int) -> torch.nn.Module:
        return perturbed(TINY, seed)

    def make_inputs(self) -> tuple[Any, ...]:
        g = torch.Generator().manual_seed(1)
        c, lat = TINY.latent_channels, 8
        s = lat * TINY.pose_downsample
        return (torch.randn(1, c, 2, lat, lat, generator=g), torch.tensor([500]),
                torch.rand(1, 3, 2, s, s, generator=g), torch.randn(1, c, lat, lat, generator=g),
                torch.rand(1, 3, s, s, generator=g), torch.randn(1, TINY.image_embed_dim, generator=g))


class TestUniAnimateRecipe(RecipeContractMixin):
    recipe_class = UniAnimateRecipe
    shrink = staticmethod(shrink)


class TestUniAnimateMethod(DiffusionMethodContractMixin):
    method_class = UniAnimateMethod

    @pytest.fixture(scope="class")
    @classmethod
    def make(cls, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Method]:
        """The method on a run folder as `toolkit train` writes it (run.json, model/) holding the tiny stand-in."""
        run = tmp_path_factory.mktemp("ua-run")
        config = shrink(UniAnimateRecipe().load_config("tiny"))
        (run / "run.json").write_text(json.dumps({"method": "unianimate", "config": config}))
        perturbed(TINY, 0).save_pretrained(run / "model")
        return functools.partial(UniAnimateMethod, checkpoint=run)
