"""`toolkit prepare` throughput against its bound, and the Ray executor against the local process pool.

The bound is the plain work prepare cannot avoid, on the same videos and the same cores: decode every source
image of the default dataset (frames, masks, DensePose maps; cv2.imread) and encode what the shards store
(frames as JPEG q95 for train / PNG for test, IUV and masks as PNG; the same encoder), in a spawn process
pool of --workers processes, writing nothing. Target: prepare at least 70% of the bound's frames/s.

The Ray executor runs the same preparation as one Ray task per video on a local cluster of --workers CPUs;
the cluster's start-up (start, first task) is timed apart and left out of its figure. Target: within 1.3x
of the local pool's time.

Run: python benchmarks/prepare.py [--source data/raw/synthetic] [--workers 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from results import record  # noqa: E402

from toolkit.prepare import PrepareOptions, ensure_generated, prepare  # noqa: E402
from toolkit.sources import discover, load_card  # noqa: E402
from toolkit.video import encode_image  # noqa: E402


def decode_encode(images: Path, masks: Path | None, densepose: Path | None, image_format: str) -> int:
    """Decode one TikTok-layout video's images and encode them as prepare stores them; returns its frames."""
    frames = sorted(images.glob("*.png"))
    for path in frames:
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        encode_image(image, image_format, 95)
        for folder in (masks, densepose):
            if folder is not None and (folder / path.name).exists():
                encode_image(cv2.imread(str(folder / path.name), cv2.IMREAD_UNCHANGED), "png")
    return len(frames)


def bound(source: Path, workers: int) -> tuple[int, float]:
    """(frames, seconds) of decode + encode of every video, in a spawn pool like prepare's."""
    card = load_card("synthetic")
    videos = discover(card, source)
    jobs = [(sv.path, sv.masks, sv.densepose, "png" if card.is_eval_split(sv.split) else "jpeg") for sv in videos]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        frames = sum(pool.map(decode_encode, *zip(*jobs)))
    return frames, time.perf_counter() - t0


def timed_prepare(source: Path, out: Path, workers: int, executor: str) -> tuple[int, float]:
    options = PrepareOptions(pose="synthetic", densepose="synthetic")
    t0 = time.perf_counter()
    report = prepare("synthetic", source, out, options, workers=workers if executor == "local" else None,
                     progress=False, executor=executor)
    seconds = time.perf_counter() - t0
    if report.failed:
        raise SystemExit(f"prepare failed on {len(report.failed)} video(s): {report.failed[0]['failure_reason']}")
    return sum(r["n_frames"] for r in report.records), seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=ROOT / "data" / "raw" / "synthetic")
    p.add_argument("--workers", type=int, default=2, help="processes (local pool, bound) and Ray CPUs")
    p.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is kept")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = p.parse_args()
    ensure_generated(load_card("synthetic"), args.source, progress=False, workers=args.workers)
    tmp = Path(tempfile.mkdtemp(prefix="prepare_bench_"))
    try:
        def best(run, *rest) -> tuple[int, float]:
            results = []
            for k in range(args.repeat):
                out = tmp / f"run{k}"
                results.append(run(args.source, out, *rest) if rest else run(args.source, args.workers))
                shutil.rmtree(out, ignore_errors=True)
            return min(results, key=lambda r: r[1])

        n_bound, t_bound = best(bound)
        n_local, t_local = best(timed_prepare, args.workers, "local")
        print(f"default dataset: {n_local} frames, {args.workers} processes, best of {args.repeat}")
        print(f"decode + encode bound: {t_bound:7.2f} s  {n_bound / t_bound:8.1f} frames/s")
        print(f"prepare, local pool:   {t_local:7.2f} s  {n_local / t_local:8.1f} frames/s  "
              f"{t_bound / t_local:.0%} of the bound (target >= 70%)")
        record(f"prepare: default dataset ({n_local} frames, 512x512), {args.workers} processes",
               f"{n_local / t_local:.1f} frames/s", f"{n_bound / t_bound:.1f} frames/s (plain decode + encode "
               "of the same videos, same cores)", t_bound / t_local, "ratio >= 0.70 of the bound")
        if args.no_ray:
            return 0
        from toolkit import ray_executor

        ray = ray_executor.require_ray()
        start = ray_executor.start_up_seconds(None, args.workers)
        try:
            n_ray, t_ray = best(timed_prepare, None, "ray")
        finally:
            ray.shutdown()
        print(f"prepare, Ray executor: {t_ray:7.2f} s  {n_ray / t_ray:8.1f} frames/s  {t_ray / t_local:.2f}x the "
              f"local pool's time (target <= 1.3); cluster start-up {start:.1f} s apart")
        record(f"prepare: Ray executor vs local pool, default dataset, {args.workers} CPUs (start-up apart)",
               f"{t_ray:.1f} s", f"{t_local:.1f} s (local process pool)", t_ray / t_local,
               "ratio <= 1.3 (ratio = Ray time / local time)")
        record("prepare: Ray cluster start-up (ray.init of a local cluster + first task)", f"{start:.1f} s", "-",
               None, "reported apart, not in the Ray figure")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
