"""The leaderboard as Markdown (GitHub-flavoured): tables, provenance, figures, strips, published numbers."""

from __future__ import annotations

import html
import os
from pathlib import Path

from toolkit.report.board import Leaderboard, TableReport
from toolkit.report.paper import CAPTION, PAPER_NAMES, STATUS, Gap, PaperRow, reproduction_gaps, value_notes
from toolkit.report.tables import (
    LeaderboardTable,
    arrow,
    format_value,
    method_links,
    metric_order,
    provenance_lines,
    weights_fix,
)

LEGEND = ("# = rank by the table's primary metric (stated above each table) · ↑ higher is better · ↓ lower is "
          "better · **bold** = best value of the column among the competing methods · *(sanity)* rows see the "
          "ground truth and are never ranked · `unavailable` = not computed here (reason under the table) · "
          "– = not part of that run.")


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out)).as_posix()


def _esc(text: str) -> str:
    """Text for a Markdown table cell: HTML escaped (Markdown renders raw HTML), pipes escaped, one line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _cell(table: LeaderboardTable, method: str, metric: str) -> str:
    c = table.cell(method, metric)
    if c.status == "unavailable":
        return "unavailable"
    if c.status == "missing":
        return "–"
    text = format_value(c.value, metric)
    return f"**{text}**" if c.best else text


def method_name(method: str, sanity: bool = False) -> str:
    """The method's name with links to its paper and code where the method declares them."""
    paper, code = method_links(method)
    links = " · ".join(f"[{label}]({url})" for label, url in (("paper", paper), ("code", code)) if url)
    name = f"*{_esc(method)} (sanity)*" if sanity else _esc(method)
    return name + (f" ({links})" if links else "")


def metric_table(table: LeaderboardTable, metrics: list[str]) -> list[str]:
    """Markdown lines of one table: a row per method in rank order (sanity rows in italics, last)."""
    head = "| # | method | " + " | ".join(f"{m} {arrow(m)}" for m in metrics) + " |"
    rule = "|--:|:--|" + "--:|" * len(metrics)
    lines = [head, rule]
    for method in table.methods:
        rank = table.ranks.get(method)
        lines.append(f"| {rank if rank is not None else '–'} | {method_name(method, method in table.sanity)} | "
                     + " | ".join(_cell(table, method, m) for m in metrics) + " |")
    return lines


def _table_section(report: TableReport, out: Path) -> list[str]:
    t = report.table
    lines = [f"## {t.dataset} · {t.split} · {t.profile} v{t.profile_version}", "", f"*{_esc(t.title)}*", "",
             f"**{_esc(t.ranking_text)}**", ""]
    lines += metric_table(t, t.whole_frame_metrics)
    if t.region_metrics:
        lines += ["", "Person region (`_fg`) and background (`_bg`), region from the ground truth:", ""]
        lines += metric_table(t, t.region_metrics)
    unavailable, artifacts = t.unavailable(), t.unavailable_weights()
    if unavailable:
        lines += ["", "Unavailable here:"]
        for metric, note in unavailable.items():
            fix = weights_fix(artifacts.get(metric))
            lines.append(f"- `{metric}`: {_esc(note)}" + (f" — to fix: {_esc(fix)}" if fix else ""))
    prov = " · ".join(f"{label}: {_esc(text)}" for label, text in provenance_lines(t))
    lines += ["", f"<sub>{prov}</sub>", ""]
    if t.definitions:
        lines += ["<details><summary>Metric definitions of this profile</summary>", ""]
        lines += [f"- `{k}`: {_esc(v)}" for k, v in t.definitions.items()]
        lines += ["", "</details>", ""]
    for fig in report.figures:
        lines += [f"![{fig.kind} — {t.slug}]({_rel(fig.path, out)})", "", f"*{fig.caption}*", ""]
    for note in report.notes:
        lines.append(f"- {note}")
    if report.notes:
        lines.append("")
    return lines


def _paper_cell(row: PaperRow, metric: str) -> str:
    r = row.values.get(metric)
    return "–" if r is None else f"{r.text}{'†' if r.relabelled else ''} [{r.status}]"


def paper_section(rows: list[PaperRow], source: Path | None) -> list[str]:
    """The published-numbers block: its own heading, caption, one table per dataset, notes with sources."""
    lines = ["## Published numbers (not measured here)", "", f"> {CAPTION}", ""]
    if not rows:
        return lines + ["No published numbers loaded.", ""]
    lines.append("Column headers: the toolkit metric (the name papers print). † = printed under another name, "
                 "see the notes. Status: " + "; ".join(f"[{k}] {v}" for k, v in STATUS.items())
                 + (f". Source file: `{source.name}`." if source else "."))
    lines.append("")
    for dataset in dict.fromkeys(r.dataset for r in rows):
        group = [r for r in rows if r.dataset == dataset]
        metrics = metric_order({m for r in group for m in r.values})
        lines += [f"### {dataset} (published)", ""]
        lines.append("| method | paper | table | protocol | "
                     + " | ".join(f"{m} {arrow(m)} ({PAPER_NAMES.get(m, m)})" for m in metrics) + " |")
        lines.append("|:--|:--|:--|:--|" + "--:|" * len(metrics))
        for r in group:
            lines.append(f"| {_esc(r.method)} | {_esc(r.paper)} | {_esc(r.table)} | {r.protocol} | "
                         + " | ".join(_paper_cell(r, m) for m in metrics) + " |")
        notes = [f"- {_esc(method)}, `{m}`{_esc(alias)}: {_esc(text)}"
                 for method, m, alias, text in value_notes(group, metrics)]
        if notes:
            lines += ["", "<details><summary>Notes and sources</summary>", ""] + notes + ["", "</details>"]
        lines.append("")
    return lines


def gap_section(gaps: list[Gap]) -> list[str]:
    """Measured runs of a published method beside the paper's numbers, with each metric's gap (measured − published)."""
    if not gaps:
        return []
    lines = ["## Reproduction: measured beside published", "",
             "Runs named after a method of the published table (e.g. `magicanimate-published` from "
             "`make reproduce`), on the same dataset under the paper's protocol. Test videos, resolution and frame "
             "counts may still differ from the paper's; gap = measured − published.", ""]
    for key in dict.fromkeys((g.run, g.row.paper, g.row.table, g.row.dataset, g.row.protocol) for g in gaps):
        run, paper, table, dataset, protocol = key
        lines += [f"### {_esc(run)} vs {_esc(paper)}, {_esc(table)} ({dataset}, {protocol})", "",
                  "| metric | measured | published | gap |", "|:--|--:|--:|--:|"]
        for g in gaps:
            if (g.run, g.row.paper, g.row.table, g.row.dataset, g.row.protocol) != key:
                continue
            measured = "not measured" if g.measured is None else f"{g.measured:.4g}"
            gap = "–" if g.gap is None else f"{g.gap:+.4g} ({g.gap / g.published:+.1%})" if g.published else \
                f"{g.gap:+.4g}"
            lines.append(f"| {g.metric} {arrow(g.metric)} | {measured} | {g.row.values[g.metric].text} | {gap} |")
        lines.append("")
    return lines


def render_markdown(board: Leaderboard) -> str:
    """The whole report as Markdown, with paths relative to the report folder."""
    out = board.out
    lines = ["# Leaderboard", "",
             f"Generated {board.created} by toolkit {board.toolkit_version} from `{board.results}`. "
             "Numbers measured by this toolkit come first, one table per dataset × split × profile; numbers "
             "reported in papers are in their own section at the end.", "", LEGEND, ""]
    if not board.tables:
        lines += ["No runs in the results store.", ""]
    for report in board.tables:
        lines += _table_section(report, out)
    if board.strips or board.strip_notes:
        lines += ["## Qualitative strips", "",
                  "Each strip: reference | driving pose | ground truth | each method on the first frames of a few "
                  "test videos, from the predictions stored with each run (a registered method without them is "
                  "run again). Rows of the still are evenly spaced frames; leaderboard.html plays the columns as "
                  "synchronised videos.", ""]
        for s in board.strips:
            lines += [f"### {_esc(s.dataset)} · {_esc(s.video_id)}", "", f"![{_esc(s.video_id)}]({_rel(s.png, out)})",
                      "", f"[MP4]({_rel(s.mp4, out)}) · [GIF]({_rel(s.gif, out)}) · {s.n_frames} frames · "
                      f"columns: {_esc(', '.join(s.columns))}", ""]
            lines += [f"- {_esc(n)}" for n in s.notes] + ([""] if s.notes else [])
        lines += [f"- {_esc(n)}" for n in board.strip_notes] + ([""] if board.strip_notes else [])
    lines += gap_section(reproduction_gaps([r.table for r in board.tables], board.paper))
    lines += paper_section(board.paper, board.paper_source)
    return "\n".join(lines).rstrip() + "\n"
