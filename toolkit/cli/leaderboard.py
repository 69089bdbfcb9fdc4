"""`toolkit leaderboard`: render the results store as leaderboard.md and a self-contained leaderboard.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  toolkit leaderboard --out reports/
  toolkit leaderboard --results /tmp/lb_results --dataset data/shards/synthetic --out reports/
  toolkit leaderboard --run --dataset data/shards/synthetic --profile disco,disco-tm,standard --out reports/
  toolkit leaderboard --profile standard --strips 0 --out reports/

--dataset takes dataset names (as stored in the runs) or a shard folder; a shard folder is also where
the qualitative strips are regenerated from (default: the folder named in the runs' provenance).
--run first evaluates every registered method that can run here (a method whose weights or packages are
missing is skipped and named) on that shard folder, under each --profile, into --results.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="render the leaderboard (Markdown + self-contained HTML)",
                       description="Render the newest run of every method in a results store as one table per "
                       "dataset x profile, with figures, qualitative strips and the published numbers of "
                       "eval/paper_results.csv in a separate block.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=None,
                   help="results store folder (default: $TOOLKIT_RESULTS, else ./eval/results)")
    p.add_argument("--dataset", default=None,
                   help="dataset name(s), comma-separated, or a shard folder (default: every dataset stored)")
    p.add_argument("--profile", default=None, help="profile(s), comma-separated (default: every profile stored)")
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
                   help="evaluate every registered method that can run here before rendering (needs a shard "
                   "folder as --dataset)")
    p.add_argument("--device", default="cpu", help="torch device for --run (cpu, cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_leaderboard)


def _is_shard_folder(value: str | None) -> bool:
    return value is not None and "," not in value and (Path(value) / "videos.parquet").is_file()


def run_methods(dataset: Path, profiles: list[str], results: Path, split: str, device: str,
                progress: bool = True) -> list[str]:
    """Evaluate every registered method that can run here; returns one line per method skipped."""
    from toolkit import weights
    from toolkit.harness.method import MethodUnavailable
    from toolkit.harness.registry import get_method, method_names
    from toolkit.harness.runner import evaluate

    skipped = []
    for name in method_names():
        try:
            method = get_method(name)
            for profile in profiles:
                evaluate(dataset, method=method, split=split, profile=profile, results=results, device=device,
                         progress=progress)
            print(f"evaluated {name} ({', '.join(profiles)})")
        except (weights.WeightsMissing, MethodUnavailable, ImportError, NotImplementedError) as exc:
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

    results = args.results or DEFAULT_RESULTS
    shards = Path(args.dataset) if _is_shard_folder(args.dataset) else None
    if args.dataset and shards is None and ("/" in args.dataset or Path(args.dataset).exists()):
        raise FileNotFoundError(f"{args.dataset}: not a shard folder (no videos.parquet); give a dataset name "
                                "or a folder made by `toolkit prepare`")
    if args.run:
        if shards is None:
            raise ValueError("--run needs --dataset to be a shard folder (e.g. data/shards/synthetic)")
        profiles = [p.strip() for p in (args.profile or ",".join(available_protocols())).split(",") if p.strip()]
        for line in run_methods(shards, profiles, results, args.split, args.device, progress=not args.quiet):
            print(line, file=sys.stderr)
    board = write_leaderboard(results, args.out, datasets=None if shards else args.dataset, profiles=args.profile,
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
