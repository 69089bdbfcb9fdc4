"""The rendered leaderboard.html in headless Chromium: no console errors, tables and figures visible, sorting works,
and every ranked method's stored predictions play in the synchronised players without horizontal overflow.

Needs a Chromium binary (Debian: `apt-get install -y chromium`; or set $CHROMIUM); skipped without one.

The screenshot test can also shoot a report of your choice and keep the picture, and the players test
check that every method ranked in its standard table plays (how the README's docs/img/leaderboard.png is
made and checked, from a report of the default dataset):

    make train-tiny && make leaderboard      # writes reports/leaderboard.html
    LEADERBOARD_PAGE=reports/leaderboard.html LEADERBOARD_SCREENSHOT=docs/img/leaderboard.png \
        .venv/bin/pytest -q -s tests/toolkit/report/test_leaderboard_browser.py -k "screenshot or plays"
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.builders import make_shards
from tests.helpers.results_store import make_store
from toolkit.harness.runner import evaluate
from toolkit.report.leaderboard import write_leaderboard

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic", "--hide-scrollbars"]


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    pytest.skip("no Chromium found (install with `apt-get install -y chromium` or set $CHROMIUM)")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    store = make_store(tmp / "results", profiles=(("standard", "1.0"), ("disco", "1.0")))
    board = write_leaderboard(store, tmp / "report", strips=0)
    return board.html_path


def _page_to_shoot(page: Path) -> Path:
    """$LEADERBOARD_PAGE (a report you rendered, e.g. reports/leaderboard.html), else the test's own page."""
    chosen = os.environ.get("LEADERBOARD_PAGE")
    if not chosen:
        return page
    path = Path(chosen).resolve()
    if not path.is_file():
        pytest.fail(f"LEADERBOARD_PAGE={chosen}: no such file")
    return path


def test_page_loads_without_errors_and_everything_is_visible(page, tmp_path):
    url = page.as_uri() + "#sort=tbl-toyset-test-standard-v1_0-main:psnr:asc"
    res = _run(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
               tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    body = re.search(r"<body([^>]*)>", res.stdout).group(1)
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', body))
    assert attrs["data-ready"] == "1" and attrs["data-js-errors"] == "0"
    n_images = res.stdout.count("<img ")
    assert n_images == 6 and attrs["data-images-ok"] == str(n_images) and attrs["data-images-broken"] == "0"
    n_tables = res.stdout.count("<table ")
    assert n_tables >= 4 and attrs["data-tables-visible"] == str(n_tables)
    # the page's own script sorted the table from the address: psnr ascending, the sanity row stays last
    table = res.stdout[res.stdout.index('id="tbl-toyset-test-standard-v1_0-main"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r'data-method="([^"]+)"', table) == ["gamma", "alpha", "beta", "gt-oracle"]
    assert 'aria-sort="ascending"' in table
    res = _run(["--virtual-time-budget=5000", "--dump-dom",
                page.as_uri() + "#sort=tbl-toyset-test-standard-v1_0-main:psnr"], tmp_path / "profile2")
    table = res.stdout[res.stdout.index('id="tbl-toyset-test-standard-v1_0-main"'):]
    assert re.findall(r'data-method="([^"]+)"', table[:table.index("</table>")]) == ["beta", "alpha", "gamma",
                                                                                     "gt-oracle"]
    # without a #sort the rows are in rank order (primary metric ssim: alpha and beta tie)
    res = _run(["--virtual-time-budget=5000", "--dump-dom", page.as_uri()], tmp_path / "profile3")
    table = res.stdout[res.stdout.index('id="tbl-toyset-test-standard-v1_0-main"'):]
    assert re.findall(r'data-method="([^"]+)"', table[:table.index("</table>")]) == ["alpha", "beta", "gamma",
                                                                                     "gt-oracle"]


def test_screenshot_shows_the_report(page, tmp_path):
    shot = tmp_path / "leaderboard.png"
    target = _page_to_shoot(page)
    res = _run(["--window-size=1280,1600", "--virtual-time-budget=5000", f"--screenshot={shot}", target.as_uri()],
               tmp_path / "profile")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    keep = os.environ.get("LEADERBOARD_SCREENSHOT")
    if keep:  # written even if a check below fails, so the picture can be looked at
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 20  # text, tables and figures, not a blank page
    # the best-value highlight colour (#dafbe1) is on screen
    assert (np.abs(img - np.array([0xDA, 0xFB, 0xE1])).sum(axis=2) < 6).sum() > 500


@pytest.fixture(scope="module")
def watched(tmp_path_factory) -> Path:
    """A report of real runs (their predictions stored by toolkit eval), with one strip of players; or
    $LEADERBOARD_PAGE, e.g. the report `make train-tiny && make leaderboard` writes."""
    chosen = os.environ.get("LEADERBOARD_PAGE")
    if chosen:
        if not Path(chosen).is_file():
            pytest.fail(f"LEADERBOARD_PAGE={chosen}: no such file")
        return Path(chosen).resolve()
    tmp = tmp_path_factory.mktemp("watch")
    mp = pytest.MonkeyPatch()
    mp.setenv("TOOLKIT_HOME", str(tmp / "empty_cache"))
    try:
        shards = make_shards(tmp, n_videos=2, n_frames=8, h=64, w=48, test_ids=("00001",))
        for method in ("reference-copy", "gt-oracle", "pose-warp"):
            evaluate(shards, method=method, profile="standard", results=tmp / "results", progress=False)
        board = write_leaderboard(tmp / "results", tmp / "report", strips=1, strip_frames=6, tile_height=64)
    finally:
        mp.undo()
    return board.html_path


def test_every_ranked_method_plays_and_the_page_fits_1400_px(watched, tmp_path):
    _chromium()
    # a probe appended to a copy of the page writes the document's width where --dump-dom shows it
    probe = ("<script>window.addEventListener('load', function () { setTimeout(function () {"
             "document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);"
             "document.body.setAttribute('data-client-width', document.documentElement.clientWidth);"
             "}, 1500); });</script>")
    copy = watched.with_name(".probe.html")
    copy.write_text(watched.read_text().replace("</body>", probe + "</body>"))
    res = _run(["--enable-logging=stderr", "--v=0", "--window-size=1400,1000", "--virtual-time-budget=6000",
                "--dump-dom", copy.as_uri()], tmp_path / "profile")
    assert res.returncode == 0, res.stderr[-2000:]
    assert [line for line in res.stderr.splitlines() if ":CONSOLE" in line] == []
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", res.stdout).group(1)))
    assert attrs["data-js-errors"] == "0" and attrs["data-client-width"] == "1400"
    assert int(attrs["data-scroll-width"]) <= 1400, attrs
    assert attrs["data-videos"] == attrs["data-videos-ok"] and int(attrs["data-videos"]) >= 3 + 2 * 2
    table = res.stdout[re.search(r'id="tbl-synthetic-test-standard-[^"]*-main"', res.stdout).start():]
    ranked = re.findall(r'<tr class="method" data-method="([^"]+)"', table[:table.index("</table>")])
    if os.environ.get("LEADERBOARD_PAGE"):  # a report of your own: print what it ranks
        print("ranked in the standard table:", ", ".join(ranked))
    else:
        assert sorted(ranked) == ["pose-warp", "reference-copy"]
    videos = [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in re.findall(r"<video[^>]*>", res.stdout)]
    for method in ranked:
        shown = [v for v in videos if v.get("data-method") == method and v["class"] == "gen"]
        assert shown, f"{method}: no player"
        for gen in shown:  # one per strip
            assert gen["data-state"] == "ok" and int(gen["data-ready-state"]) >= 1 and float(gen["data-duration"]) > 0
            assert gen["data-paused"] == "0"     # the players start playing together
            assert "-players/" in gen["src"]
    assert "not shown" not in res.stdout
    copy.unlink()
