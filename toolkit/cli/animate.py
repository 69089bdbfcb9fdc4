"""`toolkit animate`: a reference image and a driving pose sequence -> a video, with any registered method."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from toolkit.cli.flags import add_method_option, add_shards, deprecated_alias

EPILOG = """\
examples:
  toolkit animate --method unianimate --checkpoint runs/ua-tiny --shards data/shards/synthetic \\
      --reference synth_030 --pose synth_031 --out out.mp4
  toolkit animate --method unianimate --checkpoint runs/ua-tiny --reference me.png --pose-backend mediapipe \\
      --pose dance.mp4 --out me_dancing.mp4 --method-option long=chain
  toolkit animate --method unianimate --checkpoint runs/ua-tiny --shards data/shards/synthetic \\
      --reference synth_030 --pose synth_031 --out out.mp4 --method-option steps=10 --method-option seed=3
  toolkit animate --method pose-warp --reference me.png --pose dance_keypoints.npy --no-align --out out.mp4
  toolkit animate --method unianimate --checkpoint runs/ua-tiny --shards data/shards/synthetic \\
      --reference synth_030 --pose synth_031 --out out.mp4 --device cuda --quiet

--reference: an image file, or VIDEO_ID[@FRAME] of the --shards folder (its keypoints come with it).
--pose: a shard video id, a keypoints .npy of shape (T, 133, 3) (in reference pixels when --no-align),
or a driving video annotated on the fly with --pose-backend.
Poses are aligned to the reference person's body (UniAnimate's alignment) unless --no-align.
The video has the reference's size; an odd height or width loses its last row or column (H.264 needs even sizes).
--method-option sets what the method declares (e.g. unianimate: steps, guidance, seed, long, window,
overlap); a wrong key lists them.
Progress bars show the frames made and, for diffusion methods, the model evaluations (windows x
sampling steps); --quiet hides them.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("animate", help="animate a reference image with a driving pose sequence",
                       description="Generate a video of the reference person performing the driving poses, with "
                       "any registered method (the same inputs the harness gives it).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, help="method name, or package.module:Class")
    p.add_argument("--checkpoint", type=Path, help="trained model folder (for methods that need one)")
    p.add_argument("--reference", required=True, help="image file, or VIDEO_ID[@FRAME] of --shards")
    p.add_argument("--pose", required=True, help="shard video id, keypoints .npy, or driving video")
    p.add_argument("--out", required=True, type=Path, help="output video (.mp4)")
    add_shards(p, "shard folder that --reference / --pose ids refer to", required=False)
    p.add_argument("--pose-backend", help="annotate a driving video / reference image with this backend "
                   "(mediapipe, dwpose, ...)")
    p.add_argument("--frames", type=int, help="animate only the first N driving frames")
    add_method_option(p, "KEY=VALUE, or METHOD:KEY=VALUE naming --method")
    p.add_argument("--no-align", action="store_true", help="use the driving poses as they are")
    p.add_argument("--fps", type=float, help="output frame rate (default: the driving sequence's)")
    p.add_argument("--device", help="torch device the method runs on: cpu (the default), cuda, cuda:1, mps "
                   "(methods with a model)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    for old in ("long", "steps", "seed"):
        deprecated_alias(p, f"--{old}", "--method-option", template=f"{old}={{}}")
    p.set_defaults(func=cmd_animate)


def check_device(device: str) -> None:
    """Fail with a clear message for a device name torch does not know or a device this machine lacks."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"--device {device}: not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    index = torch.device(device).index
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU here (use --device cpu)")
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available here (use --device cpu)")
    if kind not in ("cpu", "cuda", "mps", "xpu"):
        raise ValueError(f"--device {device}: toolkit animate runs on cpu, cuda or mps")


def cmd_animate(args: argparse.Namespace) -> int:
    from toolkit.animate import animate, build_conditions, load_driving, load_reference
    from toolkit.harness.registry import get_method, method_class, method_options
    from toolkit.shards.reader import Shards
    from toolkit.video import write_video

    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    if args.out.suffix.lower() not in (".mp4", ".mkv", ".avi", ".mov"):
        raise ValueError(f"--out {args.out}: give a video file name (.mp4)")
    if args.out.is_dir():
        raise ValueError(f"--out {args.out}: is a folder")
    cls = method_class(args.method)  # an unknown method, or a wrong --method-option, fails before any work
    given = method_options([args.method], args.method_option)[args.method]
    takes_device = "device" in inspect.signature(cls.__init__).parameters
    if args.device is not None:
        check_device(args.device)
        if not takes_device and args.device != "cpu":
            raise ValueError(f"--device {args.device}: method {args.method} runs no model (it runs on the CPU)")
    shards = Shards(args.shards) if args.shards else None
    reference, ref_kp = load_reference(args.reference, shards, args.pose_backend)
    driving = load_driving(args.pose, shards, args.pose_backend, reference.shape[:2])
    cond = build_conditions(reference, ref_kp, driving, args.frames, align=not args.no_align)
    if (cond.height, cond.width) != reference.shape[:2]:
        print(f"note: the reference is {reference.shape[1]}x{reference.shape[0]}; the video is "
              f"{cond.width}x{cond.height} (H.264 needs even sizes: the last row or column is left out)")
    options = {"checkpoint": args.checkpoint, "device": (args.device or "cpu") if takes_device else None}
    options = {k: v for k, v in options.items() if v is not None}
    try:
        method = get_method(args.method, **options, **given)
    except TypeError as exc:
        raise ValueError(f"method {args.method} does not take {', '.join('--' + k for k in options)}: {exc}") from None
    write_video(args.out, animate(method, cond, progress=not args.quiet), fps=args.fps or cond.fps)
    print(f"wrote {args.out} ({cond.n_frames} frames, {cond.width}x{cond.height}, {args.fps or cond.fps:g} fps)")
    return 0
