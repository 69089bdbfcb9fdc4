"""One interface for every pose, DensePose and person-mask annotator, a registry by name, and their status.

The `prepare` pipeline asks for a backend by name and calls it once per chunk of
one video's frames. Pose backends return keypoints in the 133-point schema of
:mod:`toolkit.keypoints`; DensePose backends return an IUV image per
frame; mask backends a 0 / 255 person mask per frame. Optional backends (their libraries or weights missing) raise
:class:`BackendUnavailable` with the reason and the exact fix, before any video
is touched.
"""

from __future__ import annotations

import sys
from typing import Protocol, runtime_checkable

import numpy as np

from toolkit.keypoints import N_KEYPOINTS
from toolkit.plugins import Registry


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; the message names it, says why, and gives the fix."""


@runtime_checkable
class PoseBackend(Protocol):
    """(T, H, W, 3) uint8 RGB frames of one video -> (T, 133, 3) float32 keypoints in pixels."""

    name: str

    def version(self) -> str:
        """Backend, library versions and weights sha256 prefix, for the shard manifest."""
        ...

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        ...


@runtime_checkable
class DenseposeBackend(Protocol):
    """(T, H, W, 3) uint8 RGB frames -> (T, H, W, 3) uint8 IUV (I part 0..24, U and V 0..255)."""

    name: str

    def version(self) -> str:
        """Backend, library versions and weights sha256 prefix, for the shard manifest."""
        ...

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        ...


@runtime_checkable
class MaskBackend(Protocol):
    """(T, H, W, 3) uint8 RGB frames -> (T, H, W) uint8 person masks, 0 background / 255 person."""

    name: str

    def version(self) -> str:
        """Backend, library versions and model sha256 prefix, for the shard manifest."""
        ...

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        ...


def check_frames(frames: np.ndarray, backend: str) -> np.ndarray:
    """Validate a (T, H, W, 3) uint8 frame stack; the error names the backend and the problem."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{backend}: expected frames of shape (T, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{backend}: expected uint8 RGB frames, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def pick_person(people: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Choose the one person a pose backend reports when several are found.

    The main subject of an animation clip is the largest person, so the person whose
    confident body points (score > threshold) span the largest box wins; a person
    with fewer than two confident body points counts as area 0, and ties go to the
    higher mean body score. Returns (133, 3); zeros when `people` is empty.
    """
    people = np.asarray(people, dtype=np.float32)
    if people.ndim != 3 or people.shape[1:] != (N_KEYPOINTS, 3):
        raise ValueError(f"expected (N, {N_KEYPOINTS}, 3) people, got {people.shape}")
    if len(people) == 0:
        return np.zeros((N_KEYPOINTS, 3), dtype=np.float32)
    body = people[:, :17]
    areas, means = [], []
    for person in body:
        ok = person[:, 2] > threshold
        if ok.sum() >= 2:
            span = person[ok, :2].max(axis=0) - person[ok, :2].min(axis=0)
            areas.append(float(span[0] * span[1]))
        else:
            areas.append(0.0)
        means.append(float(person[:, 2].mean()))
    best = max(range(len(people)), key=lambda i: (areas[i], means[i]))
    return people[best].copy()


# The backends by name, each a "module:factory" spec imported only when asked for, so importing this file never
# pulls in onnxruntime, mediapipe, mmpose or detectron2. "source" is the ground truth a synthetic source ships;
# masks a source ships (`toolkit prepare --mask source`) need no backend.
POSE_BACKENDS = Registry("pose backend", {
    "mediapipe": "toolkit.annotate.pose_mediapipe:MediapipePose",
    "dwpose": "toolkit.annotate.pose_dwpose:DWPose",
    "mmpose": "toolkit.annotate.pose_mmpose:MMPoseWholebody",
    "synthetic": "toolkit.annotate.ground_truth:GroundTruthPose",
}, aliases={"source": "synthetic"})
DENSEPOSE_BACKENDS = Registry("densepose backend", {
    "densepose": "toolkit.annotate.densepose_detectron2:Detectron2Densepose",
    "synthetic": "toolkit.annotate.ground_truth:GroundTruthDensepose",
}, aliases={"source": "synthetic", "detectron2": "densepose"})
MASK_BACKENDS = Registry("mask backend", {
    "mediapipe": "toolkit.annotate.mask_mediapipe:MediapipeMask",
})


def get_pose_backend(name: str, **options) -> PoseBackend:
    """Build the pose backend `name` ("mediapipe", "dwpose", "mmpose", "synthetic"/"source").

    Raises BackendUnavailable when it cannot run here (missing library, environment or weights).
    """
    return POSE_BACKENDS.get(name)(**options)


def get_densepose_backend(name: str, **options) -> DenseposeBackend:
    """Build the DensePose backend `name` ("densepose"/"detectron2", "synthetic"/"source")."""
    return DENSEPOSE_BACKENDS.get(name)(**options)


def get_mask_backend(name: str, **options) -> MaskBackend:
    """Build the person-mask backend `name` ("mediapipe"); `pose=` a MediapipePose shares its worker.

    Raises BackendUnavailable when it cannot run here (the mediapipe environment missing).
    """
    return MASK_BACKENDS.get(name)(**options)


def backend_status() -> list[dict]:
    """Whether each backend can run here, and if not, why and how to fix it.

    Cheap: checks libraries, environments and cached weights without loading models (each backend's module has
    a ``status()`` function). Returns [{kind, name, available, reason}] for `toolkit weights status` and the docs.
    """
    rows = []
    for kind, registry in (("pose", POSE_BACKENDS), ("densepose", DENSEPOSE_BACKENDS), ("mask", MASK_BACKENDS)):
        for name in registry:
            try:
                available, reason = sys.modules[registry.get(name).__module__].status()
            except Exception as exc:  # a broken optional install must not break the status table
                available, reason = False, f"{type(exc).__name__}: {exc}"
            rows.append({"kind": kind, "name": name, "available": bool(available), "reason": reason})
    return rows
