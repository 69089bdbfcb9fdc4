"""Pixel metrics (L1, PSNR, legacy PSNR, SSIM) under the disco and standard profiles.

References are written here independently: scikit-image's structural_similarity (disco) and torchmetrics'
functional SSIM, PSNR and MAE (standard) called directly, and plain numpy formulas for the disco L1 / PSNR and
the uint8 wrap-around PSNR.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from toolkit.metrics.functional import (
    PSNR_CAP_DB,
    as_frames,
    l1,
    l1_per_frame,
    match_size,
    metric_names,
    pixel_metrics,
    psnr,
    psnr_legacy_per_frame,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
)
from toolkit.metrics.pixel import L1, PSNR, SSIM, PixelMetrics, PSNRLegacy

FIXTURES = Path(os.environ.get("TOOLKIT_FIXTURES", Path(__file__).resolve().parents[4] / "shared/fixtures/real"))
SSIM_TOL = 1e-9


# ---------------------------------------------------------------- references
def ref_gray_disco(rgb: np.ndarray) -> np.ndarray:
    """DisCo's gray image: cv2.imread gives BGR, then cv2.COLOR_BGR2GRAY."""
    return cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2GRAY)


def ref_ssim_disco(a: np.ndarray, b: np.ndarray, full: bool = False):
    return structural_similarity(ref_gray_disco(a), ref_gray_disco(b), full=full)


def _tm(frames: np.ndarray):
    """(H, W, 3) or (N, H, W, 3) uint8 -> (N, 3, H, W) float64 in [0, 1], what torchmetrics takes."""
    import torch

    arr = frames[None] if frames.ndim == 3 else frames
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous().double() / 255.0


def ref_ssim_standard(a: np.ndarray, b: np.ndarray, full: bool = False):
    """torchmetrics' SSIM with its defaults (Gaussian 11 / 1.5, data range 1); full: also the channel-mean map."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    value, smap = structural_similarity_index_measure(_tm(a), _tm(b), data_range=1.0, return_full_image=True)
    return (float(value), smap[0].mean(dim=0).numpy()) if full else float(value)


def ref_psnr_disco(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def ref_psnr_legacy(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)  # uint8 arithmetic on purpose: this is the bug being reproduced
    return 100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def ref_psnr_standard(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    err = (a / 255.0 - b / 255.0) ** 2
    mse = err.mean() if region is None else err[region].mean()
    return min(100.0, 10 * math.log10(1.0 / mse)) if mse > 0 else 100.0


def ref_l1_disco(pred: np.ndarray, target: np.ndarray) -> float:
    h, w = target.shape[1:3]
    return float(np.mean([np.abs(p.astype(float) - t.astype(float)) / (h * w) for p, t in zip(pred, target)]))


# ---------------------------------------------------------------- data
def noisy(frames: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(frames + rng.normal(0, sigma, frames.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def random_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = cv2.GaussianBlur(rng.integers(0, 256, (5, 48, 64, 3), dtype=np.uint8).reshape(5 * 48, 64, 3),
                              (5, 5), 2).reshape(5, 48, 64, 3)
    pred = noisy(target, 25, 1)
    pred[0] = target[0]  # one identical frame
    pred[1] = rng.integers(0, 256, target[1].shape, dtype=np.uint8)  # one unrelated frame
    return pred, target


@pytest.fixture(scope="module")
def real_pair() -> tuple[np.ndarray, np.ndarray]:
    folder = FIXTURES / "unianimate" / "images"
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not files:
        pytest.skip(f"real fixture images not found in {folder} (set TOOLKIT_FIXTURES)")
    targets, preds = [], []
    for k, f in enumerate(files[:2]):
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        s = 512 / min(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        y0, x0 = (img.shape[0] - 512) // 2, (img.shape[1] - 512) // 2
        gt = np.ascontiguousarray(img[y0:y0 + 512, x0:x0 + 512])
        perturbed = [noisy(gt, 12, k), cv2.GaussianBlur(gt, (9, 9), 2.5), np.roll(gt, (7, -4), axis=(0, 1))]
        targets += [gt] * len(perturbed)
        preds += perturbed
    return np.stack(preds), np.stack(targets)


def person_mask(h: int, w: int, n: int | None = None) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    if n is None:
        return ((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2 < 1
    return np.stack([((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2 - 2 * i) / (w / 4)) ** 2 < 1 for i in range(n)])


# ---------------------------------------------------------------- SSIM
@pytest.mark.parametrize("profile,ref", [("disco", ref_ssim_disco), ("standard", ref_ssim_standard)])
def test_ssim_matches_the_reference_on_random_frames(random_pair, profile, ref):
    pred, target = random_pair
    ours = ssim_per_frame(pred, target, profile)
    expected = np.array([ref(p, t) for p, t in zip(pred, target)])
    assert np.abs(ours - expected).max() <= SSIM_TOL
    assert ours[0] == pytest.approx(1.0, abs=1e-12)
    assert ssim(pred, target, profile) == pytest.approx(expected.mean(), abs=SSIM_TOL)


@pytest.mark.parametrize("profile,ref", [("disco", ref_ssim_disco), ("standard", ref_ssim_standard)])
def test_ssim_matches_the_reference_on_real_frames(real_pair, profile, ref):
    pred, target = real_pair
    ours = ssim_per_frame(pred, target, profile)
    expected = np.array([ref(p, t) for p, t in zip(pred, target)])
    assert np.abs(ours - expected).max() <= SSIM_TOL
    assert 0.2 < expected.min() and expected.max() < 0.999  # the perturbations are neither trivial nor total


def test_disco_ssim_uses_luma_weights_not_swapped(random_pair):
    """DisCo reads BGR with cv2.imread, so BGR2GRAY applies the right weights; a swapped conversion differs."""
    pred, target = random_pair
    swapped = np.array([structural_similarity(cv2.cvtColor(p, cv2.COLOR_BGR2GRAY), cv2.cvtColor(t, cv2.COLOR_BGR2GRAY))
                        for p, t in zip(pred, target)])
    ours = ssim_per_frame(pred, target, "disco")
    assert np.abs(ours[2:] - swapped[2:]).max() > 1e-4


def test_disco_metrics_equal_disco_file_pipeline(tmp_path, random_pair):
    """Frames written as PNG and read back the way DisCo does (cv2.imread, BGR) give the same numbers."""
    pred, target = random_pair
    scores = {"L1": [], "PSNR": [], "SSIM": []}
    for i, (p, t) in enumerate(zip(pred, target)):
        cv2.imwrite(str(tmp_path / f"gen{i}.png"), cv2.cvtColor(p, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / f"gt{i}.png"), cv2.cvtColor(t, cv2.COLOR_RGB2BGR))
        a, b = cv2.imread(str(tmp_path / f"gen{i}.png")), cv2.imread(str(tmp_path / f"gt{i}.png"))
        scores["L1"].append(np.absolute(a.astype("float") - b.astype("float")) / float(a.shape[0] * a.shape[1]))
        scores["PSNR"].append(ref_psnr_disco(a, b))
        scores["SSIM"].append(structural_similarity(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY),
                                                    cv2.cvtColor(b, cv2.COLOR_BGR2GRAY), full=True)[0])
    ours = PixelMetrics("disco")
    ours.update(pred, target)
    got = ours.compute()
    assert got["l1"] == pytest.approx(np.mean(scores["L1"]), rel=1e-12)
    assert got["psnr"] == pytest.approx(np.mean(scores["PSNR"]), rel=1e-12)
    assert got["ssim"] == pytest.approx(np.mean(scores["SSIM"]), abs=SSIM_TOL)


def test_masked_ssim_is_mean_of_torchmetrics_map_over_region(real_pair):
    pred, target = real_pair
    pred, target = pred[:3], target[:3]
    mask = person_mask(512, 512, n=3)
    ours_fg = ssim_per_frame(pred, target, "standard", mask=mask)
    ours_bg = ssim_per_frame(pred, target, "standard", mask=~mask)
    for i in range(3):
        smap = ref_ssim_standard(pred[i], target[i], full=True)[1]
        assert abs(ours_fg[i] - smap[mask[i]].mean()) <= SSIM_TOL
        assert abs(ours_bg[i] - smap[~mask[i]].mean()) <= SSIM_TOL
    full = ssim_per_frame(pred, target, "standard", mask=np.ones((512, 512), bool))
    assert np.abs(full - ssim_per_frame(pred, target, "standard")).max() <= 1e-12


def test_standard_l1_and_psnr_equal_torchmetrics_on_real_frames(real_pair):
    from torchmetrics.functional import mean_absolute_error
    from torchmetrics.functional.image import peak_signal_noise_ratio

    pred, target = real_pair
    for i in range(len(pred)):
        p, t = _tm(pred[i]), _tm(target[i])
        assert l1(pred[i:i + 1], target[i:i + 1], "standard") == pytest.approx(
            float(mean_absolute_error(p, t)), abs=1e-6)
        # torchmetrics turns ln into dB with a float32 constant 10 / ln 10 (relative error 4.5e-8): 1e-6 relative
        assert psnr_per_frame(pred[i:i + 1], target[i:i + 1], "standard")[0] == pytest.approx(
            float(peak_signal_noise_ratio(p, t, data_range=1.0)), rel=1e-6)
    assert l1(pred, target, "standard") == pytest.approx(float(mean_absolute_error(_tm(pred), _tm(target))),
                                                         abs=1e-6)


def test_standard_ssim_is_not_the_scikit_image_form(real_pair):
    """v1.1 follows torchmetrics (whole mirror-padded map); scikit-image's Gaussian form crops the border."""
    pred, target = real_pair
    skimage_form = np.array([structural_similarity(p / 255.0, t / 255.0, gaussian_weights=True, sigma=1.5,
                                                   use_sample_covariance=False, data_range=1.0, channel_axis=-1)
                             for p, t in zip(pred, target)])
    assert np.abs(ssim_per_frame(pred, target, "standard") - skimage_form).max() > 1e-4


# ---------------------------------------------------------------- PSNR and L1
def test_psnr_disco_matches_reference_and_identical_is_100(random_pair):
    pred, target = random_pair
    ours = psnr_per_frame(pred, target, "disco")
    expected = np.array([ref_psnr_disco(p, t) for p, t in zip(pred, target)])
    np.testing.assert_array_equal(ours, expected)  # exact integer sums: bit-for-bit
    assert ours[0] == 100.0
    assert 5 < ours[1] < 12  # an unrelated frame scores low on the correct scale


def test_psnr_legacy_matches_uint8_wraparound(random_pair):
    pred, target = random_pair
    ours = psnr_legacy_per_frame(pred, target)
    expected = np.array([ref_psnr_legacy(p, t) for p, t in zip(pred, target)])
    np.testing.assert_array_equal(ours, expected)
    assert ours[0] == 100.0
    assert ours[1] > 24.06 and ours[1] - psnr_per_frame(pred, target, "disco")[1] > 15  # the bug inflates it


def test_psnr_legacy_never_below_24_06():
    rng = np.random.default_rng(3)
    # The worst case for the wrapped square: each pixel difference chosen to maximise (d*d) mod 256.
    worst = max(range(256), key=lambda d: (d * d) % 256)
    target = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    pred = np.stack([target[0] + np.uint8(worst)] + [rng.integers(0, 256, target.shape[1:], dtype=np.uint8)
                                                    for _ in range(5)])
    values = psnr_legacy_per_frame(pred, target)
    np.testing.assert_array_equal(values, [ref_psnr_legacy(p, t) for p, t in zip(pred, target)])
    assert values.min() >= 10 * math.log10(255) - 1e-12
    assert values.min() >= 24.06


def test_psnr_standard_matches_reference_and_cap(random_pair):
    pred, target = random_pair
    ours = psnr_per_frame(pred, target, "standard")
    expected = np.array([ref_psnr_standard(p, t) for p, t in zip(pred, target)])
    assert np.abs(ours - expected).max() <= 1e-9
    assert ours[0] == PSNR_CAP_DB == 100.0
    # One value one grey level off: 10*log10(3*H*W*255**2) dB, below the cap on a small frame, above it on a
    # large one, where it is capped.
    one_level = target[:1].copy()
    one_level[0, 0, 0, 0] ^= 1
    assert psnr(one_level, target[:1], "standard") == pytest.approx(10 * math.log10(3 * 48 * 64 * 255**2))
    big_t = np.zeros((1, 2048, 2048, 3), np.uint8)
    big_p = big_t.copy()
    big_p[0, 0, 0, 0] = 1
    assert psnr(big_p, big_t, "standard") == 100.0


def test_l1_both_profiles_match_reference(random_pair):
    pred, target = random_pair
    assert l1(pred, target, "disco") == pytest.approx(ref_l1_disco(pred, target), rel=1e-12)
    expected = np.array([np.abs(p / 255.0 - t / 255.0).mean() for p, t in zip(pred, target)])
    assert np.abs(l1_per_frame(pred, target, "standard") - expected).max() <= 1e-12
    assert l1_per_frame(pred, target, "standard")[0] == 0.0


def test_masked_l1_psnr_match_reference(random_pair):
    pred, target = random_pair
    n, h, w = target.shape[:3]
    masks = person_mask(h, w, n)
    for region in (masks, ~masks):
        l1_ref = [np.abs(p / 255.0 - t / 255.0)[m].mean() for p, t, m in zip(pred, target, region)]
        psnr_ref = [ref_psnr_standard(p, t, m) for p, t, m in zip(pred, target, region)]
        assert np.abs(l1_per_frame(pred, target, "standard", mask=region) - l1_ref).max() <= 1e-12
        assert np.abs(psnr_per_frame(pred, target, "standard", mask=region) - psnr_ref).max() <= 1e-9
    one = person_mask(h, w)
    got = pixel_metrics(pred, target, "standard", mask=one)
    assert set(got) == set(metric_names("standard", masked=True))
    assert np.abs(got["l1_fg"] - l1_per_frame(pred, target, "standard", mask=one)).max() == 0
    assert np.abs(got["psnr_bg"] - psnr_per_frame(pred, target, "standard", mask=~one)).max() == 0
    assert np.abs(got["ssim_fg"] - ssim_per_frame(pred, target, "standard", mask=one)).max() == 0


def test_empty_region_gives_nan_and_is_skipped():
    rng = np.random.default_rng(5)
    target = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    pred = noisy(target, 10, 6)
    masks = np.zeros((3, 32, 32), bool)
    masks[1, 8:24, 8:24] = True
    values = l1_per_frame(pred, target, "standard", mask=masks)
    assert np.isnan(values[0]) and np.isnan(values[2]) and np.isfinite(values[1])
    metric = L1("standard")
    metric.update(pred, target, mask=masks)
    assert metric.compute() == pytest.approx(values[1], rel=1e-12)
    assert (metric.count, metric.frames) == (1, 3)


# ---------------------------------------------------------------- pixel_metrics, classes
@pytest.mark.parametrize("profile", ["disco", "standard"])
def test_pixel_metrics_equals_single_metrics(random_pair, profile):
    pred, target = random_pair
    got = pixel_metrics(pred, target, profile)
    assert tuple(got) == metric_names(profile)
    np.testing.assert_array_equal(got["l1"], l1_per_frame(pred, target, profile))
    np.testing.assert_array_equal(got["psnr"], psnr_per_frame(pred, target, profile))
    np.testing.assert_array_equal(got["ssim"], ssim_per_frame(pred, target, profile))
    if profile == "disco":
        np.testing.assert_array_equal(got["psnr_legacy"], psnr_legacy_per_frame(pred, target))
    serial = pixel_metrics(pred, target, profile, workers=1)
    for name in got:
        np.testing.assert_array_equal(got[name], serial[name])


@pytest.mark.parametrize("cls,args", [(L1, ("disco",)), (PSNR, ("standard",)), (SSIM, ("disco",)),
                                      (SSIM, ("standard",)), (PSNRLegacy, ())])
def test_class_accumulation_equals_one_shot(random_pair, cls, args):
    pred, target = random_pair
    chunked, whole = cls(*args), cls(*args)
    for lo, hi in ((0, 2), (2, 3), (3, 5)):
        chunked.update(pred[lo:hi], target[lo:hi])
    whole.update(pred, target)
    assert chunked.compute() == pytest.approx(whole.compute(), rel=1e-12)
    assert chunked.frames == 5
    chunked.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        chunked.compute()


def test_pixel_metrics_class_pools_frames_across_videos(random_pair):
    pred, target = random_pair
    mask = person_mask(*target.shape[1:3], n=5)
    acc = PixelMetrics("standard")
    acc.update(pred[:2], target[:2], mask=mask[:2])
    acc.update(pred[2:], target[2:], mask=mask[2:])
    per_frame = pixel_metrics(pred, target, "standard", mask=mask)
    got = acc.compute()
    for name, values in per_frame.items():
        assert got[name] == pytest.approx(np.nanmean(values), rel=1e-12)
    with pytest.raises(ValueError, match="mask"):
        acc.update(pred, target)


# ---------------------------------------------------------------- sizes and errors
def test_disco_resizes_prediction_to_ground_truth_size(random_pair):
    pred, target = random_pair
    small = np.stack([cv2.resize(p, (32, 24), interpolation=cv2.INTER_AREA) for p in pred])
    resized = np.stack([cv2.resize(p, (64, 48)) for p in small])  # cv2 default: bilinear, as DisCo
    np.testing.assert_array_equal(match_size(small, 48, 64), resized)
    got = pixel_metrics(small, target, "disco")
    expected = pixel_metrics(resized, target, "disco")
    for name in got:
        np.testing.assert_array_equal(got[name], expected[name])
    with pytest.raises(ValueError, match="24x32 but target frames are 48x64"):
        pixel_metrics(small, target, "standard")


def test_bad_input_raises_clear_errors(random_pair):
    pred, target = random_pair
    with pytest.raises(ValueError, match=r"pred is float with values from .* must lie in \[0, 1\]"):
        psnr(pred.astype(np.float32), target)
    with pytest.raises(ValueError, match="target is float with values from nan"):
        psnr(pred, np.full(target.shape, np.nan))
    with pytest.raises(TypeError, match=r"pred must be uint8 \(0..255\) or float in \[0, 1\], got dtype int32"):
        psnr(pred.astype(np.int32), target)
    with pytest.raises(TypeError, match="target must be a numpy array or a torch tensor, got list"):
        psnr(pred, list(target))
    with pytest.raises(ValueError, match="neither the last dimension nor dimension 1 is 3"):
        psnr(pred[..., :2], target[..., :2])
    with pytest.raises(ValueError, match=r"pred must have shape \(N, H, W, 3\)"):
        l1(pred[0], target[0])
    with pytest.raises(ValueError, match="5 frames but target has 4"):
        ssim(pred, target[:4])
    with pytest.raises(ValueError, match="unknown pixel-metric profile"):
        pixel_metrics(pred, target, "fancy")
    with pytest.raises(ValueError, match="disco profile scores whole frames"):
        pixel_metrics(pred, target, "disco", mask=np.ones(target.shape[1:3], bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        l1(pred, target, "standard", mask=np.ones(target.shape[1:3], np.uint8))
    with pytest.raises(ValueError, match="mask must have shape"):
        l1(pred, target, "standard", mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="smaller than the 11x11 SSIM window"):
        ssim(pred[:, :8, :8], target[:, :8, :8], "standard")
    with pytest.raises(ValueError, match="takes no mask"):
        PSNRLegacy().update(pred, target, mask=np.ones(target.shape[1:3], bool))


def _input_forms(frames: np.ndarray) -> dict[str, object]:
    """The same uint8 frames in every form the metrics take: numpy or torch, NHWC or NCHW, uint8 or x / 255."""
    t = torch.from_numpy(frames)
    forms = {
        "numpy float64 NHWC": frames / 255.0,
        "numpy uint8 NCHW": frames.transpose(0, 3, 1, 2),
        "numpy float32 NCHW": (frames / np.float32(255)).transpose(0, 3, 1, 2),
        "torch uint8 NHWC": t,
        "torch uint8 NCHW": t.permute(0, 3, 1, 2),
        "torch float32 NHWC": t.float() / 255,
        "torch float32 NCHW": t.permute(0, 3, 1, 2).float() / 255,
        "torch float16 NCHW": (t.permute(0, 3, 1, 2).float() / 255).half(),
    }
    if torch.cuda.is_available():
        forms["torch cuda float32 NCHW"] = forms["torch float32 NCHW"].cuda()
    return forms


def test_tensors_and_float_frames_give_the_uint8_numbers(random_pair):
    pred, target = random_pair[0][:3], random_pair[1][:3]
    mask = np.zeros(target.shape[:3], bool)
    mask[:, 10:30, 20:50] = True
    expected = {"disco": pixel_metrics(pred, target, "disco"),
                "standard": pixel_metrics(pred, target, "standard", mask=mask)}
    legacy = psnr_legacy_per_frame(pred, target)
    for (form, p), t in zip(_input_forms(pred).items(), _input_forms(target).values()):
        region = torch.from_numpy(mask) if form.startswith("torch") else mask
        for profile, want in expected.items():
            got = pixel_metrics(p, t, profile, mask=region if profile == "standard" else None)
            assert got.keys() == want.keys()
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{form} {profile} {name}")
        np.testing.assert_array_equal(psnr_legacy_per_frame(p, t), legacy, err_msg=form)
        pooled = PixelMetrics("standard")
        pooled.update(p, t, region)
        assert pooled.compute()["ssim_fg"] == pytest.approx(expected["standard"]["ssim_fg"].mean(), rel=1e-14), form
        single = SSIM("disco")
        single.update(p, t)
        assert single.compute() == pytest.approx(expected["disco"]["ssim"].mean(), rel=1e-14), form


def test_frame_conversion_rules():
    assert as_frames("x", np.zeros((2, 3, 5, 3), np.uint8)).shape == (2, 3, 5, 3)  # last dim 3: channels-last
    assert as_frames("x", np.zeros((2, 3, 5, 4), np.uint8)).shape == (2, 5, 4, 3)  # else dim 1 = 3: channels-first
    assert as_frames("x", torch.tensor([0.0, 0.5, 0.998, 1.0]).reshape(1, 1, 4, 1).expand(1, 1, 4, 3))[
        0, 0, :, 0].tolist() == [0, 128, 254, 255]  # round(x * 255), ties to even
    with pytest.raises(ValueError, match=r"pred is float with values from 255 to 255; .* must lie in \[0, 1\]"):
        l1(torch.full((1, 3, 16, 16), 255.0), torch.zeros(1, 3, 16, 16))
    with pytest.raises(TypeError, match="got dtype bool"):
        l1(torch.zeros(1, 3, 16, 16, dtype=torch.bool), torch.zeros(1, 3, 16, 16))
