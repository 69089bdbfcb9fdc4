"""Shared tester mixins: the contracts every model, method and training recipe keeps, checked the same way.

A test class mixes one in and fills in the few hooks it names (``class TestX(ModelTesterMixin): ...``); the mixins
are not collected themselves (their names do not start with ``Test``). Keep the hooks small (micro models, a few
frames): each contract test should take seconds.

* `ModelTesterMixin`: save_pretrained / from_pretrained gives the same config, weights and outputs; the same seed
  builds the same model, which gives the same output on the same inputs (and another seed another output).
* `MethodContractMixin` (toolkit/harness/method.py): `generate` on the harness's Conditions returns (T, H, W, 3)
  uint8 frames, as many as asked; with the same seed it returns the same frames; `generate_chunks` streams the
  same frames; the options a user may set are declared (typed, with help) and unknown ones are refused.
* `DiffusionMethodContractMixin` (toolkit/harness/diffusion_method.py), a MethodContractMixin for methods that
  sample at the model's size: on a portrait video, frames made at that size land where the video's pixels are.
* `RecipeContractMixin` (toolkit/train/recipe.py): load_config("tiny"), parse_config, build_model (a Trainee; the
  recipe keeps no state), build_dataset on the default (synthetic) shards, and a loss that is a finite scalar with gradients, the same given the same generator.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest
import torch

from toolkit.conditions import colour_batch
from toolkit.harness.method import Conditions, Method, Option
from toolkit.harness.scoring import conditions_for
from toolkit.shards.reader import Shards
from toolkit.train.recipe import Recipe, Trainee, select_stage


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class ModelTesterMixin:
    """Hooks: `make_model(seed)` (a model in eval mode whose weights follow from `seed`) and `make_inputs()`
    (positional arguments of the forward pass); `forward` if the output is not ``model(*inputs)``."""

    def make_model(self, seed: int) -> torch.nn.Module:
        raise NotImplementedError

    def make_inputs(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def forward(self, model: torch.nn.Module, inputs: tuple[Any, ...]) -> torch.Tensor:
        with torch.no_grad():
            return model(*inputs)

    def test_save_pretrained_round_trip_gives_the_same_model(self, tmp_path: Path) -> None:
        model = self.make_model(0)
        model.save_pretrained(tmp_path / "model")
        loaded = type(model).from_pretrained(tmp_path / "model").eval()
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        assert _same_state(loaded, model)
        x = self.make_inputs()
        assert torch.equal(self.forward(loaded, x), self.forward(model, x))

    def test_the_same_seed_gives_the_same_model_and_output(self) -> None:
        x = self.make_inputs()
        a, b = self.make_model(0), self.make_model(0)
        assert _same_state(a, b)
        out = self.forward(a, x)
        assert torch.isfinite(out).all()
        assert torch.equal(out, self.forward(a, x))       # eval mode: no randomness in the forward pass
        assert torch.equal(out, self.forward(b, x))
        assert not torch.equal(out, self.forward(self.make_model(1), x))


class MethodContractMixin:
    """Hooks: `method_class`, the class fixture `make` (what builds the method from its options; default: the
    class) and `n_frames` (how many frames the Conditions ask for). The Conditions are the harness's
    (`conditions_for`) for the first test video of the default shards."""

    method_class: type[Method]
    n_frames: int = 3
    # constructor arguments the commands pass themselves, not user options
    not_options: tuple[str, ...] = ("self", "checkpoint", "device")

    @pytest.fixture(scope="class")
    @classmethod
    def make(cls) -> Callable[..., Method]:
        return cls.method_class

    @pytest.fixture(scope="class")
    @classmethod
    def conditions(cls, default_shards: Path) -> Conditions:
        shards = Shards(default_shards)
        videos = shards.videos
        vid = str(videos[videos.split == "test"].video_id.iloc[0])
        return conditions_for(shards, vid, max_frames=cls.n_frames)[1]

    @classmethod
    def seeded(cls) -> dict[str, Any]:
        return {"seed": 3} if "seed" in cls.method_class.options else {}

    @pytest.fixture(scope="class")
    @classmethod
    def generated(cls, make: Callable[..., Method], conditions: Conditions) -> np.ndarray:
        return make(**cls.seeded()).generate(conditions)

    def test_generate_returns_uint8_frames_of_the_asked_length_and_size(self, generated, conditions) -> None:
        assert isinstance(generated, np.ndarray) and generated.dtype == np.uint8
        assert generated.shape == (conditions.n_frames, conditions.height, conditions.width, 3)

    def test_generate_is_deterministic_and_chunks_stream_the_same_frames(self, make, generated, conditions) -> None:
        streamed = np.concatenate(list(make(**self.seeded()).generate_chunks(conditions)))  # another instance
        assert np.array_equal(streamed, generated)

    def test_options_are_declared_and_unknown_ones_refused(self, make) -> None:
        cls = self.method_class
        assert cls.name and cls.description
        assert isinstance(cls.options, dict)
        for key, option in cls.options.items():
            assert isinstance(option, Option) and option.type in (int, float, str, bool) and option.help, key
        params = inspect.signature(cls.__init__).parameters
        takes = {n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        assert set(cls.options) <= takes, "every declared option is a constructor argument"
        assert takes - set(self.not_options) <= set(cls.options), "every constructor argument is declared"
        with pytest.raises(ValueError, match="no option 'no_such_option'"):
            cls.parse_options([("no_such_option", "1")])
        assert isinstance(make(**self.seeded()).config(), dict)


def portrait(cond: Conditions) -> Conditions:
    """A portrait video from the (square) test video: the centre 3/4 of its width (an aspect like UBC-Fashion's,
    which no small multiple of 16 has), keypoints moved along."""
    w = cond.width * 3 // 4
    x0 = (cond.width - w) // 2

    def crop(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a[..., x0:x0 + w, :])

    def shift(kp: np.ndarray | None) -> np.ndarray | None:
        if kp is None:
            return None
        kp = kp.copy()
        kp[..., 0] -= x0
        return kp

    return dataclasses.replace(cond, width=w, reference=crop(cond.reference), iuv=crop(cond.iuv),
                               reference_iuv=crop(cond.reference_iuv), keypoints=shift(cond.keypoints),
                               reference_keypoints=shift(cond.reference_keypoints))


class DiffusionMethodContractMixin(MethodContractMixin):
    """The method contract, and the geometry of sampling at the model's size: hooks as MethodContractMixin's."""

    def test_frames_made_at_the_model_size_land_where_the_videos_pixels_are(self, make, conditions) -> None:
        """With a pipeline that returns the reference it is given as every frame, a portrait video's frames come
        back as its reference: the video is resized to the model's size and the frames back (a centre crop
        stretched back would shift every pixel off the person)."""
        cond = portrait(conditions)
        method = make(**self.seeded())
        method.size = (32, 32)  # a trained area the shift shows at (the stand-ins train at 16 or 32)

        def echo(reference: torch.Tensor, *args: Any, **kwargs: Any):
            yield np.repeat(np.moveaxis(reference.numpy(), 0, -1)[None], cond.n_frames, axis=0)

        method.pipeline.iter_frames = echo
        frames = method.generate(cond)
        assert frames.shape == (cond.n_frames, cond.height, cond.width, 3)
        # compared on a coarse grid, about the model's: the round trip through a small size blurs, a shift moves
        grid = (cond.width // 16, cond.height // 16)
        coarse = [cv2.resize(a, grid, interpolation=cv2.INTER_AREA).astype(np.float32)
                  for a in (frames[0], cond.reference)]
        error = np.abs(coarse[0] - coarse[1]).mean()
        shift = np.abs(coarse[1][1:, 1:] - coarse[1][:-1, :-1]).mean()
        assert error < shift / 4, f"{error:.1f} levels off the video's reference (a grid cell's shift: {shift:.1f})"


class RecipeContractMixin:
    """Hooks: `recipe_class`, `stage` (for staged recipes) and the static method `shrink(config)`, which makes the tiny config
    CPU-small (sizes only). The dataset is built on the default (synthetic) shards."""

    recipe_class: type[Recipe]
    config_name: str = "tiny"
    stage: int | None = None

    @staticmethod
    def shrink(config: dict[str, Any]) -> dict[str, Any]:
        return config

    @pytest.fixture(scope="class")
    @classmethod
    def setup(cls, default_shards: Path) -> tuple[Recipe, Any, Any]:
        recipe = cls.recipe_class()
        config = cls.shrink(recipe.load_config(cls.config_name))
        config = recipe.parse_config(select_stage(config, cls.stage, recipe.name or "recipe"))
        trainee = recipe.build_model(config)        # the model and what the loss needs besides it (codec, ...)
        assert isinstance(trainee, Trainee) and vars(recipe) == {}, "a recipe keeps no state"
        dataset = recipe.build_dataset(default_shards, config)
        return recipe, config, (trainee.model, trainee.needs, dataset)

    def batch(self, dataset: Any) -> dict[str, Any]:
        return colour_batch(torch.utils.data.default_collate([dataset[0]]))

    def loss(self, recipe: Recipe, model: torch.nn.Module, needs: Any, batch: dict[str, Any],
             seed: int) -> torch.Tensor:
        torch.manual_seed(seed)                      # as the loop seeds each step (dropout)
        return recipe.loss(model, batch, torch.Generator().manual_seed(seed), needs)

    def test_tiny_config_loads_with_a_train_table(self) -> None:
        recipe = self.recipe_class()
        config = recipe.load_config(self.config_name)
        assert isinstance(config.get("train"), dict)
        with pytest.raises(FileNotFoundError, match="no config 'no-such-config'"):
            recipe.load_config("no-such-config")

    def test_model_and_dataset_keep_the_loops_contract(self, setup) -> None:
        recipe, config, (model, needs, dataset) = setup
        assert callable(model.save_pretrained) and callable(type(model).from_pretrained)
        assert model.config is not None
        assert len(dataset) > 0
        item, again = dataset[0], dataset[0]
        assert isinstance(item, dict) and item.keys() == again.keys()
        for key, value in item.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, again[key]), key
        assert any(p.requires_grad for p in recipe.trainable_parameters(model, needs))

    def test_loss_is_a_finite_scalar_with_gradients_and_deterministic(self, setup) -> None:
        recipe, config, (model, needs, dataset) = setup
        batch = self.batch(dataset)
        trainable = list(recipe.trainable_parameters(model, needs))
        model.train()
        model.zero_grad(set_to_none=True)
        loss = self.loss(recipe, model, needs, batch, seed=0)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in trainable if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            again, other = (self.loss(recipe, model, needs, batch, seed=0),
                            self.loss(recipe, model, needs, batch, seed=1))
        assert torch.equal(loss.detach(), again)
        assert not torch.equal(again, other)
