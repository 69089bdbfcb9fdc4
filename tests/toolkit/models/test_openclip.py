"""OpenCLIP's towers in plain torch: equal to open_clip on a fixture it made, and the structure UniAnimate uses.

The fixture (tests/toolkit/models/openclip_reference.safetensors, ~125 kB) was written by
scripts/openclip_reference.py with open_clip 3.3.0: a random OpenCLIP model of ViT-H-14's layout at
width 16 (2 heads of 8 per tower, 2 blocks each, 28 px images) and UniAnimate's tensors computed through
open_clip's own modules. The larger comparison (ViT-H-14's head widths, 224 px) is in the README.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.standin import openclip_fixture, openclip_state
from toolkit.models import openclip


@pytest.fixture(scope="module")
def fixture():
    return openclip_fixture()


def test_equals_open_clip_on_its_fixture(fixture):
    state, expected, image = fixture
    pixels = openclip.preprocess(image, openclip.image_size(state))
    assert openclip.image_size(state) == 28
    assert torch.equal(pixels, expected["pixels"])
    torch.testing.assert_close(openclip.text_context(state, head_width=8), expected["penultimate"],
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(openclip.text_context(state, skip_last=0, head_width=8), expected["last"],
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(openclip.image_embedding(state, pixels, head_width=8), expected["embedding"],
                               rtol=0, atol=1e-5)


def test_head_count_and_layer_matter(fixture):
    """The fixture would not be met with the wrong head count or layer: they change the result."""
    state, expected, image = fixture
    assert not torch.allclose(openclip.text_context(state, head_width=16), expected["penultimate"], atol=1e-3)
    assert not torch.allclose(openclip.text_context(state, head_width=8), expected["last"], atol=1e-3)
    pixels = openclip.preprocess(image, 28)
    assert not torch.allclose(openclip.image_embedding(state, pixels, head_width=16), expected["embedding"],
                              atol=1e-3)


def test_standin_has_open_clips_names(fixture):
    """The stand-in state dict used in the reproduce test has exactly open_clip's key names."""
    state, _, _ = fixture
    assert set(openclip_state(text_layers=2, vision_layers=2)) == set(state)


def test_empty_prompt_is_start_end_then_zero_padding():
    ids = openclip.empty_prompt_ids()
    assert ids.shape == (1, 77) and ids[0, :3].tolist() == [49406, 49407, 0] and int(ids[0, 2:].sum()) == 0


def test_causal_mask_and_padding_rows():
    """Position i sees tokens 0..i only: changing the padding token's embedding leaves <start> and <end> alone."""
    state = openclip_state(text_width=64, vision_width=80)
    changed = dict(state, **{"token_embedding.weight": state["token_embedding.weight"].clone()})
    changed["token_embedding.weight"][0] += 1.0
    a, b = openclip.text_context(state), openclip.text_context(changed)
    assert a.shape == (1, 77, 64)
    assert torch.equal(a[:, :2], b[:, :2]) and not torch.allclose(a[:, 2:], b[:, 2:])


def test_penultimate_is_the_last_layer_of_the_tower_without_its_last_block():
    state = openclip_state(text_layers=3)
    shorter = {k: v for k, v in state.items() if not k.startswith("transformer.resblocks.2.")}
    torch.testing.assert_close(openclip.text_context(state), openclip.text_context(shorter, skip_last=0),
                               rtol=0, atol=0)


def test_preprocess_hand_checked():
    """A flat colour stays flat under any resize: each pixel is (value / 255 - mean) / std, at 224 x 224."""
    image = np.zeros((300, 200, 3), np.uint8)
    image[...] = (10, 128, 250)
    pixels = openclip.preprocess(image)
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == torch.float32
    for c, value in enumerate((10, 128, 250)):
        want = (value / 255 - openclip.MEAN[c]) / openclip.STD[c]
        assert torch.allclose(pixels[0, c], torch.full((224, 224), want), atol=1e-6)
    half = np.zeros((224, 224, 3), np.uint8)   # already 224: the resize keeps the pixels
    half[:, 112:] = 255
    out = openclip.preprocess(half)
    assert torch.allclose(out[0, 0, :, :112], torch.tensor(-openclip.MEAN[0] / openclip.STD[0]))
    assert torch.allclose(out[0, 0, :, 112:], torch.tensor((1 - openclip.MEAN[0]) / openclip.STD[0]))


def test_image_embedding_is_the_projected_class_token():
    """With every block's output projections zeroed the tower is ln_post(class + position 0) @ proj."""
    state = openclip_state(vision_width=80, vision_layers=2)
    for k in state:
        if k.startswith("visual.transformer.") and (".out_proj." in k or ".c_proj." in k):
            state[k] = torch.zeros_like(state[k])
    pixels = torch.randn(2, 3, 224, 224)
    cls = state["visual.class_embedding"] + state["visual.positional_embedding"][0]
    cls = torch.nn.functional.layer_norm(cls, (80,), state["visual.ln_pre.weight"], state["visual.ln_pre.bias"])
    want = torch.nn.functional.layer_norm(cls, (80,), state["visual.ln_post.weight"], state["visual.ln_post.bias"])
    out = openclip.image_embedding(state, pixels)
    assert out.shape == (2, 16)
    torch.testing.assert_close(out, (want @ state["visual.proj"]).expand(2, -1), rtol=0, atol=1e-5)


def test_conditioner_from_file(tmp_path):
    state = openclip_state()
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(state, path)
    conditioner = openclip.OpenCLIPConditioner.from_file(path)
    torch.testing.assert_close(conditioner.empty_text_context(), openclip.text_context(state), rtol=0, atol=0)
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    torch.testing.assert_close(conditioner.embed_image(image),
                               openclip.image_embedding(state, openclip.preprocess(image)), rtol=0, atol=0)


def test_file_that_is_not_openclip_is_named(tmp_path):
    path = tmp_path / "model.bin"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="model.bin: not an OpenCLIP ViT state dict"):
        openclip.OpenCLIPConditioner.from_file(path)
    scaled = openclip_state()
    scaled["transformer.resblocks.0.ls_1.gamma"] = torch.ones(64)
    with pytest.raises(ValueError, match="layer scale"):
        openclip.check_state(scaled, "scaled.bin")
