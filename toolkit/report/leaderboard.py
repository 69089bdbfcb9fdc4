"""`toolkit leaderboard`: turn a results store into `leaderboard.md` and a self-contained `leaderboard.html`.

Steps: build the tables from the newest run of each method (tables.py), draw the
figures of each table (figures.py), make qualitative strips and the HTML report's
players for a few test videos from each run's stored predictions (strips.py),
load the published numbers (paper.py), then render both documents (markdown.py,
html.py) from the :class:`~toolkit.report.board.Leaderboard` built (board.py). Everything is
written under ``out``; the HTML embeds its figures so it opens from disk with no network.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable

from toolkit.harness.registry import method_class, method_names
from toolkit.harness.saved_predictions import stored_videos
from toolkit.io import atomic_write_text
from toolkit.paths import safe_filename
from toolkit.report import figures as figs
from toolkit.report.board import Leaderboard, TableReport
from toolkit.report.html import render_html
from toolkit.report.markdown import render_markdown
from toolkit.report.paper import DEFAULT_PAPER_RESULTS, load_paper_results, paper_rows
from toolkit.report.strips import TILE_HEIGHT, make_strips
from toolkit.report.tables import LeaderboardTable, build_tables, load_run_rows


def _table_figures(report: TableReport, results: Path, out: Path, colours: dict[str, str]) -> None:
    t = report.table
    runs = [t.run_ids[m] for m in t.methods if m not in t.sanity]
    video_rows = load_run_rows(results, runs, "video")
    frame_rows = load_run_rows(results, runs, "frame")
    folder = out / "figures"
    made = {
        "bars": figs.bar_chart(t, video_rows, folder / f"{t.slug}-bars.png", colours),
        "curves": figs.frame_curves(t, frame_rows, folder / f"{t.slug}-frames.png", colours),
        "radar": figs.radar(t, folder / f"{t.slug}-radar.png", colours),
    }
    why = {"bars": "no competing method has a value for any metric",
           "curves": "no per-frame values stored for the competing methods",
           "radar": f"needs at least {figs.RADAR_MIN_METHODS} competing methods and 3 metrics with a value for "
                    "every one of them"}
    for kind, fig in made.items():
        if fig is None:
            report.notes.append(f"{kind} figure not drawn: {why[kind]}")
        else:
            report.figures.append(fig)


def _registered_name(class_spec: str | None) -> str | None:
    """The registered name of a method class given as ``module:Class`` (from a run's provenance), if any."""
    for name in method_names() if class_spec else ():
        try:
            cls = method_class(name)
        except Exception:  # a plug-in that does not import here is not the one
            continue
        if f"{cls.__module__}:{cls.__qualname__}" == class_spec:
            return name
    return None


def _rerun_hint(method: str, prov: dict, shards: Path | None) -> str:
    """How to get a run's predictions stored: the eval command that makes the run again."""
    spec = method if method in method_names() else (_registered_name(prov.get("method_class"))
                                                     or prov.get("method_class") or method)
    options = prov.get("method_options") or {}
    parts = [f"toolkit eval --method {spec}"]
    if prov.get("checkpoint_sha256"):
        parts.append(f"--checkpoint {options.get('checkpoint') or 'CHECKPOINT'}")
    parts += [f"--method-option {k}={v}" for k, v in options.items() if k not in ("checkpoint", "device")]
    parts.append(f"--shards {shards or prov.get('shards') or 'SHARD_FOLDER'}")
    if spec != method:
        parts.append(f"--name {method}")
    return f"rerun `{' '.join(parts)}` (predictions are saved by default)"


def _strip_sources(tables: list[LeaderboardTable], shards: Path | None,
                   results: Path | None = None) -> dict[tuple[str, str], dict]:
    """Per (dataset, split): the shard folder, the competing methods, the folders their frames are read from
    (stored predictions, or a predictions run's folder), and why a method without one cannot be regenerated."""
    registered = set(method_names())
    out: dict[tuple[str, str], dict] = {}
    for t in tables:
        entry = out.setdefault((t.dataset, t.split),
                               {"shards": None, "methods": [], "predictions": {}, "missing": {}})
        for m in t.methods:
            if m in t.sanity:
                continue
            prov = t.provenance.get(m, {})
            if m not in entry["methods"]:
                entry["methods"].append(m)
            stored, why = stored_videos(results, prov) if results is not None else (None, "")
            if m in entry["predictions"]:
                pass   # the first table's run of this method is shown
            elif stored is not None:
                entry["predictions"][m] = str(stored)
            elif prov.get("predictions"):
                entry["predictions"][m] = prov["predictions"]
            elif m not in registered or prov.get("checkpoint_sha256"):
                entry["missing"][m] = f"no stored predictions: {why}; {_rerun_hint(m, prov, shards)}"
            if entry["shards"] is None and prov.get("shards") and Path(prov["shards"]).is_dir():
                entry["shards"] = Path(prov["shards"])
        if shards is not None:
            entry["shards"] = shards
    return out


def build_leaderboard(results: str | Path, out: str | Path, datasets: str | Iterable[str] | None = None,
                      profiles: str | Iterable[str] | None = None, split: str | None = "test",
                      paper: str | Path | None = DEFAULT_PAPER_RESULTS, strips: int = 3, strip_frames: int = 48,
                      tile_height: int = TILE_HEIGHT, shards: str | Path | None = None,
                      draw_figures: bool = True, progress: bool = False) -> Leaderboard:
    """Compute everything the report shows and write figures and strips under `out` (not the documents).

    `progress` shows one bar on stderr over the slow steps: each table's figures, then each strip (whose
    methods are run again)."""
    from tqdm.auto import tqdm

    results, out = Path(results), Path(out)
    shards_path = Path(shards) if shards is not None else None
    if shards_path is not None and datasets is None:
        from toolkit.shards.reader import Shards

        datasets = [Shards(shards_path).manifest.get("dataset", shards_path.name)]
    tables = build_tables(results, datasets=datasets, profiles=profiles, split=split)
    colours = figs.method_colours([m for t in tables for m in t.methods])
    reports = [TableReport(t) for t in tables]
    sources = _strip_sources(tables, shards_path, results) if strips > 0 else {}
    n_strips = sum(_n_strips(src["shards"], sp, strips) for (_, sp), src in sources.items())
    bar = tqdm(total=(len(reports) if draw_figures else 0) + n_strips, desc="leaderboard", unit="step",
               disable=not progress)
    if draw_figures:
        for r in reports:
            bar.set_postfix_str(f"figures {r.table.slug}", refresh=False)
            _table_figures(r, results, out, colours)
            bar.update()
    board = Leaderboard(out=out, results=results, tables=reports, paper=[], paper_source=None,
                        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if paper is not None:
        board.paper_source = Path(paper)
        board.paper = paper_rows(load_paper_results(paper))
    if strips > 0:
        for (dataset, sp), src in sources.items():
            if src["shards"] is None:
                board.strip_notes.append(f"{dataset}/{sp}: no strips, the shard folder named in the runs' provenance "
                                         "is not on this machine (pass --shards SHARD_FOLDER)")
                continue
            bar.set_postfix_str(f"strips {dataset}/{sp}", refresh=False)
            folder = out / "strips" / safe_filename(f"{dataset}-{sp}")
            made = make_strips(src["shards"], src["methods"], folder, n_videos=strips,
                               split=sp, max_frames=strip_frames, tile_height=tile_height,
                               predictions=src["predictions"], missing=src["missing"],
                               on_strip=lambda _: bar.update())
            board.strips += made
        if board.strips:
            board.strip_notes.append("driving pose column: the pose renders the methods are given "
                                     "(toolkit.conditions), drawn at tile size")
    bar.close()
    return board


def _n_strips(shards: Path | None, split: str, n: int) -> int:
    if shards is None:
        return 0
    from toolkit.shards.reader import Shards

    try:
        return min(n, len(Shards(shards).video_ids(split)))
    except (FileNotFoundError, OSError, ValueError):
        return 0


def write_leaderboard(results: str | Path, out: str | Path, **options) -> Leaderboard:
    """Build the leaderboard (see build_leaderboard for options) and write leaderboard.md and leaderboard.html."""
    board = build_leaderboard(results, out, **options)
    atomic_write_text(board.markdown_path, render_markdown(board))
    atomic_write_text(board.html_path, render_html(board))
    return board
