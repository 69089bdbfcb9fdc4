"""Bad input files that once ended in a raw traceback (issue: reliability, round two): each is now one sentence
naming the file, and nothing is written."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # for tests.toolkit.train.* (the toy recipe), as tests/toolkit/train/conftest.py does under `pytest`
    sys.path.insert(0, str(ROOT))

from tests.helpers.builders import make_shards  # noqa: E402
from toolkit.cli import main  # noqa: E402
from toolkit.shards.reader import Shards  # noqa: E402
from toolkit.video import encode_image, write_image  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("inputs"), n_videos=1, n_frames=4, h=48, w=40)


def huge_png(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height pixels (its CRC fixed)."""
    png = encode_image(np.zeros((4, 4, 3), np.uint8), "png")
    ihdr = png[12:29]                               # chunk type + 13 bytes of data
    body = b"IHDR" + struct.pack(">II", width, height) + ihdr[12:]
    return png[:8] + png[8:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


@pytest.mark.parametrize("case, message", [
    ("huge", "too many pixels to decode"),
    ("one-pixel", "1x1 pixels: too small to animate"),
])
def test_an_unusable_reference_image_is_one_sentence(shards, tmp_path, capsys, case, message):
    ref = tmp_path / "ref.png"
    if case == "huge":
        ref.write_bytes(huge_png(100_000, 100_000))
    else:
        write_image(ref, np.zeros((1, 1, 3), np.uint8))
    s = Shards(shards)
    np.save(tmp_path / "pose.npy", s.keypoints(s.videos.video_id[0]))
    out = tmp_path / "out.mp4"
    assert main(["animate", "--method", "pose-warp", "--reference", str(ref), "--pose", str(tmp_path / "pose.npy"),
                 "--no-align", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "cv2.error" not in err
    assert case != "huge" or str(ref) in err
    assert not out.exists()


def test_a_malformed_init_file_is_named(tmp_path, capsys):
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    (tmp_path / "shards").mkdir()
    assert main(["train", "--method", "tests.toolkit.train.toy_recipe:ToyRecipe", "--config", "tiny", "--shards",
                 str(tmp_path / "shards"), "--out", str(tmp_path / "run"), "--init", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "not a readable safetensors file" in err and "SafetensorError" not in err
