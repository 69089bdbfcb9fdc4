"""`toolkit eval` keeps what a method generated: layout, checksums, atomicity, and an exact re-score."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.helpers.builders import make_shards
from toolkit.cli import main as cli
from toolkit.harness.method import Conditions, Method
from toolkit.harness.runner import evaluate
from toolkit.harness.saved_predictions import video_file_name
from toolkit.io import sha256_file
from toolkit.video import read_video


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("saved"), n_videos=3, n_frames=8, h=64, w=48,
                       test_ids=("00002", "00003"))


@pytest.fixture(autouse=True)
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "empty_cache"))


def _only_run(results) -> dict:
    (prov,) = [json.loads(p.read_text()) for p in (results / "provenance").glob("*.json")]
    return prov


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_eval_keeps_every_video_and_rescoring_them_gives_the_same_numbers(shards, tmp_path, capsys):
    results = tmp_path / "results"
    assert cli(["eval", "--method", "pose-warp", "--shards", str(shards), "--results", str(results),
                "--save-frames", "--quiet"]) == 0
    assert "predictions kept in" in capsys.readouterr().out
    prov = _only_run(results)
    saved = prov["saved_predictions"]
    run = results / "predictions" / prov["run_id"]
    assert saved["folder"] == f"predictions/{prov['run_id']}" and run.is_dir()
    assert sorted(p.name for p in (run / "videos").iterdir()) == ["00002.mp4", "00003.mp4"]
    assert sorted(p.name for p in (run / "frames" / "00002").iterdir())[:2] == ["000000.png", "000001.png"]
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert files == sorted(saved["sha256"]) and len(files) == 2 + 2 * 8
    assert all(sha256_file(run / f) == h for f, h in saved["sha256"].items())
    assert not [p for p in (results / "predictions").iterdir() if p.name.startswith(".")]   # no partial folder
    # the stored video decodes to exactly the frames the method made
    from toolkit.harness.registry import get_method
    from toolkit.harness.scoring import conditions_for
    from toolkit.shards.reader import Shards

    _, cond = conditions_for(Shards(shards), "00002")
    assert (read_video(run / "videos" / "00002.mp4") == get_method("pose-warp").generate(cond)).all()

    method = pd.read_parquet(results / "runs")
    for folder in ("videos", "frames"):
        again = evaluate(shards, predictions=run / folder, results=tmp_path / f"rescored-{folder}", progress=False)
        ref = evaluate(shards, method="pose-warp", write=False, progress=False)
        assert _same(again.aggregate, ref.aggregate)
        # every per-frame value too, not only the means
        rows = pd.DataFrame(again.rows).query("level == 'frame'").set_index(["video_id", "frame_index", "metric"])
        orig = method.query("level == 'frame'").set_index(["video_id", "frame_index", "metric"])
        assert np.array_equal(rows.value.sort_index().to_numpy(), orig.value.sort_index().to_numpy(), equal_nan=True)
        assert again.provenance["saved_predictions"] is None     # a predictions run saves nothing itself
        assert not (tmp_path / f"rescored-{folder}" / "predictions").exists()


def test_write_false_and_no_save_predictions_write_no_files(shards, tmp_path, capsys):
    rep = evaluate(shards, method="reference-copy", results=tmp_path, write=False, progress=False)
    assert rep.provenance["saved_predictions"] is None and not tmp_path.joinpath("predictions").exists()
    assert not (tmp_path / "runs").exists()
    rep = evaluate(shards, method="gt-oracle", results=tmp_path, save_predictions=False, progress=False)
    assert rep.provenance["saved_predictions"] is None
    assert "--no-save-predictions" in rep.provenance["saved_predictions_note"]
    assert not (tmp_path / "predictions").exists()
    with pytest.raises(ValueError, match="write=True"):
        evaluate(shards, method="gt-oracle", results=tmp_path, write=False, save_predictions=True, progress=False)
    assert cli(["eval", "--predictions", str(tmp_path), "--shards", str(shards), "--results", str(tmp_path),
                "--save-frames"]) != 0
    assert "a --predictions run generates nothing to save" in capsys.readouterr().err


def test_a_video_id_that_is_not_a_safe_file_name_is_never_a_path():
    assert video_file_name("00001") == "00001"
    for bad in ("../x", "a/b", "..", ".", ".hidden", ""):
        with pytest.raises(ValueError, match="not a safe file name"):
            video_file_name(bad)


def test_strips_show_unregistered_methods_from_their_stored_predictions(shards, tmp_path):
    """A method the registry cannot rebuild (like a learned one run from a checkpoint) is shown from what its run
    stored; a run that stored nothing says why and which eval to rerun."""
    from toolkit.report.leaderboard import write_leaderboard

    class Mirror(Method):
        name = "mirror"

        def generate(self, cond: Conditions) -> np.ndarray:
            return np.ascontiguousarray(np.repeat(cond.reference[None, :, ::-1], cond.n_frames, axis=0))

    results = tmp_path / "results"
    evaluate(shards, method=Mirror(), results=results, progress=False)
    evaluate(shards, method=Mirror(), name="mirror-unsaved", results=results, save_predictions=False, progress=False)
    board = write_leaderboard(results, tmp_path / "report", strips=1, strip_frames=4, tile_height=64, paper=None)
    (strip,) = board.strips
    cols = {c.label: c for c in strip.players}
    assert cols["mirror"].source == "stored" and cols["mirror"].video.is_file() and cols["mirror"].error.is_file()
    assert (read_video(cols["mirror"].video).shape[0]) == 4
    assert cols["mirror-unsaved"].video is None
    note = cols["mirror-unsaved"].note
    assert "--no-save-predictions" in note and "rerun `toolkit eval --method" in note
    assert "(predictions are saved by default)" in note
    page = board.html_path.read_text()
    assert 'data-method="mirror"' in page and "not shown: no stored predictions" in page
