"""`toolkit train`: train a method's model with the one training loop (toolkit/train/loop.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.cli.flags import add_shards, deprecated_alias

if TYPE_CHECKING:
    from toolkit.train.recipe import Recipe

EPILOG = """\
examples:
  toolkit train --method unianimate --config tiny --shards data/shards/synthetic --out runs/uni-tiny
  toolkit train --method unianimate --config tiny --shards data/shards/synthetic --out runs/uni-tiny --resume
  toolkit train --method unianimate --config tiny --shards data/shards/synthetic --out runs/uni-val \\
      --validate-every 200 --validate-videos 2       # test-video metrics of the EMA weights as it trains
  toolkit train --method unianimate --config paper --shards data/shards/tiktok --out runs/uni \\
      --mixed-precision bf16 --gradient-checkpointing --max-minutes 600
  toolkit train --method unianimate --config tiny --shards data/shards/synthetic --out runs/uni-acc \\
      --batch-size 2 --grad-accum-steps 4 --lr-schedule cosine   # 8 clips per optimizer step, cosine decay
  tensorboard --logdir runs/uni-tiny/logs                 # loss, lr, grad norm, clips/s, validation samples
  toolkit train --method magicanimate --config tiny --stage 1 --shards data/shards/synthetic --out runs/ma-tiny-1
  toolkit train --method magicanimate --config tiny --stage 2 --init runs/ma-tiny-1 \\
      --shards data/shards/synthetic --out runs/ma-tiny
  accelerate launch -m toolkit train --method unianimate --config paper --init published \\
      --shards data/shards/mine --out runs/uni-ft --lr 1e-5   # fine-tune the authors' release
  toolkit train --method mypkg.recipes:MyRecipe --config my.toml --shards data/shards/mine --out runs/mine
  accelerate launch --num_processes 8 -m toolkit train --method unianimate --config paper \\
      --shards data/shards/tiktok --out runs/uni --mixed-precision bf16
  accelerate launch --multi_gpu --num_processes 8 -m toolkit train --method unianimate --config tiny \\
      --distributed fsdp --shards data/shards/synthetic --out runs/uni-fsdp   # sharded, as the UniAnimate paper config
  ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m toolkit train --method unianimate --config tiny \\
      --shards data/shards/synthetic --out runs/uni-cpu2        # several processes on a CPU-only machine

The run folder holds loss.jsonl, the latest checkpoint (checkpoint/), the EMA weights for
inference (model/, read with the model's from_pretrained), the tracker's event files (logs/, with
--report-to tensorboard, the default when tensorboard is installed) and, with --validate-every,
validation.jsonl and each validation's samples (validation/step-N/: per video the generated .mp4
and a .png of ground-truth frames above generated ones); `toolkit info RUN` summarises them. A killed run continues with the same
command plus --resume and reproduces the uninterrupted run; resuming with another method or
another model config is refused. --batch-size is per process and per micro-batch: the global
batch of an optimizer step is batch size x processes x --grad-accum-steps. Options given
here replace the config's [train] values.
"""


def _number(text: str, kind: type) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method's model (resumable, accelerate-ready)",
                       description="Train a method's model on shards with the shared training loop: AdamW, EMA, "
                       "mixed precision, gradient checkpointing, atomic checkpoints and exact resume. "
                       "Runs on one device as is and on many under `accelerate launch`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True,
                   help="a method whose package names a training recipe (unianimate, magicanimate), "
                   "or a recipe's package.module:Class")
    p.add_argument("--config", required=True, help="tiny, paper (the method's configs/NAME.toml) or a .toml path")
    add_shards(p)
    p.add_argument("--out", required=True, type=Path, help="run folder (must be empty unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--allow-other-shards", action="store_true",
                   help="with --resume: continue on --shards other than the run's (a different manifest)")
    p.add_argument("--stage", type=_positive_int,
                   help="training stage, for methods trained in stages (magicanimate: 1 = images, 2 = motion)")
    p.add_argument("--init", type=Path, help="start from these weights: the run folder of the previous stage "
                   "(or a model folder / .safetensors file), or 'published' to fine-tune the authors' release")
    p.add_argument("--train-steps", type=_positive_int, metavar="STEPS",
                   help="total optimizer steps (config: [train] steps)")
    p.add_argument("--max-minutes", type=_positive_float,
                   help="stop with a checkpoint after this many minutes (resume later with --resume)")
    p.add_argument("--max-steps", type=_positive_int, metavar="STEP",
                   help="stop with a checkpoint at this step (resume later with --resume); --train-steps stays the "
                   "run's length")
    p.add_argument("--batch-size", type=_positive_int, help="items per process per step ([train] batch_size)")
    p.add_argument("--lr", type=_positive_float, help="learning rate ([train] lr)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine", "linear"),
                   help="after [train] lr_warmup_steps: keep the rate, or decay it (cosine, linear) to 0 at --train-steps "
                   "([train] lr_schedule, default constant)")
    p.add_argument("--grad-accum-steps", type=_positive_int, metavar="N",
                   help="micro-batches of --batch-size per optimizer step ([train] grad_accum_steps, default 1)")
    p.add_argument("--report-to", choices=("tensorboard", "wandb", "trackio", "none"),
                   help="where the loss, learning rate, gradient norm, step time, clips/s and validations are "
                   "logged; tensorboard writes RUN/logs/ ([train] report_to, default tensorboard when installed, "
                   "else none)")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"),
                   help="autocast precision ([train] mixed_precision; fp16 needs a GPU)")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None,
                   help="recompute activations in backward to save memory ([train] gradient_checkpointing)")
    p.add_argument("--workers", type=_non_negative_int,
                   help="data loader workers, 0 loads in the training process ([train] num_workers)")
    p.add_argument("--loader", choices=("threads", "processes"),
                   help="what the workers are: threads (the default; the shard readers release the GIL and no "
                   "batch is copied between processes) or DataLoader processes, for a dataset made in pure Python "
                   "([train] loader)")
    p.add_argument("--distributed", choices=("ddp", "fsdp"),
                   help="how several processes split the work: ddp replicates the model, fsdp shards weights, "
                   "gradients, optimizer state and EMA ([train] distributed)")
    p.add_argument("--validate-every", type=_non_negative_int, metavar="STEPS",
                   help="every STEPS steps, sample the EMA weights on test videos as `toolkit eval` does and log "
                   "their pixel metrics to validation.jsonl; 0: never ([train] validate_every)")
    p.add_argument("--validate-videos", type=_positive_int, metavar="N",
                   help="how many videos of the validation split ([train] validate_videos, default 1)")
    p.add_argument("--seed", type=_non_negative_int, help="seed of init, data order and noise ([train] seed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    deprecated_alias(p, "--steps", "--train-steps")
    deprecated_alias(p, "--num-workers", "--workers")
    p.set_defaults(func=cmd_train)


def load_recipe(name: str) -> Recipe:
    """An instance of the recipe registered as `name` (or named by a package.module:Class spec)."""
    from toolkit import plugins
    from toolkit.package import method_names, method_package, recipe_names

    if ":" in name:
        obj = plugins.resolve(name)
    else:
        trainable = ", ".join(recipe_names()) or "none"
        if name not in method_names():
            raise plugins.PluginError(f"unknown recipe {name!r}; trainable methods: {trainable} (or give "
                                      "package.module:Class for your own)")
        obj = method_package(name).recipe_class()
        if obj is None:
            raise plugins.PluginError(f"method {name!r} has no training recipe; trainable methods: {trainable}")
    recipe = obj() if isinstance(obj, type) else obj
    needed = ("load_config", "build_model", "build_dataset", "loss")
    missing = [m for m in needed if not callable(getattr(recipe, m, None))]
    if missing:
        raise ValueError(f"{name}: not a training recipe (no {', '.join(missing)}); see toolkit.train.Recipe")
    return recipe


def _exit_distributed() -> None:
    """End a process of a multi-process run once its work is saved and reported, without exit-time teardown.

    Left to the interpreter's exit, a finished process sometimes aborts in a C++ destructor of the distributed
    runtime ("terminate called without an active exception" after Python has finalized; 1 to 3 launches in 40
    of the 2-process CPU tests here, with or without destroying the process group first), and the launcher then
    reports the whole run failed. Everything the run writes is closed before this; a single process exits
    normally.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_train(args: argparse.Namespace) -> int:
    from toolkit.train.loop import train

    if not args.shards.is_dir():
        raise FileNotFoundError(f"shard folder not found: {args.shards}")
    recipe = load_recipe(args.method)
    overrides = {"steps": args.train_steps, "batch_size": args.batch_size, "lr": args.lr,
                 "mixed_precision": args.mixed_precision, "gradient_checkpointing": args.gradient_checkpointing,
                 "num_workers": args.workers, "loader": args.loader, "seed": args.seed,
                 "distributed": args.distributed, "validate_every": args.validate_every,
                 "validate_videos": args.validate_videos, "lr_schedule": args.lr_schedule,
                 "grad_accum_steps": args.grad_accum_steps, "report_to": args.report_to}
    result = train(recipe, args.config, args.shards, args.out, resume=args.resume, max_minutes=args.max_minutes,
                   max_steps=args.max_steps,
                   progress=not args.quiet, method=args.method, train_overrides=overrides, stage=args.stage,
                   init=args.init, allow_other_shards=args.allow_other_shards)
    if not result["main_process"]:
        _exit_distributed()
        return 0
    why = {"done": "finished", "max_minutes": "stopped by --max-minutes (continue with --resume)",
           "max_steps": "stopped early (continue with --resume)"}[result["stopped"]]
    last = f"; last loss {result['loss']:.4g}" if result["loss"] is not None else ""
    print(f"step {result['step']}: {why}{last}; {result['seconds']:.0f} s trained")
    print(f"checkpoint: {result['checkpoint']}/  inference weights (EMA): {result['model']}/")
    _exit_distributed()
    return 0
