"""Condition renders in one place: pose images, DensePose images, and pictures that compare them.

The renderers live in :mod:`toolkit.annotate.render_pose` (OpenPose/DWPose-style
skeletons) and :mod:`toolkit.annotate.render_densepose` (MagicAnimate's viridis
part images); this module re-exports them and adds :func:`side_by_side` and
:func:`compare_pose_render` for checking a render by eye.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from toolkit.annotate.pose_from_render import (
    body_stroke_iou,
    limb_masks,
    overdrawn_zone,
    recover_keypoints_from_render,
)
from toolkit.annotate.render_densepose import densepose_palette, densepose_render_to_parts, render_densepose
from toolkit.annotate.render_pose import STYLES, PoseStyle, get_style, render_pose, render_poses
from toolkit.video import decode_image, encode_image

__all__ = [
    "STYLES", "PoseStyle", "compare_pose_render", "densepose_palette", "densepose_render_to_parts",
    "render_densepose", "render_pose", "render_poses", "side_by_side",
]

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


def compare_pose_render(
    image: np.ndarray, style: str | PoseStyle = "unianimate", jpeg_quality: int | None = 95
) -> tuple[np.ndarray, float]:
    """Re-render the body of a pose image with our renderer; return a 3-panel picture and the body-stroke IoU.

    With ``jpeg_quality`` our render goes through the same JPEG encoding as the
    reference's saved pose images (OpenCV's default quality is 95) before the two
    are compared, so both carry the same kind of compression noise.

    Panels: the given image; our render of the body joints recovered from it, with
    the image's hand/face strokes pasted on top (we do not recover hand points);
    and the agreement of the body strokes (white: both, red: given only, green:
    ours only, grey: joint discs, hand and face strokes, left out of the IoU).
    """
    st = get_style(style)
    img = np.asarray(image)
    keypoints = recover_keypoints_from_render(img, st)
    ours = render_pose(keypoints, img.shape[0], img.shape[1], hands=False, style=st)
    if jpeg_quality is not None:
        ours = decode_image(encode_image(ours, "jpeg", quality=jpeg_quality))
    zone = overdrawn_zone(img, st)
    pasted = ours.copy()
    pasted[zone] = img[zone]
    iou = body_stroke_iou(img, ours, st)
    ref_m, our_m = limb_masks(img, st).any(0), limb_masks(ours, st).any(0)
    agree = np.zeros_like(img)
    agree[zone] = 60
    agree[ref_m & ~zone] = (255, 0, 0)
    agree[our_m & ~zone] = (0, 255, 0)
    agree[ref_m & our_m & ~zone] = 255
    labels = ["reference render", "ours: body re-rendered, hands pasted", f"body strokes, IoU {iou:.3f}"]
    return side_by_side([img, pasted, agree], labels), iou
