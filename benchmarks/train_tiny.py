"""The tiny UniAnimate config on the default dataset: training steps/s, and generation frames/s.

Training: `toolkit train`'s loop (baselines/unianimate, config tiny: 64x64 clips of 8 frames, batch 2) for
--steps steps from scratch; steps/s is measured between the first and the last logged step, so model
building and the first batch are left out. Generation: `toolkit animate` with the trained folder, one test
video's poses for --frames frames, --sample-steps DDIM steps with guidance, timed end to end (model load
included) and as frames/s. No published figure exists to compare with: the reference column says so.

Run: python benchmarks/train_tiny.py [--shards data/shards/synthetic] [--steps 8] [--frames 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import record  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=Path, default=ROOT / "data" / "shards" / "synthetic")
    p.add_argument("--steps", type=int, default=8, help="training steps (at least 3)")
    p.add_argument("--frames", type=int, default=16, help="frames generated")
    p.add_argument("--sample-steps", type=int, default=25, help="sampling steps (the tiny config's default: 25)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = p.parse_args()
    if args.steps < 3:
        raise SystemExit("--steps must be at least 3")
    import torch

    from baselines.unianimate.recipe import UniAnimateRecipe
    from toolkit.cli import main as cli
    from toolkit.train.loop import train

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="train_bench_") as tmp:
        run = Path(tmp) / "ua-tiny"
        train(UniAnimateRecipe(), "tiny", args.shards, run, max_steps=args.steps, progress=False,
              train_overrides={"num_workers": args.workers, "checkpoint_every": 10**6})
        log = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
        steps_per_s = (log[-1]["step"] - log[0]["step"]) / (log[-1]["seconds"] - log[0]["seconds"])
        batch = json.loads((run / "run.json").read_text())["config"]["train"]["batch_size"]
        print(f"training, tiny config: {steps_per_s:.2f} steps/s (batch {batch}, {threads} threads, "
              f"{args.workers} loader workers)")
        record(f"train: tiny UniAnimate config, default dataset, batch {batch}, {threads} torch threads",
               f"{steps_per_s:.2f} steps/s", "- (no published figure)", None)

        t0 = time.perf_counter()
        code = cli(["animate", "--method", "unianimate", "--checkpoint", str(run), "--shards", str(args.shards),
                    "--reference", "synth_030", "--pose", "synth_031", "--frames", str(args.frames),
                    "--method-option", f"steps={args.sample_steps}", "--out", os.path.join(tmp, "out.mp4")])
        seconds = time.perf_counter() - t0
        if code:
            return code
        print(f"generation, tiny config: {args.frames} frames in {seconds:.1f} s = {args.frames / seconds:.2f} "
              f"frames/s ({args.sample_steps} sampling steps, model load included)")
        record(f"generate: tiny UniAnimate config, {args.frames} frames (64x64 model, written at the reference's "
               f"size), {args.sample_steps} sampling steps, "
               f"{threads} torch threads (model load included)", f"{args.frames / seconds:.2f} frames/s",
               "- (no published figure)", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
