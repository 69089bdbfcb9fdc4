"""The `mediapipe` mask backend: person masks from MediaPipe Holistic's segmentation.

Holistic's pose landmark model also outputs a person segmentation (``enable_segmentation``):
a map of the probability of person in [0, 1] at the frame's size. The mask is that map
above THRESHOLD. The segmentation comes out of the same pass as the landmarks, so a
backend built on the process's `mediapipe` pose backend returns keypoints and masks from
one worker call (`keypoints_and_masks`), at little more than the cost of the keypoints;
built alone it runs its own worker, and costs what the pose backend costs.

THRESHOLD 0.5: on the real UBC-Fashion fixture clip (white studio background, all 346
frames at 256x334) the mask's IoU with the white-background oracle of the tests
(tests/helpers/person_on_white.py) was min 0.889 / mean 0.947 at 0.5, min 0.864 / mean
0.921 at 0.3 and min 0.897 / mean 0.948 at 0.7: the map is nearly binary, and lower cuts
take in more of the halo it already has along the body's outline.
"""

from __future__ import annotations

import os

import numpy as np

from toolkit.annotate.backends import check_frames
from toolkit.annotate import pose_mediapipe
from toolkit.annotate.pose_mediapipe import MediapipePose, holistic_to_wholebody

THRESHOLD = 0.5


def status() -> tuple[bool, str]:
    """Available where the `mediapipe` pose backend is: the same environment runs both."""
    return pose_mediapipe.status()


def binarize(probability: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Segmentation probabilities (uint8, probability times 255) -> 0 / 255 uint8 masks."""
    cut = np.float32(threshold) * 255.0
    return np.where(np.asarray(probability, np.float32) > cut, 255, 0).astype(np.uint8)


class MediapipeMask:
    """Person masks (T, H, W) uint8, 0 background / 255 person, from MediaPipe Holistic's segmentation.

    `pose` is the MediapipePose to run through (sharing its worker and its tracking mode); without one the
    backend starts its own. A frame where Holistic finds no person gets an all-background mask.
    """

    name = "mediapipe"

    def __init__(self, pose: MediapipePose | None = None, threshold: float = THRESHOLD,
                 python: str | os.PathLike | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"mask threshold must lie strictly between 0 and 1, got {threshold}")
        self.threshold = float(threshold)
        self._owns_pose = pose is None
        self.pose = pose if pose is not None else MediapipePose(python=python, kind="mask")

    def version(self) -> str:
        """What made the masks: the segmentation, its threshold and the Holistic run it comes from."""
        return f"segmentation threshold={self.threshold:g} from {self.pose.version()}"

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> (T, H, W) uint8 probability of person times 255."""
        return self.pose.run(frames, segmentation=True)[1]

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        return binarize(self.probabilities(frames), self.threshold)

    def keypoints_and_masks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pose backend's (T, 133, 3) keypoints and the masks, from one Holistic pass."""
        frames = check_frames(frames, self.name)
        raw, seg = self.pose.run(frames, segmentation=True)
        height, width = frames.shape[1:3]
        return holistic_to_wholebody(raw, width, height), binarize(seg, self.threshold)

    def close(self) -> None:
        """Stop the worker, if this backend started it."""
        if self._owns_pose:
            self.pose.close()
