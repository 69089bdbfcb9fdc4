"""Atomic checkpoints: a kill at any moment leaves the previous checkpoint whole.

A checkpoint is written into a temporary folder inside the run folder, every file fsynced,
then renamed into place (the old one is moved aside first and removed after). The next start
(`recover`) puts a moved-aside checkpoint back if the kill fell between the two renames, and
deletes stale temporaries. Layout of a run folder::

    run.json                 method, config name and sha, resolved config (rewritten at each start)
    loss.jsonl               one line per logged step: step, loss, lr, seconds (grad_norm if clipping)
    checkpoint/              the latest checkpoint
        model.safetensors    trained weights (full, whether trained with DDP or FSDP)
        ema.safetensors      EMA weights, by parameter name
        optimizer.pt         optimizer state, full tensors also under FSDP (torch.save; loaded with weights_only=True)
        state.pt             step, EMA update count, seconds trained, torch RNG states
        config.json          the resolved config
        meta.json            method, config name and sha, step, processes, dataset length
    checkpoint-<step>/       kept copies (hard links) when [train] keep_checkpoints = true
    model/                   EMA weights through the model's save_pretrained: from_pretrained(run/model)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors.torch import load_file, save_file, save_model

from toolkit import __version__

FORMAT = 1
CHECKPOINT = "checkpoint"
MODEL = "model"
RUN_FILES = ("run.json", "loss.jsonl", "validation.jsonl")


def config_sha(config: Mapping[str, Any]) -> str:
    """Short sha256 of everything in the config but [train]: what decides the model and its data."""
    rest = {k: v for k, v in config.items() if k != "train"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


def describe(meta: Mapping[str, Any], noun: str = "") -> str:
    """How messages name a run: "'method' [noun] with config NAME (sha ...)"."""
    name = f"{meta['method']!r} {noun}".rstrip()
    return f"{name} with config {meta['config_name']} (sha {meta['config_sha']})"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file under root, then the folders (so the names are durable too)."""
    for dirpath, _, files in os.walk(root):
        for f in files:
            _fsync_path(Path(dirpath) / f)
    for dirpath, _, _ in os.walk(root, topdown=False):
        _fsync_path(Path(dirpath))


def _rename(src: Path, dst: Path) -> None:
    """Rename and make the rename durable (the one place a folder changes name)."""
    os.replace(src, dst)
    _fsync_path(dst.parent)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _swap_in(tmp: Path, final: Path) -> None:
    """Put a finished temporary folder at `final`; the old one is moved aside, then deleted."""
    aside = None
    if final.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        aside.rmdir()
        _rename(final, aside)
    _rename(tmp, final)
    if aside is not None:
        shutil.rmtree(aside)


def recover(out_dir: Path) -> None:
    """Undo what a kill during `save` left: put a moved-aside folder back where none replaced it, drop temporaries."""
    for aside in out_dir.glob(".*.old-*"):
        final = out_dir / aside.name[1:].rsplit(".old-", 1)[0]
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            _rename(aside, final)
    for stale in out_dir.glob(".*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def save(out_dir: Path, *, model: torch.nn.Module, ema_state: Mapping[str, torch.Tensor],
         optimizer_state: Mapping[str, Any], state: Mapping[str, Any], config: Mapping[str, Any],
         meta: Mapping[str, Any], export: Callable[[Path], None], keep: bool = False) -> Path:
    """Write the checkpoint of `out_dir` atomically, then the inference copy `out_dir/model` via `export(dir)`.

    `model` is an unsharded model with the trained weights, `optimizer_state` a state_dict of full
    tensors; `export` writes the EMA weights with the model's save_pretrained. With `keep`, also
    ``checkpoint-<step>/`` (hard links).
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT}.tmp-", dir=out_dir))
    save_model(model, str(tmp / "model.safetensors"))
    save_file({k: v.detach().contiguous().cpu() for k, v in ema_state.items()}, str(tmp / "ema.safetensors"))
    torch.save(dict(optimizer_state), tmp / "optimizer.pt")
    torch.save(dict(state), tmp / "state.pt")
    _write_json(tmp / "config.json", config)
    _write_json(tmp / "meta.json", {**meta, "format": FORMAT, "toolkit": __version__})
    _fsync_tree(tmp)
    _swap_in(tmp, out_dir / CHECKPOINT)

    tmp_model = Path(tempfile.mkdtemp(prefix=f".{MODEL}.tmp-", dir=out_dir))
    export(tmp_model)
    _fsync_tree(tmp_model)
    _swap_in(tmp_model, out_dir / MODEL)

    if keep:
        kept = out_dir / f"{CHECKPOINT}-{meta['step']}"
        tmp_kept = Path(tempfile.mkdtemp(prefix=f".{kept.name}.tmp-", dir=out_dir))
        for f in (out_dir / CHECKPOINT).iterdir():
            try:
                os.link(f, tmp_kept / f.name)
            except OSError:
                shutil.copy2(f, tmp_kept / f.name)
        _fsync_tree(tmp_kept)
        _swap_in(tmp_kept, kept)
    return out_dir / CHECKPOINT


@dataclass
class Checkpoint:
    """A checkpoint folder on disk, read lazily except its small metadata."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def load_model(self, model: torch.nn.Module) -> None:
        load_weights(model, self.path / "model.safetensors", str(self.path))

    def ema_state(self) -> dict[str, torch.Tensor]:
        return load_file(str(self.path / "ema.safetensors"))

    def optimizer_state(self) -> dict[str, Any]:
        # mapped, not read: under FSDP every process opens it and keeps only its shard
        return torch.load(self.path / "optimizer.pt", map_location="cpu", weights_only=True, mmap=True)

    def state(self) -> dict[str, Any]:
        return torch.load(self.path / "state.pt", map_location="cpu", weights_only=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc


def latest(out_dir: Path) -> Checkpoint | None:
    """The checkpoint at `out_dir/checkpoint`, or None when there is none (call `recover` first)."""
    path = out_dir / CHECKPOINT
    if not (path / "meta.json").is_file():
        return None
    meta = read_json(path / "meta.json")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}; this toolkit reads format {FORMAT}")
    return Checkpoint(path, meta, read_json(path / "config.json"))


def check_same_run(out_dir: Path, saved_meta: Mapping[str, Any], saved_config: Mapping[str, Any],
                   meta: Mapping[str, Any], config: Mapping[str, Any], may_change: set[str]) -> None:
    """Refuse to resume a run of another method, another model/data config, or other result-changing settings."""
    if saved_meta["method"] != meta["method"] or saved_meta["config_sha"] != meta["config_sha"]:
        raise ValueError(f"{out_dir} holds a {describe(saved_meta, 'checkpoint')}; this run asks for {describe(meta)}. "
                         "Resume with the same --method and --config, or choose another --out")
    old, new = saved_config.get("train", {}), config.get("train", {})
    changed = sorted(k for k in set(old) | set(new) if k not in may_change and old.get(k) != new.get(k))
    if changed:
        diffs = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise ValueError(f"{out_dir}: resuming with different training settings ({diffs}) would not continue the "
                         f"same run; only {', '.join(sorted(may_change))} may change on resume")


def init_weights(init: str | os.PathLike) -> Path:
    """The safetensors file `--init` names: a run folder (its EMA weights, model/), a model folder, or the file."""
    path = Path(init)
    for candidate in (path / MODEL / "model.safetensors", path / "model.safetensors", path):
        if candidate.is_file() and candidate.suffix == ".safetensors":
            return candidate
    raise FileNotFoundError(f"--init {init}: no weights there (give a run folder of `toolkit train`, its model/ "
                            "folder, or a .safetensors file)")


def load_weights(model: torch.nn.Module, weights: Path, name: str, advice: str = "") -> None:
    """Load a safetensors file into `model`; every tensor must match by name and shape, else a ValueError that
    starts with `name` and lists the first differences."""
    state, own = load_file(str(weights)), model.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        raise ValueError(f"{name}: weights do not match the model (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}, other shape {reshaped[:3]}){advice}")
    model.load_state_dict(state)


def load_init(model: torch.nn.Module, weights: Path) -> None:
    """Start `model` from another run's weights; every tensor must match by name and shape."""
    load_weights(model, weights, f"--init {weights}", "; train the earlier stage with the same config")


def load_run(checkpoint: str | os.PathLike, method: str) -> tuple[dict[str, Any], Path]:
    """(resolved config, model folder) of a `toolkit train --method METHOD` run folder (or of its model/ folder)."""
    root = Path(checkpoint)
    if (root / "model.safetensors").is_file() and not (root / "run.json").is_file():
        root = root.parent
    run, model_dir = root / "run.json", root / MODEL
    if not run.is_file() or not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{checkpoint}: not a trained {method} folder (expected run.json and "
                                f"model/model.safetensors, as `toolkit train --method {method} --out DIR` writes)")
    meta = read_json(run)
    if meta.get("method") not in (None, method):
        raise ValueError(f"{checkpoint}: holds a {meta.get('method')!r} model, not {method!r}")
    return meta["config"], model_dir


# `--checkpoint published`: the authors' released weights through the weights registry, not a run folder.
PUBLISHED = "published"


def paper_run_config(config_file: str | os.PathLike) -> dict[str, Any]:
    """The run config a released checkpoint runs with: the paper config's tables (codec, scheduler, sampling,
    data, ...) without its training stages, in the form `load_run` returns."""
    import tomllib

    with open(config_file, "rb") as fh:
        tables = tomllib.load(fh)
    tables.pop("stages", None)
    return tables
