"""Stand-ins of UniAnimate-style models for the tests: a tiny model whose zero-initialised layers act, the
published structure at small widths, and a model's weights under the release's names."""

from __future__ import annotations

import dataclasses

import torch

from baselines.unianimate.convert import NOT_IN_CHECKPOINT, module_map
from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel

TINY = UniAnimateConfig.named("tiny")


def perturbed(config: UniAnimateConfig = TINY, seed: int = 0) -> UniAnimateModel:
    """A tiny model in eval mode with every weight nudged, so zero-initialised layers pass signal like trained ones."""
    torch.manual_seed(seed)
    model = UniAnimateModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def as_published(model: UniAnimateModel) -> dict[str, torch.Tensor]:
    """A model's weights under published names (the inverse mapping), temporal projections as Conv1d weights."""
    modules, temporal = module_map(model.config)
    inverse = {ours: pub for pub, ours in modules.items()}
    out = {}
    for name, tensor in model.state_dict().items():
        if name in NOT_IN_CHECKPOINT:
            continue
        parts = name.split(".")
        cut = next(c for c in range(len(parts) - 1, 0, -1) if ".".join(parts[:c]) in inverse)
        pub_module = inverse[".".join(parts[:cut])]
        pub = ".".join([pub_module, *parts[cut:]])
        is_temporal_proj = pub_module in temporal and parts[-2] in ("proj_in", "proj_out")
        out[pub] = tensor.unsqueeze(-1) if is_temporal_proj and parts[-1] == "weight" else tensor.clone()
    return out


# The published structure (four levels, attention at the three highest, 2 adapters) at small widths.
SMALL = UniAnimateConfig(block_out_channels=(32, 32, 64, 64), attention_head_dim=16, layers_per_block=1,
                         cross_attention_dim=64, image_embed_dim=16, text_tokens=3, concat_dim=4,
                         pose_channels=(8, 8), reference_channels=(8, 8))
# ... with OpenCLIP's 77 "" tokens, as the release runs (toolkit.models.openclip's context)
SMALL_RELEASE = dataclasses.replace(SMALL, text_tokens=77)
