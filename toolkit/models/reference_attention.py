"""Reference attention: a reference network's self-attention inputs become extra keys and values of a denoiser's.

The mechanism of MagicAnimate's appearance encoder (and Animate Anyone's ReferenceNet),
which diffusers lacks. Both networks are diffusers UNets with the same spatial layout. In
the chosen blocks (MagicAnimate: the mid and up blocks), every spatial transformer block's
self-attention ``attn1`` gets a processor that shares one `ReferenceBank`:

* in the reference network it *writes*: the attention's input (the block's ``norm1`` output)
  is banked under the attention's module name, and the attention runs as usual;
* in the denoiser it *reads*: queries are the frame's tokens, keys and values the frame's
  tokens concatenated along the token axis with the banked reference tokens of the same
  name (repeated for every frame of the clip).

The denoiser may read the bank through a lower precision (`ReferenceBank.read_dtype`):
MagicAnimate copies it to float16 before reading, which rounds the tokens in a float32 run.

Per sample of the batch the read can be switched off (`ReferenceBank.use`), which gives the
plain self-attention: the unconditional half of classifier-free guidance, and the reference
dropout of training. With an empty bank the denoiser is exactly the plain UNet.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn

#: The blocks MagicAnimate fuses ("midup" in its configs).
MID_UP = ("mid_block.", "up_blocks.")


class ReferenceBank:
    """Banked reference tokens by attention name, the clip length, which samples read them, and in what precision."""

    def __init__(self, read_dtype: torch.dtype | None = None) -> None:
        self.store: dict[str, torch.Tensor] = {}
        self.n_frames = 1
        self.use: torch.Tensor | None = None   # (B,) bool; None: every sample reads
        self.read_dtype = read_dtype           # None: tokens are read as banked

    def clear(self) -> None:
        self.store, self.n_frames, self.use = {}, 1, None


def attention(attn: Attention, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """`attn` of tokens x (N, L, C) over context (N, S, C): diffusers' default computation for spatial blocks."""
    q, k, v = attn.to_q(x), attn.to_k(context), attn.to_v(context)
    n, heads = x.shape[0], attn.heads
    q, k, v = (t.view(n, -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    out = out.transpose(1, 2).reshape(n, -1, heads * out.shape[-1]).to(q.dtype)
    return attn.to_out[1](attn.to_out[0](out))


class ReferenceAttnProcessor:
    """The processor of one ``attn1``: "write" (reference network) or "read" (denoiser) through a shared bank."""

    def __init__(self, bank: ReferenceBank, name: str, role: str):
        if role not in ("write", "read"):
            raise ValueError(f"role must be 'write' or 'read', got {role!r}")
        self.bank, self.name, self.role = bank, name, role

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        x = hidden_states
        if self.role == "write":
            self.bank.store[self.name] = x
            return attention(attn, x, x)
        ref = self.bank.store.get(self.name)
        if ref is None:
            return attention(attn, x, x)
        f = self.bank.n_frames
        b = x.shape[0] // f
        if ref.shape[0] not in (1, b):
            raise ValueError(f"{self.name}: {ref.shape[0]} banked references for a batch of {b} clips")
        if self.bank.read_dtype is not None:
            ref = ref.to(self.bank.read_dtype).to(x.dtype)
        ref = ref.expand(b, *ref.shape[1:]).repeat_interleave(f, dim=0)
        use = self.bank.use
        if use is None or bool(use.all()):
            return attention(attn, x, torch.cat([x, ref], dim=1))
        out = attention(attn, x, x)
        rows = use.to(x.device).repeat_interleave(f).nonzero().squeeze(1)
        if len(rows):
            out = out.index_copy(0, rows, attention(attn, x[rows], torch.cat([x[rows], ref[rows]], dim=1)))
        return out


def self_attentions(unet: nn.Module, prefixes: tuple[str, ...] = MID_UP) -> dict[str, Attention]:
    """The spatial self-attentions (``...transformer_blocks.N.attn1``) of `unet` under `prefixes`, motion modules left out."""
    found = {name: m for name, m in unet.named_modules()
             if isinstance(m, Attention) and name.endswith(".attn1") and name.startswith(prefixes)
             and ".motion_modules." not in name and ".transformer_blocks." in name}
    for name, m in found.items():
        if (m.spatial_norm is not None or m.group_norm is not None or m.norm_q is not None or m.residual_connection
                or m.rescale_output_factor != 1.0 or m.is_cross_attention):
            raise ValueError(f"{name}: reference attention supports plain self-attention only")
    return found


def attach(reference_net: nn.Module, denoiser: nn.Module, bank: ReferenceBank,
           prefixes: tuple[str, ...] = MID_UP) -> list[str]:
    """Give the paired self-attentions of the two UNets write / read processors; returns the paired names.

    Pairs are matched by module name, so the two networks must share their spatial layout
    under `prefixes` (the denoiser may have motion modules in between).
    """
    writers, readers = self_attentions(reference_net, prefixes), self_attentions(denoiser, prefixes)
    if set(writers) != set(readers):
        odd = sorted(set(writers) ^ set(readers))
        raise ValueError(f"the reference network and the denoiser differ in their self-attentions: {odd[:4]}")
    if not writers:
        raise ValueError(f"no spatial self-attention under {prefixes}: nothing to attach reference attention to")
    for name in writers:
        writers[name].set_processor(ReferenceAttnProcessor(bank, name, "write"))
        readers[name].set_processor(ReferenceAttnProcessor(bank, name, "read"))
    return sorted(writers)
