"""Long video: peak memory of `toolkit animate` (tiny UniAnimate config) at 32 and 256 frames, both modes.

Target: the peak at 256 frames within 1.2x of the peak at 32 frames, for `windows`
and for `chain`, i.e. memory bounded in the video length. Each measurement is a
fresh process running the `toolkit animate` command in-process and reporting its
peak resident set size (ru_maxrss); the model is the tiny config freshly
initialised (memory does not depend on training), sampling 2 steps (memory does
not depend on the step count either). The driving poses are a shard video's
keypoints repeated to the length asked for, the reference is that video's first
frame (512x512 on the default dataset); the output video is streamed to disk.

Run: .venv/bin/python benchmarks/long_video.py [--shards data/shards/synthetic] [--frames 32,256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from results import record

MEASURE = """
import resource, sys
from toolkit.cli import main
code = main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def tiny_checkpoint(folder: Path) -> Path:
    """A `toolkit train`-shaped folder holding a freshly initialised tiny model."""
    import torch

    from baselines.unianimate.model import UniAnimateModel
    from baselines.unianimate.recipe import UniAnimateRecipe

    recipe = UniAnimateRecipe()
    config = recipe.load_config("tiny")
    torch.manual_seed(0)
    model = recipe.build(config).model
    assert isinstance(model, UniAnimateModel)
    model.save_pretrained(folder / "model")
    (folder / "run.json").write_text(json.dumps({"method": "unianimate", "config": config}))
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path, default=Path("data/shards/synthetic"))
    ap.add_argument("--frames", default="32,256")
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    from toolkit.shards.reader import Shards

    shards = Shards(args.shards)
    video = shards.videos.video_id.iloc[0]
    base = shards.keypoints(video)
    lengths = [int(x) for x in args.frames.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = tiny_checkpoint(tmp / "ua-tiny")
        for n in lengths:
            kp = np.concatenate([base] * (n // len(base) + 1))[:n]
            np.save(tmp / f"pose{n}.npy", kp)
            for mode in ("windows", "chain"):
                cmd = [sys.executable, "-c", MEASURE, "animate", "--method", "unianimate", "--checkpoint", str(ckpt),
                       "--shards", str(args.shards), "--reference", video, "--pose", str(tmp / f"pose{n}.npy"),
                       "--no-align", "--method-option", f"long={mode}",
                       "--method-option", f"steps={args.steps}", "--out", str(tmp / f"{mode}{n}.mp4")]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    print(out.stderr, file=sys.stderr)
                    return 1
                kb = int(out.stdout.split("MAXRSS_KB")[-1].split()[0])
                rows.append((mode, n, kb / 1024))
                print(f"{mode:8s} {n:5d} frames: peak RSS {kb / 1024:8.1f} MiB", flush=True)
    print("\nmode      " + "  ".join(f"{n:>7d} fr" for n in lengths) + f"   ratio {lengths[-1]}/{lengths[0]}")
    for mode in ("windows", "chain"):
        peaks = [mb for m, _, mb in rows if m == mode]
        ratio = peaks[-1] / peaks[0]
        record(f"long video: peak RSS of toolkit animate ({mode}, tiny config) at {lengths[-1]} vs {lengths[0]} frames",
               f"{peaks[-1]:.0f} MiB", f"{peaks[0]:.0f} MiB at {lengths[0]} frames", ratio, "ratio <= 1.2")
        print(f"{mode:8s}  " + "  ".join(f"{p:7.0f} MB" for p in peaks) + f"   {ratio:.2f}x "
              f"({'within' if ratio <= 1.2 else 'ABOVE'} the 1.2x target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
