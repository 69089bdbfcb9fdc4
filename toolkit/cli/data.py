"""`toolkit prepare`, `toolkit verify`, `toolkit info`: datasets into shards, and checks on them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolkit.cli.flags import add_list, add_shards
from toolkit.cli.table import format_table

PREPARE_EPILOG = """\
examples:
  toolkit prepare --dataset synthetic --source data/raw/synthetic --out data/shards/synthetic
  toolkit prepare --dataset tiktok --source /data/TikTok_dataset --out data/shards/tiktok --pose mediapipe
  toolkit prepare --dataset fashion --source /data/ubc_fashion --out data/shards/fashion --split test --size 512
  toolkit prepare --dataset folder --source ~/my_videos --out data/shards/mine --pose dwpose --mask mediapipe
  toolkit prepare --dataset folder --source ~/my_videos --out data/shards/mine --fps 15 --workers 2
  toolkit prepare --dataset folder --source ~/my_videos --out data/shards/mine --fps 15 --prune   # sources deleted
  toolkit prepare --dataset synthetic --source data/raw/synthetic --out data/shards/synthetic --executor ray
  toolkit prepare --dataset tiktok --source /shared/TikTok_dataset --out /shared/shards/tiktok --pose mediapipe \\
      --executor ray --ray-address auto     # a cluster made by `ray start`; paths shared by every node

Rerunning the same command resumes: finished videos are skipped, failed ones retried, and a
video whose source file changed is redone. A video whose source is gone is reported and kept;
--prune takes it out of the shards.
The exit status is 1 when any video failed (each is named, with its reason, in the summary).
"""


def register(sub: argparse._SubParsersAction) -> None:
    from toolkit.sources.card import available_cards

    datasets = ", ".join(available_cards())
    p = sub.add_parser("prepare", help="turn a dataset on disk into Parquet shards",
                       description="Read a dataset (its card: datasets/NAME.toml), annotate it and write "
                       "Parquet shards: one frames file per video, a videos table and a manifest.",
                       epilog=PREPARE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True,
                   help=f"the dataset: its card's name ({datasets}) or the path of a card .toml")
    p.add_argument("--source", required=True, type=Path,
                   help="folder holding the dataset as released (generated here for `synthetic`)")
    p.add_argument("--out", required=True, type=Path, help="shard folder to write (resumable)")
    add_list(p, "--split", dest="splits", metavar="SPLIT", help="only these splits (default: all)")
    p.add_argument("--size", type=int, default=512,
                   help="shorter side of stored frames in pixels, aspect kept (0: source size; default 512)")
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: source rate)")
    p.add_argument("--image-format", default="auto", choices=("auto", "png", "jpeg", "webp"),
                   help="frame encoding; auto = lossless PNG for evaluation splits, JPEG q95 for training splits")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--pose", default=None, choices=("mediapipe", "dwpose", "mmpose", "synthetic", "source", "none"),
                   help="keypoint backend: synthetic/source = ground truth shipped by the source, mediapipe "
                   "(offline default for real video), dwpose (ONNX, needs weights), mmpose (optional), none "
                   "(default: the dataset card's); `toolkit weights status` says which run here")
    p.add_argument("--densepose", default=None, choices=("densepose", "detectron2", "synthetic", "source", "none"),
                   help="DensePose backend: synthetic/source = IUV shipped by the source (the synthetic data, the "
                   "TikTok release's densepose/), densepose (detectron2, optional), none (default: the dataset card's)")
    p.add_argument("--mask", default=None, choices=("mediapipe", "source", "none"),
                   help="person masks (the harness's _fg/_bg metrics): source = the masks a video ships (TikTok's "
                   "masks/), mediapipe = MediaPipe Holistic's segmentation for every video that ships none (a "
                   "video's shipped masks are never replaced), none = no masks (default: the dataset card's, else "
                   "mediapipe when --pose is mediapipe, from the same pass, else source)")
    p.add_argument("--workers", type=int, default=None,
                   help="videos processed in parallel: processes here (default 1), or with --executor ray and no "
                   "--ray-address the CPUs of the local Ray cluster (default: all cores)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: a process pool on this machine (default); ray: one Ray task per video, on a "
                   "cluster (needs the ray extra: pip install -e '.[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: the cluster to join (auto = the one `ray start` made on this node, "
                   "or HOST:6379); default: start a local one. Every node must see --source and --out at the same "
                   "paths")
    p.add_argument("--download", action="store_true",
                   help="first fetch the dataset from its official source into --source (needs internet)")
    p.add_argument("--prune", action="store_true",
                   help="remove videos whose source is gone from the shards (default: keep them and say so)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_prepare)

    v = sub.add_parser("verify", help="check shards: schema, counts, checksums",
                       description="Check a shard folder: manifest schema version and per-file sha256, table "
                       "schemas, frame counts and order, the dataset card's expected counts, and failed videos. "
                       "Exit status 1 if anything is wrong.",
                       epilog="examples:\n  toolkit verify data/shards/synthetic\n  toolkit verify --shards "
                       "data/shards/synthetic --deep", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shards(v, positional="SHARDS")
    v.add_argument("--deep", action="store_true", help="also decode every stored image, IUV map and mask")
    v.add_argument("--no-expected", action="store_true", help="skip the dataset card's expected video counts")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="what a shard folder (per split) or a training run folder holds",
                       description="A shard folder: its videos, frames, sizes and annotations per split. A run "
                       "folder of `toolkit train`: its method and config, steps, loss and validations.",
                       epilog="examples:\n  toolkit info data/shards/synthetic\n  toolkit info runs/ua-tiny\n"
                       "  toolkit info runs/ua-tiny --json", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shards(i, "a shard folder or a training run folder", positional="FOLDER")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=cmd_info)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _no_keypoints_note(card_name: str) -> str:
    """What to tell a user whose shards will carry no keypoints: the backends that would add them, and their state."""
    from toolkit.annotate.backends import backend_status

    lines = [f"note: no --pose given and the {card_name} card names no pose backend, so the shards will have "
             "no keypoints (and no pose conditions). To add them, rerun into a new --out with one of:"]
    for row in backend_status():
        if row["kind"] == "pose" and row["name"] != "synthetic":
            state = "runs here" if row["available"] else f"not available here: {row['reason']}"
            lines.append(f"  --pose {row['name']}  ({state})")
    return "\n".join(lines)


def cmd_prepare(args: argparse.Namespace) -> int:
    from toolkit.prepare import PrepareOptions, default_mask, prepare
    from toolkit.sources.card import load_card
    from toolkit.shards.verify import info

    from toolkit.ray_executor import check_executor

    card = load_card(args.dataset)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    check_executor(args.executor, args.ray_address)  # before a download: Ray missing fails now
    if args.download:
        from toolkit.sources.download import download

        download(card, args.source)
    defaults = card.raw.get("annotate", {})
    pose = args.pose or defaults.get("pose", "none")
    options = PrepareOptions(
        size=None if args.size == 0 else args.size, fps=args.fps, image_format=args.image_format,
        jpeg_quality=args.jpeg_quality,
        pose=pose, densepose=args.densepose or defaults.get("densepose", "none"),
        mask=args.mask or defaults.get("mask") or default_mask(pose),
        splits=tuple(args.splits) if args.splits else None,
    )
    if args.pose is None and options.pose == "none":
        print(_no_keypoints_note(card.name), file=sys.stderr)
    report = prepare(card, args.source, args.out, options, workers=args.workers, progress=not args.quiet,
                     prune=args.prune, executor=args.executor, ray_address=args.ray_address)
    summary = info(args.out)
    rows = [["split", "videos", "failed", "frames", "bytes", "size", "format", "annotations"]]
    for split, s in summary["splits"].items():
        rows.append([split, str(s["videos"]), str(s["failed"]), str(s["frames"]), _fmt_bytes(s["bytes"]),
                     ",".join(s["sizes"]) or "-", ",".join(s["image_formats"]) or "-",
                     ",".join(s["annotations"]) or "-"])
    print(f"\n{card.name}: {args.out}  ({report.skipped} already done, {len(report.records)} processed, "
          f"{report.seconds:.1f} s)")
    print(format_table(rows[0], rows[1:]))
    if report.gone:
        verb = "removed from the shards (--prune)" if args.prune else "kept in the shards; --prune removes them"
        print(f"\n{len(report.gone)} video(s) prepared earlier have no source any more, {verb}:", file=sys.stderr)
        for video_id in report.gone:
            print(f"  {video_id}", file=sys.stderr)
    if report.failed:
        print(f"\n{len(report.failed)} video(s) failed (recorded in videos.parquet; rerun to retry):", file=sys.stderr)
        for r in report.failed:
            print(f"  {r['source_path']}: {r['failure_reason']}", file=sys.stderr)
        return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from toolkit.shards.reader import Shards
    from toolkit.shards.verify import verify
    from toolkit.sources.card import load_card

    expected = None
    if not args.no_expected:
        try:
            dataset = Shards(args.shards).manifest.get("dataset")
            expected = load_card(dataset).expected if dataset else None
        except FileNotFoundError:
            expected = None
    problems = verify(args.shards, deep=args.deep, expected=expected, progress=not args.quiet)
    if problems:
        print(f"{args.shards}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"{args.shards}: ok")
    return 0


def _print_run(summary: dict) -> None:
    """A run folder as text: one line of what it is, its init, its loss, where its tracker's events and validation
    samples are, and a table of its validations."""
    planned = f" of {summary['steps']}" if summary["steps"] else ""
    trained = f", {summary['seconds']:.0f} s trained" if summary["seconds"] is not None else ""
    print(f"{summary['run']}  method={summary['method']}  config={summary['config_name']} "
          f"(sha {summary['config_sha']})  step {summary['step']}{planned} "
          f"{'saved' if not summary['checkpoint_problems'] else 'in a DAMAGED checkpoint'}{trained}, "
          f"{summary['num_processes']} process(es)")
    if summary["init"]:
        print(f"init: {summary['init']} ({summary['init_sha256']})")
    loss = summary["loss"]
    if loss and loss["mean_recent"] is not None:
        print(f"loss: last {loss['last']:.4g} (step {loss['last_step']}), mean of the last {loss['recent_steps']} "
              f"logged {loss['mean_recent']:.4g}, min {loss['min']:.4g} (step {loss['min_step']})")
    if summary["events"]:
        shown = f"tensorboard --logdir {summary['events']}" if summary["report_to"] == "tensorboard" else ""
        print(f"events: {summary['events']}/ ({summary['report_to']}{': ' + shown if shown else ''})")
    rows = summary["validation"]
    if not rows:
        print("validation: none (train with --validate-every STEPS)")
        return
    if summary["samples"]:
        print(f"samples: {summary['samples']}/step-N/ (per video: the generated .mp4 and a .png of ground-truth "
              "frames above generated ones)")
    print(f"validation on {len(rows[-1]['videos'])} {rows[-1]['split']} video(s) ({', '.join(rows[-1]['videos'])}):")
    metrics = [m for m in ("l1_fg", "psnr_fg", "ssim_fg", "l1", "psnr", "ssim") if m in rows[-1]]
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    print(format_table(["step", *metrics], [[str(r["step"]), *(fmt(r.get(m)) for m in metrics)] for r in rows]))


def cmd_info(args: argparse.Namespace) -> int:
    from toolkit.shards.verify import info
    from toolkit.train.summary import is_run, run_summary

    if is_run(args.shards):
        summary = run_summary(args.shards)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            _print_run(summary)
        for problem in summary["checkpoint_problems"]:
            print(f"checkpoint damaged: {problem}", file=sys.stderr)
        return 1 if summary["checkpoint_problems"] else 0
    summary = info(args.shards)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['root']}  dataset={summary['dataset']}")
    print("backends: " + ", ".join(f"{k}={v}" for k, v in summary["backends"].items()))
    print("options:  " + ", ".join(f"{k}={v}" for k, v in summary["options"].items()))
    rows = [["split", "videos", "failed", "frames", "bytes", "size", "fps", "format", "annotations"]]
    for split, s in summary["splits"].items():
        rows.append([split, str(s["videos"]), str(s["failed"]), str(s["frames"]), _fmt_bytes(s["bytes"]),
                     ",".join(s["sizes"]) or "-", ",".join(f"{f:g}" for f in s["fps"]) or "-",
                     ",".join(s["image_formats"]) or "-", ",".join(s["annotations"]) or "-"])
    print(format_table(rows[0], rows[1:]))
    return 0
