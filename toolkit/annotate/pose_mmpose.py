"""The `mmpose` pose backend: an MMPose whole-body model, for machines where MMPose is installed.

Optional: mmpose needs mmcv 2.x built for the local torch and CUDA, which does not
build on every machine (not on the CPU machines this project is developed on). On
a CUDA machine install it with OpenMMLab's installer::

    pip install -U openmim
    mim install mmengine "mmcv>=2.0.1" "mmdet>=3.1.0" "mmpose>=1.1.0"

The backend runs ``mmpose.apis.MMPoseInferencer`` (default alias ``wholebody``,
RTMPose-m on COCO-WholeBody with an RTMDet person detector). MMPose resolves the
alias to checkpoints it downloads into its own cache on first use and loads with its
own checkpoint code, outside the toolkit's weights registry; offline, pass ``pose2d``
(config) and ``pose2d_weights`` / ``det_model`` / ``det_weights`` paths.
Its documented output, ``PoseDataSample.pred_instances`` with ``keypoints``
(N, 133, 2) and ``keypoint_scores`` (N, 133) in COCO-WholeBody order (the order
of our schema), is converted by :func:`pose_sample_to_people`, and the largest
person is kept (:func:`pick_person`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from toolkit.annotate.backends import BackendUnavailable, check_frames, pick_person
from toolkit.keypoints import N_KEYPOINTS

INSTALL = ('pip install -U openmim && mim install mmengine "mmcv>=2.0.1" "mmdet>=3.1.0" "mmpose>=1.1.0" '
           "(needs a CUDA machine where mmcv builds)")


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def pose_sample_to_people(sample: Any) -> np.ndarray:
    """MMPose ``PoseDataSample`` (or anything with ``pred_instances.keypoints`` and
    ``.keypoint_scores``) -> (N, 133, 3) keypoints in pixels with scores clipped to [0, 1].

    A point with a score of 0 or less is absent (x = y = 0).
    """
    instances = getattr(sample, "pred_instances", None)
    if instances is None or not hasattr(instances, "keypoints"):
        raise ValueError("mmpose: result has no pred_instances.keypoints")
    kp = _numpy(instances.keypoints)
    scores = _numpy(instances.keypoint_scores) if hasattr(instances, "keypoint_scores") else None
    if kp.size == 0:
        return np.zeros((0, N_KEYPOINTS, 3), dtype=np.float32)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (N_KEYPOINTS, 2):
        raise ValueError(f"mmpose: expected keypoints of shape (N, {N_KEYPOINTS}, 2) from a whole-body model, "
                         f"got {kp.shape}")
    if scores is None:
        raise ValueError("mmpose: result has no pred_instances.keypoint_scores")
    scores = scores.reshape(kp.shape[:2])
    people = np.concatenate([kp, np.clip(scores, 0.0, 1.0)[..., None]], axis=-1).astype(np.float32)
    people[people[..., 2] <= 0] = 0.0
    return people


def status() -> tuple[bool, str]:
    """Available when mmpose is importable (its weights are resolved by mmpose itself)."""
    if importlib.util.find_spec("mmpose") is None:
        return False, f"mmpose is not installed: {INSTALL}"
    return True, "mmpose importable (weights resolved by mmpose's own cache)"


class MMPoseWholebody:
    """An MMPose whole-body top-down model (default alias ``wholebody``) as a pose backend."""

    name = "mmpose"

    def __init__(self, pose2d: str = "wholebody", pose2d_weights: str | None = None,
                 det_model: str | None = None, det_weights: str | None = None, device: str | None = None) -> None:
        if importlib.util.find_spec("mmpose") is None:
            raise BackendUnavailable(f"pose backend 'mmpose' is unavailable: mmpose is not installed; {INSTALL}")
        try:
            import mmpose
            from mmpose.apis import MMPoseInferencer
        except Exception as exc:  # a half-installed mmcv fails here with many error types
            raise BackendUnavailable(f"pose backend 'mmpose' is unavailable: importing mmpose failed "
                                     f"({type(exc).__name__}: {exc}); {INSTALL}") from None
        self._mmpose_version = mmpose.__version__
        self._model = pose2d
        self.inferencer = MMPoseInferencer(pose2d=pose2d, pose2d_weights=pose2d_weights, det_model=det_model,
                                           det_weights=det_weights, device=device)

    def version(self) -> str:
        return f"mmpose={self._mmpose_version} pose2d={self._model}"

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        out = np.zeros((len(frames), N_KEYPOINTS, 3), dtype=np.float32)
        for t, frame in enumerate(frames):
            # MMPose reads arrays as BGR, like images loaded with OpenCV.
            result = next(self.inferencer(np.ascontiguousarray(frame[..., ::-1]), return_datasamples=True))
            samples = result["predictions"]
            sample = samples[0] if isinstance(samples, (list, tuple)) else samples
            out[t] = pick_person(pose_sample_to_people(sample))
        return out
