"""The conditions builder: the same renders for training (ClipDataset) and evaluation (Conditions)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.helpers.builders import make_shards
from toolkit import conditions
from toolkit.annotate.render_densepose import render_densepose
from toolkit.annotate.render_pose import draw_discs, render_pose
from toolkit.data import ClipDataset
from toolkit.harness.scoring import conditions_for
from toolkit.shards.reader import Shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("cond"), n_videos=2, n_frames=10, h=72, w=48, test_ids=("00002",))


@pytest.mark.parametrize("size", [(72, 48), (32, 32), (40, 24)])
def test_training_and_evaluation_inputs_are_identical(shards, size):
    ds = ClipDataset(shards, n_frames=4, stride=2, size=size, columns=("pose", "densepose", "keypoints"),
                     split="test", reference="first", dtype=torch.uint8)
    item = ds[0]
    video_id, idx, ref = ds.clip_indices(0)
    _, cond = conditions_for(Shards(shards), video_id)
    h, w = size
    assert torch.equal(item["pose"], torch.from_numpy(cond.pose_renders(h, w)[idx]).permute(0, 3, 1, 2))
    assert torch.equal(item["reference_pose"], torch.from_numpy(cond.reference_pose_render(h, w)).permute(2, 0, 1))
    assert torch.equal(item["densepose"], torch.from_numpy(cond.densepose_renders(h, w)[idx]).permute(0, 3, 1, 2))
    assert item["pose"].any() and item["densepose"].any()
    ref_image = conditions.fit_image(cond.reference, size)
    assert torch.equal(item["reference"], torch.from_numpy(ref_image).permute(2, 0, 1))


def test_float_dataset_is_the_uint8_one_scaled(shards):
    kw = dict(n_frames=3, stride=1, size=32, columns=("pose", "densepose"), split="test", reference="first")
    a, b = ClipDataset(shards, **kw)[0], ClipDataset(shards, dtype=torch.uint8, **kw)[0]
    for key in ("pose", "reference_pose", "densepose", "reference_densepose", "frames"):
        assert torch.allclose(a[key], b[key].float() / 255), key


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_label_renders_coloured_on_the_consumer_equal_the_images(shards, dtype):
    kw = dict(n_frames=4, stride=2, size=(40, 24), columns=("pose", "densepose"), split="train", dtype=dtype,
              samples_per_video=2, pose_style={"style": "controlnet", "face": True})
    images, labels = ClipDataset(shards, **kw), ClipDataset(shards, renders="labels", **kw)
    last = len(labels) - 1
    assert last >= 1
    item = labels[1]
    assert item["pose_labels"].shape == (4, 40, 24) and item["pose_labels"].dtype == torch.uint8
    assert item["reference_densepose_labels"].shape == (40, 24) and "pose" not in item
    keys = ("pose", "reference_pose", "densepose", "reference_densepose")
    coloured = conditions.colour_batch(item, dtype)
    for key in keys:
        assert torch.equal(coloured[key], images[1][key]), key
    assert not any(k.endswith(("_labels", "_palette")) for k in coloured)
    batch = torch.utils.data.default_collate([labels[0], labels[last]])
    coloured = conditions.colour_batch(batch, dtype)
    for key in keys:
        assert torch.equal(coloured[key], torch.stack([images[0][key], images[last][key]])), key
    assert torch.equal(coloured["frames"], batch["frames"])
    plain = images[0]
    assert conditions.colour_batch(plain) is plain
    with pytest.raises(ValueError, match="renders"):
        ClipDataset(shards, renders="rgb", **kw)


def test_pose_images_scale_like_the_frames():
    kp = np.zeros((1, 133, 3), np.float32)
    kp[0, 5] = (40, 60, 1)   # left shoulder
    kp[0, 6] = (20, 60, 1)   # right shoulder
    big = conditions.pose_images(kp, (120, 80), (120, 80))[0]
    small = conditions.pose_images(kp, (120, 80), (60, 40))[0]
    assert np.array_equal(big, render_pose(kp[0], 120, 80))
    assert np.array_equal(small, render_pose(kp[0] * [0.5, 0.5, 1], 60, 40))
    # a wider output crops the sides off the covered frame: x shifts by the crop offset
    scale, oy, ox = conditions.cover_crop((120, 80), (60, 60))
    assert (scale, oy, ox) == (0.75, 15, 0)
    assert np.allclose(conditions.fit_keypoints(kp, (120, 80), (60, 60))[0, 5, :2], (30, 30))


def test_stretch_places_keypoints_where_the_resized_frame_has_them():
    kp = np.zeros((1, 133, 3), np.float32)
    kp[0, 5] = (40, 60, 1)
    image = np.zeros((120, 80, 3), np.uint8)
    image[58:63, 38:43] = 255  # a dot under the keypoint
    out = conditions.fit_image(image, (48, 64), stretch=True)  # no crop: each axis scaled on its own
    assert out.shape == (48, 64, 3)
    y, x = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    fitted = conditions.fit_keypoints(kp, (120, 80), (48, 64), stretch=True)[0, 5, :2]
    assert np.allclose(fitted, (32, 24)) and abs(x - 32) <= 1 and abs(y - 24) <= 1
    moved = np.zeros_like(kp)
    moved[0, 5] = (*fitted, 1)  # the keypoint already where the stretch puts it, drawn without a resize
    assert np.array_equal(conditions.pose_labels(kp, (120, 80), (48, 64), stretch=True),
                          conditions.pose_labels(moved, (48, 64), (48, 64)))


@pytest.mark.parametrize("trained, multiple, video, expected", [
    ((64, 64), 16, (84, 64), (64, 48)),      # UBC-Fashion's aspect: 80 x 48 (each side rounded alone) is 27% off
    ((64, 64), 16, (64, 64), (64, 64)),
    ((80, 64), 16, (84, 64), (80, 64)),
    ((512, 512), 64, (1254, 960), (576, 448)),
    ((32, 32), 16, (16, 200), (16, 128)),    # never below one multiple
])
def test_generation_size_keeps_the_aspect_nearest_the_videos(trained, multiple, video, expected):
    size = conditions.generation_size(trained, multiple, *video)
    assert size == expected and size[0] % multiple == 0 and size[1] % multiple == 0


def test_draw_scale_thins_the_pose_as_drawing_larger_and_shrinking():
    kp = np.zeros((1, 133, 3), np.float32)
    kp[0, 5], kp[0, 6], kp[0, 7] = (40, 60, 1), (20, 60, 1), (44, 90, 1)  # shoulders, left elbow
    labels = conditions.pose_labels(kp, (120, 80), (60, 40), draw_scale=4)[0]
    big = conditions.pose_labels(kp, (120, 80), (240, 160))[0]  # 4x the output size
    # each output pixel keeps the label drawn last (the largest) of the 4x4 pixels it covers
    assert np.array_equal(labels, big.reshape(60, 4, 40, 4).max(axis=(1, 3)))
    default = conditions.pose_labels(kp, (120, 80), (60, 40))[0]
    assert np.array_equal(conditions.pose_labels(kp, (120, 80), (60, 40), draw_scale=1)[0], default)
    assert 0 < np.count_nonzero(labels) < np.count_nonzero(default) / 3  # the same skeleton, far thinner
    assert set(np.unique(labels)) == set(np.unique(default))  # every limb and joint still drawn
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="draw_scale"):
            conditions.pose_labels(kp, (120, 80), (60, 40), draw_scale=bad)


def test_draw_discs_equals_one_circle_call_per_point():
    rng = np.random.default_rng(3)
    for radius in (3, 4):
        points = rng.uniform(-8, 40, (60, 2))
        colours = rng.integers(0, 255, (60, 3), dtype=np.uint8)
        fast = np.zeros((30, 34, 3), np.uint8)
        slow = np.zeros_like(fast)
        draw_discs(fast, points, radius, colours)
        for (x, y), c in zip(points, colours):
            cv2.circle(slow, (int(x), int(y)), radius, tuple(int(v) for v in c), thickness=-1)
        assert np.array_equal(fast, slow)


def test_densepose_images_use_the_palette_and_nearest_resize():
    rng = np.random.default_rng(0)
    iuv = rng.integers(0, 25, (2, 30, 20, 3), dtype=np.uint8)
    out = conditions.densepose_images(iuv, (30, 20))
    assert np.array_equal(out, np.stack([render_densepose(x) for x in iuv]))
    chw = conditions.densepose_images(iuv, (15, 10), chw=True)
    expected = np.stack([render_densepose(conditions.fit_image(x[..., 0], (15, 10), nearest=True)) for x in iuv])
    assert np.array_equal(chw, expected.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="0..24"):
        conditions.densepose_images(np.full((1, 4, 4, 3), 30, np.uint8), (4, 4))
    # stretched (MagicAnimate's release squashes to its square size): nearest resize, no crop
    squashed = conditions.densepose_images(iuv, (16, 16), stretch=True)
    expected = np.stack([render_densepose(cv2.resize(x[..., 0], (16, 16), interpolation=cv2.INTER_NEAREST))
                         for x in iuv])
    assert np.array_equal(squashed, expected)
