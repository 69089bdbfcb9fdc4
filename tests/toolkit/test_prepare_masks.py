"""`toolkit prepare --mask`: where each video's masks come from, provenance, defaults, errors and resuming.

A stand-in mask backend takes MediaPipe's place, so these run without the mediapipe
environment; tests/toolkit/annotate/test_mask_mediapipe.py runs the real one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest

from tests.helpers.builders import layout_card, make_tiktok_layout, make_video_folder
from toolkit import prepare as prep
from toolkit.annotate import backends
from toolkit.cli import main as cli
from toolkit.prepare import OPTIONS_FILE, PrepareOptions, default_mask, prepare
from toolkit.shards import writer
from toolkit.shards.reader import Shards


class StandInMask:
    """Marks the left half of every frame as person."""

    name = "mediapipe"
    calls = 0

    def __init__(self, **options) -> None:
        self.options = options

    def version(self) -> str:
        return "stand-in 1"

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        StandInMask.calls += 1
        masks = np.zeros(frames.shape[:3], np.uint8)
        masks[:, :, : frames.shape[2] // 2] = 255
        return masks


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(backends, "get_mask_backend", lambda name, **options: StandInMask(**options))
    monkeypatch.setattr(prep, "_BACKENDS", {})
    StandInMask.calls = 0


def _tiktok_one_without_masks(root):
    """Two TikTok-layout videos; 00002 ships no masks."""
    src = make_tiktok_layout(root, n_videos=2, n_frames=4, h=40, w=24)
    shutil.rmtree(src / "00002" / "masks")
    return src


def _opts(mask: str) -> PrepareOptions:
    return PrepareOptions(size=None, pose="synthetic", mask=mask)


def test_backend_masks_fill_only_videos_that_ship_none(stand_in, tmp_path):
    src, out = _tiktok_one_without_masks(tmp_path / "src"), tmp_path / "shards"
    prepare(layout_card(), src, out, _opts("mediapipe"), progress=False)
    shards = Shards(out)
    shipped, made = shards.masks("00001"), shards.masks("00002")
    assert shipped[:, 10:30, 6:18].min() == 255 and shipped[:, :, :6].max() == 0      # the release's rectangle
    assert made[:, :, :12].min() == 255 and made[:, :, 12:].max() == 0                # the backend's half
    assert writer.read_state(out, "00001")["mask_source"] == "source"
    assert writer.read_state(out, "00002")["mask_source"] == "mediapipe"
    assert shards.manifest["backends"]["mask"] == "mediapipe stand-in 1 (videos that ship masks keep them)"
    assert StandInMask.calls == 1                                                    # 00002's one chunk only


@pytest.mark.parametrize("mask, has", [("source", {"00001": True, "00002": False}),
                                       ("none", {"00001": False, "00002": False})])
def test_source_keeps_shipped_masks_and_none_drops_them(stand_in, tmp_path, mask, has):
    src, out = _tiktok_one_without_masks(tmp_path / "src"), tmp_path / "shards"
    prepare(layout_card(), src, out, _opts(mask), progress=False)
    videos = Shards(out).videos.set_index("video_id")
    assert videos.has_mask.to_dict() == has and StandInMask.calls == 0
    assert Shards(out).manifest["backends"]["mask"] == ("none" if mask == "none" else
                                                        "source (the masks a video ships, if any)")


def test_the_default_follows_the_pose_backend(stand_in, tmp_path, capsys):
    assert default_mask("mediapipe") == "mediapipe" and default_mask("dwpose") == "source"
    folder = make_video_folder(tmp_path / "src")
    (folder / "broken.mp4").unlink()
    out = tmp_path / "shards"
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32",
                "--quiet"]) == 0
    assert Shards(out).manifest["options"]["mask"] == "source" and not Shards(out).videos.has_mask.any()
    out2 = tmp_path / "shards2"
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out2), "--size", "32",
                "--mask", "mediapipe", "--quiet"]) == 0
    assert Shards(out2).videos.has_mask.all()


def test_unknown_or_unavailable_mask_backends_fail_before_writing(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="mask must be one of source, none, mediapipe"):
        PrepareOptions(mask="sam")
    folder = make_video_folder(tmp_path / "src")
    out = tmp_path / "shards"
    with pytest.raises(SystemExit):
        cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--mask", "sam"])
    capsys.readouterr()
    monkeypatch.setenv("TOOLKIT_MEDIAPIPE_PYTHON", str(tmp_path / "no-env" / "python"))
    monkeypatch.setattr(prep, "_BACKENDS", {})
    if importlib.util.find_spec("mediapipe") is not None:
        pytest.skip("mediapipe imports in this process, so the backend is always available")
    assert cli(["prepare", "--dataset", "folder", "--source", str(folder), "--out", str(out), "--size", "32",
                "--mask", "mediapipe", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "mask backend 'mediapipe' is unavailable" in err and "make mediapipe-env" in err
    assert "Traceback" not in err and not out.exists()


def test_a_folder_prepared_before_the_mask_option_resumes(stand_in, tmp_path):
    folder = make_video_folder(tmp_path / "src")
    out = tmp_path / "shards"
    prepare("folder", folder, out, PrepareOptions(size=32), progress=False)
    path = out / writer.STATE_DIR / OPTIONS_FILE
    old = json.loads(path.read_text())
    del old["mask"]
    path.write_text(json.dumps(old))                    # as written before the option existed
    assert prepare("folder", folder, out, PrepareOptions(size=32), progress=False).skipped == 3
    with pytest.raises(ValueError, match="mask: 'source' before, 'mediapipe' now"):
        prepare("folder", folder, out, PrepareOptions(size=32, mask="mediapipe"), progress=False)
