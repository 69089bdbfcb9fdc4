"""Does a tiny reference model learn? Fit one training video, regenerate it from its poses, score it.

The chain shards -> conditions -> model -> sampler -> harness carries the pose
signal only if the regenerated video matches its ground truth clearly better
than repeating the reference frame. The bar, after at most 15 minutes of CPU
training, against `reference-copy` on the same video (standard profile):
person-region L1 (`l1_fg`) at least 30% lower, and whole-frame L1 and SSIM no
worse (frames without residual sampling noise). Also measured: the clean-sample
error of one denoising step per timestep (where a model's samples keep noise).
The tiny config trains at the video's own size in the model's multiples (80x64
for an 84x64 clip), the size it is regenerated at. The numbers, the loss curve,
the verdict and a still (OUT/strip.png: reference | pose | ground truth | model)
go to OUT/; the bar is reported as measured, met or not.

`unianimate` trains one run; `magicanimate` trains its two stages in the same 15
minutes (stage 1, images, into OUT/stage1; stage 2, motion modules, into OUT/stage2
from stage 1's weights; `--stage2-minutes` of the total go to stage 2).

Run: .venv/bin/python scripts/learn_one_video.py [--method unianimate] [--minutes 15] [--video synth_000]
                                                 [--shards data/shards/synthetic-64] [--out runs/learn-tiny]
     .venv/bin/python scripts/learn_one_video.py --method unianimate --shards data/shards/ubc-real \
                                                 --out runs/learn-tiny-unianimate-real --score-only  # rescore
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from toolkit.harness.runner import evaluate
from toolkit.package import method_package
from toolkit.train.loop import train

BAR = 0.30
#: Timesteps at which the clean-sample error is measured (the sampler starts at 999 and ends near 0).
X0_TIMESTEPS = (999, 900, 700, 500, 300, 100, 20)


def x0_error(method: str, run: Path, shards: Path, video: str, clips: int = 8) -> dict[int, float]:
    """Per timestep, the RMSE (pixels in [0, 1]) of the run's one-step clean estimate of `clips` clips of
    `video` noised to it, every condition kept: where a model denoises well and where its samples keep noise."""
    from toolkit.conditions import colour_batch
    from toolkit.models.codec import build_codec
    from toolkit.models.run_folder import load_run, load_weights

    recipe = method_package(method).recipe_class()()
    config, model_dir = load_run(run, method)
    model, needs = recipe.build(config).model_and_needs()
    load_weights(model, model_dir, str(run))
    model.eval()
    config = {**config, "data": {**config["data"], "videos": [video], "samples_per_video": clips}}
    dataset = recipe.build_dataset(shards, recipe.parse_config(config))
    batch = colour_batch(torch.utils.data.default_collate([dataset[i] for i in range(min(clips, len(dataset)))]))
    codec = build_codec(config.get("codec", {}))

    def decode(z: torch.Tensor) -> torch.Tensor:  # (B, C, F, h, w) latents -> (B * F, 3, H, W) in [0, 1]
        return codec.decode(z.transpose(1, 2).flatten(0, 1)).clamp(0, 1)

    out = {}
    for t in X0_TIMESTEPS:
        estimate, clean = recipe.clean_estimate(model, batch, t, torch.Generator().manual_seed(t), needs)
        out[t] = float(((decode(estimate) - decode(clean)) ** 2).mean().sqrt())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="unianimate", choices=("unianimate", "magicanimate"))
    ap.add_argument("--shards", type=Path, default=Path("data/shards/synthetic"))
    ap.add_argument("--video", default=None, help="training video to fit (default: the first of the train split)")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--stage2-minutes", type=float, default=3.0, help="magicanimate: minutes of --minutes for stage 2")
    ap.add_argument("--out", type=Path, default=Path("runs/learn-tiny"))
    ap.add_argument("--fresh", action="store_true", help="delete OUT first instead of resuming it")
    ap.add_argument("--score-only", action="store_true", help="score the run already in OUT without training it")
    args = ap.parse_args()

    from toolkit.shards.reader import Shards

    table = Shards(args.shards).videos
    train_ids = sorted(table[(table.split == "train") & (table.status == "ok")].video_id)
    video = args.video or train_ids[0]
    if args.method == "magicanimate" and not bool(table.set_index("video_id").has_iuv[video]):
        reason = (f"{args.shards}: video {video} has no DensePose, which the MagicAnimate-style model is driven by; "
                  "no DensePose backend runs offline here (detectron2 + densepose-r50-fpn: README, Annotation), "
                  "so this check runs on the synthetic video only")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "learning.json").write_text(json.dumps({"method": args.method, "shards": str(args.shards),
                                                            "video": video, "skipped": reason}, indent=1))
        print(f"\n{args.method} on video {video}: skipped: {reason}")
        return 0
    if args.fresh and args.score_only:
        ap.error("--fresh would delete the run that --score-only scores")
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    recipe = method_package(args.method).recipe_class()()
    config = recipe.load_config("tiny")
    row = table.set_index("video_id").loc[video]
    size = training_size(config, int(row.height), int(row.width))
    config["data"].update(videos=[video], reference="first", size=list(size))
    config["train"].update(checkpoint_every=200)
    started = time.time()
    if args.score_only:
        return score(args, video, *previous_run(args.out, args.method), started)
    if args.method == "magicanimate":
        stage1, stage2 = args.out / "stage1", args.out / "stage2"
        for stage in ("1", "2"):
            config["stages"][stage]["train"]["steps"] = 100_000
        config["stages"]["1"]["data"]["samples_per_video"] = 512
        config["stages"]["2"]["data"]["samples_per_video"] = 64
        first = train(recipe, config, args.shards, stage1, resume=(stage1 / "checkpoint").is_dir(),
                      max_minutes=args.minutes - args.stage2_minutes, method=args.method, stage=1)
        second = train(method_package(args.method).recipe_class()(), config, args.shards, stage2,
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
    return score(args, video, trained, steps, logs, seconds, started)


def training_size(config: dict, height: int, width: int) -> tuple[int, int]:
    """The video's own size in the multiples the tiny model takes (codec x UNet levels), nearest its aspect:
    the person is fitted at the scale and aspect it is regenerated at (a square crop of a portrait clip
    would cut off head and feet, and the regenerated frames would show them at another scale)."""
    from toolkit.conditions import generation_size
    from toolkit.harness.diffusion_method import size_multiple
    from toolkit.models.codec import build_codec

    codec = build_codec(config.get("codec", {}))
    multiple = size_multiple(codec.downsample, len(config["model"]["block_out_channels"]))
    return generation_size((height, width), multiple, height, width)


def previous_run(out: Path, method: str) -> tuple[Path, Any, list[Path], float]:
    """(trained run, steps, loss-log folders, seconds trained) of a run this script trained into `out`."""
    from toolkit.models.run_folder import read_json

    folders = [out / "stage1", out / "stage2"] if method == "magicanimate" else [out]
    meta = [read_json(f / "checkpoint" / "meta.json") for f in folders]
    steps = {f.name: m.get("step") for f, m in zip(folders, meta)} if method == "magicanimate" else meta[0].get("step")
    seconds = 0.0
    for f in folders:
        rows = (f / "loss.jsonl").read_text().splitlines()
        seconds += json.loads(rows[-1]).get("seconds", 0) if rows else 0
    return folders[-1], steps, folders, seconds


def score(args: argparse.Namespace, video: str, trained: Path, steps: Any, logs: list[Path], seconds: float,
          started: float) -> int:
    """Score the trained run against reference-copy, write OUT/learning.json and the strip, print the verdict."""
    errors = x0_error(args.method, trained, args.shards, video)
    learned = method_package(args.method).method_class()(checkpoint=trained)
    scores = {}
    for name, method in (("reference-copy", "reference-copy"), (args.method, learned)):
        rep = evaluate(args.shards, method=method, split="train", profile="standard", write=False,
                       video_ids=[video], progress=False)
        scores[name] = {k: rep.aggregate.get(k) for k in ("l1_fg", "l1", "psnr_fg", "ssim_fg", "ssim")}
    checks = compare(scores[args.method], scores["reference-copy"])
    strip = write_strip(args.shards, video, args.method, learned, args.out / "strip.png")
    losses = {log.name: [json.loads(line) for line in (log / "loss.jsonl").read_text().splitlines()] for log in logs}
    result = {
        "method": args.method, "shards": str(args.shards), "video": video, "minutes_trained": seconds / 60,
        "steps": steps, "wall_minutes": (time.time() - started) / 60, "scores": scores,
        "x0_rmse_by_timestep": errors, "checks": checks, "bar_met": all(c["met"] for c in checks.values()),
        "strip": str(strip),
        "loss_curve": {name: [(r["step"], r["loss"]) for r in rows[:: max(1, len(rows) // 50)]]
                       for name, rows in losses.items()},
    }
    (args.out / "learning.json").write_text(json.dumps(result, indent=1))
    print(f"\n{args.method} on video {video} ({args.shards}): {result['steps']} steps in "
          f"{result['minutes_trained']:.1f} min")
    for name, s in scores.items():
        print(f"  {name:15s} " + "  ".join(f"{k} {v:.4f}" for k, v in s.items() if v is not None))
    print("  clean-estimate RMSE by timestep: " + ", ".join(f"t={t} {e:.3f}" for t, e in errors.items()))
    for name, c in checks.items():
        print(f"  {name}: {c['text']}: {'met' if c['met'] else 'NOT met'}")
    print(f"  strip: {strip}")
    return 0 if result["bar_met"] else 1


def compare(model: dict[str, float | None], copy: dict[str, float | None]) -> dict[str, dict]:
    """The three comparisons with reference-copy: person-region L1 at least `BAR` below it, and whole-frame L1
    and SSIM no worse (clean frames: residual sampling noise loses both). A metric the shards cannot give
    (no person masks: no `l1_fg`) fails its check, naming why."""
    out = {}
    if model["l1_fg"] is None or copy["l1_fg"] is None:
        out["l1_fg"] = {"met": False, "text": "l1_fg missing: the shards have no person masks"}
    else:
        cut = 1 - model["l1_fg"] / copy["l1_fg"]
        out["l1_fg"] = {"met": cut >= BAR, "reduction": cut,
                        "text": f"l1_fg {model['l1_fg']:.4f} vs {copy['l1_fg']:.4f}: {100 * cut:.1f}% lower "
                                f"(bar {100 * BAR:.0f}%)"}
    out["l1"] = {"met": model["l1"] <= copy["l1"],
                 "text": f"whole-frame L1 {model['l1']:.4f} vs {copy['l1']:.4f} (bar: no worse)"}
    out["ssim"] = {"met": model["ssim"] >= copy["ssim"],
                   "text": f"whole-frame SSIM {model['ssim']:.3f} vs {copy['ssim']:.3f} (bar: no worse)"}
    return out


def write_strip(shards: Path, video: str, name: str, method, path: Path, rows: int = 4, height: int = 168) -> Path:
    """A still of the regenerated video: reference | driving pose (DensePose for magicanimate) | ground truth |
    the model, `rows` evenly
    spaced frames, tiles scaled to `height` pixels (nearest neighbour, so per-pixel noise stays visible)."""
    import cv2
    import numpy as np

    from toolkit.harness.scoring import conditions_for
    from toolkit.report.strips import contact_sheet
    from toolkit.shards.reader import Shards
    from toolkit.video import encode_image

    gt, cond = conditions_for(Shards(shards), video, None, True)
    generated = np.asarray(method.generate(cond))
    driving = (("driving DensePose", cond.densepose_renders()) if name == "magicanimate"
               else ("driving pose", cond.pose_renders(cond.height, cond.width, **getattr(method, "pose_style", {}))))
    columns = [("reference", np.repeat(cond.reference[None], len(gt), axis=0)), driving, ("ground truth", gt),
               (name, generated)]
    width = round(cond.width * height / cond.height)
    big = [(label, np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_NEAREST) for f in frames]))
           for label, frames in columns]
    path.write_bytes(encode_image(contact_sheet(big, rows)))
    return path


if __name__ == "__main__":
    raise SystemExit(main())
