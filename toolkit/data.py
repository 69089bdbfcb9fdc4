"""`ClipDataset`: training clips straight from the shards.

Each item is one clip of `n_frames` frames taken every `stride` frames from one
video, plus a reference frame of the same video and the requested annotations,
resized and centre-cropped to `size`. Items are random-access and deterministic:
item i of epoch e always draws the same clip for the same seed, in any worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit import video as vid
from toolkit.shards.reader import Shards

# Columns ClipDataset can return besides the frames. `pose` and `densepose` are
# renders (what the reference models are conditioned on) made from keypoints / IUV.
COLUMNS = ("keypoints", "person_box", "iuv", "mask", "pose", "densepose")
_STORED = {"keypoints": "keypoints", "person_box": "person_box", "iuv": "iuv", "mask": "mask",
           "pose": "keypoints", "densepose": "iuv"}


def _cover_crop(h: int, w: int, out_h: int, out_w: int) -> tuple[float, int, int]:
    """Scale that makes (h, w) cover (out_h, out_w), and the crop offsets after scaling."""
    scale = max(out_h / h, out_w / w)
    sh, sw = round(h * scale), round(w * scale)
    return scale, (sh - out_h) // 2, (sw - out_w) // 2


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
            does) or "first" (the first frame, as evaluation does).
        dtype: torch.float32 gives images in [0, 1]; torch.uint8 keeps 0..255 (4x less
            to move between worker processes: convert on the GPU instead).

    Returns dicts with `reference` (3, H, W) and `frames` (T, 3, H, W) images (see dtype),
    `keypoints` (T, 133, 3) and `reference_keypoints` (133, 3) in output pixels,
    `iuv` (T, 3, H, W) uint8, `mask` (T, 1, H, W) float, `pose` / `densepose`
    renders (T, 3, H, W) float in [0, 1], `person_box` (T, 4), `video_id`, `frame_indices`.
    """

    def __init__(self, shards: str | Path | Shards, n_frames: int = 16, stride: int = 4,
                 size: int | tuple[int, int] | None = None, columns: Sequence[str] = (),
                 split: str | None = "train", seed: int = 0, samples_per_video: int = 1,
                 reference: str = "random", dtype: torch.dtype = torch.float32):
        self.root = shards.root if isinstance(shards, Shards) else Path(shards)
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; choose from {COLUMNS}")
        if reference not in ("random", "first"):
            raise ValueError(f"reference must be 'random' or 'first', got {reference!r}")
        self.n_frames, self.stride, self.seed = n_frames, stride, seed
        self.size = (size, size) if isinstance(size, int) else size
        self.columns, self.reference, self.samples_per_video = tuple(columns), reference, samples_per_video
        self.epoch = 0
        if dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"dtype must be torch.float32 or torch.uint8, got {dtype}")
        self.dtype = dtype
        table = Shards(self.root).videos
        table = table[table.status == "ok"]
        if split is not None:
            table = table[table.split == split]
        self.span = (n_frames - 1) * stride + 1
        long_enough = table[table.n_frames >= self.span]
        if long_enough.empty:
            raise ValueError(f"{self.root}: no {split or 'any'}-split video has {self.span} frames "
                             f"({n_frames} frames at stride {stride})")
        self.videos = list(zip(long_enough.video_id, long_enough.n_frames.astype(int)))
        self.stored_size = {v: (int(h), int(w)) for v, h, w in zip(long_enough.video_id, long_enough.height,
                                                                 long_enough.width)}
        self._shards: Shards | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.videos) * self.samples_per_video

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def shards(self) -> Shards:
        if self._pid != os.getpid():  # a fresh reader per worker process
            self._shards, self._pid = Shards(self.root), os.getpid()
        return self._shards

    def clip_indices(self, index: int) -> tuple[str, list[int], int]:
        """(video id, frame indices, reference index) of item `index`: deterministic for the seed and epoch."""
        video_id, n = self.videos[index % len(self.videos)]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        start = int(rng.integers(0, n - self.span + 1))
        ref = 0 if self.reference == "first" else int(rng.integers(0, n))
        return video_id, [start + k * self.stride for k in range(self.n_frames)], ref

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        video_id, idx, ref = self.clip_indices(index)
        stored = sorted({_STORED[c] for c in self.columns})
        table = self.shards.read(video_id, [ref, *idx], ["image", *stored])
        h, w = self.stored_size[video_id]
        out_h, out_w = self.size or (h, w)
        scale, oy, ox = _cover_crop(h, w, out_h, out_w)
        sh, sw = round(h * scale), round(w * scale)

        def fit(img: np.ndarray, nearest: bool = False) -> np.ndarray:
            """Resize (area when shrinking, bilinear when growing, nearest for labels) and centre-crop."""
            if (sh, sw) != (h, w):
                interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
                img = cv2.resize(img, (sw, sh), interpolation=interp)
            return img[oy:oy + out_h, ox:ox + out_w]

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
            kp = np.stack([np.zeros((133, 3), np.float32) if k is None else np.asarray(k, np.float32).reshape(133, 3)
                           for k in table.column("keypoints").to_pylist()])
            absent = kp[..., 2] <= 0
            kp[..., 0] = kp[..., 0] * scale - ox
            kp[..., 1] = kp[..., 1] * scale - oy
            kp[absent] = 0
            if "keypoints" in self.columns:
                item["keypoints"] = torch.from_numpy(kp[1:])
                item["reference_keypoints"] = torch.from_numpy(kp[0])
            if "pose" in self.columns:
                from toolkit.annotate.render import render_pose

                poses = np.stack([render_pose(k, out_h, out_w) for k in kp[1:]])
                item["pose"] = torch.from_numpy(poses).permute(0, 3, 1, 2).float() / 255
        if "person_box" in self.columns:
            boxes = [np.full(4, np.nan, np.float32) if b is None else np.asarray(b, np.float32)
                     for b in table.column("person_box").to_pylist()[1:]]
            box = np.stack(boxes) * scale - np.array([ox, oy, ox, oy], np.float32)
            item["person_box"] = torch.from_numpy(box.astype(np.float32))
        if "iuv" in stored:
            raw = table.column("iuv").to_pylist()[1:]
            if any(b is None for b in raw):
                raise ValueError(f"{self.root}: video {video_id} has no IUV maps (prepared without --densepose)")
            iuv = np.stack([fit(vid.decode_image(b, name=video_id), nearest=True) for b in raw])
            if "iuv" in self.columns:
                item["iuv"] = torch.from_numpy(iuv).permute(0, 3, 1, 2).contiguous()
            if "densepose" in self.columns:
                from toolkit.annotate.render import render_densepose

                dp = np.stack([render_densepose(x) for x in iuv])
                item["densepose"] = torch.from_numpy(dp).permute(0, 3, 1, 2).float() / 255
        if "mask" in self.columns:
            raw = table.column("mask").to_pylist()[1:]
            if any(b is None for b in raw):
                raise ValueError(f"{self.root}: video {video_id} has no masks")
            m = np.stack([fit(vid.decode_image(b, grayscale=True, name=video_id), nearest=True) for b in raw])
            item["mask"] = torch.from_numpy(m[:, None] > 127).float()
        return item
