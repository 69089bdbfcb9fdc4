"""`toolkit eval`: benchmark methods (or another system's predictions) under named protocols."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from toolkit.cli.flags import add_list, add_method_option, add_shards, deprecated_alias
from toolkit.cli.table import format_table

EPILOG = """\
examples:
  toolkit eval --method pose-warp --shards data/shards/synthetic
  toolkit eval --method reference-copy,gt-oracle,pose-warp --profile disco,disco-tm,standard --shards data/shards/synthetic
  toolkit eval --predictions runs/mine --shards data/shards/tiktok --profile disco
  toolkit eval --predictions runs/mine --shards data/shards/tiktok --allow-partial
  toolkit eval --method unianimate --checkpoint runs/ua-tiny --shards data/shards/synthetic --name ua-tiny-20min --tag cpu
  toolkit eval --method unianimate --checkpoint runs/ua-tiny --shards data/shards/synthetic \\
      --method-option steps=5 --method-option seed=3 --name ua-tiny-5steps   # sampling settings (in provenance)
  toolkit eval --method mypkg.mymodule:MyMethod --shards data/shards/synthetic    # your own Method subclass
  toolkit eval --method pose-warp --shards data/shards/synthetic --executor ray --workers 2
  toolkit eval --method pose-warp --shards /shared/shards/tiktok --executor ray --ray-address auto --device cuda
  toolkit eval --method pose-warp --shards data/shards/synthetic --save-frames     # PNG frames beside the videos
  toolkit eval --predictions eval/results/predictions/RUN_ID/videos --shards data/shards/synthetic  # re-score a run

Predictions are DIR/<video_id>/<frame>.png (frames in natural order) or DIR/<video_id>.mp4, one per
test video, with every frame of the ground truth. Everything is validated before any metric runs.
What a method generates is kept (default; --no-save-predictions turns it off): every frame of each test video
as lossless H.264 RGB in RESULTS/predictions/<run_id>/videos/<video_id>.mp4 (with --save-frames also
RESULTS/predictions/<run_id>/frames/<video_id>/000000.png ...), each file's sha256 in the run's provenance;
either folder re-scores to the run's numbers with --predictions, and the leaderboard's players show them.
Profiles: disco (DisCo's computation as its gen_eval.sh runs it: FID-VID and FVD on stride-1 16-frame windows),
disco-tm (the same as its gen_eval_tm.sh runs it: FID-VID and FVD one sample per video), both for published
tables, and standard (recommended); see eval/protocols/.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from toolkit.harness.protocols import available_protocols
    from toolkit.harness.registry import method_names

    p = sub.add_parser("eval", help="benchmark a method or a predictions folder",
                       description="Run methods on a test split (the harness supplies reference frame, driving "
                       "conditions and frame count) or score a predictions folder, under one or more protocols; "
                       "results are appended to the results store.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    add_list(src, "--method", dest="methods", metavar="METHOD",
             help=f"method name(s): {', '.join(method_names())}; or package.module:Class for a Method subclass of "
             "your own")
    src.add_argument("--predictions", type=Path, help="folder of another system's outputs")
    add_shards(p)
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    add_list(p, "--profile", dest="profiles", metavar="PROFILE",
             help=f"protocol(s): {', '.join(available_protocols())} (default standard)")
    p.add_argument("--results", type=Path, default=None, help="results store folder (default: see README)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="trained model folder for methods that need one (e.g. runs/ua-tiny from `toolkit train`), "
                   "or 'published' for the authors' released weights (magicanimate, unianimate; `make reproduce`)")
    add_method_option(p, "KEY=VALUE reaches every --method that declares KEY, METHOD:KEY=VALUE that method only")
    p.add_argument("--name", default=None, help="label of the run in reports (default: the method's name)")
    add_list(p, "--tag", dest="tags", metavar="TAG", default=[], help="free labels stored with the run")
    p.add_argument("--allow-partial", action="store_true",
                   help="score the predictions that are valid and record the coverage, instead of refusing")
    p.add_argument("--device", default="cpu",
                   help="torch device for the network metrics and for a method run from --checkpoint (cpu, cuda)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: videos one by one in this process (default); ray: one Ray task per video, the "
                   "method and metric networks loaded once per worker (needs the ray extra: pip install -e '.[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: the cluster to join (auto, or HOST:6379); default: start a local one")
    p.add_argument("--workers", type=int, default=None,
                   help="with --executor ray and no --ray-address: CPUs of the local Ray cluster (default: all cores)")
    p.add_argument("--save-predictions", action=argparse.BooleanOptionalAction, default=None,
                   help="keep each generated video (lossless mp4) under RESULTS/predictions/<run_id>/videos/ "
                   "(default: on for methods; a --predictions run has its folder already)")
    p.add_argument("--save-frames", action="store_true",
                   help="also keep PNG frames, RESULTS/predictions/<run_id>/frames/<video_id>/000000.png ...")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    deprecated_alias(p, "--dataset", "--shards")
    p.set_defaults(func=cmd_eval)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "n/a"
    if v != 0 and abs(v) < 1e-2:
        return f"{v:.3e}"
    return f"{v:.4f}"


def print_table(reports: list, file=None) -> None:
    """Whole-frame metrics per (method, profile), then the person/background split, then what was unavailable."""
    from toolkit.harness.protocols import higher_is_better

    file = file or sys.stdout
    def metric_columns(keep) -> list[str]:
        out: list[str] = []
        for r in reports:
            out += [m for m in r.aggregate if keep(m) and m not in out]
        return out

    def rows_for(metrics: list[str], only=lambda r: True) -> list[list[str]]:
        head = ["method", "profile"] + [f"{m} {'↑' if higher_is_better(m) else '↓'}" for m in metrics]
        return [head] + [[r.provenance["method"], r.provenance["profile"]] +
                         [_fmt(r.aggregate[m]) if m in r.aggregate else "-" for m in metrics]
                         for r in reports if only(r)]

    region = lambda m: m.endswith(("_fg", "_bg"))  # noqa: E731
    main = rows_for(metric_columns(lambda m: not region(m)))
    print(format_table(main[0], main[1:], right_from=2), file=file)
    split = metric_columns(region)
    if split:
        print("\nperson region (_fg) and background (_bg), region from the ground truth:", file=file)
        part = rows_for(split, lambda r: any(region(m) for m in r.aggregate))
        print(format_table(part[0], part[1:], right_from=2), file=file)
    notes: dict[tuple[str, str], str] = {}
    for r in reports:
        for m, n in r.notes.items():
            notes[(r.provenance["profile"], m)] = n
    for (profile, m), note in sorted(notes.items()):
        print(f"  [{profile}] {m}: {note}", file=file)


def cmd_eval(args: argparse.Namespace) -> int:
    from toolkit.harness.runner import DEFAULT_RESULTS, evaluate

    from toolkit.harness.protocols import load_protocol
    from toolkit.harness.registry import method_options
    from toolkit.ray_executor import check_executor, connect, require_ray

    results = args.results or DEFAULT_RESULTS
    if Path(results).exists() and not Path(results).is_dir():
        raise ValueError(f"--results {results}: is a file, not a folder")
    profiles = args.profiles or ["standard"]
    for profile in profiles:
        load_protocol(profile)  # an unknown profile fails here, before any scoring
    methods = args.methods or [None]
    if args.predictions is not None and args.method_option:
        raise ValueError("--method-option: a --predictions run runs no method")
    # an unknown or broken method, or a wrong --method-option, fails here, before any scoring
    given = method_options(args.methods, args.method_option) if args.methods else {}
    if args.predictions is not None and (args.save_predictions or args.save_frames):
        raise ValueError("--save-predictions/--save-frames: a --predictions run generates nothing to save")
    if args.save_frames and args.save_predictions is False:
        raise ValueError("--save-frames needs the videos saved too: drop --no-save-predictions")
    if args.name and len(methods) > 1:
        raise ValueError("--name labels one run: give one --method with it")
    # methods run from a checkpoint are networks: they run on --device too
    options = {"checkpoint": args.checkpoint, "device": args.device} if args.checkpoint else {}
    check_executor(args.executor, args.ray_address, args.workers)
    # one cluster for every (method, profile) run
    started = args.executor == "ray" and connect(args.ray_address, args.workers)
    reports = []
    try:
        for method in methods:
            for profile in profiles:
                reports.append(evaluate(args.shards, method=method, predictions=args.predictions,
                                        split=args.split, profile=profile, results=results,
                                        allow_partial=args.allow_partial, device=args.device,
                                        progress=not args.quiet, name=args.name, tags=args.tags,
                                        method_options={**options, **given[method]} if method else None,
                                        executor=args.executor,
                                        save_predictions=args.save_predictions, save_frames=args.save_frames))
    finally:
        if started:
            require_ray().shutdown()
    print()
    print_table(reports)
    cov = [r for r in reports if r.provenance["n_videos"] < r.provenance["n_videos_in_split"]]
    for r in cov:
        print(f"  partial: {r.provenance['n_videos']}/{r.provenance['n_videos_in_split']} videos scored")
    print(f"\nstored in {Path(results) / 'runs'}/ ({len(reports)} run(s))")
    saved = [r.provenance["saved_predictions"]["folder"] for r in reports if r.provenance.get("saved_predictions")]
    if saved:
        print(f"predictions kept in {Path(results) / 'predictions'}/ (one folder per run id; re-score with "
              f"--predictions {Path(results) / saved[-1] / 'videos'})")
    return 0
