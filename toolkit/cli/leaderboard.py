"""`toolkit leaderboard`: render the results store as leaderboard.md and a self-contained leaderboard.html."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from toolkit.cli.flags import add_list, add_method_option, add_shards, warn_deprecated

EPILOG = """\
examples:
  toolkit leaderboard --out reports/
  toolkit leaderboard --results /tmp/lb_results --shards data/shards/synthetic --out reports/
  toolkit leaderboard --dataset synthetic --dataset tiktok --profile standard --strips 0 --out reports/
  toolkit leaderboard --run --shards data/shards/synthetic --profile disco,disco-tm,standard --out reports/
  toolkit leaderboard --run --shards data/shards/synthetic --checkpoint unianimate=runs/ua-tiny \\
      --method-option unianimate:steps=5 --out reports/

--dataset picks datasets by the name stored in the runs; --shards picks the dataset of a shard folder, which
is also where the qualitative strips are read from (default: the folder named in the runs' provenance).
--run first evaluates every registered method that can run here on that shard folder, under each --profile,
into --results: a method whose weights or packages are missing, or that needs a trained model not given with
--checkpoint METHOD=RUN, is skipped and named.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render the leaderboard (Markdown + self-contained HTML)",
                       description="Render the newest run of every method in a results store as one table per "
                       "dataset x profile, with figures, qualitative strips and the published numbers of "
                       "eval/paper_results.csv in a separate block.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=None,
                   help="results store folder (default: $TOOLKIT_RESULTS, else ./eval/results)")
    add_list(p, "--dataset", dest="datasets", metavar="NAME",
             help="dataset name(s) as stored in the runs (default: every dataset stored)")
    add_shards(p, "shard folder: its dataset only, and the strips read from it", required=False)
    add_list(p, "--profile", dest="profiles", metavar="PROFILE",
             help="profile(s) (default: every profile stored; with --run: every profile there is)")
    p.add_argument("--split", default="test", help="split to report (default test)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    p.add_argument("--paper", type=Path, default=None,
                   help="published numbers CSV (default eval/paper_results.csv)")
    p.add_argument("--no-paper", action="store_true", help="leave the published numbers out")
    p.add_argument("--strips", type=int, default=3, help="test videos shown as qualitative strips (0: none)")
    p.add_argument("--strip-frames", type=int, default=48, help="frames per strip (default 48)")
    p.add_argument("--tile-height", type=int, default=384,
                   help="height of one strip tile in pixels (default 384, at most the frame height)")
    p.add_argument("--run", action="store_true",
                   help="evaluate every registered method that can run here before rendering (needs --shards)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="METHOD=RUN",
                   help="with --run: the trained model of a method that needs one (a `toolkit train` run folder, "
                   "or published), e.g. unianimate=runs/ua-tiny (repeatable)")
    add_method_option(p, "with --run; KEY=VALUE reaches every method that declares KEY, METHOD:KEY=VALUE that "
                      "method only")
    p.add_argument("--device", default="cpu", help="torch device for --run (cpu, cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_leaderboard)


def _is_shard_folder(value: str | Path | None) -> bool:
    return value is not None and (Path(value) / "videos.parquet").is_file()


def checkpoints(given: list[str], names: list[str]) -> dict[str, str]:
    """``--checkpoint METHOD=RUN`` values -> {method: run folder (or published)}, each method a registered one."""
    out: dict[str, str] = {}
    for item in given:
        method, sep, run = item.partition("=")
        if not sep or not method or not run:
            raise ValueError(f"--checkpoint {item}: give METHOD=RUN, e.g. unianimate=runs/ua-tiny")
        if method not in names:
            raise ValueError(f"--checkpoint {item}: {method} is not a registered method ({', '.join(names)})")
        out[method] = run
    return out


def run_methods(dataset: Path, profiles: list[str], results: Path, split: str, device: str,
                progress: bool = True, options: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Evaluate every registered method that can run here, each with its `options` (checkpoint, --method-option
    values; device is added for a method given a checkpoint); returns one line per method skipped."""
    from toolkit import weights
    from toolkit.harness.method import MethodUnavailable
    from toolkit.harness.registry import method_class, method_names
    from toolkit.harness.runner import evaluate

    skipped = []
    for name in method_names():
        given = dict((options or {}).get(name, {}))
        if "checkpoint" in given:
            given["device"] = device
        try:
            for profile in profiles:
                evaluate(dataset, method=name, split=split, profile=profile, results=results, device=device,
                         progress=progress, method_options=given)
            print(f"evaluated {name} ({', '.join(profiles)})")
        except MethodUnavailable as exc:
            takes = "checkpoint" in inspect.signature(method_class(name).__init__).parameters
            why = (f"needs a trained model: add --checkpoint {name}=RUN (a `toolkit train` run folder, or "
                   "published)") if takes and "checkpoint" not in given else str(exc)
            skipped.append(f"{name}: skipped ({why})")
        except (weights.WeightsMissing, ImportError, NotImplementedError) as exc:
            skipped.append(f"{name}: skipped ({type(exc).__name__}: {exc})")
    return skipped


def cmd_leaderboard(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("toolkit leaderboard draws its figures with matplotlib, which is not installed: "
                           "pip install 'animation-toolkit[report]'") from exc
    from toolkit.harness.protocols import available_protocols
    from toolkit.harness.runner import DEFAULT_RESULTS
    from toolkit.report.leaderboard import write_leaderboard
    from toolkit.report.paper import DEFAULT_PAPER_RESULTS

    from toolkit.harness.registry import method_names, method_options

    results = args.results or DEFAULT_RESULTS
    datasets, shards = args.datasets, args.shards
    if shards is None and datasets and len(datasets) == 1 and _is_shard_folder(datasets[0]):
        warn_deprecated("--dataset SHARD_FOLDER", "--shards SHARD_FOLDER")  # the old spelling of --shards
        datasets, shards = None, Path(datasets[0])
    for value in datasets or []:
        if "/" in value or Path(value).exists():
            raise FileNotFoundError(f"--dataset {value}: takes dataset names; give a shard folder as --shards")
    if shards is not None and not _is_shard_folder(shards):
        raise FileNotFoundError(f"--shards {shards}: not a shard folder (no videos.parquet); give a folder made "
                                "by `toolkit prepare`")
    if not args.run and (args.checkpoint or args.method_option):
        raise ValueError("--checkpoint and --method-option set the methods that --run evaluates: add --run")
    if args.run:
        if shards is None:
            raise ValueError("--run needs --shards (a shard folder, e.g. data/shards/synthetic)")
        names = method_names()
        options = method_options(names, args.method_option)
        for method, run in checkpoints(args.checkpoint, names).items():
            options[method]["checkpoint"] = run
        profiles = args.profiles or available_protocols()
        for line in run_methods(shards, profiles, results, args.split, args.device, progress=not args.quiet,
                                options=options):
            print(line, file=sys.stderr)
    board = write_leaderboard(results, args.out, datasets=None if shards else datasets, profiles=args.profiles,
                              split=args.split, paper=None if args.no_paper else (args.paper or DEFAULT_PAPER_RESULTS),
                              strips=args.strips, strip_frames=args.strip_frames, tile_height=args.tile_height,
                              shards=shards, progress=not args.quiet)
    print(f"{len(board.tables)} table(s), {sum(len(t.figures) for t in board.tables)} figure(s), "
          f"{len(board.strips)} strip(s), {len(board.paper)} published row(s)")
    for note in board.strip_notes:
        print(f"  {note}")
    from toolkit.report.paper import reproduction_gaps

    for g in reproduction_gaps([r.table for r in board.tables], board.paper):
        gap = "not measured" if g.gap is None else f"{g.gap:+.4g}"
        print(f"  {g.run} vs {g.row.method} ({g.row.paper}, {g.row.table}) {g.metric}: measured "
              f"{'-' if g.measured is None else f'{g.measured:.4g}'}, published {g.row.values[g.metric].text}, gap {gap}")
    print(f"wrote {board.markdown_path}")
    print(f"wrote {board.html_path}")
    return 0
