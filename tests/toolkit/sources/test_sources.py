"""Every adapter on a small dataset made here in that adapter's real on-disk layout."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.builders import make_tiktok_layout, make_video_folder
from toolkit.sources import discover, load_card
from toolkit.sources.base import iter_source_chunks, plan_geometry, resample_indices, stored_size
from toolkit.video import write_image, write_video


def test_cards_load_and_name_their_adapters():
    for name in ("synthetic", "tiktok", "ted", "fashion", "folder"):
        r = load_card(name)
        assert r.name == name and r.adapter in ("tiktok", "ted", "fashion", "folder")
        assert len(r.sha256) == 64
    tiktok = load_card("tiktok")
    assert tiktok.split_of("00337") == "test" and tiktok.split_of("00001") == "train"
    assert tiktok.options["densepose_order"] == "VUI"
    assert load_card("fashion").expected == {"train": 500, "test": 100}
    with pytest.raises(FileNotFoundError, match="known datasets"):
        load_card("nope")


def test_tiktok_layout_reads_frames_masks_densepose_and_keypoints(tmp_path):
    root = make_tiktok_layout(tmp_path / "src", n_videos=2, n_frames=5, h=72, w=48, densepose_order="VUI")
    card = load_card("tiktok")
    videos = discover(card, root)
    assert [v.video_id for v in videos] == ["00001", "00002"]
    v = videos[0]
    assert v.masks and v.densepose and v.keypoints and v.densepose_order == "VUI"
    geo = plan_geometry(v, size=24, fps=None)
    assert (geo.width, geo.height) == (24, 36) and geo.indices == (0, 1, 2, 3, 4)
    chunks = list(iter_source_chunks(v, geo, chunk=2))
    assert [len(c.frames) for c in chunks] == [2, 2, 1]
    iuv = np.concatenate([c.ground_truth["iuv"] for c in chunks])
    assert iuv.shape == (5, 36, 24, 3)
    assert set(np.unique(iuv[0, ..., 0])) == {0, 1}  # part index came back from the B channel of VUI
    kp_src = np.load(v.keypoints)
    kp = np.concatenate([c.ground_truth["keypoints"] for c in chunks])
    np.testing.assert_allclose(kp[:, :17, :2], kp_src[:, :17, :2] * 0.5, atol=1e-4)
    assert (kp[:, 17:] == 0).all()
    assert chunks[0].masks[0].shape == (36, 24)


def test_folder_adapter_splits_ids_and_frame_folders(tmp_path):
    root = make_video_folder(tmp_path / "src")
    videos = {v.video_id: v for v in discover(load_card("folder"), root)}
    assert set(videos) == {"train__a", "test__b", "clip", "broken"}
    assert videos["train__a"].split == "train" and videos["test__b"].split == "test"
    assert videos["clip"].is_frame_folder and videos["clip"].fps == 30.0
    geo = plan_geometry(videos["test__b"], size=None, fps=None)
    assert geo.fps == pytest.approx(10) and len(geo.indices) == 9


def test_fashion_official_lists_and_split_folders(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 48, 32, 3), dtype=np.uint8)
    flat = tmp_path / "flat"
    for name in ("91D23ZVV6NS", "A1P+0ZhMAiS", "unlisted"):
        write_video(flat / f"{name}.mp4", frames)
    (flat / "fashion_train.txt").write_text("https://m.media-amazon.com/images/I/91D23ZVV6NS.mp4\n")
    (flat / "fashion_test.txt").write_text("https://m.media-amazon.com/images/I/A1P+0ZhMAiS.mp4\n")
    got = {v.video_id: v.split for v in discover(load_card("fashion"), flat)}
    assert got == {"91D23ZVV6NS": "train", "A1P+0ZhMAiS": "test"}
    crawled = tmp_path / "crawled"
    write_video(crawled / "train" / "x1.mp4", frames)
    write_video(crawled / "test" / "y1.mp4", frames)
    assert {v.video_id: v.split for v in discover(load_card("fashion"), crawled)} == {"x1": "train", "y1": "test"}


def test_ted_preprocessed_layout(tmp_path):
    rng = np.random.default_rng(1)
    write_video(tmp_path / "train" / "abc#000010#000050.mp4", rng.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8))
    for t in range(3):
        write_image(tmp_path / "test" / "def#000001#000009" / f"{t:07d}.png", np.zeros((32, 32, 3), np.uint8))
    got = {v.video_id: v.split for v in discover(load_card("ted"), tmp_path)}
    assert got == {"abc_000010_000050": "train", "def_000001_000009": "test"}


def test_ted_metadata_csv_crops_and_cuts(tmp_path):
    yy, xx = np.mgrid[0:120, 0:160]
    frames = np.stack([np.stack([xx, yy, np.full_like(xx, t * 10)], -1) for t in range(20)]).astype(np.uint8)
    write_video(tmp_path / "ytid1.mp4", frames, fps=20, crf=12)
    (tmp_path / "ted384-metadata.csv").write_text(
        "video_id,start,end,bbox,fps,width,height,partition\n"
        "ytid1#000002#000006,2,6,40-20-120-100,10.0,160,120,test\n"
        "missing#000000#000005,0,5,0-0-10-10,10.0,160,120,train\n"
    )
    videos = discover(load_card("ted"), tmp_path)
    assert len(videos) == 1  # the clip whose video was never downloaded is skipped
    v = videos[0]
    assert v.split == "test" and v.crop == (40, 20, 120, 100)
    assert v.frame_range == (4, 12)  # frames 2..6 at 10 fps -> native 20 fps frames 4..11
    geo = plan_geometry(v, size=40, fps=None)
    out = np.concatenate([c.frames for c in iter_source_chunks(v, geo)])
    assert out.shape == (8, 40, 40, 3)
    # the crop starts at x=40, y=20: the red/green ramps say where each pixel came from
    assert abs(int(out[0, 0, 0, 0]) - 41) <= 6 and abs(int(out[0, 0, 0, 1]) - 21) <= 6


def test_geometry_helpers():
    assert stored_size(720, 940, 512) == (512, 668)
    assert stored_size(604, 1080, 512) == (512, 914)
    assert stored_size(33, 21, None) == (32, 20)
    assert resample_indices(10, 30, None) == list(range(10))
    assert resample_indices(30, 30, 10) == list(range(0, 30, 3))
    assert resample_indices(5, 10, 20) == list(range(5))


def test_download_fails_clearly_offline(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from toolkit.cli import main as cli
    from toolkit.sources.download import DownloadError, download

    def offline(*a, **k):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError, match=r"(?s)cannot download https://vision\.cs\.ubc\.ca/.*fashion_train\.txt.*"
                                            r"no internet.*--source"):
        download(load_card("fashion"), tmp_path / "fashion")
    with pytest.raises(DownloadError, match="(?s)cannot be downloaded by script.*TikTok_dataset"):
        download(load_card("tiktok"), tmp_path / "tiktok")
    code = cli(["prepare", "--dataset", "fashion", "--source", str(tmp_path / "f"), "--out", str(tmp_path / "o"),
                "--download", "--quiet"])
    assert code == 1 and not (tmp_path / "o").exists()
