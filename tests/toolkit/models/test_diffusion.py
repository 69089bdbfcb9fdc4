"""The shared diffusion pieces: each prediction type's target and the loss weights that cap low-noise timesteps."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from toolkit.models.diffusion import clean_from_prediction, prediction_target, snr_weight


def scheduler(kind: str) -> DDIMScheduler:
    return DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type=kind,
                         rescale_betas_zero_snr=True, timestep_spacing="trailing", clip_sample=False)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_the_target_is_what_the_scheduler_turns_back_into_the_clean_sample(kind):
    s = scheduler(kind)
    g = torch.Generator().manual_seed(0)
    z0, noise = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([10, 500, 900])
    target = prediction_target(s, z0, noise, t)
    zt = s.add_noise(z0, noise, t)
    for i in range(3):   # DDIM's own clean-sample estimate from the exact target is the clean sample
        s.set_timesteps(1000)
        x0 = s.step(target[i:i + 1], int(t[i]), zt[i:i + 1]).pred_original_sample
        torch.testing.assert_close(x0, z0[i:i + 1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(clean_from_prediction(s, zt, target, t), z0, rtol=1e-4, atol=1e-4)
    wrong = clean_from_prediction(s, zt, target + 0.5, t)   # a wrong prediction lands away from the clean sample
    assert float((wrong - z0).abs().mean()) > 0.05


def test_unknown_prediction_types_are_refused():
    s = scheduler("epsilon")
    s.register_to_config(prediction_type="flow")
    with pytest.raises(ValueError, match="flow"):
        prediction_target(s, torch.zeros(1), torch.zeros(1), torch.zeros(1, dtype=torch.long))


def test_weights_cap_low_noise_timesteps_and_leave_clean_sample_losses_alone():
    t = torch.tensor([0, 100, 500, 999])
    v = snr_weight(scheduler("v_prediction"), t, 5.0)
    assert float(v[-1]) == 1.0 and float(v[0]) < 0.01 and torch.all(v[1:] >= v[:-1])
    eps = snr_weight(scheduler("epsilon"), t, 5.0)
    assert float(eps[0]) < 0.01 and float(eps[-1]) == 1.0
    torch.testing.assert_close(snr_weight(scheduler("sample"), t, 5.0), torch.ones(4))
    torch.testing.assert_close(snr_weight(scheduler("epsilon"), t, None), torch.ones(4))


def test_one_scheduler_factory_refuses_a_misspelt_key():
    from toolkit.models.diffusion import make_scheduler

    scheduler = make_scheduler({"prediction_type": "epsilon"}, prediction_type="sample", steps_offset=1)
    assert scheduler.config.prediction_type == "sample" and scheduler.config.steps_offset == 1
    with pytest.raises(ValueError, match=r"unknown \[scheduler\] keys \['prediciton_type'\]"):
        make_scheduler({}, prediciton_type="sample")
