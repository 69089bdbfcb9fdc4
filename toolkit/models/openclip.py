"""OpenCLIP's text and image towers in plain torch: the two conditioning tensors UniAnimate takes from ViT-H-14.

UniAnimate (ali-vilab/UniAnimate, tools/modules/clip_embedder.py, `FrozenOpenCLIPTextVisualEmbedder`
with ``layer = "penultimate"``, run by tools/inferences/inference_unianimate_entrance.py) conditions its
UNet on OpenCLIP ViT-H-14 laion2b_s32b_b79k in two ways:

- the text context of "": OpenCLIP's tokenizer gives [<start>, <end>, 0, ..., 0] (it pads with 0, not
  with <end>), token plus positional embeddings, the causal transformer *without its last block*
  (the penultimate layer's output), then ``ln_final``: (1, 77, 1024). No text projection, no pooling;
- the reference image's embedding: the image resized to 224 x 224 with PIL's bilinear filter (no
  crop; the aspect ratio is not kept), scaled to [0, 1] and normalised with OpenAI's mean and std
  (which OpenCLIP's ViT-H-14 uses too), then the visual tower: 14 x 14 patches (a bias-free conv), the
  class token and positional embeddings, ``ln_pre``, the transformer, ``ln_post`` on the class token,
  and the projection ``proj``: (1, 1024). Not L2-normalised.

This module computes both from OpenCLIP's flat state dict (the key names of
``open_clip_pytorch_model.bin``) without the open_clip package. Sizes come from the tensors; what
the tensors cannot tell is the head count, which is width / head width with the head widths of
ViT-H-14's config (text 64: 1024 / 64 = 16 heads; vision 80: 1280 / 80 = 16 heads). Blocks are
pre-norm (``ln_1``, attention with a fused ``in_proj``; ``ln_2``, MLP ``c_fc``, exact GELU,
``c_proj``), LayerNorm eps 1e-5, no layer scale (ViT-H-14 has none; a state dict with one is refused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SOT, EOT, PAD = 49406, 49407, 0  # OpenCLIP's <start_of_text>, <end_of_text> and its padding id
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
TEXT_HEAD_WIDTH = 64
VISION_HEAD_WIDTH = 80
REQUIRED = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
            "transformer.resblocks.0.attn.in_proj_weight", "visual.conv1.weight", "visual.class_embedding",
            "visual.positional_embedding", "visual.ln_pre.weight", "visual.ln_post.weight", "visual.proj",
            "visual.transformer.resblocks.0.attn.in_proj_weight")


def empty_prompt_ids(length: int = 77) -> torch.Tensor:
    """Token ids of "" as OpenCLIP's tokenizer gives them: <start>, <end>, then zeros, (1, length)."""
    ids = torch.full((1, length), PAD, dtype=torch.long)
    ids[0, :2] = torch.tensor([SOT, EOT])
    return ids


def _norm(x: torch.Tensor, state: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-5)


def _block(x: torch.Tensor, state: dict[str, torch.Tensor], name: str, heads: int,
           mask: torch.Tensor | None) -> torch.Tensor:
    """One pre-norm residual block of OpenCLIP's `Transformer` on (B, L, W)."""
    b, n, width = x.shape
    h = _norm(x, state, f"{name}.ln_1")
    qkv = F.linear(h, state[f"{name}.attn.in_proj_weight"], state[f"{name}.attn.in_proj_bias"])
    q, k, v = (t.view(b, n, heads, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, width)
    x = x + F.linear(attn, state[f"{name}.attn.out_proj.weight"], state[f"{name}.attn.out_proj.bias"])
    h = F.linear(_norm(x, state, f"{name}.ln_2"), state[f"{name}.mlp.c_fc.weight"], state[f"{name}.mlp.c_fc.bias"])
    return x + F.linear(F.gelu(h), state[f"{name}.mlp.c_proj.weight"], state[f"{name}.mlp.c_proj.bias"])


def block_count(state: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of residual blocks under `prefix` ("transformer." or "visual.transformer.")."""
    found = {int(k[len(prefix):].split(".")[1]) for k in state if k.startswith(f"{prefix}resblocks.")}
    if found != set(range(len(found))) or not found:
        raise ValueError(f"{prefix}resblocks: expected blocks 0..N-1, found {sorted(found)[:5]}...")
    return len(found)


def _heads(width: int, head_width: int) -> int:
    if width % head_width:
        raise ValueError(f"width {width} is not a multiple of the head width {head_width}")
    return width // head_width


def text_context(state: dict[str, torch.Tensor], ids: torch.Tensor | None = None, skip_last: int = 1,
                 head_width: int = TEXT_HEAD_WIDTH) -> torch.Tensor:
    """Hidden states (B, L, width) of the text tower after all but its last `skip_last` blocks, then ln_final.

    `skip_last = 1` is UniAnimate's (and SD 2's) "penultimate" layer, 0 the last; `ids` default to "".
    """
    ids = empty_prompt_ids(state["positional_embedding"].shape[0]) if ids is None else ids
    x = state["token_embedding.weight"][ids] + state["positional_embedding"][: ids.shape[1]]
    n = ids.shape[1]
    causal = torch.full((n, n), float("-inf"), dtype=x.dtype, device=x.device).triu(1)
    heads = _heads(x.shape[-1], head_width)
    for i in range(block_count(state, "transformer.") - skip_last):
        x = _block(x, state, f"transformer.resblocks.{i}", heads, causal)
    return _norm(x, state, "ln_final")


def image_size(state: dict[str, torch.Tensor]) -> int:
    """The square input size of the visual tower: patch size x the side of its grid of positions."""
    patch = state["visual.conv1.weight"].shape[-1]
    side = math.isqrt(state["visual.positional_embedding"].shape[0] - 1)
    return patch * side


def image_embedding(state: dict[str, torch.Tensor], pixels: torch.Tensor,
                    head_width: int = VISION_HEAD_WIDTH) -> torch.Tensor:
    """The visual tower's output (B, embed_dim) for normalised pixels (B, 3, S, S) (see `preprocess`)."""
    conv = state["visual.conv1.weight"]
    x = F.conv2d(pixels.to(conv.dtype), conv, stride=conv.shape[-1]).flatten(2).transpose(1, 2)
    cls = state["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + state["visual.positional_embedding"]
    x = _norm(x, state, "visual.ln_pre")
    heads = _heads(x.shape[-1], head_width)
    for i in range(block_count(state, "visual.transformer.")):
        x = _block(x, state, f"visual.transformer.resblocks.{i}", heads, None)
    return _norm(x[:, 0], state, "visual.ln_post") @ state["visual.proj"]


def preprocess(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB image as UniAnimate feeds it to the visual tower: PIL bilinear resize to
    size x size (no crop), [0, 1], normalised with `MEAN` and `STD`; returns (1, 3, size, size) float32."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BILINEAR))
    pixels = torch.from_numpy(resized.copy()).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    return ((pixels - mean) / std)[None]


def check_state(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise ValueError unless `tensors` is an OpenCLIP ViT state dict of the layout this module runs."""
    missing = [k for k in REQUIRED if k not in tensors]
    if missing:
        raise ValueError(f"{source}: not an OpenCLIP ViT state dict (lacks {', '.join(missing[:4])})")
    scaled = [k for k in tensors if ".ls_1." in k or ".ls_2." in k]
    if scaled:
        raise ValueError(f"{source}: has layer scale ({scaled[0]}), which OpenCLIP ViT-H-14 has not; "
                         "not supported here")


@dataclass
class OpenCLIPConditioner:
    """UniAnimate's two OpenCLIP tensors from one state dict: the "" text context and image embeddings."""

    state: dict[str, torch.Tensor]
    text_head_width: int = TEXT_HEAD_WIDTH
    vision_head_width: int = VISION_HEAD_WIDTH

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> OpenCLIPConditioner:
        """Read ``open_clip_pytorch_model.bin`` weights-only (through :mod:`toolkit.safe_pickle`) or a
        safetensors file of the same names; the visual tower's tensors go to `device` as float32."""
        from toolkit import safe_pickle

        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            tensors = load_file(str(path))
        else:
            tensors = safe_pickle.tensors_of(safe_pickle.load(path), path)
        check_state(tensors, path)
        return cls({k: v.to(device, torch.float32) if k.startswith("visual.") else v.float()
                    for k, v in tensors.items()})

    @torch.no_grad()
    def empty_text_context(self) -> torch.Tensor:
        """The penultimate-layer context of "" (1, 77, text width), computed on the CPU."""
        text = {k: v.cpu() for k, v in self.state.items() if not k.startswith("visual.")}
        return text_context(text, head_width=self.text_head_width)

    @property
    def embed_dim(self) -> int:
        """The width of an image embedding (ViT-H-14: 1024)."""
        return int(self.state["visual.proj"].shape[1])

    def to(self, device: str | torch.device) -> OpenCLIPConditioner:
        """Move the visual tower to `device` (the text tower stays on the CPU: it runs once)."""
        if self.state["visual.proj"].device != torch.device(device):
            self.state = {k: v.to(device) if k.startswith("visual.") else v for k, v in self.state.items()}
        return self

    @torch.no_grad()
    def embed_image(self, image: np.ndarray) -> torch.Tensor:
        """The embedding (1, embed_dim) of an (H, W, 3) uint8 RGB image, on the visual tower's device."""
        device = self.state["visual.proj"].device
        pixels = preprocess(image, image_size(self.state)).to(device)
        return image_embedding(self.state, pixels, head_width=self.vision_head_width)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, embed_dim) of a batch (B, 3, H, W), uint8 or float in [0, 1], each image as
        `embed_image` takes it; on the visual tower's device."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            images = images.float().mul(255).round().clamp(0, 255).to(torch.uint8)
        size, device = image_size(self.state), self.state["visual.proj"].device
        pixels = torch.cat([preprocess(im, size) for im in images.permute(0, 2, 3, 1).cpu().numpy()]).to(device)
        return image_embedding(self.state, pixels, head_width=self.vision_head_width)
