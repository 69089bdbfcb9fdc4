"""`prepare` end to end: shards readable by pandas, pyarrow and DuckDB; failures recorded; resume exact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.helpers.builders import layout_card, make_tiktok_layout, make_video_folder
from toolkit import prepare as prep
from toolkit.cli import main as cli
from toolkit.prepare import PrepareOptions, prepare
from toolkit.shards.reader import Shards
from toolkit.shards.schema import FRAMES_SCHEMA, ROW_GROUP_FRAMES
from toolkit.shards.verify import verify

GT = PrepareOptions(size=24, pose="synthetic", densepose="synthetic")


def _tiktok_card():
    return layout_card(("00003",))


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".state" not in p.parts}


def test_prepare_writes_annotated_shards_readable_three_ways(tmp_path):
    src = make_tiktok_layout(tmp_path / "src", n_videos=3, n_frames=10)
    out = tmp_path / "shards"
    report = prepare(_tiktok_card(), src, out, GT, progress=False)
    assert not report.failed and len(report.records) == 3
    shards = Shards(out)
    assert shards.video_ids("test") == ["00003"] and len(shards.video_ids("train")) == 2
    assert set(shards.videos.image_format) == {"png", "jpeg"}
    assert shards.videos.set_index("video_id").loc["00003", "image_format"] == "png"

    kp = shards.keypoints("00001")
    src_kp = np.load(src / "00001" / "keypoints.npy")
    np.testing.assert_allclose(kp[:, :17, :2], src_kp[:, :17, :2] * 0.5, atol=1e-4)
    iuv = shards.iuv("00003")
    assert iuv.shape == (10, 36, 24, 3) and iuv[..., 0].max() > 0
    assert shards.masks("00003").max() == 255

    # pandas
    frames = pd.read_parquet(out / "frames")
    assert len(frames) == 30 and list(frames.columns)[:2] == ["video_id", "frame_index"]
    assert frames.keypoints.iloc[0].shape == (399,)
    # pyarrow dataset, projecting one column
    table = ds.dataset(out / "frames", format="parquet").to_table(columns=["video_id", "keypoints"])
    assert table.num_rows == 30
    assert pq.read_schema(out / "frames" / "test" / "00003.parquet").remove_metadata().equals(
        FRAMES_SCHEMA.remove_metadata())
    # DuckDB
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(f"SELECT split, count(*) FROM read_parquet('{out}/frames/*/*.parquet') "
                      "GROUP BY split ORDER BY split").fetchall()
    assert rows == [("test", 10), ("train", 20)]
    n = duckdb.execute(f"SELECT count(*) FROM read_parquet('{out}/videos.parquet') WHERE status = 'ok'").fetchall()
    assert n == [(3,)]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backends"] == {"pose": "synthetic ground truth from the source",
                                    "densepose": "synthetic ground truth from the source",
                                    "mask": "source (the masks a video ships, if any)"}
    assert set(manifest["files"]) == {"videos.parquet", "frames/test/00003.parquet", "frames/train/00001.parquet",
                                      "frames/train/00002.parquet"}
    assert verify(out, deep=True, expected={"train": 2, "test": 1}) == []


def test_row_groups_bound_clip_reads(tmp_path):
    src = make_tiktok_layout(tmp_path / "src", n_videos=1, n_frames=150, h=16, w=16)
    out = tmp_path / "shards"
    prepare(_tiktok_card(), src, out, PrepareOptions(size=None), progress=False)
    f = pq.ParquetFile(out / "frames" / "train" / "00001.parquet")
    assert [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] == [64, 64, 22]
    span = 15 * 4 + 1  # 16 frames at stride 4
    for start in range(0, 150 - span + 1):
        groups = {i // ROW_GROUP_FRAMES for i in range(start, start + span, 4)}
        assert len(groups) <= 2
    got = Shards(out).frames("00001", [70, 3, 149])
    direct = Shards(out).frames("00001")
    assert np.array_equal(got, direct[[70, 3, 149]])


def test_failures_are_recorded_and_the_run_goes_on(tmp_path, capsys):
    src = make_video_folder(tmp_path / "src")
    (src / "empty.mp4").write_bytes(b"")
    out = tmp_path / "shards"
    code = cli(["prepare", "--dataset", "folder", "--source", str(src), "--out", str(out), "--size", "32", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "empty.mp4" in err and "2 video(s) failed" in err
    # no --pose and the folder card names none: say so, and name the backends that would add keypoints
    assert "the shards will have no keypoints" in err and "--pose mediapipe" in err and "--pose dwpose" in err
    videos = Shards(out).videos.set_index("video_id")
    assert videos.loc["broken", "status"] == "failed" and "not a readable video" in videos.loc["broken", "failure_reason"]
    assert videos.loc["empty", "failure_reason"].endswith("file is empty (0 bytes)")
    assert (videos.loc[["train__a", "test__b", "clip"], "status"] == "ok").all()
    problems = verify(out)
    assert any("broken.mp4" in p for p in problems)


def test_an_explicit_pose_choice_gets_no_keypoints_note(tmp_path, capsys):
    src = make_video_folder(tmp_path / "src")
    cli(["prepare", "--dataset", "folder", "--source", str(src), "--out", str(tmp_path / "shards"), "--size", "32",
         "--quiet", "--pose", "none"])
    assert "no keypoints" not in capsys.readouterr().err


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    src = make_tiktok_layout(tmp_path / "src", n_videos=4, n_frames=6)
    full = tmp_path / "full"
    prepare(_tiktok_card(), src, full, GT, progress=False)

    part = tmp_path / "part"
    real = prep.process_video
    calls = []

    def flaky(sv, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(sv.video_id)
        return real(sv, *a, **k)

    monkeypatch.setattr(prep, "process_video", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare(_tiktok_card(), src, part, GT, progress=False)
    monkeypatch.setattr(prep, "process_video", real)
    assert not (part / "manifest.json").exists()
    report = prepare(_tiktok_card(), src, part, GT, progress=False)
    assert report.skipped == 2 and len(report.records) == 2
    a, b = _files(full), _files(part)
    assert a.keys() == b.keys()
    for name in a:
        if name != "manifest.json":
            assert a[name] == b[name], name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (full, part))
    assert ma["files"] == mb["files"] and ma["counts"] == mb["counts"]


def test_other_options_in_the_same_folder_are_refused(tmp_path):
    src = make_tiktok_layout(tmp_path / "src", n_videos=1, n_frames=3)
    out = tmp_path / "shards"
    prepare(_tiktok_card(), src, out, GT, progress=False)
    with pytest.raises(ValueError, match="other options.*size"):
        prepare(_tiktok_card(), src, out, PrepareOptions(size=32, pose="synthetic", densepose="synthetic"),
                progress=False)


def test_verify_catches_a_changed_file(tmp_path):
    src = make_tiktok_layout(tmp_path / "src", n_videos=2, n_frames=3)
    out = tmp_path / "shards"
    prepare(_tiktok_card(), src, out, GT, progress=False)
    target = out / "frames" / "train" / "00001.parquet"
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    problems = verify(out)
    assert any("00001.parquet" in p and "sha256" in p for p in problems)
    assert cli(["verify", str(out), "--no-expected"]) == 1


def test_workers_give_the_same_bytes(tmp_path):
    src = make_video_folder(tmp_path / "src")
    (src / "broken.mp4").unlink()
    one, two = tmp_path / "one", tmp_path / "two"
    prepare("folder", src, one, PrepareOptions(size=32), workers=1, progress=False)
    prepare("folder", src, two, PrepareOptions(size=32), workers=2, progress=False)
    a, b = _files(one), _files(two)
    assert {k: v for k, v in a.items() if k != "manifest.json"} == {k: v for k, v in b.items() if k != "manifest.json"}


def test_info_cli(tmp_path, capsys):
    src = make_tiktok_layout(tmp_path / "src", n_videos=2, n_frames=3)
    out = tmp_path / "shards"
    prepare(_tiktok_card(), src, out, GT, progress=False)
    assert cli(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "train" in text and "test" in text and "keypoints,iuv,mask" in text
