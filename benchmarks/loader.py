"""Training-clip throughput: ClipDataset on shards vs per-sample mp4 decoding, same clips, same workers.

The common open-source recipe (Animate Anyone / Champ style training code) opens
the mp4 with decord for every training sample, decodes the sampled frames with
`get_batch`, then resizes. ClipDataset reads the same frames from Parquet shards
(JPEG q95 at 512, the training-split encoding) and resizes. Both produce the same
16-frame clips at stride 4 (the clip positions come from one seeded list) at
512x512, through a DataLoader with the same number of workers. Each case is run
twice: clips returned as uint8 (convert on the GPU) and as float32 in [0, 1]
(the division happens in the worker; the 4x larger tensors then cross processes).

Source videos are made here the way the datasets ship: UBC-Fashion-like 720x940
at 30 fps and TikTok-like 604x1080 portrait clips, x264 defaults. A second run
uses mp4s already at 512x512 with a short GOP (12), the friendliest case for decord.

A third part measures the conditions models train on: pose and DensePose renders.
On the default dataset's shards (512x512, keypoints and IUV stored), ClipDataset
renders them per clip (toolkit.conditions); the field's recipe (Moore-AnimateAnyone
reads a pose mp4 beside each video, Champ a folder per condition) decodes three
videos per sample with decord: the frames and their pre-rendered pose and DensePose
videos, written here from the same shards. Two per-sample baselines are measured:
the field's recipe as Moore-AnimateAnyone's `HumanDanceVideoDataset` runs it (decord
frame by frame, each frame to PIL, torchvision RandomResizedCrop + ToTensor (+ Normalize
for pixels) per frame, float32 out; its CLIP preprocessing of the reference is left
out), and a bare lower bound (one decord `get_batch` per video, no resize, no PIL).
Targets: with pose + DensePose at least 10x the field's recipe (the bare bound's ratio
is printed beside it); with pose alone within 1.5x of frames alone. Our side runs as
renders as images (3 x 512 x 512 bytes per frame and condition cross from the workers) and
as label maps (`renders="labels"`, the training loop's setting: a third of the bytes; the
loop colours them on the device with `toolkit.conditions.colour_batch`, a gather on a GPU;
what that colouring costs on this CPU is printed apart, in ms per clip), in DataLoader
worker processes and, for the labels, in ThreadLoader worker threads (the training loop's
default: no batch is copied between processes). The field's recipe runs on both kinds of
workers too, and the ratios are to the faster of its two.

Run: .venv/bin/python benchmarks/loader.py [--videos 4] [--frames 150] [--samples 48] [--workers 2]
     [--part decode|conditions|all] [--shards data/shards/synthetic]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from results import record
from torch.utils.data import DataLoader, Dataset

from toolkit.data import ClipDataset
from toolkit.prepare import PrepareOptions, prepare
from toolkit.train.thread_loader import ThreadLoader
from toolkit.video import write_video

N_FRAMES, STRIDE, OUT = 16, 4, 512


def moving_scene(n: int, width: int, height: int, seed: int) -> np.ndarray:
    """Frames with texture and motion so the encoder does real work: textured backdrop, moving figure."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    base = cv2.GaussianBlur(noise, (0, 0), 3)
    frames = np.empty((n, height, width, 3), np.uint8)
    cloth = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    cloth = cv2.resize(cloth, (width // 3, height // 2), interpolation=cv2.INTER_NEAREST)
    for t in range(n):
        f = np.roll(base, t // 3, axis=1).copy()
        cx = int(width / 2 + width / 5 * np.sin(t / 15))
        cy = int(height / 2 + height / 20 * np.sin(t / 7))
        x0, y0 = max(0, cx - cloth.shape[1] // 2), max(0, cy - cloth.shape[0] // 2)
        patch = cloth[: height - y0, : width - x0]
        f[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
        cv2.circle(f, (cx, y0 - height // 12), height // 14, (220, 180, 150), -1)
        cv2.line(f, (x0, y0 + 20), (x0 - width // 8, y0 + height // 4 + int(30 * np.sin(t / 4))), (210, 170, 140), 18)
        frames[t] = f
    return frames


class PerSampleMp4(Dataset):
    """The per-sample baseline: open the mp4 with decord for each item, get_batch, resize + centre crop."""

    def __init__(self, paths: dict[str, Path], clips: list[tuple[str, list[int], int]], dtype: torch.dtype):
        self.paths, self.clips, self.dtype = paths, clips, dtype

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        import decord

        video_id, idx, ref = self.clips[i]
        reader = decord.VideoReader(str(self.paths[video_id]), ctx=decord.cpu(0))
        batch = reader.get_batch([ref, *idx]).asnumpy()
        out = []
        for f in batch:
            h, w = f.shape[:2]
            s = OUT / min(h, w)
            f = cv2.resize(f, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            oy, ox = (f.shape[0] - OUT) // 2, (f.shape[1] - OUT) // 2
            out.append(f[oy:oy + OUT, ox:ox + OUT])
        arr = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
        if self.dtype == torch.float32:
            arr = arr.float().div_(255)
        return {"reference": arr[0].contiguous(), "frames": arr[1:].contiguous()}


class PerSampleConditionMp4s(Dataset):
    """The field's per-sample recipe with conditions: decode the clip from the video, its pose mp4 and its
    DensePose mp4 with decord for every item (no resize needed: all three are stored at the output size)."""

    def __init__(self, paths: dict[str, dict[str, Path]], clips: list[tuple[str, list[int], int]],
                 dtype: torch.dtype):
        self.paths, self.clips, self.dtype = paths, clips, dtype

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        import decord

        video_id, idx, ref = self.clips[i]
        out = {}
        for key, path in self.paths[video_id].items():
            batch = decord.VideoReader(str(path), ctx=decord.cpu(0)).get_batch([ref, *idx]).asnumpy()
            arr = torch.from_numpy(batch).permute(0, 3, 1, 2)
            arr = arr.float().div_(255) if self.dtype == torch.float32 else arr.contiguous()
            out[key] = arr[1:]
            if key == "frames":
                out["reference"] = arr[0]
        return out


class FieldRecipeMp4s(Dataset):
    """The field's per-sample recipe as Moore-AnimateAnyone's HumanDanceVideoDataset runs it, with DensePose read
    like its pose video: decord readers opened per item, frames fetched one index at a time, each frame made a
    PIL image and put through torchvision RandomResizedCrop(scale 1, ratio 0.9-1, bilinear) + ToTensor (+ Normalize
    to [-1, 1] for pixels) with one random state for the whole clip; float32 out."""

    def __init__(self, paths: dict[str, dict[str, Path]], clips: list[tuple[str, list[int], int]]):
        from torchvision import transforms

        self.paths, self.clips = paths, clips
        crop = transforms.RandomResizedCrop((OUT, OUT), scale=(1.0, 1.0), ratio=(0.9, 1.0),
                                            interpolation=transforms.InterpolationMode.BILINEAR)
        self.pixel = transforms.Compose([crop, transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
        self.cond = transforms.Compose([crop, transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        import decord
        from PIL import Image

        video_id, idx, ref = self.clips[i]
        readers = {key: decord.VideoReader(str(path)) for key, path in self.paths[video_id].items()}
        images = {key: [Image.fromarray(r[k].asnumpy()) for k in idx] for key, r in readers.items()}
        reference = Image.fromarray(readers["frames"][ref].asnumpy())
        state = torch.get_rng_state()
        out = {}
        for key, frames in images.items():
            torch.set_rng_state(state)
            transform = self.pixel if key == "frames" else self.cond
            out[key] = torch.stack([transform(f) for f in frames])
        torch.set_rng_state(state)
        out["reference"] = self.pixel(reference)
        return out


def clips_per_second(ds: Dataset, workers: int, warmup: int = 4, threads: bool = False) -> float:
    """Clips per second arriving in this process: `workers` DataLoader processes, or with `threads` as many
    ThreadLoader threads (the training loop's default), batches of one, two made ahead per worker."""
    if threads:
        loader = ThreadLoader(ds, [[i] for i in range(len(ds))], workers, prefetch=2)
    else:
        loader = DataLoader(ds, batch_size=1, shuffle=False, num_workers=workers,
                            persistent_workers=workers > 0, prefetch_factor=2 if workers else None)
    it = iter(loader)
    for _ in range(min(warmup, len(ds) - 1)):
        next(it)
    t0, n = time.perf_counter(), 0
    for batch in it:
        assert batch["frames"].shape[1:] == (N_FRAMES, 3, OUT, OUT), batch["frames"].shape
        n += 1
    return n / (time.perf_counter() - t0)


def colouring_ms(ds: Dataset, n: int = 8) -> float:
    """Milliseconds to turn one clip's label maps into images with `colour_batch` in this process (CPU)."""
    from toolkit.conditions import colour_batch

    batches = [torch.utils.data.default_collate([ds[i]]) for i in range(min(n, len(ds)))]
    colour_batch(batches[0])
    t0 = time.perf_counter()
    for batch in batches:
        colour_batch(batch)
    return (time.perf_counter() - t0) / len(batches) * 1e3


def run_case(name: str, tmp: Path, sizes: list[tuple[int, int]], args, gop: int | None,
             dtype: torch.dtype) -> tuple[float, float]:
    src, shards = tmp / f"{name}_src", tmp / f"{name}_shards"
    if not shards.exists():
        for k, (w, h) in enumerate(sizes):
            write_video(src / f"v{k:02d}.mp4", moving_scene(args.frames, w, h, k), fps=30.0, gop=gop)
        prepare("folder", src, shards, PrepareOptions(size=OUT, image_format="jpeg"), workers=2, progress=False)
    paths = {p.stem: p for p in src.glob("*.mp4")}
    ours = ClipDataset(shards, n_frames=N_FRAMES, stride=STRIDE, size=OUT, seed=0,
                       samples_per_video=max(1, args.samples // len(sizes)), dtype=dtype)
    clips = [ours.clip_indices(i) for i in range(len(ours))]
    theirs = PerSampleMp4(paths, clips, dtype)
    return clips_per_second(theirs, args.workers), clips_per_second(ours, args.workers)


def conditions_part(args, tmp: Path) -> None:
    """Pose / DensePose conditions: ClipDataset renders vs decoding pre-rendered condition videos per sample."""
    from toolkit import conditions
    from toolkit.shards.reader import Shards

    shards = Shards(args.shards)
    table = shards.videos[(shards.videos.split == "train") & (shards.videos.status == "ok")]
    ids = list(table.video_id[:args.videos])
    if not ids or not (table.has_keypoints.all() and table.has_iuv.all()):
        print(f"\nconditions: skipped ({args.shards} needs train videos with keypoints and IUV: make prepare-data)")
        return
    stride = 2
    paths: dict[str, dict[str, Path]] = {}
    for video_id in ids:
        frames = shards.frames(video_id)
        size = frames.shape[1:3]
        pose = conditions.pose_images(shards.keypoints(video_id), size, size)
        dense = conditions.densepose_images(shards.iuv(video_id), size)
        paths[video_id] = {}
        for key, arr in (("frames", frames), ("pose", pose), ("densepose", dense)):
            paths[video_id][key] = write_video(tmp / "cond" / key / f"{video_id}.mp4", arr, fps=30.0)
    n_per = max(1, args.samples // len(ids))

    def ours(columns, dtype, renders="images"):
        return ClipDataset(args.shards, n_frames=N_FRAMES, stride=stride, size=OUT, seed=0, columns=columns,
                           samples_per_video=n_per, dtype=dtype, videos=ids, renders=renders)

    print(f"\nconditions: default dataset shards ({len(ids)} train videos, 512x512, frames JPEG, IUV PNG), "
          f"{N_FRAMES}-frame clips at stride {stride}, {args.workers} workers")
    print(f"{'case':<62} {'output':<8} {'clips/s':>9} {'ratio':>34}")
    clips = [ours((), torch.uint8).clip_indices(i) for i in range(len(ids) * n_per)]
    field_procs = clips_per_second(FieldRecipeMp4s(paths, clips), args.workers)
    field_threads = clips_per_second(FieldRecipeMp4s(paths, clips), args.workers, threads=True)
    field = max(field_procs, field_threads)  # the baseline on whichever workers serve it better
    print(f"{'field recipe: decord per frame + PIL + torchvision, 3 mp4s':<62} {'float32':<8} {field_procs:>9.2f}")
    print(f"{'field recipe, worker threads instead of processes':<62} {'float32':<8} {field_threads:>9.2f}")
    print(f"  ratios below are to the faster of the two ({field:.2f} clips/s)")
    for dtype, label in ((torch.uint8, "uint8"), (torch.float32, "float32")):
        frames_only = clips_per_second(ours((), dtype), args.workers)
        pose = clips_per_second(ours(("pose",), dtype), args.workers)
        both = clips_per_second(ours(("pose", "densepose"), dtype), args.workers)
        bare = clips_per_second(PerSampleConditionMp4s(paths, clips, dtype), args.workers)
        print(f"{'ClipDataset frames only':<62} {label:<8} {frames_only:>9.2f}")
        print(f"{'ClipDataset + pose':<62} {label:<8} {pose:>9.2f} "
              f"{frames_only / pose:>8.2f}x slower (target <= 1.5)")
        print(f"{'bare bound: one decord get_batch per mp4, no resize, no PIL':<62} {label:<8} {bare:>9.2f}")
        print(f"{'ClipDataset + pose + DensePose':<62} {label:<8} {both:>9.2f} "
              f"{both / field:>8.1f}x the field recipe (target >= 10), {both / bare:.1f}x the bare bound", flush=True)
        record(f"loader: clips/s with pose + DensePose conditions, ClipDataset renders vs 3 mp4s per sample "
               f"({label}, {args.workers} workers)", f"{both:.2f} clips/s",
               f"{field:.2f} clips/s (decord per frame + PIL + torchvision, Moore-AnimateAnyone style)",
               both / field, "ratio >= 10")
        record(f"loader: pose render overhead, ClipDataset frames only vs + pose ({label})",
               f"{pose:.2f} clips/s", f"{frames_only:.2f} clips/s (frames only)", frames_only / pose,
               "slowdown <= 1.5 (ratio = frames only / with pose)")
        if dtype != torch.uint8:
            continue
        pose_l = clips_per_second(ours(("pose",), dtype, "labels"), args.workers)
        both_l = clips_per_second(ours(("pose", "densepose"), dtype, "labels"), args.workers)
        colour_ms = colouring_ms(ours(("pose", "densepose"), dtype, "labels"))
        print(f"{'ClipDataset + pose, as labels, worker processes':<62} {label:<8} {pose_l:>9.2f} "
              f"{frames_only / pose_l:>8.2f}x slower (target <= 1.5)")
        print(f"{'ClipDataset + pose + DensePose, as labels, worker processes':<62} {label:<8} {both_l:>9.2f} "
              f"{both_l / field:>8.1f}x the field recipe (target >= 10), {both_l / bare:.1f}x the bare bound")
        print(f"  colouring the labels in the consumer (colour_batch, on this CPU; a gather on a GPU): "
              f"{colour_ms:.1f} ms per clip", flush=True)
        record(f"loader: clips/s with pose + DensePose as label maps (ClipDataset renders='labels', coloured on "
               f"the device) in {args.workers} worker processes vs 3 mp4s per sample ({label})",
               f"{both_l:.2f} clips/s", f"{field:.2f} clips/s (decord per frame + PIL + torchvision)",
               both_l / field, "ratio >= 10")
        record(f"loader: pose overhead as label maps, ClipDataset frames only vs + pose labels ({label})",
               f"{pose_l:.2f} clips/s", f"{frames_only:.2f} clips/s (frames only)", frames_only / pose_l,
               "slowdown <= 1.5 (ratio = frames only / with pose)")
        record("loader: colouring pose + DensePose label maps of one clip on the CPU (colour_batch)",
               f"{colour_ms:.1f} ms/clip", "-", None)
        frames_t = clips_per_second(ours((), dtype), args.workers, threads=True)
        pose_t = clips_per_second(ours(("pose",), dtype, "labels"), args.workers, threads=True)
        both_t = clips_per_second(ours(("pose", "densepose"), dtype, "labels"), args.workers, threads=True)
        print(f"{'ClipDataset frames only, worker threads':<62} {label:<8} {frames_t:>9.2f}")
        print(f"{'ClipDataset + pose, labels, threads (training default)':<62} {label:<8} {pose_t:>9.2f} "
              f"{frames_t / pose_t:>8.2f}x slower (target <= 1.5)")
        print(f"{'ClipDataset + pose + DensePose, labels, threads (training default)':<62} {label:<8} "
              f"{both_t:>9.2f} {both_t / field:>8.1f}x the field recipe (target >= 10)", flush=True)
        record(f"loader: clips/s with pose + DensePose as label maps in {args.workers} worker threads (ThreadLoader, "
               "the training default) vs 3 mp4s per sample (the faster of its processes and threads)",
               f"{both_t:.2f} clips/s", f"{field:.2f} clips/s (decord per frame + PIL + torchvision)",
               both_t / field, "ratio >= 10")
        record(f"loader: pose overhead as label maps in {args.workers} worker threads, frames only vs + pose labels",
               f"{pose_t:.2f} clips/s", f"{frames_t:.2f} clips/s (frames only, threads)", frames_t / pose_t,
               "slowdown <= 1.5 (ratio = frames only / with pose)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=4, help="videos per case")
    p.add_argument("--frames", type=int, default=300, help="frames per video (30 fps; UBC clips run ~12 s)")
    p.add_argument("--samples", type=int, default=48, help="clips drawn per measurement")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers, same on both sides")
    p.add_argument("--part", choices=("decode", "conditions", "all"), default="all")
    p.add_argument("--shards", type=Path, default=Path("data/shards/synthetic"),
                   help="shards with keypoints and IUV for the conditions part")
    args = p.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="loader_bench_"))
    try:
        if args.part in ("conditions", "all"):
            conditions_part(args, tmp)
        if args.part == "conditions":
            return
        half = args.videos // 2
        cases = [
            ("as shipped (720x940 UBC-like + 604x1080 TikTok-like, x264 defaults)",
             "shipped", [(720, 940)] * (args.videos - half) + [(604, 1080)] * half, None),
            ("mp4 already 512x512, GOP 12", "small", [(512, 512)] * args.videos, 12),
        ]
        print(f"{N_FRAMES}-frame clips at stride {STRIDE}, output {OUT}x{OUT}, {args.workers} DataLoader workers, "
              f"{args.videos} videos x {args.frames} frames per case\n")
        print(f"{'source videos':<70} {'output':<8} {'mp4 per sample':>15} {'ClipDataset':>12} {'ratio':>7}")
        for title, key, sizes, gop in cases:
            for dtype, label in ((torch.uint8, "uint8"), (torch.float32, "float32")):
                base, mine = run_case(key, tmp, sizes, args, gop, dtype)
                print(f"{title:<70} {label:<8} {base:>11.2f} c/s {mine:>8.2f} c/s {mine / base:>6.1f}x", flush=True)
                record(f"loader: training clips/s, ClipDataset vs mp4 per sample; {title}, {label}, "
                       f"{args.workers} workers", f"{mine:.2f} clips/s",
                       f"{base:.2f} clips/s (decord per sample, the common recipe)", mine / base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
