"""The leaderboard as one self-contained HTML page: inline CSS, a little inline JS, figures embedded.

No network and no libraries: figures are data URIs; the qualitative strips (large
animated GIFs with tiles of at least 384 px) are files in ``strips/`` beside the
page, shown from there, with a small embedded JPEG still in their place when the
page is opened without its folder, which keeps the page small (the default
dataset's report is well under 2 MB). Near the top, after a one-line summary of
each table, each strip's video is also shown as a grid of ``<video>`` players
(reference | driving pose | ground truth | each method, from ``strips/``) that one
control bar plays, pauses and scrubs together; a checkbox swaps each method's
video for its error map |generated - ground truth|. The page records on each
``<video>`` whether it loaded (``data-state``, ``data-duration``) and on
``<body>`` how many did (``data-videos``, ``data-videos-ok``). Rows are ranked by the table's primary
metric; the tables also sort on a header click (best first; sanity rows and
missing values always last), and ``#sort=TABLE:METRIC:asc`` in the address sorts on load. After load the page records on ``<body>`` how many
tables and images are visible and how many script errors occurred
(``data-ready``, ``data-tables-visible``, ``data-images-ok``,
``data-images-broken``, ``data-js-errors``), so a headless browser can check it.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from toolkit.harness.protocols import higher_is_better
from toolkit.report.figures import method_colour
from toolkit.report.board import Leaderboard, TableReport
from toolkit.report.paper import CAPTION, PAPER_NAMES, STATUS, PaperRow, value_notes
from toolkit.report.strips import ERROR_GAIN, Strip
from toolkit.report.tables import (
    LeaderboardTable,
    arrow,
    format_value,
    method_links,
    metric_order,
    provenance_lines,
    weights_fix,
)

EMBED_LIMIT = 8 * 1024 * 1024   # bytes: larger figures are linked, not embedded
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

CSS = """
:root { --ink:#1f2328; --muted:#656d76; --line:#d8dee4; --soft:#f6f8fa; --best:#dafbe1; --best-ink:#116329;
        --accent:#0969da; --paper:#fff8e5; --paper-line:#d4a72c; }
* { box-sizing: border-box; }
body { margin:0; color:var(--ink); background:#fff; line-height:1.5;
       font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main, header.top, footer { max-width: 1240px; margin: 0 auto; padding: 0 28px; }
header.top { padding-top: 28px; padding-bottom: 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 21px; margin: 0 0 2px; }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); font-weight: 600; }
.meta, .subtitle { color: var(--muted); margin: 0 0 10px; font-size: 13.5px; }
nav { display:flex; flex-wrap:wrap; gap:6px 14px; margin: 10px 0 12px; font-size: 13.5px; }
nav a { color: var(--accent); text-decoration: none; } nav a:hover { text-decoration: underline; }
.legend { font-size: 13px; color: var(--muted); margin: 0 0 14px; }
.legend span.best, .legend span.na, .legend span.sanity-tag { margin: 0 2px; }
section.board, section.strips, section.paper { margin: 30px 0 12px; padding-top: 6px; }
.sep { color: #b0b7bf; font-weight: 400; margin: 0 4px; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; margin-top: 10px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 12px; border-bottom: 1px solid var(--line); white-space: nowrap; }
thead th { background: var(--soft); font-weight: 600; text-align: right; position: relative; }
thead th:first-child, td:first-child, tbody th, thead th[data-key="method"] { text-align: left; }
tbody th { font-weight: 600; }
td.num { text-align: right; }
td.rank { color: var(--muted); font-weight: 600; width: 1%; }
th .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 7px;
             vertical-align: baseline; }
th a.ref { font-weight: 400; font-size: 12px; color: var(--accent); text-decoration: none; margin-left: 6px; }
th a.ref:hover { text-decoration: underline; }
p.ranking { font-size: 13.5px; margin: 6px 0 0; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th:hover { background: #eaeef2; }
th .arrow { color: var(--accent); font-weight: 700; margin-left: 2px; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; color: var(--muted); }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; color: var(--muted); }
tbody tr:last-child td, tbody tr:last-child th { border-bottom: none; }
tbody tr:hover td { background: #f8fafc; }
td.best, span.best { background: var(--best); color: var(--best-ink); font-weight: 700; }
span.best { padding: 0 6px; border-radius: 4px; }
span.na { display:inline-block; padding: 0 7px; border-radius: 10px; background: #eef1f4; color: var(--muted);
          font-size: 12px; border: 1px dashed #c4ccd4; }
tr.sanity td { color: var(--muted); font-style: italic; }
span.sanity-tag { font-style: normal; font-size: 11px; padding: 0 6px; border-radius: 10px; background: #eef1f4;
                  color: var(--muted); margin-left: 6px; }
ul.unavailable { font-size: 13px; color: var(--muted); margin: 10px 0 0; padding-left: 18px; }
ul.unavailable code, .provenance code { font-size: 12px; }
.provenance { font-size: 12px; color: var(--muted); margin: 12px 0 0; display: grid;
              grid-template-columns: max-content 1fr; gap: 1px 14px; }
.provenance dt { font-weight: 600; } .provenance dd { margin: 0; word-break: break-word; }
details { font-size: 12.5px; color: var(--muted); margin: 8px 0 0; }
details summary { cursor: pointer; }
details li { margin: 2px 0; }
.figures { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 18px; margin-top: 18px;
            align-items: start; }
.figures .fig-bars { grid-column: 1 / -1; } .figures .fig-curves { grid-column: span 2; }
@media (max-width: 900px) { .figures { grid-template-columns: 1fr; } .figures figure { grid-column: 1 / -1; } }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px; background: #fff; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 6px; }
figure.wide { grid-column: 1 / -1; }
.notes { font-size: 12.5px; color: var(--muted); }
.strip-grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 18px; margin-top: 12px; }
.strip-grid > * { min-width: 0; }
.strip-grid img { image-rendering: auto; }
.strip-grid .strip-view { overflow-x: auto; max-width: 100%; }
.strip-grid .strip-view img { max-width: none; margin: 0; }
section.paper { background: var(--paper); border: 1px solid var(--paper-line); border-left: 6px solid var(--paper-line);
                border-radius: 8px; padding: 16px 20px 18px; }
th .paper-name { display: block; font-weight: 400; font-size: 11px; color: var(--muted); }
.paper-banner { display: inline-block; font-size: 11.5px; font-weight: 700; letter-spacing: .06em;
                text-transform: uppercase; color: #7d4e00; background: #fff1c2; border: 1px solid var(--paper-line);
                border-radius: 4px; padding: 1px 8px; margin-bottom: 8px; }
section.paper .caption { font-size: 13.5px; margin: 4px 0 10px; }
section.paper .table-wrap { background: #fff; }
section.paper td.status, .st { font-size: 11px; color: var(--muted); margin-left: 3px; }
table.paper-table { font-size: 13px; }
table.paper-table th, table.paper-table td { padding: 6px 8px; }
section.paper td.src { white-space: normal; min-width: 170px; max-width: 230px; font-size: 12px; }
section.summary ul { margin: 6px 0 0; padding-left: 18px; font-size: 14px; }
section.watch { margin: 26px 0 12px; }
.player { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px 12px; margin-top: 12px;
          max-width: 100%; }
.player h3 { margin: 0 0 6px; color: var(--ink); }
.player .controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px; margin: 0 0 10px;
                    font-size: 13px; color: var(--muted); }
.player .controls button { font: inherit; padding: 2px 12px; border: 1px solid var(--line); border-radius: 6px;
                           background: var(--soft); cursor: pointer; color: var(--ink); min-width: 64px; }
.player .controls input.scrub { flex: 1 1 220px; min-width: 120px; max-width: 100%; }
.player .clock { font-variant-numeric: tabular-nums; min-width: 92px; }
.player .cells { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.player figure.cell { margin: 0; padding: 4px; min-width: 0; border-radius: 6px; }
.player figure.method { border-color: #b6c2cf; }
.player video { display: block; width: 100%; max-width: 100%; height: auto; background: #000; border-radius: 4px; }
.player video.err { display: none; }
.player.show-errors video.err { display: block; }
.player.show-errors video.gen { display: none; }
.player figcaption { overflow-wrap: anywhere; margin-top: 4px; }
.player .placeholder { min-height: 120px; display: flex; align-items: center; padding: 8px; border-radius: 4px;
                       background: #eef1f4; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
#js-errors { color: #b42318; background: #fff1f0; padding: 8px; }
footer { font-size: 12px; color: var(--muted); padding-top: 16px; padding-bottom: 30px;
         border-top: 1px solid var(--line); margin-top: 30px; }
"""

ERROR_HOOK = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e.type));
  var box = document.getElementById('js-errors');
  if (box) { box.hidden = false; box.textContent += (e.message || e.type) + '\\n'; }
});
"""

SCRIPT = """
(function () {
  function value(cell) {
    var v = cell.getAttribute('data-value');
    return v === null || v === '' ? NaN : parseFloat(v);
  }
  function sortTable(table, idx, dir) {
    var th = table.tHead.rows[0].cells[idx], numeric = th.hasAttribute('data-numeric');
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var sa = a.classList.contains('sanity'), sb = b.classList.contains('sanity');
      if (sa !== sb) { return sa ? 1 : -1; }
      if (!numeric) { return dir * a.cells[idx].textContent.localeCompare(b.cells[idx].textContent); }
      var va = value(a.cells[idx]), vb = value(b.cells[idx]), na = isNaN(va), nb = isNaN(vb);
      if (na || nb) { return na === nb ? 0 : (na ? 1 : -1); }
      return dir * (va - vb);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
  }
  function bestFirst(th) { return th.getAttribute('data-higher') === '1' ? -1 : 1; }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, idx) {
      th.tabIndex = 0;
      var go = function () {
        var first = th.hasAttribute('data-numeric') ? bestFirst(th) : 1;
        var current = th.getAttribute('aria-sort');
        var dir = current === null ? first : (current === 'ascending' ? -1 : 1);
        sortTable(table, idx, dir);
      };
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); }
      });
    });
  });
  function sortFromHash() {
    var m = /sort=([^:&]+):([^:&]+)(?::(asc|desc))?/.exec(decodeURIComponent(location.hash || ''));
    if (!m) { return; }
    var table = document.getElementById(m[1]);
    if (!table) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, idx) {
      if ((th.getAttribute('data-metric') || th.getAttribute('data-key')) === m[2]) {
        sortTable(table, idx, m[3] ? (m[3] === 'asc' ? 1 : -1) : (th.hasAttribute('data-numeric') ? bestFirst(th) : 1));
      }
    });
  }
  sortFromHash();
  window.addEventListener('hashchange', sortFromHash);
  function videoCounts() {
    var all = document.querySelectorAll('video'), ok = 0;
    all.forEach(function (v) { if (v.getAttribute('data-state') === 'ok') { ok++; } });
    document.body.setAttribute('data-videos', all.length);
    document.body.setAttribute('data-videos-ok', ok);
  }
  function record(v) {
    var fine = !v.error && v.readyState >= 1 && v.duration > 0;
    v.setAttribute('data-state', v.error ? 'error' : (fine ? 'ok' : 'loading'));
    v.setAttribute('data-ready-state', v.readyState);
    v.setAttribute('data-duration', isFinite(v.duration) ? v.duration : 0);
    v.setAttribute('data-paused', v.paused ? '1' : '0');
    videoCounts();
  }
  document.querySelectorAll('.player').forEach(function (player) {
    var vids = Array.prototype.slice.call(player.querySelectorAll('video'));
    if (!vids.length) { return; }
    var lead = vids[0], button = player.querySelector('button.play'), scrub = player.querySelector('input.scrub');
    var clock = player.querySelector('.clock'), errors = player.querySelector('input.errors');
    function seek(t) {
      vids.forEach(function (v) {
        if (Math.abs(v.currentTime - t) > 0.001) { try { v.currentTime = t; } catch (e) {} }
      });
    }
    function play() {
      vids.forEach(function (v) { var r = v.play(); if (r && r.catch) { r.catch(function () {}); } });
      button.textContent = 'Pause';
    }
    function pause() { vids.forEach(function (v) { v.pause(); }); seek(lead.currentTime); button.textContent = 'Play'; }
    function toggle() { if (lead.paused) { play(); } else { pause(); } }
    button.addEventListener('click', toggle);
    vids.forEach(function (v) {
      v.addEventListener('click', toggle);
      ['loadedmetadata', 'canplay', 'playing', 'pause', 'error'].forEach(function (ev) {
        v.addEventListener(ev, function () { record(v); });
      });
      record(v);
    });
    scrub.addEventListener('input', function () {
      if (!lead.paused) { pause(); }
      seek(scrub.value / 1000 * (lead.duration || 0));
    });
    lead.addEventListener('timeupdate', function () {
      var d = lead.duration || 0;
      if (d) { scrub.value = Math.round(1000 * lead.currentTime / d); }
      clock.textContent = lead.currentTime.toFixed(2) + ' / ' + d.toFixed(2) + ' s';
      if (!lead.paused) {
        vids.forEach(function (v) {
          if (v !== lead && Math.abs(v.currentTime - lead.currentTime) > 0.08) { v.currentTime = lead.currentTime; }
        });
      }
    });
    errors.addEventListener('change', function () { player.classList.toggle('show-errors', errors.checked); });
    play();
  });
  window.addEventListener('load', function () {
    var ok = 0, broken = 0, tables = 0;
    document.querySelectorAll('img').forEach(function (img) {
      if (img.complete && img.naturalWidth > 0 && img.offsetWidth > 0 && img.offsetHeight > 0) { ok++; } else { broken++; }
    });
    document.querySelectorAll('table').forEach(function (t) { if (t.offsetWidth > 0 && t.offsetHeight > 0) { tables++; } });
    var b = document.body;
    b.setAttribute('data-images-ok', ok);
    b.setAttribute('data-images-broken', broken);
    b.setAttribute('data-tables-visible', tables);
    b.setAttribute('data-js-errors', window.__reportErrors.length);
    document.querySelectorAll('video').forEach(record);
    videoCounts();
    b.setAttribute('data-ready', '1');
  });
})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _src(path: Path, out: Path, limit: int = EMBED_LIMIT) -> str:
    """A data URI for the image, or its path relative to the page when it is larger than `limit`."""
    if path.stat().st_size <= limit and path.suffix.lower() in MIME:
        return f"data:{MIME[path.suffix.lower()]};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return _e(Path(os.path.relpath(path, out)).as_posix())


def _rel(path: Path, out: Path) -> str:
    return _e(Path(os.path.relpath(path, out)).as_posix())


def _table_id(t: LeaderboardTable, part: str) -> str:
    return f"tbl-{t.slug}-{part}".replace(".", "_")


def _method_cell(method: str, sanity: bool) -> str:
    """The row header: colour swatch (as in the figures), name, links to the paper and code when declared."""
    paper, code = method_links(method)
    links = "".join(f'<a class="ref" href="{_e(url)}" rel="noopener">{label}</a>'
                    for label, url in (("paper", paper), ("code", code)) if url)
    tag = '<span class="sanity-tag" title="sees the ground truth; never ranked">sanity</span>' if sanity else ""
    swatch = f'<span class="swatch" style="background:{method_colour(method)}"></span>'
    return f'<th scope="row">{swatch}{_e(method)}{tag}{links}</th>'


def metric_table(t: LeaderboardTable, metrics: list[str], table_id: str) -> str:
    """One sortable HTML table: a row per method in rank order, best values marked, unavailable cells labelled."""
    defs = t.definitions
    rank_title = f"rank by {t.primary}" if t.primary else "not ranked"
    head = [f'<th scope="col" data-key="rank" data-numeric="1" data-higher="0" title="{_e(rank_title)}">#</th>',
            '<th scope="col" data-key="method">method</th>']
    for m in metrics:
        title = defs.get(m) or defs.get(m.removesuffix("_fg").removesuffix("_bg"), "")
        head.append(f'<th scope="col" data-metric="{_e(m)}" data-numeric="1" data-higher="{int(higher_is_better(m))}"'
                    f' title="{_e(title)}">{_e(m)} <span class="arrow">{arrow(m)}</span></th>')
    rows = []
    for method in t.methods:
        sanity = method in t.sanity
        rank = t.ranks.get(method)
        cells = [f'<td class="num rank" data-value="{rank if rank is not None else ""}">'
                 f'{rank if rank is not None else "–"}</td>', _method_cell(method, sanity)]
        for m in metrics:
            c = t.cell(method, m)
            if c.status == "unavailable":
                cells.append(f'<td class="num" data-value="" title="{_e(c.note or "unavailable")}">'
                             f'<span class="na">unavailable</span></td>')
            elif c.status == "missing":
                cells.append('<td class="num" data-value="" title="not part of this run">–</td>')
            else:
                cls = "num best" if c.best else "num"
                title = " title=\"best of the column\"" if c.best else ""
                data = repr(float(c.value)) if c.ok else ""
                cells.append(f'<td class="{cls}" data-value="{data}"{title}>{_e(format_value(c.value, m))}</td>')
        rows.append(f'<tr class="{"sanity" if sanity else "method"}" data-method="{_e(method)}">'
                    + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="lb sortable" id="{table_id}">'
            f'<thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _board_section(report: TableReport, out: Path) -> str:
    t = report.table
    sep = '<span class="sep">·</span>'
    parts = [f'<section class="board" id="board-{_e(t.slug)}">',
             f"<h2>{_e(t.dataset)} {sep} {_e(t.split)} {sep} {_e(t.profile)} v{_e(t.profile_version)}</h2>",
             f'<p class="subtitle">{_e(t.title)}</p>',
             f'<p class="ranking"><strong>{_e(t.ranking_text)}</strong></p>',
             metric_table(t, t.whole_frame_metrics, _table_id(t, "main"))]
    if t.region_metrics:
        parts.append("<h3>Person region (_fg) and background (_bg), region from the ground truth</h3>")
        parts.append(metric_table(t, t.region_metrics, _table_id(t, "region")))
    unavailable, artifacts = t.unavailable(), t.unavailable_weights()
    if unavailable:
        items = []
        for metric, note in unavailable.items():
            fix = weights_fix(artifacts.get(metric))
            items.append(f"<li><code>{_e(metric)}</code>: {_e(note)}"
                         + (f" — to fix: {_code_spans(fix)}" if fix else "") + "</li>")
        parts.append('<ul class="unavailable">' + "".join(items) + "</ul>")
    prov = "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in provenance_lines(t))
    parts.append(f'<dl class="provenance">{prov}</dl>')
    if t.definitions:
        items = "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in t.definitions.items())
        parts.append(f"<details><summary>Metric definitions of this profile</summary><ul>{items}</ul></details>")
    if report.figures:
        figs = []
        for fig in report.figures:
            figs.append(f'<figure class="fig-{_e(fig.kind)}"><img src="{_src(fig.path, out)}" '
                        f'alt="{_e(fig.kind)} figure for {_e(t.slug)}" loading="eager">'
                        f"<figcaption>{_e(fig.caption)}</figcaption></figure>")
        parts.append('<div class="figures">' + "".join(figs) + "</div>")
    if report.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _code_spans(text: str) -> str:
    """Escaped text with `backtick` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _strip_figure(s: Strip, out: Path) -> str:
    """The animated strip at full size from strips/ beside the page; its embedded still when that folder is absent."""
    links = (f'<a href="{_rel(s.mp4, out)}">MP4</a> · <a href="{_rel(s.gif, out)}">GIF</a> · '
             f'<a href="{_rel(s.png, out)}">still (PNG)</a>')
    notes = "".join(f"<br>{_e(n)}" for n in s.notes)
    fallback = ""
    if s.preview is not None and s.preview.is_file():
        fallback = (f' data-fallback="{_src(s.preview, out)}" '
                    'onerror="if(this.dataset.fallback){this.src=this.dataset.fallback;delete this.dataset.fallback;}"')
    size = f"{s.tile_height} px tiles; " if s.tile_height else ""
    return (f'<figure class="strip"><div class="strip-view"><a href="{_rel(s.gif, out)}">'
            f'<img src="{_rel(s.gif, out)}" alt="strip {_e(s.video_id)}" loading="eager"{fallback}></a></div>'
            f"<figcaption><strong>{_e(s.dataset)} · {_e(s.video_id)}</strong> — {s.n_frames} frames, {size}columns: "
            f"{_e(', '.join(s.columns))}. {links}{notes}</figcaption></figure>")


def summary_line(t: LeaderboardTable) -> str:
    """One line per table for the top of the page: what it ranks and who leads."""
    ranked = sorted((m for m in t.methods if t.ranks.get(m) is not None), key=lambda m: t.ranks[m])
    head = (f'<a href="#board-{_e(t.slug)}">{_e(t.dataset)} · {_e(t.split)} · {_e(t.profile)} '
            f"v{_e(t.profile_version)}</a>")
    if not ranked or t.primary is None:
        return f"<li>{head}: {len(t.methods)} method(s), not ranked.</li>"
    best = t.cell(ranked[0], t.primary)
    return (f"<li>{head}: {len(ranked)} method(s) ranked by <code>{_e(t.primary)}</code> {arrow(t.primary)}; "
            f"first <strong>{_e(ranked[0])}</strong> ({_e(format_value(best.value, t.primary))})"
            + (f", then {_e(', '.join(ranked[1:4]))}" if len(ranked) > 1 else "") + ".</li>")


def _player_cell(col, out: Path) -> str:
    """One column of a player: its video (and error map), or a placeholder saying why it is missing."""
    method = f' data-method="{_e(col.label)}"' if col.kind == "method" else ""
    attrs = 'muted loop playsinline preload="auto"'
    if col.video is None:
        body = f'<div class="placeholder" data-method="{_e(col.label)}">not shown: {_e(col.note)}</div>'
    else:
        body = f'<video class="gen" src="{_rel(col.video, out)}"{method} {attrs}></video>'
        if col.error is not None:
            body += (f'<video class="err" src="{_rel(col.error, out)}"{method} data-role="error" {attrs}'
                     f' title="|generated - ground truth|"></video>')
    source = {"stored": "stored predictions", "predictions": "predictions folder",
              "regenerated": "regenerated"}.get(col.source, "")
    caption = _e(col.label) + (f' <span class="st">{source}</span>' if source else "")
    return f'<figure class="cell {_e(col.kind)}">{body}<figcaption>{caption}</figcaption></figure>'


def _player(s: Strip, out: Path) -> str:
    """A strip's columns as videos played, paused and scrubbed together by one control bar."""
    cells = "".join(_player_cell(c, out) for c in s.players)
    return (f'<div class="player" data-video-id="{_e(s.video_id)}"><h3>{_e(s.dataset)} · {_e(s.video_id)} '
            f'<span class="st">{s.n_frames} frames at {s.fps:g} fps</span></h3>'
            '<div class="controls"><button type="button" class="play">Play</button>'
            '<input type="range" class="scrub" min="0" max="1000" value="0" aria-label="position in the video">'
            '<span class="clock">0.00 s</span>'
            '<label><input type="checkbox" class="errors"> error maps |generated − ground truth| '
            f"(×{ERROR_GAIN}, black = equal)</label></div>"
            f'<div class="cells">{cells}</div></div>')


def players_section(board: Leaderboard) -> str:
    """The synchronised players of every strip (empty when no strip has players)."""
    shown = [s for s in board.strips if s.players]
    if not shown:
        return ""
    return ('<section class="watch" id="watch"><h2>Watch the methods</h2><p class="subtitle">Reference | driving '
            "pose | ground truth | each ranked method, from the predictions stored with each run (first frames of "
            "a few test videos; files in <code>strips/</code> beside this page). One control plays, pauses and "
            "scrubs a row together; click a video to play or pause.</p>"
            + "".join(_player(s, board.out) for s in shown) + "</section>")


def _paper_cell(row: PaperRow, metric: str) -> str:
    r = row.values.get(metric)
    if r is None:
        return '<td class="num">–</td>'
    title = "; ".join(x for x in (f"the paper's column: {r.reported_as}", r.notes, r.source) if x)
    mark = '<span class="st" title="printed under another column name; see the notes">†</span>' if r.relabelled else ""
    return (f'<td class="num" title="{_e(title)}">{_e(r.text)}{mark}'
            f'<span class="st" title="{_e(STATUS[r.status])}">[{_e(r.status)}]</span></td>')


def paper_section(rows: list[PaperRow], source: Path | None) -> str:
    """The published-numbers block, styled apart from the measured tables."""
    parts = ['<section class="paper" id="published">', '<div class="paper-banner">Published · not measured here</div>',
             "<h2>Numbers reported in papers</h2>", f'<p class="caption">{_e(CAPTION)}</p>']
    if not rows:
        parts.append("<p>No published numbers loaded.</p></section>")
        return "\n".join(parts)
    status = " · ".join(f"[{_e(k)}] {_e(v)}" for k, v in STATUS.items())
    parts.append(f'<p class="meta">Column headers: the toolkit metric and the name papers print for it; † = printed '
                 f'under another name (see the notes). Status of each value: {status}.'
                 + (f" From <code>{_e(source.name)}</code>." if source else "") + "</p>")
    for dataset in dict.fromkeys(r.dataset for r in rows):
        group = [r for r in rows if r.dataset == dataset]
        metrics = metric_order({m for r in group for m in r.values})
        head = "".join(f'<th scope="col" title="the toolkit metric this value corresponds to">{_e(m)} '
                       f'<span class="arrow">{arrow(m)}</span><span class="paper-name">papers: '
                       f"{_e(PAPER_NAMES.get(m, m))}</span></th>" for m in metrics)
        body = []
        for r in group:
            body.append(f'<tr><th scope="row">{_e(r.method)}</th><td class="src">{_e(r.paper)}, {_e(r.table)}</td>'
                        f"<td>{_e(r.protocol)}</td>" + "".join(_paper_cell(r, m) for m in metrics) + "</tr>")
        parts.append(f"<h3>{_e(dataset)} (published)</h3>")
        parts.append('<div class="table-wrap"><table class="paper-table"><thead><tr><th scope="col">method</th>'
                     '<th scope="col" style="text-align:left">reported in</th>'
                     f'<th scope="col" style="text-align:left">protocol</th>{head}</tr></thead>'
                     f"<tbody>{''.join(body)}</tbody></table></div>")
        notes = [f"<li>{_e(method)}, <code>{_e(m)}</code>{_e(alias)}: {_e(text)}</li>"
                 for method, m, alias, text in value_notes(group, metrics)]
        if notes:
            parts.append(f"<details><summary>Notes and sources</summary><ul>{''.join(notes)}</ul></details>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(board: Leaderboard) -> str:
    """The whole report as one HTML document (figures embedded, links relative to the report folder)."""
    out = board.out
    nav = ['<a href="#summary">summary</a>'] if board.tables else []
    if any(s.players for s in board.strips):
        nav.append('<a href="#watch">watch</a>')
    nav += [f'<a href="#board-{_e(r.table.slug)}">{_e(r.table.dataset)} · {_e(r.table.profile)} '
           f"v{_e(r.table.profile_version)}</a>" for r in board.tables]
    if board.strips:
        nav.append('<a href="#strips">qualitative strips</a>')
    nav.append('<a href="#published">published numbers</a>')
    legend = ('# rank by the primary metric stated above each table · '
              '<span class="arrow">↑</span> higher is better · <span class="arrow">↓</span> lower is better · '
              '<span class="best">best</span> best of the column among the competing methods · '
              '<span class="sanity-tag">sanity</span> sees the ground truth, never ranked · '
              '<span class="na">unavailable</span> not computed here (hover for the reason) · click a column '
              "header to sort")
    body = [f'<header class="top"><h1>Leaderboard</h1><p class="meta">Generated {_e(board.created)} by toolkit '
            f"{_e(board.toolkit_version)} from <code>{_e(board.results)}</code>. Measured numbers first, one table "
            "per dataset × split × profile; published numbers are in their own block at the end.</p>",
            f"<nav>{''.join(nav)}</nav>", f'<p class="legend">{legend}</p></header>', "<main>"]
    if not board.tables:
        body.append("<p>No runs in the results store.</p>")
    if board.tables:
        body.append('<section class="summary" id="summary"><h2>Summary</h2><ul>'
                    + "".join(summary_line(r.table) for r in board.tables) + "</ul></section>")
    body.append(players_section(board))
    body += [_board_section(r, out) for r in board.tables]
    if board.strips or board.strip_notes:
        body.append('<section class="strips" id="strips"><h2>Qualitative strips</h2><p class="subtitle">Reference | '
                    "driving pose | ground truth | each method on the first frames of a few test "
                    "videos, shown at full size from the <code>strips/</code> folder beside this page (scroll "
                    "sideways; click for the GIF).</p>")
        body.append('<div class="strip-grid">' + "".join(_strip_figure(s, out) for s in board.strips) + "</div>")
        if board.strip_notes:
            body.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in board.strip_notes) + "</ul>")
        body.append("</section>")
    body.append(paper_section(board.paper, board.paper_source))
    body.append('<pre id="js-errors" hidden></pre></main>')
    body.append(f"<footer>toolkit {_e(board.toolkit_version)} · results store <code>{_e(board.results)}</code> · "
                "this page loads nothing from the network.</footer>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Leaderboard</title><script>{ERROR_HOOK}</script><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n")
