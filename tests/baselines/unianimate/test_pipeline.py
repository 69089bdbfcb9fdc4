"""UniAnimatePipeline: guidance, first-frame conditioning, the `windows` and `chain` long-video modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from baselines.unianimate.pipeline import (SamplingConfig, UniAnimatePipeline, make_sampler, make_scheduler,
                                           RELEASE_COMMON, release_sampling, unianimate_timesteps,
                                           window_starts)
from toolkit.models.codec import PixelCodec

SIZE = 32  # pixels; the tiny config's 4x pixel codec makes 8x8 latents


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = UniAnimateModel(UniAnimateConfig.named("tiny")).eval()
    with torch.no_grad():  # zero-initialised output layers would make every frame identical: nudge all weights
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m


def pipe(model, **sampling) -> UniAnimatePipeline:
    return UniAnimatePipeline(model, PixelCodec(4), SamplingConfig(**{"steps": 2, **sampling}))


def inputs(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(3, SIZE, SIZE, generator=g)
    poses = (torch.rand(n, 3, SIZE, SIZE, generator=g) * 255).to(torch.uint8)
    return ref, torch.rand(3, SIZE, SIZE, generator=g), poses


def test_scheduler_is_unianimates():
    s = make_scheduler()
    assert s.config.prediction_type == "v_prediction" and s.config.timestep_spacing == "trailing"
    assert float(s.alphas_cumprod[-1]) == pytest.approx(0.0, abs=1e-8)   # zero terminal SNR
    s.set_timesteps(30)
    assert int(s.timesteps[0]) == 999 and len(s.timesteps) == 30


def test_window_starts_cover_every_frame_and_end_flush():
    assert window_starts(10, 16, 4) == [0]
    assert window_starts(40, 16, 4) == [0, 12, 24]
    assert window_starts(30, 16, 4) == [0, 12, 14]
    for n in range(2, 80):
        starts = window_starts(n, 8, 3)
        covered = np.zeros(n, int)
        for s in starts:
            covered[s:s + 8] += 1
        assert covered.min() >= 1 and starts[-1] + min(8, n) == n


def test_output_shape_dtype_and_determinism(model):
    ref, ref_pose, poses = inputs(5)
    a = pipe(model)(ref, ref_pose, poses)
    assert a.shape == (5, SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, pipe(model)(ref, ref_pose, poses))
    assert not np.array_equal(a, pipe(model)(ref, ref_pose, poses, seed=1))


def test_windows_over_one_window_equals_plain_sampling(model):
    ref, ref_pose, poses = inputs(6)
    windowed = pipe(model, window=8, overlap=2)(ref, ref_pose, poses, long="windows")
    plain = pipe(model, window=8, overlap=2)(ref, ref_pose, poses, windowed=False)
    assert np.array_equal(windowed, plain)
    # with more frames than a window the windows are really used, and give another (averaged) result
    ref, ref_pose, poses = inputs(12)
    assert not np.array_equal(pipe(model, window=8, overlap=2)(ref, ref_pose, poses),
                              pipe(model, window=8, overlap=2)(ref, ref_pose, poses, windowed=False))


def test_first_frame_conditioning_returns_the_given_first_frame(model):
    ref, ref_pose, poses = inputs(5)
    first = (torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(7)) * 255).to(torch.uint8)
    out = pipe(model)(ref, ref_pose, poses, first_frame=first)
    assert np.array_equal(out[0], first.permute(1, 2, 0).numpy())
    other = pipe(model)(ref, ref_pose, poses, first_frame=255 - first)
    assert not np.array_equal(out[1:], other[1:])    # the rest continue from the given frame


def test_chain_length_and_continuity_at_segment_joins(model):
    ref, ref_pose, poses = inputs(20)
    p = pipe(model, window=8, overlap=2)
    chain = p(ref, ref_pose, poses, long="chain")
    assert chain.shape == (20, SIZE, SIZE, 3)
    # the first segment is plain sampling of its 8 frames with the same noise
    assert np.array_equal(chain[:8], p(ref, ref_pose, poses[:8], windowed=False))
    # each later segment starts from the previous one's last frame, given clean: spy on the denoiser
    seen = []
    original = p._denoise

    def spy(poses_, cond, first_latent, *args):
        latents = original(poses_, cond, first_latent, *args)
        seen.append((first_latent, latents))
        return latents

    p._denoise = spy
    again = p(ref, ref_pose, poses, long="chain")
    assert np.array_equal(again, chain)
    assert [lat.shape[2] for _, lat in seen] == [8, 8, 6]        # frames 0-7, 7-14, 14-19
    assert seen[0][0] is None
    for (_, previous), (first, latents) in zip(seen, seen[1:]):
        assert torch.equal(first, previous[0, :, -1]) and torch.equal(latents[0, :, 0], first)


def test_guidance_zero_ignores_the_conditions(model):
    """Guidance 0 is the unconditional branch: pose, reference and reference pose must not matter."""
    ref, ref_pose, poses = inputs(4)
    ref2, ref_pose2, poses2 = inputs(4, seed=5)
    p = pipe(model, noise_prior_t=None)
    assert np.array_equal(p(ref, ref_pose, poses, guidance=0.0), p(ref2, ref_pose2, poses2, guidance=0.0))
    assert not np.array_equal(p(ref, ref_pose, poses, guidance=1.0), p(ref2, ref_pose2, poses2, guidance=1.0))


class _Oracle(torch.nn.Module):
    """A denoiser that knows the answer: the exact v for a fixed clean clip, whatever the conditions."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0, self.weight = x0, torch.nn.Parameter(torch.zeros(1))
        self.config = UniAnimateConfig.named("tiny")
        self.alphas = make_scheduler().alphas_cumprod

    def forward(self, x, t, pose, reference_latent, reference_pose, image_embeds=None, local_image=None):
        a = self.alphas[t.long()].view(-1, 1, 1, 1, 1)
        return (a.sqrt() * x - self.x0) / (1 - a).sqrt().clamp_min(1e-12)


@pytest.mark.parametrize("steps", [1, 7, 30])
def test_sampler_returns_the_clean_video_for_an_exact_denoiser(steps):
    """DDIM with v-prediction and zero terminal SNR must land exactly on x0 when v is exact, from the noise prior."""
    codec = PixelCodec(4)
    frames = torch.rand(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    x0 = codec.encode(frames).transpose(0, 1)[None]
    p = UniAnimatePipeline(_Oracle(x0), codec, SamplingConfig(steps=steps))
    ref, ref_pose, poses = inputs(5)
    out = p(ref, ref_pose, poses, windowed=False).astype(int)
    expected = (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy().astype(int)
    assert np.abs(out - expected).max() <= 1     # float32 rounding at the uint8 boundary, nothing more


def test_released_timesteps_are_the_released_loops():
    """UniAnimate's loop: 1 + k * (1000 // 30) from the top, 31 evaluations; each step goes 33 down, the last
    one to alpha_bar at t = 0 (the loop clamps t - 33 at 0)."""
    t = unianimate_timesteps(30)
    assert len(t) == 31 and int(t[0]) == 991 and int(t[-1]) == 1 and set((t[:-1] - t[1:]).tolist()) == {33}
    assert unianimate_timesteps(2).tolist() == [501, 1]
    s = make_sampler(SamplingConfig(steps=30, timesteps="unianimate"), 30, "cpu")
    assert torch.equal(s.timesteps, t) and float(s.final_alpha_cumprod) == float(s.alphas_cumprod[0])
    assert float(make_sampler(SamplingConfig(steps=30), 30, "cpu").final_alpha_cumprod) == 1.0
    with pytest.raises(ValueError, match="timesteps must be one of"):
        SamplingConfig(timesteps="leading")


class _Spy(_Oracle):
    """The oracle, recording each call's timestep and which conditions it got."""

    def __init__(self, x0: torch.Tensor):
        super().__init__(x0)
        self.calls = []

    def forward(self, x, t, pose, reference_latent, reference_pose, image_embeds=None, local_image=None):
        given = {"pose": pose, "reference_latent": reference_latent, "reference_pose": reference_pose,
                 "image_embeds": image_embeds, "local_image": local_image}
        self.calls.append((int(t[0]), x.shape[0], {k: v is not None for k, v in given.items()}))
        return super().forward(x, t, pose, reference_latent, reference_pose, image_embeds, local_image)


def test_published_settings_run_31_evaluations_with_an_unconditional_half_without_conditions():
    codec = PixelCodec(4)
    x0 = codec.encode(torch.rand(5, 3, SIZE, SIZE)).transpose(0, 1)[None]
    spy = _Spy(x0)
    p = UniAnimatePipeline(spy, codec, SamplingConfig(steps=30, timesteps="unianimate", uncond="none",
                                                      offset_noise=0.1))
    ref, ref_pose, poses = inputs(5)
    p(ref, ref_pose, poses, windowed=False, image_embeds=torch.randn(1, 32))
    assert [c[0] for c in spy.calls[::2]] == unianimate_timesteps(30).tolist()
    assert len(spy.calls) == 62 and all(batch == 1 for _, batch, _ in spy.calls)
    assert all(all(c[2].values()) for c in spy.calls[::2])            # conditional: everything given
    assert not any(any(c[2].values()) for c in spy.calls[1::2])       # unconditional: nothing at all
    spy.calls.clear()
    UniAnimatePipeline(spy, codec, SamplingConfig(steps=30))(ref, ref_pose, poses, windowed=False)
    assert len(spy.calls) == 30 and all(batch == 2 for _, batch, _ in spy.calls)
    assert spy.calls[0][0] == 999 and not spy.calls[0][2]["image_embeds"]


def test_uncond_none_ignores_every_condition_at_guidance_zero(model):
    ref, ref_pose, poses = inputs(4)
    ref2, ref_pose2, poses2 = inputs(4, seed=5)
    p = pipe(model, noise_prior_t=None, uncond="none")
    e1, e2 = torch.randn(1, 32), torch.randn(1, 32)
    assert np.array_equal(p(ref, ref_pose, poses, guidance=0.0, image_embeds=e1),
                          p(ref2, ref_pose2, poses2, guidance=0.0, image_embeds=e2))
    # the released unconditional branch (zero features) is another network input than zeroed images
    assert not np.array_equal(p(ref, ref_pose, poses, guidance=0.0),
                              pipe(model, noise_prior_t=None)(ref, ref_pose, poses, guidance=0.0))


def test_image_embedding_and_offset_noise_change_the_result(model):
    ref, ref_pose, poses = inputs(3)
    base = pipe(model)(ref, ref_pose, poses)
    embeds = torch.randn(1, 32, generator=torch.Generator().manual_seed(3))
    assert not np.array_equal(pipe(model)(ref, ref_pose, poses, image_embeds=embeds), base)
    offset = pipe(model, offset_noise=0.1)
    assert np.array_equal(offset(ref, ref_pose, poses), offset(ref, ref_pose, poses))
    assert not np.array_equal(offset(ref, ref_pose, poses), base)


def test_release_key_sets_give_the_model_what_the_release_gives():
    """UniAnimate_infer's {image, local_image, dwpose}: no frame-0 reference; {image, randomref, dwpose}: no local
    image; the unconditional half nothing; each config with its seed, noise prior and offset order."""
    codec = PixelCodec(4)
    spy = _Spy(codec.encode(torch.rand(3, 3, SIZE, SIZE)).transpose(0, 1)[None])
    ref, ref_pose, poses = inputs(3)
    expected = {"local_image": {"reference_latent": False, "reference_pose": False, "local_image": True},
                "randomref": {"reference_latent": True, "reference_pose": True, "local_image": False}}
    for keys, given in expected.items():
        spy.calls.clear()
        sampling = SamplingConfig.from_dict({**RELEASE_COMMON, **release_sampling("UniAnimate_infer", keys),
                                             "steps": 2})
        UniAnimatePipeline(spy, codec, sampling)(ref, ref_pose, poses, windowed=False, image_embeds=torch.randn(1, 32))
        assert all({k: c[2][k] for k in given} == given and c[2]["pose"] and c[2]["image_embeds"]
                   for c in spy.calls[::2])
        assert not any(any(c[2].values()) for c in spy.calls[1::2])
    short, long = release_sampling("UniAnimate_infer"), release_sampling("UniAnimate_infer_long")
    assert (short["seed"], short["noise_prior_t"], short["offset_order"]) == (11, 949, "before")
    assert (long["seed"], long["noise_prior_t"], long["offset_order"], long["window"], long["overlap"]) == \
        (7, 939, "after", 32, 8)
    with pytest.raises(ValueError, match="runs the key sets"):
        release_sampling("UniAnimate_infer_long", "local_image")


def test_half_model_samples_under_autocast_near_float32(model):
    """precision "fp16" (the release's run): a half-precision model is sampled under fp16 autocast with the
    latents and DDIM update in float32; here on CPU autocast, where the frames stay within 2 levels of fp32."""
    import copy

    ref, ref_pose, poses = inputs(3)
    values = {**RELEASE_COMMON, **release_sampling("UniAnimate_infer"), "steps": 2}
    full = UniAnimatePipeline(model, PixelCodec(4), SamplingConfig.from_dict(values))(ref, ref_pose, poses)
    half = UniAnimatePipeline(copy.deepcopy(model).half(), PixelCodec(4), SamplingConfig.from_dict(values))
    frames = half(ref, ref_pose, poses)
    assert frames.shape == full.shape
    assert np.abs(frames.astype(int) - full.astype(int)).max() <= 2
