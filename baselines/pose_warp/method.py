"""`pose-warp`: a training-free classical baseline, a per-limb affine warp of the reference.

The body is cut into parts: the torso (an affine map fixed by both shoulders and
the hip centre) and eight limbs plus the head (each a similarity transform that
carries its bone in the reference pose onto the same bone in the driving pose).
Every output pixel near a driving-pose part takes its colour from the reference
through that part's inverse transform; the nearest part (distance relative to the
part's thickness) wins. Everything else is the reference background with the
person inpainted away. No learning, no weights: a floor for learned methods that
does follow the pose, unlike `reference-copy`.
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.keypoints import to_openpose18
from toolkit.harness.method import Conditions, Method

# OpenPose-18 bones (parent, child) warped rigidly, with thickness as a fraction of torso length.
BONES = {
    "head": ((1, 0), 0.42),
    "right_upper_arm": ((2, 3), 0.16), "right_forearm": ((3, 4), 0.14),
    "left_upper_arm": ((5, 6), 0.16), "left_forearm": ((6, 7), 0.14),
    "right_thigh": ((8, 9), 0.2), "right_shin": ((9, 10), 0.17),
    "left_thigh": ((11, 12), 0.2), "left_shin": ((12, 13), 0.17),
}
THRESHOLD = 0.3


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    return np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1]))


def _torso(op: np.ndarray) -> np.ndarray | None:
    """Triangle (right shoulder, left shoulder, hip centre), or None when not all visible."""
    if min(op[2, 2], op[5, 2], op[8, 2], op[11, 2]) <= THRESHOLD:
        return None
    return np.stack([op[2, :2], op[5, :2], (op[8, :2] + op[11, :2]) / 2]).astype(np.float32)


def _torso_polygon(tri: np.ndarray) -> np.ndarray:
    """Shoulders and the two hip points widened a little, as an int polygon for filling."""
    rs, ls, hip = tri
    half = (ls - rs) / 2 * 0.8
    return np.stack([rs, ls, hip + half, hip - half]).astype(np.int32)


class PoseWarp(Method):
    name = "pose-warp"
    description = "training-free baseline: per-limb affine warp of the reference driven by the keypoints"

    def _parts(self, op: np.ndarray, scale: float):
        parts = {}
        for name, ((i, j), thick) in BONES.items():
            if op[i, 2] > THRESHOLD and op[j, 2] > THRESHOLD:
                parts[name] = (op[i, :2].astype(np.float64), op[j, :2].astype(np.float64), thick * scale)
        return parts

    def _person_mask(self, cond: Conditions, op: np.ndarray, torso_len: float) -> np.ndarray:
        h, w = cond.height, cond.width
        if cond.reference_iuv is not None:
            mask = (cond.reference_iuv[..., 0] > 0).astype(np.uint8) * 255
        else:
            mask = np.zeros((h, w), np.uint8)
            tri = _torso(op)
            if tri is not None:
                cv2.fillPoly(mask, [_torso_polygon(tri)], 255)
            for a, b, r in self._parts(op, torso_len).values():
                cv2.line(mask, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), 255,
                         max(1, int(2 * r)))
        return cv2.dilate(mask, np.ones((7, 7), np.uint8))

    def generate(self, cond: Conditions) -> np.ndarray:
        if cond.keypoints is None or cond.reference_keypoints is None:
            raise ValueError(f"pose-warp needs keypoints; {cond.video_id} has none in the shards")
        h, w = cond.height, cond.width
        ref_op = to_openpose18(cond.reference_keypoints)
        ref_tri = _torso(ref_op)
        if ref_tri is None:
            return np.repeat(cond.reference[None], cond.n_frames, axis=0)
        torso_len = float(np.linalg.norm((ref_tri[0] + ref_tri[1]) / 2 - ref_tri[2]))
        ref_parts = self._parts(ref_op, torso_len)
        mask = self._person_mask(cond, ref_op, torso_len)
        background = cv2.inpaint(cond.reference, mask, 5, cv2.INPAINT_TELEA)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        out = np.empty((cond.n_frames, h, w, 3), np.uint8)
        for t, kp in enumerate(cond.keypoints):
            op = to_openpose18(kp)
            best = np.full((h, w), np.inf)
            map_x, map_y = np.full((h, w), -1.0), np.full((h, w), -1.0)
            tri = _torso(op)
            if tri is not None:
                inside = np.zeros((h, w), np.uint8)
                cv2.fillPoly(inside, [_torso_polygon(tri)], 1)
                inv = cv2.getAffineTransform(tri, ref_tri).astype(np.float64)
                sel = inside.astype(bool)
                best[sel] = 0.5
                map_x[sel] = inv[0, 0] * xs[sel] + inv[0, 1] * ys[sel] + inv[0, 2]
                map_y[sel] = inv[1, 0] * xs[sel] + inv[1, 1] * ys[sel] + inv[1, 2]
            for name, (a, b, _) in self._parts(op, torso_len).items():
                if name not in ref_parts:
                    continue
                ra, rb, r = ref_parts[name]
                dist = _segment_distance(xs, ys, a, b) / r
                sel = dist < np.minimum(best, 1.0)
                if not sel.any():
                    continue
                best[sel] = dist[sel]
                # similarity taking the driving bone (a, b) back onto the reference bone (ra, rb)
                d_t, d_r = b - a, rb - ra
                s = np.hypot(*d_r) / max(np.hypot(*d_t), 1e-6)
                ang = np.arctan2(d_r[1], d_r[0]) - np.arctan2(d_t[1], d_t[0])
                c, sn = s * np.cos(ang), s * np.sin(ang)
                dx, dy = xs[sel] - a[0], ys[sel] - a[1]
                map_x[sel] = ra[0] + c * dx - sn * dy
                map_y[sel] = ra[1] + sn * dx + c * dy
            warped = cv2.remap(cond.reference, map_x.astype(np.float32), map_y.astype(np.float32),
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            src_in_person = cv2.remap(mask, map_x.astype(np.float32), map_y.astype(np.float32),
                                      cv2.INTER_NEAREST, borderValue=0) > 0
            use = np.isfinite(best) & (map_x >= 0) & src_in_person
            out[t] = np.where(use[..., None], warped, background)
        return out
