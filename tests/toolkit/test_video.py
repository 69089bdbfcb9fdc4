"""The one decode path (decord) on real fixture videos, and encode/decode round trips."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import video as vid


def test_decodes_real_densepose_fixtures(real_fixtures):
    for name, n in (("running.mp4", 42), ("dancing2.mp4", None)):
        path = real_fixtures / "magicanimate" / "densepose" / name
        info = vid.video_info(path)
        frames = vid.read_video(path)
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
        assert frames.shape[0] == info.n_frames and frames.shape[1:3] == (info.height, info.width) == (512, 512)
        if n is not None:
            assert info.n_frames == n
        assert frames.std() > 10  # real content, not a blank decode
        some = vid.read_video(path, [5, 0, 5])
        assert np.array_equal(some[1], frames[0]) and np.array_equal(some[0], frames[5])
        chunks = np.concatenate(list(vid.iter_video(path, chunk=16)))
        assert np.array_equal(chunks, frames)


def test_write_then_read_roundtrip(tmp_path):
    yy, xx = np.mgrid[0:64, 0:96]
    frames = np.stack([np.stack([xx * 2 + t, yy * 3, 255 - xx - yy], -1) for t in range(10)]).astype(np.uint8)
    path = vid.write_video(tmp_path / "v.mp4", frames, fps=12, crf=10)
    back = vid.read_video(path)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6
    assert vid.video_info(path).fps == pytest.approx(12)
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"not a video at all", "not a readable video")])
def test_bad_videos_raise_decode_error_naming_the_file(tmp_path, content, needle):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(vid.DecodeError, match=needle) as err:
        vid.read_video(p)
    assert str(p) in str(err.value)


def test_truncated_video_is_an_error(tmp_path):
    rng = np.random.default_rng(1)
    good = vid.write_video(tmp_path / "good.mp4", rng.integers(0, 255, (30, 64, 64, 3), dtype=np.uint8))
    data = good.read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(vid.DecodeError):
        vid.read_video(bad)
    with pytest.raises(vid.DecodeError, match="does not exist"):
        vid.read_video(tmp_path / "missing.mp4")


def test_broken_video_error_is_not_preceded_by_decoder_noise(tmp_path, capfd):
    """No FFmpeg ("moov atom not found") or decord C++ log lines on stderr: the DecodeError says it all."""
    rng = np.random.default_rng(3)
    good = vid.write_video(tmp_path / "good.mp4", rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8))
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])     # moov atom (at the end) cut off
    (tmp_path / "noise.mp4").write_bytes(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
    capfd.readouterr()
    for name in ("truncated.mp4", "noise.mp4"):
        with pytest.raises(vid.DecodeError, match="not a readable video") as err:
            vid.read_video(tmp_path / name)
        assert "/project/src" not in str(err.value)
        with pytest.raises(vid.DecodeError):
            vid.video_info(tmp_path / name)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_lossless_image_formats(fmt):
    img = np.random.default_rng(2).integers(0, 255, (33, 47, 3), dtype=np.uint8)
    assert np.array_equal(vid.decode_image(vid.encode_image(img, fmt)), img)


def test_jpeg_is_close_and_masks_stay_single_channel():
    img = np.full((32, 32, 3), (200, 30, 90), np.uint8)
    back = vid.decode_image(vid.encode_image(img, "jpeg", 95))
    assert np.abs(back.astype(int) - img).max() <= 4
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10] = 255
    assert np.array_equal(vid.decode_image(vid.encode_image(mask, "png"), grayscale=True), mask)
    with pytest.raises(vid.DecodeError, match="not a decodable image"):
        vid.decode_image(b"nope", name="x.png")


def test_natural_frame_order(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png"):
        vid.write_image(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in vid.list_frame_files(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png"]


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_chw_decode_is_pixel_identical(fmt):
    yy, xx = np.mgrid[0:40, 0:56]
    imgs = [np.stack([xx * 4 + k, yy * 6, (xx + yy) * 2], -1).astype(np.uint8) for k in range(3)]
    blobs = [vid.encode_image(im, fmt) for im in imgs]
    chw = vid.decode_images_chw(blobs)
    assert chw.shape == (3, 3, 40, 56)
    for k in range(3):
        assert np.array_equal(chw[k].transpose(1, 2, 0), vid.decode_image(blobs[k]))
    crop = vid.decode_images_chw(blobs, transform=lambda im: im[5:25, 10:40])
    assert np.array_equal(crop[1].transpose(1, 2, 0), vid.decode_image(blobs[1])[5:25, 10:40])
    with pytest.raises(vid.DecodeError, match="image 1 is not decodable"):
        vid.decode_images_chw([blobs[0], b"broken"], name="x")


def test_decode_image_channel_equals_that_channel_of_decode_image():
    import cv2

    from toolkit.video import DecodeError, decode_image, decode_image_channel

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    png = cv2.imencode(".png", img)[1].tobytes()
    for c in range(3):
        assert np.array_equal(decode_image_channel(png, c), decode_image(png)[..., c])
    with pytest.raises(ValueError, match="channel"):
        decode_image_channel(png, 3)
    with pytest.raises(DecodeError, match="clip.png"):
        decode_image_channel(b"not an image", 0, name="clip.png")
