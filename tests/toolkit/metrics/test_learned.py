"""Learned metrics: the Fréchet distance, LPIPS, FID, FID-VID and FVD.

Networks run with stand-in weights (random, right architecture, released on-disk format) imported
through the real registry; LPIPS and the FID Inception are checked against the ``lpips`` and
``pytorch_fid`` packages fed the same weights. The ``real_weights`` tier runs where the real files are
cached and skips otherwise.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.linalg
import torch

from tests.helpers import standin
from toolkit import weights
from toolkit.metrics import features, frechet
from toolkit.metrics import lpips as tk_lpips
from toolkit.metrics.networks import i3d, inception_fid, resnet3d
from toolkit.metrics.networks.loading import load_strict
from toolkit.metrics.networks.lpips_net import backbone_state_dict, load_lpips

RNG = np.random.default_rng(1234)
# The registry as the user has it, before the stand-in fixture re-points it (for the real_weights tier).
_USER_HOME = os.environ.get("TOOLKIT_HOME")
_USER_ARTIFACTS = dict(weights.ARTIFACTS)


def _frames(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _smooth_video(t: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """A moving gradient with noise: frames that change over time like a video."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = rng.uniform(0, 255, size=3)
    frames = [
        np.clip(base + 100 * np.sin((xx + 3 * k + seed) / 9.0)[..., None] + 40 * np.cos(yy / 7.0)[..., None]
                + rng.normal(0, 10, size=(size, size, 3)), 0, 255)
        for k in range(t)
    ]
    return np.stack(frames).astype(np.uint8)


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory):
    """Stand-in weights for every metric network, imported into a temporary cache for this module."""
    with pytest.MonkeyPatch.context() as mp:
        standin.use_home(mp, tmp_path_factory.mktemp("home"))
        work = tmp_path_factory.mktemp("standins")
        states = {
            "lpips-vgg16-backbone": standin.vgg16_backbone(1),
            "lpips-alexnet-backbone": standin.alexnet_backbone(2),
            "fid-inception-pytorch": standin.fid_inception_state(3),
            "fidvid-r3d50-kinetics": standin.resnet3d_checkpoint(4),
            "fvd-i3d-400": standin.i3d_state(5),
        }
        for name, state in states.items():
            standin.install(mp, name, state, work, legacy=name == "fidvid-r3d50-kinetics")
        yield states


# ----------------------------------------------------------------------------- Fréchet distance

def _spd(dim: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def test_frechet_matches_the_closed_form_for_diagonal_covariances() -> None:
    mu1, mu2 = RNG.normal(size=6), RNG.normal(size=6)
    s1, s2 = RNG.uniform(0.1, 3, size=6), RNG.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_scipy_sqrtm_on_random_spd_matrices() -> None:
    for dim in (3, 16, 64):
        s1, s2 = _spd(dim, RNG), _spd(dim, RNG)
        mu1, mu2 = RNG.normal(size=dim), RNG.normal(size=dim)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
        assert frechet.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_frechet_of_a_mean_shift_is_the_squared_shift() -> None:
    sigma = _spd(8, RNG)
    shift = RNG.normal(size=8)
    assert frechet.frechet_distance(np.zeros(8), sigma, shift, sigma) == pytest.approx(shift @ shift, rel=1e-7)


def test_frechet_is_stable_for_singular_covariances() -> None:
    a = RNG.normal(size=(5, 64))  # fewer samples than dimensions: rank-4 covariances
    b = RNG.normal(size=(7, 64)) + 0.5
    value = frechet.frechet_distance_from_features(a, b)
    assert np.isfinite(value) and value > 0
    same = frechet.frechet_distance_from_features(a, a)
    assert -1e-6 <= same <= 1e-8 * np.trace(np.cov(a, rowvar=False))
    zero = np.zeros((64, 64))
    assert frechet.frechet_distance(np.zeros(64), zero, np.ones(64), zero) == pytest.approx(64.0)


def test_frechet_from_features_sample_space_equals_covariance_route() -> None:
    for n1, n2, dim in ((5, 9, 40), (30, 12, 6), (3, 3, 3)):
        a, b = RNG.normal(size=(n1, dim)), RNG.normal(size=(n2, dim)) * 1.5 + 0.3
        via_covariances = frechet.frechet_distance(*frechet.feature_statistics(a), *frechet.feature_statistics(b))
        # singular covariances: sqrt of round-off eigenvalues limits the covariance route to ~1e-7 relative
        assert frechet.frechet_distance_from_features(a, b) == pytest.approx(via_covariances, rel=1e-6)
    with pytest.raises(ValueError, match="different dimensions"):
        frechet.frechet_distance_from_features(RNG.normal(size=(3, 4)), RNG.normal(size=(3, 5)))


def test_feature_statistics_and_input_checks() -> None:
    x = RNG.normal(size=(10, 4))
    mu, sigma = frechet.feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(ValueError, match="at least 2"):
        frechet.feature_statistics(x[:1])
    with pytest.raises(ValueError, match="NaN"):
        frechet.feature_statistics(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="covariances must be"):
        frechet.frechet_distance(mu, sigma, mu, sigma[:2, :2])


# ----------------------------------------------------------------------------- LPIPS

def _reference_lpips(monkeypatch: pytest.MonkeyPatch, net: str, backbone: dict, spatial: bool = False):
    """The lpips package's own LPIPS, its torchvision backbone replaced by one holding ``backbone``."""
    import lpips
    import torchvision

    factory = {"vgg": torchvision.models.vgg16, "alex": torchvision.models.alexnet}[net]
    model = factory(weights=None)
    model.features.load_state_dict({k.removeprefix("features."): v for k, v in backbone.items()})
    monkeypatch.setattr(lpips.pretrained_networks.tv, {"vgg": "vgg16", "alex": "alexnet"}[net],
                        lambda *args, **kwargs: model)
    return lpips.LPIPS(net=net, spatial=spatial, verbose=False).eval()


def _tensor01(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("profile,net", [("disco", "vgg"), ("standard", "alex")])
def test_lpips_equals_the_package_with_the_same_backbone(standins, monkeypatch, profile, net) -> None:
    backbone_name = "lpips-vgg16-backbone" if net == "vgg" else "lpips-alexnet-backbone"
    ref = _reference_lpips(monkeypatch, net, standins[backbone_name])
    pred, target = _frames(3, seed=1), _frames(3, seed=2)
    metric = tk_lpips.LPIPS(profile)
    ours = metric.update(pred, target)
    with torch.no_grad():
        if profile == "disco":  # DisCo: ToTensor outputs in [0, 1] passed straight in
            expected = ref(_tensor01(pred), _tensor01(target), normalize=False)
        else:
            expected = ref(_tensor01(pred) * 2 - 1, _tensor01(target) * 2 - 1)
    np.testing.assert_allclose(ours, expected.reshape(-1).numpy(), rtol=1e-6, atol=1e-6)
    assert ours.min() > 0
    result = metric.compute()
    assert result.value == pytest.approx(float(np.mean(ours)))
    assert result.weights == backbone_name
    assert result.weights_sha256 == weights.file_sha256(backbone_name)
    np.testing.assert_allclose(tk_lpips.lpips_score(pred, pred, profile).per_frame, 0.0, atol=1e-7)


def test_lpips_disco_and_standard_differ_on_input_range(standins) -> None:
    pred, target = _frames(2, seed=3), _frames(2, seed=4)
    alex = load_lpips("alex")
    standard = tk_lpips.lpips_per_frame(alex, pred, target, "standard")
    with torch.no_grad():
        unscaled = alex(_tensor01(pred), _tensor01(target), normalize=False).reshape(-1).numpy()
    assert not np.allclose(standard, unscaled)


def test_lpips_mask_averages_the_spatial_map(standins, monkeypatch) -> None:
    ref = _reference_lpips(monkeypatch, "alex", standins["lpips-alexnet-backbone"], spatial=True)
    pred, target = _frames(2, seed=5), _frames(2, seed=6)
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:40, 20:50] = True
    metric = tk_lpips.LPIPS("standard")
    inside = metric.update(pred, target, mask)
    with torch.no_grad():
        spatial = ref(_tensor01(pred) * 2 - 1, _tensor01(target) * 2 - 1)[:, 0].numpy()
    np.testing.assert_allclose(inside, spatial[:, mask].mean(axis=1), rtol=1e-5)
    outside = metric.update(pred, target, ~mask)
    assert not np.allclose(inside, outside)
    empty = metric.update(pred, target, np.zeros((2, 64, 64), dtype=bool))
    assert np.isnan(empty).all()
    result = metric.compute()
    assert result.masked and result.per_frame.shape == (6,)
    assert result.value == pytest.approx(float(np.mean(np.concatenate([inside, outside]))))
    with pytest.raises(ValueError, match="whole frames"):
        tk_lpips.LPIPS("disco").update(pred, target, mask)


def test_lpips_takes_tensors_with_the_numbers_of_uint8_frames(standins) -> None:
    pred, target = _frames(2, seed=5), _frames(2, seed=6)
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:40, 20:50] = True
    metric = tk_lpips.LPIPS("standard")
    expected = metric.update(pred, target, mask)
    got = metric.update(_tensor01(pred), torch.from_numpy(target).permute(0, 3, 1, 2), torch.from_numpy(mask))
    np.testing.assert_array_equal(got, expected)


def test_lpips_input_errors(standins) -> None:
    metric = tk_lpips.LPIPS("standard")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        metric.update(_frames(1).astype(np.float32), _frames(1))
    with pytest.raises(TypeError, match="got dtype int64"):
        metric.update(_frames(1).astype(np.int64), _frames(1))
    with pytest.raises(ValueError, match="resize them first"):
        metric.update(_frames(1, size=32), _frames(1, size=64))
    with pytest.raises(ValueError, match="unknown LPIPS profile"):
        tk_lpips.LPIPS("fancy")
    with pytest.raises(RuntimeError, match="before any update"):
        metric.compute()


def test_lpips_backbone_mapping_ignores_classifier_and_names_missing_keys(standins) -> None:
    model = load_lpips("alex")
    state = dict(standins["lpips-alexnet-backbone"])
    state["classifier.1.weight"] = torch.zeros(3)
    mapped = backbone_state_dict(model, state, "alexnet.pth")
    assert set(mapped) == {k for k in model.state_dict() if k.startswith("net.")}
    del state["features.3.weight"]
    with pytest.raises(ValueError, match="features.3.weight"):
        backbone_state_dict(model, state, "alexnet.pth")


# ----------------------------------------------------------------------------- FID

def test_fid_inception_equals_pytorch_fid_with_the_same_weights(standins, monkeypatch) -> None:
    import pytorch_fid.inception as pf

    state = standins["fid-inception-pytorch"]
    monkeypatch.setattr(pf, "load_state_dict_from_url", lambda *args, **kwargs: state)
    reference = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    frames = _frames(3, size=80, seed=7)
    with torch.no_grad():
        expected = reference(_tensor01(frames))[0].reshape(3, -1).double().numpy()
    ours = features.fid_features(inception_fid.load_fid_inception(), frames, "disco")
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_fid_end_to_end(standins) -> None:
    a = np.concatenate([_frames(2, seed=8), _smooth_video(2, seed=1)])
    b = np.concatenate([_frames(2, seed=9), _smooth_video(2, seed=2)])
    metric = features.FID("disco")
    metric.update(a, torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255)  # the same frames as a float tensor
    np.testing.assert_array_equal(np.stack(metric.pred_features), np.stack(metric.target_features))
    same = metric.compute()
    assert same.value <= 1e-6 * max(1.0, float(np.trace(np.cov(np.stack(metric.pred_features), rowvar=False))))
    metric.target_features = []
    metric.update(target=b)
    different = metric.compute()
    assert different.value > 1e-3 and different.num_pred == 4 and different.num_target == 4
    assert different.weights_sha256 == weights.file_sha256("fid-inception-pytorch")
    standard = features.fid(a, b, profile="standard")
    assert standard.value > 1e-3 and standard.value != pytest.approx(different.value)
    assert "PIL bicubic" in standard.protocol
    with pytest.raises(ValueError, match="at least 2"):
        features.fid(a[:1], b)


def test_fid_equals_torchmetrics_fid_with_our_inception(standins) -> None:
    """torchmetrics' FrechetInceptionDistance with our Inception (and its standard preprocessing) as the feature
    extractor gives our FID: the same features, the same distance. Measured 2.4e-5 relative apart: with 16
    samples in 2048 dimensions the covariances are singular, and torchmetrics sums the square roots of all
    eigenvalues of sigma1 @ sigma2, ~2,000 of them numerically zero (rounding noise), which biases its trace
    term; ours is exact on singular covariances (tested against the closed form above)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    model = inception_fid.load_fid_inception()

    class OurFeatures(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) uint8, as torchmetrics passes them
            return torch.from_numpy(features.fid_features(model, x.permute(0, 2, 3, 1).numpy(), "standard"))

    a = np.concatenate([_frames(8, size=64, seed=20), _smooth_video(8, size=64, seed=21)])
    b = np.concatenate([_frames(8, size=64, seed=22), _smooth_video(8, size=64, seed=23)])
    reference = FrechetInceptionDistance(feature=OurFeatures(), reset_real_features=True)
    reference.update(torch.from_numpy(b).permute(0, 3, 1, 2), real=True)
    reference.update(torch.from_numpy(a).permute(0, 3, 1, 2), real=False)
    expected = float(reference.compute())
    assert features.fid(a, b, profile="standard").value == pytest.approx(expected, rel=1e-4)


def test_fid_inception_rejects_wrong_keys(standins) -> None:
    state = dict(standins["fid-inception-pytorch"])
    state["Mixed_7c.branch_pool.conv.weights"] = state.pop("Mixed_7c.branch_pool.conv.weight")
    with pytest.raises(ValueError, match="Mixed_7c.branch_pool.conv.weight"):
        load_strict(inception_fid.FIDInceptionV3(), state, "pt_inception.pth")


# ----------------------------------------------------------------------------- FID-VID

class _RecordingNet(torch.nn.Module):
    """Stands in for a video network: records the clips it is given, returns their per-clip mean."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.clips: list[torch.Tensor] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.clips.append(x.clone())
        return x.mean(dim=(1, 3, 4))

    forward = features


def test_fid_vid_clips_pad_the_last_segment_and_subtract_the_mean() -> None:
    video = np.full((20, 40, 40, 3), 200, dtype=np.uint8)
    video[-1] = 10
    net = _RecordingNet()
    out = features.fid_vid_features(net, video, "segments")
    clips = torch.cat(net.clips)
    assert clips.shape == (2, 3, 16, 112, 112)
    mean = torch.tensor(resnet3d.PIXEL_MEAN)[:, None, None, None]
    torch.testing.assert_close(clips[0], (200 - mean).expand(3, 16, 112, 112))
    torch.testing.assert_close(clips[1, :, 3:], (10 - mean).expand(3, 13, 112, 112))  # frame 19 repeated
    assert out.shape == (1, 16)
    net.clips.clear()
    assert features.fid_vid_features(net, video, "sliding").shape == (5, 16)
    assert features.fid_vid_features(net, video[:10], "sliding").shape == (0, 2048)


@pytest.mark.slow
def test_fid_vid_end_to_end(standins) -> None:
    a = [_smooth_video(16, seed=3), _smooth_video(16, seed=4)]
    b = [_smooth_video(16, seed=5), _smooth_video(16, seed=6)]
    metric = features.FIDVID()
    metric.update(a, torch.from_numpy(np.stack(a)).permute(0, 1, 4, 2, 3))  # a (B, T, 3, H, W) uint8 tensor
    np.testing.assert_array_equal(np.stack(metric.pred_features), np.stack(metric.target_features))
    same = metric.compute()
    assert same.value <= 1e-6 * max(1.0, float(np.trace(np.cov(np.stack(metric.pred_features), rowvar=False))))
    metric.target_features = []
    metric.update(target=np.stack(b))
    different = metric.compute()
    assert different.value > 1e-6 and different.num_pred == 2 == different.num_target
    assert different.details["clips"] == "segments" and different.weights == "fidvid-r3d50-kinetics"
    assert different.weights_sha256 == weights.file_sha256("fidvid-r3d50-kinetics")


def test_resnet3d_checkpoint_format_and_wrong_keys(standins) -> None:
    checkpoint = standins["fidvid-r3d50-kinetics"]
    state = resnet3d.state_dict_from_checkpoint(checkpoint, "r3d.pth")
    assert all(not k.startswith("module.") for k in state)
    load_strict(resnet3d.ResNet3D50(), state, "r3d.pth")  # no BN counters in the file: accepted
    state["layer4.2.bn3.bias_renamed"] = state.pop("layer4.2.bn3.bias")
    with pytest.raises(ValueError, match="layer4.2.bn3.bias"):
        load_strict(resnet3d.ResNet3D50(), state, "r3d.pth")
    with pytest.raises(ValueError, match="'state_dict'"):
        resnet3d.state_dict_from_checkpoint({"model": {}}, "r3d.pth")
    with pytest.raises(ValueError, match="expects clips"):
        resnet3d.ResNet3D50().features(torch.zeros(1, 3, 8, 112, 112))


# ----------------------------------------------------------------------------- FVD

def test_fvd_clip_selection_per_profile(standins) -> None:
    video = _smooth_video(20, size=32, seed=7)
    net = _RecordingNet()
    assert features.fvd_features(net, video, starts=[0, 4]).shape == (2, 16)
    assert torch.cat(net.clips).shape == (2, 3, 16, 224, 224)
    net.clips.clear()
    features.fvd_features(net, video, starts=None)
    assert net.clips[0].shape == (1, 3, 20, 224, 224)  # whole video, one sample
    assert features.sliding_starts(20) == [0, 1, 2, 3, 4] and features.sliding_starts(15) == []

    first = features.sampled_starts(40, 5, seed=3, video=0)
    assert first == features.sampled_starts(40, 5, seed=3, video=0)
    assert first != features.sampled_starts(40, 5, seed=3, video=1)
    assert features.sampled_starts(40, 5, 3, "synth_031") == features.sampled_starts(40, 5, 3, "synth_031")
    assert all(0 <= s <= 24 for s in first) and features.sampled_starts(10, 2, 0, 0) == [0, 0]

    metric = features.FVD("standard", clips_per_video=3, seed=11)
    metric.model = net
    metric.update([video, video[:10]], [video])
    assert len(metric.pred_features) == 6 and len(metric.target_features) == 3
    result = metric.compute()
    assert result.details["clips"] == "sampled" and result.details["seed"] == 11
    assert result.details["clips_per_video"] == 3 and result.details["videos"] == {"pred": 2, "target": 1}
    with pytest.raises(ValueError, match="takes clips"):
        features.FVD("disco", clips="sampled")


def test_fvd_clips_of_a_video_do_not_depend_on_the_other_videos_scored(standins) -> None:
    """Scoring a subset (e.g. --allow-partial) gives the shared videos the same clips as the full set."""
    videos = {f"v{k}": _smooth_video(40, size=32, seed=k) for k in range(3)}

    def clips_of(ids: list[str]) -> dict[str, list[torch.Tensor]]:
        net = _RecordingNet()
        metric = features.FVD("standard", clips_per_video=2, seed=5)
        metric.model = net
        out = {}
        for video_id in ids:
            net.clips.clear()
            metric.update([videos[video_id]], None, video_ids=[video_id])
            out[video_id] = [c.clone() for c in net.clips]
        return out

    full, subset = clips_of(["v0", "v1", "v2"]), clips_of(["v1", "v2"])
    for video_id in ("v1", "v2"):
        assert all(torch.equal(a, b) for a, b in zip(full[video_id], subset[video_id]))
    # keyed by position (no ids) the shared videos would get other clips
    assert features.sampled_starts(40, 2, 5, 1) != features.sampled_starts(40, 2, 5, 0)
    with pytest.raises(ValueError, match="video ids"):
        features.FVD("standard").update([videos["v0"]], None, video_ids=["a", "b"])


@pytest.mark.slow
def test_fvd_end_to_end(standins) -> None:
    a, b = _smooth_video(17, seed=8), _smooth_video(17, seed=9)
    metric = features.FVD("disco")
    metric.update(a, torch.from_numpy(a).double() / 255)  # 2 windows per side; target: a float64 (T, H, W, 3) tensor
    np.testing.assert_array_equal(np.stack(metric.pred_features), np.stack(metric.target_features))
    same = metric.compute()
    assert same.value <= 1e-6 * max(1.0, float(np.trace(np.cov(np.stack(metric.pred_features), rowvar=False))))
    metric.target_features = []
    metric.update(target=b)
    different = metric.compute()
    assert different.value > 1e-6 and different.num_pred == 2 == different.num_target
    assert different.details["clips"] == "sliding" and different.weights == "fvd-i3d-400"


def test_i3d_registry_file_with_wrong_keys_fails_loudly(standins, tmp_path, monkeypatch) -> None:
    state = dict(standins["fvd-i3d-400"])
    state["Mixed_5c.b3b.conv3d.weight"] = state["Mixed_5c.b3b.conv3d.weight"][:, :10]
    standin.use_home(monkeypatch, tmp_path / "home")
    standin.install(monkeypatch, "fvd-i3d-400", state, tmp_path / "src")
    with pytest.raises(ValueError, match=r"i3d_pretrained_400.pt.*wrong shapes.*Mixed_5c.b3b.conv3d.weight"):
        features.FVD()


def test_metrics_raise_weights_missing_without_files(tmp_path, monkeypatch) -> None:
    standin.use_home(monkeypatch, tmp_path)
    for make, name in ((features.FID, "fid-inception-pytorch"), (features.FIDVID, "fidvid-r3d50-kinetics"),
                       (features.FVD, "fvd-i3d-400"), (tk_lpips.LPIPS, "lpips-vgg16-backbone")):
        with pytest.raises(weights.WeightsMissing) as info:
            make()
        assert info.value.reason == f"weights: {name} missing"


def test_video_input_errors(standins) -> None:
    metric = features.FVD()
    with pytest.raises(ValueError, match=r"pred\[0\] is float with values from 2 to 2"):
        metric.update(np.full((16, 8, 8, 3), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"pred\[0\] must have shape"):
        metric.update([np.zeros((16, 8, 8), dtype=np.uint8)])
    with pytest.raises(ValueError, match="needs pred, target or both"):
        metric.update()


# ----------------------------------------------------------------------------- real weights

@pytest.fixture
def user_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the stand-in fixture for one test: the user's cache and the real table."""
    if _USER_HOME is None:
        monkeypatch.delenv("TOOLKIT_HOME", raising=False)
    else:
        monkeypatch.setenv("TOOLKIT_HOME", _USER_HOME)
    for name, artifact in _USER_ARTIFACTS.items():
        monkeypatch.setitem(weights.ARTIFACTS, name, artifact)


def _require(name: str) -> None:
    if not weights.available(name):
        pytest.skip(f"weights: {name} missing")


@pytest.mark.real_weights
@pytest.mark.parametrize("name", sorted(weights.ARTIFACTS))
def test_real_artifact_matches_the_registry(user_registry, name: str) -> None:
    _require(name)
    assert weights.status(name).state == "present"


@pytest.mark.real_weights
@pytest.mark.parametrize("profile", ["disco", "standard"])
def test_real_lpips_is_zero_on_identical_frames_and_positive_otherwise(user_registry, profile: str) -> None:
    _require(tk_lpips.BACKBONES[tk_lpips.PROFILES[profile]["net"]])
    metric = tk_lpips.LPIPS(profile)
    frames = _smooth_video(2, seed=10)
    np.testing.assert_allclose(metric.update(frames, frames), 0.0, atol=1e-6)
    noisy = np.clip(frames.astype(int) + RNG.integers(-40, 40, frames.shape), 0, 255).astype(np.uint8)
    assert (metric.update(frames, noisy) > 0.01).all()


@pytest.mark.real_weights
def test_real_fid_inception_features(user_registry) -> None:
    _require(inception_fid.ARTIFACT)
    feats = features.fid_features(inception_fid.load_fid_inception(), _smooth_video(2, seed=11))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all() and (feats >= 0).all()


@pytest.mark.real_weights
def test_real_resnet3d_features(user_registry) -> None:
    _require(resnet3d.ARTIFACT)
    feats = features.fid_vid_features(resnet3d.load_resnet3d50(), _smooth_video(16, seed=12))
    assert feats.shape == (1, 2048) and np.isfinite(feats).all()


@pytest.mark.real_weights
def test_real_i3d_logits(user_registry) -> None:
    _require(i3d.ARTIFACT)
    logits = features.fvd_features(i3d.load_i3d(), _smooth_video(16, seed=13), starts=[0])
    assert logits.shape == (1, 400) and np.isfinite(logits).all()
