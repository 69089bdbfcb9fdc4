"""Throughput of every pose, DensePose and mask backend on the same frames, and what masks add to the pose pass.

Two workloads built from the real fixtures, frames at --size pixels on the long side:
``photos``, each fixture photo as its own one-frame call (the reference-image
case), and ``clip``, a --frames-long clip of one fixture photo panning sideways
(the driving-video case, one call). Backends that cannot run here are listed with
the reason. A mask backend alone is timed like the others (for mediapipe: its own
Holistic pass, landmarks dropped). The masks' cost beside the pose backend's is what
`toolkit prepare --pose mediapipe --mask mediapipe` pays: the clip through the pose
backend alone and through pose + masks from the same pass (`keypoints_and_masks`),
alternated --repeat times on one worker, best of each. Usage::

    python benchmarks/annotate.py [--size 512] [--frames 32] [--repeat 3] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import record  # noqa: E402
from toolkit.annotate import backends  # noqa: E402
from toolkit.video import read_image, resize  # noqa: E402


def fixtures_dir() -> Path:
    return Path(os.environ.get("TOOLKIT_FIXTURES", ROOT.parent / "shared" / "fixtures" / "real"))


def load_photos(size: int) -> list[np.ndarray]:
    """The fixture photos scaled so their long side is `size` (even dimensions)."""
    folder = fixtures_dir()
    files = sorted((folder / "unianimate" / "images").glob("*.jpg"))
    files += sorted((folder / "magicanimate" / "source").glob("*"))
    if not files:
        raise SystemExit(f"no fixture photos under {folder} (set TOOLKIT_FIXTURES)")
    photos = []
    for f in files:
        img = read_image(f)
        h, w = img.shape[:2]
        s = size / max(h, w)
        photos.append(resize(img, max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2)))
    return photos


def make_clip(photo: np.ndarray, n: int) -> np.ndarray:
    """n frames of `photo` panning right by 2 pixels a frame, background colour filled in."""
    clip = np.stack([np.roll(photo, 2 * t, axis=1) for t in range(n)])
    for t in range(1, n):
        clip[t, :, : 2 * t] = photo[0, 0]
    return clip


def ground_truth(frames: np.ndarray) -> dict:
    t, h, w = frames.shape[:3]
    return {"keypoints": np.zeros((t, 133, 3), np.float32), "iuv": np.zeros((t, h, w, 3), np.uint8)}


def time_backend(backend, photos: list[np.ndarray], clip: np.ndarray) -> dict[str, float]:
    """frames/s on each workload, after one warm-up call."""
    backend(photos[0][None], ground_truth(photos[0][None]))
    out = {}
    start = time.perf_counter()
    for p in photos:
        backend(p[None], ground_truth(p[None]))
    out["photos"] = len(photos) / (time.perf_counter() - start)
    gt = ground_truth(clip)
    start = time.perf_counter()
    backend(clip, gt)
    out["clip"] = len(clip) / (time.perf_counter() - start)
    return out


def mask_cost(clip: np.ndarray, repeat: int) -> dict[str, float]:
    """Seconds per frame of the clip through the mediapipe pose backend alone and with the masks of the same
    pass (the best of `repeat` alternating calls each, after a warm-up of both)."""
    from toolkit.annotate.mask_mediapipe import MediapipeMask
    from toolkit.annotate.pose_mediapipe import MediapipePose

    with MediapipePose() as pose:
        masker = MediapipeMask(pose=pose)
        pose(clip[:2])
        masker.keypoints_and_masks(clip[:2])
        best = {"pose": math.inf, "pose+mask": math.inf}
        for _ in range(repeat):
            for label, run in (("pose", pose), ("pose+mask", masker.keypoints_and_masks)):
                start = time.perf_counter()
                run(clip)
                best[label] = min(best[label], (time.perf_counter() - start) / len(clip))
        best["version"] = masker.version()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="long side of the frames in pixels")
    parser.add_argument("--frames", type=int, default=32, help="frames in the clip workload")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of the mask-cost comparison")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch / onnxruntime")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    photos = load_photos(args.size)
    clip = make_clip(photos[3 if len(photos) > 3 else 0], args.frames)
    print(f"workloads: photos = {len(photos)} fixture photos at long side {args.size} (one call each); "
          f"clip = {len(clip)} frames of {clip.shape[2]}x{clip.shape[1]} (one call)")
    runs = [("pose", name, name, {}) for name in backends.POSE_BACKENDS]
    runs.insert(1, ("pose", "mediapipe", "mediapipe[still]", {"static_image_mode": True}))
    runs += [("densepose", name, name, {}) for name in backends.DENSEPOSE_BACKENDS]
    runs += [("mask", name, name, {}) for name in backends.MASK_BACKENDS]
    extra = {"dwpose": {"threads": args.threads}}
    getters = {"pose": backends.get_pose_backend, "densepose": backends.get_densepose_backend,
               "mask": backends.get_mask_backend}
    results = []
    for kind, name, label, options in runs:
        getter = getters[kind]
        row = {"kind": kind, "name": label}
        try:
            backend = getter(name, **options, **extra.get(name, {}))
        except backends.BackendUnavailable as exc:
            row["unavailable"] = str(exc)
            print(f"{kind:9s} {label:16s} unavailable: {exc}")
            record(f"annotate: {kind} backend {label}", f"unavailable here ({str(exc).splitlines()[0][:80]})", "-",
                   None)
            results.append(row)
            continue
        row["version"] = backend.version()
        row.update(time_backend(backend, photos, clip))
        if hasattr(backend, "close"):
            backend.close()
        print(f"{kind:9s} {label:16s} photos {row['photos']:9.2f} frames/s   clip {row['clip']:9.2f} frames/s   "
              f"({row['version']})")
        record(f"annotate: {kind} backend {label} ({row['version']}), {args.threads} threads, long side {args.size}",
               f"{row['clip']:.2f} frames/s (clip), {row['photos']:.2f} frames/s (single photos)", "-", None)
        results.append(row)
    if any(r["kind"] == "mask" and r["name"] == "mediapipe" and "unavailable" not in r for r in results):
        cost = mask_cost(clip, args.repeat)
        extra_ms = 1000 * (cost["pose+mask"] - cost["pose"])
        print(f"masks beside the pose: pose {1000 * cost['pose']:.1f} ms/frame, pose + masks (one pass) "
              f"{1000 * cost['pose+mask']:.1f} ms/frame, masks add {extra_ms:+.1f} ms/frame")
        record(f"annotate: mask backend mediapipe beside the pose backend, clip of {len(clip)} frames "
               f"{clip.shape[2]}x{clip.shape[1]}, pose + masks from one Holistic pass vs pose alone, best of "
               f"{args.repeat} alternating ({cost['version']})",
               f"{1000 * cost['pose+mask']:.1f} ms/frame (masks add {extra_ms:+.1f} ms/frame)",
               f"{1000 * cost['pose']:.1f} ms/frame (pose alone)", cost["pose"] / cost["pose+mask"],
               "ratio >= 0.9 (ratio = pose time / pose + masks time)")
        results.append({"kind": "mask", "name": "mediapipe beside pose", **cost})
    if args.json:
        from toolkit.io import atomic_write_json

        atomic_write_json(args.json, {"size": args.size, "frames": args.frames, "threads": args.threads,
                                      "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
