"""MagicAnimateModel: reference attention, zero-initialised ControlNet and motion modules, guidance's plain half."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from diffusers import UNet2DConditionModel, UNetMotionModel

from baselines.magicanimate.model import MagicAnimateConfig, MagicAnimateModel
from tests.helpers.magicanimate_standin import MICRO, fresh, inputs, nudged

# diffusers' UNetMotionModel norm axes (the release's pool ResNet norms over the window's frames)
DIFFUSERS_NORMS = dataclasses.replace(MICRO, video_norm="diffusers", reference_bank_dtype="model")


def plain_unet(m: MagicAnimateModel) -> UNetMotionModel:
    """The same denoiser weights in a UNetMotionModel with diffusers' own attention processors."""
    plain = UNetMotionModel.from_config(m.unet.config)
    plain.load_state_dict(m.unet.state_dict())
    return plain.eval()


@torch.no_grad()
def test_without_reference_the_denoiser_is_the_plain_unet():
    m = nudged(config=DIFFUSERS_NORMS)
    x, t, _, ref = inputs()
    ctx = m.text_context.expand(x.shape[0] * x.shape[2], -1, -1)
    expected = plain_unet(m)(x, t, ctx).sample
    torch.testing.assert_close(m.denoise(x, t), expected, rtol=1e-5, atol=1e-5)
    # a bank every sample ignores is no bank
    bank = m.encode_reference(ref, t)
    off = torch.zeros(x.shape[0], dtype=torch.bool)
    torch.testing.assert_close(m.denoise(x, t, bank, off), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(m.denoise(x, t, bank), expected, atol=1e-4)


@torch.no_grad()
def test_the_reference_changes_the_output_and_every_pair_is_banked():
    m = nudged()
    x, t, dp, ref = inputs()
    a, b = m(x, t, dp, ref), m(x, t, dp, ref + 1)
    assert (a - b).abs().max() > 1e-3
    bank = m.encode_reference(ref, t)
    assert sorted(bank) == m.reference_blocks and len(bank) == 1 + 2 * len(MICRO.up_block_types)
    assert all(name.startswith(("mid_block.", "up_blocks.")) for name in bank)


@torch.no_grad()
def test_the_unconditional_half_ignores_the_reference():
    m = nudged()
    x, t, dp, ref = inputs(b=1)
    x2, t2, dp2 = x.expand(2, -1, -1, -1, -1), t.expand(2), dp.expand(2, -1, -1, -1, -1)
    use = torch.tensor([False, True])
    a = m(x2, t2, dp2, ref.expand(2, -1, -1, -1), use)
    b = m(x2, t2, dp2, (ref + 1).expand(2, -1, -1, -1), use)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert (a[1] - b[1]).abs().max() > 1e-3


@torch.no_grad()
def test_at_initialisation_the_model_is_the_per_frame_image_unet():
    m = fresh(config=DIFFUSERS_NORMS)
    x, t, dp, _ = inputs()
    out = m(x, t, dp, None)
    # ControlNet residuals are zero: the DensePose render has no effect yet
    torch.testing.assert_close(out, m(x, t, torch.rand_like(dp), None), rtol=0, atol=0)
    image = UNet2DConditionModel(sample_size=8, in_channels=12, out_channels=12, down_block_types=MICRO.down_block_types,
                                 up_block_types=MICRO.up_block_types, block_out_channels=MICRO.block_out_channels,
                                 layers_per_block=1, norm_num_groups=4, cross_attention_dim=8, attention_head_dim=2)
    spatial = {k: v for k, v in m.unet.state_dict().items() if ".motion_modules." not in k}
    image.load_state_dict(spatial)
    b, c, f = x.shape[:3]
    per_frame = image(x.transpose(1, 2).flatten(0, 1), t.repeat_interleave(f), m.text_context.expand(b * f, -1, -1))
    expected = per_frame.sample.unflatten(0, (b, f)).transpose(1, 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # and frames interact once the motion modules are no longer zero
    with torch.no_grad():
        for _, module in m.motion_modules():
            module.proj_out.weight.normal_(0, 0.1)
    assert (m(x, t, dp, None) - expected).abs().max() > 1e-4


@torch.no_grad()
def test_release_norms_pool_the_window_in_resnets_and_not_in_motion_modules():
    release, other = nudged(), nudged(config=DIFFUSERS_NORMS)
    other.load_state_dict(release.state_dict())
    release.bank.read_dtype = None
    x, t, _, _ = inputs()
    # one frame: the two layouts agree; several: they do not
    torch.testing.assert_close(release.denoise(x[:, :, :1], t), other.denoise(x[:, :, :1], t), rtol=1e-5, atol=1e-5)
    assert (release.denoise(x, t) - other.denoise(x, t)).abs().max() > 1e-3
    norm = release.unet.down_blocks[0].resnets[0].norm1
    assert norm.pool_frames and not release.unet.down_blocks[0].motion_modules[0].norm.pool_frames
    b, c, f = 2, norm.num_channels, 3
    video = torch.randn(b, c, f, 4, 4)
    release.frames.n = f
    folded = video.transpose(1, 2).flatten(0, 1)
    expected = torch.nn.functional.group_norm(video, norm.num_groups, norm.weight, norm.bias, norm.eps)
    torch.testing.assert_close(norm(folded), expected.transpose(1, 2).flatten(0, 1), rtol=1e-5, atol=1e-5)


def test_motion_modules_sit_after_every_down_and_up_layer_and_not_in_the_mid_block():
    m = fresh()
    names = [n for n, _ in m.motion_modules()]
    down = sum(1 for n in names if ".down_blocks." in n)
    up = sum(1 for n in names if ".up_blocks." in n)
    n = len(MICRO.block_out_channels)
    assert (down, up) == (n * MICRO.layers_per_block, n * (MICRO.layers_per_block + 1))
    assert not any("mid_block" in n for n in names)
    assert all(k.startswith("unet.") and ".motion_modules." in k for k in m.motion_parameter_names())


def test_paper_config_has_the_published_layout():
    paper = MagicAnimateConfig.named("paper")
    assert paper.block_out_channels == (320, 640, 1280, 1280) and paper.cross_attention_dim == 768
    assert paper.controlnet_embedding_channels == (16, 32, 96, 256) and paper.control_downsample == 8
    assert (paper.motion_heads, paper.motion_max_seq_length) == (8, 24)
    with torch.device("meta"):
        m = MagicAnimateModel(paper)
    # 20 motion modules (2 per down layer, 3 per up layer, none in the mid block) and 10 paired attentions
    assert len(m.motion_modules()) == 20 and len(m.reference_blocks) == 10


def test_unused_encoder_tail_is_found():
    unused = fresh().unused_encoder_parameters()
    last = "appearance_encoder.up_blocks.1.attentions.1."
    assert unused and all(n.startswith(last) for n in unused)
    assert f"{last}transformer_blocks.0.norm1.weight" not in unused    # its input is banked
    assert f"{last}proj_out.weight" in unused


def test_save_and_load_round_trip(tmp_path):
    m = nudged()
    m.save_pretrained(tmp_path)
    back = MagicAnimateModel.from_pretrained(tmp_path).eval()
    x, t, dp, ref = inputs()
    with torch.no_grad():
        torch.testing.assert_close(back(x, t, dp, ref), m(x, t, dp, ref), rtol=0, atol=0)


def test_saved_per_component_as_diffusers_reads_them_and_old_flat_folders_load(tmp_path):
    from diffusers import ControlNetModel, UNetMotionModel
    from safetensors.torch import save_file

    m = nudged()
    m.save_pretrained(tmp_path / "new")
    for part, cls in (("unet", UNetMotionModel), ("controlnet", ControlNetModel)):
        theirs = cls.from_pretrained(tmp_path / "new" / part).state_dict()
        ours = getattr(m, part).state_dict()
        assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours), part
    assert (tmp_path / "new" / "appearance_encoder" / "diffusion_pytorch_model.safetensors").is_file()
    flat = tmp_path / "flat"  # a run folder written before the components: one model.safetensors
    flat.mkdir()
    (flat / "config.json").write_text((tmp_path / "new" / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, flat / "model.safetensors")
    for folder in (tmp_path / "new", flat):
        back = MagicAnimateModel.from_pretrained(folder).state_dict()
        assert all(torch.equal(back[k], v) for k, v in m.state_dict().items()), folder.name


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown MagicAnimateConfig keys"):
        MagicAnimateConfig.from_dict({"heads": 3})
    with pytest.raises(ValueError, match="block types"):
        MagicAnimateConfig(down_block_types=("Foo2D",) * 4)
