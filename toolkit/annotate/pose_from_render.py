"""Body joints from an OpenPose-style pose image: the inverse of the body part of render_pose.

Real conditioning images made by the reference code (e.g. UniAnimate's saved pose
JPEGs) come without their keypoints. Recovering the body joints from the joint
colours and re-rendering them with :func:`toolkit.annotate.render_pose.render_pose`
is how the tests check that our renderer draws what the reference code draws.

How a joint is found: every joint has its own full-intensity colour and is drawn
as a disc of radius 4 after the (dimmed) limbs, so it is the best-covered disc of
its colour that also touches one of its limbs (a red knee is not taken for a red
hand point). Joints whose disc is hidden (a wrist under the hand points, a
shoulder under a hand) or lies off the canvas are inferred: a shoulder as the
mirror of the other one about the neck (DWPose puts the neck at their midpoint),
the rest by fitting the ellipses of their visible limbs.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from toolkit.annotate.keypoints import INDEX, N_KEYPOINTS, OPENPOSE18_FROM_COCO
from toolkit.annotate.render_pose import (
    BODY_COLOURS,
    FACE_COLOUR,
    HAND_EDGE_COLOURS,
    HAND_POINT_COLOUR,
    JOINT_RADIUS,
    LIMB_DIM,
    TOE_JOINTS,
    PoseStyle,
    draw_limb,
    get_style,
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


def recover_keypoints_from_render(image: np.ndarray, style: str | PoseStyle = "unianimate") -> np.ndarray:
    """Recovered body joints as (133, 3) keypoints; a toe midpoint fills both toes of its foot.

    Hands, face and heels are left at zero (absent).
    """
    st = get_style(style)
    joints = _recover_joints(image, st)
    kp = np.zeros((N_KEYPOINTS, 3), np.float32)
    for j, src in enumerate(OPENPOSE18_FROM_COCO):
        if src >= 0:
            kp[src] = joints[j]
    if st.feet:
        for j, names in TOE_JOINTS.items():
            for name in names:
                kp[INDEX[name]] = joints[j]
    return kp
