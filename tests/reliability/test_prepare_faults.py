"""Faults a user can make around `toolkit prepare` and `verify` (issue: reliability), one test per fault.

Each test is the reproduction that once failed: a changed or deleted source, a run
that failed on its options, a symlink loop, bad arguments, a killed run's
temporaries, a stray frames file, file modes under the user's umask.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from tests.helpers.builders import make_video_folder
from toolkit.cli import main as cli
from toolkit.io import stale_temporaries
from toolkit.prepare import PrepareOptions, prepare
from toolkit.shards.reader import Shards
from toolkit.shards.verify import verify
from toolkit.sources import discover, load_card
from toolkit.video import write_video

OPTS = PrepareOptions(size=32)
DEAD_PID = 4_194_400  # above Linux's largest pid_max: never a running process


def clip(path, seed, n=6):
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), fps=10)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    for k, name in enumerate(("a", "b", "c")):
        clip(src / f"{name}.mp4", k)
    return src


def test_changed_source_is_redone_and_gone_source_reported_then_pruned(folder, tmp_path):
    out = tmp_path / "shards"
    prepare("folder", folder, out, OPTS, progress=False)
    before = Shards(out).frames("b")
    os.utime(folder / "a.mp4", ns=(1, 1))            # touched, same content: kept
    clip(folder / "b.mp4", seed=99)                  # other content: redone
    (folder / "c.mp4").unlink()                      # gone: reported, kept until --prune
    assert any("source of c is gone" in p for p in verify(out))
    report = prepare("folder", folder, out, OPTS, progress=False)
    assert report.skipped == 1 and [r["video_id"] for r in report.records] == ["b"]
    assert report.gone == ["c"]
    assert not np.array_equal(Shards(out).frames("b"), before)
    assert "c" in set(Shards(out).videos.video_id)
    report = prepare("folder", folder, out, OPTS, progress=False, prune=True)
    assert report.gone == ["c"] and report.skipped == 2
    assert set(Shards(out).videos.video_id) == {"a", "b"}
    assert verify(out) == []


def test_a_changed_source_is_flagged_by_verify(folder, tmp_path):
    out = tmp_path / "shards"
    prepare("folder", folder, out, OPTS, progress=False)
    clip(folder / "a.mp4", seed=7)
    assert any("source of a changed" in p for p in verify(out))


def test_a_run_that_fails_on_its_options_leaves_the_folder_open(folder, tmp_path, capsys, monkeypatch):
    from toolkit import prepare as prep
    from toolkit.annotate import backends

    def missing(name):
        raise RuntimeError(f"pose backend {name}: weights missing (toolkit weights status)")

    monkeypatch.setattr(backends, "get_pose_backend", missing)
    monkeypatch.setattr(prep, "_BACKENDS", {})
    out = tmp_path / "shards"
    # a pose backend whose weights are missing fails before anything is written
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--pose", "dwpose",
                "--size", "32", "--quiet"]) == 1
    assert "error:" in capsys.readouterr().err and not out.exists()
    for bad in (["--size", "-5"], ["--size", "1"], ["--fps", "0"], ["--fps", "-5"]):
        assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), *bad,
                    "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and bad[0].strip("-") in err and "Traceback" not in err
        assert not out.exists()
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32",
                "--quiet"]) == 0


def test_a_folder_without_a_finished_video_takes_new_options(tmp_path):
    src, out = tmp_path / "src", tmp_path / "shards"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    assert prepare("folder", src, out, PrepareOptions(size=32), progress=False).failed
    clip(src / "broken.mp4", 0)
    report = prepare("folder", src, out, PrepareOptions(size=48), progress=False)
    assert not report.failed and Shards(out).frames("broken").shape[1:3] == (48, 48)
    with pytest.raises(ValueError, match="other options"):
        prepare("folder", src, out, PrepareOptions(size=32), progress=False)


def test_a_symlink_loop_is_walked_once(tmp_path):
    src = tmp_path / "src"
    clip(src / "a.mp4", 0)
    (src / "loop").symlink_to(src, target_is_directory=True)
    videos = discover(load_card("folder"), src)
    assert [v.video_id for v in videos] == ["a"]


def test_out_that_is_a_file_is_refused_before_work(folder, tmp_path, capsys):
    out = tmp_path / "shards.parquet"
    out.write_bytes(b"x")
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--quiet"]) == 1
    assert "is a file" in capsys.readouterr().err and out.read_bytes() == b"x"


def test_temporaries_of_a_killed_run_are_reported_and_removed(folder, tmp_path):
    out = tmp_path / "shards"
    prepare("folder", folder, out, OPTS, progress=False)
    stale = out / "frames" / "train" / f".a.parquet.{DEAD_PID}.x1y2.tmp"
    stale.write_bytes(b"\0" * 1000)
    live = out / "frames" / "train" / f".b.parquet.{os.getpid()}.x1y2.tmp"
    live.write_bytes(b"\0")
    assert stale_temporaries(out) == [stale]
    assert any("temporary file of an interrupted run" in p for p in verify(out))
    prepare("folder", folder, out, OPTS, progress=False)
    assert not stale.exists() and live.exists()


def test_verify_reports_a_stray_frames_file(folder, tmp_path):
    out = tmp_path / "shards"
    prepare("folder", folder, out, OPTS, progress=False)
    (out / "frames" / "train" / "stray.parquet").write_bytes((out / "frames" / "train" / "a.parquet").read_bytes())
    assert any("stray.parquet" in p and "does not list" in p for p in verify(out))


def test_shards_are_written_with_the_users_umask(folder, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "shards"
        prepare("folder", folder, out, OPTS, progress=False)
    finally:
        os.umask(old)
    for p in [out / "manifest.json", out / "videos.parquet", *out.glob("frames/*/*.parquet")]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_a_rerun_with_failed_videos_leaves_tables_and_manifest_unchanged(tmp_path):
    src, out = make_video_folder(tmp_path / "src"), tmp_path / "shards"
    first = prepare("folder", src, out, OPTS, progress=False)
    assert first.failed  # broken.mp4
    before = {name: (out / name).read_bytes() for name in ("videos.parquet", "manifest.json")}
    again = prepare("folder", src, out, OPTS, progress=False)
    assert [r["failure_reason"] for r in again.failed] == [r["failure_reason"] for r in first.failed]
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_full_disk_is_an_error_naming_the_file_and_finished_videos_stay(folder, tmp_path, capsys, monkeypatch):
    import errno

    from toolkit import io

    out = tmp_path / "shards"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32",
                "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "cannot write" in err and "Traceback" not in err
    monkeypatch.setattr(io.os, "fsync", real_fsync)
    report = prepare("folder", folder, out, OPTS, progress=False)
    assert report.skipped >= 1 and not report.failed


def write_vfr(path, pts_ms):
    """An H.264 mp4 whose frames are shown at the given times (milliseconds): a variable frame rate."""
    import fractions

    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for k, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_variable_frame_rate_keeps_its_presentation_times(tmp_path):
    import pyarrow.parquet as pq

    pts = [0, 40, 80, 200, 240, 400]
    write_vfr(tmp_path / "src" / "vfr.mp4", pts)
    out = tmp_path / "shards"
    prepare("folder", tmp_path / "src", out, OPTS, progress=False)
    table = pq.read_table(out / Shards(out).video("vfr").frames_file, columns=["timestamp", "source_frame"])
    assert np.allclose(table.column("timestamp").to_numpy(), np.array(pts) / 1000)
    assert table.column("source_frame").to_pylist() == list(range(6))


def test_a_frame_folder_keeps_the_numbers_in_its_file_names(tmp_path):
    import pyarrow.parquet as pq

    from toolkit.video import write_image

    rng = np.random.default_rng(0)
    for number in (0, 1, 2, 7, 8, 20):
        write_image(tmp_path / "src" / "clip" / f"frame_{number:04d}.png",
                    rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "shards"
    prepare("folder", tmp_path / "src", out, OPTS, progress=False)
    table = pq.read_table(out / Shards(out).video("clip").frames_file, columns=["timestamp", "source_frame"])
    assert table.column("source_frame").to_pylist() == [0, 1, 2, 7, 8, 20]
    fps = float(Shards(out).video("clip").source_fps)
    assert np.allclose(table.column("timestamp").to_numpy(), np.array([0, 1, 2, 7, 8, 20]) / fps)


def test_a_tiny_source_gets_a_sentence(tmp_path):
    clip(tmp_path / "src" / "a.mp4", 0)
    write_video(tmp_path / "src" / "dot.mp4", np.zeros((3, 2, 2, 3), np.uint8), fps=10)
    report = prepare("folder", tmp_path / "src", tmp_path / "shards", OPTS, progress=False)
    reasons = {r["video_id"]: r["failure_reason"] for r in report.failed}
    assert "2x2 pixels" in reasons["dot"] and "crop box" not in reasons["dot"]


def test_a_second_prepare_into_a_folder_being_written_is_refused(folder, tmp_path, capsys):
    import json
    import socket
    import subprocess
    import sys

    out = tmp_path / "shards"
    out.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": writer.pid, "host": socket.gethostname(), "since": "now"}))
        assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32"]) == 1
        assert f"being written by process {writer.pid}" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        writer.kill()
        writer.wait()
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32"]) == 0
    assert "taking over the lock" in capsys.readouterr().err and not (out / ".lock").exists()
    assert verify(out) == []
