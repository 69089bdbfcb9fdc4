"""`toolkit leaderboard`: tables, best values, unavailable labels, figures, strips, published numbers."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.builders import make_shards
from tests.helpers.results_store import AGGREGATES, FVD_NOTE, LPIPS_NOTE, make_store
from toolkit.cli import main as cli
from toolkit.harness.protocols import higher_is_better
from toolkit.harness.runner import evaluate
from toolkit.report.figures import normalise_scores
from toolkit.report.leaderboard import write_leaderboard
from toolkit.report.paper import DEFAULT_PAPER_RESULTS, PaperResultsInvalid, load_paper_results
from toolkit.report.strips import GAP, GUTTER, HEADER, compose
from toolkit.report.tables import best_methods, build_tables, format_value, rank_methods
from toolkit.shards.reader import Shards
from toolkit.video import read_video

class _Tables(HTMLParser):
    """Collects the measured tables (class 'lb') and the published block of the rendered page."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.current: dict | None = None
        self.cell: dict | None = None
        self.row: str | None = None
        self.in_paper = 0
        self.paper_text: list[str] = []
        self.depth = 0
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self.depth += 1
            if "paper" in (a.get("class") or "").split():
                self.in_paper = self.depth
        if tag == "table" and "lb" in (a.get("class") or "").split():
            self.current = {"headers": [], "rows": {}}
            self.tables[a["id"]] = self.current
        elif self.current is not None and tag == "tr":
            self.row = a.get("data-method")
            if self.row:
                self.current["rows"][self.row] = []
        elif self.current is not None and tag in ("th", "td"):
            self.cell = {"attrs": a, "text": ""}

    def handle_endtag(self, tag):
        if tag == "section":
            if self.in_paper == self.depth:
                self.in_paper = 0
            self.depth -= 1
        if tag == "table":
            self.current = None
        elif self.current is not None and tag in ("th", "td") and self.cell is not None:
            if self.row:
                self.current["rows"][self.row].append(self.cell)
            else:
                self.current["headers"].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data
        if self.in_paper:
            self.paper_text.append(data)


def _parse(html_text: str) -> _Tables:
    p = _Tables()
    p.feed(html_text)
    return p


def test_best_values_and_normalisation_are_direction_aware():
    assert best_methods({"a": 0.1, "b": 0.2}, higher=False) == {"a"}
    assert best_methods({"a": 0.1, "b": 0.2}, higher=True) == {"b"}
    assert best_methods({"a": 0.5, "b": 0.5, "c": float("nan")}, higher=True) == {"a", "b"}
    assert best_methods({"a": float("nan")}, higher=True) == set()
    low = normalise_scores({"a": 10.0, "b": 30.0, "c": 20.0}, higher=False)
    assert low == {"a": 1.0, "b": 0.0, "c": 0.5}
    high = normalise_scores({"a": 10.0, "b": 30.0, "c": float("nan")}, higher=True)
    assert high == {"a": 0.0, "b": 1.0}
    assert normalise_scores({"a": 3.0, "b": 3.0}, higher=True) == {"a": 1.0, "b": 1.0}
    assert format_value(float("nan")) == "n/a" and format_value(3.13e-4) == "3.13e-04"
    assert format_value(148.06) == "148.06" and format_value(0.8114) == "0.8114"
    # PSNR (dB) always with two decimals
    assert format_value(25.0, "psnr") == "25.00" and format_value(100.0, "psnr_legacy") == "100.00"
    assert format_value(17.4219, "psnr_fg") == "17.42" and format_value(0.91234, "ssim") == "0.9123"
    assert rank_methods({"a": 0.8, "b": 0.8, "c": 0.7, "d": float("nan")}, higher=True) == {"a": 1, "b": 1, "c": 3}
    assert rank_methods({"a": 3.0, "b": 1.0}, higher=False) == {"b": 1, "a": 2}


def test_tables_mark_best_among_competitors_and_keep_unavailable(tmp_path):
    store = make_store(tmp_path / "results", profiles=(("standard", "1.0"), ("disco", "1.0")))
    tables = build_tables(store)
    assert [(t.profile, t.profile_version) for t in tables] == [("standard", "1.0"), ("disco", "1.0")]
    t = tables[0]
    # ranked by the primary metric (ssim here: the first preferred one every competing method has), ties share a
    # rank and go by name; the sanity row is last and unranked
    assert t.primary == "ssim" and t.ranks == {"alpha": 1, "beta": 1, "gamma": 3}
    assert t.methods == ["alpha", "beta", "gamma", "gt-oracle"] and t.sanity == {"gt-oracle"}
    assert t.ranking_text.startswith("Ranked by ssim ↑")
    best = {(m, k) for (m, k), c in t.cells.items() if c.best}
    assert best == {("alpha", "l1"), ("beta", "psnr"), ("alpha", "ssim"), ("beta", "ssim"), ("alpha", "fvd"),
                    ("beta", "l1_fg"), ("alpha", "l1_bg")}
    assert t.cell("beta", "fvd").status == "unavailable" and t.cell("beta", "fvd").note == FVD_NOTE
    assert t.unavailable() == {"fvd": FVD_NOTE, "lpips": LPIPS_NOTE}
    # the artifact comes from its own column of the store, not from the note's text
    assert t.unavailable_weights() == {"fvd": "fvd-i3d-400", "lpips": "lpips-alexnet-backbone"}
    assert t.whole_frame_metrics == ["l1", "psnr", "ssim", "lpips", "fvd"]
    assert t.region_metrics == ["l1_fg", "l1_bg"]
    assert build_tables(store, profiles="disco")[0].profile == "disco"
    # a newer run under another version of the profile is not comparable: it gets a table of its own
    make_store(store, profiles=(("standard", "2.0"),), methods=("beta",), day=2)
    split = build_tables(store, profiles="standard")
    assert [(t.profile_version, t.methods) for t in split] == [("1.0", ["alpha", "gamma", "gt-oracle"]),
                                                                ("2.0", ["beta"])]
    with pytest.raises(ValueError, match="no runs for dataset"):
        build_tables(store, datasets="nope")
    with pytest.raises(FileNotFoundError, match="no results store"):
        build_tables(tmp_path / "empty")


def test_report_content_in_markdown_and_html(tmp_path):
    store = make_store(tmp_path / "results", profiles=(("standard", "1.0"), ("disco", "1.0")))
    board = write_leaderboard(store, tmp_path / "report", strips=2)
    md = board.markdown_path.read_text()
    page = board.html_path.read_text()

    # Markdown: measured tables first, the published block after, never mixed
    measured, published = md.split("## Published numbers (not measured here)")
    assert "not measured by this toolkit" in published
    for method in ("alpha", "beta", "gamma", "gt-oracle (sanity)"):
        assert method in measured
    for header in ("l1 ↓", "psnr ↑", "ssim ↑", "lpips ↓", "fvd ↓", "l1_fg ↓", "l1_bg ↓"):
        assert header in measured
    assert "**Ranked by ssim ↑ (SSIM)" in measured
    lines = measured.splitlines()
    row = {m: next(line for line in lines if f"| {m} |" in line) for m in ("alpha", "beta", "gamma")}
    assert row["alpha"].startswith("| 1 | alpha |") and row["beta"].startswith("| 1 | beta |")
    assert row["gamma"].startswith("| 3 | gamma |")
    assert "**0.1000**" in row["alpha"] and "**25.00**" in row["beta"] and "| 18.00 |" in row["gamma"]
    assert "**0.8000**" in row["alpha"] and "**0.8000**" in row["beta"]
    assert "**" not in next(line for line in lines if line.startswith("| – | *gt-oracle"))
    assert row["beta"].count("unavailable") == 2 and row["alpha"].count("unavailable") == 1
    assert LPIPS_NOTE in measured and "toolkit weights fetch fvd-i3d-400" in measured
    assert "c0ffee123456" in measured and "abababababab" in measured and "48x64" in measured
    assert "alpha: defaults; beta: seed=3, steps=5" in measured  # each run's --method-option values
    assert "7 generated / 7 real" in measured
    for paper_method in ("MagicAnimate", "Animate Anyone", "Champ", "UniAnimate", "DisCo"):
        assert paper_method not in measured and paper_method in published
    assert "20.58 [I]" in published and "29.56† [U]" in published
    for fig in ("bars", "frames", "radar"):
        assert (tmp_path / "report" / "figures" / f"toyset-test-standard-v1.0-{fig}.png").is_file()
        assert f"figures/toyset-test-standard-v1.0-{fig}.png" in md

    # HTML: same content, structured
    doc = _parse(page)
    main = doc.tables["tbl-toyset-test-standard-v1_0-main"]
    assert [h["text"] for h in main["headers"][:2]] == ["#", "method"]
    metrics = [h["attrs"].get("data-metric") for h in main["headers"][2:]]
    assert metrics == ["l1", "psnr", "ssim", "lpips", "fvd"]
    assert [h["text"].split()[-1] for h in main["headers"][2:]] == ["↓", "↑", "↑", "↓", "↓"]
    assert list(main["rows"]) == ["alpha", "beta", "gamma", "gt-oracle"]       # rank order
    assert [cells[0]["text"] for cells in main["rows"].values()] == ["1", "1", "3", "–"]
    marked = {(m, metrics[i - 2]) for m, cells in main["rows"].items() for i, c in enumerate(cells)
              if i >= 2 and "best" in (c["attrs"].get("class") or "")}
    assert marked == {("alpha", "l1"), ("beta", "psnr"), ("alpha", "ssim"), ("beta", "ssim"), ("alpha", "fvd")}
    beta_fvd = main["rows"]["beta"][metrics.index("fvd") + 2]
    assert beta_fvd["text"] == "unavailable" and beta_fvd["attrs"]["title"] == FVD_NOTE
    assert float(main["rows"]["alpha"][2]["attrs"]["data-value"]) == pytest.approx(0.1)
    assert main["rows"]["beta"][metrics.index("psnr") + 2]["text"] == "25.00"
    region = doc.tables["tbl-toyset-test-standard-v1_0-region"]
    assert [h["attrs"].get("data-metric") for h in region["headers"][2:]] == ["l1_fg", "l1_bg"]
    assert "<code>toolkit weights fetch fvd-i3d-400</code>" in page
    assert "tbl-toyset-test-disco-v1_0-main" in doc.tables
    paper = " ".join(doc.paper_text)
    assert "not measured by this toolkit" in paper and "UniAnimate" in paper and "148.06" in paper
    for tid, t in doc.tables.items():
        assert set(t["rows"]) <= set(AGGREGATES), f"published rows leaked into measured table {tid}"
    # self-contained: figures embedded (bars, curves and, with three competing methods, a radar per table),
    # nothing fetched from the network
    assert page.count('src="data:image/png;base64,') == 6
    for tag, attrs in doc.tags:
        assert not (attrs.get("src") or "").startswith(("http:", "https:", "//")), (tag, attrs)
        assert tag != "link" and not (tag == "script" and attrs.get("src"))
    assert "no strips" in md  # the shard folder in the provenance does not exist: said, not silently skipped


def _tiny_shards(tmp: Path) -> Path:
    return make_shards(tmp, n_videos=2, n_frames=8, h=64, w=48, test_ids=("00001", "00002"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A tiny dataset and a results store made by the real harness (no weights: learned metrics unavailable)."""
    tmp = tmp_path_factory.mktemp("leaderboard")
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKIT_HOME", str(tmp / "empty_cache"))
    try:
        shards = _tiny_shards(tmp)
        for method in ("reference-copy", "gt-oracle", "pose-warp"):
            for profile in ("disco", "standard"):
                evaluate(shards, method=method, profile=profile, results=tmp / "results", progress=False)
    finally:
        mp.undo()
    return shards, tmp / "results"


def test_end_to_end_report_with_strips(evaluated, tmp_path):
    shards, results = evaluated
    board = write_leaderboard(results, tmp_path / "out", strips=1, strip_frames=6, tile_height=64)
    assert [(t.table.dataset, t.table.profile) for t in board.tables] == [("synthetic", "standard"),
                                                                          ("synthetic", "disco")]
    for report in board.tables:
        t = report.table
        assert t.primary == ("ssim_fg" if t.profile == "standard" else "ssim")
        ranked = sorted(("pose-warp", "reference-copy"), key=lambda m: (t.ranks[m], m))
        assert t.methods == ranked + ["gt-oracle"]
        first, second = (t.cell(m, t.primary).value for m in ranked)
        assert first >= second        # ssim: higher is better
        assert {m for m, c in t.unavailable().items()} == {"lpips", "fid", "fid_vid", "fvd"}
        # the harness stored each missing artifact in its own column; the fix comes from the weights registry
        assert t.unavailable_weights() == {"lpips": "lpips-alexnet-backbone" if t.profile == "standard"
                                           else "lpips-vgg16-backbone", "fid": "fid-inception-pytorch",
                                           "fid_vid": "fidvid-r3d50-kinetics", "fvd": "fvd-i3d-400"}
        # two competing methods: no radar (it would only picture their ranks), and the report says why
        assert [f.kind for f in report.figures] == ["bars", "curves"]
        assert any(n.startswith("radar figure not drawn: needs at least 3 competing methods") for n in report.notes)
        assert all(not t.cell("gt-oracle", k).best for k in t.metrics)
        # the bold one is really the best of the competitors, in the stored direction
        for k in t.metrics:
            vals = {m: t.cell(m, k).value for m in ("pose-warp", "reference-copy") if t.cell(m, k).ok}
            if vals:
                best = (max if higher_is_better(k) else min)(vals.values())
                assert {m for m in vals if t.cell(m, k).best} == {m for m, v in vals.items() if math.isclose(v, best)}
    md = board.markdown_path.read_text()
    # FID-VID's weights have no direct download: the fix says so instead of offering `toolkit weights fetch`
    assert "toolkit weights fetch fidvid-r3d50-kinetics" not in md
    assert "download resnet-50-kinetics.pth in a browser" in md and "toolkit weights fetch fvd-i3d-400" in md
    assert len(board.strips) == 1
    strip = board.strips[0]
    assert strip.video_id == "00001" and strip.n_frames == 6
    ranked = board.tables[0].table.methods[:2]
    assert strip.columns == ["reference", "driving pose", "ground truth", *ranked]
    copy_col = strip.columns.index("reference-copy")
    with Image.open(strip.gif) as gif:
        assert gif.n_frames == 6
    video = read_video(strip.mp4)
    assert video.shape[0] == 6 and video.shape[2] == GUTTER + 5 * 48 + 4 * 4
    sheet = np.asarray(Image.open(strip.png))
    assert sheet.shape[1] == video.shape[2] and sheet.shape[0] > HEADER + 64
    # the still is lossless: reference-copy, regenerated by the registered method, equals the reference tile in
    # every row, while the ground truth moves away from it
    rows = [HEADER + k * (64 + GAP) for k in range(4)]
    tile = lambda y, col: sheet[y:y + 64, GUTTER + col * (48 + GAP):GUTTER + col * (48 + GAP) + 48]  # noqa: E731
    assert all((tile(y, 0) == tile(y, copy_col)).all() for y in rows)
    assert not (tile(rows[-1], 0) == tile(rows[-1], 2)).all()
    assert "strips/synthetic-test/00001.png" in md and "strips/synthetic-test/00001.mp4" in md
    # the page shows the full-size GIF from strips/ beside it, with an embedded still if that folder is missing
    page = board.html_path.read_text()
    assert 'src="strips/synthetic-test/00001.gif"' in page and 'data-fallback="data:image/jpeg;base64,' in page
    assert 'src="data:image/gif;base64,' not in page


def test_compose_places_every_column():
    cols = [(name, np.full((3, 10, 8, 3), colour, np.uint8)) for name, colour in (("a", 50), ("b", 120), ("c", 200))]
    grid = compose(cols, ["0", "1", "2"])
    assert grid.shape[0] == 3 and grid.shape[1] % 2 == 0 and grid.shape[2] % 2 == 0
    for i, (_, frames) in enumerate(cols):
        x0 = GUTTER + i * (8 + 4)
        assert (grid[:, HEADER:HEADER + 10, x0:x0 + 8] == frames).all()


def test_paper_results_file_is_valid_and_sourced(tmp_path):
    rows = load_paper_results(DEFAULT_PAPER_RESULTS)
    assert {"DisCo", "MagicAnimate", "Animate Anyone", "Champ", "UniAnimate"} <= {r.method for r in rows}
    assert all(r.dataset == "tiktok" and r.protocol == "disco" and r.status in "VIU" and r.source for r in rows)
    uni = {r.metric: r.value for r in rows if r.method == "UniAnimate"}
    assert uni["psnr"] == 20.58 and uni["psnr_legacy"] == 30.77 and uni["l1"] == pytest.approx(2.66e-4)
    assert all(r.reported_as in ("PSNR", "PSNR*") for r in rows if r.metric.startswith("psnr"))
    bad = tmp_path / "bad.csv"
    bad.write_text("method,dataset,metric,value,paper,table,protocol,status\n"
                   "X,tiktok,psnr,abc,P,T,disco,U\nY,tiktok,psnr_star,1,P,T,disco,Q\n")
    with pytest.raises(PaperResultsInvalid) as err:
        load_paper_results(bad)
    msg = str(err.value)
    assert str(bad) in msg and "line 2: value 'abc'" in msg and "line 3: unknown metric 'psnr_star'" in msg
    assert "line 3: status 'Q'" in msg


def test_cli_writes_both_documents_and_reports_bad_input(tmp_path, capsys):
    store = make_store(tmp_path / "results")
    out = tmp_path / "reports"
    assert cli(["leaderboard", "--results", str(store), "--out", str(out), "--strips", "0"]) == 0
    assert (out / "leaderboard.md").is_file() and (out / "leaderboard.html").is_file()
    assert re.search(r"1 table\(s\), 3 figure\(s\), 0 strip\(s\), \d+ published row\(s\)", capsys.readouterr().out)
    assert cli(["leaderboard", "--results", str(tmp_path / "nothing"), "--out", str(out)]) == 1
    assert f"{tmp_path / 'nothing'}: no results store here" in capsys.readouterr().err
    assert cli(["leaderboard", "--results", str(store), "--shards", str(tmp_path / "missing/shards"),
                "--out", str(out)]) == 1
    assert "not a shard folder" in capsys.readouterr().err
    assert cli(["leaderboard", "--results", str(store), "--dataset", str(tmp_path / "missing/shards"),
                "--out", str(out)]) == 1
    assert "takes dataset names; give a shard folder as --shards" in capsys.readouterr().err


def test_cli_run_evaluates_registered_methods_then_renders(evaluated, tmp_path, monkeypatch, capsys):
    shards, _ = evaluated
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "empty_cache"))
    out = tmp_path / "reports"
    assert cli(["leaderboard", "--run", "--shards", str(shards), "--profile", "standard",
                "--results", str(tmp_path / "results"), "--out", str(out), "--strips", "0", "--no-paper"]) == 0
    printed, err = capsys.readouterr()
    for method in ("reference-copy", "gt-oracle", "pose-warp"):
        assert f"evaluated {method} (standard)" in printed
    # a trained method is skipped with the flag this command takes, not eval's --checkpoint RUN
    assert "unianimate: skipped (needs a trained model: add --checkpoint unianimate=RUN" in err
    md = (out / "leaderboard.md").read_text()
    from toolkit.harness.protocols import load_protocol

    version = load_protocol("standard").version
    assert f"## synthetic · test · standard v{version}" in md and "Published numbers" in md and "No published" in md
    assert cli(["leaderboard", "--run", "--dataset", "synthetic", "--results", str(tmp_path / "results"),
                "--out", str(out)]) == 1
    assert "--run needs --shards" in capsys.readouterr().err


def test_method_colours_are_stable_and_links_come_from_the_method_class(tmp_path, monkeypatch):
    from toolkit.package import METHODS
    from toolkit.report import figures, tables

    # a method's colour depends on its name only: the same in every report, whatever else is shown
    assert figures.method_colours(["alpha", "beta"])["alpha"] == figures.method_colours(["zeta", "alpha"])["alpha"]
    assert figures.method_colour("pose-warp") == figures.NAMED_COLOURS["pose-warp"]
    assert re.fullmatch(r"#[0-9A-F]{6}", figures.method_colour("predictions:mine"))
    assert len({figures.method_colour(m) for m in ("alpha", "beta", "gamma", "reference-copy", "pose-warp")}) == 5

    class Documented:
        paper = "https://arxiv.org/abs/0000.00000"
        code = "https://github.com/example/alpha"

    class Undocumented:        # no paper / code attributes at all: tolerated
        pass

    real_get = METHODS.get
    classes = {"alpha": Documented, "beta": Undocumented}
    monkeypatch.setattr(METHODS, "get", lambda name: classes[name] if name in classes else real_get(name))
    tables.method_links.cache_clear()
    try:
        store = make_store(tmp_path / "results")
        board = write_leaderboard(store, tmp_path / "report", strips=0, paper=None)
        md, page = board.markdown_path.read_text(), board.html_path.read_text()
    finally:
        tables.method_links.cache_clear()
    assert "| 1 | alpha ([paper](https://arxiv.org/abs/0000.00000) · [code](https://github.com/example/alpha)) |" in md
    assert "| 1 | beta |" in md and "| 3 | gamma |" in md
    assert 'href="https://github.com/example/alpha"' in page and page.count('class="ref"') == 4   # main + region
    assert f'style="background:{figures.method_colour("alpha")}"' in page


def test_strip_tiles_are_large_enough_to_judge(evaluated, tmp_path):
    from toolkit.report.strips import TILE_HEIGHT, make_strips

    assert TILE_HEIGHT >= 384
    shards, _ = evaluated            # 64 px frames: a tile is never larger than the frame itself
    strip = make_strips(shards, ["reference-copy", "ua-tiny-5steps"], tmp_path, n_videos=1, max_frames=2)[0]
    assert strip.tile_height == 64 and strip.preview.is_file()
    # a run's --name label with no predictions given is said to be one, not an "unknown method"
    assert any("ua-tiny-5steps: not shown (ua-tiny-5steps is a run label" in n for n in strip.notes), strip.notes


@pytest.mark.slow
def test_default_dataset_report_is_small_enough(tmp_path, monkeypatch):
    """The report of the default dataset (3 methods x 2 profiles, 3 strips of 48 frames at 384 px tiles) stays
    under 2 MB of HTML: the strips are files beside the page, only small stills are embedded."""
    shards = Path(__file__).resolve().parents[3] / "data" / "shards" / "synthetic"
    if not (shards / "videos.parquet").is_file():
        pytest.skip(f"{shards} not prepared (make prepare-data)")
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "empty_cache"))
    videos = Shards(shards).videos
    strip_videos = sorted(videos[videos.split == "test"].video_id)[:3]  # the three the strips show, no more to score
    for method in ("reference-copy", "gt-oracle", "pose-warp"):
        for profile in ("disco", "standard"):
            evaluate(shards, method=method, profile=profile, results=tmp_path / "results", progress=False,
                     video_ids=strip_videos)
    board = write_leaderboard(tmp_path / "results", tmp_path / "report", shards=shards)
    size = board.html_path.stat().st_size
    assert len(board.strips) == 3 and all(s.tile_height >= 384 for s in board.strips)
    assert size < 2 * 1024 * 1024, f"leaderboard.html is {size / 2**20:.2f} MB"
