"""TemporalMamba: identity at init, mixes frames both ways and nothing else, drops into UNet3DConditionModel."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch
from diffusers import UNet3DConditionModel
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel, TransformerTemporalModelOutput
from torch import nn

from toolkit.models.temporal_mamba import SelectiveSSM, TemporalMamba, replace_temporal_transformers

BATCH, FRAMES, CHANNELS, HEIGHT, WIDTH = 2, 12, 16, 3, 2


def make_module(seed: int = 0, perturb: bool = True, **kwargs) -> TemporalMamba:
    """A small float64 TemporalMamba; `perturb` gives its zero-initialised output projection random weights."""
    torch.manual_seed(seed)
    module = TemporalMamba(4, 8, in_channels=CHANNELS, norm_num_groups=4, **kwargs).double()
    if perturb:
        with torch.no_grad():
            module.proj_out.weight.normal_(std=0.5)
            module.proj_out.bias.normal_(std=0.5)
    return module


def video(seed: int = 1, requires_grad: bool = False) -> torch.Tensor:
    """(batch * frames, channels, height, width), frames of a video consecutive, as UNet3DConditionModel has it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH * FRAMES, CHANNELS, HEIGHT, WIDTH, generator=g, dtype=torch.float64)
    return x.requires_grad_(requires_grad)


def influence(module: nn.Module, batch: int, frame: int, row: int, col: int) -> torch.Tensor:
    """|d out[batch, frame, :, row, col] / d input| summed over channels: (batch, frames, height, width)."""
    x = video(requires_grad=True)
    out = module(x, num_frames=FRAMES).sample.reshape(BATCH, FRAMES, CHANNELS, HEIGHT, WIDTH)
    (grad,) = torch.autograd.grad(out[batch, frame, :, row, col].sum(), x)
    return grad.reshape(BATCH, FRAMES, CHANNELS, HEIGHT, WIDTH).abs().sum(2)


def test_identity_at_init():
    module = make_module(perturb=False)
    x = video()
    out = module(x, num_frames=FRAMES)
    assert isinstance(out, TransformerTemporalModelOutput)
    assert torch.equal(out.sample, x)
    as_tuple = module(x, num_frames=FRAMES, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1 and torch.equal(as_tuple[0], x)


def test_perturbed_output_changes():
    x = video()
    out = make_module()(x, num_frames=FRAMES).sample
    assert out.shape == x.shape
    assert (out - x).abs().mean() > 1e-2


@pytest.mark.parametrize("frame", [0, 5, FRAMES - 1])
def test_mixes_frames_in_both_directions_only_along_time(frame: int):
    """Output at (video, frame, location) depends on every frame of that video at that location, and on no other
    location or video. GroupNorm is taken out here: its statistics couple all locations of a video (as in
    diffusers' TransformerTemporalModel); the batch test below keeps it."""
    module = make_module()
    module.norm = nn.Identity()
    got = influence(module, batch=1, frame=frame, row=2, col=0)
    same_place = got[1, :, 2, 0]
    assert torch.all(same_place > 0), f"frames without influence: {(same_place == 0).nonzero().flatten().tolist()}"
    got[1, :, 2, 0] = 0
    assert torch.all(got == 0), "information leaked across locations or videos"


def test_reaches_beyond_the_conv_window():
    """Frames further away than the temporal conv reaches (d_conv - 1 = 3) still matter: the scan carries them."""
    module = make_module()
    module.norm = nn.Identity()
    got = influence(module, batch=0, frame=5, row=0, col=1)[0, :, 0, 1]
    assert got[0] > 0 and got[FRAMES - 1] > 0


@pytest.mark.parametrize("reverse", [False, True])
def test_each_direction_sees_one_side(reverse: bool):
    """The forward SSM (conv and scan) sees frames up to t, the backward one frames from t on."""
    torch.manual_seed(0)
    ssm = SelectiveSSM(d_inner=6, d_state=4, d_conv=4, dt_rank=2, reverse=reverse).double()
    x = torch.randn(1, FRAMES, 6, dtype=torch.float64, requires_grad=True)
    t = 5
    (grad,) = torch.autograd.grad(ssm(x)[0, t].sum(), x)
    seen = grad[0].abs().sum(-1) > 0
    assert seen[t]
    assert torch.equal(seen, torch.arange(FRAMES) >= t if reverse else torch.arange(FRAMES) <= t)


def test_no_mixing_across_videos_with_group_norm():
    got = influence(make_module(), batch=0, frame=3, row=1, col=1)
    assert torch.all(got[1] == 0)
    assert torch.all(got[0, :, 1, 1] > 0)


def test_scan_chunks_and_checkpointing_keep_the_result():
    x = video(requires_grad=True)
    plain = make_module(scan_max_states=None)
    want = plain(x, num_frames=FRAMES).sample
    (want_grad,) = torch.autograd.grad(want.square().sum(), x)
    for variant in ("chunked", "checkpointed"):
        module = make_module(scan_max_states=1) if variant == "chunked" else make_module(scan_max_states=None)
        module.gradient_checkpointing = variant == "checkpointed"
        got = module(x, num_frames=FRAMES).sample
        (got_grad,) = torch.autograd.grad(got.square().sum(), x)
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0, msg=variant)
        torch.testing.assert_close(got_grad, want_grad, atol=1e-10, rtol=0, msg=variant)


def test_signature_matches_transformer_temporal_model():
    """Every constructor argument of TransformerTemporalModel is accepted in the same position; same forward."""
    theirs = list(inspect.signature(TransformerTemporalModel.__init__).parameters)
    ours = list(inspect.signature(TemporalMamba.__init__).parameters)
    assert ours[:len(theirs)] == theirs
    assert list(inspect.signature(TemporalMamba.forward).parameters) == \
        list(inspect.signature(TransformerTemporalModel.forward).parameters)


def tiny_unet() -> UNet3DConditionModel:
    torch.manual_seed(0)
    return UNet3DConditionModel(
        block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=1, cross_attention_dim=32,
        attention_head_dim=8, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"))


def test_replace_in_unet3d_forward_and_backward():
    unet = tiny_unet()
    originals = {name: m for name, m in unet.named_modules() if isinstance(m, TransformerTemporalModel)}
    assert "transformer_in" in originals and len(originals) == 5
    assert replace_temporal_transformers(unet, d_state=8) == len(originals)
    modules = dict(unet.named_modules())
    assert not any(isinstance(m, TransformerTemporalModel) for m in modules.values())
    for name, old in originals.items():
        new = modules[name]
        assert isinstance(new, TemporalMamba)
        assert new.in_channels == old.in_channels and new.d_model == old.proj_in.out_features

    frames = 4
    sample = torch.randn(1, 4, frames, 16, 16, requires_grad=True)
    context = torch.randn(1, 7, 32)
    out = unet(sample, timestep=10, encoder_hidden_states=context).sample
    assert out.shape == sample.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert sample.grad is not None and sample.grad.abs().sum() > 0
    for name in originals:
        grad = modules[name].proj_out.weight.grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_unet_gradient_checkpointing_reaches_temporal_mamba():
    """diffusers' switch sets our flag, and checkpointed blocks give the same gradients."""
    unet = tiny_unet()
    replace_temporal_transformers(unet)
    for m in unet.modules():
        if isinstance(m, TemporalMamba):
            nn.init.normal_(m.proj_out.weight, std=0.1)
    sample = torch.randn(1, 4, 3, 8, 8)
    context = torch.randn(1, 5, 32)

    def grads() -> list[torch.Tensor]:
        unet.zero_grad()
        unet(sample, timestep=3, encoder_hidden_states=context).sample.square().mean().backward()
        return [p.grad.clone() for n, p in unet.named_parameters() if ".blocks." in n]

    want = grads()
    checkpoint = functools.partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
    unet._set_gradient_checkpointing(enable=True, gradient_checkpointing_func=checkpoint)
    assert all(m.gradient_checkpointing for m in unet.modules() if isinstance(m, TemporalMamba))
    got = grads()
    assert len(got) == len(want) > 0 and any(g.abs().sum() > 0 for g in want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-5)
