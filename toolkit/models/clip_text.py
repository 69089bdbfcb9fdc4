"""CLIP's text transformer, enough to embed the empty prompt that SD 1.5-era animation models condition on.

MagicAnimate feeds every network the last hidden state (after the final LayerNorm) of SD 1.5's
CLIP ViT-L/14 text encoder for the prompt "", padded to 77 tokens. Only that one (1, 77, 768)
tensor is needed, so this module reads the text encoder's safetensors (Hugging Face
`CLIPTextModel` names, `text_model.*`) and runs the transformer itself instead of adding a
dependency on `transformers`. Sizes come from the tensors; heads are width / 64, as in every
CLIP text tower.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

BOS, EOS = 49406, 49407  # CLIP BPE's <|startoftext|> and <|endoftext|>; SD 1.5's tokenizer also pads with EOS
HEAD_DIM = 64


def empty_prompt_ids(length: int = 77) -> torch.Tensor:
    """Token ids of "" as SD 1.5's tokenizer gives them with padding="max_length": BOS, EOS, then EOS padding."""
    return torch.tensor([[BOS] + [EOS] * (length - 1)])


def _layer_norm(x: torch.Tensor, state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-5)


def _linear(x: torch.Tensor, state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.linear(x, state[f"{name}.weight"], state[f"{name}.bias"])


def encode(state: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """Last hidden state (B, L, width) of a CLIP text transformer given as a `CLIPTextModel` state dict."""
    p = "text_model."
    x = state[f"{p}embeddings.token_embedding.weight"][ids] + state[f"{p}embeddings.position_embedding.weight"][
        : ids.shape[1]]
    b, n, width = x.shape
    heads = max(1, width // HEAD_DIM)
    layers = sorted({int(k.split(".")[3]) for k in state if k.startswith(f"{p}encoder.layers.")})
    causal = torch.full((n, n), float("-inf"), dtype=x.dtype).triu(1)
    for i in layers:
        layer = f"{p}encoder.layers.{i}."
        h = _layer_norm(x, state, layer + "layer_norm1")
        q, k, v = (_linear(h, state, layer + f"self_attn.{w}_proj").view(b, n, heads, -1).transpose(1, 2)
                   for w in "qkv")
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        x = x + _linear(attn.transpose(1, 2).reshape(b, n, width), state, layer + "self_attn.out_proj")
        h = _linear(_layer_norm(x, state, layer + "layer_norm2"), state, layer + "mlp.fc1")
        x = x + _linear(h * torch.sigmoid(1.702 * h), state, layer + "mlp.fc2")  # quick_gelu
    return _layer_norm(x, state, f"{p}final_layer_norm")


@torch.no_grad()
def empty_prompt_embedding(path: str | Path, length: int = 77) -> torch.Tensor:
    """CLIP's embedding of "" (1, length, width) from a text encoder's `model.safetensors`; a file that is not a
    CLIP text encoder raises ValueError naming it."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    if "text_model.embeddings.token_embedding.weight" not in state:
        raise ValueError(f"{path}: not a CLIP text encoder (no text_model.embeddings.token_embedding.weight)")
    return encode(state, empty_prompt_ids(length))
