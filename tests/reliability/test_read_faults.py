"""Damaged shard files and bad evaluation arguments (issue: reliability): every error names the file, and nothing
already scored is thrown away."""

from __future__ import annotations

import pytest

from conftest import make_shards
from toolkit.cli import main as cli
from toolkit.data import ClipDataset
from toolkit.shards.reader import ShardError, Shards
from toolkit.shards.verify import verify


@pytest.fixture
def shards(tmp_path):
    return make_shards(tmp_path, n_videos=2, n_frames=6, h=36, w=24, test_ids=("00002",))


def truncate(path, keep=100):
    path.write_bytes(path.read_bytes()[:keep])


def test_a_truncated_frames_file_is_named_by_the_reader_and_the_dataset(shards):
    path = shards / Shards(shards).video("00001").frames_file
    truncate(path)
    with pytest.raises(ShardError, match=str(path)):
        Shards(shards).frames("00001")
    with pytest.raises(ShardError, match="00001.parquet"):
        ClipDataset(shards, n_frames=2, stride=1, size=24, videos=["00001"])[0]


def test_a_truncated_manifest_or_videos_table_is_a_verify_problem_naming_it(shards):
    truncate(shards / "manifest.json", 20)
    problems = verify(shards)
    assert any("manifest.json" in p and "not valid JSON" in p for p in problems)
    (shards / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ShardError, match="JSON object"):
        Shards(shards).manifest
    truncate(shards / "videos.parquet")
    problems = verify(shards)
    assert any("videos.parquet" in p and "not a readable Parquet file" in p for p in problems)


def test_eval_checks_its_arguments_before_scoring(shards, tmp_path, capsys):
    store = tmp_path / "results.json"
    store.write_text("{}")
    assert cli(["eval", "--method", "reference-copy", "--dataset", str(shards), "--results", str(store),
                "--quiet"]) == 1
    assert "is a file" in capsys.readouterr().err
    results = tmp_path / "results"
    assert cli(["eval", "--method", "reference-copy", "--dataset", str(shards), "--results", str(results),
                "--profile", "standard,nosuch", "--quiet"]) == 1
    assert "nosuch" in capsys.readouterr().err
    assert not (results / "runs").exists()
