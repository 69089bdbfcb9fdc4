"""A 2.5-D articulated human figure rendered with numpy, with exact ground truth.

The figure is a 3-D skeleton (joint angles -> joint positions by forward kinematics)
whose parts are shaded cylinders (limbs, neck), an elliptic generalised cylinder
(torso), an ellipsoid head with hair and a face, palms with five jointed fingers
and wedge-shaped feet. Parts are projected orthographically onto the image and
painted back to front. The colour, the DensePose part index and the chart
coordinates of a pixel all come from the same per-pixel surface coordinates, so
the IUV map and the mask match the pixels exactly, and the 133 keypoints are the
projected joints and landmarks the drawing is built from.

Conventions
-----------
* Figure units: the standing figure is 1 unit tall (crown to sole). 3-D axes:
  x to the image right (the person's left, because the figure faces the camera),
  y down, z towards the camera. Angles in a ``Pose`` are in degrees.
* Keypoints: (133, 3) in DWPose order (``toolkit.keypoints``); x, y in
  pixels (pixel centres at integer coordinates), score 1 for every point the
  figure models. All 133 points are modelled, including the 68 face points
  (iBUG-68 layout on the drawn face: jaw on the lower head outline, brows, nose
  bridge and nostrils, eye corners and lids, outer and inner lips). Points hidden
  behind other parts (a heel behind the shin, the far side of the jaw when the
  head turns) keep score 1: they are modelled, only occluded.
* IUV: I is the DensePose part index (``DENSEPOSE_PARTS``). Torso and leg
  cylinders split into front (2; 9/10; 13/14) and back (1; 7/8; 11/12) charts at
  the body's coronal plane; arm cylinders split at the plane through the arm and
  its T-pose top direction into outer (17/18, 21/22) and inner (15/16, 19/20)
  charts, the split real DensePose output shows on a dancer facing the camera;
  the head splits at its midline (23 right, 24 left). Hair, ears and neck count as head, shoes as feet, fingers as hands.
  U runs along the part (proximal 0 -> distal 1; head top 0 -> chin 1), V across
  it (azimuth over the visible chart, or across the palm/foot), both scaled to
  0..255. These are the figure's own charts, not SMPL's DensePose charts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from toolkit.keypoints import INDEX, N_KEYPOINTS

RGB = tuple[int, int, int]
LR = tuple[float, float]

DENSEPOSE_PARTS: dict[int, str] = {
    1: "torso_back", 2: "torso_front", 3: "right_hand", 4: "left_hand", 5: "left_foot", 6: "right_foot",
    7: "right_upper_leg_back", 8: "left_upper_leg_back", 9: "right_upper_leg_front", 10: "left_upper_leg_front",
    11: "right_lower_leg_back", 12: "left_lower_leg_back", 13: "right_lower_leg_front", 14: "left_lower_leg_front",
    15: "left_upper_arm_inner", 16: "right_upper_arm_inner", 17: "left_upper_arm_outer",
    18: "right_upper_arm_outer", 19: "left_lower_arm_inner", 20: "right_lower_arm_inner",
    21: "left_lower_arm_outer", 22: "right_lower_arm_outer", 23: "head_right", 24: "head_left",
}
# (front-or-outer chart, back-or-inner chart) per limb segment and side (0 = left, 1 = right).
_CHARTS = {
    "upper_leg": ((10, 8), (9, 7)),
    "lower_leg": ((14, 12), (13, 11)),
    "upper_arm": ((17, 15), (18, 16)),
    "lower_arm": ((21, 19), (22, 20)),
}
_HAND_PART = (4, 3)
_FOOT_PART = (5, 6)
_HEAD_RIGHT, _HEAD_LEFT = 23, 24

PATTERN_KINDS = ("plain", "stripes", "checks", "dots", "gradient", "chevron")
HAIR_STYLES = ("short", "buzz", "bob", "long", "bun")
BOTTOM_STYLES = ("trousers", "shorts", "dress")

_LIGHT = np.array([-0.35, -0.55, 0.76]) / np.linalg.norm([-0.35, -0.55, 0.76])


@dataclass(frozen=True)
class Pattern:
    """A clothing print, evaluated on the body surface (figure units) so it moves with the body."""

    kind: str = "stripes"
    colors: tuple[RGB, ...] = ((40, 90, 200), (235, 235, 235))
    period: float = 0.04
    angle: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PATTERN_KINDS:
            raise ValueError(f"Pattern.kind {self.kind!r} is not one of {PATTERN_KINDS}")
        if not self.colors or self.period <= 0:
            raise ValueError("Pattern needs at least one colour and a positive period")


@dataclass(frozen=True)
class Look:
    """Everything about the figure's appearance that stays fixed over a video."""

    skin: RGB = (224, 172, 138)
    hair: RGB = (60, 40, 30)
    hair_style: str = "short"
    eyes: RGB = (70, 50, 30)
    lips: RGB = (180, 90, 90)
    top: Pattern = field(default_factory=Pattern)
    sleeves: float = 0.6  # 0 sleeveless, 1 down to the elbow, 2 down to the wrist
    bottom: RGB = (40, 40, 60)
    bottom_style: str = "trousers"
    shoes: RGB = (30, 30, 30)
    shoulders: float = 1.0  # shoulder-width factor
    hips: float = 1.0  # hip-width factor
    girth: float = 1.0  # limb-thickness factor
    head: float = 1.0  # head-size factor

    def __post_init__(self) -> None:
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"Look.hair_style {self.hair_style!r} is not one of {HAIR_STYLES}")
        if self.bottom_style not in BOTTOM_STYLES:
            raise ValueError(f"Look.bottom_style {self.bottom_style!r} is not one of {BOTTOM_STYLES}")


@dataclass(frozen=True)
class Pose:
    """Joint angles (degrees) and body placement of one frame; pairs are (left, right).

    yaw > 0 turns the body towards the person's left; lean_side > 0 bends towards the
    person's left; lean_forward > 0 bends towards the camera. arm_raise is the
    abduction in the frontal plane (0 hanging, 90 horizontal, 180 overhead),
    arm_forward the elevation out of that plane towards the camera; elbow is the
    flexion and elbow_dir its direction (0 forwards, 90 up/inwards). leg_out is hip
    abduction, leg_forward hip flexion (knee towards the camera), knee the flexion.
    x shifts the body sideways and hop lifts it off the floor (figure units).
    """

    x: float = 0.0
    hop: float = 0.0
    yaw: float = 0.0
    hip_roll: float = 0.0
    lean_side: float = 0.0
    lean_forward: float = 0.0
    twist: float = 0.0
    head_roll: float = 0.0
    head_nod: float = 0.0
    head_yaw: float = 0.0
    mouth: float = 0.1
    shrug: LR = (0.0, 0.0)
    arm_raise: LR = (12.0, 12.0)
    arm_forward: LR = (5.0, 5.0)
    arm_twist: LR = (0.0, 0.0)
    elbow: LR = (15.0, 15.0)
    elbow_dir: LR = (30.0, 30.0)
    wrist: LR = (0.0, 0.0)
    grip: LR = (0.3, 0.3)
    leg_out: LR = (6.0, 6.0)
    leg_forward: LR = (0.0, 0.0)
    knee: LR = (5.0, 5.0)
    toe_out: LR = (18.0, 18.0)
    ankle: LR = (0.0, 0.0)


@dataclass(frozen=True)
class Placement:
    """Where the figure stands in the image, in pixels."""

    height: float  # standing height, crown to sole
    center_x: float  # column of the pelvis when pose.x == 0
    ground_y: float  # row of the floor under the lowest foot

    @classmethod
    def default(cls, size: int) -> "Placement":
        return cls(height=0.72 * size, center_x=size / 2.0, ground_y=0.9 * size)


@dataclass(frozen=True)
class FigureFrame:
    """One rendered frame: RGB image, IUV map (I, U, V channels), person mask and keypoints."""

    image: np.ndarray  # (H, W, 3) uint8
    iuv: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8, 255 on the person
    keypoints: np.ndarray  # (133, 3) float32


# ----------------------------------------------------------------------------- geometry


def _rot_x(deg: float) -> np.ndarray:
    """Pitch: positive tips the up vector (0, -1, 0) towards the camera (+z)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, s], [0, -s, c]])


def _rot_y(deg: float) -> np.ndarray:
    """Yaw: positive turns the person's left side (+x) away from the camera."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(deg: float) -> np.ndarray:
    """Roll in the image plane: positive tips the up vector towards +x (the person's left)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        return fallback if fallback is not None else np.array([1.0, 0.0, 0.0])
    return v / n


def _perp_unit(v: np.ndarray, axis: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The part of v perpendicular to the unit axis, normalised (fallback when v is parallel to it)."""
    w = v - float(v @ axis) * axis
    if np.linalg.norm(w) < 0.15:
        w = fallback - float(fallback @ axis) * axis
    return _unit(w)


@dataclass(frozen=True)
class _Dims:
    """Body measurements in figure units, from a Look."""

    thigh: float = 0.245
    shin: float = 0.245
    ankle_h: float = 0.04
    torso: float = 0.30
    neck: float = 0.045
    upper_arm: float = 0.165
    forearm: float = 0.15
    sw: float = 0.105  # shoulder half-width
    hw: float = 0.052  # hip half-width
    head_rx: float = 0.052
    head_ry: float = 0.066
    r_upper_arm: tuple[float, float] = (0.030, 0.024)
    r_forearm: tuple[float, float] = (0.023, 0.018)
    r_thigh: tuple[float, float] = (0.062, 0.042)
    r_shin: tuple[float, float] = (0.039, 0.025)
    r_neck: float = 0.024
    r_finger: float = 0.0068

    @classmethod
    def of(cls, look: Look) -> "_Dims":
        g, hf = look.girth, look.hips
        return cls(
            sw=0.105 * look.shoulders, hw=0.052 * hf, head_rx=0.052 * look.head, head_ry=0.066 * look.head,
            r_upper_arm=(0.030 * g, 0.024 * g), r_forearm=(0.023 * g, 0.018 * g),
            r_thigh=(0.062 * g * hf, 0.042 * g), r_shin=(0.039 * g, 0.025 * g), r_neck=0.024 * g,
            r_finger=0.0068 * min(g, 1.1),
        )

    def torso_half_width(self, t: np.ndarray, look: Look) -> np.ndarray:
        """Half-width of the torso cross-section at height t (0 hips, 1 shoulders)."""
        tt = (-0.15, 0.0, 0.2, 0.42, 0.75, 1.0, 1.08)
        s, h = look.shoulders, look.hips
        ww = (0.085 * h, 0.100 * h, 0.092 * h, 0.080 * (0.5 * s + 0.5 * h), 0.098 * s, 0.092 * s, 0.088 * s)
        return np.interp(t, tt, ww).astype(np.float32)


_TORSO_DEPTH = 0.62  # cross-section depth / width
_TORSO_BINS = 64  # heights at which the torso section frame is tabulated

# Face template, iBUG-68 order, in normalised head coordinates (x to the image right, y down,
# head centre at 0, crown at y = -1, chin at y = +1). The mouth rows depend on openness.
_EYE_C, _EYE_HW, _EYE_HH, _EYE_Y = 0.38, 0.19, 0.085, -0.08


def _face_template(mouth: float) -> np.ndarray:
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw, from the subject's right (image left) through the chin
        psi = math.radians(190.0 - i * 12.5)
        pts.append((0.97 * math.cos(psi), 0.97 * math.sin(psi)))
    for k in range(5):  # right brow, outer to inner
        pts.append((-0.68 + 0.135 * k, -0.31 - 0.07 * math.sin(math.pi * k / 4)))
    for k in range(5):  # left brow, inner to outer
        pts.append((0.14 + 0.135 * k, -0.31 - 0.07 * math.sin(math.pi * (4 - k) / 4)))
    for y in (-0.12, 0.0, 0.12, 0.24):  # nose bridge to tip
        pts.append((0.0, y))
    for x, y in ((-0.15, 0.27), (-0.075, 0.30), (0.0, 0.31), (0.075, 0.30), (0.15, 0.27)):  # nostrils
        pts.append((x, y))
    for cx in (-_EYE_C, _EYE_C):  # right eye then left eye: corner, upper lid x2, corner, lower lid x2
        hw, hh, y = _EYE_HW, _EYE_HH, _EYE_Y
        pts += [(cx - hw, y), (cx - hw / 3, y - hh), (cx + hw / 3, y - hh), (cx + hw, y),
                (cx + hw / 3, y + hh), (cx - hw / 3, y + hh)]
    m = float(np.clip(mouth, 0.0, 1.0))
    pts += [(-0.32, 0.53), (-0.2, 0.47), (-0.07, 0.45), (0.0, 0.465), (0.07, 0.45), (0.2, 0.47), (0.32, 0.53),
            (0.2, 0.6 + 0.1 * m), (0.07, 0.63 + 0.12 * m), (0.0, 0.635 + 0.12 * m), (-0.07, 0.63 + 0.12 * m),
            (-0.2, 0.6 + 0.1 * m)]
    pts += [(-0.25, 0.53), (-0.08, 0.515), (0.0, 0.52), (0.08, 0.515), (0.25, 0.53),
            (0.08, 0.545 + 0.11 * m), (0.0, 0.55 + 0.12 * m), (-0.08, 0.545 + 0.11 * m)]
    return np.array(pts, dtype=np.float64)


_NOSE_BUMP = {27: 0.06, 28: 0.12, 29: 0.2, 30: 0.28, 31: 0.1, 32: 0.14, 33: 0.16, 34: 0.14, 35: 0.1}


@dataclass
class _Limb:
    a: np.ndarray  # proximal joint, 3-D
    b: np.ndarray  # distal joint, 3-D
    ref: np.ndarray  # unit vector perpendicular to the axis where the front/outer chart is centred
    radii: tuple[float, float]
    charts: tuple[int, int]
    name: str
    side: int


@dataclass
class _Hand:
    side: int
    wrist: np.ndarray
    points: np.ndarray  # (21, 3) hand keypoints in COCO-WholeBody order
    palm: np.ndarray  # (k, 3) palm outline
    h: np.ndarray  # unit, wrist -> fingers
    lat: np.ndarray  # unit, towards the thumb side


@dataclass
class _Foot:
    side: int
    ankle: np.ndarray
    heel: np.ndarray
    big_toe: np.ndarray
    small_toe: np.ndarray
    outline: np.ndarray  # (k, 3)
    soles: np.ndarray  # (k, 3) points that touch the ground when flat


@dataclass
class _Skeleton:
    pelvis: np.ndarray
    neck_base: np.ndarray
    neck_top: np.ndarray
    head_c: np.ndarray
    R_pelvis: np.ndarray
    R_chest: np.ndarray
    R_head: np.ndarray
    shoulders: list[np.ndarray]
    hips: list[np.ndarray]
    limbs: list[_Limb]
    hands: list[_Hand]
    feet: list[_Foot]
    face: np.ndarray  # (68, 3)
    ears: list[np.ndarray]  # left, right
    dims: _Dims


def _hand(side: int, wrist: np.ndarray, fore: np.ndarray, p_bend: np.ndarray, wrist_deg: float,
          grip: float) -> _Hand:
    sigma = 1.0 if side == 0 else -1.0
    w = math.radians(wrist_deg)
    h = _unit(math.cos(w) * fore + math.sin(w) * _perp_unit(p_bend, fore, np.array([0.0, 0.0, 1.0])))
    ref = np.array([0.0, 0.35, 1.0]) / np.linalg.norm([0.0, 0.35, 1.0])
    lb = _unit(_cross(h, ref), np.array([1.0, 0.0, 0.0]))
    lat = sigma * lb
    palm_n = _unit(_cross(lb, h))  # faces the camera as far as the hand direction allows
    grip = float(np.clip(grip, 0.0, 1.0))
    pts = [wrist]
    # thumb: CMC, MCP, IP, tip
    cmc = wrist + 0.012 * h + 0.014 * lat
    tdir = _unit(0.55 * h + 0.83 * lat)
    cur = cmc
    pts.append(cmc)
    for seg, curl in ((0.022, 25.0), (0.016, 35.0), (0.014, 30.0)):
        a = math.radians(curl * grip)
        tdir = _unit(math.cos(a) * tdir + math.sin(a) * (palm_n - 0.5 * lat))
        cur = cur + seg * tdir
        pts.append(cur)
    palm_len = 0.048
    fingers = ((0.015, 8.0, 0.042), (0.005, 0.0, 0.047), (-0.005, -7.0, 0.044), (-0.014, -14.0, 0.034))
    mcps = []
    for off, spread, flen in fingers:
        mcp = wrist + palm_len * h + off * lat
        mcps.append(mcp)
        sp = math.radians(spread * (1.0 - 0.7 * grip))
        fdir = _unit(math.cos(sp) * h + math.sin(sp) * lat)
        cur = mcp
        pts.append(mcp)
        for frac, curl in ((0.45, 55.0), (0.30, 75.0), (0.25, 55.0)):
            a = math.radians(curl * grip)
            fdir = _unit(math.cos(a) * fdir + math.sin(a) * palm_n)
            cur = cur + frac * flen * fdir
            pts.append(cur)
    palm = np.array([wrist + 0.016 * lat, cmc + 0.008 * lat, mcps[0] + 0.006 * lat + 0.004 * h,
                     mcps[3] - 0.006 * lat + 0.003 * h, wrist - 0.016 * lat])
    return _Hand(side=side, wrist=wrist, points=np.array(pts), palm=palm, h=h, lat=lat)


def _foot(side: int, ankle: np.ndarray, R_pelvis: np.ndarray, toe_out: float, ankle_deg: float) -> _Foot:
    sigma = 1.0 if side == 0 else -1.0
    g = math.radians(toe_out)
    fwd = R_pelvis @ np.array([sigma * math.sin(g), 0.0, math.cos(g)])
    lat = R_pelvis @ np.array([sigma * math.cos(g), 0.0, -math.sin(g)])  # outwards
    down = R_pelvis @ np.array([0.0, 1.0, 0.0])
    r = math.radians(ankle_deg)
    fwd, down = math.cos(r) * fwd + math.sin(r) * down, math.cos(r) * down - math.sin(r) * fwd
    sole = ankle + 0.04 * down
    heel = sole - 0.045 * fwd
    big = sole + 0.115 * fwd - 0.012 * lat
    small = sole + 0.088 * fwd + 0.024 * lat
    outline = np.array([
        ankle - 0.022 * lat + 0.005 * down, ankle + 0.022 * lat + 0.005 * down,
        heel + 0.018 * lat, heel - 0.018 * lat, heel - 0.01 * down,
        sole + 0.07 * fwd + 0.03 * lat, small + 0.006 * fwd, big + 0.01 * fwd, big - 0.012 * lat,
        sole + 0.07 * fwd - 0.024 * lat,
    ])
    soles = np.array([heel, sole + 0.07 * fwd, big, small])
    return _Foot(side=side, ankle=ankle, heel=heel, big_toe=big, small_toe=small, outline=outline, soles=soles)


def _skeleton(pose: Pose, look: Look) -> _Skeleton:
    """Forward kinematics in figure units; afterwards the lowest sole point sits at y = -hop."""
    d = _Dims.of(look)
    Rp = _rot_y(pose.yaw) @ _rot_z(pose.hip_roll)
    Rc = Rp @ _rot_z(pose.lean_side) @ _rot_x(pose.lean_forward) @ _rot_y(pose.twist)
    Rn = Rc @ _rot_z(0.4 * pose.head_roll) @ _rot_x(0.4 * pose.head_nod)
    Rh = Rc @ _rot_z(pose.head_roll) @ _rot_x(pose.head_nod) @ _rot_y(pose.head_yaw)
    pelvis = np.zeros(3)
    neck_base = Rc @ np.array([0.0, -d.torso, 0.0])
    neck_top = neck_base + Rn @ np.array([0.0, -d.neck, 0.0])
    head_c = neck_top + Rh @ np.array([0.0, -0.055 * look.head, 0.0])

    limbs: list[_Limb] = []
    hands: list[_Hand] = []
    shoulders, hips, feet = [], [], []
    for side in (0, 1):
        sigma = 1.0 if side == 0 else -1.0
        # arm, in the chest frame
        sh = neck_base + Rc @ np.array([sigma * d.sw, 0.012 - pose.shrug[side], 0.0])
        al, be = math.radians(pose.arm_raise[side]), math.radians(pose.arm_forward[side])
        du = np.array([math.cos(be) * sigma * math.sin(al), math.cos(be) * math.cos(al), math.sin(be)])
        top = _perp_unit(np.array([sigma * math.cos(al), -math.sin(al), 0.0]), du, np.array([0.0, 0.0, 1.0]))
        tw = math.radians(pose.arm_twist[side])
        top = _unit(math.cos(tw) * top + math.sin(tw) * _cross(du, top))
        tau = math.radians(pose.elbow_dir[side])
        bend = math.cos(tau) * np.array([0.0, 0.0, 1.0]) + math.sin(tau) * np.array(
            [-sigma * math.cos(al), -math.sin(al), 0.0])
        p = _perp_unit(bend, du, top)
        e = math.radians(pose.elbow[side])
        df = _unit(math.cos(e) * du + math.sin(e) * p)
        top_f = _perp_unit(top, df, p)
        du_w, df_w, p_w = Rc @ du, Rc @ df, Rc @ p
        elbow = sh + d.upper_arm * du_w
        wrist = elbow + d.forearm * df_w
        limbs.append(_Limb(sh, elbow, Rc @ top, d.r_upper_arm, _CHARTS["upper_arm"][side], "upper_arm", side))
        limbs.append(_Limb(elbow, wrist, Rc @ top_f, d.r_forearm, _CHARTS["lower_arm"][side], "lower_arm", side))
        hands.append(_hand(side, wrist, df_w, p_w, pose.wrist[side], pose.grip[side]))
        shoulders.append(sh)
        # leg, in the pelvis frame
        hip = Rp @ np.array([sigma * d.hw, 0.0, 0.0])
        al, be = math.radians(pose.leg_out[side]), math.radians(pose.leg_forward[side])
        dt = np.array([math.cos(be) * sigma * math.sin(al), math.cos(be) * math.cos(al), math.sin(be)])
        front = _perp_unit(np.array([0.0, 0.0, 1.0]), dt, np.array([0.0, -1.0, 0.0]))
        pk = _perp_unit(np.array([0.0, 0.0, -1.0]), dt, np.array([0.0, 1.0, 0.0]))
        k = math.radians(pose.knee[side])
        ds = _unit(math.cos(k) * dt + math.sin(k) * pk)
        front_s = _perp_unit(front, ds, np.array([0.0, 0.0, 1.0]))
        knee = hip + d.thigh * (Rp @ dt)
        ankle = knee + d.shin * (Rp @ ds)
        limbs.append(_Limb(hip, knee, Rp @ front, d.r_thigh, _CHARTS["upper_leg"][side], "upper_leg", side))
        limbs.append(_Limb(knee, ankle, Rp @ front_s, d.r_shin, _CHARTS["lower_leg"][side], "lower_leg", side))
        feet.append(_foot(side, ankle, Rp, pose.toe_out[side], pose.ankle[side]))
        hips.append(hip)

    # face landmarks and ears on the head ellipsoid
    rx, ry = d.head_rx, d.head_ry
    tpl = _face_template(pose.mouth)
    z = np.sqrt(np.clip(1.0 - tpl[:, 0] ** 2 - tpl[:, 1] ** 2, 0.0, None)) * 0.9
    for i, bump in _NOSE_BUMP.items():
        z[i] += bump
    local = np.stack([tpl[:, 0] * rx, tpl[:, 1] * ry, z * rx], axis=1)
    face = head_c + local @ Rh.T
    ears = [head_c + Rh @ np.array([s * rx * 0.98, _EYE_Y * ry + 0.1 * ry, -0.1 * rx]) for s in (1.0, -1.0)]

    sk = _Skeleton(pelvis, neck_base, neck_top, head_c, Rp, Rc, Rh, shoulders, hips, limbs, hands, feet, face,
                   ears, d)
    lowest = max(float(f.soles[:, 1].max()) for f in feet)
    _shift(sk, np.array([pose.x, -lowest - pose.hop, 0.0]))
    return sk


def _shift(sk: _Skeleton, off: np.ndarray) -> None:
    for name in ("pelvis", "neck_base", "neck_top", "head_c", "face"):
        setattr(sk, name, getattr(sk, name) + off)
    sk.shoulders = [p + off for p in sk.shoulders]
    sk.hips = [p + off for p in sk.hips]
    sk.ears = [p + off for p in sk.ears]
    for limb in sk.limbs:
        limb.a, limb.b = limb.a + off, limb.b + off
    for hand in sk.hands:
        hand.wrist, hand.points, hand.palm = hand.wrist + off, hand.points + off, hand.palm + off
    for foot in sk.feet:
        for name in ("ankle", "heel", "big_toe", "small_toe", "outline", "soles"):
            setattr(foot, name, getattr(foot, name) + off)


def _keypoints3d(sk: _Skeleton) -> np.ndarray:
    """The 133 keypoints as 3-D points in figure units (DWPose order)."""
    kp = np.zeros((N_KEYPOINTS, 3))
    face = sk.face
    kp[INDEX["nose"]] = face[30]
    kp[INDEX["left_eye"]] = face[42:48].mean(axis=0)
    kp[INDEX["right_eye"]] = face[36:42].mean(axis=0)
    kp[INDEX["left_ear"]], kp[INDEX["right_ear"]] = sk.ears
    upper = {(lb.name, lb.side): lb for lb in sk.limbs}
    for side, name in ((0, "left"), (1, "right")):
        kp[INDEX[f"{name}_shoulder"]] = sk.shoulders[side]
        kp[INDEX[f"{name}_elbow"]] = upper[("upper_arm", side)].b
        kp[INDEX[f"{name}_wrist"]] = upper[("lower_arm", side)].b
        kp[INDEX[f"{name}_hip"]] = sk.hips[side]
        kp[INDEX[f"{name}_knee"]] = upper[("upper_leg", side)].b
        kp[INDEX[f"{name}_ankle"]] = upper[("lower_leg", side)].b
        foot = sk.feet[side]
        kp[INDEX[f"{name}_big_toe"]] = foot.big_toe
        kp[INDEX[f"{name}_small_toe"]] = foot.small_toe
        kp[INDEX[f"{name}_heel"]] = foot.heel
        start = INDEX[f"{name}_hand_wrist"]
        kp[start:start + 21] = sk.hands[side].points
    kp[INDEX["face_0"]:INDEX["face_0"] + 68] = face
    return kp


def _project(pts: np.ndarray, pl: Placement) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    out = np.empty(pts.shape[:-1] + (2,))
    out[..., 0] = pl.center_x + pl.height * pts[..., 0]
    out[..., 1] = pl.ground_y + pl.height * pts[..., 1]
    return out


def figure_keypoints(pose: Pose, look: Look, placement: Placement) -> np.ndarray:
    """The (133, 3) float32 keypoints of a pose without rendering (score 1 everywhere)."""
    sk = _skeleton(pose, look)
    kp = np.ones((N_KEYPOINTS, 3), dtype=np.float32)
    kp[:, :2] = _project(_keypoints3d(sk), placement)
    return kp


def figure_extent(pose: Pose, look: Look) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of everything drawn, in figure units with the floor at y = 0."""
    sk = _skeleton(pose, look)
    kp = _keypoints3d(sk)
    up = sk.R_head @ np.array([0.0, -1.0, 0.0])
    extra = [sk.head_c + up * sk.dims.head_ry * (1.6 if look.hair_style == "bun" else 1.2)]
    for s in (-1.0, 1.0):
        extra.append(sk.head_c + sk.R_head @ np.array([s * sk.dims.head_rx * 1.25, 0.0, 0.0]))
    pts = np.concatenate([kp, np.array(extra)], axis=0)
    m = 0.04
    return (float(pts[:, 0].min() - m), float(pts[:, 1].min() - m), float(pts[:, 0].max() + m),
            float(pts[:, 1].max() + 0.01))


# ----------------------------------------------------------------------------- surfaces


def _shade(n_dot_l: np.ndarray) -> np.ndarray:
    return (0.6 + 0.42 * np.clip(n_dot_l, 0.0, 1.0)).astype(np.float32)


def _pattern_rgb(p: Pattern, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Colour of a print at surface coordinates X (around, figure units) and Y (along)."""
    cols = np.asarray(p.colors, dtype=np.float32)
    n = len(cols)
    if p.kind == "plain" or n == 1:
        return np.broadcast_to(cols[0], X.shape + (3,)).astype(np.float32)
    a = math.radians(p.angle)
    if p.kind == "stripes":
        q = (X * math.sin(a) + Y * math.cos(a)) / p.period
        return cols[np.floor(q).astype(np.int64) % n]
    if p.kind == "checks":
        q = np.floor(X / p.period).astype(np.int64) + np.floor(Y / p.period).astype(np.int64)
        return cols[q % n]
    if p.kind == "dots":
        gy = Y / p.period
        row = np.floor(gy + 0.5)
        gx = X / p.period + 0.5 * (row % 2)
        d2 = (gx - np.round(gx)) ** 2 + (gy - row) ** 2
        idx = np.where(d2 < 0.09, 1 + (row.astype(np.int64) % max(n - 1, 1)), 0)
        return cols[np.minimum(idx, n - 1)]
    if p.kind == "gradient":
        w = (0.5 + 0.5 * np.sin((Y * math.cos(a) + X * math.sin(a)) / p.period * 0.5)).astype(np.float32)
        return cols[0] * (1.0 - w[..., None]) + cols[1] * w[..., None]
    # chevron
    tri = np.abs((X / p.period) % 2.0 - 1.0)
    q = Y / p.period + 0.8 * tri
    return cols[np.floor(q).astype(np.int64) % n]


class _Canvas:
    def __init__(self, background: np.ndarray, pl: Placement) -> None:
        self.rgb = background.copy()
        self.h, self.w = background.shape[:2]
        self.iuv = np.zeros((self.h, self.w, 3), dtype=np.uint8)
        self.pl = pl

    def grid(self, x0: float, y0: float, x1: float, y1: float):
        """Pixel-centre coordinate vectors of a clipped box, or None when it misses the image."""
        xa, ya = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        xb, yb = min(int(math.ceil(x1)) + 1, self.w), min(int(math.ceil(y1)) + 1, self.h)
        if xa >= xb or ya >= yb:
            return None
        return xa, ya, np.arange(xa, xb, dtype=np.float32)[None, :], np.arange(ya, yb, dtype=np.float32)[:, None]

    def put(self, xa: int, ya: int, inside: np.ndarray, part: np.ndarray | int, u: np.ndarray, v: np.ndarray,
            rgb: np.ndarray) -> None:
        h, w = inside.shape
        sub_iuv = self.iuv[ya:ya + h, xa:xa + w]
        sub_rgb = self.rgb[ya:ya + h, xa:xa + w]
        vals = np.empty((u.shape[0], 3), dtype=np.uint8)
        vals[:, 0] = part
        vals[:, 1] = np.rint(np.clip(u, 0.0, 1.0) * 255.0)
        vals[:, 2] = np.rint(np.clip(v, 0.0, 1.0) * 255.0)
        sub_iuv[inside] = vals
        sub_rgb[inside] = np.clip(rgb, 0.0, 255.0)


def _azimuth(s: np.ndarray, L: np.ndarray, F: np.ndarray, p3: np.ndarray, a: float = 1.0, b: float = 1.0):
    """Visible azimuth phi of a cross-section point at normalised screen offset s.

    The section is X(phi) = a sin(phi) L + b cos(phi) F; phi = 0 is the centre of the
    front (or outer) chart. Returns (phi, sin phi, cos phi).
    """
    lp, fp = a * float(L @ p3), b * float(F @ p3)
    delta = math.atan2(fp, lp)
    asn = np.arcsin(np.clip(s, -1.0, 1.0))
    # The visible branch is the one whose normal faces the camera at s = 0.
    nz_front = math.sin(-delta) * L[2] / a + math.cos(-delta) * F[2] / b
    phi = asn - delta if nz_front >= 0 else math.pi - asn - delta
    phi = (phi + math.pi) % (2 * math.pi) - math.pi
    return phi.astype(np.float32), np.sin(phi).astype(np.float32), np.cos(phi).astype(np.float32)


def _chart_v(phi: np.ndarray, front: np.ndarray) -> np.ndarray:
    """V over a half-cylinder chart: phi in [-pi/2, pi/2] around the chart centre -> [0, 1]."""
    back = (phi % (2 * np.pi)) - np.pi
    return np.where(front, phi, back) / np.pi + 0.5


class _Painter:
    """Paints the parts of one skeleton onto a canvas."""

    def __init__(self, sk: _Skeleton, look: Look, canvas: _Canvas) -> None:
        self.sk, self.look, self.cv = sk, look, canvas
        self.scale = canvas.pl.height
        self.skin = np.asarray(look.skin, dtype=np.float32)
        self.bottom = np.asarray(look.bottom, dtype=np.float32)

    def p2(self, pts: np.ndarray) -> np.ndarray:
        return _project(pts, self.cv.pl)

    # --- limbs -------------------------------------------------------------------------
    def limb(self, lb: _Limb) -> None:
        a2, b2 = self.p2(lb.a), self.p2(lb.b)
        ra, rb = lb.radii[0] * self.scale, lb.radii[1] * self.scale
        r = max(ra, rb)
        g = self.cv.grid(min(a2[0], b2[0]) - r, min(a2[1], b2[1]) - r, max(a2[0], b2[0]) + r,
                         max(a2[1], b2[1]) + r)
        if g is None:
            return
        xa, ya, xs, ys = g
        dx, dy = float(b2[0] - a2[0]), float(b2[1] - a2[1])
        l2 = dx * dx + dy * dy
        ln = math.sqrt(l2)
        ux, uy = (dx / ln, dy / ln) if ln > 1e-6 else (0.0, 1.0)
        px, py = -uy, ux
        rx, ry = xs - float(a2[0]), ys - float(a2[1])
        t = (rx * dx + ry * dy) / l2 if l2 > 1e-9 else np.zeros_like(rx * ry)
        tc = np.clip(t, 0.0, 1.0)
        rad = ra + (rb - ra) * tc
        ex, ey = rx - tc * dx, ry - tc * dy
        inside = ex * ex + ey * ey <= rad * rad
        if not inside.any():
            return
        t = np.broadcast_to(t, inside.shape)[inside]
        tc = tc[inside] if tc.shape == inside.shape else np.broadcast_to(tc, inside.shape)[inside]
        rad = np.broadcast_to(rad, inside.shape)[inside]
        sperp = np.broadcast_to(rx * px + ry * py, inside.shape)[inside]
        s = sperp / rad
        D = _unit(lb.b - lb.a, np.array([0.0, 0.0, 1.0]))
        F = _perp_unit(lb.ref, D, np.array([0.0, 0.0, 1.0]))
        L = _cross(D, F)
        p3 = np.array([px, py, 0.0])
        p3 = p3 - float(p3 @ D) * D
        p3 = _unit(p3, L)
        phi, sphi, cphi = _azimuth(s, L, F, p3)
        front = cphi >= 0
        part = np.where(front, lb.charts[0], lb.charts[1]).astype(np.uint8)
        u = np.clip(t, 0.0, 1.0)
        v = _chart_v(phi, front)
        ndl = sphi * float(L @ _LIGHT) + cphi * float(F @ _LIGHT)
        base = self.limb_colour(lb, u, phi, float(np.linalg.norm(lb.b - lb.a)))
        self.cv.put(xa, ya, inside, part, u, v, base * _shade(ndl)[:, None])

    def limb_colour(self, lb: _Limb, u: np.ndarray, phi: np.ndarray, length: float) -> np.ndarray:
        look = self.look
        r = 0.5 * (lb.radii[0] + lb.radii[1])
        X, Y = phi * r, u * length
        skin = np.broadcast_to(self.skin, u.shape + (3,))
        if lb.name in ("upper_arm", "lower_arm"):
            cover = look.sleeves if lb.name == "upper_arm" else look.sleeves - 1.0
            if cover <= 0:
                return skin.astype(np.float32)
            top = _pattern_rgb(look.top, X, Y + (0.0 if lb.name == "upper_arm" else length))
            return np.where((u <= cover)[:, None], top, skin)
        if lb.name == "upper_leg":
            if look.bottom_style == "dress":
                cloth = _pattern_rgb(look.top, X, -Y)
                return np.where((u <= 0.8)[:, None], cloth, skin)
            limit = 1.1 if look.bottom_style == "trousers" else 0.72
            return np.where((u <= limit)[:, None], np.broadcast_to(self.bottom, skin.shape), skin)
        # lower leg
        if look.bottom_style == "trousers":
            return np.broadcast_to(self.bottom, skin.shape).astype(np.float32)
        return skin.astype(np.float32)

    # --- torso -------------------------------------------------------------------------
    def torso(self) -> None:
        sk, look, d = self.sk, self.look, self.sk.dims
        P2, N2 = self.p2(sk.pelvis), self.p2(sk.neck_base)
        ax, ay = float(N2[0] - P2[0]), float(N2[1] - P2[1])
        ln = math.hypot(ax, ay)
        if ln < 1e-6:
            return
        ux, uy = ax / ln, ay / ln
        px, py = -uy, ux  # image-right when the torso is upright
        wmax = 0.11 * max(look.shoulders, look.hips) * self.scale
        off = np.array([px, py]) * wmax
        corners = np.array([P2 + (N2 - P2) * t + sgn * off for t in (-0.2, 1.1) for sgn in (-1.0, 1.0)])
        g = self.cv.grid(float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()),
                         float(corners[:, 1].max()))
        if g is None:
            return
        xa, ya, xs, ys = g
        rx, ry = xs - float(P2[0]), ys - float(P2[1])
        t = (rx * ux + ry * uy) / ln
        sp = rx * px + ry * py
        # The cross-section frame turns from the pelvis to the chest; tabulate it over
        # _TORSO_BINS heights (phase, width factor, branch and lighting per bin).
        p3 = np.array([px, py, 0.0])
        tb = np.linspace(0.0, 1.0, _TORSO_BINS)[:, None]
        Lb = (1 - tb) * sk.R_pelvis[:, 0] + tb * sk.R_chest[:, 0]
        Fb = (1 - tb) * sk.R_pelvis[:, 2] + tb * sk.R_chest[:, 2]
        Lb /= np.linalg.norm(Lb, axis=1, keepdims=True)
        Fb /= np.linalg.norm(Fb, axis=1, keepdims=True)
        lp, fp = Lb @ p3, _TORSO_DEPTH * (Fb @ p3)
        rho = np.hypot(lp, fp).astype(np.float32)
        delta = np.arctan2(fp, lp)
        front_branch = np.sin(-delta) * Lb[:, 2] + np.cos(-delta) * Fb[:, 2] / _TORSO_DEPTH >= 0
        lit_l, lit_f = (Lb @ _LIGHT).astype(np.float32), (Fb @ _LIGHT).astype(np.float32)
        bins = np.rint(np.clip(t, 0.0, 1.0) * (_TORSO_BINS - 1)).astype(np.intp)
        w = d.torso_half_width(t, look) * self.scale * rho[bins]
        sn = sp / np.maximum(w, 1e-6)
        inside = (np.abs(sn) <= 1.0) & (t >= -0.13 + 0.11 * sn * sn) & (t <= 1.04 - 0.1 * sn * sn)
        if not inside.any():
            return
        t_in, s_in, b_in = t[inside], sn[inside], bins[inside]
        asn = np.arcsin(np.clip(s_in, -1.0, 1.0))
        dl = delta[b_in].astype(np.float32)
        phi = np.where(front_branch[b_in], asn - dl, np.float32(np.pi) - asn - dl)
        phi = ((phi + np.pi) % (2 * np.pi) - np.pi).astype(np.float32)
        sphi, cphi = np.sin(phi), np.cos(phi)
        front = cphi >= 0
        part = np.where(front, 2, 1).astype(np.uint8)
        u = np.clip((t_in + 0.13) / 1.17, 0.0, 1.0)
        v = _chart_v(phi, front)
        ndl = sphi * lit_l[b_in] + cphi * lit_f[b_in]
        X = phi * 0.09 * look.shoulders
        Y = t_in * d.torso
        top = _pattern_rgb(look.top, X, Y)
        if look.bottom_style == "dress":
            base = top
        else:
            base = np.where((t_in < 0.16)[:, None], np.broadcast_to(self.bottom, top.shape), top)
        self.cv.put(xa, ya, inside, part, u, v, base * _shade(ndl)[:, None])

    # --- head --------------------------------------------------------------------------
    def head_frame(self):
        sk = self.sk
        c2 = self.p2(sk.head_c)
        up3 = sk.R_head @ np.array([0.0, -1.0, 0.0])
        up = np.array([up3[0], up3[1]])
        up = up / max(np.linalg.norm(up), 1e-6)
        down = -up
        right = np.array([down[1], -down[0]])  # image-right when upright
        return c2, right, down

    def head_coords(self, xs: np.ndarray, ys: np.ndarray):
        """Normalised head-frame coordinates (nx, ny) of pixel centres."""
        c2, right, down = self.head_frame()
        rx, ry = self.sk.dims.head_rx * self.scale, self.sk.dims.head_ry * self.scale
        qx, qy = xs - float(c2[0]), ys - float(c2[1])
        nx = (qx * float(right[0]) + qy * float(right[1])) / rx
        ny = (qx * float(down[0]) + qy * float(down[1])) / ry
        return nx, ny

    def head_delta(self) -> float:
        Rh = self.sk.R_head
        _, right, _ = self.head_frame()
        p3 = np.array([right[0], right[1], 0.0])
        return math.atan2(float(Rh[:, 2] @ p3), float(Rh[:, 0] @ p3))

    def head_iuv(self, nx: np.ndarray, ny: np.ndarray):
        """Part, U, V, azimuth and shading of head-surface pixels (clipped outside the ellipse)."""
        delta = self.head_delta()
        ring = np.sqrt(np.clip(1.0 - ny * ny, 1e-4, None))
        s = np.clip(nx / ring, -1.0, 1.0)
        phi = (np.arcsin(s) - delta).astype(np.float32)
        part = np.where(phi < 0, _HEAD_RIGHT, _HEAD_LEFT).astype(np.uint8)
        u = np.clip((ny + 1.0) / 2.0, 0.0, 1.0)
        v = np.where(phi < 0, (phi + np.pi) / np.pi, phi / np.pi)
        nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, None))
        _, right, down = self.head_frame()
        lr = right[0] * _LIGHT[0] + right[1] * _LIGHT[1]
        ld = down[0] * _LIGHT[0] + down[1] * _LIGHT[1]
        shade = _shade(nx * lr + ny * ld + nz * _LIGHT[2])
        return part, u, v, phi, shade

    def ellipse_grid(self, cx: float, cy: float, r: float):
        return self.cv.grid(cx - r, cy - r, cx + r, cy + r)

    def head(self) -> None:
        d = self.sk.dims
        c2, _, _ = self.head_frame()
        r = max(d.head_rx, d.head_ry) * self.scale * 1.02
        g = self.ellipse_grid(float(c2[0]), float(c2[1]), r)
        if g is None:
            return
        xa, ya, xs, ys = g
        nx, ny = self.head_coords(xs, ys)
        inside = nx * nx + ny * ny <= 1.0
        if not inside.any():
            return
        part, u, v, _, shade = self.head_iuv(nx[inside], ny[inside])
        self.cv.put(xa, ya, inside, part, u, v, self.skin[None, :] * shade[:, None])

    def neck(self) -> None:
        sk = self.sk
        a2, b2 = self.p2(sk.neck_base), self.p2(sk.neck_top + (sk.neck_top - sk.neck_base) * 0.6)
        r = sk.dims.r_neck * self.scale
        g = self.cv.grid(min(a2[0], b2[0]) - r, min(a2[1], b2[1]) - r, max(a2[0], b2[0]) + r,
                         max(a2[1], b2[1]) + r)
        if g is None:
            return
        xa, ya, xs, ys = g
        dx, dy = float(b2[0] - a2[0]), float(b2[1] - a2[1])
        l2 = max(dx * dx + dy * dy, 1e-9)
        rx, ry = xs - float(a2[0]), ys - float(a2[1])
        tc = np.clip((rx * dx + ry * dy) / l2, 0.0, 1.0)
        ex, ey = rx - tc * dx, ry - tc * dy
        inside = ex * ex + ey * ey <= r * r
        if not inside.any():
            return
        nx, ny = self.head_coords(xs, ys)
        nx, ny = np.broadcast_to(nx, inside.shape)[inside], np.broadcast_to(ny, inside.shape)[inside]
        part, u, v, _, _ = self.head_iuv(np.clip(nx, -1, 1), np.clip(ny, -1, 1))
        ln = math.sqrt(l2)
        sperp = np.broadcast_to((rx * -dy + ry * dx) / ln, inside.shape)[inside] / r
        shade = _shade(np.sqrt(np.clip(1 - sperp * sperp, 0, 1)) * 0.8 - 0.3 * sperp) * 0.93
        self.cv.put(xa, ya, inside, part, np.ones_like(u), v, self.skin[None, :] * shade[:, None])

    def ear(self, side: int) -> None:
        d = self.sk.dims
        c = self.p2(self.sk.ears[side])
        erx, ery = 0.2 * d.head_rx * self.scale, 0.3 * d.head_ry * self.scale
        g = self.ellipse_grid(float(c[0]), float(c[1]), max(erx, ery))
        if g is None:
            return
        xa, ya, xs, ys = g
        _, right, down = self.head_frame()
        qx, qy = xs - float(c[0]), ys - float(c[1])
        ex = (qx * float(right[0]) + qy * float(right[1])) / erx
        ey = (qx * float(down[0]) + qy * float(down[1])) / ery
        inside = ex * ex + ey * ey <= 1.0
        if not inside.any():
            return
        nx, ny = self.head_coords(xs, ys)
        nx, ny = np.broadcast_to(nx, inside.shape)[inside], np.broadcast_to(ny, inside.shape)[inside]
        _, u, v, _, shade = self.head_iuv(np.clip(nx, -1, 1), np.clip(ny, -1, 1))
        part = np.full(u.shape, _HEAD_LEFT if side == 0 else _HEAD_RIGHT, dtype=np.uint8)
        self.cv.put(xa, ya, inside, part, u, v, self.skin[None, :] * (0.88 * shade)[:, None])

    def hair(self, layer: str) -> None:
        """Paint the hair: layer 'back' (behind the body) or 'front' (over the head)."""
        look, d = self.look, self.sk.dims
        style = look.hair_style
        if layer == "back" and style not in ("long", "bob"):
            return
        c2, right, down = self.head_frame()
        ry = d.head_ry * self.scale
        extent = 3.4 * ry if layer == "back" else 1.7 * ry
        g = self.ellipse_grid(float(c2[0]), float(c2[1]), extent)
        if g is None:
            return
        xa, ya, xs, ys = g
        nx, ny = self.head_coords(xs, ys)
        delta = self.head_delta()
        if layer == "back":
            length = 3.1 if style == "long" else 0.95
            width = 1.22 if style == "long" else 1.2
            taper = width - 0.12 * np.clip(ny - 0.5, 0.0, None)
            inside = (np.abs(nx) <= taper) & (ny <= length) & (ny >= -0.2)
            inside |= (nx / width) ** 2 + (ny / 1.1) ** 2 <= 1.0
        else:
            vol = {"short": 1.08, "buzz": 1.0, "bob": 1.16, "long": 1.12, "bun": 1.06}[style]
            outer = (nx / vol) ** 2 + ((ny + 0.05) / (vol - 0.02)) ** 2 <= 1.0
            in_head = nx * nx + ny * ny < 1.0
            ring = np.sqrt(np.clip(1.0 - ny * ny, 1e-4, None))
            phi = np.arcsin(np.clip(nx / ring, -1.0, 1.0)) - delta
            front_line = {"short": -0.55, "buzz": -0.62, "bob": -0.45, "long": -0.5, "bun": -0.58}[style]
            line = front_line + 0.55 * (1.0 - np.cos(np.clip(phi, -math.pi / 2, math.pi / 2)))
            if style in ("bob", "long"):
                side_len = 0.72 if style == "bob" else 0.95
                cap = (ny < line) | ((np.abs(phi) > 1.05) & (ny < side_len))
                out_lim = side_len
            else:
                cap = ny < line
                out_lim = -0.1 if style != "buzz" else -0.3
            inside = outer & np.where(in_head, cap, ny < out_lim)
            if style == "bun":
                inside |= nx * nx + ((ny + 1.05) / 0.95) ** 2 <= 0.42 ** 2
        if not inside.any():
            return
        nx_i = np.broadcast_to(nx, inside.shape)[inside]
        ny_i = np.broadcast_to(ny, inside.shape)[inside]
        ring = np.sqrt(np.clip(1.0 - np.clip(ny_i, -1, 1) ** 2, 1e-4, None))
        s = np.clip(nx_i / ring, -1.0, 1.0)
        phi = (np.arcsin(s) - delta).astype(np.float32)
        part = np.where(nx_i < math.sin(delta) * ring, _HEAD_RIGHT, _HEAD_LEFT).astype(np.uint8)
        u = np.clip((ny_i + 1.0) / 2.0, 0.0, 1.0)
        v = np.where(part == _HEAD_RIGHT, (phi + np.pi) / np.pi, phi / np.pi)
        strands = 0.9 + 0.1 * np.sin(phi * 18.0 + ny_i * 3.0)
        shade = _shade(np.cos(phi) * 0.6 - 0.45 * np.clip(ny_i, -1, 1)) * strands
        if layer == "back":
            shade = shade * 0.8
        hair = np.asarray(look.hair, dtype=np.float32)
        if style == "buzz":
            hair = 0.6 * hair + 0.4 * self.skin
        self.cv.put(xa, ya, inside, part, u, v, hair[None, :] * shade[:, None])

    def face(self) -> None:
        """Eyes, brows, nose and mouth, drawn on the RGB only and clipped to head pixels."""
        sk, look = self.sk, self.look
        f2 = self.p2(sk.face)
        fz = (sk.face - sk.head_c) @ sk.R_head[:, 2]
        rx = sk.dims.head_rx * self.scale
        box = self.cv.grid(float(f2[:, 0].min()) - 3, float(f2[:, 1].min()) - 3, float(f2[:, 0].max()) + 3,
                           float(f2[:, 1].max()) + 3)
        if box is None:
            return
        xa, ya, xs, ys = box
        h, w = ys.shape[0], xs.shape[1]
        crop = self.cv.rgb[ya:ya + h, xa:xa + w]
        work = np.ascontiguousarray(crop)
        sh = 4
        pts = np.rint((f2 - np.array([xa, ya])) * (1 << sh)).astype(np.int32)

        def poly(idx, colour, closed=True, thick=0):
            if (fz[list(idx)] < 0).any():
                return
            p = pts[list(idx)].reshape(-1, 1, 2)
            col = tuple(int(c) for c in colour)
            if closed and thick == 0:
                cv2.fillPoly(work, [p], col, lineType=cv2.LINE_AA, shift=sh)
            else:
                cv2.polylines(work, [p], closed, col, max(1, thick), lineType=cv2.LINE_AA, shift=sh)

        skin = np.asarray(look.skin, dtype=np.float32)
        dark = tuple(int(c) for c in skin * 0.62)
        lw = max(1, int(round(0.07 * rx)))
        for brow in (range(17, 22), range(22, 27)):
            poly(brow, np.asarray(look.hair, dtype=np.float32) * 0.8, closed=False, thick=lw)
        for eye in (range(36, 42), range(42, 48)):
            idx = list(eye)
            if (fz[idx] < 0).any():
                continue
            poly(idx, (245, 245, 240))
            c = f2[idx].mean(axis=0) - np.array([xa, ya])
            rr = max(0.8, 0.075 * rx + 0.5)
            cv2.circle(work, tuple(int(v) for v in np.rint(c * (1 << sh))), int(rr * (1 << sh)),
                       tuple(int(v) for v in look.eyes), -1, lineType=cv2.LINE_AA, shift=sh)
            poly(idx[:4], (40, 30, 30), closed=False, thick=max(1, lw - 1))
        poly(range(27, 31), dark, closed=False, thick=max(1, lw - 1))
        poly(range(31, 36), dark, closed=False, thick=max(1, lw - 1))
        poly(range(48, 60), look.lips)
        poly(range(60, 68), (90, 30, 40))
        head_px = (self.cv.iuv[ya:ya + h, xa:xa + w, 0] == _HEAD_RIGHT) | (
            self.cv.iuv[ya:ya + h, xa:xa + w, 0] == _HEAD_LEFT)
        crop[head_px] = work[head_px]

    # --- hands and feet ----------------------------------------------------------------
    def hand(self, hand: _Hand) -> None:
        pts2 = self.p2(hand.points)
        palm2 = self.p2(hand.palm)
        rf = self.sk.dims.r_finger * self.scale
        allp = np.concatenate([pts2, palm2])
        g = self.cv.grid(float(allp[:, 0].min()) - rf - 1, float(allp[:, 1].min()) - rf - 1,
                         float(allp[:, 0].max()) + rf + 1, float(allp[:, 1].max()) + rf + 1)
        if g is None:
            return
        xa, ya, xs, ys = g
        h, w = ys.shape[0], xs.shape[1]
        sh = 4
        palm_mask = np.zeros((h, w), dtype=np.uint8)
        poly = np.rint((palm2 - np.array([xa, ya])) * (1 << sh)).astype(np.int32)
        hull = cv2.convexHull(poly)
        cv2.fillPoly(palm_mask, [hull], 1, lineType=cv2.LINE_8, shift=sh)
        inside = palm_mask.astype(bool)
        shade_map = np.full((h, w), 0.92, dtype=np.float32)
        for f in range(5):
            chain = [1 + 4 * f + j for j in range(4)]
            for j in range(len(chain) - 1):
                a2, b2 = pts2[chain[j]], pts2[chain[j + 1]]
                r = rf * (1.15 if f == 0 else 1.0)
                dx, dy = float(b2[0] - a2[0]), float(b2[1] - a2[1])
                l2 = dx * dx + dy * dy
                rx_, ry_ = xs - float(a2[0]), ys - float(a2[1])
                tc = np.clip((rx_ * dx + ry_ * dy) / l2, 0.0, 1.0) if l2 > 1e-9 else np.zeros((1, 1))
                ex, ey = rx_ - tc * dx, ry_ - tc * dy
                d2 = ex * ex + ey * ey
                seg = d2 <= r * r
                inside |= seg
                shade_map = np.where(seg, 1.0 - 0.3 * d2 / max(r * r, 1e-6), shade_map)
        if not inside.any():
            return
        w2 = pts2[0]
        hv = self.p2(hand.wrist + hand.h) - w2
        lv = self.p2(hand.wrist + hand.lat) - w2
        reach = max(float(np.max((pts2 - w2) @ hv / max(hv @ hv, 1e-9))), 1e-3)
        qx = np.broadcast_to(xs - float(w2[0]), inside.shape)[inside]
        qy = np.broadcast_to(ys - float(w2[1]), inside.shape)[inside]
        u = (qx * hv[0] + qy * hv[1]) / max(float(hv @ hv), 1e-9) / reach
        v = 0.5 + (qx * lv[0] + qy * lv[1]) / max(float(lv @ lv), 1e-9) / 0.06
        rgb = self.skin[None, :] * (shade_map[inside] * 0.97)[:, None]
        self.cv.put(xa, ya, inside, _HAND_PART[hand.side], u, v, rgb)

    def foot(self, foot: _Foot) -> None:
        out2 = self.p2(foot.outline)
        g = self.cv.grid(float(out2[:, 0].min()) - 1, float(out2[:, 1].min()) - 1, float(out2[:, 0].max()) + 1,
                         float(out2[:, 1].max()) + 1)
        if g is None:
            return
        xa, ya, xs, ys = g
        h, w = ys.shape[0], xs.shape[1]
        sh = 4
        m = np.zeros((h, w), dtype=np.uint8)
        poly = np.rint((out2 - np.array([xa, ya])) * (1 << sh)).astype(np.int32)
        cv2.fillPoly(m, [cv2.convexHull(poly)], 1, lineType=cv2.LINE_8, shift=sh)
        inside = m.astype(bool)
        if not inside.any():
            return
        heel2, toe2 = self.p2(foot.heel), self.p2(0.5 * (foot.big_toe + foot.small_toe))
        ank2 = self.p2(foot.ankle)
        axis = toe2 - heel2
        if float(axis @ axis) < 1.0:
            axis = toe2 - ank2
        a2 = max(float(axis @ axis), 1e-6)
        perp = np.array([-axis[1], axis[0]]) / math.sqrt(a2)
        qx = np.broadcast_to(xs - float(heel2[0]), inside.shape)[inside]
        qy = np.broadcast_to(ys - float(heel2[1]), inside.shape)[inside]
        u = (qx * axis[0] + qy * axis[1]) / a2
        half = 0.03 * self.scale
        v = 0.5 + (qx * perp[0] + qy * perp[1]) / (2 * half)
        shoe = np.asarray(self.look.shoes, dtype=np.float32)
        shade = 0.75 + 0.25 * np.clip(1.0 - np.abs(v - 0.5) * 2, 0, 1)
        self.cv.put(xa, ya, inside, _FOOT_PART[foot.side], u, v, shoe[None, :] * shade[:, None])


def _draw_order(sk: _Skeleton, painter: _Painter) -> list[tuple[float, object]]:
    """Painter's-algorithm order: (key, callable) pairs, drawn by increasing key."""
    items: list[tuple[float, object]] = []
    chest_z = float((sk.pelvis[2] + sk.neck_base[2]) / 2)
    head_z = float(sk.head_c[2])
    by = {(lb.name, lb.side): lb for lb in sk.limbs}
    items.append((-100.0, lambda: painter.hair("back")))
    items.append((0.0, painter.torso))
    items.append((1.0, painter.neck))
    for side in (0, 1):
        ez = float(sk.ears[side][2] - sk.head_c[2])
        items.append((1.5 if ez < 0.12 * sk.dims.head_rx else 2.2, lambda s=side: painter.ear(s)))
    items.append((2.0, painter.head))
    items.append((2.1, painter.face))
    items.append((2.3, lambda: painter.hair("front")))
    for side in (0, 1):
        thigh, shin, foot = by[("upper_leg", side)], by[("lower_leg", side)], sk.feet[side]
        leg_z = float((thigh.a[2] + thigh.b[2] + shin.b[2]) / 3)
        raised = (thigh.b[2] - thigh.a[2]) / sk.dims.thigh > 0.55
        base = 5.0 if raised else -10.0
        items.append((base + leg_z, lambda lb=thigh: painter.limb(lb)))
        items.append((base + leg_z + 1e-4, lambda lb=shin: painter.limb(lb)))
        items.append((base + leg_z + 2e-4, lambda f=foot: painter.foot(f)))
    for side in (0, 1):
        ua, fa, hand = by[("upper_arm", side)], by[("lower_arm", side)], sk.hands[side]
        arm_z = float((ua.a[2] + ua.b[2] + fa.b[2]) / 3)
        for k, (z, fn) in enumerate(((float(ua.a[2] + ua.b[2]) / 2, lambda lb=ua: painter.limb(lb)),
                                     (float(fa.a[2] + fa.b[2]) / 2, lambda lb=fa: painter.limb(lb)),
                                     (float(hand.points[:, 2].mean()), lambda h=hand: painter.hand(h)))):
            if z < chest_z - 0.035:
                key = -50.0 + z
            elif z < head_z - 0.03 and abs(z - head_z) < 0.2 and k > 0:
                key = 1.8 + 0.01 * k
            else:
                key = 10.0 + arm_z
            items.append((key + k * 1e-4, fn))
    items.sort(key=lambda kv: kv[0])
    return items


def figure_frame(pose: Pose, look: Look, size: int = 512, placement: Placement | None = None,
                 background: np.ndarray | None = None) -> FigureFrame:
    """Render one frame of the figure: image, IUV, mask and the 133 keypoints.

    A small pure function for tests and tools that need a person with exact ground
    truth for a given pose (e.g. checking that a pose-driven model follows the pose).
    ``background`` is an (size, size, 3) uint8 image (default mid grey); ``placement``
    defaults to ``Placement.default(size)``.
    """
    if size < 16:
        raise ValueError(f"figure_frame: size must be at least 16 pixels, got {size}")
    pl = placement if placement is not None else Placement.default(size)
    if background is None:
        background = np.full((size, size, 3), 128, dtype=np.uint8)
    elif background.shape != (size, size, 3) or background.dtype != np.uint8:
        raise ValueError(f"figure_frame: background must be ({size}, {size}, 3) uint8, got "
                         f"{background.shape} {background.dtype}")
    sk = _skeleton(pose, look)
    canvas = _Canvas(background, pl)
    painter = _Painter(sk, look, canvas)
    for _, draw in _draw_order(sk, painter):
        draw()
    kp = np.ones((N_KEYPOINTS, 3), dtype=np.float32)
    kp[:, :2] = _project(_keypoints3d(sk), pl)
    mask = (canvas.iuv[..., 0] > 0).view(np.uint8) * np.uint8(255)
    return FigureFrame(image=canvas.rgb, iuv=canvas.iuv, mask=mask, keypoints=kp)
