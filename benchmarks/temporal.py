"""Temporal layer cost vs number of frames: diffusers' TransformerTemporalModel against TemporalMamba, side by side.

Both layers are built as UNet3DConditionModel builds its first-level temporal layer for a ModelScope-style config
(attention_head_dim=64): TransformerTemporalModel(5, 64, in_channels=320, norm_num_groups=32), i.e. 5 heads of 64
channels, two self-attentions over frames and a GEGLU feed-forward, with diffusers' default attention processor
(torch scaled_dot_product_attention); and TemporalMamba.like(that transformer): width 320, d_state 16, expand 2,
one bidirectional block, the PyTorch scan of toolkit.models.scan (mamba-ssm's CUDA kernel if installed, on
CUDA). The input is one video, (frames, 320, H, W); every one of the H*W locations is a sequence over the
frames. A UNet at 512x512 has 64x64 = 4096 such tokens at this level; a CPU cannot run that at 1024 frames, so
the default grid here is 4x4 = 16 tokens (--grid 64x64 --device cuda for the real count). Both models cost
time and memory in proportion to the token count, so the ratios and exponents do not depend on it much.

Measured per frame count, for one forward + backward (output gradient given, weight gradients included):
  time: best wall time of --repeat runs after one warm-up run.
  memory: peak bytes of torch tensors allocated during the step beyond those alive before it (weights and input).
    CUDA: torch.cuda.max_memory_allocated() minus memory_allocated() before the step.
    CPU:  a separate profiled run (torch.profiler, profile_memory=True) records every allocation and free of the
          CPU tensor allocator with its size; the peak of their running sum is reported. Memory that libraries
          take outside torch's allocator (e.g. oneDNN scratch space) is not seen.
The growth exponent of each column is the least-squares slope of log(value) vs log(frames) over the frame counts
from --fit-from up (1 = linear, 2 = quadratic). The scan's chunk buffers have a fixed size, so the Mamba's memory
grows more slowly than linearly until its linear part dominates. On CPU, one torch thread by default: on a
shared machine, multi-threaded timings of many small operations swing with the load. From about 512 frames on,
glibc hands tensors over 32 MB back to the system at every free, and each new one pays its page faults again;
this bends both time curves upwards (MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
MALLOC_MMAP_THRESHOLD_=33554432 in the environment takes most of it away).

--scan times the selective scan alone instead (one direction, 640 channels, state 16, the token count as
sequences): mambapy's parallel scan (`mambapy.pscan`, pip install mambapy; not a toolkit dependency) against
toolkit.models.scan, the measurement behind choosing the latter.

Run: .venv/bin/python benchmarks/temporal.py [--quick] [--device cpu|cuda] [--grid 4x4] [--frames 16 32 ...]
     [--threads 1] [--scan]
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Callable

import numpy as np
import torch
from results import record
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from torch import nn
from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile

from toolkit.models.scan import selective_scan
from toolkit.models.temporal_mamba import TemporalMamba

CHANNELS = 320


def layer_step(model: nn.Module, x: torch.Tensor, grad: torch.Tensor, frames: int) -> Callable[[], None]:
    """One forward + backward through a temporal layer, the way UNet3DConditionModel calls it."""

    def run() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        model(x, num_frames=frames, return_dict=False)[0].backward(grad)

    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(run: Callable[[], None], device: torch.device, repeat: int) -> float:
    """Best wall time of `repeat` runs after one warm-up run (the least disturbed by other processes)."""
    run()
    best = math.inf
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        run()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _events(nodes):
    for node in nodes:
        yield node
        yield from _events(node.children)


def peak_memory(run: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated by torch during one run above what was allocated before it (see module doc)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    allocations = [e for e in _events(prof.profiler.kineto_results.experimental_event_tree())
                   if e.tag == _EventType.Allocation]
    allocations.sort(key=lambda e: e.start_time_ns)
    sizes = np.array([e.extra_fields.alloc_size for e in allocations], dtype=np.int64)
    return int(max(0, np.cumsum(sizes).max(initial=0)))


def growth_exponent(frames: list[int], values: list[float], fit_from: int) -> float:
    """Least-squares slope of log(value) against log(frames), over frame counts >= fit_from."""
    pairs = [(f, v) for f, v in zip(frames, values) if f >= fit_from and v > 0]
    if len(pairs) < 2:
        return math.nan
    f, v = np.log(np.array(pairs, dtype=np.float64)).T
    return float(np.polyfit(f, v, 1)[0])


def mib(n: float) -> str:
    return f"{n / 2 ** 20:9.1f} MiB"


def print_exponents(frames: list[int], results: dict[str, dict[str, list[float]]], fit_from: int) -> None:
    print(f"growth exponents (log-log least squares over frames {[f for f in frames if f >= fit_from]}):")
    for name, r in results.items():
        t, m = growth_exponent(frames, r["time"], fit_from), growth_exponent(frames, r["memory"], fit_from)
        print(f"  {name:<10} time {t:5.2f}   memory {m:5.2f}")


def compare(cases: dict[str, Callable[[int], Callable[[], None]]], frames_list: list[int], device: torch.device,
            repeat: int, fit_from: int) -> None:
    """Time and peak memory of each case at each frame count, two cases side by side with their ratios."""
    a, b = cases
    print(f"ratio = {a} / {b} (above 1: {b} is cheaper)")
    print(f"{'frames':>6} {a:>10} {b:>10} {'ratio':>7}   {a:>13} {b:>13} {'ratio':>7}")
    results: dict[str, dict[str, list[float]]] = {name: {"time": [], "memory": []} for name in cases}
    for frames in frames_list:
        for name, make in cases.items():
            results[name]["time"].append(best_time(make(frames), device, repeat))
            results[name]["memory"].append(peak_memory(make(frames), device))  # fresh: no gradients left over
        ta, tb = results[a]["time"][-1], results[b]["time"][-1]
        ma, mb = results[a]["memory"][-1], results[b]["memory"][-1]
        print(f"{frames:>6} {ta:>9.3f}s {tb:>9.3f}s {ta / tb:>6.2f}x   {mib(ma)} {mib(mb)} {ma / mb:>6.2f}x",
              flush=True)
        if frames in (frames_list[0], frames_list[-1]):
            record(f"temporal: {b} vs {a}, forward + backward at {frames} frames ({device})",
                   f"{tb:.3f} s, {mb / 2**20:.1f} MiB", f"{ta:.3f} s, {ma / 2**20:.1f} MiB ({a})",
                   ta / tb, f"ratio = {a} time / {b} time (memory ratio {ma / mb:.2f}x)")
    print_exponents(frames_list, results, fit_from)


def layer_cases(device: torch.device, height: int, width: int) -> dict[str, Callable[[int], Callable[[], None]]]:
    torch.manual_seed(0)
    attention = TransformerTemporalModel(CHANNELS // 64, 64, in_channels=CHANNELS, norm_num_groups=32).to(device)
    mamba = TemporalMamba.like(attention).to(device)
    processor = type(attention.transformer_blocks[0].attn1.processor).__name__
    print(f"attention: TransformerTemporalModel, 5 heads x 64, {processor}, "
          f"{sum(p.numel() for p in attention.parameters()) / 1e6:.2f} M params")
    print(f"mamba:     TemporalMamba, d_model {mamba.d_model}, d_state 16, expand 2, "
          f"{sum(p.numel() for p in mamba.parameters()) / 1e6:.2f} M params")

    def case(model: nn.Module) -> Callable[[int], Callable[[], None]]:
        def make(frames: int) -> Callable[[], None]:
            x = torch.randn(frames, CHANNELS, height, width, device=device, requires_grad=True)
            model.zero_grad(set_to_none=True)
            return layer_step(model, x, torch.randn_like(x), frames)
        return make

    return {"attention": case(attention), "mamba": case(mamba)}


def scan_cases(device: torch.device, sequences: int) -> dict[str, Callable[[int], Callable[[], None]]]:
    """The scan alone, as one direction of the Mamba above runs it: mambapy's parallel scan vs toolkit's."""
    from mambapy.pscan import pscan

    channels, state = 2 * CHANNELS, 16

    def mambapy_scan(x, delta, A, B, C):
        h = pscan(torch.exp(delta.unsqueeze(-1) * A), (delta * x).unsqueeze(-1) * B.unsqueeze(2))
        return (h @ C.unsqueeze(-1)).squeeze(-1)

    def case(fn: Callable) -> Callable[[int], Callable[[], None]]:
        def make(frames: int) -> Callable[[], None]:
            g = torch.Generator(device).manual_seed(frames)
            x, delta = (torch.randn(sequences, frames, channels, device=device, generator=g) for _ in range(2))
            delta = torch.nn.functional.softplus(delta)
            B, C = (torch.randn(sequences, frames, state, device=device, generator=g) for _ in range(2))
            A = -torch.arange(1, state + 1, device=device, dtype=torch.float32).repeat(channels, 1)
            inputs = [t.requires_grad_() for t in (x, delta, A, B, C)]
            grad = torch.randn_like(x)

            def run() -> None:
                for t in inputs:
                    t.grad = None
                fn(*inputs).backward(grad)
            return run
        return make

    print(f"selective scan alone, one direction: {sequences} sequences, {channels} channels, state {state}")
    return {"mambapy": case(mambapy_scan),
            "toolkit": case(lambda *a: selective_scan(*a, backend="torch"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--grid", default=None, help="HxW spatial locations per frame (default 4x4 on CPU, 64x64 on CUDA)")
    p.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--repeat", type=int, default=2, help="timed runs per case (best is kept)")
    p.add_argument("--fit-from", type=int, default=128, help="smallest frame count in the exponent fit")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on a shared machine)")
    p.add_argument("--quick", action="store_true", help="16 to 128 frames, one timed run each")
    p.add_argument("--scan", action="store_true", help="instead: the scan alone, mambapy.pscan vs toolkit "
                                                        "(needs mambapy; frames above 256 are skipped)")
    args = p.parse_args()
    if args.quick:
        args.frames, args.repeat, args.fit_from = [f for f in args.frames if f <= 128], 1, 32
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    height, width = map(int, (args.grid or ("64x64" if device.type == "cuda" else "4x4")).split("x"))

    print(f"device {device} ({torch.get_num_threads()} CPU threads), float32, torch {torch.__version__}")
    print(f"channels {CHANNELS}, grid {height}x{width}: {height * width} tokens (sequences over frames), batch 1")
    if args.scan:
        cases = scan_cases(device, height * width)
        args.frames = [f for f in args.frames if f <= 256]
    else:
        cases = layer_cases(device, height, width)
    print("forward + backward per step; time = best of runs, memory = peak tensor allocation above baseline\n")
    compare(cases, args.frames, device, args.repeat, args.fit_from)


if __name__ == "__main__":
    main()
