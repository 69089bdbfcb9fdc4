"""A bidirectional temporal Mamba in place of the temporal Transformers of a video UNet (UniAnimate's option).

`TemporalMamba` takes the constructor keywords and the forward call of diffusers' `TransformerTemporalModel`, so
it drops into `UNet3DConditionModel` (`replace_temporal_transformers` swaps them all). Like the Transformer, it
mixes information only along time, separately at each spatial location of each video:

    GroupNorm -> linear in -> num_layers x BidirectionalMambaBlock over the frames -> linear out (zero) -> + input

The output projection starts at zero, so a freshly built module is the identity and a pretrained UNet is
unchanged by the swap until the Mamba is trained. Cost grows linearly with the number of frames, where
self-attention over frames grows quadratically.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel, TransformerTemporalModelOutput
from torch import nn
from torch.utils.checkpoint import checkpoint

from toolkit.models.scan import DEFAULT_MAX_STATES, selective_scan

__all__ = ["BidirectionalMambaBlock", "SelectiveSSM", "TemporalMamba", "replace_temporal_transformers"]


class SelectiveSSM(nn.Module):
    """One direction of a Mamba mixer: short depthwise conv over time, SiLU, data-dependent delta/B/C, the scan.

    With reverse=True the conv looks ahead instead of back and the scan runs from the last frame to the first,
    so the output at frame t depends on frames t and later only.
    """

    def __init__(self, d_inner: int, d_state: int = 16, d_conv: int = 4, dt_rank: int = 8, reverse: bool = False,
                 dt_min: float = 1e-3, dt_max: float = 0.1, max_states: int | None = DEFAULT_MAX_STATES):
        super().__init__()
        self.reverse, self.max_states = reverse, max_states
        self.dt_rank, self.d_state = dt_rank, d_state
        self.conv = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner)
        # Mamba's initialisation: A = -[1..d_state] per channel (kept as log), step sizes log-uniform in
        # [dt_min, dt_max] through the inverse softplus of the bias, a unit skip connection D.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        nn.init.uniform_(self.dt_proj.weight, -dt_rank ** -0.5, dt_rank ** -0.5)
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (sequences, frames, d_inner) -> (sequences, frames, d_inner)."""
        frames = x.shape[1]
        x = self.conv(x.transpose(1, 2))                     # (sequences, d_inner, frames + d_conv - 1)
        x = x[..., -frames:] if self.reverse else x[..., :frames]
        x = F.silu(x.transpose(1, 2))
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        return selective_scan(x, delta, A, B, C, self.D, reverse=self.reverse, max_states=self.max_states)


class BidirectionalMambaBlock(nn.Module):
    """Pre-norm residual Mamba block over frames, with a forward and a backward SSM sharing the in/out projections.

    x, gate = in_proj(LayerNorm(h)); y = mean(forward SSM(x), backward SSM(x)) * SiLU(gate); h + out_proj(y).
    """

    def __init__(self, dim: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | None = None,
                 max_states: int | None = DEFAULT_MAX_STATES):
        super().__init__()
        d_inner = expand * dim
        dt_rank = dt_rank or math.ceil(dim / 16)
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.forward_ssm = SelectiveSSM(d_inner, d_state, d_conv, dt_rank, reverse=False, max_states=max_states)
        self.backward_ssm = SelectiveSSM(d_inner, d_state, d_conv, dt_rank, reverse=True, max_states=max_states)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states: (sequences, frames, dim) -> same shape."""
        x, gate = self.in_proj(self.norm(hidden_states)).chunk(2, dim=-1)
        y = 0.5 * (self.forward_ssm(x) + self.backward_ssm(x))
        return hidden_states + self.out_proj(y * F.silu(gate))


def _checkpoint(module: nn.Module, *args: Any) -> Any:
    return checkpoint(module, *args, use_reentrant=False)


class TemporalMamba(nn.Module):
    """Drop-in replacement for diffusers' `TransformerTemporalModel`, mixing frames with bidirectional Mamba.

    The positional and keyword arguments of `TransformerTemporalModel` are accepted; those that have no Mamba
    meaning (dropout, cross_attention_dim, attention_bias, sample_size, activation_fn, norm_elementwise_affine,
    double_self_attention, positional_embeddings, num_positional_embeddings, out_channels) are ignored; so are
    encoder_hidden_states and the other conditioning inputs of forward, which UNet3DConditionModel never passes
    to its temporal layers. The width of the blocks is num_attention_heads * attention_head_dim, as for the
    Transformer, unless d_model is given.

    Mamba keywords: d_state (SSM state size), d_conv (temporal conv width), expand (inner width / d_model),
    dt_rank (rank of the step-size projection, default ceil(d_model / 16)), scan_max_states (size of the
    PyTorch scan's chunk buffers in state elements, which sets its chunk length; see toolkit.models.scan).

    Gradient checkpointing follows diffusers' convention: setting `gradient_checkpointing = True` (done by
    `ModelMixin._set_gradient_checkpointing` on a model that contains this module) recomputes each block in
    the backward pass. UNet3DConditionModel itself never checkpoints its temporal layers.
    """

    def __init__(self, num_attention_heads: int = 16, attention_head_dim: int = 88, in_channels: int | None = None,
                 out_channels: int | None = None, num_layers: int = 1, dropout: float = 0.0,
                 norm_num_groups: int = 32, cross_attention_dim: int | None = None, attention_bias: bool = False,
                 sample_size: int | None = None, activation_fn: str = "geglu", norm_elementwise_affine: bool = True,
                 double_self_attention: bool = True, positional_embeddings: str | None = None,
                 num_positional_embeddings: int | None = None, *, d_model: int | None = None, d_state: int = 16,
                 d_conv: int = 4, expand: int = 2, dt_rank: int | None = None,
                 scan_max_states: int | None = DEFAULT_MAX_STATES):
        super().__init__()
        if in_channels is None:
            raise ValueError("TemporalMamba needs in_channels")
        self.in_channels = in_channels
        self.d_model = d_model or num_attention_heads * attention_head_dim
        self.norm = nn.GroupNorm(num_groups=norm_num_groups, num_channels=in_channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(in_channels, self.d_model)
        self.blocks = nn.ModuleList([
            BidirectionalMambaBlock(self.d_model, d_state, d_conv, expand, dt_rank, max_states=scan_max_states)
            for _ in range(num_layers)
        ])
        self.proj_out = nn.Linear(self.d_model, in_channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        self.gradient_checkpointing = False

    @classmethod
    def like(cls, transformer: TransformerTemporalModel, **mamba_kwargs: Any) -> "TemporalMamba":
        """A TemporalMamba with the channels, width, groups and depth of a TransformerTemporalModel."""
        kwargs = {
            "in_channels": transformer.in_channels,
            "d_model": transformer.proj_in.out_features,
            "norm_num_groups": transformer.norm.num_groups,
            "num_layers": len(transformer.transformer_blocks),
            **mamba_kwargs,
        }
        weight = transformer.proj_in.weight
        return cls(**kwargs).to(device=weight.device, dtype=weight.dtype)

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                timestep: torch.LongTensor | None = None, class_labels: torch.LongTensor | None = None,
                num_frames: int = 1, cross_attention_kwargs: dict[str, Any] | None = None,
                return_dict: bool = True) -> TransformerTemporalModelOutput | tuple[torch.Tensor]:
        """hidden_states: (batch * num_frames, channels, height, width), frames of one video consecutive.

        encoder_hidden_states, timestep, class_labels and cross_attention_kwargs are accepted for signature
        compatibility and ignored. Returns TransformerTemporalModelOutput(sample=...) or a 1-tuple.
        """
        batch_frames, channels, height, width = hidden_states.shape
        batch = batch_frames // num_frames
        residual = hidden_states

        h = hidden_states.reshape(batch, num_frames, channels, height, width).permute(0, 2, 1, 3, 4)
        h = self.norm(h)
        h = h.permute(0, 3, 4, 2, 1).reshape(batch * height * width, num_frames, channels)
        h = self.proj_in(h)
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                h = getattr(self, "_gradient_checkpointing_func", _checkpoint)(block, h)
            else:
                h = block(h)
        h = self.proj_out(h)
        h = h.reshape(batch, height, width, num_frames, channels).permute(0, 3, 4, 1, 2)
        output = h.reshape(batch_frames, channels, height, width) + residual

        if not return_dict:
            return (output,)
        return TransformerTemporalModelOutput(sample=output)


def replace_temporal_transformers(unet: nn.Module, **mamba_kwargs: Any) -> int:
    """Swap every TransformerTemporalModel inside `unet` for a TemporalMamba of matching channels, in place.

    In a UNet3DConditionModel these are `transformer_in` and the `temp_attentions` of every block.
    `mamba_kwargs` go to TemporalMamba (d_state, expand, scan_max_states, num_layers, ...). Returns the count.
    """
    replaced = 0
    for parent in list(unet.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, TransformerTemporalModel):
                setattr(parent, name, TemporalMamba.like(child, **mamba_kwargs))
                replaced += 1
    return replaced
