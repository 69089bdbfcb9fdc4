"""Benchmark the pixel metrics against DisCo's evaluation loop on the same PNG frame pairs; prints a table.

The frame pairs are real 512x512 frames from the DensePose driving videos of the fixtures: the ground truth
is frame t, the "generated" frame is frame t+2 re-encoded as JPEG (quality 70), so the pairs differ by motion
and by compression artifacts. They are written as PNG files into gen/ and gt/ folders with matching names,
which is how DisCo's pipeline has them on disk.

(a) ``disco_loop``: DisCo's loop style (tool/metrics/ssim_l1_lpips_psnr.py at c4fa48a), re-implemented: one
    pass per metric, every pass reads both images of every pair from disk with cv2.imread, then numpy or
    scikit-image on that pair. DisCo runs three passes (L1, PSNR, SSIM); the legacy PSNR pass is timed apart.
(b) ``toolkit``: each PNG read once (threaded), then ``pixel_metrics`` computes all four disco metrics per frame
    on a thread pool.
The values of (a) and (b) must agree to 1e-6 (the script fails otherwise). The standard profile is timed the
same way against torchmetrics' SSIM called per pair (the standard profile's definition since v1.1), twice:
(c) in float32, as torchmetrics' users call it (``torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255``),
the fair speed comparison; its values agree with ours to FLOAT32_TOLERANCE (float32 SSIM loses ~1e-4);
(d) in float64, slower, the exact reference our values must equal to 1e-6. Both ratios are printed and
recorded, each named with its dtype; the torchmetrics import and first calls are left out of both timings.

Run: python benchmarks/metrics.py [--pairs 64] [--workers N] [--repeat 3] [--fixtures DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numpy as np
from results import record
from skimage.metrics import structural_similarity

from toolkit.metrics.functional import pixel_metrics
from toolkit.video import decode_image, encode_image, read_image, read_video, write_image

DEFAULT_FIXTURES = Path(os.environ.get("TOOLKIT_FIXTURES",
                                       Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"))
TOLERANCE = 1e-6
# torchmetrics' SSIM forms variances as E[x^2] - E[x]^2: in float32 that cancellation costs ~1e-4 on 512x512 frames
FLOAT32_TOLERANCE = 1e-3
T = TypeVar("T")


@dataclass
class Row:
    """One line of the printed table: what ran, how long it took, the values it produced."""

    name: str
    seconds: float
    values: dict[str, float]
    pairs: int | None = None  # pairs this row ran on, when not all of them


def build_pairs(fixtures: Path, n_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target) uint8 batches of 512x512 frames from the fixture DensePose videos (see module doc)."""
    videos = sorted((fixtures / "magicanimate" / "densepose").glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no fixture videos in {fixtures / 'magicanimate' / 'densepose'}: pass --fixtures")
    preds, targets = [], []
    per_video = math.ceil(n_pairs / len(videos))
    for video in videos:
        frames = read_video(video)
        step = max(1, (len(frames) - 2) // per_video)
        for t in range(0, len(frames) - 2, step)[:per_video]:
            targets.append(frames[t])
            preds.append(decode_image(encode_image(frames[t + 2], "jpeg", quality=70)))
    return np.stack(preds[:n_pairs]), np.stack(targets[:n_pairs])


def write_pairs(root: Path, preds: np.ndarray, targets: np.ndarray) -> tuple[list[Path], list[Path]]:
    """Write pairs as root/gen/NNNNN.png and root/gt/NNNNN.png; return the two sorted file lists."""
    gen, gt = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        gen.append(write_image(root / "gen" / f"{i:05d}.png", p))
        gt.append(write_image(root / "gt" / f"{i:05d}.png", t))
    return gen, gt


# ---------------------------------------------------------------- (a) DisCo's loop, re-implemented
def _disco_pair_score(gen_bgr: np.ndarray, gt_bgr: np.ndarray, mode: str) -> float | np.ndarray:
    if gen_bgr.shape != gt_bgr.shape:
        gen_bgr = cv2.resize(gen_bgr, (gt_bgr.shape[1], gt_bgr.shape[0]))
    if mode == "l1":
        return np.absolute(gen_bgr.astype(float) - gt_bgr.astype(float)) / float(gt_bgr.shape[0] * gt_bgr.shape[1])
    if mode in ("psnr", "psnr_legacy"):
        if mode == "psnr":
            mse = np.mean((gen_bgr.astype(np.float64) - gt_bgr.astype(np.float64)) ** 2)
        else:
            mse = np.mean((gen_bgr - gt_bgr) ** 2)  # uint8 wrap-around, as before DisCo commit 6190108
        return 100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))
    gray_gen = cv2.cvtColor(gen_bgr, cv2.COLOR_BGR2GRAY)
    gray_gt = cv2.cvtColor(gt_bgr, cv2.COLOR_BGR2GRAY)
    return structural_similarity(gray_gen, gray_gt, full=True)[0]


def disco_loop(gen_files: list[Path], gt_files: list[Path], mode: str) -> float:
    """One DisCo pass for one metric: read every pair from disk, score it, average over pairs."""
    scores = []
    for gen, gt in zip(sorted(gen_files), sorted(gt_files)):
        assert gen.stem == gt.stem, f"file mismatch: {gen.stem} vs {gt.stem}"
        scores.append(_disco_pair_score(cv2.imread(str(gen)), cv2.imread(str(gt)), mode))
    return float(np.mean(scores))


def standard_loop(gen_files: list[Path], gt_files: list[Path], dtype: str) -> dict[str, float]:
    """Per-pair reference for the standard profile in torch ``dtype`` ("float32" or "float64"): L1 and PSNR
    from the pair's tensors, SSIM from torchmetrics (its defaults: Gaussian 11 / 1.5, data range 1), the
    definition the standard profile follows since v1.1. Only the dtype differs between the two timings."""
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure

    kind = {"float32": torch.float32, "float64": torch.float64}[dtype]
    l1s, psnrs, ssims = [], [], []
    for gen, gt in zip(gen_files, gt_files):
        a, b = (torch.from_numpy(read_image(f)).permute(2, 0, 1)[None].to(kind) / 255 for f in (gen, gt))
        l1s.append(float((a - b).abs().mean()))
        mse = float(((a - b) ** 2).mean())
        psnrs.append(100.0 if mse == 0 else min(100.0, 10 * math.log10(1 / mse)))
        ssims.append(float(structural_similarity_index_measure(a, b, data_range=1.0)))
    return {"l1": float(np.mean(l1s)), "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


# ---------------------------------------------------------------- (b) the toolkit
def read_frames(files: list[Path], workers: int) -> np.ndarray:
    """Decode every file once, on a thread pool, into an (N, H, W, 3) batch."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(read_image, files)))


def toolkit_metrics(gen_files: list[Path], gt_files: list[Path], profile: str, workers: int) -> dict[str, float]:
    """Read both folders once, compute every pixel metric of the profile per frame, average over frames."""
    per_frame = pixel_metrics(read_frames(gen_files, workers), read_frames(gt_files, workers), profile,
                              workers=workers)
    return {name: float(values.mean()) for name, values in per_frame.items()}


def _standin_vgg_home(root: Path) -> None:
    """A TOOLKIT_HOME holding random VGG16 weights registered as the LPIPS backbone (speed only, not values)."""
    import dataclasses
    import hashlib

    import torch
    import torchvision

    from toolkit import weights

    os.environ["TOOLKIT_HOME"] = str(root)
    src = root / "standin" / "vgg16-397923af.pth"
    src.parent.mkdir(parents=True)
    torch.save(torchvision.models.vgg16().state_dict(), src)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    weights.ARTIFACTS["lpips-vgg16-backbone"] = dataclasses.replace(
        weights.ARTIFACTS["lpips-vgg16-backbone"], sha256=sha, size=src.stat().st_size, sha256_prefix=None)
    weights.import_file(src, "lpips-vgg16-backbone")


def lpips_rows(gen_files: list[Path], gt_files: list[Path], n: int, repeat: int) -> list[Row]:
    """LPIPS (disco profile: VGG, [0,1] inputs) per image as DisCo's loop runs it vs batched, same weights.

    Uses stand-in VGG16 weights (the real ones cannot be downloaded here): the timing is the
    network's, the values are not meaningful LPIPS. The two paths must agree to 1e-5.
    """
    import torch

    from toolkit.metrics.lpips import LPIPS

    gen_files, gt_files = gen_files[:n], gt_files[:n]
    with tempfile.TemporaryDirectory(prefix="bench-lpips-") as home:
        _standin_vgg_home(Path(home))
        metric = LPIPS(profile="disco", batch_size=8)
        model = metric.model

        def per_image() -> float:
            total = 0.0
            for g, t in zip(gen_files, gt_files):
                a = torch.from_numpy(read_image(g)).permute(2, 0, 1)[None].float() / 255
                b = torch.from_numpy(read_image(t)).permute(2, 0, 1)[None].float() / 255
                with torch.inference_mode():
                    total += float(model(a, b, normalize=False))
            return total / len(gen_files)

        def batched() -> float:
            metric.reset()
            metric.update(read_frames(gen_files, 2), read_frames(gt_files, 2))
            return metric.compute().value

        sec_a, a = timed(repeat, per_image)
        sec_b, b = timed(repeat, batched)
    if abs(a - b) > 1e-5:
        raise SystemExit(f"LPIPS per image {a} vs batched {b} differ")
    return [Row(f"LPIPS VGG per image, DisCo loop ({n} pairs)", sec_a, {"lpips_standin": a}, n),
            Row(f"LPIPS VGG batched x8, one read ({n} pairs)", sec_b, {"lpips_standin": b}, n)]


# ---------------------------------------------------------------- driver
def timed(repeat: int, fn: Callable[..., T], *args: object) -> tuple[float, T]:
    """Best wall time of ``repeat`` runs (the least disturbed by other processes) and the last result."""
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def check_equal(name: str, ours: dict[str, float], ref: dict[str, float], tolerance: float = TOLERANCE) -> float:
    """Largest absolute difference; exit with an error if any exceeds ``tolerance``."""
    worst = max(abs(ours[k] - ref[k]) for k in ref)
    if worst > tolerance:
        raise SystemExit(f"{name}: values differ by {worst:.3g} > {tolerance}: ours {ours} vs reference {ref}")
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="number of frame pairs (default 64)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads (default: all cores)")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="real fixtures folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best time is kept")
    parser.add_argument("--lpips-pairs", type=int, default=16,
                        help="pairs for the LPIPS line (stand-in VGG weights; 0 skips it)")
    args = parser.parse_args(argv)

    preds, targets = build_pairs(args.fixtures, args.pairs)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        gen_files, gt_files = write_pairs(Path(tmp), preds, targets)
        rows: list[Row] = []
        disco_values, disco_seconds = {}, 0.0
        for mode in ("l1", "psnr", "ssim"):
            sec, disco_values[mode] = timed(args.repeat, disco_loop, gen_files, gt_files, mode)
            disco_seconds += sec
        rows.append(Row("disco loop: L1, PSNR, SSIM passes (DisCo HEAD)", disco_seconds, dict(disco_values)))
        sec, legacy = timed(args.repeat, disco_loop, gen_files, gt_files, "psnr_legacy")
        rows.append(Row("disco loop: legacy PSNR pass (pre-6190108)", sec, {"psnr_legacy": legacy}))
        disco_values["psnr_legacy"] = legacy
        sec, ours = timed(args.repeat, toolkit_metrics, gen_files, gt_files, "disco", args.workers)
        rows.append(Row("toolkit disco: all 4, one read", sec, ours))
        disco_diff = check_equal("disco", ours, disco_values)

        for dtype in ("float32", "float64"):  # untimed warm-up: the torchmetrics import and first calls
            standard_loop(gen_files[:1], gt_files[:1], dtype)
        sec_32, std_32 = timed(args.repeat, standard_loop, gen_files, gt_files, "float32")
        rows.append(Row("torchmetrics per pair, float32: L1, PSNR, SSIM", sec_32, std_32))
        sec_64, std_64 = timed(args.repeat, standard_loop, gen_files, gt_files, "float64")
        rows.append(Row("torchmetrics per pair, float64: L1, PSNR, SSIM", sec_64, std_64))
        sec_std, std_ours = timed(args.repeat, toolkit_metrics, gen_files, gt_files, "standard", args.workers)
        rows.append(Row("toolkit standard: all 3, one read", sec_std, std_ours))
        std_diff = check_equal("standard vs torchmetrics float64", std_ours, std_64)
        std_diff_32 = check_equal("standard vs torchmetrics float32", std_ours, std_32, FLOAT32_TOLERANCE)
        if args.lpips_pairs:
            rows += lpips_rows(gen_files, gt_files, args.lpips_pairs, args.repeat)

    print(f"{len(preds)} pairs of {preds.shape[2]}x{preds.shape[1]} PNG frames, {args.workers} worker threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, best of {args.repeat} runs")
    print(f"{'what':<50} {'seconds':>8} {'ms/pair':>8}  values")
    for row in rows:
        values = ", ".join(f"{k}={v:.6g}" for k, v in row.values.items())
        print(f"{row.name:<50} {row.seconds:8.3f} {1000 * row.seconds / (row.pairs or len(preds)):8.2f}  {values}")
    print(f"disco: toolkit (4 metrics) vs DisCo loop (3 metrics): {disco_seconds / rows[2].seconds:.1f}x faster, "
          f"vs DisCo loop incl. legacy pass: {(disco_seconds + rows[1].seconds) / rows[2].seconds:.1f}x; "
          f"max |difference| {disco_diff:.2g}")
    print(f"standard: toolkit vs torchmetrics per pair in float32 (as its users call it): {sec_32 / sec_std:.1f}x "
          f"faster, max |difference| {std_diff_32:.2g}; vs torchmetrics in float64 (the exact reference, "
          f"{sec_64 / sec_32:.1f}x slower than its float32): {sec_64 / sec_std:.1f}x faster, max |difference| "
          f"{std_diff:.2g}")
    n = len(preds)
    record(f"metrics: disco profile, {n} PNG pairs 512x512, {args.workers} threads (all 4 metrics, one read)",
           f"{n / rows[2].seconds:.1f} pairs/s", f"{n / disco_seconds:.1f} pairs/s (DisCo's per-metric loops, 3 "
           "metrics)", disco_seconds / rows[2].seconds)
    for dtype, sec_ref in (("float32", sec_32), ("float64", sec_64)):
        record(f"metrics: standard profile L1/PSNR/SSIM, {n} PNG pairs, {args.workers} threads, vs torchmetrics "
               f"{dtype}", f"{n / sec_std:.1f} pairs/s", f"{n / sec_ref:.2f} pairs/s (torchmetrics SSIM per pair, "
               f"{dtype} tensors)", sec_ref / sec_std)
    lp = [r for r in rows if r.name.startswith("LPIPS")]
    if lp:
        print(f"LPIPS (stand-in VGG weights, CPU): batched vs per image: {lp[0].seconds / lp[1].seconds:.1f}x faster")
        pairs = lp[0].pairs or n
        record(f"metrics: LPIPS batched vs per image ({pairs} pairs, stand-in VGG weights, CPU)",
               f"{pairs / lp[1].seconds:.2f} pairs/s", f"{pairs / lp[0].seconds:.2f} pairs/s (one image per call)",
               lp[0].seconds / lp[1].seconds)


if __name__ == "__main__":
    main()
