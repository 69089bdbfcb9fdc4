"""`[train] distributed = "fsdp"`: accelerate's FSDP2 (torch ``fully_shard``) for the loop, and full tensors
in and out of the shards, so checkpoints keep the one format DDP runs write.

Under FSDP2 every parameter is a ``DTensor`` sharded along its first dimension across the
processes, and so are its gradient, its AdamW moments and (ema.py) its EMA shadow. A checkpoint
holds full tensors: `gather` assembles them (a collective: every process calls it, with the
same tensors in the same order) and only the main process keeps the result; on resume every
process reads the full tensors and `shard_like` cuts its own piece, with no communication.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

MODES = ("ddp", "fsdp")


def plugin(wrap: Sequence[str]) -> Any:
    """The FSDP2 plugin: `wrap` names the module classes sharded as their own units (none: the whole model is one).

    Every setting is explicit, so ``FSDP_*`` variables from an ``accelerate launch --use_fsdp``
    change nothing. Parameters stay float32 when gathered and gradients are reduced in float32,
    as under DDP; with mixed precision, autocast does the low-precision compute.
    """
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return FullyShardedDataParallelPlugin(
        fsdp_version=2, reshard_after_forward=True, cpu_offload=False, cpu_ram_efficient_loading=False,
        activation_checkpointing=False, mixed_precision_policy=MixedPrecisionPolicy(),
        auto_wrap_policy="transformer_based_wrap" if wrap else "no_wrap",
        transformer_cls_names_to_wrap=list(wrap) if wrap else None)


def enable(accelerator: Any, fsdp_plugin: Any) -> None:
    """Make sure `accelerator` prepares models with FSDP2; raise if it cannot.

    accelerate 1.15 (``AcceleratorState.__init__`` in state.py) turns a given FSDP plugin on only
    for accelerator devices (MULTI_GPU, MULTI_XPU, ...); on CPU processes (MULTI_CPU, gloo) it
    drops the plugin and prepares DDP. torch's fully_shard runs on CPU with gloo, so there the loop
    sets the two fields that branch would have set.
    """
    from accelerate.utils import DistributedType

    state = accelerator.state
    if state.distributed_type == DistributedType.MULTI_CPU:
        state.distributed_type = DistributedType.FSDP
        state.fsdp_plugin = fsdp_plugin
    if not accelerator.is_fsdp2:
        raise RuntimeError(f"[train] distributed = \"fsdp\" needs accelerate's FSDP2, but accelerate runs "
                           f"{state.distributed_type} here")


def is_sharded(tensor: torch.Tensor) -> bool:
    """Whether `tensor` is a DTensor, i.e. split across processes by FSDP."""
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def gather(tensors: Mapping[str, torch.Tensor], keep: bool) -> dict[str, torch.Tensor]:
    """Full CPU copies of `tensors` (sharded or not) where `keep`, else {} (sharded ones still take part)."""
    out = {}
    for name, tensor in tensors.items():
        if is_sharded(tensor):
            full = tensor.full_tensor()
            if keep:
                out[name] = full.detach().cpu()
        elif keep:
            out[name] = tensor.detach().to("cpu", copy=True)
    return out


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`full` cut as `like` is sharded (`full` itself where `like` is a plain tensor); every process holds `full`."""
    if not is_sharded(like):
        return full
    if tuple(full.shape) != tuple(like.shape):
        raise ValueError(f"a saved tensor of shape {tuple(full.shape)} for a parameter of shape {tuple(like.shape)}")
    from torch.distributed.tensor import distribute_tensor

    piece = distribute_tensor(full.to(like.device), like.device_mesh, like.placements, src_data_rank=None)
    if piece.to_local().shape != like.to_local().shape:
        raise RuntimeError(f"cutting a tensor of shape {tuple(full.shape)} gave a local piece of shape "
                           f"{tuple(piece.to_local().shape)}, but the parameter's is {tuple(like.to_local().shape)}")
    return piece


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer's parameters in the order its state_dict numbers them."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def full_optimizer_state(optimizer: torch.optim.Optimizer, keep: bool) -> dict[str, Any]:
    """`optimizer.state_dict()` with every tensor full and on the CPU where `keep`, else {} (a collective)."""
    saved = optimizer.state_dict()
    state = {index: gather(values, keep) for index, values in saved["state"].items()}
    return {"state": state, "param_groups": saved["param_groups"]} if keep else {}


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: Mapping[str, Any]) -> None:
    """Load a state `full_optimizer_state` wrote (by any number of processes, sharded or not)."""
    params = optimizer_params(optimizer)
    n_saved = sum(len(group["params"]) for group in saved["param_groups"])
    if n_saved != len(params):
        raise ValueError(f"the saved optimizer state is for {n_saved} parameters; this optimizer has {len(params)}")
    state = {}
    for index, values in saved["state"].items():
        p = params[int(index)]
        state[index] = {k: shard_like(v, p) if torch.is_tensor(v) and v.ndim > 0 else v for k, v in values.items()}
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
