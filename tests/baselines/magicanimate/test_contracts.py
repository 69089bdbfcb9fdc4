"""MagicAnimate keeps the shared contracts (tests/helpers/contracts.py): the model (the micro stand-in), the recipe
(stage 1 of the tiny config at MICRO's sizes on 16-pixel images) and the method (a run folder of the micro
stand-in, 2 steps)."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import pytest
import torch

from baselines.magicanimate.method import MagicAnimateMethod
from baselines.magicanimate.recipe import MagicAnimateRecipe
from tests.helpers.contracts import DiffusionMethodContractMixin, ModelTesterMixin, RecipeContractMixin
from tests.helpers.magicanimate_standin import MICRO, inputs, nudged
from toolkit.harness.method import Method
from toolkit.train.recipe import select_stage


def shrink(config: dict[str, Any]) -> dict[str, Any]:
    """The tiny config's tables with MICRO's sizes, 16-pixel images, 2 sampling steps."""
    config["model"] = MICRO.to_dict()
    config["codec"] = {"kind": "pixel", "factor": 2}
    config["data"] = {"size": 16, "reference": "random"}
    config["train"].update(num_workers=0)
    config["stages"]["1"]["train"] = {"batch_size": 1}
    config["sampling"] = {**config.get("sampling", {}), "steps": 2, "window": 3, "overlap": 1}
    return config


class TestMagicAnimateModel(ModelTesterMixin):
    def make_model(self, seed: int) -> torch.nn.Module:
        return nudged(seed)

    def make_inputs(self) -> tuple[Any, ...]:
        return inputs(b=1, f=2)


class TestMagicAnimateRecipe(RecipeContractMixin):
    recipe_class = MagicAnimateRecipe
    stage = 1
    shrink = staticmethod(shrink)


class TestMagicAnimateMethod(DiffusionMethodContractMixin):
    method_class = MagicAnimateMethod

    @pytest.fixture(scope="class")
    @classmethod
    def make(cls, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Method]:
        """The method on a run folder as `toolkit train --stage 1` writes it (run.json, model/): the micro stand-in."""
        run = tmp_path_factory.mktemp("ma-run")
        config = select_stage(shrink(MagicAnimateRecipe().load_config("tiny")), 1, "magicanimate")
        (run / "run.json").write_text(json.dumps({"method": "magicanimate", "config": config}))
        nudged(0).save_pretrained(run / "model")
        return functools.partial(MagicAnimateMethod, checkpoint=run)
