"""OpenPose-style pose images: the skeleton pictures DWPose-conditioned models consume.

The drawing follows the conventions of ControlNet's OpenPose/DWPose annotator as
used by UniAnimate (``run_align_pose.py``):

* body: limbs are filled ellipses (``cv2.ellipse2Poly``, half-width 4 px) in 18
  hue-wheel colours; after all limbs the whole canvas is scaled by 0.6 and then
  the joints are drawn on top as full-intensity discs of radius 4;
* hands (after the body): each of the 20 hand edges is a 2 px line coloured by
  the HSV hue ``edge / 20``; each hand point is a disc of radius 4 in the
  colour (0, 0, 255) of the drawing canvas;
* face (last, optional): white discs of radius 3.

The reference code draws into a NumPy canvas with those colour triples. ControlNet
treats that canvas as RGB; UniAnimate writes it with ``cv2.imwrite``, which reads
it as BGR, so in UniAnimate's saved pose JPEGs every colour is channel-reversed
(the first body limb is blue, hand points are red) and two foot limbs (ankle to
the midpoint of the toes) are added. Both variants are available as
:data:`STYLES`; the default, ``"unianimate"``, reproduces those JPEGs when they
are read as RGB.

The test oracle ``tests/helpers/pose_from_render.py`` goes the other way (body joints and hands from a
rendered image), which lets tests check this renderer against real renders.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from toolkit.annotate.labels import colour
from toolkit.keypoints import (
    FACE,
    HAND_EDGES,
    INDEX,
    LEFT_HAND,
    N_KEYPOINTS,
    OPENPOSE18_LIMBS,
    RIGHT_HAND,
    to_openpose18,
)

STICK_HALF_WIDTH = 4
LIMB_DIM = 0.6
JOINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
HAND_POINT_RADIUS = 4
FACE_POINT_RADIUS = 3

# Canvas colours as the reference code writes them (its canvas order; see module doc).
BODY_COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(i / 18, 1.0, 1.0)) for i in range(18)
) + ((170, 255, 255), (255, 255, 0))  # the two toe joints / foot limbs of UniAnimate's body-and-foot drawing
HAND_EDGE_COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(int(np.rint(c * 255)) for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0))
    for i in range(len(HAND_EDGES))
)
HAND_POINT_COLOUR = (0, 0, 255)
FACE_COLOUR = (255, 255, 255)

# Extra UniAnimate joints after the 18 OpenPose ones: left toes midpoint (18), right toes midpoint (19).
TOE_JOINTS = {18: ("left_big_toe", "left_small_toe"), 19: ("right_big_toe", "right_small_toe")}
# Foot limbs in drawing order after the 17 body limbs: left ankle -> left toes, right ankle -> right toes.
FOOT_LIMBS = ((13, 18), (10, 19))


@dataclass(frozen=True)
class PoseStyle:
    """How a pose image is drawn.

    feet: draw the two ankle-to-toes limbs and toe joints (UniAnimate's body-and-foot drawing).
    swap_channels: reverse the reference colour triples, i.e. produce what a canvas
        written with ``cv2.imwrite`` looks like when read back as RGB.
    """

    name: str
    feet: bool
    swap_channels: bool

    @property
    def n_joints(self) -> int:
        return 20 if self.feet else 18

    @property
    def limbs(self) -> tuple[tuple[int, int], ...]:
        return OPENPOSE18_LIMBS + (FOOT_LIMBS if self.feet else ())

    def colour(self, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        """The colour a reference triple ends up as in an RGB image of this style."""
        return tuple(reversed(rgb)) if self.swap_channels else tuple(rgb)


STYLES = {
    "unianimate": PoseStyle("unianimate", feet=True, swap_channels=True),
    "controlnet": PoseStyle("controlnet", feet=False, swap_channels=False),
}


def get_style(style: str | PoseStyle) -> PoseStyle:
    """Look a style up by name (``"unianimate"`` or ``"controlnet"``)."""
    if isinstance(style, PoseStyle):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown pose style {style!r}; choose one of {sorted(STYLES)}") from None


def _check_keypoints(keypoints: np.ndarray, ndim: int) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != ndim or kp.shape[-2:] != (N_KEYPOINTS, 3):
        want = "(133, 3)" if ndim == 2 else "(T, 133, 3)"
        raise ValueError(f"expected keypoints of shape {want} (x, y, score), got {kp.shape}")
    if not np.isfinite(kp).all():
        raise ValueError("keypoints contain NaN or infinite values")
    return kp


def body_joints(keypoints: np.ndarray, feet: bool = True) -> np.ndarray:
    """The drawn body joints of (133, 3) keypoints: OpenPose-18, plus the two toe midpoints if feet.

    A toe midpoint is valid only when both toes are; its score is the smaller of the two.
    """
    kp = _check_keypoints(keypoints, 2)
    joints = to_openpose18(kp).astype(np.float64)
    if not feet:
        return joints
    toes = np.zeros((2, 3))
    for row, (a, b) in enumerate(TOE_JOINTS.values()):
        pa, pb = kp[INDEX[a]], kp[INDEX[b]]
        toes[row, :2] = (pa[:2] + pb[:2]) / 2
        toes[row, 2] = min(pa[2], pb[2])
    return np.concatenate([joints, toes])


def draw_limb(canvas: np.ndarray, p: Sequence[float], q: Sequence[float], colour: int | tuple[int, int, int]) -> None:
    """Fill one limb in place as the reference draws it: an ellipse from p to q, centre and angle truncated to int."""
    centre = (int((p[0] + q[0]) / 2), int((p[1] + q[1]) / 2))
    length = math.hypot(p[0] - q[0], p[1] - q[1])
    angle = math.degrees(math.atan2(p[1] - q[1], p[0] - q[0]))
    polygon = cv2.ellipse2Poly(centre, (int(length / 2), STICK_HALF_WIDTH), int(angle), 0, 360, 1)
    cv2.fillConvexPoly(canvas, polygon, colour)


@functools.lru_cache(maxsize=None)
def _disc(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) offsets of the pixels cv2.circle fills for an integer centre (the shape does not depend on it)."""
    size = 2 * radius + 3
    canvas = np.zeros((size, size), np.uint8)
    cv2.circle(canvas, (radius + 1, radius + 1), radius, 1, thickness=-1)
    dy, dx = np.nonzero(canvas)
    return dy - radius - 1, dx - radius - 1


def draw_discs(canvas: np.ndarray, points: np.ndarray, radius: int, values: np.ndarray) -> None:
    """Fill discs at (N, 2) points (truncated to int) with (N,) labels or (N, 3) colours, later ones on top:
    cv2.circle's pixels, in one vectorised write instead of N calls."""
    if not len(points):
        return
    dy, dx = _disc(radius)
    h, w = canvas.shape[:2]
    centres = np.clip(np.trunc(points), -2 * radius - (1 << 20), 1 << 20).astype(np.int64)
    ys = (centres[:, 1:2] + dy).ravel()
    xs = (centres[:, 0:1] + dx).ravel()
    vals = np.repeat(np.asarray(values, np.uint8), len(dy), axis=0)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    # numpy assigns repeated indices in order, so where discs overlap the later point wins, as with cv2.circle calls
    canvas[ys[inside], xs[inside]] = vals[inside]


# Label canvases: every drawing call overwrites pixels with one opaque colour (no blending, no anti-aliasing),
# so a render is exactly `palette[labels]` for a one-channel canvas of colour indices. Labels, in drawing order:
LIMB_LABEL = 1                                    # + limb index (dimmed body colours)
JOINT_LABEL = LIMB_LABEL + len(BODY_COLOURS)      # + joint index (full body colours)
HAND_EDGE_LABEL = JOINT_LABEL + len(BODY_COLOURS)  # + hand edge index
HAND_POINT_LABEL = HAND_EDGE_LABEL + len(HAND_EDGE_COLOURS)
FACE_LABEL = HAND_POINT_LABEL + 1
N_LABELS = FACE_LABEL + 1


@functools.lru_cache(maxsize=None)
def _palette(style: PoseStyle) -> np.ndarray:
    rows = ([(0, 0, 0)] + [tuple(int(c * LIMB_DIM) for c in style.colour(rgb)) for rgb in BODY_COLOURS]
            + [style.colour(rgb) for rgb in BODY_COLOURS] + [style.colour(rgb) for rgb in HAND_EDGE_COLOURS]
            + [style.colour(HAND_POINT_COLOUR), style.colour(FACE_COLOUR)])
    palette = np.array(rows, np.uint8)
    palette.flags.writeable = False
    return palette


def pose_palette(style: str | PoseStyle = "unianimate") -> np.ndarray:
    """(N_LABELS, 3) uint8 RGB colour of each label of a style's label canvas (label 0: black background)."""
    return _palette(get_style(style))


def draw_body(canvas: np.ndarray, joints: np.ndarray, style: PoseStyle, threshold: float = 0.3) -> None:
    """Draw limbs, then joints, of (18 or 20, 3) body joints onto an empty label canvas, in place.

    The reference scales the whole canvas by 0.6 after the limbs; on an empty canvas that equals drawing
    each limb in its dimmed colour, which is what the limb labels are."""
    ok = joints[:, 2] > threshold
    good, xy = ok.tolist(), joints[:, :2].tolist()  # Python floats: the same values, far cheaper to index
    for i, (a, b) in enumerate(style.limbs):
        if good[a] and good[b]:
            draw_limb(canvas, xy[a], xy[b], LIMB_LABEL + i)
    drawn = np.flatnonzero(ok[:style.n_joints])
    draw_discs(canvas, joints[drawn, :2], JOINT_RADIUS, JOINT_LABEL + drawn)


def _drawable(points: np.ndarray, threshold: float) -> np.ndarray:
    """Hand and face points the reference draws: scored above threshold and at integer pixel >= 1.

    The reference marks missing points with negative coordinates and tests x > eps, y > eps
    after truncating to int, so points in the first pixel row or column are never drawn.
    """
    return (points[:, 2] > threshold) & (np.trunc(points[:, 0]) >= 1) & (np.trunc(points[:, 1]) >= 1)


def draw_hands(canvas: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3) -> None:
    """Draw both hands (left, then right) onto a label canvas in place: coloured edges, then point discs."""
    for hand in (LEFT_HAND, RIGHT_HAND):
        pts = keypoints[hand]
        ok = _drawable(pts, threshold)
        if not ok.any():
            continue
        ipts, good = pts[:, :2].astype(np.int64).tolist(), ok.tolist()
        for e, (a, b) in enumerate(HAND_EDGES):
            if good[a] and good[b]:
                cv2.line(canvas, ipts[a], ipts[b], HAND_EDGE_LABEL + e, thickness=HAND_LINE_THICKNESS)
        drawn = np.flatnonzero(ok)
        draw_discs(canvas, pts[drawn, :2], HAND_POINT_RADIUS, np.full(len(drawn), HAND_POINT_LABEL))


def draw_face(canvas: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3) -> None:
    """Draw the 68 face points onto a label canvas in place as discs (white in every style)."""
    pts = keypoints[FACE]
    drawn = np.flatnonzero(_drawable(pts, threshold))
    draw_discs(canvas, pts[drawn, :2], FACE_POINT_RADIUS, np.full(len(drawn), FACE_LABEL))


def _scaled(kp: np.ndarray, height: int, width: int, source_size: tuple[int, int] | None) -> np.ndarray:
    if source_size is None:
        return kp
    src_h, src_w = source_size
    if src_h <= 0 or src_w <= 0:
        raise ValueError(f"source_size must be positive (height, width), got {source_size}")
    out = kp.copy()
    out[..., 0] *= width / src_w
    out[..., 1] *= height / src_h
    return out


def render_pose_labels(
    keypoints: np.ndarray,
    height: int,
    width: int,
    face: bool = False,
    hands: bool = True,
    threshold: float = 0.3,
    style: str | PoseStyle = "unianimate",
    source_size: tuple[int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The label canvas (height, width) uint8 of :func:`render_pose`: ``pose_palette(style)[labels]`` is the render.

    `out`: an all-zero (height, width) uint8 array to draw into (e.g. a plane of a clip's array).
    """
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"canvas size must be positive, got height={height}, width={width}")
    st = get_style(style)
    kp = _scaled(_check_keypoints(keypoints, 2), height, width, source_size)
    canvas = np.zeros((int(height), int(width)), dtype=np.uint8) if out is None else out
    draw_body(canvas, body_joints(kp, feet=st.feet), st, threshold)
    if hands:
        draw_hands(canvas, kp, threshold)
    if face:
        draw_face(canvas, kp, threshold)
    return canvas


def render_pose(
    keypoints: np.ndarray,
    height: int,
    width: int,
    face: bool = False,
    hands: bool = True,
    threshold: float = 0.3,
    style: str | PoseStyle = "unianimate",
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Render (133, 3) keypoints as an OpenPose-style (height, width, 3) uint8 RGB image on black.

    Keypoints are pixels of the output canvas, or of a frame of ``source_size`` =
    (height, width) that is stretched onto the canvas (as UniAnimate draws every
    pose at 768x512 from normalised coordinates). Points scored at or below
    ``threshold`` are not drawn.
    """
    labels = render_pose_labels(keypoints, height, width, face, hands, threshold, style, source_size)
    return colour(labels, pose_palette(style))


def render_poses(
    keypoints: np.ndarray,
    height: int,
    width: int,
    face: bool = False,
    hands: bool = True,
    threshold: float = 0.3,
    style: str | PoseStyle = "unianimate",
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Render a (T, 133, 3) keypoint sequence to (T, height, width, 3) uint8 RGB frames."""
    seq = _check_keypoints(keypoints, 3)
    out = np.zeros((len(seq), int(height), int(width), 3), dtype=np.uint8)
    for t, kp in enumerate(seq):
        out[t] = render_pose(kp, height, width, face, hands, threshold, style, source_size)
    return out
