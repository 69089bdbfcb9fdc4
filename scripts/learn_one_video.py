"""Does a tiny reference model learn? Fit one training video, regenerate it from its poses, score it.

The chain shards -> conditions -> model -> sampler -> harness carries the pose
signal only if the regenerated video matches its ground truth clearly better
than repeating the reference frame. The bar: person-region L1 (`l1_fg`,
standard profile) at least 30% below `reference-copy` on the same video, after
at most 15 minutes of CPU training. The numbers, the loss curve and the verdict
go to OUT/learning.json; the bar is reported as measured, met or not.

`unianimate` trains one run; `magicanimate` trains its two stages in the same 15
minutes (stage 1, images, into OUT/stage1; stage 2, motion modules, into OUT/stage2
from stage 1's weights; `--stage2-minutes` of the total go to stage 2).

Run: .venv/bin/python scripts/learn_one_video.py [--method unianimate] [--minutes 15] [--video synth_000]
                                                 [--out runs/learn-tiny]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from toolkit.harness.runner import evaluate
from toolkit.plugins import load
from toolkit.train.loop import train

BAR = 0.30


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="unianimate", choices=("unianimate", "magicanimate"))
    ap.add_argument("--shards", type=Path, default=Path("data/shards/synthetic"))
    ap.add_argument("--video", default=None, help="training video to fit (default: the first of the train split)")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--stage2-minutes", type=float, default=3.0, help="magicanimate: minutes of --minutes for stage 2")
    ap.add_argument("--out", type=Path, default=Path("runs/learn-tiny"))
    ap.add_argument("--fresh", action="store_true", help="delete OUT first instead of resuming it")
    args = ap.parse_args()

    from toolkit.shards.reader import Shards

    table = Shards(args.shards).videos
    train_ids = sorted(table[(table.split == "train") & (table.status == "ok")].video_id)
    video = args.video or train_ids[0]
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    recipe = load("toolkit.recipes", args.method)()
    config = recipe.load_config("tiny")
    config["data"].update(videos=[video], reference="first")
    config["train"].update(checkpoint_every=200)
    started = time.time()
    if args.method == "magicanimate":
        stage1, stage2 = args.out / "stage1", args.out / "stage2"
        for stage in ("1", "2"):
            config["stages"][stage]["train"]["steps"] = 100_000
        config["stages"]["1"]["data"]["samples_per_video"] = 512
        config["stages"]["2"]["data"]["samples_per_video"] = 64
        first = train(recipe, config, args.shards, stage1, resume=(stage1 / "checkpoint").is_dir(),
                      max_minutes=args.minutes - args.stage2_minutes, method=args.method, stage=1)
        second = train(load("toolkit.recipes", args.method)(), config, args.shards, stage2,
                       resume=(stage2 / "checkpoint").is_dir(), max_minutes=args.stage2_minutes,
                       method=args.method, stage=2, init=stage1)
        trained, steps, logs = stage2, {"stage1": first.get("step"), "stage2": second.get("step")}, [stage1, stage2]
        seconds = first.get("seconds", 0) + second.get("seconds", 0)
    else:
        config["data"].update(samples_per_video=64)
        config["train"].update(steps=100_000)
        summary = train(recipe, config, args.shards, args.out, resume=(args.out / "checkpoint").is_dir(),
                        max_minutes=args.minutes, method=args.method)
        trained, steps, logs, seconds = args.out, summary.get("step"), [args.out], summary.get("seconds", 0)
    scores = {}
    for method, options in (("reference-copy", None), (args.method, {"checkpoint": trained})):
        rep = evaluate(args.shards, method=method, split="train", profile="standard", write=False,
                       method_options=options, video_ids=[video])
        scores[method] = {k: rep.aggregate[k] for k in ("l1_fg", "l1", "psnr_fg", "ssim_fg", "ssim")}
    ratio = scores[args.method]["l1_fg"] / scores["reference-copy"]["l1_fg"]
    losses = {log.name: [json.loads(line) for line in (log / "loss.jsonl").read_text().splitlines()] for log in logs}
    result = {
        "method": args.method, "video": video, "minutes_trained": seconds / 60, "steps": steps,
        "wall_minutes": (time.time() - started) / 60, "scores": scores,
        "l1_fg_reduction": 1 - ratio, "bar": BAR, "bar_met": bool(1 - ratio >= BAR),
        "loss_curve": {name: [(r["step"], r["loss"]) for r in rows[:: max(1, len(rows) // 50)]]
                       for name, rows in losses.items()},
    }
    (args.out / "learning.json").write_text(json.dumps(result, indent=1))
    print(f"\n{args.method} on video {video}: {result['steps']} steps in {result['minutes_trained']:.1f} min")
    for method, s in scores.items():
        print(f"  {method:15s} l1_fg {s['l1_fg']:.4f}  psnr_fg {s['psnr_fg']:.2f}  ssim_fg {s['ssim_fg']:.3f}")
    print(f"  l1_fg reduction vs reference-copy: {100 * (1 - ratio):.1f}% (bar {100 * BAR:.0f}%): "
          f"{'met' if result['bar_met'] else 'NOT met'}")
    return 0 if result["bar_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
