"""MagicAnimatePipeline: MagicAnimate's scheduler, windows that wrap around, guidance, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.magicanimate.model import MagicAnimateModel
from baselines.magicanimate.pipeline import (MagicAnimatePipeline, SamplingConfig, context_windows, make_scheduler,
                                             pad_frames)
from tests.helpers.magicanimate_standin import MICRO, nudged
from toolkit.models.codec import PixelCodec

SIZE = 16  # pixels; MICRO's 2x pixel codec makes 8x8 latents


@pytest.fixture(scope="module")
def model() -> MagicAnimateModel:
    return nudged()


def pipe(model: MagicAnimateModel, **sampling) -> MagicAnimatePipeline:
    return MagicAnimatePipeline(model, PixelCodec(2), SamplingConfig(**{"steps": 2, **sampling}))


def inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, SIZE, SIZE, generator=g), (torch.rand(n, 3, SIZE, SIZE, generator=g) * 255).to(torch.uint8)


def test_scheduler_is_magicanimates():
    s = make_scheduler()
    assert (s.config.beta_schedule, s.config.prediction_type) == ("linear", "epsilon")
    assert s.config.steps_offset == 1 and not s.config.clip_sample
    assert float(s.betas[0]) == pytest.approx(0.00085) and float(s.betas[-1]) == pytest.approx(0.012)
    s.set_timesteps(25)
    assert int(s.timesteps[0]) == 961 and int(s.timesteps[-1]) == 1


def test_windows_wrap_around_the_end():
    assert context_windows(32, 16, 4) == [list(range(16)), list(range(12, 28)), list(range(24, 32)) + list(range(8))]
    assert context_windows(10, 16, 4) == [list(range(10))]
    assert context_windows(16, 16, 4) == [list(range(16))]
    for n in range(17, 70):
        windows = context_windows(n, 8, 3)
        assert all(len(w) == 8 for w in windows)
        assert set().union(*windows) == set(range(n))


def test_one_window_equals_plain_sampling(model):
    ref, dp = inputs(5)
    p = pipe(model, window=8)
    np.testing.assert_array_equal(p(ref, dp), p(ref, dp, windowed=False))


def test_long_video_is_windowed_and_deterministic(model):
    ref, dp = inputs(7)
    p = pipe(model, window=4, overlap=1)
    a = p(ref, dp)
    assert a.shape == (7, SIZE, SIZE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, p(ref, dp))
    assert not np.array_equal(a, p(ref, dp, windowed=False))   # windows are not one pass over all frames
    assert not np.array_equal(a, p(ref, dp, seed=5))


def test_guidance_uses_the_reference(model):
    ref, dp = inputs(3)
    p = pipe(model)
    # with guidance 0 only the unconditional half counts, and it runs without the reference
    np.testing.assert_array_equal(p(ref, dp, guidance=0.0), p(1 - ref, dp, guidance=0.0))
    assert not np.array_equal(p(ref, dp, guidance=2.0), p(1 - ref, dp, guidance=2.0))


def test_tiled_noise_repeats_every_window(model):
    ref, dp = inputs(6)
    p = pipe(model, window=3, overlap=0, steps=1)
    same = p(ref, torch.cat([dp[:3], dp[:3]]))
    np.testing.assert_array_equal(same[:3], same[3:])   # same poses, same tiled noise, non-overlapping windows
    untiled = pipe(model, window=3, overlap=0, steps=1, tile_noise=False)(ref, torch.cat([dp[:3], dp[:3]]))
    assert not np.array_equal(untiled[:3], untiled[3:])


def test_frames_are_edge_padded_to_whole_windows_and_cut_back(model):
    frames = np.arange(5 * 2).reshape(5, 2)
    np.testing.assert_array_equal(pad_frames(frames, 4), np.concatenate([frames, frames[-1:].repeat(3, 0)]))
    assert pad_frames(torch.arange(8), 4).tolist() == list(range(8))
    assert pad_frames(torch.arange(5), 4).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    ref, dp = inputs(5)
    padded = pipe(model, window=4, overlap=1, steps=1)(ref, dp)
    assert padded.shape[0] == 5
    by_hand = pipe(model, window=4, overlap=1, steps=1, pad_frames=False)(ref, pad_frames(dp, 4))
    np.testing.assert_array_equal(padded, by_hand[:5])
    assert not np.array_equal(padded, pipe(model, window=4, overlap=1, steps=1, pad_frames=False)(ref, dp))


def test_cpu_runs_in_float32_with_a_cpu_generator(model):
    p = pipe(model)
    assert p.run_dtype() == torch.float32 and p.make_generator(1).device.type == "cpu"
    assert pipe(model, precision="float32").run_dtype() == torch.float32


def test_sampling_config_is_validated():
    for name in ("frame_fit", "precision", "generator"):
        with pytest.raises(ValueError, match=name):
            SamplingConfig(**{name: "bogus"})
    assert (SamplingConfig().frame_fit, SamplingConfig().precision, SamplingConfig().pad_frames) == (
        "squash", "float16", True)
    with pytest.raises(ValueError, match="unknown \\[sampling\\] keys"):
        SamplingConfig.from_dict({"long": "chain"})
    with pytest.raises(ValueError, match="overlap"):
        SamplingConfig(window=4, overlap=4)
    assert MICRO.control_downsample == 2
