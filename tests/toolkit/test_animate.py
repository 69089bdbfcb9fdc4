"""`toolkit animate`: a reference image file or shard frame and a driving pose sequence in, a video out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.builders import make_shards
from toolkit.animate import Driving, build_conditions, even_size
from toolkit.cli import main
from toolkit.video import read_video, write_image


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("animate"), n_videos=2, n_frames=6, h=48, w=40)


def _animate(*args: str) -> int:
    return main(["animate", "--method", "pose-warp", *args])


def test_even_size():
    assert even_size(1101, 750) == (1100, 750)
    assert even_size(48, 41) == (48, 40)
    assert even_size(2, 2) == (2, 2)


def test_image_reference_and_keypoints_file_make_a_video(shards, tmp_path):
    from toolkit.shards.reader import Shards

    s = Shards(shards)
    vid = s.videos.video_id[0]
    frame = s.frames(vid, [0])[0]
    write_image(tmp_path / "ref.png", frame)
    np.save(tmp_path / "pose.npy", s.keypoints(vid))
    out = tmp_path / "out.mp4"
    assert _animate("--reference", str(tmp_path / "ref.png"), "--pose", str(tmp_path / "pose.npy"), "--no-align",
                    "--frames", "4", "--fps", "10", "--out", str(out)) == 0
    video = read_video(out)
    assert video.shape == (4, 48, 40, 3)
    err = np.abs(video[0].astype(int) - frame.astype(int)).mean()  # the first pose is the reference's own
    assert err < 0.5 * np.abs(video[0].astype(int) - frame[::-1, ::-1].astype(int)).mean()


def test_an_odd_sized_reference_loses_its_last_row_and_column(shards, tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "ref.png", rng.integers(0, 255, (47, 39, 3), dtype=np.uint8))
    from toolkit.shards.reader import Shards

    s = Shards(shards)
    kp = s.keypoints(s.videos.video_id[0])[:3] * np.array([39 / 40, 47 / 48, 1], np.float32)
    np.save(tmp_path / "pose.npy", kp)
    out = tmp_path / "out.mp4"
    assert _animate("--reference", str(tmp_path / "ref.png"), "--pose", str(tmp_path / "pose.npy"), "--no-align",
                    "--out", str(out)) == 0
    assert read_video(out).shape == (3, 46, 38, 3)
    assert "39x47; the video is 38x46" in capsys.readouterr().out


def test_conditions_keep_keypoints_in_reference_pixels_when_cropped():
    kp = np.zeros((2, 133, 3), np.float32)
    kp[..., :2] = 20.0
    kp[..., 2] = 1.0
    cond = build_conditions(np.zeros((41, 33, 3), np.uint8), None, Driving(kp, (41, 33), 25.0, "x"), align=False)
    assert (cond.height, cond.width) == (40, 32) and cond.reference.shape == (40, 32, 3)
    np.testing.assert_array_equal(cond.keypoints, kp)


def test_shard_ids_for_reference_and_pose(shards, tmp_path):
    from toolkit.shards.reader import Shards

    ids = list(Shards(shards).videos.video_id)
    out = tmp_path / "out.mp4"
    assert _animate("--shards", str(shards), "--reference", f"{ids[0]}@2", "--pose", ids[1], "--out", str(out)) == 0
    assert read_video(out).shape == (6, 48, 40, 3)


@pytest.mark.parametrize(("args", "message"), [
    (["--reference", "missing.png", "--pose", "p.npy"], "missing.png: no such image file"),
    (["--reference", "REF", "--pose", "missing.npy"], "missing.npy: no such file"),
    (["--reference", "REF", "--pose", "BAD"], "expected keypoints of shape"),
    (["--reference", "REF", "--pose", "VIDEO"], "name a backend with --pose-backend"),
    (["--reference", "REF", "--pose", "POSE", "--frames", "99", "--no-align"], "has only 6 frames"),
    (["--reference", "REF", "--pose", "POSE"], "pose alignment needs the reference's keypoints"),
    (["--reference", "REF", "--pose", "POSE", "--frames", "0"], "--frames must be >= 1"),
    (["--reference", "REF", "--pose", "POSE", "--no-align", "--out-is-a-folder"], "is a folder"),
    (["--reference", "REF", "--pose", "POSE", "--steps", "2"], "method pose-warp has no option 'steps'; its options: "
                                                              "none"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(shards, tmp_path, capsys, args, message):
    from toolkit.shards.reader import Shards

    s = Shards(shards)
    vid = s.videos.video_id[0]
    write_image(tmp_path / "ref.png", s.frames(vid, [0])[0])
    np.save(tmp_path / "pose.npy", s.keypoints(vid))
    np.save(tmp_path / "bad.npy", np.zeros((3, 17, 3), np.float32))
    (tmp_path / "drive.mp4").write_bytes(b"not decoded: the backend is asked for first")
    names = {"REF": "ref.png", "POSE": "pose.npy", "BAD": "bad.npy", "VIDEO": "drive.mp4"}
    args = [str(tmp_path / names[a]) if a in names else a for a in args]
    out = tmp_path / "out.mp4"
    if "--out-is-a-folder" in args:
        args.remove("--out-is-a-folder")
        out = tmp_path / "folder.mp4"
        out.mkdir()
    assert _animate(*args, "--out", str(out)) == 1
    assert message in capsys.readouterr().err
    assert not out.is_file()


class _Sampler:
    """A fake diffusion method: reports 2 windows x 3 steps through `progress`, then yields the frames in 2 chunks."""

    name = "fake-sampler"
    progress = None

    def generate_chunks(self, cond):
        self.progress(0, 6)
        for _ in range(3):
            self.progress(2, 0)
        frames = np.repeat(cond.reference[None], cond.n_frames, axis=0)
        yield frames[:2]
        yield frames[2:]


def test_progress_bars_count_frames_and_sampling(capsys):
    from toolkit.animate import animate
    from toolkit.harness.method import Conditions

    ref = np.zeros((8, 8, 3), np.uint8)
    cond = Conditions(video_id="x", n_frames=5, height=8, width=8, fps=25.0, reference=ref,
                      reference_keypoints=np.zeros((133, 3), np.float32), keypoints=np.zeros((5, 133, 3), np.float32))
    method = _Sampler()
    assert sum(len(c) for c in animate(method, cond, progress=True)) == 5
    err = capsys.readouterr().err
    assert "frames: 100%" in err and "5/5" in err and "sampling: 100%" in err and "6/6" in err
    assert method.progress is None  # the hook is the caller's only while it animates
    with pytest.raises(TypeError):  # without progress nothing is hooked: the fake calls None
        list(animate(_Sampler(), cond))


def test_device_and_quiet(shards, tmp_path, capsys):
    from toolkit.shards.reader import Shards

    s = Shards(shards)
    vid = s.videos.video_id[0]
    write_image(tmp_path / "ref.png", s.frames(vid, [0])[0])
    np.save(tmp_path / "pose.npy", s.keypoints(vid)[:3])
    args = ("--reference", str(tmp_path / "ref.png"), "--pose", str(tmp_path / "pose.npy"), "--no-align")
    for device, message in (("gpu", "not a torch device"), ("cuda:0" if not _has_cuda() else "cuda:99", "CUDA GPU"),
                            ("meta", "runs on cpu, cuda or mps")):
        assert _animate(*args, "--device", device, "--out", str(tmp_path / "no.mp4")) != 0
        assert message in capsys.readouterr().err
    assert not (tmp_path / "no.mp4").exists()
    assert _animate(*args, "--device", "cpu", "--quiet", "--out", str(tmp_path / "q.mp4")) == 0
    assert "frames" not in capsys.readouterr().err
    assert _animate(*args, "--out", str(tmp_path / "p.mp4")) == 0
    assert "frames: 100%" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["animate", "--help"])
    assert "--device" in capsys.readouterr().out


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
