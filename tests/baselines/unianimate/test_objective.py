"""The UniAnimate training objective: the SNR clamp, the release's condition dropout, offset noise and local image."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from baselines.unianimate.objective import CONDITIONS, ObjectiveConfig, condition_keep, snr_weight, training_loss
from baselines.unianimate.pipeline import make_scheduler
from toolkit.models.codec import PixelCodec
from toolkit.models.diffusion import as_float, encode_frames


class ZeroModel(nn.Module):
    """Predicts zero velocity and records the timesteps it was asked about."""

    config = SimpleNamespace(local_image=False)

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, zt, t, pose, ref_latent, ref_pose, image_embeds=None, local_image=None, keep=None):
        self.seen.append(t.clone())
        return torch.zeros_like(zt)


def batch(n: int = 1, frames: int = 3, size: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    img = lambda *s: torch.randint(0, 256, s, generator=g, dtype=torch.uint8)  # noqa: E731
    return {"frames": img(n, frames, 3, size, size), "pose": img(n, frames, 3, size, size),
            "reference": img(n, 3, size, size), "reference_pose": img(n, 3, size, size)}


def test_snr_weight_is_one_at_zero_snr_and_clamps_low_noise_timesteps():
    scheduler = make_scheduler()
    t = torch.tensor([999, 900, 500, 100, 10, 0])
    alpha = scheduler.alphas_cumprod[t].double()
    snr = alpha / (1 - alpha)
    expected = torch.minimum(torch.ones_like(snr), 5.0 / (1 + snr))
    got = snr_weight(scheduler, t, 5.0)
    assert torch.allclose(got.double(), expected, atol=1e-6)
    assert got[0] == 1.0 and got[-1] < 0.01
    assert torch.equal(snr_weight(scheduler, t, None), torch.ones(6))


def test_a_scheduler_table_changes_the_target_to_the_clean_sample():
    codec, objective = PixelCodec(2), ObjectiveConfig(p_uncond=0.0, p_first_frame=0.0, offset_noise=0.0)
    b = batch()
    z0 = encode_frames(codec, as_float(b["frames"]))
    got = training_loss(ZeroModel(), codec, b, torch.Generator().manual_seed(0), objective,
                        make_scheduler(prediction_type="sample"))
    assert got.item() == pytest.approx(float((z0 ** 2).mean()), rel=1e-5)  # zero prediction: the error is x0
    velocity = training_loss(ZeroModel(), codec, b, torch.Generator().manual_seed(0), objective, make_scheduler())
    assert velocity.item() != pytest.approx(got.item(), rel=1e-2)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_loss_of_a_clip_is_scaled_by_its_snr_weight(seed):
    scheduler, codec = make_scheduler(), PixelCodec(2)
    plain = ObjectiveConfig(p_uncond=0.0, p_first_frame=0.0)
    clamped = ObjectiveConfig(p_uncond=0.0, p_first_frame=0.0, snr_gamma=2.0)
    model = ZeroModel()
    base = training_loss(model, codec, batch(), torch.Generator().manual_seed(seed), plain, scheduler)
    weighted = training_loss(model, codec, batch(), torch.Generator().manual_seed(seed), clamped, scheduler)
    t = model.seen[-1]
    assert torch.equal(model.seen[0], t)  # the same draws: only the weight differs
    assert weighted.item() == pytest.approx(base.item() * snr_weight(scheduler, t, 2.0).item(), rel=1e-5)


def test_snr_gamma_must_be_positive():
    with pytest.raises(ValueError, match="snr_gamma"):
        ObjectiveConfig.from_dict({"snr_gamma": 0})


class Recorder(nn.Module):
    """Predicts zero velocity and records every input it was given."""

    def __init__(self, local_image: bool = True):
        super().__init__()
        self.config = SimpleNamespace(local_image=local_image)
        self.calls: list[dict] = []

    def forward(self, zt, t, pose, ref_latent, ref_pose, image_embeds=None, local_image=None, keep=None):
        self.calls.append(dict(zt=zt.clone(), t=t.clone(), pose=pose, ref_latent=ref_latent, ref_pose=ref_pose,
                               image_embeds=image_embeds, local_image=local_image, keep=keep))
        return torch.zeros_like(zt)


def keep_rates(objective: ObjectiveConfig, b: int, draws: int = 4000) -> dict[str, torch.Tensor]:
    """(draws, b) keep masks per condition, one draw per generator seed."""
    masks = [condition_keep(b, objective, torch.Generator().manual_seed(s), "cpu") for s in range(draws)]
    return {name: torch.stack([m[name] for m in masks]) for name in masks[0]}


def test_release_dropout_drops_each_condition_on_its_own_and_never_the_reference():
    """One clip per batch: all conditions dropped 0.1, all kept 0.09 (the keep count loses to the zero count),
    else each condition dropped with 0.5 on its own: 0.1 + 0.81 * 0.5 = 0.505 per condition."""
    masks = keep_rates(ObjectiveConfig(), b=1)
    assert torch.all(masks["reference"] == 1)
    dropped = {name: 1 - masks[name][:, 0] for name in CONDITIONS}
    for name in CONDITIONS:
        assert abs(dropped[name].mean().item() - 0.505) < 0.03, (name, dropped[name].mean())
    every = dropped["pose"] * dropped["local_image"] * dropped["image"]
    none = (1 - dropped["pose"]) * (1 - dropped["local_image"]) * (1 - dropped["image"])
    assert abs(every.mean().item() - (0.1 + 0.81 / 8)) < 0.02          # all-zero, or all three of a free clip
    assert abs(none.mean().item() - (0.09 + 0.81 / 8)) < 0.02          # all-keep, or none of a free clip
    both = (dropped["pose"] * dropped["local_image"]).mean().item()
    assert abs(both - (0.1 + 0.81 / 4)) < 0.02                          # independent within a free clip


def test_release_dropout_chooses_clips_of_a_batch_by_count():
    masks = keep_rates(ObjectiveConfig(p_all_zero=0.0, p_all_keep=0.0, p_condition=0.5), b=4, draws=2000)
    for name in CONDITIONS:
        assert abs((1 - masks[name]).mean().item() - 0.5) < 0.03
    zero_only = keep_rates(ObjectiveConfig(p_all_zero=1.0, p_condition=0.0), b=4, draws=20)
    assert all(torch.all(zero_only[name] == 0) for name in CONDITIONS) and torch.all(zero_only["reference"] == 1)
    kept = keep_rates(ObjectiveConfig(p_all_zero=0.0, p_all_keep=1.0, p_condition=1.0), b=4, draws=20)
    assert all(torch.all(kept[name] == 1) for name in CONDITIONS)


def test_joint_dropout_drops_every_condition_of_a_clip_together():
    masks = keep_rates(ObjectiveConfig(condition_dropout="joint", p_uncond=0.3), b=2, draws=2000)
    for name in (*CONDITIONS, "reference"):
        assert torch.equal(masks[name], masks["pose"])
    assert abs((1 - masks["pose"]).mean().item() - 0.3) < 0.03


def test_the_masks_reach_the_model_as_feature_masks_or_as_zeroed_inputs():
    objective = ObjectiveConfig(p_all_zero=1.0, p_first_frame=0.0)
    model = Recorder()
    embeds = torch.ones(2, 5)
    training_loss(model, PixelCodec(2), batch(2), torch.Generator().manual_seed(0), objective, make_scheduler(),
                  embeds)
    call = model.calls[-1]  # "release": the inputs as given, the masks for the model to apply to the features
    assert sorted(call["keep"]) == sorted(CONDITIONS) and not any(m.any() for m in call["keep"].values())
    assert call["pose"].any() and call["local_image"].any() and call["image_embeds"].any()
    assert call["ref_latent"].abs().sum() > 0 and call["ref_pose"].abs().sum() > 0
    joint = ObjectiveConfig(condition_dropout="joint", p_uncond=1.0, p_first_frame=0.0)
    training_loss(model, PixelCodec(2), batch(2), torch.Generator().manual_seed(0), joint, make_scheduler(), embeds)
    call = model.calls[-1]
    assert call["keep"] is None and not call["ref_latent"].any() and not call["ref_pose"].any()
    assert not call["pose"].any() and not call["local_image"].any() and not call["image_embeds"].any()


def offsets(shape: str, seed: int = 0) -> torch.Tensor:
    """The spatial mean of the noise the objective drew, per (clip, channel, frame), with offset noise 10."""
    scheduler, codec, model = make_scheduler(), PixelCodec(2), Recorder(local_image=False)
    objective = ObjectiveConfig(offset_noise=10.0, offset_noise_shape=shape, p_first_frame=0.0)
    data = batch(2, frames=4)
    training_loss(model, codec, data, torch.Generator().manual_seed(seed), objective, scheduler)
    call = model.calls[-1]
    z0 = encode_frames(codec, as_float(data["frames"]), torch.Generator().manual_seed(seed))
    a = scheduler.alphas_cumprod[call["t"]].view(-1, 1, 1, 1, 1)
    noise = (call["zt"] - a.sqrt() * z0) / (1 - a).sqrt()
    return noise.mean(dim=(3, 4))


def test_offset_noise_is_drawn_per_frame_as_the_release_does_or_per_clip():
    per_frame, per_clip = offsets("frame"), offsets("clip")
    assert per_frame.std(dim=2).mean() > 3.0                # each frame its own shift (std 10)
    assert per_clip.std(dim=2).max() < 1.0                  # one shift per clip and channel
    assert per_clip.std(dim=(0, 1)).mean() > 3.0


def test_local_image_is_the_clips_first_frame_as_the_release_gives_it_or_the_reference():
    data = batch(2, frames=3)
    for choice, expected in (("first_frame", as_float(data["frames"][:, 0])), ("reference",
                                                                             as_float(data["reference"]))):
        model = Recorder()
        objective = ObjectiveConfig(p_all_zero=0.0, p_all_keep=1.0, local_image=choice)
        training_loss(model, PixelCodec(2), data, torch.Generator().manual_seed(0), objective, make_scheduler())
        assert torch.equal(model.calls[-1]["local_image"], expected)


def test_a_step_is_a_function_of_its_generator():
    model = Recorder()
    losses = [training_loss(model, PixelCodec(2), batch(2), torch.Generator().manual_seed(7), ObjectiveConfig(),
                            make_scheduler()) for _ in range(2)]
    assert losses[0].item() == losses[1].item()
    assert all(torch.equal(model.calls[0][k], model.calls[1][k]) for k in ("zt", "t", "pose", "local_image"))


@pytest.mark.parametrize("table, message", [({"condition_dropout": "each"}, "condition_dropout"),
                                            ({"offset_noise_shape": "pixel"}, "offset_noise_shape"),
                                            ({"local_image": "last_frame"}, "local_image"),
                                            ({"p_condition": 1.5}, "p_condition"),
                                            ({"p_all_keep": -0.1}, "p_all_keep")])
def test_objective_options_are_checked(table, message):
    with pytest.raises(ValueError, match=message):
        ObjectiveConfig.from_dict(table)
