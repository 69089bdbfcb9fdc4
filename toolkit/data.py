"""`ClipDataset`: training clips straight from the shards.

Each item is one clip of `n_frames` frames taken every `stride` frames from one
video, plus a reference frame of the same video and the requested annotations,
resized and centre-cropped to `size`. Items are random-access and deterministic:
item i of epoch e always draws the same clip for the same seed, in any worker.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit import conditions
from toolkit import video as vid
from toolkit.annotate.labels import colour
from toolkit.annotate.render_densepose import densepose_palette
from toolkit.annotate.render_pose import pose_palette
from toolkit.shards.reader import Shards, keypoint_array
from toolkit.shards.schema import STORED_POSE_STYLE

# Columns ClipDataset can return besides the frames. `pose` and `densepose` are
# renders (what the reference models are conditioned on) made from keypoints / IUV
# by toolkit.conditions, the builder the harness uses too.
COLUMNS = ("keypoints", "person_box", "iuv", "mask", "pose", "densepose")
_STORED = {"keypoints": "keypoints", "person_box": "person_box", "iuv": "iuv", "mask": "mask",
           "pose": "keypoints", "densepose": "iuv"}


class ClipDataset(Dataset):
    """Clips of `n_frames` frames every `stride` frames, with a reference frame and annotations.

    Args:
        shards: a shard folder (or an open `Shards`).
        n_frames, stride: clip length and frame step.
        size: output (height, width), or an int for square; None keeps the stored size.
        columns: annotations to return, from COLUMNS.
        split: which split's videos to use (None: all).
        seed: makes item -> clip deterministic; `set_epoch` varies it per epoch.
        samples_per_video: items per video per epoch.
        reference: "random" (any frame of the video, as Animate Anyone-style training
            does), "first" (the first frame, as evaluation does) or "self" (the clip's first
            frame: a target that reconstructs its own reference, as image training does).
        dtype: torch.float32 gives images in [0, 1]; torch.uint8 keeps 0..255 (4x less
            to move between worker processes: convert on the GPU instead).
        pose_style: keyword options of :func:`toolkit.conditions.pose_images` (style, hands, face, draw_scale).
        renders: "images" returns `pose` / `densepose` as colour images; "labels" returns them as label maps
            with their palettes (a third of the bytes to move between processes), which
            :func:`toolkit.conditions.colour_batch` turns into the same images on the device.
        videos: only these video ids (e.g. to fit one video); None takes every video of the split.

    Returns dicts with `reference` (3, H, W) and `frames` (T, 3, H, W) images (see dtype),
    `keypoints` (T, 133, 3) and `reference_keypoints` (133, 3) in output pixels,
    `iuv` (T, 3, H, W) uint8, `mask` (T, 1, H, W) float, `pose` / `densepose`
    renders (T, 3, H, W) (see dtype) with the reference frame's render as
    `reference_pose` / `reference_densepose` (3, H, W) (the UniAnimate inputs),
    `person_box` (T, 4), `video_id`, `frame_indices`. With ``renders="labels"`` each render `NAME` comes as
    `NAME_labels` ((T, H, W) or (H, W) uint8) instead, with `pose_palette` / `densepose_palette` ((N, 3) uint8).
    """

    def __init__(self, shards: str | Path | Shards, n_frames: int = 16, stride: int = 4,
                 size: int | tuple[int, int] | None = None, columns: Sequence[str] = (),
                 split: str | None = "train", seed: int = 0, samples_per_video: int = 1,
                 reference: str = "random", dtype: torch.dtype = torch.float32,
                 pose_style: dict | None = None, videos: Sequence[str] | None = None, renders: str = "images"):
        self.root = shards.root if isinstance(shards, Shards) else Path(shards)
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; choose from {COLUMNS}")
        if reference not in ("random", "first", "self"):
            raise ValueError(f"reference must be 'random', 'first' or 'self', got {reference!r}")
        self.n_frames, self.stride, self.seed = n_frames, stride, seed
        self.size = (size, size) if isinstance(size, int) else size
        self.columns, self.reference, self.samples_per_video = tuple(columns), reference, samples_per_video
        self.epoch = 0
        if dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"dtype must be torch.float32 or torch.uint8, got {dtype}")
        self.dtype = dtype
        if renders not in ("images", "labels"):
            raise ValueError(f"renders must be 'images' or 'labels', got {renders!r}")
        self.renders = renders
        self.pose_style = dict(pose_style or {})
        unknown_style = set(self.pose_style) - set(STORED_POSE_STYLE)
        if unknown_style:
            raise ValueError(f"unknown pose_style options {sorted(unknown_style)}; choose from "
                             f"{', '.join(STORED_POSE_STYLE)}")
        table = Shards(self.root).videos
        table = table[table.status == "ok"]
        if split is not None:
            table = table[table.split == split]
        if videos is not None:
            missing = sorted(set(videos) - set(table.video_id))
            if missing:
                raise ValueError(f"{self.root}: no prepared {split or 'any'}-split video named {', '.join(missing)}")
            table = table[table.video_id.isin(list(videos))]
        self.span = (n_frames - 1) * stride + 1
        long_enough = table[table.n_frames >= self.span]
        if long_enough.empty:
            raise ValueError(f"{self.root}: no {split or 'any'}-split video has {self.span} frames "
                             f"({n_frames} frames at stride {stride})")
        self.videos = list(zip(long_enough.video_id, long_enough.n_frames.astype(int)))
        self.stored_size = {v: (int(h), int(w)) for v, h, w in zip(long_enough.video_id, long_enough.height,
                                                                 long_enough.width)}
        self._shards: Shards | None = None
        self._owner: tuple[int, int] | None = None
        self._with_pose = set(long_enough.video_id[long_enough.has_keypoints.fillna(False).astype(bool)])

    def __len__(self) -> int:
        return len(self.videos) * self.samples_per_video

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def shards(self) -> Shards:
        owner = (os.getpid(), threading.get_ident())
        if self._owner != owner:  # a reader of its own per worker process or thread
            self._shards, self._owner = Shards(self.root), owner
        return self._shards

    def __getstate__(self) -> dict:
        """Copies and pickles (for worker processes and threads) leave the open reader behind."""
        return {**self.__dict__, "_shards": None, "_owner": None}

    def _renders(self, item: dict, name: str, labels: np.ndarray, palette: np.ndarray) -> None:
        """Store (1 + T, H, W) label maps (reference first) as `name` renders, or as labels with their palette."""
        if self.renders == "labels":
            lab = torch.from_numpy(labels)
            item[f"reference_{name}_labels"], item[f"{name}_labels"] = lab[0].contiguous(), lab[1:].contiguous()
            item[f"{name}_palette"] = torch.from_numpy(np.array(palette, np.uint8))
            return
        images = torch.from_numpy(colour(labels, palette, chw=True))
        if self.dtype == torch.float32:
            images = images.float().div_(255)
        item[f"reference_{name}"], item[name] = images[0].contiguous(), images[1:].contiguous()

    def _stored_renders(self, video_id: str, size: tuple[int, int]) -> bool:
        """Whether the pose renders of this video can be read from the shards: clips at the stored size, in the
        stored style, from shards that hold them (schema 2; prepare stores them for every frame of a video with
        keypoints)."""
        if "pose" not in self.columns or tuple(size) != self.stored_size[video_id]:
            return False
        if {**STORED_POSE_STYLE, **self.pose_style} != STORED_POSE_STYLE:
            return False
        return video_id in self._with_pose and "pose_labels" in self.shards.columns(video_id)

    def clip_indices(self, index: int) -> tuple[str, list[int], int]:
        """(video id, frame indices, reference index) of item `index`: deterministic for the seed and epoch.

        The `samples_per_video` items of one video take distinct clip starts in an epoch (a permutation of the
        starts per video and epoch; repeats only once every start is used), so no two items of an epoch share
        a clip, and processes that split an epoch's items between them (the training loop) never see the same
        clip.
        """
        video, sample = index % len(self.videos), index // len(self.videos)
        video_id, n = self.videos[video]
        starts = np.random.default_rng([self.seed, self.epoch, video, 1]).permutation(n - self.span + 1)
        start = int(starts[sample % len(starts)])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        ref = {"first": 0, "self": start}.get(self.reference)
        if ref is None:
            ref = int(rng.integers(0, n))
        return video_id, [start + k * self.stride for k in range(self.n_frames)], ref

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        video_id, idx, ref = self.clip_indices(index)
        stored = {_STORED[c] for c in self.columns}
        if "densepose" in self.columns and "iuv" not in self.columns and "parts" in self.shards.columns(video_id):
            stored = (stored - {"iuv"}) | {"parts"}  # the part planes alone: a tenth of the IUV PNGs' decoding
        h, w = self.stored_size[video_id]
        out_h, out_w = self.size or (h, w)
        if self._stored_renders(video_id, (out_h, out_w)):
            stored.add("pose_labels")  # renders made at prepare time: read, not drawn
        stored = sorted(stored)
        table = self.shards.read(video_id, [ref, *idx], ["image", *stored])
        scale, oy, ox = conditions.cover_crop((h, w), (out_h, out_w))

        def fit(img: np.ndarray, nearest: bool = False) -> np.ndarray:
            return conditions.fit_image(img, (out_h, out_w), nearest)

        frames = torch.from_numpy(vid.decode_images_chw(table.column("image").to_pylist(), fit, video_id))
        if self.dtype == torch.float32:
            frames = frames.float().div_(255)
        item = {
            "video_id": video_id,
            "frame_indices": torch.tensor(idx),
            "reference": frames[0].contiguous(),
            "frames": frames[1:].contiguous(),
        }
        if "keypoints" in stored:
            kp = keypoint_array(table.column("keypoints"))
            if "keypoints" in self.columns:
                fitted = torch.from_numpy(conditions.fit_keypoints(kp, (h, w), (out_h, out_w)))
                item["keypoints"], item["reference_keypoints"] = fitted[1:], fitted[0]
            if "pose" in self.columns:
                if "pose_labels" in stored:
                    labels = np.stack([vid.decode_plane(b, h, w, name=f"{video_id} pose_labels")
                                       for b in table.column("pose_labels").to_pylist()])
                else:
                    labels = conditions.pose_labels(kp, (h, w), (out_h, out_w), **self.pose_style)
                self._renders(item, "pose", labels, pose_palette(self.pose_style.get("style", "unianimate")))
        if "person_box" in self.columns:
            boxes = [np.full(4, np.nan, np.float32) if b is None else np.asarray(b, np.float32)
                     for b in table.column("person_box").to_pylist()[1:]]
            box = np.stack(boxes) * scale - np.array([ox, oy, ox, oy], np.float32)
            item["person_box"] = torch.from_numpy(box.astype(np.float32))
        if "parts" in stored:
            raw = table.column("parts").to_pylist()
            if any(b is None for b in raw):
                raise ValueError(f"{self.root}: video {video_id} has no IUV maps (prepared without --densepose)")
            parts = [vid.decode_plane(b, h, w, name=f"{video_id} parts") for b in raw]
            self._renders(item, "densepose", conditions.densepose_labels(parts, (out_h, out_w)), densepose_palette())
        if "iuv" in stored:
            # the reference's IUV (row 0) is decoded only for its DensePose render
            raw = table.column("iuv").to_pylist()[0 if "densepose" in self.columns else 1:]
            if any(b is None for b in raw):
                raise ValueError(f"{self.root}: video {video_id} has no IUV maps (prepared without --densepose)")
            if "iuv" in self.columns:
                iuv = [vid.decode_image(b, name=video_id) for b in raw]
                fitted = np.stack([fit(x, nearest=True) for x in iuv[-self.n_frames:]])
                item["iuv"] = torch.from_numpy(fitted).permute(0, 3, 1, 2).contiguous()
            else:  # the DensePose render needs the part index (I, channel 0) alone
                iuv = [vid.decode_image_channel(b, 0, name=video_id) for b in raw]
            if "densepose" in self.columns:
                self._renders(item, "densepose", conditions.densepose_labels(iuv, (out_h, out_w)),
                              densepose_palette())
        if "mask" in self.columns:
            raw = table.column("mask").to_pylist()[1:]
            if any(b is None for b in raw):
                raise ValueError(f"{self.root}: video {video_id} has no masks")
            m = np.stack([fit(vid.decode_image(b, grayscale=True, name=video_id), nearest=True) for b in raw])
            item["mask"] = torch.from_numpy(m[:, None] > 127).float()
        return item
