"""`train`: the one training loop every method uses, on HuggingFace accelerate.

Read top to bottom: resolve the config, check the run folder, build model and data, write,
then for each step: fetch the step's batch, seed, loss, backward, clip, AdamW, EMA, log,
checkpoint (and every ``validate_every`` steps validate the saved EMA weights: validate.py).
Exact resume rests on three choices:

* the items of step s are a pure function of (seed, s): a permutation of the dataset per
  epoch from ``np.random.default_rng([seed, epoch])`` cut into global batches (the last
  partial batch of an epoch is dropped), so resuming needs no sampler state;
* every random number of step s comes from a generator (and ``torch.manual_seed``) seeded
  from (seed, s, process rank), so nothing depends on what ran before;
* model, EMA and optimizer states are saved exactly (safetensors / torch.save) and the
  learning rate is computed from the step, not kept in a scheduler.

So a run killed at any moment and resumed writes the same loss.jsonl (bar the seconds) and
ends with the same weights as the uninterrupted run, bit for bit on CPU.

Several processes run DDP, or with ``[train] distributed = "fsdp"`` accelerate's FSDP2
(fsdp.py): parameters, gradients, AdamW moments and EMA sharded across the processes. The
checkpoint is the same either way -- full weights, full EMA, full optimizer state -- gathered
to the main process when saving and cut back into shards when resuming, so a run may resume
under the other mode or another number of processes.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from toolkit.io import FolderLock, atomic_write_json, atomic_write_text, sha256_file
from toolkit.conditions import colour_batch
from toolkit.models import run_folder
from toolkit.models.pretrained import weights_sha256
from toolkit.train import checkpoint, fsdp
from toolkit.train.ema import EMA, swapped
from toolkit.train.recipe import Recipe, Trainee, select_stage
from toolkit.train.thread_loader import ThreadLoader
from toolkit.train.validate import VALIDATION_LOG, Validation, drop_samples_after, validate

# [train] keys, their defaults, and the only ones a resumed run may change (the rest change results).
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,
    "lr_warmup_steps": 0,
    "lr_schedule": "constant",  # after the warm-up: constant, or cosine / linear decay to 0 at [train] steps
    "grad_accum_steps": 1,      # micro-batches per optimizer step (each of batch_size items per process)
    "batch_size": 1,
    "steps": 1000,
    "weight_decay": 0.01,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_eps": 1e-8,
    "grad_clip": 1.0,
    "ema_decay": 0.9999,
    "checkpoint_every": 500,
    "keep_checkpoints": False,
    "log_every": 1,
    "num_workers": 2,
    "loader": "threads",
    "seed": 0,
    "mixed_precision": "no",
    "gradient_checkpointing": False,
    "distributed": "ddp",
    "fsdp_wrap": [],
    "validate_every": 0,       # steps between validations (toolkit/train/validate.py); 0: none
    "validate_videos": 1,
    "validate_split": "test",
    "validate_steps": 0,       # sampling steps when validating; 0: the config's [sampling] steps
    "report_to": "auto",       # tracker of the run's scalars and samples; auto: tensorboard if installed, else none
}
MAY_CHANGE_ON_RESUME = {"steps", "checkpoint_every", "keep_checkpoints", "log_every", "num_workers", "loader",
                        "gradient_checkpointing", "distributed", "fsdp_wrap", "validate_every", "validate_videos",
                        "validate_split", "validate_steps", "report_to"}
# Keys added after runs were saved without them, at the values those runs trained with (so they still resume).
ADDED_KEYS: dict[str, Any] = {"lr_schedule": "constant", "grad_accum_steps": 1}
LR_SCHEDULES = ("constant", "cosine", "linear")
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}  # report_to: the module it needs
REPORT_TO = (*TRACKERS, "none")
EVENTS_DIR = "logs"  # the run folder's tensorboard event files (wandb keeps its files there too)
MIXED_PRECISION = ("no", "fp16", "bf16")
VALIDATION_TIMEOUT_HOURS = 2  # how long processes wait for the main one's validation (collective timeout)
LOADERS = ("threads", "processes")
_TYPE_NAMES = {list: "a list of strings"}

_LIMITS: dict[str, tuple[float, float, bool]] = {  # key: (low, high, low is allowed)
    "lr": (0, math.inf, False), "lr_warmup_steps": (0, math.inf, True), "batch_size": (1, math.inf, True),
    "steps": (1, math.inf, True), "grad_accum_steps": (1, math.inf, True), "validate_every": (0, math.inf, True), "validate_videos": (1, math.inf, True),
    "validate_steps": (0, math.inf, True), "weight_decay": (0, math.inf, True), "adam_beta1": (0, 1, True),
    "adam_beta2": (0, 1, True), "adam_eps": (0, math.inf, False), "grad_clip": (0, math.inf, True),
    "ema_decay": (0, 1, True), "checkpoint_every": (1, math.inf, True), "log_every": (1, math.inf, True),
    "num_workers": (0, math.inf, True), "seed": (0, 2**63 - 1, True),
}


def resolve_config(config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `config` with [train] defaults filled in and `overrides` (None values skipped) applied, validated."""
    cfg = copy.deepcopy(dict(config))
    table = cfg.get("train", {})
    if not isinstance(table, dict):
        raise ValueError(f"config [train] must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown [train] keys {unknown}; known: {', '.join(sorted(TRAIN_DEFAULTS))}")
    train_cfg = {**TRAIN_DEFAULTS, **table, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    for key, value in train_cfg.items():
        if key not in TRAIN_DEFAULTS:
            raise ValueError(f"unknown training setting {key!r}")
        default = TRAIN_DEFAULTS[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = train_cfg[key] = float(value) if ok else value
        elif isinstance(default, list):
            ok = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
            value = train_cfg[key] = list(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"[train] {key} must be {_TYPE_NAMES.get(type(default), type(default).__name__)}, "
                             f"got {value!r}")
        if key in _LIMITS:
            low, high, closed = _LIMITS[key]
            if not ((value >= low if closed else value > low) and (value < high or high == math.inf)):
                bounds = f"{'[' if closed else '('}{low}, {high})"
                raise ValueError(f"[train] {key} = {value} is outside {bounds}")
    if train_cfg["mixed_precision"] not in MIXED_PRECISION:
        raise ValueError(f"[train] mixed_precision must be one of {MIXED_PRECISION}, "
                         f"got {train_cfg['mixed_precision']!r}")
    if train_cfg["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(f"[train] lr_schedule must be one of {LR_SCHEDULES}, got {train_cfg['lr_schedule']!r}")
    if train_cfg["report_to"] == "auto":
        train_cfg["report_to"] = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    if train_cfg["report_to"] not in REPORT_TO:
        raise ValueError(f"[train] report_to must be one of {REPORT_TO}, got {train_cfg['report_to']!r}")
    if train_cfg["loader"] not in LOADERS:
        raise ValueError(f"[train] loader must be one of {LOADERS}, got {train_cfg['loader']!r}")
    if train_cfg["distributed"] not in fsdp.MODES:
        raise ValueError(f"[train] distributed must be one of {fsdp.MODES}, got {train_cfg['distributed']!r}")
    if train_cfg["fsdp_wrap"] and train_cfg["distributed"] != "fsdp":
        raise ValueError("[train] fsdp_wrap names FSDP units: it needs distributed = \"fsdp\"")
    cfg["train"] = train_cfg
    return cfg


def check_tracker(report_to: str) -> None:
    """Fail, naming the pip install, when the tracker `report_to` asks for is not installed."""
    module = TRACKERS.get(report_to)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ValueError(f"[train] report_to = {report_to!r}, but {module} is not installed: pip install {module} "
                         "(or set report_to = \"none\")")


def step_seed(seed: int, step: int, rank: int = 0, micro: int = 0) -> int:
    """The seed of micro-batch `micro` of step `step` on process `rank`: independent streams, no dependence on
    earlier steps (micro-batch 0 keeps the seed a step had before gradient accumulation existed)."""
    entropy = [seed, step, rank] + ([micro] if micro else [])
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def learning_rate(train_cfg: Mapping[str, Any], step: int) -> float:
    """The learning rate of (0-based) optimizer step `step`: a linear warm-up over lr_warmup_steps, then
    lr_schedule: constant (as the field's animation models train), or a cosine or linear decay that would reach
    0 at [train] steps. A pure function of the step, so a resumed run needs no scheduler state."""
    lr, warmup, total = train_cfg["lr"], train_cfg["lr_warmup_steps"], train_cfg["steps"]
    if step < warmup:
        return lr * ((step + 1) / warmup)
    if train_cfg["lr_schedule"] == "constant" or total <= warmup:
        return lr
    progress = (step - warmup) / (total - warmup)
    if train_cfg["lr_schedule"] == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * (1.0 - progress)


class DataOrder:
    """The (epoch, item) pairs of each step: a pure function of (seed, step)."""

    def __init__(self, n_items: int, global_batch: int, seed: int):
        if n_items < global_batch:
            raise ValueError(f"the dataset has {n_items} items, fewer than one global batch ({global_batch}); "
                             "lower --batch-size or add data")
        self.n_items, self.global_batch, self.seed = n_items, global_batch, seed
        self.steps_per_epoch = n_items // global_batch
        self._epoch, self._perm = -1, np.empty(0, np.int64)

    def batch(self, step: int) -> list[tuple[int, int]]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n_items)
        chunk = self._perm[pos * self.global_batch:(pos + 1) * self.global_batch]
        return [(epoch, int(i)) for i in chunk]


class _StepBatches(Sampler):
    """This process's micro-batches of each step in [start, stop): the step's global batch is cut into
    `accum` micro-batches, each shared out over the processes."""

    def __init__(self, order: DataOrder, start: int, stop: int, rank: int, world: int, accum: int = 1):
        self.order, self.start, self.stop, self.rank, self.world, self.accum = order, start, stop, rank, world, accum

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per = self.order.global_batch // (self.world * self.accum)
        for step in range(self.start, self.stop):
            items = self.order.batch(step)
            for micro in range(self.accum):
                first = (micro * self.world + self.rank) * per
                yield items[first:first + per]

    def __len__(self) -> int:
        return (self.stop - self.start) * self.accum


class _EpochItems(Dataset):
    """Serves (epoch, index) keys, telling a dataset with `set_epoch` the epoch first (in whichever worker)."""

    def __init__(self, dataset: Dataset):
        self.dataset, self.epoch = dataset, None

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self.epoch and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch
        return self.dataset[index]


def _has_fp16_device() -> bool:
    """Whether accelerate will put this process on a device with fp16 autocast (CUDA, XPU, MPS)."""
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return False
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or bool(xpu and xpu.is_available()) or torch.backends.mps.is_available()


def _previous_run(out_dir: Path) -> tuple[dict, dict] | None:
    """(meta, config) of the run in `out_dir`: from its checkpoint, else from run.json; None when neither exists."""
    meta_path = out_dir / run_folder.CHECKPOINT / "meta.json"
    if meta_path.is_file():
        return run_folder.read_json(meta_path), run_folder.read_json(meta_path.with_name("config.json"))
    if (out_dir / "run.json").is_file():
        run = run_folder.read_json(out_dir / "run.json")
        return run, run["config"]
    return None


def _check_resumable(out_dir: Path, previous: Mapping[str, Any], meta: Mapping[str, Any],
                     allow_other_shards: bool) -> None:
    """Refuse a resume that would lose work (a run with no checkpoint/ left) or mix data (other shards)."""
    moved_aside = any(out_dir.glob(f".{run_folder.CHECKPOINT}.old-*"))  # a kill between two renames: recover() fixes
    if not (out_dir / run_folder.CHECKPOINT / "meta.json").is_file() and not moved_aside:
        logged = [r["step"] for r in checkpoint.read_log(out_dir / "loss.jsonl") if "step" in r]
        held = ([f"{run_folder.MODEL}/"] if (out_dir / run_folder.MODEL).is_dir() else []) + sorted(
            f"{p.name}/" for p in out_dir.glob(f"{run_folder.CHECKPOINT}-*") if p.is_dir())
        if logged or held:
            kept = ", ".join(held + ([f"loss.jsonl up to step {max(logged)}"] if logged else []))
            raise ValueError(f"{out_dir} holds a run ({kept}) but no {run_folder.CHECKPOINT}/ to resume from; "
                             "resuming would start it over from step 0 and overwrite it. To continue from a kept "
                             f"step, copy {run_folder.CHECKPOINT}-<step>/ to {run_folder.CHECKPOINT}/; to start "
                             "over, delete the folder or choose another --out")
    before = previous.get("shards_sha256")
    if before is not None and before != meta["shards_sha256"] and not allow_other_shards:
        raise ValueError(f"{out_dir} was trained on other shards (manifest sha256 {before[:12]}, these "
                         f"{str(meta['shards_sha256'])[:12]}); resume with the run's shards, or pass "
                         "--allow-other-shards to continue on these")


def _validation_line(record: Mapping[str, Any]) -> str:
    shown = [k for k in ("l1_fg", "psnr_fg", "ssim_fg", "l1", "psnr", "ssim") if record.get(k) is not None]
    return (f"step {record['step']}: validation on {len(record['videos'])} {record['split']} video(s): "
            + ", ".join(f"{k} {record[k]:.4g}" for k in shown))


def _start_tracker(accelerator: Any, train_cfg: Mapping[str, Any], out_dir: Path, start: int) -> None:
    """Start the run's tracker (main process): tensorboard writes its event files to RUN/logs/, purging the
    events a killed run logged after the checkpoint it resumes from; wandb and trackio log a run named after the
    folder, with the [train] settings."""
    report_to = train_cfg["report_to"]
    if report_to == "none":
        return
    if report_to == "tensorboard":
        accelerator.init_trackers(EVENTS_DIR, init_kwargs={"tensorboard": {"purge_step": start + 1} if start else {}})
        return
    settings = {k: v for k, v in train_cfg.items() if isinstance(v, (bool, int, float, str))}
    options: dict[str, Any] = {"name": out_dir.name}
    if report_to == "wandb":
        options["dir"] = str(out_dir / EVENTS_DIR)
        (out_dir / EVENTS_DIR).mkdir(exist_ok=True)
    accelerator.init_trackers("toolkit-train", config=settings, init_kwargs={report_to: options})


def log_validation_to_trackers(accelerator: Any, record: Mapping[str, Any], grids: Mapping[str, np.ndarray]) -> None:
    """A validation's metrics as scalars, and each video's sample grid as an image (trackers that take images)."""
    accelerator.log({f"validation/{k}": v for k, v in record.items()
                     if isinstance(v, (int, float)) and k not in ("step", "seconds")}, step=record["step"])
    for tracker in accelerator.trackers:
        if not callable(getattr(tracker, "log_images", None)):
            continue
        for video_id, grid in grids.items():
            if tracker.name == "tensorboard":
                tracker.log_images({f"validation/{video_id}": grid[None]}, step=record["step"], dataformats="NHWC")
            else:
                tracker.log_images({f"validation/{video_id}": [grid]}, step=record["step"])


def _finish_trackers(accelerator: Any) -> None:
    """Close the trackers (their files flushed); unlike `end_training`, leave the process group to the caller."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers = []


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines up to `step` (a line cut short by a kill ends the file)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] > step:
                break
        except (json.JSONDecodeError, KeyError, TypeError):
            break
        kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def train(recipe: Recipe, config: str | Mapping[str, Any], shards: str | os.PathLike, out_dir: str | os.PathLike,
          *, resume: bool = False, max_steps: int | None = None, max_minutes: float | None = None,
          progress: bool = True, method: str | None = None,
          train_overrides: Mapping[str, Any] | None = None, stage: int | None = None,
          init: str | os.PathLike | None = None, allow_other_shards: bool = False) -> dict[str, Any]:
    """Train `recipe`'s model on `shards` into `out_dir`; returns a summary (step, why it stopped, last loss, paths).

    Args:
        config: a config name or path for ``recipe.load_config``, or a config dict.
        resume: continue the run in `out_dir` from its checkpoint (from step 0 if it has none yet);
            without it `out_dir` must be empty or absent.
        max_steps: stop (with a checkpoint) at this step, as if interrupted; [train] steps is the
            run's length, so resuming later continues the same run.
        max_minutes: stop (with a checkpoint) after this wall time.
        method: the name checkpoints record (default: the recipe's).
        train_overrides: [train] values that replace the config's (None values are ignored).
        stage: the stage to train, for a recipe whose config has ``[stages.N]`` tables
            (:func:`toolkit.train.recipe.select_stage`).
        init: weights to start from (a run folder, model folder or .safetensors file), e.g. the
            previous stage's run, or "published": the method's released weights
            (``recipe.load_published``); ignored when resuming from a checkpoint. Then
            ``recipe.after_init`` may load what the config puts on top (MagicAnimate stage 2's motion modules).
        allow_other_shards: resume onto shards other than the run's (their manifest's sha256 differs).

    Everything is validated, the model and dataset built, before anything is written.
    """
    from accelerate import Accelerator
    from accelerate.utils import (DistributedDataParallelKwargs, DistributedType, InitProcessGroupKwargs,
                                  send_to_device)
    from tqdm.auto import tqdm

    # 1. The config, the arguments and the run folder: nothing is written until all of them pass.
    method = method or getattr(recipe, "name", "") or f"{type(recipe).__module__}:{type(recipe).__qualname__}"
    config_name = config if isinstance(config, str) else "custom"
    staged = select_stage(recipe.load_config(config) if isinstance(config, str) else config, stage, method, init)
    cfg = resolve_config(staged, train_overrides)
    try:
        settings = recipe.parse_config(cfg)  # the method's tables, parsed and validated once for the whole run
    except ValueError as exc:
        raise ValueError(f"config {config_name}: {exc}") from None
    # what run.json and the checkpoints store: the config with the method's tables resolved (defaults filled)
    stored = {**cfg, **settings.to_dict()} if callable(getattr(settings, "to_dict", None)) else cfg
    published = init is not None and str(init) == run_folder.PUBLISHED
    init_file = checkpoint.init_weights(init) if init is not None and not published else None
    t = cfg["train"]
    check_tracker(t["report_to"])
    check_fsdp = getattr(recipe, "check_fsdp", None)
    if t["distributed"] == "fsdp" and callable(check_fsdp):
        check_fsdp(settings)
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"max_minutes must be positive, got {max_minutes}")
    shards, out_dir = Path(shards), Path(out_dir)
    if not shards.exists():
        raise FileNotFoundError(f"shard folder not found: {shards}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder")
    manifest = shards / "manifest.json"  # the shards' identity: a resume onto other shards is refused
    meta = {"method": method, "config_name": config_name, "config_sha": checkpoint.config_sha(cfg),
            "shards_sha256": sha256_file(manifest) if manifest.is_file() else None}
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        held = ", ".join(sorted(p.name for p in out_dir.iterdir())[:4])
        raise ValueError(f"{out_dir} is not empty (holds {held}); pass --resume to continue the run in it, "
                         "or choose another --out")
    previous = _previous_run(out_dir) if resume else None
    if previous is None and resume and out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in checkpoint.RUN_FILES
                         and not p.name.startswith("."))
        if foreign:
            raise ValueError(f"{out_dir} holds no training run to resume (no run.json or checkpoint, but "
                             f"{', '.join(foreign[:4])}); choose another --out")
    if previous is not None:
        saved_cfg = {**previous[1], "train": {**ADDED_KEYS, **previous[1].get("train", {})}}
        checkpoint.check_same_run(out_dir, previous[0], saved_cfg, meta, cfg, MAY_CHANGE_ON_RESUME)
        if t["lr_schedule"] != "constant" and saved_cfg["train"].get("steps") != t["steps"]:
            raise ValueError(f"{out_dir}: the {t['lr_schedule']} learning-rate schedule decays over [train] steps "
                             f"= {saved_cfg['train'].get('steps')}; resuming with steps = {t['steps']} would not "
                             "continue the same run (use --max-steps / --max-minutes to stop early)")
        _check_resumable(out_dir, previous[0], meta, allow_other_shards)

    # 2. Processes and devices (accelerate launch decides how many), model, data, optimizer.
    if t["mixed_precision"] == "fp16" and not _has_fp16_device():
        raise ValueError("mixed_precision fp16 needs a GPU; on CPU use bf16 or no")
    # One process has nothing to shard: fsdp then trains as ddp does (and the plugin is not passed).
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    sharded = t["distributed"] == "fsdp" and launched > 1
    fsdp_plugin = fsdp.plugin(t["fsdp_wrap"]) if sharded else None
    # A recipe may leave trainable parameters out of a step's loss (UniAnimate's image projection without image
    # embeddings); DDP must then look for them in each step's graph, or it waits for their gradients forever.
    handlers: list[Any] = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    validation = Validation.from_config(method, shards, t) if t["validate_every"] else None
    if validation is not None:  # the other processes wait while the main one validates: longer than NCCL's 10 min
        handlers.append(InitProcessGroupKwargs(backend=None, timeout=dt.timedelta(hours=VALIDATION_TIMEOUT_HOURS)))
    accelerator = Accelerator(mixed_precision=t["mixed_precision"], fsdp_plugin=fsdp_plugin,
                              kwargs_handlers=handlers, project_dir=out_dir,
                              log_with=None if t["report_to"] == "none" else t["report_to"])
    device, rank, world, main = (accelerator.device, accelerator.process_index, accelerator.num_processes,
                                 accelerator.is_main_process)
    if validation is not None:
        validation.options["device"] = str(device)
    if launched > world:
        raise RuntimeError(f"launched as one of {launched} processes, but accelerate runs this one alone (no GPU "
                           "found?); for several CPU processes set ACCELERATE_USE_CPU=1")
    if sharded:
        fsdp.enable(accelerator, fsdp_plugin)
    elif accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED,
                                          DistributedType.MEGATRON_LM):
        raise ValueError(f"launched with {accelerator.distributed_type}, which the loop does not run; launch "
                         "plain (DDP), and for FSDP set [train] distributed = \"fsdp\"")
    torch.manual_seed(t["seed"])
    trainee = recipe.build_model(settings)
    if not isinstance(trainee, Trainee):
        raise ValueError(f"{method}: build_model must return a toolkit.train.Trainee (the model and what loss "
                         f"needs), not {type(trainee).__name__}")
    model, needs = trainee.model, trainee.needs
    classes = {type(m).__name__ for m in model.modules()}
    unknown_units = sorted(set(t["fsdp_wrap"]) - classes)
    if unknown_units:
        raise ValueError(f"[train] fsdp_wrap {unknown_units}: no such module class in the model (it has "
                         f"{', '.join(sorted(classes)[:12])}, ...)")
    if init_file is not None:
        checkpoint.load_init(model, init_file)
    elif published:
        init_sha256 = recipe.load_published(model, needs)
    after_init, loaded_after_init = getattr(recipe, "after_init", None), None
    if callable(after_init):
        loaded_after_init = after_init(model, needs, run_folder.PUBLISHED if published
                                       else (None if init_file is None else str(init_file)))
    if not callable(getattr(model, "save_pretrained", None)):
        raise ValueError(f"{method}: the model ({type(model).__name__}) has no save_pretrained(dir)")
    if t["gradient_checkpointing"]:
        if not callable(getattr(model, "enable_gradient_checkpointing", None)):
            raise ValueError(f"{method}: the model ({type(model).__name__}) has no enable_gradient_checkpointing(); "
                             "train without gradient checkpointing")
        model.enable_gradient_checkpointing()
    dataset = recipe.build_dataset(shards, settings)
    accum = t["grad_accum_steps"]
    order = DataOrder(len(dataset), t["batch_size"] * world * accum, t["seed"])
    chosen = getattr(recipe, "trainable_parameters", None)
    params = list(chosen(model, needs) if chosen else (p for p in model.parameters() if p.requires_grad))
    if not params:
        raise ValueError(f"{method}: the recipe gives no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=t["lr"], betas=(t["adam_beta1"], t["adam_beta2"]),
                                  eps=t["adam_eps"], weight_decay=t["weight_decay"])

    # 3. Now write: clean up after a kill, load the checkpoint, cut the log back to it, record the run.
    start, seconds, ckpt = 0, 0.0, None
    lock = None
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = FolderLock.acquire(out_dir)  # before recover(), which removes a writer's temporaries
        checkpoint.recover(out_dir)
    accelerator.wait_for_everyone()
    if resume:
        ckpt = checkpoint.latest(out_dir)
    if ckpt is not None:
        ckpt.verify()
        ckpt.load_model(model)
        start = ckpt.step
        before = (ckpt.meta.get("num_processes"), ckpt.meta.get("dataset_len"))
        if before != (world, len(dataset)):
            accelerator.print(f"warning: {out_dir} was trained with {before[0]} process(es) on {before[1]} items, "
                              f"now {world} on {len(dataset)}: the data order from here on differs from an "
                              "uninterrupted run", file=sys.stderr)
    elif resume:
        accelerator.print(f"{out_dir} has no checkpoint yet: starting from step 0")
    # Under FSDP the main process writes checkpoints through an unsharded CPU copy of the model.
    host = copy.deepcopy(model) if sharded and main else None
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    params = fsdp.optimizer_params(optimizer)  # FSDP replaces the parameters with sharded ones
    ema = EMA(unwrapped, params, t["ema_decay"])
    if ckpt is not None:
        fsdp.load_optimizer_state(optimizer, ckpt.optimizer_state())
        state = ckpt.state()
        ema.load_state_dict(ckpt.ema_state(), int(state["ema_updates"]))
        seconds = float(state["seconds"])
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    log_path = out_dir / "loss.jsonl"
    if main:
        _truncate_log(log_path, start)
        _truncate_log(out_dir / VALIDATION_LOG, start)
        drop_samples_after(out_dir, start)
        started = {"init": str(init_file), "init_sha256": weights_sha256(init_file) if init_file.is_dir()
                   else sha256_file(init_file)} if init_file is not None else {}
        if published:
            started = {"init": run_folder.PUBLISHED, "init_sha256": init_sha256}
        if loaded_after_init:
            started["after_init"] = loaded_after_init
        atomic_write_json(out_dir / "run.json", {**meta, "config": stored, "started_at_step": start,
                                                 "num_processes": world, "fsdp": sharded, **started})
    _start_tracker(accelerator, t, out_dir, start)
    accelerator.wait_for_everyone()

    def summary(step: int, stopped: str, loss: float | None, seconds: float) -> dict[str, Any]:
        return {"step": step, "stopped": stopped, "loss": loss, "seconds": seconds, "out_dir": str(out_dir),
                "checkpoint": str(out_dir / run_folder.CHECKPOINT), "model": str(out_dir / run_folder.MODEL),
                "main_process": main}

    stop = min(t["steps"], max_steps) if max_steps else t["steps"]
    if start >= stop:
        accelerator.print(f"{out_dir} is already at step {start} (asked to stop at {stop}): nothing to do")
        _finish_trackers(accelerator)
        if lock is not None:
            lock.release()
        return summary(start, "done", None, seconds)

    # 4. The loop: one optimizer step per `accum` micro-batches.
    items, batches = _EpochItems(dataset), _StepBatches(order, start, stop, rank, world, accum)
    if t["loader"] == "threads" and t["num_workers"] > 0:
        loader = ThreadLoader(items, batches, t["num_workers"], pin_memory=device.type == "cuda")
    else:
        loader = DataLoader(items, batch_sampler=batches, num_workers=t["num_workers"],
                            pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(t["seed"]))
    log = open(log_path, "a", encoding="utf-8") if main else None

    def save(step: int, elapsed: float) -> None:
        accelerator.wait_for_everyone()
        if sharded or main:  # gathering shards takes every process
            weights = fsdp.gather(unwrapped.state_dict(), main) if sharded else {}
            ema_state = fsdp.gather(ema.state_dict(), main)
            optimizer_state = fsdp.full_optimizer_state(optimizer, main)
        if main:
            log.flush()
            os.fsync(log.fileno())
            if sharded:
                host.load_state_dict(weights)
            writer = host if sharded else unwrapped

            def export(folder: Path) -> None:
                with swapped({n: writer.get_parameter(n) for n in ema_state}, ema_state):
                    writer.save_pretrained(folder)

            state = {"step": step, "ema_updates": ema.updates, "seconds": elapsed,
                     "torch_rng": torch.get_rng_state(),
                     "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
            try:
                checkpoint.save(out_dir, model=writer, ema_state=ema_state, optimizer_state=optimizer_state,
                                state=state, config=stored, export=export, keep=t["keep_checkpoints"],
                                meta={**meta, "step": step, "num_processes": world, "dataset_len": len(dataset)})
            except run_folder.CheckpointWriteError:  # the logs go back to the last checkpoint that was written
                log.close()
                saved = checkpoint.latest(out_dir)
                for path in (log_path, out_dir / VALIDATION_LOG):
                    _truncate_log(path, saved.step if saved is not None else 0)
                raise
        accelerator.wait_for_everyone()

    bar = tqdm(total=stop, initial=start, unit="step", disable=not (progress and main), dynamic_ncols=True)
    began, elapsed, smoothed, value = time.monotonic(), seconds, None, None
    validating_seconds = 0.0  # wall time of validations: in --max-minutes, not in the run's training seconds
    stopped, step = "done" if stop == t["steps"] else "max_steps", start
    step_seconds, timed_steps = 0.0, 0  # compute time of the steps since the last log (no checkpoint/validation)
    micro_batches = iter(loader)
    model.train()
    try:
        while step < stop:
            step_began = time.monotonic()
            lr = learning_rate(t, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            micro_losses = []
            for micro in range(accum):  # gradients add up over the micro-batches; processes sync on the last
                batch = colour_batch(send_to_device(next(micro_batches), device, non_blocking=True))
                seed = step_seed(t["seed"], step, rank, micro)
                torch.manual_seed(seed)
                generator = torch.Generator(device=device).manual_seed(seed)
                syncing = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(model)
                with syncing:
                    with accelerator.autocast():
                        loss = recipe.loss(model, batch, generator, needs)
                    if loss.ndim != 0:
                        raise ValueError(f"{method}: loss must be a scalar, got shape {tuple(loss.shape)}")
                    accelerator.backward(loss / accum)
                micro_losses.append(loss.detach())
            loss = torch.stack(micro_losses).mean()  # the step's loss: the mean over its micro-batches
            grad_norm = accelerator.clip_grad_norm_(params, t["grad_clip"]) if t["grad_clip"] > 0 else None
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            ema.update()
            step += 1
            elapsed = seconds + time.monotonic() - began - validating_seconds
            step_seconds, timed_steps = step_seconds + time.monotonic() - step_began, timed_steps + 1

            if step % t["log_every"] == 0:
                value = accelerator.reduce(loss.detach().float(), reduction="mean").item()
                if not math.isfinite(value):
                    saved = checkpoint.latest(out_dir)
                    kept = (f"the last checkpoint (step {saved.step}) is intact" if saved is not None else
                            "no checkpoint was saved yet")
                    raise RuntimeError(f"loss is {value} at step {step}; {kept} (lower the learning rate, or "
                                       "check the data)")
                if main:
                    record = {"step": step, "loss": value, "lr": lr, "seconds": round(elapsed, 3)}
                    if grad_norm is not None:
                        record["grad_norm"] = float(grad_norm)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    step_time = step_seconds / timed_steps
                    accelerator.log({f"train/{k}": v for k, v in record.items() if k not in ("step", "seconds")}
                                    | {"train/step_time": step_time, "train/clips_per_s": order.global_batch
                                       / step_time}, step=step)
                step_seconds, timed_steps = 0.0, 0
                smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
                bar.set_postfix(loss=f"{smoothed:.4f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(1)

            if max_minutes is not None and time.monotonic() - began >= max_minutes * 60:
                accelerator.set_trigger()
            out_of_time = max_minutes is not None and accelerator.check_trigger()
            validating = validation is not None and (step % t["validate_every"] == 0 or step == stop)
            if step % t["checkpoint_every"] == 0 or step == stop or out_of_time or validating:
                save(step, elapsed)
            if validating:  # on the EMA weights just saved
                paused = time.monotonic()
                if main:
                    record, grids = validate(out_dir, step, validation)
                    log_validation_to_trackers(accelerator, record, grids)
                    if progress:
                        bar.write(_validation_line(record))
                accelerator.wait_for_everyone()
                validating_seconds += time.monotonic() - paused
                bar.unpause()  # the step rate leaves the validation out
            if out_of_time:
                stopped = "max_minutes"
                break
    finally:
        del micro_batches  # ends the loader's threads or processes now
        bar.close()
        _finish_trackers(accelerator)
        if log is not None:
            log.close()
        if lock is not None:
            lock.release()
    return summary(step, stopped, value, elapsed)
