"""The one interface of every metric: ``update`` / ``compute`` / ``reset``, and ``state`` / ``merge`` to combine runs.

In the manner of torchmetrics' ``Metric``, simpler: a class declares its accumulators in ``states`` (name -> the
empty value) and the base resets, copies and merges them by type -- numbers add, lists concatenate (merged
lists go after this one's), dicts add key by key, booleans ``or``. A ``state()`` is plain Python and numpy values
(picklable), so one process can score some videos, send its state, and another ``merge`` it: the Ray executor
does this per video, in the split's order, so every accumulator holds what one pass would have.

The harness scores every metric of a protocol card the same way: ``from_protocol`` builds a metric with the
card's settings, ``update_video`` gives it one whole video (a :class:`Video`) and returns the per-frame values
a frame metric reports (none for a distribution metric). Each metric keeps its own ``update`` (the arguments
its data needs) and a pure functional twin that does the arithmetic.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Video:
    """One video as the harness scores it: the scored frames of the prediction and of the ground truth
    ((T, H, W, 3) uint8), the person region ((T, H, W) bool, or None: whole frames only) and the video's id."""

    video_id: str
    pred: np.ndarray
    target: np.ndarray
    region: np.ndarray | None = None


class Metric(ABC):
    """A metric that accumulates over ``update`` calls; see the module docstring.

    Subclasses set ``name`` (how the harness keys it), ``states`` (the accumulators and their empty values),
    ``needs_weights`` (whether it runs a pretrained network, so a run records the file's sha256 in
    ``weights_sha256``), and implement ``update``, ``compute`` and ``update_video``.
    """

    name: ClassVar[str] = ""
    states: ClassVar[dict[str, Any]] = {}
    needs_weights: ClassVar[bool] = False
    weights_sha256: str = ""

    @classmethod
    def from_protocol(cls, protocol: Any, device: str = "cpu") -> Metric:
        """The metric with a protocol card's settings (``protocol``: a ``toolkit.harness.protocols.Protocol``;
        ``base`` is the computation, ``disco`` or ``standard``). Override where the card sets more."""
        return cls(profile=protocol.base, device=device)

    def reset(self) -> None:
        """Forget everything accumulated (every declared state back to its empty value)."""
        for key, empty in self.states.items():
            setattr(self, key, copy.deepcopy(empty))

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> Any:
        """Add data (the arguments are the metric's own)."""

    @abstractmethod
    def compute(self) -> Any:
        """The value over everything accumulated."""

    @abstractmethod
    def update_video(self, video: Video) -> dict[str, np.ndarray]:
        """Add one whole video, as the harness gives it to every metric; return the per-frame values this
        metric reports, by name ({} for a distribution metric, whose value is ``compute()``'s)."""

    def state(self) -> dict[str, Any]:
        """What ``update`` has accumulated (copies of the containers; arrays are shared), to ``merge`` elsewhere."""
        return {key: copy.copy(getattr(self, key)) for key in self.states}

    def merge(self, state: dict[str, Any] | Metric) -> None:
        """Add another instance's ``state()`` (or the instance), as if its updates had been made here after
        this one's."""
        if isinstance(state, Metric):
            state = state.state()
        if set(state) != set(self.states):
            raise ValueError(f"{type(self).__name__}.merge: a state with {sorted(state)}, expected "
                             f"{sorted(self.states)}")
        for key in self.states:
            setattr(self, key, _merged(getattr(self, key), state[key], f"{type(self).__name__}.{key}"))


def _merged(mine: Any, theirs: Any, where: str) -> Any:
    """One accumulator combined with another of the same kind (see the module docstring)."""
    if isinstance(mine, bool):
        return mine or bool(theirs)
    if isinstance(mine, list):
        return mine + list(theirs)
    if isinstance(mine, dict):
        out = dict(mine)
        for key, value in theirs.items():
            out[key] = _merged(out[key], value, f"{where}[{key!r}]") if key in out else value
        return out
    if isinstance(mine, (int, float)):
        return mine + theirs
    raise TypeError(f"{where}: no merge rule for {type(mine).__name__}")
