"""The selective scan against the sequential recurrence (tests/helpers/scan_reference.py), in float64."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.scan_reference import selective_scan_sequential
from toolkit.models.scan import chunk_length, cuda_kernel_available, selective_scan

TOL = 1e-6


def make_inputs(batch: int = 2, length: int = 13, channels: int = 5, state: int = 4, seed: int = 0,
                dtype: torch.dtype = torch.float64, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Random scan inputs in realistic ranges: softplus step sizes, negative A, all requiring grad."""
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "x": torch.randn(batch, length, channels, generator=g, dtype=torch.float64),
        "delta": torch.nn.functional.softplus(torch.randn(batch, length, channels, generator=g, dtype=torch.float64)),
        "A": -torch.rand(channels, state, generator=g, dtype=torch.float64) * 2 - 0.05,
        "B": torch.randn(batch, length, state, generator=g, dtype=torch.float64),
        "C": torch.randn(batch, length, state, generator=g, dtype=torch.float64),
        "D": torch.randn(channels, generator=g, dtype=torch.float64),
    }
    return {k: v.to(device=device, dtype=dtype).requires_grad_() for k, v in inputs.items()}


def values_and_grads(fn, inputs: dict[str, torch.Tensor], seed: int = 1, **kwargs) -> dict[str, torch.Tensor]:
    """The output and the gradients of <output, random cotangent> with respect to every input."""
    y = fn(**inputs, **kwargs)
    cotangent = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype).to(y.device)
    grads = torch.autograd.grad(y, list(inputs.values()), cotangent)
    return {"y": y.detach(), **{f"d{name}": g for name, g in zip(inputs, grads)}}


def assert_match(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], tol: float = TOL) -> None:
    for name in want:
        err = (got[name] - want[name]).abs().max().item()
        assert err <= tol, f"{name}: max abs error {err:.3g} > {tol}"


def test_reference_by_hand():
    """The oracle itself on a case worked out on paper: one channel, one state, A=-1, B=C=delta=1."""
    x = torch.tensor([[[1.0], [2.0]]], dtype=torch.float64)
    ones = torch.ones(1, 2, 1, dtype=torch.float64)
    A = -torch.ones(1, 1, dtype=torch.float64)
    forward = selective_scan_sequential(x, ones, A, ones, ones)
    backward = selective_scan_sequential(x, ones, A, ones, ones, reverse=True)
    torch.testing.assert_close(forward.flatten(), torch.tensor([1.0, 2.0 + math.exp(-1)], dtype=torch.float64))
    torch.testing.assert_close(backward.flatten(), torch.tensor([1.0 + 2.0 * math.exp(-1), 2.0], dtype=torch.float64))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("length", [1, 2, 5, 16, 33])
def test_matches_sequential_recurrence(length: int, reverse: bool):
    inputs = make_inputs(length=length)
    want = values_and_grads(selective_scan_sequential, inputs, reverse=reverse)
    got = values_and_grads(selective_scan, inputs, reverse=reverse, backend="torch")
    assert_match(got, want)


@pytest.mark.parametrize("reverse", [False, True])
def test_long_sequence(reverse: bool):
    inputs = make_inputs(batch=1, length=300, channels=3, state=2, seed=3)
    want = values_and_grads(selective_scan_sequential, inputs, reverse=reverse)
    got = values_and_grads(selective_scan, inputs, reverse=reverse, max_states=16 * 3 * 2, backend="torch")
    assert_match(got, want)


def test_without_skip_connection():
    inputs = make_inputs(length=9)
    inputs.pop("D")
    assert_match(values_and_grads(selective_scan, inputs, backend="torch"),
                 values_and_grads(selective_scan_sequential, inputs))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("steps", [1, 3, 8, 29, 64])
def test_chunks_match(steps: int, reverse: bool):
    """Chunks hand the state on along time (forward) and the adjoint back (backward), whatever their length."""
    inputs = make_inputs(batch=3, length=29, seed=5)
    want = values_and_grads(selective_scan_sequential, inputs, reverse=reverse)
    got = values_and_grads(selective_scan, inputs, reverse=reverse, max_states=3 * steps * 5 * 4, backend="torch")
    assert_match(got, want)


def test_chunk_length():
    per_step = 16 * 640 * 16
    assert chunk_length(16, 1024, 640, 16, None) == 1024
    assert chunk_length(16, 1024, 640, 16, 25 * per_step) == 25
    assert chunk_length(16, 1024, 640, 16, 25 * per_step - 1) == 24
    assert chunk_length(16, 20, 640, 16, 10 ** 9) == 20
    assert chunk_length(4096, 16, 640, 16, 2 ** 22) == 1


def test_chunks_without_grad():
    inputs = {k: v.detach() for k, v in make_inputs(length=20).items()}
    with torch.no_grad():
        got = selective_scan(**inputs, max_states=2 * 6 * 5 * 4, backend="torch")
    torch.testing.assert_close(got, selective_scan_sequential(**inputs), atol=TOL, rtol=0)


@pytest.mark.parametrize("reverse", [False, True])
def test_direction_of_dependence(reverse: bool):
    """Forward: y_t depends on x_0..x_t only. Reverse: on x_t..x_last only. Both reach back to the far end."""
    inputs = make_inputs(batch=1, length=10, seed=7)
    t = 4
    y = selective_scan(**inputs, reverse=reverse, backend="torch")
    (grad,) = torch.autograd.grad(y[0, t].sum(), inputs["x"])
    influence = grad[0].abs().sum(-1)
    later, earlier = influence[t + 1:], influence[:t]
    assert influence[t] > 0
    if reverse:
        assert torch.all(earlier == 0) and torch.all(later > 0)
    else:
        assert torch.all(later == 0) and torch.all(earlier > 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision(dtype: torch.dtype):
    """Lower-precision inputs give the float64 answer to that precision, in their own dtype."""
    inputs = make_inputs(length=40, seed=11)
    want = selective_scan_sequential(**inputs).detach()
    low = {k: v.detach().to(dtype) for k, v in inputs.items()}
    got = selective_scan(**low, max_states=2 * 16 * 5 * 4, backend="torch")
    assert got.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 0.1
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


@pytest.mark.skipif(not (torch.cuda.is_available() and cuda_kernel_available()), reason="needs CUDA and mamba-ssm")
@pytest.mark.parametrize("reverse", [False, True])
def test_cuda_kernel_matches_torch(reverse: bool):
    inputs = make_inputs(length=64, channels=8, state=16, dtype=torch.float32, device="cuda")
    want = values_and_grads(selective_scan, inputs, reverse=reverse, backend="torch")
    got = values_and_grads(selective_scan, inputs, reverse=reverse, backend="cuda")
    assert_match(got, want, tol=1e-3)
