"""Keypoints and IUV maps -> the images models are conditioned on: one builder for training and evaluation.

`ClipDataset` (training), the harness's `Conditions` (evaluation), `toolkit animate`
and the report strips all call these functions, so a model sees the same inputs
when it is trained and when it is scored. Every function maps stored-frame
geometry to an output size the same way: scale to cover, then centre-crop
(:func:`cover_crop`). Renders are drawn directly at the output size (no
full-size render that is then shrunk), DensePose colours come from a lookup
table, so conditions cost little next to decoding the frames.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from toolkit.annotate.labels import colour
from toolkit.annotate.render_densepose import N_PARTS, densepose_palette
from toolkit.annotate.render_pose import pose_palette, render_pose_labels

Size = tuple[int, int]  # (height, width)


def cover_crop(source: Size, size: Size) -> tuple[float, int, int]:
    """Scale that makes `source` cover `size`, and the (y, x) offsets of the centred crop after scaling."""
    (h, w), (out_h, out_w) = source, size
    scale = max(out_h / h, out_w / w)
    sh, sw = round(h * scale), round(w * scale)
    return scale, (sh - out_h) // 2, (sw - out_w) // 2


def fit_image(image: np.ndarray, size: Size, nearest: bool = False, stretch: bool = False) -> np.ndarray:
    """Resize to cover `size` and centre-crop: area when shrinking, bilinear when growing, nearest for labels.
    With `stretch`, resize to `size` whatever the aspect (no crop: the exact inverse is a resize back)."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    if stretch:
        (sh, sw), oy, ox = size, 0, 0
        shrinking = sh * sw < h * w
    else:
        scale, oy, ox = cover_crop((h, w), size)
        (sh, sw), shrinking = (round(h * scale), round(w * scale)), scale < 1
    if (sh, sw) != (h, w):
        interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        image = cv2.resize(image, (sw, sh), interpolation=interp)
    return image[oy:oy + size[0], ox:ox + size[1]]


def fit_keypoints(keypoints: np.ndarray, source: Size, size: Size, stretch: bool = False) -> np.ndarray:
    """(..., 133, 3) keypoints in `source` pixels -> pixels of the fitted `size` image (:func:`fit_image`, with
    or without `stretch`); missing points stay (0, 0, 0)."""
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    if stretch:
        (sy, sx), oy, ox = (size[0] / source[0], size[1] / source[1]), 0, 0
    else:
        scale, oy, ox = cover_crop(source, size)
        sy = sx = scale
    absent = kp[..., 2] <= 0
    kp[..., 0] = kp[..., 0] * sx - ox
    kp[..., 1] = kp[..., 1] * sy - oy
    kp[absent] = 0
    return kp


def pose_labels(keypoints: np.ndarray, source: Size, size: Size, style: str = "unianimate", hands: bool = True,
                face: bool = False, align_to: np.ndarray | None = None, draw_scale: int = 1,
                stretch: bool = False) -> np.ndarray:
    """Label canvases (T, h, w) uint8 of the pose renders of (T, 133, 3) keypoints given in `source` pixels:
    ``pose_palette(style)[labels]`` is :func:`pose_images`' output, exactly.

    `align_to`: reference keypoints (133, 3) in `source` pixels; when given, the
    sequence is first moved onto the reference body (UniAnimate's alignment,
    :func:`toolkit.annotate.align.align_pose_sequence`).
    `draw_scale`: draw on a canvas this many times the output size, then keep, for each output pixel, the
    label drawn last among the pixels it covers (labels are in drawing order, so their maximum). DWPose's
    limb and joint sizes are fixed in pixels (4 px half-width, radius 4), which suits frames of some hundred
    pixels; at 64 px a person is a blob of discs. With `draw_scale` k they are k times thinner, as if drawn
    at k times the size and shrunk; 1 (the default) draws as the release does at the model's size.
    `stretch`: place the keypoints as :func:`fit_image` with `stretch` places the frame (no crop).
    """
    seq = np.asarray(keypoints)
    if seq.ndim != 3 or seq.shape[1:] != (133, 3):
        raise ValueError(f"expected keypoints of shape (T, 133, 3), got {seq.shape}")
    if isinstance(draw_scale, bool) or not isinstance(draw_scale, (int, np.integer)) or draw_scale < 1:
        raise ValueError(f"draw_scale must be an integer >= 1, got {draw_scale!r}")
    if align_to is not None:
        from toolkit.annotate.align import align_pose_sequence

        seq = align_pose_sequence(seq, align_to)
    k = int(draw_scale)
    height, width = size[0] * k, size[1] * k
    fitted = fit_keypoints(seq, source, (height, width), stretch)
    out = np.zeros((len(seq), size[0], size[1]), np.uint8)
    for t, kp in enumerate(fitted):
        if k == 1:
            render_pose_labels(kp, height, width, face=face, hands=hands, style=style, out=out[t])
        else:
            canvas = render_pose_labels(kp, height, width, face=face, hands=hands, style=style)
            out[t] = canvas.reshape(size[0], k, size[1], k).max(axis=(1, 3))
    return out


def pose_images(keypoints: np.ndarray, source: Size, size: Size, style: str = "unianimate",
                hands: bool = True, face: bool = False, align_to: np.ndarray | None = None,
                chw: bool = False, draw_scale: int = 1, stretch: bool = False) -> np.ndarray:
    """Pose renders of (T, 133, 3) keypoints given in `source` pixels, as (T, h, w, 3) uint8 at `size`.

    `chw=True` returns (T, 3, h, w) instead, the layout models take. `align_to`, `draw_scale`, `stretch`: see
    :func:`pose_labels`.
    """
    labels = pose_labels(keypoints, source, size, style=style, hands=hands, face=face, align_to=align_to,
                         draw_scale=draw_scale, stretch=stretch)
    return colour(labels, pose_palette(style), chw)


def densepose_labels(iuv: np.ndarray | Sequence[np.ndarray], size: Size, stretch: bool = False) -> np.ndarray:
    """DensePose part indices (T, h, w) uint8 at `size` (nearest resize) of (T, H, W, 3) IUV (I in channel 0)
    or of (H, W) part-index planes: ``densepose_palette()[labels]`` is :func:`densepose_images`' output.
    Centre-cropped to `size`'s aspect, or with `stretch` resized to it whatever the aspect (MagicAnimate's release)."""
    frames = list(iuv)
    out = np.empty((len(frames), size[0], size[1]), np.uint8)
    for t, frame in enumerate(frames):
        part = np.ascontiguousarray(frame[..., 0] if frame.ndim == 3 else frame)
        if part.dtype != np.uint8:
            raise ValueError(f"IUV maps must be uint8, got {part.dtype}")
        if part.max(initial=0) > N_PARTS:
            raise ValueError(f"DensePose part indices must lie in 0..{N_PARTS}, got up to {part.max()}")
        out[t] = fit_image(part, size, nearest=True, stretch=stretch)
    return out


def densepose_images(iuv: np.ndarray | Sequence[np.ndarray], size: Size, chw: bool = False,
                     stretch: bool = False) -> np.ndarray:
    """MagicAnimate-style DensePose renders of (T, H, W, 3) IUV (I in channel 0) as (T, h, w, 3) uint8 at `size`.

    Each frame may also be its (H, W) part-index plane alone. `chw=True` returns (T, 3, h, w);
    `stretch` resizes to `size` ignoring the aspect instead of centre-cropping.
    """
    return colour(densepose_labels(iuv, size, stretch), densepose_palette(), chw)


def colour_batch(batch: dict, dtype: "torch.dtype | None" = None) -> dict:
    """Replace label maps in a batch by the renders they stand for, on the batch's device.

    `ClipDataset(renders="labels")` returns each render as `<name>_labels` (..., H, W) uint8 (`pose`,
    `reference_pose`, `densepose`, `reference_densepose`) with the palette of `pose` and `densepose` as
    `<kind>_palette` (..., N, 3) uint8: a third of the bytes to move between processes. This turns them into
    `<name>` (..., 3, H, W) uint8, equal to what `renders="images"` returns; `dtype=torch.float32` gives them in
    [0, 1] instead. Other entries pass through, and a batch without labels comes back as it is.
    """
    import torch

    names = [k[:-len("_labels")] for k in batch if k.endswith("_labels")]
    if not names:
        return batch
    out = {k: v for k, v in batch.items() if not k.endswith(("_labels", "_palette"))}
    for name in names:
        labels, palette = batch[f"{name}_labels"], batch[f"{name.removeprefix('reference_')}_palette"]
        palettes = palette.reshape(-1, *palette.shape[-2:])
        items = labels.reshape(len(palettes), -1, *labels.shape[-2:])
        if labels.device.type == "cpu":  # table lookups per plane: a gather of int64 indices is slow on a CPU
            images = torch.stack([torch.from_numpy(colour(x.numpy(), p.numpy(), chw=True))
                                  for p, x in zip(palettes, items)])
        else:
            images = torch.stack([p[x.long()] for p, x in zip(palettes, items)]).movedim(-1, -3)
        images = images.reshape(*labels.shape[:-2], 3, *labels.shape[-2:]).contiguous()
        out[name] = images.to(dtype).div_(255) if dtype is not None and dtype.is_floating_point else images
    return out


def to_chw_float(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [0, 1], the layout models take."""
    return np.moveaxis(images, -1, -3).astype(np.float32) / 255


def generation_size(trained: Size, multiple: int, height: int, width: int) -> Size:
    """The size a model trained at `trained` generates a height x width video at: about the trained area, each
    side a multiple of `multiple` (what the UNet and codec take), with the aspect nearest the video's.

    Of the four ways to round the ideal sides (the trained area at the video's aspect) down or up, the one whose
    aspect is nearest the video's wins (then the one nearest the area): rounding each side alone can turn an
    84 x 64 (height x width) video into 80 x 48, and a frame stretched back from there is 27% too wide.
    Methods resize the video to this size (:func:`fit_image` with `stretch`) and the frames back, so the
    residual aspect error is this rounding's alone."""
    ideal_h = float(np.sqrt(trained[0] * trained[1] * height / width))
    ideal_w = ideal_h * width / height

    def sides(ideal: float) -> set[int]:
        return {max(multiple, int(np.floor(ideal / multiple)) * multiple),
                max(multiple, int(np.ceil(ideal / multiple)) * multiple)}

    def cost(size: Size) -> tuple[float, float]:
        return (abs(np.log(size[0] / size[1] * width / height)),
                abs(np.log(size[0] * size[1] / (trained[0] * trained[1]))))

    return min(((h, w) for h in sides(ideal_h) for w in sides(ideal_w)), key=cost)
