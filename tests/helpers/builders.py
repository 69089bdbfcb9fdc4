"""Small datasets made on the fly in real layouts: a TikTok-layout folder, its shards, a folder source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from toolkit.prepare import PrepareOptions, prepare
from toolkit.sources.card import DatasetCard, load_card
from toolkit.video import write_image, write_video


def make_tiktok_layout(root: Path, n_videos: int = 3, n_frames: int = 10, h: int = 72, w: int = 48,
                       seed: int = 0, densepose_order: str = "IUV") -> Path:
    """A TikTok-layout dataset: <id>/images, masks, densepose (channels in densepose_order), keypoints.npy."""
    rng = np.random.default_rng(seed)
    for v in range(n_videos):
        d = root / f"{v + 1:05d}"
        kp = np.zeros((n_frames, 133, 3), np.float32)
        for t in range(n_frames):
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
            iuv = np.zeros((h, w, 3), np.uint8)
            iuv[..., 0] = (mask > 0) * (1 + (t + v) % 24)
            iuv[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, :] * (mask > 0)
            iuv[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None] * (mask > 0)
            stored = iuv[..., ["IUV".index(c) for c in densepose_order]]
            write_image(d / "images" / f"{t + 1:04d}.png", img)
            write_image(d / "masks" / f"{t + 1:04d}.png", mask)
            write_image(d / "densepose" / f"{t + 1:04d}.png", np.ascontiguousarray(stored))
            kp[t, :17, 0] = rng.uniform(0, w, 17)
            kp[t, :17, 1] = rng.uniform(0, h, 17)
            kp[t, :17, 2] = 1.0
        np.save(d / "keypoints.npy", kp)
    return root


def layout_card(test_ids: tuple[str, ...] = ()) -> DatasetCard:
    """The synthetic dataset card (TikTok layout, IUV-ordered DensePose, shipped ground truth) without its generator,
    so it reads what make_tiktok_layout writes; `test_ids` form the test split, the rest is train."""
    return dataclasses.replace(load_card("synthetic"), raw={},
                               split_ids={"test": tuple(test_ids)} if test_ids else {})


def make_shards(root: Path, n_videos: int, n_frames: int, h: int, w: int, test_ids: tuple[str, ...] = (),
                **options) -> Path:
    """A TikTok-layout dataset under root/src prepared into root/shards with its ground-truth annotations."""
    src = make_tiktok_layout(root / "src", n_videos=n_videos, n_frames=n_frames, h=h, w=w)
    opts = PrepareOptions(**{"size": None, "pose": "synthetic", "densepose": "synthetic", **options})
    prepare(layout_card(test_ids), src, root / "shards", opts, progress=False)
    return root / "shards"


def make_video_folder(root: Path, seed: int = 0) -> Path:
    """A folder source: train/a.mp4, test/b.mp4, a frame folder, and a corrupt file."""
    rng = np.random.default_rng(seed)
    write_video(root / "train" / "a.mp4", rng.integers(0, 255, (12, 64, 80, 3), dtype=np.uint8), fps=25)
    write_video(root / "test" / "b.mp4", rng.integers(0, 255, (9, 64, 80, 3), dtype=np.uint8), fps=10)
    for t in range(6):
        write_image(root / "clip" / f"frame{t}.png", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    return root
