"""Condition renders in one place: pose images and DensePose images.

The renderers live in :mod:`toolkit.annotate.render_pose` (OpenPose/DWPose-style
skeletons) and :mod:`toolkit.annotate.render_densepose` (MagicAnimate's viridis
part images); this module re-exports them. The pictures that check a render
against the reference code's (keypoint recovery, stroke agreement) are test
oracles and live in ``tests/helpers/``.
"""

from __future__ import annotations

from toolkit.annotate.render_densepose import (
    densepose_palette,
    densepose_render_to_parts,
    render_densepose,
    render_denseposes,
)
from toolkit.annotate.render_pose import STYLES, PoseStyle, get_style, render_pose, render_poses

__all__ = [
    "STYLES", "PoseStyle", "densepose_palette", "densepose_render_to_parts", "get_style",
    "render_densepose", "render_denseposes", "render_pose", "render_poses",
]
