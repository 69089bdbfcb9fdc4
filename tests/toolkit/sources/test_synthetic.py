"""Tests of the synthetic dataset generator and the figure renderer behind it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from toolkit.keypoints import INDEX, N_KEYPOINTS
from toolkit.sources.synthetic import MANIFEST, generate, plan_video
from toolkit.sources.synthetic_figure import (
    DENSEPOSE_PARTS,
    Look,
    Pattern,
    Placement,
    Pose,
    figure_frame,
    figure_keypoints,
)
from toolkit.video import read_image, read_video

N_VIDEOS, N_FRAMES, SIZE = 3, 6, 128
LEFT_PARTS = {4, 5, 8, 10, 12, 14, 15, 17, 19, 21, 24}
RIGHT_PARTS = {3, 6, 7, 9, 11, 13, 16, 18, 20, 22, 23}


def _tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file but the mp4s: libx264 through PyAV gave different streams for the same frames
    on a busy machine (even single-threaded), so only frames, masks, IUV and keypoints are byte-exact."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".mp4"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    ids = generate(root, n_videos=N_VIDEOS, n_frames=N_FRAMES, size=SIZE, seed=0, progress=False)
    assert ids == ["synth_000", "synth_001", "synth_002"]
    return root


def _frames(root: Path, vid: str, sub: str, grayscale: bool = False) -> np.ndarray:
    return np.stack([read_image(root / vid / sub / f"{k:04d}.png", grayscale=grayscale) for k in range(N_FRAMES)])


def test_layout_and_manifest(dataset: Path) -> None:
    manifest = json.loads((dataset / MANIFEST).read_text())
    assert manifest["videos"] == ["synth_000", "synth_001", "synth_002"]
    assert (manifest["seed"], manifest["n_videos"], manifest["n_frames"], manifest["size"]) == (0, 3, 6, 128)
    assert manifest["fps"] == 24.0 and manifest["generator_version"]
    assert not list(dataset.glob("*.tmp")) and not (dataset / ".synthetic.partial.json").exists()
    for vid in manifest["videos"]:
        assert (dataset / "videos" / f"{vid}.mp4").is_file()
        for sub in ("images", "masks", "densepose"):
            names = sorted(p.name for p in (dataset / vid / sub).iterdir())
            assert names == [f"{k:04d}.png" for k in range(N_FRAMES)]
        stored = {sub: cv2.imread(str(dataset / vid / sub / "0000.png"), cv2.IMREAD_UNCHANGED)
                  for sub in ("images", "masks", "densepose")}
        assert stored["images"].shape == (SIZE, SIZE, 3) and stored["images"].dtype == np.uint8
        assert stored["masks"].shape == (SIZE, SIZE)  # a single-channel PNG
        assert stored["densepose"].shape == (SIZE, SIZE, 3)
        kp = np.load(dataset / vid / "keypoints.npy")
        assert kp.dtype == np.float32 and kp.shape == (N_FRAMES, N_KEYPOINTS, 3)


def test_same_seed_same_bytes_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, n_videos=N_VIDEOS, n_frames=N_FRAMES, size=SIZE, seed=0, progress=False)
    assert _tree_hashes(again) == _tree_hashes(dataset)
    other = tmp_path / "other"
    generate(other, n_videos=1, n_frames=N_FRAMES, size=SIZE, seed=1, progress=False)
    assert (other / "synth_000/images/0000.png").read_bytes() != (dataset / "synth_000/images/0000.png").read_bytes()
    assert not np.array_equal(np.load(other / "synth_000/keypoints.npy"), np.load(dataset / "synth_000/keypoints.npy"))


def test_video_does_not_depend_on_the_others(dataset: Path, tmp_path: Path) -> None:
    fewer = tmp_path / "fewer"
    generate(fewer, n_videos=1, n_frames=N_FRAMES, size=SIZE, seed=0, progress=False)
    assert (fewer / "synth_000/images/0003.png").read_bytes() == (dataset / "synth_000/images/0003.png").read_bytes()


def test_mask_is_exactly_part_index_positive(dataset: Path) -> None:
    for vid in ("synth_000", "synth_001", "synth_002"):
        masks = _frames(dataset, vid, "masks", grayscale=True)
        iuv = _frames(dataset, vid, "densepose")
        assert set(np.unique(masks).tolist()) == {0, 255}
        np.testing.assert_array_equal(masks, np.where(iuv[..., 0] > 0, 255, 0).astype(np.uint8))
        assert iuv[..., 0].max() <= 24
        background = iuv[..., 0] == 0
        assert not iuv[..., 1][background].any() and not iuv[..., 2][background].any()
        person = ~background
        assert 0.03 < person.mean() < 0.5
        assert iuv[..., 1][person].std() > 30 and iuv[..., 2][person].std() > 30


def test_all_24_parts_appear(dataset: Path) -> None:
    seen: set[int] = set()
    for vid in ("synth_000", "synth_001", "synth_002"):
        seen |= set(np.unique(_frames(dataset, vid, "densepose")[..., 0]).tolist())
    assert seen == set(range(25)), f"missing parts: {sorted(set(range(25)) - seen)}"
    assert sorted(DENSEPOSE_PARTS) == list(range(1, 25))


def test_keypoints_in_frame_and_on_the_body(dataset: Path) -> None:
    joints = ["nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
              "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
              "right_ankle"]
    for vid in ("synth_000", "synth_001", "synth_002"):
        kp = np.load(dataset / vid / "keypoints.npy")
        masks = _frames(dataset, vid, "masks", grayscale=True)
        assert (kp[..., 2] == 1.0).all()
        assert (kp[..., :2] >= 0).all() and (kp[..., :2] <= SIZE - 1).all()
        for k in range(N_FRAMES):
            ys, xs = np.nonzero(masks[k])
            for name in joints:
                x, y = kp[k, INDEX[name], :2]
                dist = np.sqrt((xs - x) ** 2 + (ys - y) ** 2).min()
                assert dist <= 1.5, f"{vid} frame {k}: {name} at ({x:.1f}, {y:.1f}) is {dist:.1f} px off the person"
        # the body moves: keypoints change over the clip
        assert np.abs(np.diff(kp[:, :, :2], axis=0)).max() > 1.0


def test_resume_skips_complete_and_redoes_missing_identically(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(dataset, root)
    before = _tree_hashes(root)
    kept = root / "synth_000/images/0000.png"
    kept_mtime = kept.stat().st_mtime_ns
    shutil.rmtree(root / "synth_001")
    (root / "synth_002.tmp" / "images").mkdir(parents=True)  # debris of an interrupted run
    (root / "synth_002.tmp" / "images" / "0000.png").write_bytes(b"partial")
    (root / MANIFEST).unlink()
    ids = generate(root, n_videos=N_VIDEOS, n_frames=N_FRAMES, size=SIZE, seed=0, progress=False)
    assert ids == ["synth_000", "synth_001", "synth_002"]
    assert not (root / "synth_002.tmp").exists()
    assert _tree_hashes(root) == before
    assert kept.stat().st_mtime_ns == kept_mtime


def test_other_settings_in_same_root_are_refused(dataset: Path) -> None:
    with pytest.raises(ValueError, match=r"synthetic\.json.*n_frames"):
        generate(dataset, n_videos=N_VIDEOS, n_frames=N_FRAMES + 1, size=SIZE, seed=0, progress=False)


@pytest.mark.parametrize("kwargs", [{"size": 127}, {"size": 16}, {"n_videos": 0}, {"fps": 0.0}])
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"n_videos": 1, "n_frames": 2, "size": 64, "seed": 0, "progress": False} | kwargs
    with pytest.raises(ValueError):
        generate(tmp_path / "bad", **args)


def test_videos_decode_to_the_frames(dataset: Path) -> None:
    for vid in ("synth_000", "synth_001", "synth_002"):
        frames = read_video(dataset / "videos" / f"{vid}.mp4")
        assert frames.shape == (N_FRAMES, SIZE, SIZE, 3)
        pngs = _frames(dataset, vid, "images").astype(np.float32)
        assert np.abs(frames.astype(np.float32) - pngs).mean() < 12.0


def test_videos_look_different(dataset: Path) -> None:
    torso, background = [], []
    for vid in ("synth_000", "synth_001", "synth_002"):
        img = _frames(dataset, vid, "images")[0].astype(np.float32)
        iuv = _frames(dataset, vid, "densepose")[0]
        torso.append(img[iuv[..., 0] == 2].mean(axis=0))
        background.append(img[iuv[..., 0] == 0].mean(axis=0))
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.linalg.norm(torso[i] - torso[j]) > 15.0
            assert np.linalg.norm(background[i] - background[j]) > 5.0


def test_placement_keeps_the_figure_large_and_inside() -> None:
    for index in range(4):
        plan = plan_video(seed=3, index=index, n_frames=12, size=256, fps=24.0)
        assert 0.5 * 256 <= plan.placement.height <= 0.85 * 256
        kp = np.stack([figure_keypoints(p, plan.look, plan.placement) for p in plan.poses])
        assert (kp[..., :2] >= 0).all() and (kp[..., :2] <= 255).all()


# ----------------------------------------------------------------------------- figure_frame


def test_figure_frame_is_pure_and_consistent() -> None:
    pose, look = Pose(arm_raise=(60.0, 100.0), elbow=(40.0, 80.0), knee=(20.0, 5.0)), Look()
    a = figure_frame(pose, look, 192)
    b = figure_frame(pose, look, 192)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.iuv, b.iuv)
    np.testing.assert_array_equal(a.mask, np.where(a.iuv[..., 0] > 0, 255, 0))
    np.testing.assert_array_equal(a.keypoints, figure_keypoints(pose, look, Placement.default(192)))
    bg = np.full((192, 192, 3), 128, dtype=np.uint8)
    assert (a.image[a.mask == 0] == bg[a.mask == 0]).all()
    assert (a.image[a.mask > 0] != 128).any(axis=-1).mean() > 0.9


def test_figure_left_is_image_right_and_joints_sit_on_their_parts() -> None:
    fr = figure_frame(Pose(), Look(), 256)
    part = fr.iuv[..., 0]
    ys, xs = np.nonzero(np.isin(part, list(LEFT_PARTS)))
    _, xr = np.nonzero(np.isin(part, list(RIGHT_PARTS)))
    assert xs.mean() > xr.mean() + 20
    kp = fr.keypoints
    assert kp[INDEX["left_shoulder"], 0] > kp[INDEX["right_shoulder"], 0]
    expect = {"left_elbow": {15, 17, 19, 21}, "right_elbow": {16, 18, 20, 22}, "left_knee": {8, 10, 12, 14},
              "right_knee": {7, 9, 11, 13}, "nose": {23, 24}, "left_hand_middle_2": {4}, "right_hand_middle_2": {3},
              "left_ankle": {5, 12, 14}, "right_ankle": {6, 11, 13}}
    for name, parts in expect.items():
        x, y = np.rint(kp[INDEX[name], :2]).astype(int)
        assert int(part[y, x]) in parts, f"{name} lands on part {part[y, x]}"
    # head halves: the person's right (23) is on the image left
    head_r, head_l = np.nonzero(part == 23)[1], np.nonzero(part == 24)[1]
    assert head_r.mean() < head_l.mean()


def test_turning_shows_the_back_and_moves_the_face() -> None:
    front = figure_frame(Pose(), Look(), 256)
    turned = figure_frame(Pose(yaw=35.0, twist=10.0), Look(), 256)
    assert (front.iuv[..., 0] == 1).sum() < (turned.iuv[..., 0] == 1).sum()
    assert turned.keypoints[INDEX["nose"], 0] > front.keypoints[INDEX["nose"], 0] + 2


def test_clothing_print_changes_the_pixels_not_the_geometry() -> None:
    pose = Pose(arm_raise=(40.0, 40.0))
    a = figure_frame(pose, Look(top=Pattern("stripes", ((200, 30, 30), (250, 250, 250)))), 128)
    b = figure_frame(pose, Look(top=Pattern("checks", ((30, 30, 200), (20, 20, 20)))), 128)
    np.testing.assert_array_equal(a.iuv, b.iuv)
    torso = a.iuv[..., 0] == 2
    assert np.abs(a.image[torso].astype(int) - b.image[torso].astype(int)).mean() > 40


def test_bad_figure_inputs() -> None:
    with pytest.raises(ValueError, match="hair_style"):
        Look(hair_style="mohawk")
    with pytest.raises(ValueError, match="background"):
        figure_frame(Pose(), Look(), 64, background=np.zeros((32, 32, 3), np.uint8))


def test_parallel_generation_gives_the_same_bytes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    generate(one, n_videos=3, n_frames=3, size=64, seed=5, progress=False)
    generate(two, n_videos=3, n_frames=3, size=64, seed=5, progress=False, workers=2)
    assert _tree_hashes(one) == _tree_hashes(two)
    assert sorted((one / "videos").iterdir()) and len(list((two / "videos").glob("*.mp4"))) == 3
