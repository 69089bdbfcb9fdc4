"""The method contract: what the harness gives a method and what it takes back.

The harness, not the method, decides the inputs: for each test video it hands a
method the reference image (the video's first frame), the driving conditions
(keypoints and IUV maps where the shards have them, with their renders made by
:mod:`toolkit.conditions`, the same builder training uses) and the number of
frames; the method only generates. This module imports no method: methods are
plug-ins (:mod:`toolkit.harness.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator

import numpy as np

from toolkit import conditions


@dataclass
class Conditions:
    """What a method is given for one test video (all arrays at the evaluation frame size)."""

    video_id: str
    n_frames: int
    height: int
    width: int
    fps: float
    reference: np.ndarray                         # (H, W, 3) uint8: the video's first frame
    reference_keypoints: np.ndarray | None        # (133, 3)
    keypoints: np.ndarray | None                  # (T, 133, 3) driving keypoints
    iuv: np.ndarray | None = None                 # (T, H, W, 3) uint8 driving IUV
    reference_iuv: np.ndarray | None = None       # (H, W, 3) uint8
    ground_truth: np.ndarray | None = None        # (T, H, W, 3): only for methods with uses_ground_truth

    def _need_keypoints(self) -> None:
        if self.keypoints is None or self.reference_keypoints is None:
            raise ValueError(f"{self.video_id}: the shards have no keypoints (prepared with --pose none)")

    def pose_renders(self, height: int | None = None, width: int | None = None,
                     **style: Any) -> np.ndarray:
        """Pose renders of the driving keypoints, (T, h, w, 3) uint8 (default: the frame size)."""
        self._need_keypoints()
        return conditions.pose_images(self.keypoints, (self.height, self.width),
                                      (height or self.height, width or self.width), **style)

    def reference_pose_render(self, height: int | None = None, width: int | None = None,
                              **style: Any) -> np.ndarray:
        """Pose render of the reference keypoints, (h, w, 3) uint8."""
        self._need_keypoints()
        return conditions.pose_images(self.reference_keypoints[None], (self.height, self.width),
                                      (height or self.height, width or self.width), **style)[0]

    def densepose_renders(self, height: int | None = None, width: int | None = None,
                          stretch: bool = False) -> np.ndarray:
        """MagicAnimate-style DensePose renders of the driving IUV, (T, h, w, 3) uint8 (centre-cropped to the
        size's aspect, or with `stretch` resized to it)."""
        if self.iuv is None:
            raise ValueError(f"{self.video_id}: the shards have no IUV maps (prepared with --densepose none)")
        return conditions.densepose_images(self.iuv, (height or self.height, width or self.width), stretch=stretch)


TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
TYPE_NAMES = {int: "an integer", float: "a number", str: "text", bool: "true or false"}


@dataclass(frozen=True)
class Option:
    """A setting a method takes as ``--method-option KEY=VALUE``: its type (int, float, str or bool), what it
    does, and for text the values allowed (none: any)."""

    type: type
    help: str
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """`int: sampling steps`, or the choices for text."""
        kind = "|".join(self.choices) if self.choices else self.type.__name__
        return f"{kind}: {self.help}"

    def parse(self, key: str, text: str) -> Any:
        """`text` as this option's type; a ValueError names the option and what it takes."""
        problem = f"--method-option {key}={text}: {key} takes {TYPE_NAMES[self.type]}"
        if self.type is bool:
            if text.strip().lower() not in TRUE + FALSE:
                raise ValueError(problem)
            return text.strip().lower() in TRUE
        try:
            value = self.type(text)
        except ValueError:
            raise ValueError(problem) from None
        if self.choices and value not in self.choices:
            raise ValueError(f"--method-option {key}={text}: {key} is one of {', '.join(self.choices)}")
        return value


class MethodUnavailable(RuntimeError):
    """The method cannot run here (e.g. it needs a checkpoint or weights that are not present); says what to do."""


class Method:
    """Base class: generate (T, H, W, 3) uint8 frames from Conditions.

    Class attributes describe the method for reports: `paper` and `code` are URLs
    (empty when there is none). `config()` and `checkpoint_sha256()` go into each
    run's provenance so a score can be traced to the exact model that made it.
    `options` declares the constructor arguments a user may set with
    ``--method-option KEY=VALUE`` (besides `checkpoint` and `device`, which the
    commands pass themselves); :meth:`parse_options` checks and types them.
    """

    name: str = ""
    description: str = ""
    paper: str = ""
    code: str = ""
    uses_ground_truth: bool = False    # only sanity rows (gt-oracle) may see the answers
    # Set by `toolkit animate` to show sampling progress: a method that samples in steps may call it as
    # progress(done, planned): `planned` more model evaluations at the start of a sampling pass, `done` after them.
    progress: Callable[[int, int], None] | None = None
    options: ClassVar[dict[str, Option]] = {}

    @classmethod
    def options_text(cls) -> str:
        """The declared options as one line, for error messages and --help."""
        if not cls.options:
            return "none"
        return "; ".join(f"{key} ({option.describe()})" for key, option in cls.options.items())

    @classmethod
    def parse_options(cls, pairs: Iterable[tuple[str, str]], label: str | None = None) -> dict[str, Any]:
        """(KEY, VALUE text) pairs -> constructor arguments, each KEY one of `options` and its value parsed to the
        option's type; an unknown or repeated key or a wrong value is a ValueError that names it."""
        label = label or cls.name or cls.__name__
        out: dict[str, Any] = {}
        for key, text in pairs:
            if key not in cls.options:
                raise ValueError(f"--method-option {key}={text}: method {label} has no option {key!r}; "
                                 f"its options: {cls.options_text()}")
            if key in out:
                raise ValueError(f"--method-option {key}: given twice for method {label}")
            out[key] = cls.options[key].parse(key, text)
        return out

    def generate(self, cond: Conditions) -> np.ndarray:
        raise NotImplementedError

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        """The frames of `generate` as (k, H, W, 3) chunks in order; methods that can stream a long video
        override this, so `toolkit animate` writes it without holding every frame."""
        yield self.generate(cond)

    def config(self) -> dict[str, Any]:
        """The settings that determine the output (recorded in provenance)."""
        return {}

    def checkpoint_sha256(self) -> str | None:
        """sha256 of the weights the method runs, or None for methods without weights."""
        return None
