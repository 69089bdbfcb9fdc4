"""The canonical keypoint schema: 133 COCO-WholeBody points in DWPose order.

Every pose backend returns an array of shape (133, 3) per frame: x, y in pixels of
the stored frame and a score in [0, 1]. A point a backend cannot produce has
score 0 (and x = y = 0). The renderers draw the 18-point OpenPose body that
DWPose derives from the 17 COCO body points (neck = shoulder midpoint).
"""

from __future__ import annotations

import numpy as np

N_KEYPOINTS = 133

BODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FOOT_NAMES = (
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
FACE_NAMES = tuple(f"face_{i}" for i in range(68))
_HAND_PARTS = ("wrist",) + tuple(
    f"{finger}_{j}" for finger in ("thumb", "index", "middle", "ring", "pinky") for j in range(1, 5)
)
LEFT_HAND_NAMES = tuple(f"left_hand_{p}" for p in _HAND_PARTS)
RIGHT_HAND_NAMES = tuple(f"right_hand_{p}" for p in _HAND_PARTS)

KEYPOINT_NAMES: tuple[str, ...] = BODY_NAMES + FOOT_NAMES + FACE_NAMES + LEFT_HAND_NAMES + RIGHT_HAND_NAMES
assert len(KEYPOINT_NAMES) == N_KEYPOINTS

# Index ranges of the groups inside the 133 points.
BODY = slice(0, 17)
FEET = slice(17, 23)
FACE = slice(23, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
GROUPS = {"body": BODY, "feet": FEET, "face": FACE, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND}

INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# OpenPose BODY-18 order as drawn by the DWPose/ControlNet renderer.
OPENPOSE18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
    "left_eye", "right_ear", "left_ear",
)
# For each OpenPose-18 joint, the COCO body index it comes from (-1: the neck, derived).
OPENPOSE18_FROM_COCO = tuple(-1 if n == "neck" else INDEX[n] for n in OPENPOSE18_NAMES)

# OpenPose-18 limbs (pairs of OpenPose indices) in the renderer's drawing order.
OPENPOSE18_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# Hand skeleton over the 21 hand points (wrist = 0, then 4 per finger).
HAND_EDGES = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)
)


def empty_keypoints() -> np.ndarray:
    """A (133, 3) float32 array meaning 'nothing detected'."""
    return np.zeros((N_KEYPOINTS, 3), dtype=np.float32)


def to_openpose18(keypoints: np.ndarray) -> np.ndarray:
    """Derive the 18-point OpenPose body from (..., 133, 3) keypoints.

    The neck is the midpoint of the shoulders; its score is the smaller of the two
    shoulder scores, so a neck is only as visible as its weaker shoulder.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape[-2:] != (N_KEYPOINTS, 3):
        raise ValueError(f"expected (..., {N_KEYPOINTS}, 3) keypoints, got {kp.shape}")
    out = np.zeros(kp.shape[:-2] + (18, 3), dtype=np.float32)
    for j, src in enumerate(OPENPOSE18_FROM_COCO):
        if src >= 0:
            out[..., j, :] = kp[..., src, :]
    ls, rs = kp[..., INDEX["left_shoulder"], :], kp[..., INDEX["right_shoulder"], :]
    out[..., 1, :2] = (ls[..., :2] + rs[..., :2]) / 2
    out[..., 1, 2] = np.minimum(ls[..., 2], rs[..., 2])
    return out


def person_box(keypoints: np.ndarray, threshold: float = 0.3) -> np.ndarray | None:
    """Tight (x0, y0, x1, y1) box around points scored above threshold, or None."""
    kp = np.asarray(keypoints)
    ok = kp[:, 2] > threshold
    if not ok.any():
        return None
    xy = kp[ok, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], dtype=np.float32)
