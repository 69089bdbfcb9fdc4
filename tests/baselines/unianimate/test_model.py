"""UniAnimateModel: configs, shapes (tiny for real, paper on the meta device), conditioning paths, save/load."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from tests.helpers.unianimate_standin import TINY, perturbed

B, F, LAT = 2, 3, 8  # latent 8x8 -> pose renders at 32x32 for the tiny config


def inputs(config: UniAnimateConfig = TINY, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c, s = config.latent_channels, LAT * config.pose_downsample
    return dict(sample=torch.randn(B, c, F, LAT, LAT, generator=g), timestep=torch.tensor([10, 700]),
                pose=torch.rand(B, 3, F, s, s, generator=g), reference_latent=torch.randn(B, c, LAT, LAT, generator=g),
                reference_pose=torch.rand(B, 3, s, s, generator=g),
                image_embeds=torch.randn(B, config.image_embed_dim, generator=g))


@pytest.fixture(scope="module")
def model() -> UniAnimateModel:
    return perturbed()


@pytest.fixture(scope="module")
def isolated(model) -> UniAnimateModel:
    return without_temporal_mixing(copy.deepcopy(model))


@pytest.fixture(scope="module")
def x() -> dict[str, torch.Tensor]:
    return inputs()


@pytest.fixture(scope="module")
def base(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(**x)


def without_temporal_mixing(model: UniAnimateModel) -> UniAnimateModel:
    """Zero every path between frames (UNet temporal attention and convs, pose-encoder attention)."""
    with torch.no_grad():
        for m in model.unet.modules():
            if isinstance(m, TransformerTemporalModel):
                m.proj_out.weight.zero_()
                m.proj_out.bias.zero_()
            if hasattr(m, "conv4") and isinstance(m.conv4, torch.nn.Sequential):
                m.conv4[-1].weight.zero_()
                m.conv4[-1].bias.zero_()
        for layer in model.pose_encoder.layers:
            layer.attn.to_out.weight.zero_()
            layer.attn.to_out.bias.zero_()
    return model


def test_configs_load_and_ignore_other_tables(tmp_path):
    paper = UniAnimateConfig.named("paper")
    assert paper.block_out_channels == (320, 640, 1280, 1280) and paper.layers_per_block == 2
    assert paper.attention_head_dim == 64 and paper.cross_attention_dim == 1024 and paper.concat_dim == 8
    assert paper.num_tokens == 4 and paper.text_tokens == 77 and paper.pose_downsample == 8
    assert paper.down_block_types[-1] == "DownBlock3D" and paper.up_block_types[0] == "UpBlock3D"
    assert TINY.latent_channels == 48 and TINY.pose_downsample == 4 and TINY.local_image
    text = (tmp_path / "c.toml")
    text.write_text('[model]\nconcat_dim = 6\n[train]\nlr = 1e-4\n[sampling]\nsteps = 4\n')
    assert UniAnimateConfig.from_toml(text).concat_dim == 6
    text.write_text('[model]\nconcat_dims = 6\n')
    with pytest.raises(ValueError, match="concat_dims"):
        UniAnimateConfig.from_toml(text)


def test_tiny_size_and_forward_shape(model, base):
    n = sum(p.numel() for p in model.parameters())
    assert n < 10_000_000
    assert model.unet.conv_in.in_channels == TINY.latent_channels + TINY.concat_dim
    assert base.shape == (B, TINY.latent_channels, F, LAT, LAT)
    assert torch.isfinite(base).all()


def test_paper_forward_shape_on_meta():
    paper = UniAnimateConfig.named("paper")
    with torch.device("meta"):
        model = UniAnimateModel(paper)
        assert sum(p.numel() for p in model.parameters()) == 1_416_564_300
        assert model.unet.conv_in.in_channels == 12 and model.text_context.shape == (1, 77, 1024)
        h, w = 8, 4
        out = model(torch.empty(1, 4, 2, h, w), torch.tensor([999]), torch.empty(1, 3, 2, 8 * h, 8 * w),
                    torch.empty(1, 4, h, w), torch.empty(1, 3, 8 * h, 8 * w), torch.empty(1, 1024),
                    local_image=torch.empty(1, 3, 8 * h, 8 * w))
    assert out.shape == (1, 4, 2, h, w)
    # the paper config trains sharded, each UNet block an FSDP unit: the classes it names are the model's
    from baselines.unianimate.recipe import UniAnimateRecipe
    from toolkit.train.loop import resolve_config

    train = resolve_config(UniAnimateRecipe().load_config("paper"))["train"]
    assert train["distributed"] == "fsdp"
    units = [m for m in model.modules() if type(m).__name__ in train["fsdp_wrap"]]
    assert {type(m).__name__ for m in units} == set(train["fsdp_wrap"]) and len(units) == 9
    assert sum(p.numel() for m in units for p in m.parameters()) > 0.99 * 1_416_564_300


def test_unet_sees_reference_as_frame_zero(model, x):
    seen = {}
    hook = model.unet.register_forward_pre_hook(lambda m, args, kw: seen.update(x=args[0]), with_kwargs=True)
    with torch.no_grad():
        out = model(**x)
    hook.remove()
    assert seen["x"].shape == (B, TINY.latent_channels + TINY.concat_dim, F + 1, LAT, LAT)
    assert torch.equal(seen["x"][:, :TINY.latent_channels, 1:], x["sample"])
    assert out.shape[2] == F


def test_output_depends_on_reference_in_every_frame(model, isolated, x, base):
    with torch.no_grad():
        moved = model(**{**x, "reference_latent": x["reference_latent"] + 1.0})
        pose_moved = model(**{**x, "reference_pose": 1.0 - x["reference_pose"]})
    for k in range(F):
        assert not torch.allclose(base[:, :, k], moved[:, :, k], atol=1e-5)
        assert not torch.allclose(base[:, :, k], pose_moved[:, :, k], atol=1e-5)
    # The reference is a separate frame, not a channel concat: without paths between frames it cannot act.
    with torch.no_grad():
        assert torch.allclose(isolated(**x), isolated(**{**x, "reference_latent": x["reference_latent"] + 1.0}))


def test_pose_of_frame_k_drives_output_frame_k(model, isolated, x, base):
    with torch.no_grad():
        isolated_base = isolated(**x)
    for k in range(F):
        pose = x["pose"].clone()
        pose[:, :, k] = 1.0 - pose[:, :, k]
        with torch.no_grad():
            moved = isolated(**{**x, "pose": pose})
        changed = [not torch.allclose(isolated_base[:, :, j], moved[:, :, j], atol=1e-6) for j in range(F)]
        assert changed == [j == k for j in range(F)], f"pose frame {k} changed output frames {changed}"
    with torch.no_grad():  # with temporal mixing, changing one pose frame still reaches its own output frame
        assert not torch.allclose(base[:, :, k], model(**{**x, "pose": pose})[:, :, k], atol=1e-5)


def test_image_embedding_and_dropped_conditions(model, x, base):
    with torch.no_grad():
        other = model(**{**x, "image_embeds": -x["image_embeds"]})
        ctx = model.context(None, B)
        dropped = model(x["sample"], x["timestep"], None, None, None)
    assert not torch.allclose(base, other, atol=1e-5)
    assert ctx.shape == (B, TINY.text_tokens + TINY.num_tokens, TINY.cross_attention_dim)
    assert torch.count_nonzero(ctx[:, TINY.text_tokens:]) == 0
    assert dropped.shape == base.shape and not torch.allclose(dropped, base, atol=1e-5)
    with pytest.raises(ValueError, match="pose"):
        model(x["sample"], x["timestep"], x["pose"][..., :-2], x["reference_latent"], x["reference_pose"])


def test_save_load_round_trip(tmp_path, model, x, base):
    model.save_pretrained(tmp_path / "m")
    # the Hub layout: config, weights and the model card huggingface_hub writes
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = UniAnimateModel.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(base, loaded(**x))
    fresh = UniAnimateModel(TINY).eval()
    with torch.no_grad():
        assert not torch.equal(fresh(**x), loaded(**x))


def test_gradient_checkpointing_gives_the_same_gradients(model, x):
    grads = []
    for ckpt in (False, True):
        m = copy.deepcopy(model)
        if ckpt:
            m.enable_gradient_checkpointing()
        m(**x).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    m.disable_gradient_checkpointing()
    assert all("forward" not in vars(block) for block in m.unet.down_blocks)


def test_mamba_temporal_variant(x):
    if importlib.util.find_spec("toolkit.models") is None or \
            importlib.util.find_spec("toolkit.models.temporal_mamba") is None:
        pytest.skip("toolkit.models.temporal_mamba is not in this checkout yet (written by another engineer)")
    config = UniAnimateConfig.from_dict({**TINY.to_dict(), "temporal": "mamba"})
    model = UniAnimateModel(config).eval()
    assert not any(isinstance(m, TransformerTemporalModel) for m in model.unet.modules())
    with torch.no_grad():
        out = model(**x)
    assert out.shape == (B, TINY.latent_channels, F, LAT, LAT) and torch.isfinite(out).all()


def test_a_dropped_conditions_features_are_those_of_an_absent_condition(model, x, base):
    """`keep` zeroes encoded features per sample (UniAnimate's misc_dropout): sample 0 with pose, local image and
    image tokens dropped equals sample 0 given none of them; sample 1 (kept) is unchanged."""
    local = torch.rand(B, 3, *x["pose"].shape[-2:], generator=torch.Generator().manual_seed(3))
    keep = {name: torch.tensor([0.0, 1.0]) for name in ("pose", "local_image", "image")}
    with torch.no_grad():
        full = model(**x, local_image=local)
        masked = model(**x, local_image=local, keep=keep)
        absent = model(x["sample"], x["timestep"], None, x["reference_latent"], x["reference_pose"], None)
    torch.testing.assert_close(masked[1], full[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(masked[0], absent[0], rtol=0, atol=1e-5)
    assert not torch.allclose(masked[0], full[0], atol=1e-4)
