"""A toy recipe for the training-loop tests: a small MLP learning a fixed linear map from random vectors.

It uses everything the loop promises a recipe: dropout (torch's global RNG), input noise and
condition dropout from the step's generator, a dataset with `set_epoch`, save_pretrained /
from_pretrained in safetensors, and gradient checkpointing. TOY_STEP_SLEEP (seconds) slows each
step so a test can kill a run in the middle. TOY_SEEN_DIR (a folder) makes each process append the item
indices of each of its batches to seen-<rank>.jsonl, so a test can check which process saw what, and write
params-<rank>.json once: the kinds of the model's parameters, how many elements the process holds, and the
classes of its FSDP units.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn
from torch.utils.checkpoint import checkpoint

from toolkit.harness.method import Conditions, Method
from toolkit.train import Recipe, Trainee


class ToyModel(nn.Module):
    """An MLP; with `spare`, also a trainable layer the loss never uses (as UniAnimate's image projection)."""

    def __init__(self, dim: int = 8, hidden: int = 32, dropout: float = 0.1, spare: bool = False):
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "dropout": dropout, "spare": spare}
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.spare = nn.Linear(dim, dim) if spare else None
        self.gradient_checkpointing = False

    def enable_gradient_checkpointing(self) -> None:
        self.gradient_checkpointing = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self.net, x, use_reentrant=False)
        return self.net(x)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.config))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> ToyModel:
        folder = Path(folder)
        model = cls(**json.loads((folder / "config.json").read_text()))
        load_model(model, str(folder / "model.safetensors"))
        return model


class ToyData(torch.utils.data.Dataset):
    """Items x -> y = x @ A; each epoch jitters x a little (deterministically per (seed, epoch, index))."""

    def __init__(self, n_items: int, dim: int, seed: int):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((n_items, dim)).astype(np.float32)
        self.a = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.x)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, Any]:
        jitter = np.random.default_rng([self.seed, self.epoch, i]).standard_normal(self.x.shape[1]) * 0.01
        x = (self.x[i] + jitter).astype(np.float32)
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(x @ self.a), "index": i}


class ToyRecipe(Recipe):
    name = "toy"

    def build_model(self, config: dict[str, Any]) -> Trainee:
        return Trainee(ToyModel(**config["model"]), needs=config["loss"])

    def build_dataset(self, shards: Path, config: dict[str, Any]) -> ToyData:
        return ToyData(config["data"]["n_items"], config["model"]["dim"], config["data"]["seed"])

    def loss(self, model: nn.Module, batch: dict[str, Any], generator: torch.Generator,
             needs: dict[str, Any]) -> torch.Tensor:
        x = batch["x"]
        noise = torch.randn(x.shape, generator=generator, device=x.device) * needs["noise_std"]
        keep = (torch.rand((x.shape[0], 1), generator=generator, device=x.device) >= needs["p_drop"]).float()
        seen = os.environ.get("TOY_SEEN_DIR")
        if seen:
            rank = os.environ.get("RANK", "0")
            with open(Path(seen) / f"seen-{rank}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps([int(i) for i in batch["index"]]) + "\n")
            held = Path(seen) / f"params-{rank}.json"
            if not held.exists():
                params = list(model.parameters())
                local = [getattr(p, "to_local", lambda p=p: p)() for p in params]
                units = sorted(type(m).__name__ for m in model.modules() if type(m).__name__.startswith("FSDP"))
                held.write_text(json.dumps({"kinds": sorted({type(p).__name__ for p in params}),
                                            "elements": sum(t.numel() for t in local), "fsdp_units": units}))
        sleep = float(os.environ.get("TOY_STEP_SLEEP", "0"))
        if sleep:
            time.sleep(sleep)
        return nn.functional.mse_loss(model((x + noise) * keep), batch["y"] * keep)


class OtherToyRecipe(ToyRecipe):
    """The same toy under another name: a checkpoint of one must not be resumed as the other."""

    name = "other-toy"


class ToyAnimator(Method):
    """The toy as a harness method, so a toy run can validate (method=TOY_ANIMATOR): every frame is the reference
    shifted by the trained model's mean first-layer weight, so the samples follow the weights."""

    name = "toy-animator"

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", steps: int | None = None):
        self.model = ToyModel.from_pretrained(Path(checkpoint) / "model")

    def generate(self, cond: Conditions) -> np.ndarray:
        shift = float(self.model.net[0].weight.detach().mean()) * 1000
        frames = np.repeat(cond.reference[None].astype(np.float32), cond.n_frames, axis=0) + shift
        return np.clip(frames, 0, 255).astype(np.uint8)
