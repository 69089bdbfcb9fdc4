"""Test helpers: pictures that compare a pose render with ours (:func:`compare_pose_render`, :func:`side_by_side`).

:func:`compare_pose_render` recovers the keypoints of a reference pose image with the
test oracle :mod:`helpers.pose_from_render`, re-renders them with the toolkit's
:func:`toolkit.annotate.render_pose.render_pose` and measures the agreement; the
README picture ``docs/img/pose_render_vs_fixture.png`` is such a comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tests.helpers.pose_from_render import (
    body_stroke_iou,
    hand_masks,
    hand_stroke_iou,
    joint_disc_zone,
    limb_masks,
    overdrawn_zone,
    recover_keypoints_from_render,
)
from toolkit.annotate.render_pose import PoseStyle, body_joints, get_style, render_pose
from toolkit.keypoints import LEFT_HAND, RIGHT_HAND
from toolkit.video import decode_image, encode_image

__all__ = ["compare_pose_render", "side_by_side"]

_LABEL_HEIGHT = 28


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str] | None = None, gap: int = 8) -> np.ndarray:
    """Place RGB uint8 images of equal height in a row, with an optional caption strip above each."""
    if not images:
        raise ValueError("side_by_side needs at least one image")
    arrs = [np.asarray(im) for im in images]
    for k, im in enumerate(arrs):
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"image {k}: expected (H, W, 3) uint8 RGB, got shape {im.shape} dtype {im.dtype}")
    height = arrs[0].shape[0]
    if any(im.shape[0] != height for im in arrs):
        raise ValueError(f"images differ in height: {[im.shape[0] for im in arrs]}")
    if labels is not None and len(labels) != len(arrs):
        raise ValueError(f"{len(labels)} labels for {len(arrs)} images")
    top = _LABEL_HEIGHT if labels else 0
    width = sum(im.shape[1] for im in arrs) + gap * (len(arrs) - 1)
    out = np.full((height + top, width, 3), 255, np.uint8)
    x = 0
    for k, im in enumerate(arrs):
        out[top:, x:x + im.shape[1]] = im
        if labels:
            cv2.putText(out, labels[k], (x + 4, top - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        x += im.shape[1] + gap
    return out


def _agreement(ref: np.ndarray, ours: np.ndarray, left_out: np.ndarray) -> np.ndarray:
    """Picture of two sets of stroke masks (C, H, W), one mask per colour class.

    White: both show the same class; yellow: both show strokes of different
    classes; red: reference only; green: ours only; grey: left out.
    """
    ref_any, our_any = ref.any(0), ours.any(0)
    same = (ref & ours).any(0)
    out = np.zeros(ref.shape[1:] + (3,), np.uint8)
    out[ref_any] = (255, 0, 0)
    out[our_any] = (0, 255, 0)
    out[ref_any & our_any] = (255, 255, 0)
    out[same] = 255
    out[left_out] = 60
    return out


def _hands_close_up(
    panels: Sequence[np.ndarray], keypoints: np.ndarray, width: int, margin: int = 16
) -> np.ndarray | None:
    """The panels cropped to the box around the drawn hand points, enlarged by a whole factor to fit width each."""
    hand_points = np.concatenate([keypoints[LEFT_HAND], keypoints[RIGHT_HAND]])
    drawn = hand_points[hand_points[:, 2] > 0, :2]
    if not len(drawn):
        return None
    height, full_width = panels[0].shape[:2]
    x0, y0 = np.maximum(np.floor(drawn.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(drawn.max(0)).astype(int) + margin, (full_width, height))
    scale = max(1, width // (x1 - x0))
    crops = []
    for panel in panels:
        big = cv2.resize(np.ascontiguousarray(panel[y0:y1, x0:x1]), None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST)
        framed = np.full((big.shape[0], width, 3), 255, np.uint8)
        left = max((width - big.shape[1]) // 2, 0)
        framed[:, left:left + big.shape[1]] = big[:, :width]
        crops.append(framed)
    return side_by_side(crops)


def compare_pose_render(
    image: np.ndarray, style: str | PoseStyle = "unianimate", jpeg_quality: int | None = 95
) -> tuple[np.ndarray, float, float]:
    """Re-render a pose image (body and hands) with our renderer; return a comparison picture and two IoUs.

    The body joints and both hands are recovered from the image's colours
    (:func:`helpers.pose_from_render.recover_keypoints_from_render`) and
    drawn again by :func:`render_pose`; nothing of the image is pasted. With
    ``jpeg_quality`` our render goes through the same JPEG encoding as the
    reference's saved pose images (OpenCV's default quality is 95) before the two
    are compared, so both carry the same kind of compression noise.

    Top row: the given image; our full re-render; the agreement of the body
    strokes (white: both, red: given only, green: ours only, grey: joint discs,
    hand and face strokes, left out of the body IoU). Bottom row, when hands were
    recovered: the same two images enlarged around the hands, and the agreement
    of the hand strokes (white: same hand colour, yellow: another hand colour,
    red / green: given / ours only, grey: body joint discs, left out). Returns the
    picture, the body-stroke IoU and the hand-stroke IoU (:func:`hand_stroke_iou`).
    """
    st = get_style(style)
    img = np.asarray(image)
    keypoints = recover_keypoints_from_render(img, st)
    ours = render_pose(keypoints, img.shape[0], img.shape[1], style=st)
    if jpeg_quality is not None:
        ours = decode_image(encode_image(ours, "jpeg", quality=jpeg_quality))
    body = body_joints(keypoints, feet=st.feet)
    body_iou = body_stroke_iou(img, ours, st)
    hand_iou = hand_stroke_iou(img, ours, st, body=body)
    zone = overdrawn_zone(img, st)
    body_agree = _agreement(limb_masks(img, st).any(0, keepdims=True), limb_masks(ours, st).any(0, keepdims=True),
                            zone)
    labels = ["reference render", "ours: body and hands re-rendered from recovered keypoints",
              f"body strokes, IoU {body_iou:.3f}"]
    top = side_by_side([img, ours, body_agree], labels)
    hand_agree = _agreement(hand_masks(img, st), hand_masks(ours, st), joint_disc_zone(body, img.shape[:2]))
    close = _hands_close_up([img, ours, hand_agree], keypoints, img.shape[1])
    if close is None:
        return top, body_iou, hand_iou
    caption = side_by_side([np.zeros((0, img.shape[1], 3), np.uint8)] * 3,
                           ["reference, hands enlarged", "ours, hands enlarged", f"hand strokes, IoU {hand_iou:.3f}"])
    return np.concatenate([top, caption, close]), body_iou, hand_iou
