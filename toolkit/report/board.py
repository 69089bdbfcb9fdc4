"""What a leaderboard report shows: the data the builder (leaderboard.py) fills and the renderers read.

Kept apart from both so that the renderers (markdown.py, html.py) import this model and never the builder,
and the builder imports the renderers: no import goes back up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from toolkit import __version__
from toolkit.report import figures as figs
from toolkit.report.paper import PaperRow
from toolkit.report.strips import Strip
from toolkit.report.tables import LeaderboardTable


@dataclass
class TableReport:
    """One leaderboard table with its figures and why any figure is absent."""

    table: LeaderboardTable
    figures: list[figs.FigureFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Leaderboard:
    """Everything a rendered report shows; paths are absolute, renderers make them relative to `out`."""

    out: Path
    results: Path
    tables: list[TableReport]
    paper: list[PaperRow]
    paper_source: Path | None
    strips: list[Strip] = field(default_factory=list)
    strip_notes: list[str] = field(default_factory=list)
    created: str = ""
    toolkit_version: str = __version__

    @property
    def markdown_path(self) -> Path:
        return self.out / "leaderboard.md"

    @property
    def html_path(self) -> Path:
        return self.out / "leaderboard.html"
