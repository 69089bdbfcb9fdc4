"""Test oracle: the S6 selective scan written as the plain sequential recurrence, one time step at a time.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * x_t,   h_{-1} = 0
    y_t = C_t . h_t + D * x_t

Shapes follow toolkit.models.scan.selective_scan: x, delta (batch, length, channels); A (channels, state);
B, C (batch, length, state); D (channels,) or None. With reverse=True time runs from the last step to the first.
"""

from __future__ import annotations

import torch


def selective_scan_sequential(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                              C: torch.Tensor, D: torch.Tensor | None = None, reverse: bool = False) -> torch.Tensor:
    batch, length, channels = x.shape
    h = x.new_zeros(batch, channels, A.shape[1])
    ys = [None] * length
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        decay = torch.exp(delta[:, t, :, None] * A)                            # (batch, channels, state)
        h = decay * h + delta[:, t, :, None] * B[:, t, None, :] * x[:, t, :, None]
        ys[t] = (h * C[:, t, None, :]).sum(-1)                                # (batch, channels)
    y = torch.stack(ys, dim=1)
    return y if D is None else y + D * x
