"""The published UniAnimate checkpoint layout maps one to one onto the paper-config UniAnimateModel."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.unianimate.convert import (
    NOT_IN_CHECKPOINT, ConversionError, convert_state_dict, load_published_checkpoint, map_name, module_map,
    read_published_keys)
from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel
from tests.helpers.unianimate_standin import SMALL, SMALL_RELEASE, as_published, perturbed

PAPER = UniAnimateConfig.named("paper")
# Model entries with no published tensor, and why: UniAnimate computes the "" text context at start-up
# with OpenCLIP ViT-H-14 (zero_y) and keeps it outside its state dict.
EXPECTED_UNCOVERED = {"text_context": "computed by OpenCLIP from the empty prompt, not stored in the checkpoint"}


@pytest.fixture(scope="module")
def published() -> dict[str, tuple[int, ...]]:
    return read_published_keys()


@pytest.fixture(scope="module")
def paper_shapes() -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = UniAnimateModel(PAPER)
    return {k: v.shape for k, v in model.state_dict().items()}


def stand_in(table: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device="meta") for k, shape in table.items()}


def test_published_table_is_the_published_model(published):
    assert len(published) == 1544
    assert sum(math.prod(s) for s in published.values()) == 1_416_564_300  # 5.67 GB of fp32
    assert published["input_blocks.0.0.weight"] == (320, 12, 3, 3)
    assert published["pre_image_condition.2.weight"] == (4096, 1024)
    assert published["input_blocks.0.1.proj_in.weight"] == (512, 320, 1)


def test_every_published_tensor_maps_with_its_shape(published, paper_shapes):
    assert set(NOT_IN_CHECKPOINT) == set(EXPECTED_UNCOVERED)
    modules, _ = module_map(PAPER)
    targets = {name: map_name(name, modules) for name in published}
    assert all(targets.values()), [k for k, v in targets.items() if not v]
    assert len(set(targets.values())) == len(published), "two published tensors map to one model key"
    converted = convert_state_dict(stand_in(published), PAPER)
    assert len(converted) == len(published) == 1544
    assert set(converted) == set(paper_shapes) - set(EXPECTED_UNCOVERED)
    for name, tensor in converted.items():
        assert tensor.shape == paper_shapes[name], name
    reshaped = [k for k in published if len(published[k]) != len(converted[targets[k]].shape)]
    assert reshaped and all(k.endswith(("proj_in.weight", "proj_out.weight")) for k in reshaped)
    assert len(reshaped) == 2 * 17  # the 17 temporal transformers' kernel-1 Conv1d projections


def test_known_correspondences(published):
    modules, _ = module_map(PAPER)
    pairs = {
        "input_blocks.0.0.weight": "unet.conv_in.weight",
        "input_blocks.0.1.transformer_blocks.0.attn2.to_k.weight":
            "unet.transformer_in.transformer_blocks.0.attn2.to_k.weight",
        "input_blocks.1.0.temopral_conv.conv4.3.weight": "unet.down_blocks.0.temp_convs.0.conv4.3.weight",
        "input_blocks.3.op.weight": "unet.down_blocks.0.downsamplers.0.conv.weight",
        "input_blocks.4.0.skip_connection.weight": "unet.down_blocks.1.resnets.0.conv_shortcut.weight",
        "input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight":
            "unet.down_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k.weight",
        "input_blocks.11.0.out_layers.3.weight": "unet.down_blocks.3.resnets.1.conv2.weight",
        "middle_block.3.emb_layers.1.weight": "unet.mid_block.resnets.1.time_emb_proj.weight",
        "output_blocks.2.1.conv.weight": "unet.up_blocks.0.upsamplers.0.conv.weight",
        "output_blocks.3.2.proj_in.weight": "unet.up_blocks.1.temp_attentions.0.proj_in.weight",
        "output_blocks.11.1.proj_out.weight": "unet.up_blocks.3.attentions.2.proj_out.weight",
        "out.2.weight": "unet.conv_out.weight",
        "time_embed.2.bias": "unet.time_embedding.linear_2.bias",
        "dwpose_embedding.5.weight": "pose_encoder.convs.5.weight",
        "randomref_embedding2.4.weight": "reference_encoder.convs.4.weight",
        "randomref_pose2_embedding_after.layers.0.0.fn.to_qkv.weight":
            "reference_pose_encoder.layers.0.attn.to_qkv.weight",
        "local_image_embedding_after.layers.0.1.net.2.bias": "local_image_encoder.layers.0.ff.3.bias",
        "pre_image_condition.0.weight": "image_proj.0.weight",
    }
    for pub, ours in pairs.items():
        assert pub in published
        assert map_name(pub, modules) == ours


def test_conversion_reports_unmapped_and_missing(published):
    bad = stand_in(published)
    bad["fps_embedding.0.weight"] = torch.empty(1280, 320, device="meta")
    del bad["output_blocks.5.3.conv.bias"]
    with pytest.raises(ConversionError) as err:
        convert_state_dict(bad, PAPER)
    assert "fps_embedding.0.weight" in str(err.value)
    assert "unet.up_blocks.1.upsamplers.0.conv.bias" in str(err.value)
    wrong = stand_in(published)
    wrong["out.2.weight"] = torch.empty(8, 320, 3, 3, device="meta")
    with pytest.raises(ConversionError, match="out.2.weight"):
        convert_state_dict(wrong, PAPER)


def test_load_published_checkpoint_round_trip(tmp_path):
    """A small model with the published structure, saved as a published-style pickle, loads back exactly."""
    config = SMALL
    source = perturbed(SMALL, seed=0)
    path = tmp_path / "published.pth"
    torch.save({"state_dict": as_published(source)}, path)
    state = load_published_checkpoint(path)
    assert any(v.ndim == 3 for k, v in state.items() if k.endswith("proj_in.weight"))
    target = UniAnimateModel(config).eval()
    result = target.load_state_dict(convert_state_dict(state, config), strict=False)
    assert result.missing_keys == list(NOT_IN_CHECKPOINT) and not result.unexpected_keys
    target.set_text_context(source.text_context)
    x = torch.randn(1, 4, 2, 8, 8)
    args = (x, torch.tensor([5]), torch.rand(1, 3, 2, 64, 64), torch.randn(1, 4, 8, 8), torch.rand(1, 3, 64, 64),
            torch.randn(1, 16))
    with torch.no_grad():
        assert torch.equal(source(*args), target(*args))


def test_weights_convert_writes_safetensors_that_load(tmp_path, monkeypatch):
    """`toolkit weights convert unianimate-16f-32f` on a published-style stand-in (the paper structure at small
    widths): the converted folder loads into our model and gives the source model's outputs."""
    from baselines.unianimate import convert
    from toolkit import weights
    from toolkit.cli import main as cli

    monkeypatch.setattr(convert.UniAnimateConfig, "named", classmethod(lambda cls, name: SMALL))
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    source = perturbed(SMALL, seed=1)
    published = tmp_path / "unianimate_16f_32f_non_ema_223000.pth"
    torch.save(as_published(source), published)
    assert cli(["weights", "convert", "unianimate-16f-32f"]) == 1          # not in the cache yet: the fix is printed
    weights.import_file(published, name="unianimate-16f-32f")
    assert cli(["weights", "convert", "unianimate-16f-32f"]) == 0
    out = weights.converted_dir("unianimate-16f-32f")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    model = convert.load_converted(out).eval()
    model.set_text_context(source.text_context)
    args = (torch.randn(1, 4, 2, 8, 8), torch.tensor([5]), torch.rand(1, 3, 2, 64, 64), torch.randn(1, 4, 8, 8),
            torch.rand(1, 3, 64, 64), torch.randn(1, 16))
    with torch.no_grad():
        assert torch.equal(model(*args), source(*args))


def test_published_method_names_each_missing_file_and_its_fix(tmp_path, monkeypatch):
    """`--checkpoint published` never substitutes: each absent file raises the registry's error naming the command
    that fetches it (or the conversion still to run)."""
    from baselines.unianimate import convert, method
    from tests.helpers.standin import openclip_state, pin, use_home
    from toolkit import weights

    monkeypatch.setattr(convert.UniAnimateConfig, "named", classmethod(lambda cls, name: SMALL_RELEASE))
    use_home(monkeypatch, tmp_path / "home")

    def install(name, obj):
        src = tmp_path / weights.ARTIFACTS[name].filename.rsplit("/", 1)[1]
        torch.save(obj, src)
        pin(monkeypatch, name, src)
        weights.import_file(src, name)
        return src

    with pytest.raises(weights.WeightsMissing, match="unianimate-16f-32f missing.*toolkit weights fetch unianimate"):
        method.UniAnimateMethod(checkpoint="published")
    src = install("unianimate-16f-32f", as_published(perturbed(SMALL_RELEASE, seed=2)))
    with pytest.raises(FileNotFoundError, match="run `toolkit weights convert unianimate-16f-32f` once"):
        method.UniAnimateMethod(checkpoint="published")
    convert.convert_published_file(src, weights.converted_dir("unianimate-16f-32f"))
    with pytest.raises(weights.WeightsMissing, match="toolkit weights fetch openclip-vit-h-14-laion2b"):
        method.UniAnimateMethod(checkpoint="published")
    install("openclip-vit-h-14-laion2b", openclip_state(text_width=64, vision_width=80, embed_dim=16))
    with pytest.raises(weights.WeightsMissing, match="toolkit weights fetch sd21-512-ema-pruned"):
        method.UniAnimateMethod(checkpoint="published")


def test_load_published_checkpoint_is_strict_like_the_release(tmp_path):
    """The release unwraps 'state_dict' and loads strictly: a non-tensor entry left in the dict is refused."""
    path = tmp_path / "published.pth"
    torch.save({"state_dict": {"time_embed.0.bias": torch.zeros(3), "step": 223000}}, path)
    with pytest.raises(ConversionError, match="step"):
        load_published_checkpoint(path)
    torch.save({"time_embed.0.bias": torch.zeros(3)}, path)
    assert list(load_published_checkpoint(path)) == ["time_embed.0.bias"]


def test_a_file_that_is_not_the_release_is_refused_by_its_registered_check(tmp_path, monkeypatch):
    """The registry proves a first-use file with the check UniAnimate registers (its artifact's check in baselines/unianimate/artifacts.py)."""
    from baselines.unianimate import convert
    from toolkit import weights

    monkeypatch.setattr(convert.UniAnimateConfig, "named", classmethod(lambda cls, name: SMALL))
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    wrong = tmp_path / "unianimate_16f_32f_non_ema_223000.pth"
    torch.save({"input_blocks.0.0.weight": torch.zeros(2)}, wrong)
    with pytest.raises(weights.WeightsUnreadable, match="not the published UniAnimate checkpoint"):
        weights.import_file(wrong, name="unianimate-16f-32f")
    assert not weights.cache_path("unianimate-16f-32f").exists()
