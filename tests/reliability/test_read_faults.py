"""Damaged shard files and bad evaluation arguments (issue: reliability): every error names the file, and nothing
already scored is thrown away."""

from __future__ import annotations

import pytest

from tests.helpers.builders import make_shards
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
    assert cli(["eval", "--method", "reference-copy", "--shards", str(shards), "--results", str(store),
                "--quiet"]) == 1
    assert "is a file" in capsys.readouterr().err
    results = tmp_path / "results"
    assert cli(["eval", "--method", "reference-copy", "--shards", str(shards), "--results", str(results),
                "--profile", "standard,nosuch", "--quiet"]) == 1
    assert "nosuch" in capsys.readouterr().err
    assert not (results / "runs").exists()


def test_a_corrupt_run_record_is_skipped_named_and_the_rest_reported(shards, tmp_path):
    from toolkit.harness.runner import evaluate

    results, out = tmp_path / "results", tmp_path / "report"
    for method in ("reference-copy", "pose-warp"):
        evaluate(shards, method=method, split="test", profile="standard", results=results, progress=False)
    bad = sorted((results / "provenance").glob("*reference-copy*.json"))[0]
    bad.write_text('{"created": "2026-')
    with pytest.warns(UserWarning, match=bad.stem):
        assert cli(["leaderboard", "--results", str(results), "--out", str(out), "--strips", "0",
                    "--no-paper"]) == 0
    page = (out / "leaderboard.md").read_text()
    assert "pose-warp" in page and "reference-copy" not in page


def corrupt_idat_keeping_crc(png: bytes) -> bytes:
    """Flip bytes inside the first IDAT chunk and recompute its CRC: the file passes PIL's verify(), not decoding."""
    import struct
    import zlib

    i = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[i:i + 4])[0]
    data = bytearray(png[i + 8:i + 8 + length])
    for k in range(2, min(len(data), 40)):
        data[k] ^= 0x5A
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(data)) & 0xFFFFFFFF)
    return png[:i + 8] + bytes(data) + crc + png[i + 12 + length:]


def test_a_png_that_only_fails_when_decoded_is_caught_before_scoring(tmp_path, capsys):
    from PIL import Image

    from toolkit.harness.predictions import PredictionsInvalid
    from toolkit.harness.runner import evaluate
    from toolkit.video import write_image

    shards = make_shards(tmp_path, n_videos=3, n_frames=6, h=36, w=24, test_ids=("00002", "00003"))
    preds = tmp_path / "preds"
    for video_id in ("00002", "00003"):
        for t, frame in enumerate(Shards(shards).frames(video_id)):
            write_image(preds / video_id / f"{t:04d}.png", frame)
    bad = preds / "00003" / "0002.png"
    bad.write_bytes(corrupt_idat_keeping_crc(bad.read_bytes()))
    with Image.open(bad) as im:
        im.verify()  # the old pre-check passes
    with pytest.raises(PredictionsInvalid, match="0002.png"):
        evaluate(shards, predictions=preds, split="test", profile="standard", write=False, progress=False)
    report = evaluate(shards, predictions=preds, split="test", profile="standard", write=False, progress=False,
                      allow_partial=True)
    assert report.provenance["n_videos"] == 1
    assert any("0002.png" in p for p in report.provenance["skipped"])
    assert "skipped:" in capsys.readouterr().err


def test_grayscale_and_rgba_predictions_are_read_as_rgb_and_said(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from toolkit.harness.runner import evaluate

    shards = make_shards(tmp_path, n_videos=3, n_frames=6, h=36, w=24, test_ids=("00002", "00003"))
    preds = tmp_path / "preds"
    for video_id, mode in (("00002", "L"), ("00003", "RGBA")):
        (preds / video_id).mkdir(parents=True)
        for t, frame in enumerate(Shards(shards).frames(video_id)):
            Image.fromarray(frame).convert(mode).save(preds / video_id / f"{t:04d}.png")
    report = evaluate(shards, predictions=preds, split="test", profile="standard", write=False, progress=False)
    assert report.provenance["n_videos"] == 2
    assert report.provenance["conversions"] == {"00002": "grayscale frames read as RGB",
                                                "00003": "RGBA (alpha dropped) frames read as RGB"}
    assert "note: 00002: grayscale" in capsys.readouterr().err
    assert np.isfinite(report.aggregate["psnr"])
