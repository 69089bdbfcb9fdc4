"""Numbers reported in papers (`eval/paper_results.csv`): loaded, validated, kept apart from measured ones.

Each row is one published value: which method, dataset and metric (in this
toolkit's metric names), the value as printed, the column name the paper used
(``reported_as``, e.g. "PSNR*"), the paper and table, the protocol it corresponds
to, how far it was verified (``status``: V checked in the primary source, I taken
from a GitHub issue, U unverified), where it was checked (``source``) and notes.
The report shows these in their own block; nothing here is ever mixed into the
tables of numbers the toolkit measured.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from toolkit.harness.protocols import HIGHER_IS_BETTER, available_protocols
from toolkit.paths import paper_results_csv

DEFAULT_PAPER_RESULTS = paper_results_csv()   # the checkout's eval/paper_results.csv, or the installed copy
COLUMNS = ("method", "dataset", "metric", "value", "reported_as", "paper", "table", "protocol", "status",
           "source", "notes")
REQUIRED = ("method", "dataset", "metric", "value", "paper", "table", "protocol", "status")
CAPTION = ("Numbers reported in papers, copied here with their sources. They were not measured by this toolkit, "
           "and they may use other protocols, test videos, resolutions and frame counts than the tables above; "
           "compare them only with runs under the matching profile, and even then only approximately.")
# The column names papers print for each toolkit metric (DisCo's table headers).
PAPER_NAMES = {"l1": "L1", "psnr": "PSNR*", "psnr_legacy": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "fid": "FID",
               "fid_vid": "FID-VID", "fvd": "FVD"}
STATUS = {"V": "verified in the primary source", "I": "taken from a GitHub issue",
          "U": "unverified (memory or a secondary source)"}


@dataclass(frozen=True)
class PaperResult:
    """One published number, with its value exactly as printed (``text``) and parsed (``value``)."""

    method: str
    dataset: str
    metric: str
    value: float
    text: str
    reported_as: str
    paper: str
    table: str
    protocol: str
    status: str
    source: str
    notes: str

    @property
    def relabelled(self) -> bool:
        """True when the paper printed this value under another column name than the usual one for the metric."""
        return self.reported_as != PAPER_NAMES.get(self.metric, self.metric)


class PaperResultsInvalid(ValueError):
    """Every problem found in a paper-results CSV, one per line, each naming the file and line."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))


def load_paper_results(path: str | Path = DEFAULT_PAPER_RESULTS) -> list[PaperResult]:
    """Read and validate the CSV; raises PaperResultsInvalid listing every bad line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: paper results file not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise PaperResultsInvalid(path, [f"header: missing column(s) {', '.join(missing)} "
                                             f"(expected {', '.join(COLUMNS)})"])
        rows = list(reader)
    problems: list[str] = []
    out: list[PaperResult] = []
    protocols = set(available_protocols())
    for line, row in enumerate(rows, start=2):
        get = {k: (row.get(k) or "").strip() for k in COLUMNS}
        bad = [c for c in REQUIRED if not get[c]]
        if bad:
            problems.append(f"line {line}: empty {', '.join(bad)}")
            continue
        try:
            value = float(get["value"])
        except ValueError:
            problems.append(f"line {line}: value {get['value']!r} is not a number")
            continue
        if not math.isfinite(value):
            problems.append(f"line {line}: value {get['value']!r} is not finite")
        if get["metric"].removesuffix("_fg").removesuffix("_bg") not in HIGHER_IS_BETTER:
            problems.append(f"line {line}: unknown metric {get['metric']!r} "
                            f"(use the toolkit's names: {', '.join(HIGHER_IS_BETTER)})")
        if get["status"] not in STATUS:
            problems.append(f"line {line}: status {get['status']!r} must be one of {', '.join(STATUS)}")
        if protocols and get["protocol"] not in protocols:
            problems.append(f"line {line}: protocol {get['protocol']!r} is not one of {', '.join(sorted(protocols))}")
        out.append(PaperResult(method=get["method"], dataset=get["dataset"], metric=get["metric"], value=value,
                               text=get["value"], reported_as=get["reported_as"] or get["metric"],
                               paper=get["paper"], table=get["table"], protocol=get["protocol"],
                               status=get["status"], source=get["source"], notes=get["notes"]))
    if problems:
        raise PaperResultsInvalid(path, problems)
    return out


@dataclass(frozen=True)
class PaperRow:
    """Published values of one method from one paper's table, keyed by metric."""

    method: str
    dataset: str
    paper: str
    table: str
    protocol: str
    values: dict[str, PaperResult]


def paper_rows(results: list[PaperResult], datasets: list[str] | None = None) -> list[PaperRow]:
    """Group published values into table rows: (method, dataset, paper, table, protocol), in file order."""
    rows: dict[tuple[str, str, str, str, str], dict[str, PaperResult]] = {}
    for r in results:
        if datasets is not None and r.dataset not in datasets:
            continue
        rows.setdefault((r.method, r.dataset, r.paper, r.table, r.protocol), {})[r.metric] = r
    return [PaperRow(*key, values=vals) for key, vals in rows.items()]


def value_notes(rows: list[PaperRow], metrics: list[str]) -> list[tuple[str, str, str, str]]:
    """(method, metric, alias, text) for every reported value that carries a relabelling, notes or a source."""
    out = []
    for r in rows:
        for m in metrics:
            v = r.values.get(m)
            if v is None:
                continue
            alias = f" (printed as {v.reported_as})" if v.relabelled else ""
            text = "; ".join(x for x in (v.notes, f"source: {v.source}" if v.source else "") if x)
            if alias or text:
                out.append((r.method, m, alias, text))
    return out


@dataclass(frozen=True)
class Gap:
    """A measured aggregate beside the published value of the same method, dataset, protocol and metric."""

    run: str          # the measured run's label in the leaderboard table
    row: PaperRow
    metric: str
    measured: float | None   # None: not measured (e.g. the metric's weights are missing)

    @property
    def published(self) -> float:
        return self.row.values[self.metric].value

    @property
    def gap(self) -> float | None:
        """measured − published."""
        return None if self.measured is None else self.measured - self.published


def _plain(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def reproduction_gaps(tables: list, rows: list[PaperRow]) -> list[Gap]:
    """Every published value whose method was measured on the same dataset under the paper's protocol.

    A measured run pairs with a published row when its label is the method's name or the name followed by
    "published" (`make reproduce` labels the released checkpoint's run e.g. `magicanimate-published`),
    case and punctuation aside; `tables` are the leaderboard's LeaderboardTable objects."""
    out = []
    for table in tables:
        for row in rows:
            if row.dataset != table.dataset or row.protocol != table.profile:
                continue
            for run in table.methods:
                if _plain(run) not in (_plain(row.method), _plain(row.method) + "published"):
                    continue
                for metric in row.values:
                    cell = table.cells.get((run, metric))
                    out.append(Gap(run, row, metric, cell.value if cell is not None and cell.ok else None))
    return out
