"""Mamba's selective scan (S6) over the time axis, in plain PyTorch, with mamba-ssm's CUDA kernel when present.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * x_t,   h_{-1} = 0
    y_t = C_t . h_t + D * x_t

The PyTorch scan is chunked: time is cut into chunks of a few steps; within a chunk the decays and inputs of all
steps are computed as whole tensors, the recurrence itself is one fused multiply-add per step, and y comes out
as one batched matmul. Only the inputs and the state at each chunk border are kept for the backward pass, which
walks the chunks in reverse, recomputes each chunk's states and runs the adjoint recurrence
(dL/dh_t = C_t dL/dy_t + exp(delta_{t+1} A) dL/dh_{t+1}). Work and memory are linear in the number of steps, and
the states, a (batch, length, channels, state) tensor, are never held whole: at most three chunk-sized buffers.

mambapy's parallel (Blelloch) scan was tried first: it matches the sequential recurrence (1e-13 in float64,
values and gradients), but it materialises the whole state tensor several times and keeps it for the backward
pass; on CPU it took 2.6x (16 steps) to 6.9x (256 steps) the time of this scan and 4x to 16x its memory
(`benchmarks/temporal.py --scan`), so it is not used.

On CUDA tensors, mamba-ssm's fused kernel (`selective_scan_fn`) is used when it imports. That path is not
tested here (no GPU, and mamba-ssm has no CPU build).
"""

from __future__ import annotations

import functools
from typing import Callable, Literal

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = ["selective_scan", "chunk_length", "cuda_kernel_available"]

DEFAULT_MAX_STATES = 2 ** 20  # state elements per chunk buffer: 4 MiB in float32, the fastest on CPU here


@functools.cache
def _cuda_kernel() -> Callable | None:
    """mamba-ssm's fused selective-scan kernel, or None when mamba-ssm (a CUDA-only build) is not installed."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or a build that fails to load its CUDA extension
        return None
    return selective_scan_fn


def cuda_kernel_available() -> bool:
    """Whether mamba-ssm's CUDA selective-scan kernel can be imported."""
    return _cuda_kernel() is not None


def chunk_length(batch: int, length: int, channels: int, state: int, max_states: int | None) -> int:
    """Steps per chunk of the PyTorch scan: as many as keep batch * steps * channels * state <= max_states, >= 1."""
    if max_states is None:
        return max(length, 1)
    return max(1, min(length, max_states // (batch * channels * state)))


def selective_scan(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor | None = None, *, reverse: bool = False,
                   max_states: int | None = DEFAULT_MAX_STATES,
                   backend: Literal["auto", "torch", "cuda"] = "auto") -> torch.Tensor:
    """Selective scan over dim 1 (time); returns y of the shape of x.

    Args:
        x: (batch, length, channels) input sequence.
        delta: (batch, length, channels) positive step sizes, used as given (apply softplus and bias before).
        A: (channels, state) state matrix (diagonal per channel); negative entries make the state decay.
        B, C: (batch, length, state) input and output projections, one per time step (data-dependent).
        D: (channels,) skip connection, or None.
        reverse: run from the last step to the first: h_t then depends on steps t..length-1.
        max_states: size of the PyTorch scan's chunk buffers in state elements (batch x steps x channels x state);
            sets the chunk length. The default suits CPU caches; on a GPU without mamba-ssm, larger chunks
            mean fewer kernel launches. None scans in one chunk.
        backend: "auto" takes mamba-ssm's CUDA kernel for CUDA tensors when it imports, else the PyTorch scan;
            "torch" and "cuda" force one.

    The scan runs in the dtype of x (float32 for half-precision x, cast back at the end). Differentiable once (no double
    backward) with respect to x, delta, A, B, C and D.
    """
    use_cuda = backend == "cuda" or (backend == "auto" and x.is_cuda and cuda_kernel_available())
    if use_cuda and _cuda_kernel() is None:
        raise RuntimeError("backend='cuda' needs mamba-ssm (pip install mamba-ssm on a CUDA machine)")
    xs, deltas, Bs, Cs = (t.flip(1) for t in (x, delta, B, C)) if reverse else (x, delta, B, C)
    if use_cuda:
        y = _scan_cuda(xs, deltas, A, Bs, Cs)
    else:
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xs, deltas, A, Bs, Cs = (t.to(work) for t in (xs, deltas, A, Bs, Cs))
        steps = chunk_length(x.shape[0], x.shape[1], A.shape[0], A.shape[1], max_states)
        y = _ChunkedScan.apply(xs, deltas, A, Bs, Cs, steps).to(x.dtype)
    if reverse:
        y = y.flip(1)
    return y if D is None else y + D.to(y.dtype) * x


def _scan_cuda(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
               C: torch.Tensor) -> torch.Tensor:
    """mamba-ssm's kernel takes channels-first (batch, channels, length) and (batch, state, length) layouts."""
    y = _cuda_kernel()(x.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A.float().contiguous(),
                       B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous())
    return y.transpose(1, 2).to(x.dtype)


def _chunk_states(x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, h0: torch.Tensor,
                  decay: torch.Tensor, states: torch.Tensor) -> None:
    """Fill decay with exp(delta_t A) and states with h_t for one chunk that starts from the state h0.

    x, delta: (batch, steps, channels); B: (batch, steps, state); h0: (batch, channels, state);
    decay, states: (batch, steps, channels, state) buffers, written in place.
    """
    torch.mul(delta.unsqueeze(-1), A, out=decay)
    decay.exp_()
    torch.mul((delta * x).unsqueeze(-1), B.unsqueeze(2), out=states)
    states[:, 0].addcmul_(decay[:, 0], h0)
    for t in range(1, states.shape[1]):
        states[:, t].addcmul_(decay[:, t], states[:, t - 1])


class _ChunkedScan(torch.autograd.Function):
    """y = scan(x, delta, A, B, C) without the D term; see the module doc."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, steps: int) -> torch.Tensor:
        batch, length, channels = x.shape
        starts = range(0, length, steps)
        y = torch.empty_like(x)
        borders = x.new_zeros(len(starts), batch, channels, A.shape[1])      # the state entering each chunk
        decay = x.new_empty(batch, min(steps, length), channels, A.shape[1])
        states = torch.empty_like(decay)
        for i, s in enumerate(starts):
            k = min(steps, length - s)
            H = states[:, :k]
            _chunk_states(x[:, s:s + k], delta[:, s:s + k], A, B[:, s:s + k], borders[i], decay[:, :k], H)
            y[:, s:s + k] = (H @ C[:, s:s + k].unsqueeze(-1)).squeeze(-1)
            if i + 1 < len(starts):
                borders[i + 1] = H[:, -1]
        ctx.steps = steps
        ctx.save_for_backward(x, delta, A, B, C, borders)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, delta, A, B, C, borders = ctx.saved_tensors
        steps = ctx.steps
        batch, length, channels = x.shape
        grad_x, grad_delta = torch.empty_like(x), torch.empty_like(delta)
        grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
        grad_A = torch.zeros_like(A)
        decay = x.new_empty(batch, min(steps, length), channels, A.shape[1])
        states, grad_h = torch.empty_like(decay), torch.empty_like(decay)
        carry = x.new_zeros(batch, channels, A.shape[1])      # exp(delta_t A) dL/dh_t at the next chunk's start
        for i, s in reversed(list(enumerate(range(0, length, steps)))):
            k = min(steps, length - s)
            xc, dc, Bc, Cc, gy = (v[:, s:s + k] for v in (x, delta, B, C, grad_y))
            dA, H, G = decay[:, :k], states[:, :k], grad_h[:, :k]
            _chunk_states(xc, dc, A, Bc, borders[i], dA, H)
            grad_C[:, s:s + k] = (gy.unsqueeze(-2) @ H).squeeze(-2)
            # Adjoint recurrence, backwards in time: G_t = dL/dh_t.
            torch.mul(gy.unsqueeze(-1), Cc.unsqueeze(2), out=G)
            G[:, -1] += carry
            for t in range(k - 2, -1, -1):
                G[:, t].addcmul_(dA[:, t + 1], G[:, t + 1])
            torch.mul(dA[:, 0], G[:, 0], out=carry)
            # Through the input term delta_t B_t x_t.
            drive = (G @ Bc.unsqueeze(-1)).squeeze(-1)                       # dL/d(delta_t x_t)
            grad_B[:, s:s + k] = ((dc * xc).unsqueeze(-2) @ G).squeeze(-2)
            grad_x[:, s:s + k] = drive * dc
            # Through the decay exp(delta_t A): dL/d(delta_t A) = G_t h_{t-1} exp(delta_t A), in place in G.
            G.mul_(dA)
            G[:, 1:].mul_(H[:, :-1])
            G[:, 0].mul_(borders[i])
            grad_delta[:, s:s + k] = torch.einsum("bkdn,dn->bkd", G, A) + drive * xc
            grad_A += G.mul_(dc.unsqueeze(-1)).sum((0, 1))
        return grad_x, grad_delta, grad_A, grad_B, grad_C, None
