"""Test oracle: body joints and hands from an OpenPose-style pose image (the inverse of render_pose).

Real conditioning images made by the reference code (e.g. UniAnimate's saved pose
JPEGs) come without their keypoints. Recovering the keypoints from the stroke
colours and re-rendering them with :func:`toolkit.annotate.render_pose.render_pose`
is how the tests check that our renderer draws what the reference code draws.
It is part of the tests, not of the toolkit: nothing under ``toolkit/`` imports it.

How a joint is found: every joint has its own full-intensity colour and is drawn
as a disc of radius 4 after the (dimmed) limbs, so it is the best-covered disc of
its colour that also touches one of its limbs (a red knee is not taken for a red
hand point). Joints whose disc is hidden (a wrist under the hand points, a
shoulder under a hand) or lies off the canvas are inferred: a shoulder as the
mirror of the other one about the neck (DWPose puts the neck at their midpoint),
the rest by fitting the ellipses of their visible limbs.

How hands are found: all hand points share one colour, so the colour only tells
where the point discs are (a greedy disc cover of the point-coloured pixels);
which point is which comes from the 20 edge colours. Discs go to the nearer body
wrist; the hand's wrist point is the disc from which the five first finger edges
leave; each finger is the chain of discs whose connecting strokes show that
finger's edge hues (dynamic programming, allowing a point hidden under its
neighbours). Last, the hands are drawn over our re-render of the body and fitted
to the image (moves of one pixel, and moves onto other seen discs, kept when the
drawing gets closer to the image as JPEG sees it). Discs hidden entirely under
others cannot be told apart; in a clenched hand the labels are a best guess.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.keypoints import HAND_EDGES, INDEX, LEFT_HAND, N_KEYPOINTS, OPENPOSE18_FROM_COCO, RIGHT_HAND
from toolkit.annotate.render_pose import (
    BODY_COLOURS,
    FACE_COLOUR,
    HAND_EDGE_COLOURS,
    HAND_LINE_THICKNESS,
    HAND_POINT_COLOUR,
    HAND_POINT_RADIUS,
    JOINT_RADIUS,
    LIMB_DIM,
    TOE_JOINTS,
    PoseStyle,
    draw_limb,
    get_style,
    render_pose,
)

# Score column of recovered joints.
FOUND = 1.0      # the joint's own disc was seen
INFERRED = 0.5   # placed by shoulder symmetry or by fitting its limbs

# A pixel has a palette colour when within this RGB (Euclidean) distance of it.
COLOUR_TOLERANCE = 52.0
# Joint discs: share of the disc that must show the joint colour, and share of
# the ring just outside it that must show one of the joint's limbs.
_MIN_DISC_SHARE = 0.35
_MIN_LIMB_TOUCH = 0.05
# An inferred joint is kept when its drawn limbs overlap their visible pixels this much (IoU).
_MIN_FIT_IOU = 0.3
_LUT_BITS = 6
_NECK, _R_SHOULDER, _L_SHOULDER = 1, 2, 5


@functools.lru_cache(maxsize=4)
def _palette(style: PoseStyle) -> tuple[np.ndarray, dict[str, range]]:
    """All colours a pose image of this style contains, and which class range is what."""
    n_limbs = len(style.limbs)
    limbs = [tuple(int(c * LIMB_DIM) for c in style.colour(BODY_COLOURS[i])) for i in range(n_limbs)]
    joints = [style.colour(BODY_COLOURS[j]) for j in range(style.n_joints)]
    hand = [style.colour(c) for c in HAND_EDGE_COLOURS] + [style.colour(HAND_POINT_COLOUR)]
    colours = limbs + joints + hand + [FACE_COLOUR, (0, 0, 0)]
    a, b, c = n_limbs, n_limbs + len(joints), n_limbs + len(joints) + len(hand)
    ranges = {"limb": range(0, a), "joint": range(a, b), "hand": range(b, c), "face": range(c, c + 1),
              "black": range(c + 1, c + 2)}
    return np.asarray(colours, np.float32), ranges


def _nearest_colour_lut(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every quantised RGB colour (2**_LUT_BITS levels a channel): the grid colour, the index of the
    nearest of `colours` and its squared distance."""
    n = 1 << _LUT_BITS
    step = 256 // n
    centres = np.arange(n, dtype=np.float32) * step + (step - 1) / 2
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    best = np.full(len(grid), np.inf, np.float32)
    label = np.full(len(grid), -1, np.int16)
    for k, colour in enumerate(colours):
        d = ((grid - colour) ** 2).sum(-1)
        closer = d < best
        best[closer], label[closer] = d[closer], k
    return grid, label, best


@functools.lru_cache(maxsize=8)
def _class_lut(style: PoseStyle, with_hands: bool = True) -> np.ndarray:
    """Nearest palette class for every colour quantised to _LUT_BITS per channel (-1: near none).

    Without hands, the hand colours are left out of the competition (their hues sit
    between the joint hues, and JPEG noise would push joint discs into them).
    """
    colours, ranges = _palette(style)
    if not with_hands:
        colours = colours.copy()
        colours[ranges["hand"].start:ranges["hand"].stop] = np.inf
    grid, label, best = _nearest_colour_lut(colours)
    label[best > COLOUR_TOLERANCE**2] = -1
    return label


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB pose image, got shape {img.shape} dtype {img.dtype}")
    return img


def classify_pixels(image: np.ndarray, style: str | PoseStyle = "unianimate", with_hands: bool = True) -> np.ndarray:
    """(H, W) index of each pixel's nearest palette colour (limbs first, then joints, hand, face, black; -1: none)."""
    img = _check_image(image)
    shift = 8 - _LUT_BITS
    q = img >> shift
    idx = (q[..., 0].astype(np.int32) << (2 * _LUT_BITS)) | (q[..., 1].astype(np.int32) << _LUT_BITS) | q[..., 2]
    return _class_lut(get_style(style), with_hands)[idx]


def limb_masks(image: np.ndarray, style: str | PoseStyle = "unianimate") -> np.ndarray:
    """(n_limbs, H, W) masks of the pixels that show each limb's dimmed colour."""
    st = get_style(style)
    classes = classify_pixels(image, st)
    return np.stack([classes == i for i in range(len(st.limbs))])


def overdrawn_zone(image: np.ndarray, style: str | PoseStyle = "unianimate", margin: int = 2) -> np.ndarray:
    """Pixels of the strokes drawn over the limbs (joint discs, hand lines and points, face points), plus a margin.

    These are not body strokes; the margin covers their JPEG fringes, whose mixed
    colours would otherwise pass for limb colours.
    """
    st = get_style(style)
    _, ranges = _palette(st)
    classes = classify_pixels(image, st)
    zone = (classes >= ranges["joint"].start) & (classes < ranges["face"].stop)
    size = 2 * margin + 1
    return cv2.dilate(zone.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)


def body_stroke_iou(reference: np.ndarray, candidate: np.ndarray, style: str | PoseStyle = "unianimate") -> float:
    """Agreement of the body limbs of two pose images: IoU of limb-coloured pixels, counted per limb colour.

    "Body strokes" are pixels nearest to one of the dimmed limb colours; joint
    discs, hands and face are not body strokes. A pixel counts as shared only when
    both images show the same limb there. Pixels near the reference's joint discs,
    hand and face strokes (see :func:`overdrawn_zone`) are left out, so a body-only
    candidate is not blamed for limbs the reference's hands hide.
    """
    st = get_style(style)
    ref, cand = limb_masks(reference, st), limb_masks(candidate, st)
    if ref.shape != cand.shape:
        raise ValueError(f"images differ in size: {reference.shape} vs {candidate.shape}")
    keep = ~overdrawn_zone(reference, st)
    inter = ((ref & cand).any(0) & keep).sum()
    union = ((ref.any(0) | cand.any(0)) & keep).sum()
    return float(inter / union) if union else 1.0


def _disc_kernel() -> np.ndarray:
    kernel = np.zeros((2 * JOINT_RADIUS + 1,) * 2, np.uint8)
    cv2.circle(kernel, (JOINT_RADIUS, JOINT_RADIUS), JOINT_RADIUS, 1, thickness=-1)
    return kernel.astype(np.float32) / kernel.sum()


def _ring(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-r1:r1 + 1, -r1:r1 + 1]
    d2 = xx**2 + yy**2
    keep = (d2 >= r0**2) & (d2 <= r1**2)
    return yy[keep], xx[keep]


def _peaks(cover: np.ndarray, floor: float, k: int = 32, spacing: int = JOINT_RADIUS) -> list[tuple[int, int]]:
    """Up to k well-covered disc centres at least ``spacing`` apart, best first (plateaus resolved to their middle)."""
    rank = cover + 0.01 * cv2.GaussianBlur(cover, (0, 0), 2.0)
    ys, xs = np.nonzero((cover >= floor) & (rank >= cv2.dilate(rank, np.ones((3, 3), np.uint8))))
    picked: list[tuple[int, int]] = []
    for i in np.argsort(-rank[ys, xs], kind="stable"):
        y, x = int(ys[i]), int(xs[i])
        if all((y - py) ** 2 + (x - px) ** 2 > spacing**2 for py, px in picked):
            picked.append((y, x))
            if len(picked) == k:
                break
    return picked


def _find_discs(img: np.ndarray, style: PoseStyle, solid: list[np.ndarray]) -> np.ndarray:
    """Joints whose disc is visible: (n_joints, 3) with score FOUND, zeros elsewhere."""
    h, w = img.shape[:2]
    kernel = _disc_kernel()
    ring_y, ring_x = _ring(JOINT_RADIUS + 1, JOINT_RADIUS + 3)
    joints = np.zeros((style.n_joints, 3))
    colours, _ = _palette(style)
    classes = classify_pixels(img, style, with_hands=False)
    for j in range(style.n_joints):
        # Pixels nearest to this joint's colour (or to an identical one, e.g. the red of hand points).
        same = np.flatnonzero((colours == np.asarray(style.colour(BODY_COLOURS[j]), np.float32)).all(-1))
        mask = np.isin(classes, same)
        if not mask.any():
            continue
        cover = cv2.filter2D(mask.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
        near = np.zeros((h, w), bool)
        for i, limb in enumerate(style.limbs):
            if j in limb:
                near |= solid[i]
        best, best_score = None, 0.0
        for y, x in _peaks(cover, _MIN_DISC_SHARE):
            ry, rx = y + ring_y, x + ring_x
            inside = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
            touch = float(near[ry[inside], rx[inside]].mean()) if inside.any() else 0.0
            score = touch + 0.25 * float(cover[y, x])
            if touch >= _MIN_LIMB_TOUCH and score > best_score:
                best, best_score = (x, y), score
        if best is not None:
            # The disc is drawn at the truncated position; +0.5 is the unbiased estimate of the true one.
            joints[j] = (best[0] + 0.5, best[1] + 0.5, FOUND)
    return joints


def _limb_iou(start: np.ndarray, end: np.ndarray, target: np.ndarray, care: np.ndarray, origin: np.ndarray) -> float:
    drawn = np.zeros(target.shape, np.uint8)
    draw_limb(drawn, start - origin, end - origin, (1, 1, 1))
    d = drawn.astype(bool) & care
    t = target & care
    union = (d | t).sum()
    return float((d & t).sum() / union) if union else 0.0


def _axis_line(mask: np.ndarray, anchor: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A point on a limb's axis and the axis direction, from the largest visible piece of the limb.

    With a known end (anchor) the axis runs from it through the piece's centroid;
    without one, along the piece's principal direction. None when the piece is too
    small, too close to the anchor or not elongated.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[k, cv2.CC_STAT_AREA] < 20:
        return None
    ys, xs = np.nonzero(labels == k)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    centre = pts.mean(0)
    if anchor is not None:
        d = centre - anchor
        length = float(np.linalg.norm(d))
        return (anchor, d / length) if length >= 2 * JOINT_RADIUS else None
    evals, evecs = np.linalg.eigh(np.cov((pts - centre).T))
    return (centre, evecs[:, 1]) if evals[1] >= 9 * max(evals[0], 1e-9) else None


def _intersection(lines: list[tuple[np.ndarray, np.ndarray]], min_angle: float = 15.0) -> np.ndarray | None:
    """The point nearest to all lines (least squares); None if they are close to parallel."""
    a, b = np.zeros((2, 2)), np.zeros(2)
    for point, d in lines:
        proj = np.eye(2) - np.outer(d, d)
        a += proj
        b += proj @ point
    if np.linalg.eigvalsh(a)[0] < np.sin(np.deg2rad(min_angle)) ** 2:
        return None
    return np.linalg.solve(a, b)


def _fit_joint(
    anchors: list[tuple[np.ndarray, np.ndarray]],
    occupied: np.ndarray,
    covering: np.ndarray,
    guess: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Position of a hidden joint that best explains its visible limbs, and how well (mean IoU).

    anchors: (known other end, limb mask) per limb. Without a given guess (e.g.
    where limb axes cross), the first guess is one disc radius past the farthest
    limb pixel from each known end. A grid search around it maximises the mean IoU
    between the drawn limb ellipses and the limb pixels, ignoring pixels covered by
    other strokes, minus the share of the joint's disc that would be in plain view
    (``covering`` marks strokes drawn over joints): the disc was not seen, so it
    must lie under other strokes or off the canvas.
    """
    h, w = occupied.shape
    guesses, boxes = [], []
    for start, mask in anchors:
        ys, xs = np.nonzero(mask)
        far = int(np.argmax((xs - start[0]) ** 2 + (ys - start[1]) ** 2))
        tip = np.array([xs[far], ys[far]], np.float64)
        direction = (tip - start) / max(float(np.linalg.norm(tip - start)), 1.0)
        guesses.append(tip + direction * JOINT_RADIUS)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max(), start[0], start[1]])
    given = guess is not None
    guess = np.asarray(guess, np.float64) if given else np.mean(guesses, axis=0)
    # One limb whose visible part ends under a covering stroke (hand points, joint
    # discs): the joint is about one disc radius past the visible end, so only refine
    # that locally. Otherwise (several limbs, a limb running off the canvas or
    # crossed by a later limb) search widely.
    gx, gy = int(round(guess[0])), int(round(guess[1]))
    r = JOINT_RADIUS
    around = covering[max(gy - r, 0):max(gy + r + 1, 0), max(gx - r, 0):max(gx + r + 1, 0)]
    under_cover = around.size > 0 and around.mean() >= 0.3
    stages = ((3, 1),) if given or (len(anchors) == 1 and under_cover) else ((24, 4), (3, 1))
    pad = 40
    box = np.asarray(boxes, np.float64)
    x0 = int(min(box[:, [0, 4]].min(), guess[0]) - pad)
    y0 = int(min(box[:, [1, 5]].min(), guess[1]) - pad)
    x1 = int(max(box[:, [2, 4]].max(), guess[0]) + pad)
    y1 = int(max(box[:, [3, 5]].max(), guess[1]) + pad)
    origin = np.array([x0, y0], np.float64)
    crops = []
    for start, mask in anchors:
        target = np.zeros((y1 - y0, x1 - x0), bool)
        care = np.zeros_like(target)
        sy, sx = slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))
        ty, tx = slice(sy.start - y0, sy.stop - y0), slice(sx.start - x0, sx.stop - x0)
        target[ty, tx] = mask[sy, sx]
        care[ty, tx] = mask[sy, sx] | ~occupied[sy, sx]
        crops.append((start, target, care))

    disc_y, disc_x = np.nonzero(_disc_kernel() > 0)
    disc_y, disc_x = disc_y - JOINT_RADIUS, disc_x - JOINT_RADIUS

    def exposed(p: np.ndarray) -> float:
        ys, xs = int(p[1]) + disc_y, int(p[0]) + disc_x
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        return float((~covering[ys[inside], xs[inside]]).sum() / len(ys))

    def mean_iou(p: np.ndarray) -> float:
        return float(np.mean([_limb_iou(s, p, t, c, origin) for s, t, c in crops]))

    best, best_val, best_iou = np.round(guess), -np.inf, 0.0
    for radius, step in stages:
        centre = best.copy()
        for dy in range(-radius, radius + 1, step):
            for dx in range(-radius, radius + 1, step):
                p = centre + (dx, dy)
                iou = mean_iou(p + 0.5)
                val = iou - exposed(p + 0.5)
                if val > best_val:
                    best, best_val, best_iou = p, val, iou
    return best + 0.5, best_iou


def _limb_agreement(p: np.ndarray, q: np.ndarray, mask: np.ndarray, occupied: np.ndarray) -> float:
    """IoU of the limb ellipse drawn from p to q with a limb mask, ignoring pixels of other strokes."""
    h, w = mask.shape
    margin = 2 * JOINT_RADIUS
    x0, y0 = max(int(min(p[0], q[0])) - margin, 0), max(int(min(p[1], q[1])) - margin, 0)
    x1, y1 = min(int(max(p[0], q[0])) + margin, w), min(int(max(p[1], q[1])) + margin, h)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    target = mask[y0:y1, x0:x1]
    care = target | ~occupied[y0:y1, x0:x1]
    return _limb_iou(p, q, target, care, np.array([x0, y0], np.float64))


def _refine_within_cells(joints: np.ndarray, style: PoseStyle, masks: np.ndarray, occupied: np.ndarray) -> None:
    """Pick the sub-pixel position of each seen joint inside its pixel from the shape of its limbs.

    A disc only tells the truncated (integer) position, but limb ellipses are centred
    on the truncated midpoint of the unrounded ends, so which quarter of the pixel a
    joint sits in shows in its limbs. Coordinate descent over the joints, in place.
    """
    offsets = [np.array([fx, fy]) for fx in (0.25, 0.75) for fy in (0.25, 0.75)]
    limbs_of = {j: [(i, b if a == j else a) for i, (a, b) in enumerate(style.limbs) if j in (a, b)]
                for j in range(style.n_joints)}
    for _ in range(2):
        for j in np.flatnonzero(joints[:, 2] == FOUND):
            attached = [(i, o) for i, o in limbs_of[j] if joints[o, 2] > 0]
            if not attached:
                continue
            cell = np.floor(joints[j, :2])
            scores = [sum(_limb_agreement(cell + off, joints[o, :2], masks[i], occupied) for i, o in attached)
                      for off in offsets]
            joints[j, :2] = cell + offsets[int(np.argmax(scores))]


def _mirror_shoulders(joints: np.ndarray) -> bool:
    """Fill a missing neck or shoulder from the other two (neck = shoulder midpoint); True if one was filled."""
    neck, rs, ls = joints[_NECK], joints[_R_SHOULDER], joints[_L_SHOULDER]
    if neck[2] == 0 and rs[2] > 0 and ls[2] > 0:
        joints[_NECK] = ((rs[0] + ls[0]) / 2, (rs[1] + ls[1]) / 2, INFERRED)
        return True
    if neck[2] > 0 and (rs[2] > 0) != (ls[2] > 0):
        seen, hidden = (_R_SHOULDER, _L_SHOULDER) if rs[2] > 0 else (_L_SHOULDER, _R_SHOULDER)
        joints[hidden] = (2 * neck[0] - joints[seen, 0], 2 * neck[1] - joints[seen, 1], INFERRED)
        return True
    return False


def _recover_joints(image: np.ndarray, style: PoseStyle) -> np.ndarray:
    img = _check_image(image)
    masks = limb_masks(img, style)
    # Limb pixels a few pixels thick: drops the one-pixel JPEG fringes of other strokes.
    solid = [cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
             for m in masks]
    joints = _find_discs(img, style, solid)

    occupied = img.max(axis=-1) > 40
    covering = overdrawn_zone(img, style, margin=1)
    while True:
        if _mirror_shoulders(joints):
            continue
        candidates = {}
        for j in np.flatnonzero(joints[:, 2] == 0):
            anchors = []
            for i, (a, b) in enumerate(style.limbs):
                other = b if a == j else a if b == j else None
                if other is not None and joints[other, 2] > 0 and solid[i].sum() >= 10:
                    anchors.append((joints[other, :2].copy(), solid[i]))
            if anchors:
                candidates[j] = anchors
        if not candidates:
            break
        j = max(candidates, key=lambda k: len(candidates[k]))
        # Limb axes through the joint, also of limbs whose other end is unknown: where they cross.
        lines = []
        for i, (a, b) in enumerate(style.limbs):
            if j in (a, b):
                other = b if a == j else a
                line = _axis_line(solid[i], joints[other, :2] if joints[other, 2] > 0 else None)
                if line is not None:
                    lines.append(line)
        crossing = _intersection(lines) if len(lines) >= 2 else None
        point, fit = _fit_joint(candidates[j], occupied, covering, crossing)
        # A failed fit is marked -1 so that it is not tried again, and cleared below.
        joints[j] = (point[0], point[1], INFERRED) if fit > _MIN_FIT_IOU else (0.0, 0.0, -1.0)
    joints[joints[:, 2] < 0] = 0.0
    _refine_within_cells(joints, style, masks, occupied)
    return joints


def recover_body_from_render(image: np.ndarray, style: str | PoseStyle = "unianimate") -> np.ndarray:
    """The OpenPose-18 body joints (18, 3) of a rendered pose image.

    Columns: x, y in pixels and a score: FOUND (1.0) when the joint's disc was
    seen, INFERRED (0.5) when placed from its limbs or by shoulder symmetry, 0
    when absent.
    """
    return _recover_joints(image, get_style(style))[:18]


def recover_keypoints_from_render(
    image: np.ndarray, style: str | PoseStyle = "unianimate", hands: bool = True
) -> np.ndarray:
    """Recovered body joints (and, with ``hands``, both hands) as (133, 3) keypoints.

    A toe midpoint fills both toes of its foot. Face and heels are left at zero
    (absent); so are hand points that could not be recovered.
    """
    st = get_style(style)
    img = _check_image(image)
    joints = _recover_joints(img, st)
    kp = _body_keypoints(joints, st).astype(np.float32)
    if hands:
        found = _recover_hands(img, st, joints)
        kp[LEFT_HAND], kp[RIGHT_HAND] = found[0], found[1]
    return kp


# --------------------------------------------------------------------------- hands

# A hand stroke pixel is at least this bright in its brightest channel: hand lines and
# points are drawn at full intensity, limbs at 0.6 (153 at most).
HAND_MIN_VALUE = 190
# How much a pixel looks like a hand point: its point-colour channel must exceed the
# other two by _DOT_MARGIN (dim red limbs reach 153) and counts fully _DOT_SPAN above that.
_DOT_MARGIN, _DOT_SPAN = 110.0, 100.0
_DOT_CORE_SHARE = 0.75   # mean point-likeness of the central radius-2 part of a dot
_DOT_MIN_GAIN = 6.0      # a further dot must explain this many point pixels not yet explained
_HIDDEN_RADIUS = HAND_POINT_RADIUS + 1.5   # an edge sample this close to a dot centre is under the dot
_HIDDEN_VALUE = 0.3      # worth of an edge before its colour evidence (an edge hidden under its dots has none)
_SKIP_PENALTY = 0.5      # cost of a hand point that has no dot of its own (placed between its neighbours)
_CROSS_DISTANCE = 3.0   # a segment passing this close to another dot's centre runs through it
_CROSS_PENALTY = 2.0
_WRIST_SEARCH = 40.0     # the hand's wrist point is looked for this close to the body wrist
_JUMP_REACH = 30.0       # farthest a point is moved onto another dot when fitting
_MAX_EDGE = 120          # longest hand edge considered, pixels
_FINGERS = tuple((0,) + tuple(1 + 4 * f + j for j in range(4)) for f in range(5))
_L_WRIST, _R_WRIST = 7, 4   # OpenPose-18 indices
_HAND_EDGE_ENDS = np.asarray(HAND_EDGES)


def _disc(radius: int) -> np.ndarray:
    """A filled disc of the given radius in a hand-point-sized float32 kernel, drawn as the renderer draws."""
    kernel = np.zeros((2 * HAND_POINT_RADIUS + 1,) * 2, np.float32)
    cv2.circle(kernel, (HAND_POINT_RADIUS, HAND_POINT_RADIUS), radius, 1.0, thickness=-1)
    return kernel


def _dot_map(img: np.ndarray, style: PoseStyle) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much each pixel shows the hand point colour."""
    channel = int(np.argmax(style.colour(HAND_POINT_COLOUR)))
    px = img.astype(np.float32)
    others = np.delete(px, channel, axis=2).max(-1)
    return np.clip((px[..., channel] - others - _DOT_MARGIN) / _DOT_SPAN, 0.0, 1.0)


def _find_hand_dots(dots: np.ndarray, max_dots: int = 42) -> np.ndarray:
    """Centres (n, 2) of hand point discs that together explain the point-coloured pixels.

    Greedy cover: repeatedly take the disc position (its core well inside the point
    colour) that explains the most point pixels not yet explained. Dots hidden
    entirely under others cannot be seen and are not returned.
    """
    ys, xs = np.nonzero(dots > 0)
    if len(ys) == 0:
        return np.zeros((0, 2))
    r = HAND_POINT_RADIUS
    y0, x0 = max(ys.min() - r, 0), max(xs.min() - r, 0)
    crop = dots[y0:ys.max() + r + 1, x0:xs.max() + r + 1].copy()
    h, w = crop.shape
    disc, core = _disc(r), _disc(2)
    allowed = cv2.filter2D(crop, -1, core / core.sum(), borderType=cv2.BORDER_CONSTANT) >= _DOT_CORE_SHARE
    dy, dx = np.nonzero(disc)
    dy, dx = dy - r, dx - r
    found: list[tuple[int, int]] = []
    while len(found) < max_dots:
        gain = np.where(allowed, cv2.filter2D(crop, -1, disc, borderType=cv2.BORDER_CONSTANT), -1.0)
        y, x = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[y, x] < _DOT_MIN_GAIN:
            break
        found.append((x, y))
        inside = (y + dy >= 0) & (y + dy < h) & (x + dx >= 0) & (x + dx < w)
        crop[(y + dy)[inside], (x + dx)[inside]] = 0.0
    # Discs are drawn at the truncated position: +0.5 is the unbiased estimate.
    return np.asarray(found, np.float64).reshape(-1, 2) + (x0 + 0.5, y0 + 0.5)


def _edge_colour_scores(img: np.ndarray, style: PoseStyle) -> np.ndarray:
    """(20, H, W) float32: how well each pixel (or a neighbour) matches each hand edge's hue.

    Edges are 2 px lines whose colours JPEG's halved chroma smears, so only hue is
    compared (the score falls linearly to 0 one step of the edge hue wheel, 18
    degrees, away), and only on bright, saturated pixels.
    """
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    bright = ((hsv[..., 1] >= 100) & (hsv[..., 2] >= 110)).astype(np.float32)
    wheel = np.asarray([style.colour(c) for c in HAND_EDGE_COLOURS], np.uint8)[None]
    hues = cv2.cvtColor(wheel, cv2.COLOR_RGB2HSV_FULL)[0, :, 0].astype(np.float32)
    step = 256.0 / len(HAND_EDGE_COLOURS)
    scores = np.empty((len(hues),) + img.shape[:2], np.float32)
    for e, hue in enumerate(hues):
        off = np.abs((hsv[..., 0] - hue + 128.0) % 256.0 - 128.0)
        scores[e] = cv2.dilate(bright * np.clip(1.0 - off / step, 0.0, 1.0), np.ones((3, 3), np.uint8))
    return scores


@dataclass
class _Segments:
    """Evidence for a hand edge between every ordered pair of a hand's dots.

    support[e, i, j]: sum over the visible samples of segment i -> j of (score of
    edge colour e - 0.5), i.e. positive where the colour is there; half1/half2 the
    same over the first / second half; visible: how many pixels of it are not
    under a dot; length[i, j]: its length; crossed[i, j]: how many other dots it
    runs straight through (a finger's chain visits its dots rather than passing
    under them).
    """

    support: np.ndarray
    half1: np.ndarray
    half2: np.ndarray
    visible: np.ndarray
    length: np.ndarray
    crossed: np.ndarray


def _segments(points: np.ndarray, scores: np.ndarray, hidden: np.ndarray) -> _Segments:
    """Edge evidence between all pairs of points (n, 2), sampled about once per pixel along each segment.

    scores: (20, h, w) from :func:`_edge_colour_scores`; hidden: (h, w) pixels under dots.
    """
    n = len(points)
    h, w = hidden.shape
    a, b = points[:, None, :], points[None, :, :]
    length = np.hypot(*(b - a).transpose(2, 0, 1))
    m = int(min(np.ceil(length.max(initial=1.0)), _MAX_EDGE)) + 1
    t = np.linspace(0.0, 1.0, m)
    samples = a[:, :, None, :] + t[None, None, :, None] * (b - a)[:, :, None, :]
    xs, ys = samples[..., 0].astype(np.int64), samples[..., 1].astype(np.int64)
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    weight = (length / (m - 1))[:, :, None] * (inside & ~hidden[ys, xs])
    match = scores[:, ys, xs] - 0.5
    first = t < 0.5
    support = (match * weight).sum(-1)
    half1 = (match * (weight * first)).sum(-1)
    half2 = support - half1
    visible = weight.sum(-1)
    too_long = length > _MAX_EDGE
    support[:, too_long] = -np.inf
    # Distance of every dot k from the open segment i -> j.
    d = b - a
    rel = points[None, None, :, :] - a[:, :, None, :]
    along = (rel * d[:, :, None, :]).sum(-1) / np.maximum(length**2, 1e-9)[:, :, None]
    off = np.hypot(*(rel - along[..., None] * d[:, :, None, :]).transpose(3, 0, 1, 2))
    through = (off <= _CROSS_DISTANCE) & (along > 0) & (along < 1)
    through[np.arange(n), :, np.arange(n)] = False
    through[:, np.arange(n), np.arange(n)] = False
    crossed = through.sum(-1)
    return _Segments(support, half1, half2, visible, length, crossed)


def _edge_values(seg: _Segments) -> tuple[np.ndarray, np.ndarray]:
    """Value of drawing edge e from dot i to dot j, and of edges e, e+1 via a hidden middle point.

    An edge is worth _HIDDEN_VALUE plus its colour support over its visible
    pixels (negative where they show other colours; none where the edge lies
    under its dots). Running straight through other dots costs _CROSS_PENALTY
    each; a hidden middle point costs _SKIP_PENALTY.
    """
    n = len(seg.length)
    value = _HIDDEN_VALUE + seg.support
    value[:, np.arange(n), np.arange(n)] = -np.inf
    skip = np.full_like(value, -np.inf)
    skip[:-1] = 2 * _HIDDEN_VALUE + seg.half1[:-1] + seg.half2[1:] - _SKIP_PENALTY
    skip[:, seg.length < 4] = -np.inf
    too_long = seg.length > _MAX_EDGE
    value[:, too_long] = skip[:, too_long] = -np.inf
    return value - _CROSS_PENALTY * seg.crossed, skip - _CROSS_PENALTY * seg.crossed


def _best_chain(
    finger: int, wrist: int, value: np.ndarray, skip: np.ndarray, turn: np.ndarray, used: np.ndarray
) -> tuple[tuple[int, float], dict[int, int | None]] | None:
    """Best dots for the four points of one finger (dynamic programming over the chain from the wrist).

    Returns ((points reached, score), {chain position: dot index, or None for a
    hidden point between its neighbours}), or None when not even the first point fits.
    """
    n = len(used)
    score = [np.full(n, -np.inf) for _ in range(5)]
    score[0][wrist] = 0.0
    back: list[tuple[np.ndarray, np.ndarray] | None] = [None] * 5
    for j in range(1, 5):
        e = _FINGERS[finger][j] - 1
        step = score[j - 1][:, None] + value[e] + turn
        best, prev_j, prev = step.max(0), np.full(n, j - 1), step.argmax(0)
        if j >= 2:
            jump = score[j - 2][:, None] + skip[e - 1] + turn
            better = jump.max(0) > best
            best = np.where(better, jump.max(0), best)
            prev_j = np.where(better, j - 2, prev_j)
            prev = np.where(better, jump.argmax(0), prev)
        best[used] = -np.inf
        score[j] = best
        back[j] = (prev_j, prev)
    for j in range(4, 0, -1):
        if not np.isfinite(score[j]).any():
            continue
        d = int(np.argmax(score[j]))
        path: dict[int, int | None] = {j: d}
        jj, dd = j, d
        while jj > 0:
            pj, pd = int(back[jj][0][dd]), int(back[jj][1][dd])
            if pj < jj - 1:
                path[jj - 1] = None
            if pj > 0:
                path[pj] = pd
            jj, dd = pj, pd
        dots = [v for v in path.values() if v is not None]
        if len(set(dots)) == len(dots):
            return (j, float(score[j][d])), path
    return None


def _label_hand(points: np.ndarray, seg: _Segments, anchor: tuple[np.ndarray, bool] | None) -> np.ndarray:
    """(21, 3) keypoints of one hand from its dots (n, 2) and the edge evidence between them.

    anchor: the body wrist (True) or, where that is unknown, the elbow (False).
    The wrist is the dot (among the six nearest a body wrist, else any) from
    which the five first finger edges are best supported. Then, finger by finger
    and most confident first, the chain of dots whose connecting strokes show
    that finger's edge colours, going outwards from the wrist (a turn back costs,
    a reversal is not allowed). Dots left over join the finger whose last point
    is nearest. Score FOUND for a point on a seen dot, INFERRED for one hidden
    between its chain neighbours, 0 where no dot is left for it.
    """
    n = len(points)
    out = np.zeros((21, 3))
    if n == 0:
        return out
    value, skip = _edge_values(seg)
    if anchor is not None and anchor[1]:
        dist = np.hypot(*(points - anchor[0]).T)
        near = [int(k) for k in np.argsort(dist)[:6] if dist[k] <= _WRIST_SEARCH] or [int(np.argmin(dist))]
    else:
        dist, near = np.zeros(n), list(range(n))
    spokes = np.where(seg.visible >= 2, seg.support, 0.0)
    np.einsum("eii->ei", spokes)[:] = 0.0
    wrist = max(near, key=lambda k: sum(max(float(spokes[4 * f, k].max()), 0.0) for f in range(5)) - 0.05 * dist[k])

    outward = points - points[wrist]
    step = points[None, :, :] - points[:, None, :]
    cos = (outward[:, None, :] * step).sum(-1) / np.maximum(
        np.hypot(*outward.T)[:, None] * np.hypot(*step.transpose(2, 0, 1)), 1e-9)
    cos[wrist] = 0.0
    turn = np.where(cos >= -0.2, 0.5 * cos, -np.inf)

    where: dict[int, tuple[np.ndarray, float]] = {0: (points[wrist], FOUND)}
    used = np.zeros(n, bool)
    used[wrist] = True
    todo = list(range(5))
    while todo:
        chains = [(c[0], f, c[1]) for f in todo if (c := _best_chain(f, wrist, value, skip, turn, used))]
        if not chains:
            break
        _, f, path = max(chains, key=lambda c: c[0])
        chain = _FINGERS[f]
        for j in sorted(path):
            if path[j] is not None:
                where[chain[j]] = (points[path[j]], FOUND)
                used[path[j]] = True
        for j in sorted(path):
            if path[j] is None:
                where[chain[j]] = ((where[chain[j - 1]][0] + points[path[j + 1]]) / 2, INFERRED)
        todo.remove(f)
    for d in sorted(np.flatnonzero(~used), key=lambda d: float(np.hypot(*outward[d]))):
        open_fingers = [c for c in _FINGERS if any(k not in where for k in c)]
        if not open_fingers:
            break
        last = {c: max(k for k in c if k in where) for c in open_fingers}
        chain = min(open_fingers, key=lambda c: float(np.hypot(*(points[d] - where[last[c]][0]))))
        where[next(k for k in chain if k not in where)] = (points[d], FOUND)
    for k, (xy, s) in where.items():
        out[k] = (xy[0], xy[1], s)
    return out


def _hand_anchors(joints: np.ndarray) -> list[tuple[np.ndarray, bool] | None]:
    """Where each hand (left, right) attaches: (body wrist, True), else (elbow, False), else None.

    Wrists hidden under the hand points are inferred from their forearms; two
    wrists inferred onto the same spot say nothing about which hand is which, so
    then the elbows are used.
    """
    pairs = ((_L_WRIST, _L_WRIST - 1), (_R_WRIST, _R_WRIST - 1))
    wrists = [joints[w] for w, _ in pairs]
    same = wrists[0][2] > 0 and wrists[1][2] > 0 and np.hypot(*(wrists[0][:2] - wrists[1][:2])) < 2 * JOINT_RADIUS
    anchors: list[tuple[np.ndarray, bool] | None] = []
    for wrist, elbow in pairs:
        if joints[wrist, 2] > 0 and not same:
            anchors.append((joints[wrist, :2], True))
        elif joints[elbow, 2] > 0:
            anchors.append((joints[elbow, :2], False))
        else:
            anchors.append(None)
    return anchors


def _split_hands(
    points: np.ndarray, anchors: list[tuple[np.ndarray, bool] | None], shape: tuple[int, int]
) -> np.ndarray:
    """Which hand (0 left, 1 right, -1 none) each dot belongs to: the one whose anchor is nearer.

    Dots that touch each other go together to the hand their group comes nearest
    to, unless that is close to a tie (hands touching), so a fingertip reaching
    towards the other hand stays with its own.
    """
    owner = np.full(len(points), -1)
    known = [h for h in range(2) if anchors[h] is not None]
    if not known or not len(points):
        return owner
    dist = np.full((2, len(points)), np.inf)
    for h in known:
        dist[h] = np.hypot(*(points - anchors[h][0]).T)
    owner = np.argmin(dist, axis=0)
    touch = np.zeros(shape, np.uint8)
    for x, y in points.astype(int):
        cv2.circle(touch, (int(x), int(y)), HAND_POINT_RADIUS + 2, 1, thickness=-1)
    _, groups = cv2.connectedComponents(touch)
    group = groups[points[:, 1].astype(int), points[:, 0].astype(int)]
    for g in np.unique(group):
        members = group == g
        near = dist[:, members].min(1)
        if abs(near[0] - near[1]) > 15:
            owner[members] = int(np.argmin(near))
    return owner


class _HandFit:
    """Analysis by synthesis: move hand points so that our drawing looks like the image.

    Both hands are drawn (left, then right, as the renderer does) over our render
    of the recovered body and compared with the image the way JPEG sees colour:
    luma per pixel, chroma averaged per 2x2 block (OpenCV writes 4:2:0). The error
    is the sum of absolute differences, chroma (a quarter as many values) counted
    twice. A move of one point only changes the pixels near it and its edges, so
    only that window is redrawn and compared.
    """

    _STEPS = np.array(((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)), np.float64)

    def __init__(self, image: np.ndarray, base: np.ndarray, style: PoseStyle):
        self.base = base
        self.image_ycc, self.image_half = self._view(image)
        self.edge_colours = [style.colour(c) for c in HAND_EDGE_COLOURS]
        self.point_colour = style.colour(HAND_POINT_COLOUR)

    @staticmethod
    def _view(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """YCrCb, and YCrCb averaged over 2x2 blocks (a linear resize to exactly half size averages each block)."""
        ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        return ycc, cv2.resize(ycc, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_LINEAR)

    def _window(self, hands: np.ndarray, h: int, k: int, reach: int) -> tuple[int, int, int, int]:
        """Even-aligned box holding every pixel a move of point k (by up to reach) can change."""
        pts = hands[h]
        ends = [pts[k, :2]] + [pts[b if a == k else a, :2] for a, b in HAND_EDGES
                               if k in (a, b) and pts[b if a == k else a, 2] > 0]
        ends = np.asarray(ends)
        margin = HAND_POINT_RADIUS + HAND_LINE_THICKNESS + reach + 1
        height, width = self.base.shape[:2]
        x0, y0 = np.maximum(np.floor(ends.min(0)).astype(int) - margin, 0) // 2 * 2
        x1, y1 = np.minimum(np.ceil(ends.max(0)).astype(int) + margin + 2, (width, height)) // 2 * 2
        return int(x0), int(y0), int(x1), int(y1)

    @staticmethod
    def _strokes(hands: np.ndarray, box: tuple[int, int, int, int]) -> list[tuple[list[int], list[int]]]:
        """Per hand, the edges and points drawn that can reach into box (moves of one point stay inside it)."""
        x0, y0, x1, y1 = box
        pad = HAND_POINT_RADIUS + HAND_LINE_THICKNESS + 1
        out = []
        for pts in hands:
            ok = pts[:, 2] > 0
            lo, hi = pts[:, :2] >= (x0 - pad, y0 - pad), pts[:, :2] <= (x1 + pad, y1 + pad)
            a, b = _HAND_EDGE_ENDS.T
            reach = ok[a] & ok[b] & (lo[a] | lo[b]).all(1) & (hi[a] | hi[b]).all(1)
            out.append((np.flatnonzero(reach).tolist(), np.flatnonzero(ok & lo.all(1) & hi.all(1)).tolist()))
        return out

    def _error(self, hands: np.ndarray, box: tuple[int, int, int, int],
               strokes: list[tuple[list[int], list[int]]] | None = None) -> float:
        """Error inside box (even-aligned) with the hands drawn as given (only strokes that reach into it)."""
        x0, y0, x1, y1 = box
        canvas = self.base[y0:y1, x0:x1].copy()
        points = (hands[..., :2].astype(np.int64) - (x0, y0)).tolist()
        for pts, (edges, shown) in zip(points, strokes if strokes is not None else self._strokes(hands, box)):
            for e in edges:
                a, b = HAND_EDGES[e]
                cv2.line(canvas, pts[a], pts[b], self.edge_colours[e], thickness=HAND_LINE_THICKNESS)
            for k in shown:
                cv2.circle(canvas, pts[k], HAND_POINT_RADIUS, self.point_colour, thickness=-1)
        ycc, half = self._view(canvas)
        luma = cv2.sumElems(cv2.absdiff(ycc, self.image_ycc[y0:y1, x0:x1]))[0]
        chroma = cv2.sumElems(cv2.absdiff(half, self.image_half[y0 // 2:y1 // 2, x0 // 2:x1 // 2]))
        return luma + 2 * (chroma[1] + chroma[2])

    def _descend(self, hands: np.ndarray, todo: set[tuple[int, int]], sweeps: int = 8) -> None:
        """Coordinate descent: move points to their best 8-neighbour while that lowers the error.

        After a sweep only the points near one that moved are looked at again.
        """
        for _ in range(sweeps):
            moved = []
            for h, k in sorted(todo):
                box = self._window(hands, h, k, reach=1)
                strokes = self._strokes(hands, box)
                start = hands[h, k, :2].copy()
                best, best_step = self._error(hands, box, strokes), None
                for step in self._STEPS:
                    hands[h, k, :2] = start + step
                    err = self._error(hands, box, strokes)
                    if err < best:
                        best, best_step = err, step
                hands[h, k, :2] = start if best_step is None else start + best_step
                if best_step is not None:
                    moved.append((h, k))
            if not moved:
                break
            todo = self._near(hands, moved)

    @staticmethod
    def _near(hands: np.ndarray, moved: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Drawn points whose pixels a move of these points may change: themselves, chain neighbours, overlaps."""
        out = set()
        drawn = hands[..., 2] > 0
        for h, k in moved:
            close = np.hypot(*(hands[h, :, :2] - hands[h, k, :2]).T) <= 2 * HAND_POINT_RADIUS + 2
            out |= {(h, int(j)) for j in np.flatnonzero(close & drawn[h])}
            out |= {(h, b if a == k else a) for a, b in HAND_EDGES if k in (a, b) and drawn[h, b if a == k else a]}
        return out

    def _jump(self, hands: np.ndarray, spots: list[np.ndarray]) -> list[tuple[int, int]]:
        """Move points onto another seen dot of their hand where that lowers the error.

        Fixes labels that the first guess put on another finger's dots.
        """
        moved = []
        height, width = self.base.shape[:2]
        margin = HAND_POINT_RADIUS + HAND_LINE_THICKNESS + 1
        for h in range(len(hands)):
            drawn = hands[h, hands[h, :, 2] > 0, :2]
            if not len(spots[h]) or not len(drawn):
                continue
            every = np.concatenate([drawn, spots[h]])
            x0, y0 = np.maximum(np.floor(every.min(0)).astype(int) - margin, 0) // 2 * 2
            x1, y1 = np.minimum(np.ceil(every.max(0)).astype(int) + margin + 2, (width, height)) // 2 * 2
            box = (int(x0), int(y0), int(x1), int(y1))
            for k in np.flatnonzero(hands[h, :, 2] > 0):
                strokes = self._strokes(hands, box)
                start = hands[h, k, :2].copy()
                best, best_spot = self._error(hands, box, strokes), None
                for spot in spots[h]:
                    if not 2 <= np.hypot(*(spot - start)) <= _JUMP_REACH:
                        continue
                    hands[h, k, :2] = spot
                    err = self._error(hands, box, strokes)
                    if err < best:
                        best, best_spot = err, spot
                hands[h, k, :2] = start if best_spot is None else best_spot
                if best_spot is not None:
                    moved.append((h, int(k)))
        return moved

    def refine(self, hands: np.ndarray, spots: list[np.ndarray], rounds: int = 3) -> np.ndarray:
        """Local descent, then relabelling jumps onto seen dots (each followed by descent near the moved points)."""
        hands = hands.copy()
        self._descend(hands, {(int(h), int(k)) for h, k in zip(*np.nonzero(hands[..., 2] > 0))})
        for _ in range(rounds):
            moved = self._jump(hands, spots)
            if not moved:
                break
            self._descend(hands, self._near(hands, moved))
        return hands


def _body_keypoints(joints: np.ndarray, style: PoseStyle) -> np.ndarray:
    """(133, 3) keypoints holding recovered body joints (a toe midpoint fills both toes of its foot)."""
    kp = np.zeros((N_KEYPOINTS, 3), np.float64)
    for j, src in enumerate(OPENPOSE18_FROM_COCO):
        if src >= 0:
            kp[src] = joints[j]
    if style.feet:
        for j, names in TOE_JOINTS.items():
            for name in names:
                kp[INDEX[name]] = joints[j]
    return kp


def _recover_hands(img: np.ndarray, style: PoseStyle, joints: np.ndarray) -> np.ndarray:
    """(2, 21, 3) left and right hand of a pose image whose body joints (n_joints, 3) are known.

    Seen hand point discs are split between the hands, labelled along the finger
    chains by their edge colours, then fitted to the image by re-drawing them.
    """
    dots = _dot_map(img, style)
    point_colour = style.colour(HAND_POINT_COLOUR)
    for j in range(style.n_joints):  # a body joint drawn in the hand point colour (the left knee)
        if style.colour(BODY_COLOURS[j]) == point_colour and joints[j, 2] > 0:
            cv2.circle(dots, (int(joints[j, 0]), int(joints[j, 1])), JOINT_RADIUS + 2, 0.0, thickness=-1)
    points = _find_hand_dots(dots)
    hands = np.zeros((2, 21, 3))
    if not len(points):
        return hands
    anchors = _hand_anchors(joints)
    owner = _split_hands(points, anchors, img.shape[:2])
    # Edges run between dots: their evidence is needed only inside the box around the dots.
    h, w = img.shape[:2]
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 3, (w, h))
    origin = np.array([x0, y0], np.float64)
    scores = _edge_colour_scores(np.ascontiguousarray(img[y0:y1, x0:x1]), style)
    under_dots = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for x, y in (points - origin).astype(int):
        cv2.circle(under_dots, (int(x), int(y)), int(_HIDDEN_RADIUS), 1, thickness=-1)
    hidden = under_dots.astype(bool)
    spots = []
    for hand in range(2):
        mine = np.flatnonzero(owner == hand)
        if anchors[hand] is not None:
            mine = mine[np.argsort(np.hypot(*(points[mine] - anchors[hand][0]).T))[:21]]
        spots.append(points[mine])
        if len(mine):
            seg = _segments(points[mine] - origin, scores, hidden)
            hands[hand] = _label_hand(points[mine], seg, anchors[hand])
    base = render_pose(_body_keypoints(joints, style), h, w, hands=False, style=style)
    return _HandFit(img, base, style).refine(hands, spots)


def recover_hands_from_render(image: np.ndarray, style: str | PoseStyle = "unianimate") -> np.ndarray:
    """Both hands of a rendered pose image: (2, 21, 3), left hand then right, in HAND_EDGES point order.

    Scores: FOUND for a point on a seen hand point disc, INFERRED for one hidden
    under other strokes and placed between its chain neighbours, 0 when absent.
    The body is recovered first: a hand belongs to the nearer body wrist.
    """
    st = get_style(style)
    img = _check_image(image)
    return _recover_hands(img, st, _recover_joints(img, st))


@functools.lru_cache(maxsize=4)
def _hand_lut(style: PoseStyle) -> np.ndarray:
    """Nearest of the 21 hand colours (20 edges, then the point colour) for every quantised colour; -1: not bright."""
    colours = np.asarray([style.colour(c) for c in HAND_EDGE_COLOURS] + [style.colour(HAND_POINT_COLOUR)]
                         + [FACE_COLOUR], np.float32)
    grid, label, _ = _nearest_colour_lut(colours)
    label[(label == len(colours) - 1) | (grid.max(-1) < HAND_MIN_VALUE)] = -1
    return label


def hand_masks(image: np.ndarray, style: str | PoseStyle = "unianimate") -> np.ndarray:
    """(21, H, W) masks of hand stroke pixels by colour: the 20 edge colours, then the point colour.

    A hand stroke pixel is bright (brightest channel >= HAND_MIN_VALUE, which
    dimmed limbs never reach) and is counted for its nearest hand colour; white
    (face points) is not a hand colour.
    """
    img = _check_image(image)
    shift = 8 - _LUT_BITS
    q = img >> shift
    idx = (q[..., 0].astype(np.int32) << (2 * _LUT_BITS)) | (q[..., 1].astype(np.int32) << _LUT_BITS) | q[..., 2]
    classes = _hand_lut(get_style(style))[idx]
    return np.stack([classes == k for k in range(len(HAND_EDGE_COLOURS) + 1)])


def joint_disc_zone(joints: np.ndarray, shape: tuple[int, int], margin: int = 2) -> np.ndarray:
    """(H, W) mask of the discs of the drawn (score > 0) body joints (n, 3), widened by margin pixels."""
    zone = np.zeros(shape, np.uint8)
    for x, y, score in np.asarray(joints, np.float64):
        if score > 0:
            cv2.circle(zone, (int(x), int(y)), JOINT_RADIUS + margin, 1, thickness=-1)
    return zone.astype(bool)


def hand_stroke_iou(
    reference: np.ndarray,
    candidate: np.ndarray,
    style: str | PoseStyle = "unianimate",
    body: np.ndarray | None = None,
) -> float:
    """Agreement of the hands of two pose images: IoU of hand stroke pixels, counted per hand colour.

    See :func:`hand_masks`. A pixel counts as shared only when both images show the
    same hand colour there. Body joint discs are full-intensity colours that sit
    between the hand colours on the hue wheel, so pixels within 2 px of the
    reference's body joints are left out: ``body`` is its (18 or 20, 3) joints
    (x, y, score; as :func:`toolkit.annotate.render_pose.body_joints` gives them),
    recovered from the reference when not given.
    """
    st = get_style(style)
    ref, cand = hand_masks(reference, st), hand_masks(candidate, st)
    if ref.shape != cand.shape:
        raise ValueError(f"images differ in size: {reference.shape} vs {candidate.shape}")
    joints = _recover_joints(_check_image(reference), st) if body is None else np.asarray(body, np.float64)
    keep = ~joint_disc_zone(joints, ref.shape[1:])
    inter = ((ref & cand).any(0) & keep).sum()
    union = ((ref.any(0) | cand.any(0)) & keep).sum()
    return float(inter / union) if union else 1.0
