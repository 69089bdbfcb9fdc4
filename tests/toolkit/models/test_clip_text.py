"""The empty-prompt CLIP text embedding: tokens, causality, and the file check."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from tests.helpers.standin import clip_text_state
from toolkit.models import clip_text


def test_empty_prompt_tokens():
    assert clip_text.empty_prompt_ids(5).tolist() == [[49406, 49407, 49407, 49407, 49407]]


def test_each_position_sees_only_earlier_tokens():
    state = clip_text_state(64, 8)
    ids = torch.tensor([[49406, 5, 6, 7, 49407, 49407, 49407, 49407]])
    changed = ids.clone()
    changed[0, 3] = 9
    a, b = clip_text.encode(state, ids), clip_text.encode(state, changed)
    assert torch.equal(a[:, :3], b[:, :3]) and not torch.allclose(a[:, 3:], b[:, 3:])
    assert a.shape == (1, 8, 64)


def test_file_that_is_not_clip_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"x": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="model.safetensors: not a CLIP text encoder"):
        clip_text.empty_prompt_embedding(path)
