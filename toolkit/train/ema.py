"""`EMA`: an exponential moving average of the trained weights, the weights inference uses.

Shadows are float32 copies of the trainable parameters only (frozen ones never change), keyed
by parameter name so they save as safetensors and load into any copy of the model. Under FSDP
(fsdp.py) the parameters are sharded and so is each shadow: every process averages its own piece.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from toolkit.train.fsdp import shard_like


@contextlib.contextmanager
def swapped(params: Mapping[str, nn.Parameter], values: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Within the block each of `params` holds the tensor of its name in `values`; afterwards its own, bit for bit."""
    with torch.no_grad():
        saved = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.copy_(values[n])
    try:
        yield
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[n])


class EMA:
    """shadow <- d * shadow + (1 - d) * weight after each optimizer step.

    d = min(decay, (1 + updates) / (10 + updates)): the usual warm-up, so the average is not
    dominated by the random initialisation in short runs. decay 0 turns EMA off (the
    "EMA weights" are then the weights themselves).
    """

    def __init__(self, model: nn.Module, parameters: Iterable[nn.Parameter], decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        names = {id(p): n for n, p in model.named_parameters()}
        self.params: dict[str, nn.Parameter] = {}
        for p in parameters:
            if id(p) not in names:
                raise ValueError("trainable_parameters returned a tensor that is not a parameter of the model")
            self.params[names[id(p)]] = p
        self.decay = decay
        self.updates = 0
        self.shadow = {n: p.detach().float().clone() for n, p in self.params.items()} if decay > 0 else {}

    @property
    def enabled(self) -> bool:
        return self.decay > 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (call after each optimizer step)."""
        if not self.enabled:
            return
        d = self.current_decay()
        for n, p in self.params.items():
            self.shadow[n].lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadow weights by parameter name (the model's own weights when EMA is off)."""
        if not self.enabled:
            return {n: p.detach().float().clone() for n, p in self.params.items()}
        return {n: t.clone() for n, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        """Load full shadow weights by name (each process keeps its piece of a sharded one)."""
        if not self.enabled:
            self.updates = updates
            return
        if set(state) != set(self.shadow):
            missing, extra = sorted(set(self.shadow) - set(state)), sorted(set(state) - set(self.shadow))
            raise ValueError(f"EMA weights do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
        for n, t in state.items():
            self.shadow[n].copy_(shard_like(t, self.shadow[n]))
        self.updates = updates

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model holds the EMA weights; afterwards its own, bit for bit."""
        if not self.enabled:
            yield
            return
        with swapped(self.params, self.shadow):
            yield
