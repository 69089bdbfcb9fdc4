"""MagicAnimate's released files map one to one onto the paper-config MagicAnimateModel, and load through the registry."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.magicanimate import convert
from baselines.magicanimate.convert import (
    NO_PLACE, ConversionError, convert_state_dict, map_name, model_shapes, not_in_checkpoint, read_published_keys)
from baselines.magicanimate.model import MagicAnimateConfig, MagicAnimateModel
from tests.helpers.magicanimate_standin import MICRO, inputs, install_release, nudged

PAPER = MagicAnimateConfig.named("paper")
# values per released file, and its size on Hugging Face (GB as the hub prints them)
RELEASED = {"appearance_encoder": (662, 857_066_560, "3.43"), "densepose_controlnet": (340, 361_279_120, "1.45"),
            "temporal_attention": (1246, 1_277_503_364, "5.11")}


@pytest.fixture(scope="module")
def published() -> dict[str, dict[str, tuple[int, ...]]]:
    return read_published_keys()


def stand_in(table: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device="meta") for k, shape in table.items()}


def test_published_table_is_the_released_files(published):
    assert set(published) == set(RELEASED)
    for file, (n, values, gb) in RELEASED.items():
        assert len(published[file]) == n, file
        total = sum(math.prod(s) for s in published[file].values())
        assert total == values and f"{total * 4 / 1e9:.2f}" == gb, file  # fp32 bytes = the published file size
    motion = sum(math.prod(s) for k, s in published["temporal_attention"].items() if "motion_modules" in k)
    assert f"{motion * 4 / 1e9:.2f}" == "1.67"  # motion modules alone: far from 5.11 GB, so the file is the whole UNet


def test_every_published_tensor_maps_with_its_shape(published):
    shapes = model_shapes(PAPER)
    uncovered = not_in_checkpoint(PAPER)
    converted: dict[str, torch.Tensor] = {}
    for file, table in published.items():
        targets = [map_name(file, k) for k in table]
        placed = [t for t in targets if t is not None]
        assert len(set(placed)) == len(placed), f"{file}: two published tensors map to one model key"
        no_place = [k for k, t in zip(table, targets) if t is None]
        assert all(k.endswith(tuple(NO_PLACE)) for k in no_place)
        assert len(no_place) == (20 if file == "temporal_attention" else 0)  # the second table of 20 modules
        out = convert_state_dict(file, stand_in(table), PAPER)
        assert len(out) == len(table) - len(no_place)
        assert not set(out) & set(converted)
        converted.update(out)
    assert set(converted) == set(shapes) - set(uncovered)
    assert all(converted[k].shape == shapes[k] for k in converted)
    assert set(uncovered) == {"text_context"} | set(
        f"appearance_encoder.up_blocks.3.attentions.2.{k}" for k in
        ["proj_out.weight", "proj_out.bias"] + [f"transformer_blocks.0.{p}" for p in
         ["attn1.to_q.weight", "attn1.to_k.weight", "attn1.to_v.weight", "attn1.to_out.0.weight",
          "attn1.to_out.0.bias", "attn2.to_q.weight", "attn2.to_k.weight", "attn2.to_v.weight",
          "attn2.to_out.0.weight", "attn2.to_out.0.bias", "norm2.weight", "norm2.bias", "norm3.weight",
          "norm3.bias", "ff.net.0.proj.weight", "ff.net.0.proj.bias", "ff.net.2.weight", "ff.net.2.bias"]])


def test_known_correspondences(published):
    pairs = {
        ("temporal_attention", "down_blocks.0.motion_modules.1.temporal_transformer.transformer_blocks.0."
         "attention_blocks.1.to_q.weight"): "unet.down_blocks.0.motion_modules.1.transformer_blocks.0.attn2.to_q.weight",
        ("temporal_attention", "up_blocks.3.motion_modules.2.temporal_transformer.transformer_blocks.0.ff_norm.bias"):
            "unet.up_blocks.3.motion_modules.2.transformer_blocks.0.norm3.bias",
        ("temporal_attention", "up_blocks.1.motion_modules.0.temporal_transformer.transformer_blocks.0."
         "attention_blocks.0.pos_encoder.pe"): "unet.up_blocks.1.motion_modules.0.transformer_blocks.0.pos_embed.pe",
        ("temporal_attention", "down_blocks.2.motion_modules.0.temporal_transformer.proj_out.weight"):
            "unet.down_blocks.2.motion_modules.0.proj_out.weight",
        ("temporal_attention", "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"):
            "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        ("appearance_encoder", "up_blocks.3.attentions.2.transformer_blocks.0.norm1.weight"):
            "appearance_encoder.up_blocks.3.attentions.2.transformer_blocks.0.norm1.weight",
        ("densepose_controlnet", "controlnet_cond_embedding.blocks.5.weight"):
            "controlnet.controlnet_cond_embedding.blocks.5.weight",
    }
    for (file, pub), ours in pairs.items():
        assert pub in published[file]
        assert map_name(file, pub) == ours


def test_pruned_tail_is_what_the_encoder_never_uses():
    """The release's pruned encoder tail is exactly what our encoder's banked tokens do not depend on."""
    unused = set(MagicAnimateModel(MICRO).unused_encoder_parameters())
    assert unused == set(not_in_checkpoint(MICRO)) - {"text_context"}


def test_conversion_reports_problems(published):
    temporal = published["temporal_attention"]
    prefixed = {f"module.{k}": v for k, v in stand_in(temporal).items()}
    assert len(convert_state_dict("temporal_attention", prefixed, PAPER)) == 1226  # DDP prefixes are stripped
    motion = {k: v for k, v in stand_in(temporal).items() if "motion_modules" in k}
    assert set(convert_state_dict("temporal_attention", motion, PAPER)) == convert.motion_keys(model_shapes(PAPER))
    del motion["up_blocks.2.motion_modules.1.temporal_transformer.proj_in.bias"]
    with pytest.raises(ConversionError, match="unet.up_blocks.2.motion_modules.1.proj_in.bias"):
        convert_state_dict("temporal_attention", motion, PAPER)
    extra = stand_in(published["densepose_controlnet"]) | {"class_embedding.weight": torch.empty(3, device="meta")}
    with pytest.raises(ConversionError, match="class_embedding.weight"):
        convert_state_dict("densepose_controlnet", extra, PAPER)
    wrong = stand_in(published["appearance_encoder"]) | {"conv_in.weight": torch.empty(320, 9, 3, 3, device="meta")}
    with pytest.raises(ConversionError, match="conv_in.weight"):
        convert_state_dict("appearance_encoder", wrong, PAPER)
    tail = stand_in(published["appearance_encoder"]) | {
        "up_blocks.3.attentions.2.proj_out.weight": torch.empty(320, 320, 1, 1, device="meta")}
    with pytest.raises(ConversionError, match="proj_out.weight"):  # a place the release pruned: not silently taken
        convert_state_dict("appearance_encoder", tail, PAPER)


def _whole_unet() -> dict[str, torch.Tensor]:
    """A MICRO 3D UNet by the release's names, each tensor filled with its index (to see where it lands)."""
    shapes = convert.release_unet_shapes(MICRO)
    index = {k: float(i) for i, k in enumerate(shapes)}
    first = ".attention_blocks.0.pos_encoder."  # the two position tables of a motion module are equal
    return {k: torch.full(shape, index[k.replace(".attention_blocks.1.pos_encoder.", first)])
            for k, shape in shapes.items()}


@pytest.mark.parametrize("prefix", ["", "module.", "unet.", "module.unet."])
@pytest.mark.parametrize("motion_only", [False, True], ids=["whole", "motion-only"])
def test_the_temporal_file_loads_as_the_release_loader_does(prefix, motion_only):
    """demo/animate.py: `module.` is stripped; if any key is then unexpected, only motion-module keys load (a leading
    `unet.` stripped) and the rest is ignored, so a `unet.`-prefixed whole UNet keeps SD 1.5's spatial layers."""
    unet = _whole_unet()
    if motion_only:
        unet = {k: v for k, v in unet.items() if "motion_modules" in k}
    state, report = convert.release_unet_state({prefix + k: v for k, v in unet.items()}, MICRO)
    spatial_loaded = not motion_only and "unet." not in prefix
    expected = unet if spatial_loaded else {k: v for k, v in unet.items() if "motion_modules" in k}
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    assert len(report["ignored"]) == (len(unet) - len(expected))
    converted = convert_state_dict("temporal_attention", {prefix + k: v for k, v in unet.items()}, MICRO)
    assert bool(set(converted) & convert.spatial_keys(model_shapes(MICRO))) == spatial_loaded
    assert convert.motion_keys(model_shapes(MICRO)) <= set(converted)


def test_an_unexpected_key_makes_the_release_load_motion_modules_only():
    unet = _whole_unet()
    mixed = {**{f"unet.{k}": v + 1000 for k, v in unet.items() if "motion_modules" not in k},
             **{k: v for k, v in unet.items() if "motion_modules" not in k},
             **{k: v for k, v in unet.items() if "motion_modules" in k}, "global_step": 5}
    state, report = convert.release_unet_state(mixed, MICRO)
    # the first pass loaded every key that fitted (the unprefixed spatial ones), the second the motion modules
    assert state.keys() == unet.keys() and all(torch.equal(state[k], unet[k]) for k in unet)
    assert "global_step" in report["ignored"] and report["pass"] == ["1", "2"]
    assert sum(k.startswith("unet.") for k in report["ignored"]) == sum("motion_modules" not in k for k in unet)


def test_a_motion_key_that_fits_nowhere_fails_as_the_release_does():
    unet = _whole_unet()
    name = next(k for k in unet if k.endswith("motion_modules.0.temporal_transformer.proj_in.weight"))
    bad = {**unet, name: torch.zeros(3, 3)}
    with pytest.raises(ConversionError, match="proj_in.weight"):
        convert.release_unet_state(bad, MICRO)
    with pytest.raises(ConversionError, match="motion_modules.0.temporal_transformer.bogus"):
        convert.release_unet_state({**unet, name.replace("proj_in.weight", "bogus"): torch.zeros(1)}, MICRO)


def test_release_names_invert_map_name():
    for ours in model_shapes(MICRO):
        if ours.startswith("unet."):
            assert map_name("temporal_attention", convert.release_name(ours)) == ours


@pytest.mark.parametrize("motion_only", [False, True], ids=["whole-unet", "motion-modules-only"])
def test_convert_and_from_published_reproduce_the_model(tmp_path, monkeypatch, motion_only):
    """`toolkit weights convert magicanimate-temporal-attention` then `from_published` on a stand-in release of a
    small model with the paper's structure: the loaded model gives the source model's outputs exactly."""
    from toolkit import weights
    from toolkit.cli import main as cli
    from toolkit.models.clip_text import empty_prompt_embedding

    monkeypatch.setattr(convert.MagicAnimateConfig, "named", classmethod(lambda cls, name: MICRO))
    source = nudged(seed=3)
    install_release(monkeypatch, tmp_path, source, motion_only)
    with pytest.raises(FileNotFoundError, match="weights convert magicanimate-temporal-attention"):
        convert.from_published()
    assert cli(["weights", "convert", "magicanimate-temporal-attention"]) == 0
    out = weights.converted_dir("magicanimate-temporal-attention")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    model = convert.from_published().eval()
    context = empty_prompt_embedding(weights.path("sd15-text-encoder"), MICRO.text_tokens)
    assert torch.equal(model.text_context.detach(), context)
    source.set_text_context(context)
    with torch.no_grad():
        assert torch.equal(model(*inputs()), source(*inputs()))


def test_from_published_names_the_missing_file(tmp_path, monkeypatch):
    from tests.helpers.standin import use_home
    from toolkit import weights

    use_home(monkeypatch, tmp_path / "home")
    with pytest.raises(weights.WeightsMissing, match="toolkit weights fetch magicanimate-temporal-attention"):
        convert.from_published()
