"""The `mediapipe` mask backend: its worker protocol, and its masks on the real UBC-Fashion fixture clip.

The real-data tests skip when the fixture clip or the mediapipe environment is missing
(`make mediapipe-env`). The clip's white studio background gives an independent oracle
(tests/helpers/person_on_white.py) that the segmentation must agree with on every frame
tested.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from tests.helpers.person_on_white import iou, person_on_white
from toolkit.annotate import mediapipe_worker as mw
from toolkit.annotate.mask_mediapipe import binarize

CLIP = "musepose/ubc_fashion/91-3003CN5S.mp4"
STEP = 10           # every 10th frame of the clip's 346
SIZE = 256          # shorter side the backend sees (256 x 334)
MIN_IOU = 0.85


def test_binarize_cuts_at_the_threshold():
    prob = np.array([[0, 127, 128, 255]], np.uint8)
    assert binarize(prob).tolist() == [[0, 0, 255, 255]]
    assert binarize(prob, 0.9).tolist() == [[0, 0, 0, 255]]


def test_segmentation_reply_carries_two_arrays_and_a_plain_reply_one():
    raw = np.arange(2 * mw.N_RAW * 4, dtype=np.float32).reshape(2, mw.N_RAW, 4)
    seg = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    parts = [mw.array_to_bytes(raw), mw.array_to_bytes(seg)]
    buf = io.BytesIO()
    mw.write_message(buf, {"ok": True, "sizes": [len(p) for p in parts]}, b"".join(parts))
    mw.write_message(buf, {"ok": True}, parts[0])            # the version 1 reply, to a request without segmentation
    buf.seek(0)
    got = mw.split_payload(*mw.read_message(buf))
    assert len(got) == 2 and np.array_equal(got[0], raw) and np.array_equal(got[1], seg)
    (only,) = mw.split_payload(*mw.read_message(buf))
    assert np.array_equal(only, raw)
    with pytest.raises(mw.ProtocolError, match="do not add up"):
        mw.split_payload({"ok": True, "sizes": [len(parts[0]), 7]}, parts[0])


@pytest.fixture(scope="module")
def mediapipe_ready():
    from toolkit.annotate.mask_mediapipe import status

    ok, reason = status()
    if not ok:
        pytest.skip(f"mediapipe backend unavailable: {reason}")


@pytest.fixture(scope="module")
def clip_path(real_fixtures):
    path = real_fixtures / CLIP
    if not path.is_file():
        pytest.skip(f"fixture clip {path} not found")
    return path


@pytest.mark.slow
def test_masks_match_the_white_background_oracle_on_every_frame(clip_path, mediapipe_ready):
    from toolkit import video as vid
    from toolkit.annotate.mask_mediapipe import MediapipeMask
    from toolkit.annotate.pose_mediapipe import MediapipePose
    from toolkit.sources.base import stored_size

    info = vid.video_info(clip_path)
    index = list(range(0, info.n_frames, STEP))
    width, height = stored_size(info.width, info.height, SIZE)
    frames = np.stack([vid.resize(f, width, height)
                       for chunk in vid.iter_video(clip_path, index, chunk=64) for f in chunk])
    with MediapipePose() as pose:
        masker = MediapipeMask(pose=pose)
        keypoints, masks = masker.keypoints_and_masks(frames)
        assert "segmentation threshold=0.5" in masker.version() and "mediapipe=0.10.21" in masker.version()
        alone = pose(frames)
    assert masks.shape == frames.shape[:3] and masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 255}
    np.testing.assert_array_equal(keypoints, alone)      # the segmentation leaves the keypoints as they were
    scores = {i: iou(person_on_white(f), m > 0) for i, f, m in zip(index, frames, masks)}
    low = {i: round(s, 3) for i, s in scores.items() if s < MIN_IOU}
    assert not low, f"IoU below {MIN_IOU} on frames {low}"
    print(f"\nIoU with the oracle on {len(scores)} frames at {width}x{height}: min {min(scores.values()):.3f}, "
          f"mean {np.mean(list(scores.values())):.3f}")


@pytest.mark.slow
def test_fashion_prepare_writes_masks_the_harness_scores(clip_path, mediapipe_ready, tmp_path):
    from toolkit.cli import main as cli
    from toolkit.harness.runner import evaluate
    from toolkit.shards.reader import Shards

    src, out = tmp_path / "ubc", tmp_path / "shards"
    (src / "train").mkdir(parents=True)
    (src / "train" / clip_path.name).symlink_to(clip_path)
    assert cli(["prepare", "--dataset", "fashion", "--source", str(src), "--out", str(out), "--size", "64",
                "--fps", "2", "--quiet"]) == 0                       # no --mask: mediapipe, as the pose
    shards = Shards(out)
    row = shards.videos.set_index("video_id").loc[clip_path.stem]
    assert row.has_mask and row.has_keypoints and (row.width, row.height) == (64, 84)
    assert shards.manifest["options"]["mask"] == "mediapipe"
    assert shards.manifest["backends"]["mask"].startswith("mediapipe segmentation threshold=0.5 from holistic")
    masks = shards.masks(clip_path.stem)
    assert masks.shape == (row.n_frames, 84, 64) and (masks > 0).mean(axis=(1, 2)).min() > 0.1

    report = evaluate(out, method="reference-copy", split="train", profile="standard", write=False, progress=False)
    assert report.provenance["region_source"] == ["mask"]
    assert all(math.isfinite(report.aggregate[m]) for m in ("l1_fg", "ssim_fg", "l1_bg"))
