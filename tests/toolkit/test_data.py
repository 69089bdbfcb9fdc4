"""ClipDataset: shapes, determinism, annotations that follow the crop, DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from tests.helpers.builders import make_shards
from toolkit import conditions
from toolkit import video as vid
from toolkit.data import ClipDataset
from toolkit.shards.reader import Shards
from toolkit.shards.verify import verify


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("data"), n_videos=3, n_frames=40, h=72, w=48, image_format="png")


def test_items_have_the_promised_shapes(shards):
    ds = ClipDataset(shards, n_frames=8, stride=4, size=(32, 24), columns=["keypoints", "iuv", "mask", "person_box"])
    assert len(ds) == 3
    item = ds[1]
    assert item["reference"].shape == (3, 32, 24) and item["frames"].shape == (8, 3, 32, 24)
    assert item["frames"].dtype == torch.float32 and 0 <= item["frames"].min() and item["frames"].max() <= 1
    assert item["keypoints"].shape == (8, 133, 3) and item["reference_keypoints"].shape == (133, 3)
    assert item["iuv"].shape == (8, 3, 32, 24) and item["iuv"].dtype == torch.uint8
    assert item["mask"].shape == (8, 1, 32, 24)
    assert item["person_box"].shape == (8, 4)
    idx = item["frame_indices"].tolist()
    assert np.all(np.diff(idx) == 4) and 0 <= idx[0] and idx[-1] < 40


def test_frames_and_keypoints_match_the_shards(shards):
    ds = ClipDataset(shards, n_frames=4, stride=2, size=None, columns=["keypoints"], reference="first")
    item = ds[0]
    s = Shards(shards)
    idx = item["frame_indices"].tolist()
    expect = s.frames(item["video_id"], idx)
    assert np.array_equal((item["frames"].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8), expect)
    np.testing.assert_allclose(item["keypoints"].numpy(), s.keypoints(item["video_id"], idx), atol=1e-5)
    ref = s.frames(item["video_id"], [0])[0]
    assert np.array_equal((item["reference"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), ref)


def test_keypoints_follow_resize_and_centre_crop(shards):
    # stored 48x72 (w x h) -> cover 24x24: scale 0.5 -> 24x36, crop 6 rows off the top
    ds = ClipDataset(shards, n_frames=2, stride=1, size=24, columns=["keypoints"], reference="first")
    item = ds[2]
    raw = Shards(shards).keypoints(item["video_id"], item["frame_indices"].tolist())
    got = item["keypoints"].numpy()
    vis = raw[..., 2] > 0
    np.testing.assert_allclose(got[vis][:, 0], raw[vis][:, 0] * 0.5, atol=1e-4)
    np.testing.assert_allclose(got[vis][:, 1], raw[vis][:, 1] * 0.5 - 6, atol=1e-4)
    assert (got[~vis] == 0).all()


def test_deterministic_for_a_seed_and_varied_by_epoch(shards):
    a = ClipDataset(shards, n_frames=4, stride=3, seed=7, samples_per_video=4)
    b = ClipDataset(shards, n_frames=4, stride=3, seed=7, samples_per_video=4)
    c = ClipDataset(shards, n_frames=4, stride=3, seed=8, samples_per_video=4)
    picks = [a.clip_indices(i) for i in range(len(a))]
    assert picks == [b.clip_indices(i) for i in range(len(b))]
    assert picks != [c.clip_indices(i) for i in range(len(c))]
    a.set_epoch(1)
    assert picks != [a.clip_indices(i) for i in range(len(a))]
    assert torch.equal(b[5]["frames"], ClipDataset(shards, n_frames=4, stride=3, seed=7, samples_per_video=4)[5]["frames"])


def test_dataloader_with_workers_matches_single_process(shards):
    ds = ClipDataset(shards, n_frames=4, stride=2, size=16, columns=["keypoints"], seed=3)
    single = [ds[i]["frames"] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    multi = [batch["frames"][0] for batch in loader]
    assert all(torch.equal(x, y) for x, y in zip(single, multi))


def test_clear_errors(shards):
    with pytest.raises(ValueError, match="no train-split video has 197 frames"):
        ClipDataset(shards, n_frames=50, stride=4)
    with pytest.raises(ValueError, match="unknown columns"):
        ClipDataset(shards, columns=["depth"])


def test_condition_renders_follow_the_keypoints_and_iuv(shards):
    from toolkit.annotate.render import render_densepose, render_pose

    ds = ClipDataset(shards, n_frames=2, stride=3, size=None, columns=["keypoints", "iuv", "pose", "densepose"],
                     reference="first")
    item = ds[0]
    assert item["pose"].shape == item["frames"].shape == item["densepose"].shape
    kp = item["keypoints"][1].numpy()
    expect = render_pose(kp, item["frames"].shape[2], item["frames"].shape[3])
    got = (item["pose"][1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(got, expect) and got.any()
    iuv = item["iuv"][0].permute(1, 2, 0).numpy()
    dp = (item["densepose"][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(dp, render_densepose(iuv))


@pytest.mark.parametrize("with_null", [False, True])
def test_keypoint_columns_read_as_arrays_with_zeros_for_frames_without_pose(with_null):
    import pyarrow as pa

    from toolkit.shards.reader import keypoint_array
    from toolkit.shards.schema import KEYPOINT_VALUES

    rows = [np.arange(KEYPOINT_VALUES, dtype=np.float32) + k for k in range(3)]
    values = [r.tolist() for r in rows]
    if with_null:
        values[1] = None
    typ = pa.list_(pa.float32(), KEYPOINT_VALUES)
    column = pa.chunked_array([pa.array(values[:2], typ), pa.array(values[2:], typ)])
    out = keypoint_array(column)
    assert out.shape == (3, 133, 3) and out.dtype == np.float32
    expected = np.stack(rows).reshape(3, 133, 3)
    if with_null:
        expected[1] = 0
    assert np.array_equal(out, expected)


def _rewrite_frames(path: Path, change) -> None:
    """Rewrite one frames file through `change(table) -> table` (a test's way to age or damage a shard)."""
    table = change(pq.read_table(path))
    pq.write_table(table, path.with_suffix(".tmp"), row_group_size=64)
    path.with_suffix(".tmp").replace(path)


def test_densepose_comes_from_the_part_planes_and_old_shards_fall_back_to_the_iuv(tmp_path):
    root = make_shards(tmp_path, n_videos=2, n_frames=6, h=40, w=32)
    shards = Shards(root)
    vid_id = shards.video_ids("train")[0]
    assert "parts" in shards.columns(vid_id)
    part_index = shards.iuv(vid_id)[..., 0]
    assert np.array_equal(shards.parts(vid_id), part_index) and part_index.any()
    kw = dict(n_frames=3, stride=1, size=(24, 24), columns=("densepose",), dtype=torch.uint8, videos=[vid_id])
    new = ClipDataset(root, **kw)[0]
    # a shard of schema version 1 has no parts column: the render comes from the IUV maps, the same
    path = root / shards.video(vid_id).frames_file
    _rewrite_frames(path, lambda t: t.drop_columns(["parts"]))
    assert "parts" not in Shards(root).columns(vid_id)
    old = ClipDataset(root, **kw)[0]
    for key in ("densepose", "reference_densepose"):
        assert torch.equal(new[key], old[key]), key
    assert np.array_equal(Shards(root).parts(vid_id), part_index)


def test_deep_verify_checks_the_part_planes_against_the_iuv(tmp_path):
    root = make_shards(tmp_path, n_videos=1, n_frames=4, h=40, w=32)
    shards = Shards(root)
    vid_id = shards.video_ids()[0]
    path = root / shards.video(vid_id).frames_file

    def damage(table):
        parts = table.column("parts").to_pylist()
        parts[1] = vid.encode_plane(np.zeros((40, 32), np.uint8))
        parts[2] = b"not zstd"
        return table.set_column(table.schema.get_field_index("parts"), "parts", pa.array(parts, pa.binary()))

    _rewrite_frames(path, damage)
    problems = verify(root, deep=True)
    assert any("parts of frame 1 differ from its IUV map" in p for p in problems), problems
    assert any("parts[2]" in p and "zstd" in p for p in problems), problems


def test_part_planes_round_trip_and_refuse_what_they_are_not():
    plane = np.random.default_rng(0).integers(0, 25, (30, 20), dtype=np.uint8)
    data = vid.encode_plane(plane)
    assert np.array_equal(vid.decode_plane(data, 30, 20), plane)
    with pytest.raises(vid.DecodeError, match="x.parquet: not a zstd-compressed 20x20 label plane"):
        vid.decode_plane(data, 20, 20, name="x.parquet")
    with pytest.raises(ValueError, match=r"\(H, W\) uint8"):
        vid.encode_plane(plane.astype(np.int16))


def test_pose_renders_stored_at_prepare_equal_the_drawn_ones(tmp_path, monkeypatch):
    root = make_shards(tmp_path, n_videos=2, n_frames=6, h=40, w=32)
    shards = Shards(root)
    vid_id = shards.video_ids("train")[0]
    stored = shards.pose_labels(vid_id)
    drawn = conditions.pose_labels(shards.keypoints(vid_id), (40, 32), (40, 32))
    assert stored.shape == (6, 40, 32) and stored.any() and np.array_equal(stored, drawn)
    kw = dict(n_frames=3, stride=1, columns=("pose",), dtype=torch.uint8, videos=[vid_id], renders="labels")
    read = ClipDataset(root, **kw)
    assert read._stored_renders(vid_id, (40, 32))
    expected = ClipDataset(root, size=(24, 24), **kw)  # another size: drawn
    assert not expected._stored_renders(vid_id, (24, 24))
    assert not ClipDataset(root, pose_style={"face": True}, **kw)._stored_renders(vid_id, (40, 32))
    assert not ClipDataset(root, pose_style={"draw_scale": 2}, **kw)._stored_renders(vid_id, (40, 32))
    assert ClipDataset(root, pose_style={"draw_scale": 1}, **kw)._stored_renders(vid_id, (40, 32))
    item = read[0]
    _, idx, ref = read.clip_indices(0)
    assert torch.equal(item["pose_labels"], torch.from_numpy(drawn[idx]))
    assert torch.equal(item["reference_pose_labels"], torch.from_numpy(drawn[ref]))
    monkeypatch.setattr(conditions, "pose_labels", lambda *a, **k: pytest.fail("drew what the shards hold"))
    assert torch.equal(ClipDataset(root, **kw)[0]["pose_labels"], item["pose_labels"])
