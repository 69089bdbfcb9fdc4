"""User-given strings that become paths (issue: reliability, round two): a run name, a method name, a video id.

Each test is the reproduction that once wrote outside its folder or stopped a whole run.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.builders import make_shards
from toolkit.cli import main as cli
from toolkit.harness.store import load_results, write_run
from toolkit.paths import MAX_NAME_BYTES, safe_filename


@pytest.fixture
def shards(tmp_path):
    return make_shards(tmp_path, n_videos=2, n_frames=4, h=36, w=24, test_ids=("00002",))


def test_a_run_name_cannot_leave_the_results_store(shards, tmp_path):
    store = tmp_path / "deep" / "er" / "store"
    before = set(tmp_path.rglob("*"))
    assert cli(["eval", "--method", "reference-copy", "--name", "../../../../OUTSIDE/X", "--shards", str(shards),
                "--profile", "standard", "--results", str(store), "--quiet"]) == 0
    written = [p for p in set(tmp_path.rglob("*")) - before if p.is_file()]
    assert written and all(p.is_relative_to(store) for p in written)
    stored = load_results(store)
    assert len(stored) and set(stored.method) == {"../../../../OUTSIDE/X"}   # the label is kept, the file is safe
    assert [p.parent for p in store.rglob("*.parquet")] == [store / "runs"]
    assert sorted(p.name for p in (store / "runs").iterdir()) == [p.name for p in store.rglob("*.parquet")]


def test_safe_filename_keeps_plain_names_and_separates_the_rest():
    assert safe_filename("ua-tiny_2.step=6") == "ua-tiny_2.step=6"
    for bad in ("../x", "a/b", "..", ".hidden", "a\\b", "x\x00y", "é"):
        name = safe_filename(bad)
        assert "/" not in name and "\\" not in name and not name.startswith(".") and name.isascii()
    assert safe_filename("a/b") != safe_filename("a_b")            # cleaned names keep a hash of the original
    long = "v" * 300
    assert len(safe_filename(long).encode()) <= MAX_NAME_BYTES and safe_filename(long) != safe_filename(long + "w")
    with pytest.raises(ValueError, match="empty"):
        safe_filename("  ")


def test_the_store_refuses_an_unsafe_run_id(tmp_path):
    with pytest.raises(ValueError, match="not a safe file name"):
        write_run(tmp_path, "../escape", [], {})
    assert list(tmp_path.iterdir()) == []


def test_an_over_long_video_id_is_shortened_and_the_other_videos_prepared(tmp_path, capsys):
    from toolkit.prepare import PrepareOptions, prepare
    from toolkit.shards.reader import Shards
    from toolkit.sources import load_card
    from toolkit.video import write_video

    src = tmp_path / "src"
    frames = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    deep = src / ("a" * 200) / ("b" * 200)
    write_video(deep / "clip.mp4", frames, fps=10)            # id a..a__b..b__clip: 408 bytes
    write_video(src / "short.mp4", frames + 9, fps=10)
    report = prepare(load_card("folder"), src, tmp_path / "shards", PrepareOptions(size=32), progress=False)
    ids = set(Shards(tmp_path / "shards").videos.video_id)
    assert "short" in ids and len(ids) == 2 and not report.failed
    long_id = (ids - {"short"}).pop()
    assert long_id.startswith("a" * 20) and len(long_id.encode()) <= 200
    assert "video id shortened" in capsys.readouterr().err


def test_a_method_name_with_html_is_escaped_in_the_markdown_report(shards, tmp_path):
    from toolkit.harness.runner import evaluate
    from toolkit.report.leaderboard import write_leaderboard

    evaluate(shards, method="reference-copy", profile="standard", results=tmp_path / "store", progress=False,
             name="<img src=x onerror=alert(1)>|x")
    board = write_leaderboard(tmp_path / "store", tmp_path / "report", strips=0)
    md = board.markdown_path.read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;\\|x" in md
    assert "<img src=x" not in board.html_path.read_text()
