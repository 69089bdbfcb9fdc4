"""UniAnimate-style pose alignment: move a driving pose sequence onto the reference person's body.

A driving video's person has other proportions and stands elsewhere than the
person in the reference image. UniAnimate (``run_align_pose.py``) therefore
rescales the driving poses before rendering them:

1. a global scale: x by the ratio of shoulder widths, y by the ratio of the
   shoulder-centre to hip-centre heights (reference / first driving frame);
2. per-segment ratios, measured once between the reference and the scaled first
   frame, for neck->nose, neck->shoulders, upper and lower arms, nose->eyes,
   eyes->ears, thighs and shins; in every frame each such segment is stretched by
   its ratio and everything hanging below it (hands with their wrists, feet with
   their ankles) is shifted along, i.e. by (parent - child) * (1 - ratio);
   the neck->hip segments are not rescaled;
3. a translation that puts the first frame's neck onto the reference neck.

Differences from the reference script, on purpose:

* coordinates are pixels (of the driving frames in, of the reference image out)
  rather than each image's [0, 1]-normalised coordinates, so segment lengths are
  true Euclidean lengths even when width != height;
* the global ratios use absolute values, so a driver turned away from the camera
  in the first frame is not mirrored;
* face points move with the nose (the script scales but never shifts them, which
  is invisible there because it draws no face); the neck is the shoulder midpoint
  as in DWPose;
* missing points (score 0) stay missing and never produce ratios or offsets: a
  segment whose ends are missing in the reference or first frame keeps ratio 1,
  and in a frame where either end is missing its stretch is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.keypoints import FACE, FEET, INDEX, LEFT_HAND, N_KEYPOINTS, RIGHT_HAND

_NECK = N_KEYPOINTS  # extra slot appended for the derived neck


def _idx(*names: str) -> list[int]:
    return [INDEX[n] for n in names]


def _range(s: slice) -> list[int]:
    return list(range(s.start, s.stop))


_LEFT_FOOT = _range(FEET)[:3]
_RIGHT_FOOT = _range(FEET)[3:]

# (name, parent, child, points moved with the child) in the reference script's order.
SEGMENTS: tuple[tuple[str, int, int, tuple[int, ...]], ...] = tuple(
    (name, parent, child, tuple(moved))
    for name, parent, child, moved in (
        ("neck", _NECK, INDEX["nose"], _idx("nose", "left_eye", "right_eye", "left_ear", "right_ear") + _range(FACE)),
        ("right_shoulder", _NECK, INDEX["right_shoulder"],
         _idx("right_shoulder", "right_elbow", "right_wrist") + _range(RIGHT_HAND)),
        ("left_shoulder", _NECK, INDEX["left_shoulder"],
         _idx("left_shoulder", "left_elbow", "left_wrist") + _range(LEFT_HAND)),
        ("right_upper_arm", INDEX["right_shoulder"], INDEX["right_elbow"],
         _idx("right_elbow", "right_wrist") + _range(RIGHT_HAND)),
        ("right_forearm", INDEX["right_elbow"], INDEX["right_wrist"], _idx("right_wrist") + _range(RIGHT_HAND)),
        ("left_upper_arm", INDEX["left_shoulder"], INDEX["left_elbow"],
         _idx("left_elbow", "left_wrist") + _range(LEFT_HAND)),
        ("left_forearm", INDEX["left_elbow"], INDEX["left_wrist"], _idx("left_wrist") + _range(LEFT_HAND)),
        ("right_eye", INDEX["nose"], INDEX["right_eye"], _idx("right_eye", "right_ear")),
        ("left_eye", INDEX["nose"], INDEX["left_eye"], _idx("left_eye", "left_ear")),
        ("right_ear", INDEX["right_eye"], INDEX["right_ear"], _idx("right_ear")),
        ("left_ear", INDEX["left_eye"], INDEX["left_ear"], _idx("left_ear")),
        ("right_thigh", INDEX["right_hip"], INDEX["right_knee"], _idx("right_knee", "right_ankle") + _RIGHT_FOOT),
        ("right_shin", INDEX["right_knee"], INDEX["right_ankle"], _idx("right_ankle") + _RIGHT_FOOT),
        ("left_thigh", INDEX["left_hip"], INDEX["left_knee"], _idx("left_knee", "left_ankle") + _LEFT_FOOT),
        ("left_shin", INDEX["left_knee"], INDEX["left_ankle"], _idx("left_ankle") + _LEFT_FOOT),
    )
)

_LS, _RS = INDEX["left_shoulder"], INDEX["right_shoulder"]
_LH, _RH = INDEX["left_hip"], INDEX["right_hip"]
_MIN_EXTENT = 1.0  # pixels: shorter shoulder widths / torso heights cannot give a ratio


@dataclass(frozen=True)
class PoseAlignment:
    """Parameters that map driving-frame pixels to reference-image pixels (see module doc)."""

    x_ratio: float
    y_ratio: float
    segment_ratios: dict[str, float]
    offset: tuple[float, float]

    def apply(self, sequence: np.ndarray) -> np.ndarray:
        """Align a (T, 133, 3) driving sequence (or one (133, 3) pose); scores are kept, missing points stay 0."""
        seq = _check(sequence, "sequence")
        single = seq.ndim == 2
        if single:
            seq = seq[None]
        pts, ok = _with_neck(seq)
        pts = pts * np.array([self.x_ratio, self.y_ratio])
        shift = np.zeros_like(pts)
        for name, parent, child, moved in SEGMENTS:
            ratio = self.segment_ratios.get(name, 1.0)
            if ratio == 1.0:
                continue
            both = (ok[:, parent] & ok[:, child])[:, None]
            delta = np.where(both, (pts[:, child] - pts[:, parent]) * (ratio - 1.0), 0.0)
            shift[:, list(moved)] += delta[:, None, :]
        out = seq.astype(np.float64).copy()
        out[..., :2] = pts[:, :N_KEYPOINTS] + shift[:, :N_KEYPOINTS] + np.asarray(self.offset)
        out[~ok[:, :N_KEYPOINTS]] = 0.0
        out = out.astype(np.float32)
        return out[0] if single else out


def _check(kp: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(kp, dtype=np.float64)
    if arr.shape[-2:] != (N_KEYPOINTS, 3) or arr.ndim not in (2, 3):
        raise ValueError(f"{what}: expected (133, 3) or (T, 133, 3) keypoints, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: keypoints contain NaN or infinite values")
    return arr


def _with_neck(seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 134, 2) positions with the neck appended, and (T, 134) validity (score > 0)."""
    xy, ok = seq[..., :2], seq[..., 2] > 0
    neck = (xy[:, _LS] + xy[:, _RS]) / 2
    neck_ok = ok[:, _LS] & ok[:, _RS]
    return np.concatenate([xy, neck[:, None]], 1), np.concatenate([ok, neck_ok[:, None]], 1)


def _global_ratios(ref: np.ndarray, ref_ok: np.ndarray, first: np.ndarray, first_ok: np.ndarray) -> tuple[float, float]:
    for name, ok in (("reference", ref_ok), ("first driving frame", first_ok)):
        if not (ok[_LS] and ok[_RS]):
            raise ValueError(f"cannot align: the {name} has no pair of shoulders (needed for the x scale)")
    ref_w, drv_w = abs(ref[_LS, 0] - ref[_RS, 0]), abs(first[_LS, 0] - first[_RS, 0])
    if ref_w < _MIN_EXTENT or drv_w < _MIN_EXTENT:
        raise ValueError(f"cannot align: shoulder width {ref_w:.2f} px (reference) / {drv_w:.2f} px (first frame) "
                         "is too small; is the person seen from the side?")
    x_ratio = ref_w / drv_w
    hips = ref_ok[_LH] and ref_ok[_RH] and first_ok[_LH] and first_ok[_RH]
    if not hips:
        return x_ratio, x_ratio  # no torso height: keep the aspect of the driving poses
    ref_h = abs((ref[_LH, 1] + ref[_RH, 1]) / 2 - ref[_NECK, 1])
    drv_h = abs((first[_LH, 1] + first[_RH, 1]) / 2 - first[_NECK, 1])
    if ref_h < _MIN_EXTENT or drv_h < _MIN_EXTENT:
        return x_ratio, x_ratio
    return x_ratio, ref_h / drv_h


def fit_alignment(reference: np.ndarray, first_frame: np.ndarray) -> PoseAlignment:
    """Alignment parameters from the reference pose and the driving sequence's first pose, both (133, 3).

    Raises ValueError naming the problem when either pose lacks the shoulders.
    Without both hips in both poses, y is scaled like x.
    """
    ref_arr, first_arr = _check(reference, "reference"), _check(first_frame, "first frame")
    if ref_arr.ndim != 2 or first_arr.ndim != 2:
        raise ValueError("fit_alignment takes single poses of shape (133, 3)")
    (ref,), (ref_ok,) = _with_neck(ref_arr[None])
    (first,), (first_ok,) = _with_neck(first_arr[None])
    x_ratio, y_ratio = _global_ratios(ref, ref_ok, first, first_ok)
    scaled = first * np.array([x_ratio, y_ratio])
    ratios = {}
    for name, parent, child, _ in SEGMENTS:
        ratio = 1.0
        if ref_ok[parent] and ref_ok[child] and first_ok[parent] and first_ok[child]:
            drv_len = float(np.linalg.norm(scaled[child] - scaled[parent]))
            if drv_len > 1e-6:
                ratio = float(np.linalg.norm(ref[child] - ref[parent])) / drv_len
        ratios[name] = ratio
    offset = ref[_NECK] - scaled[_NECK]
    return PoseAlignment(float(x_ratio), float(y_ratio), ratios, (float(offset[0]), float(offset[1])))


def align_pose_sequence(sequence: np.ndarray, reference: np.ndarray, anchor: int = 0) -> np.ndarray:
    """Align a (T, 133, 3) driving sequence to a (133, 3) reference pose, UniAnimate-style.

    ``anchor`` is the driving frame whose proportions are measured (the reference
    script uses the first). Returns (T, 133, 3) float32 in reference-image pixels.
    """
    seq = _check(sequence, "sequence")
    if seq.ndim != 3 or len(seq) == 0:
        raise ValueError(f"sequence: expected (T, 133, 3) with T >= 1, got shape {seq.shape}")
    if not -len(seq) <= anchor < len(seq):
        raise ValueError(f"anchor frame {anchor} outside a sequence of {len(seq)} frames")
    return fit_alignment(reference, seq[anchor]).apply(seq)
