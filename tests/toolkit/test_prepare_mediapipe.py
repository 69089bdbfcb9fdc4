"""`toolkit prepare --pose mediapipe` on the real fixture photos and on a clip made from one: keypoints land in shards."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.keypoints import INDEX
from toolkit.cli import main as cli
from toolkit.shards.reader import Shards
from toolkit.video import read_image, resize, write_video


@pytest.fixture(scope="module")
def mediapipe_ready():
    from toolkit.annotate.pose_mediapipe import status

    ok, reason = status()
    if not ok:
        pytest.skip(f"mediapipe backend unavailable: {reason}")


def _y(kp: np.ndarray, *names: str) -> float:
    pts = [kp[INDEX[n], 1] for n in names if kp[INDEX[n], 2] > 0.5]
    assert pts, f"none of {names} found"
    return float(np.mean(pts))


@pytest.mark.slow
def test_prepare_fixture_photos_and_a_clip_with_mediapipe(real_fixtures, mediapipe_ready, tmp_path):
    src = tmp_path / "src"
    photos = sorted((real_fixtures / "unianimate" / "images").glob("*.jpg"))
    for p in photos:  # each photo is a one-frame video (a folder of one image); links, not copies
        (src / "photos" / p.stem).mkdir(parents=True)
        (src / "photos" / p.stem / "0000.jpg").symlink_to(p)
    img = resize(read_image(photos[1]), 376, 552)
    clip = np.stack([np.roll(img, s, axis=1) for s in (0, 4, 8, 12, 16, 20)])
    clip[:, :, :20] = clip[0, 0, 0]
    write_video(src / "test" / "pan.mp4", clip, fps=25)

    out = tmp_path / "shards"
    code = cli(["prepare", "--dataset", "folder", "--source", str(src), "--out", str(out), "--size", "384",
                "--pose", "mediapipe", "--quiet"])
    assert code == 0
    shards = Shards(out)
    assert shards.manifest["backends"]["pose"].startswith("mediapipe")
    videos = shards.videos.set_index("video_id")
    assert videos.has_keypoints.all() and len(videos) == len(photos) + 1
    for vid_id in videos.index:
        kp = shards.keypoints(vid_id)
        h = int(videos.loc[vid_id, "height"])
        for frame in kp:
            head, shoulders = _y(frame, "nose", "left_eye", "right_eye"), _y(frame, "left_shoulder", "right_shoulder")
            hips = _y(frame, "left_hip", "right_hip")
            assert head < shoulders < hips < h * 1.15, vid_id
        boxes = shards.read(vid_id, columns=["person_box"]).column("person_box").to_pylist()
        assert all(b is not None for b in boxes)
    pan = shards.keypoints("test__pan")
    assert pan.shape[0] == 6 and (pan[-1, :17, 0] > 0).any()
