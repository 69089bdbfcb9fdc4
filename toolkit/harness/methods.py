"""The method registry: what `toolkit eval --method NAME` can run.

The harness, not the method, decides the inputs: for each test video it hands a
method the reference image (the video's first frame), the driving conditions
(keypoints, their pose renders, IUV maps and their DensePose renders where the
shards have them) and the number of frames; the method only generates.

Adding a method is one class with a `generate` method and one line in METHODS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


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

    def pose_renders(self) -> np.ndarray:
        """DWPose-style renders of the driving keypoints, (T, H, W, 3) uint8."""
        if self.keypoints is None:
            raise ValueError(f"{self.video_id}: the shards have no keypoints (prepared with --pose none)")
        from toolkit.annotate.render import render_pose

        return np.stack([render_pose(k, self.height, self.width) for k in self.keypoints])

    def densepose_renders(self) -> np.ndarray:
        """MagicAnimate-style DensePose renders of the driving IUV, (T, H, W, 3) uint8."""
        if self.iuv is None:
            raise ValueError(f"{self.video_id}: the shards have no IUV maps (prepared with --densepose none)")
        from toolkit.annotate.render import render_densepose

        return np.stack([render_densepose(x) for x in self.iuv])


class Method:
    """Base class: generate (T, H, W, 3) uint8 frames from Conditions."""

    name: str = ""
    description: str = ""
    uses_ground_truth: bool = False    # only sanity rows (gt-oracle) may see the answers

    def generate(self, cond: Conditions) -> np.ndarray:
        raise NotImplementedError

    def version(self) -> str:
        return "1"


class ReferenceCopy(Method):
    name = "reference-copy"
    description = "repeats the reference frame: the floor every method must beat"

    def generate(self, cond: Conditions) -> np.ndarray:
        return np.repeat(cond.reference[None], cond.n_frames, axis=0)


class GroundTruthOracle(Method):
    name = "gt-oracle"
    description = "returns the ground truth: perfect scores, a sanity row for the harness itself"
    uses_ground_truth = True

    def generate(self, cond: Conditions) -> np.ndarray:
        if cond.ground_truth is None:
            raise ValueError("gt-oracle needs the ground truth frames")
        return cond.ground_truth.copy()


def _pose_warp() -> type[Method]:
    from toolkit.harness.pose_warp import PoseWarp

    return PoseWarp


# name -> zero-argument loader of the Method class (so optional heavy methods import lazily)
METHODS: dict[str, Callable[[], type[Method]]] = {
    "reference-copy": lambda: ReferenceCopy,
    "gt-oracle": lambda: GroundTruthOracle,
    "pose-warp": _pose_warp,
}


def get_method(name: str, **options) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(METHODS))}")
    return METHODS[name]()(**options)
