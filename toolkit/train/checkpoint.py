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
        meta.json            method, config name and sha, step, processes, dataset length, the shards'
                             identity, and each file's size and sha256 (checked on resume and by `toolkit info`)
    checkpoint-<step>/       kept copies (hard links) when [train] keep_checkpoints = true, with model/: that
                             step's EMA weights, so a kept step loads as itself wherever a run folder is accepted
    model/                   EMA weights through the model's save_pretrained: from_pretrained(run/model)
    .lock                    the pid and host of the process writing the run (one writer at a time)

A save that fails (a full disk) removes its temporary and names the folder; the previous checkpoint is untouched.
Reading a run folder's model (``--checkpoint``, ``--init``) and the atomic folder writes are
:mod:`toolkit.models.run_folder`'s, shared with inference; this module keeps what only training needs: the
checkpoint's optimizer and loop state, resume, and ``--init``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors.torch import load_file, save_file, save_model

from toolkit import __version__
from toolkit.io import sha256_file
from toolkit.models import pretrained
from toolkit.models.run_folder import (
    CHECKPOINT, MODEL, check_weights, durable_rename, is_checkpoint, load_weights, read_json, step_model_dir, swap_in,
    writing)

FORMAT = 1
RUN_FILES = ("run.json", "loss.jsonl", "validation.jsonl", "validation", "logs")
WEIGHT_FILES = ("model.safetensors", "ema.safetensors", "optimizer.pt", "state.pt")


class CheckpointDamaged(ValueError):
    """A checkpoint file differs from what was recorded when it was saved."""


def config_sha(config: Mapping[str, Any]) -> str:
    """Short sha256 of everything in the config but [train]: what decides the model and its data."""
    rest = {k: v for k, v in config.items() if k != "train"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


def describe(meta: Mapping[str, Any], noun: str = "") -> str:
    """How messages name a run: "'method' [noun] with config NAME (sha ...)"."""
    name = f"{meta['method']!r} {noun}".rstrip()
    return f"{name} with config {meta['config_name']} (sha {meta['config_sha']})"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def recover(out_dir: Path) -> None:
    """Undo what a kill during `save` left: put a moved-aside folder back where none replaced it, drop temporaries."""
    for aside in out_dir.glob(".*.old-*"):
        final = out_dir / aside.name[1:].rsplit(".old-", 1)[0]
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            durable_rename(aside, final)
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
    with writing(out_dir, CHECKPOINT, meta["step"]) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        save_file({k: v.detach().contiguous().cpu() for k, v in ema_state.items()}, str(tmp / "ema.safetensors"))
        torch.save(dict(optimizer_state), tmp / "optimizer.pt")
        torch.save(dict(state), tmp / "state.pt")
        _write_json(tmp / "config.json", config)
        files = {name: {"size": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
                 for name in WEIGHT_FILES}
        _write_json(tmp / "meta.json", {**meta, "format": FORMAT, "toolkit": __version__, "files": files})
    swap_in(tmp, out_dir / CHECKPOINT)

    with writing(out_dir, MODEL, meta["step"]) as tmp_model:
        export(tmp_model)
    swap_in(tmp_model, out_dir / MODEL)

    if keep:
        kept = out_dir / f"{CHECKPOINT}-{meta['step']}"
        with writing(out_dir, kept.name, meta["step"]) as tmp_kept:
            _link_tree(out_dir / CHECKPOINT, tmp_kept)
            _link_tree(out_dir / MODEL, tmp_kept / MODEL)
        swap_in(tmp_kept, kept)
    return out_dir / CHECKPOINT


def _link_tree(src: Path, dst: Path) -> None:
    """Hard links (copies where links are not possible) of the files of `src` in a new folder `dst`."""
    dst.mkdir(exist_ok=True)
    for f in src.iterdir():
        try:
            os.link(f, dst / f.name)
        except OSError:
            shutil.copy2(f, dst / f.name)


@dataclass
class Checkpoint:
    """A checkpoint folder on disk, read lazily except its small metadata."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def problems(self, hashes: bool = True) -> list[str]:
        """What is wrong with the checkpoint's files: each one missing, or unlike the size (and, with `hashes`,
        the sha256) recorded when it was saved. Checkpoints saved before sizes were recorded: presence only."""
        recorded = self.meta.get("files") or {}
        out = []
        for name in WEIGHT_FILES:
            path = self.path / name
            if not path.is_file():
                out.append(f"{path}: missing")
                continue
            want = recorded.get(name)
            if want is None:
                continue
            size = path.stat().st_size
            if size != want["size"]:
                out.append(f"{path}: damaged ({size} bytes, {want['size']} when saved)")
            elif hashes and sha256_file(path) != want["sha256"]:
                out.append(f"{path}: damaged (its sha256 differs from the one recorded when it was saved)")
        return out

    def verify(self) -> None:
        """Raise CheckpointDamaged naming every damaged file, with what to do instead."""
        problems = self.problems()
        if problems:
            raise CheckpointDamaged("; ".join(problems) + f". The run cannot resume from {self.path}: copy a kept "
                                    f"{CHECKPOINT}-<step> folder over it, or start over in another --out")

    def _read(self, name: str, load: Callable[[Path], Any]) -> Any:
        try:
            return load(self.path / name)
        except Exception as exc:  # noqa: BLE001 - any failure to read names the file
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointDamaged(f"{self.path / name}: unreadable ({why}); copy a kept {CHECKPOINT}-<step> "
                                    f"folder over {self.path}, or start over in another --out") from exc

    def load_model(self, model: torch.nn.Module) -> None:
        state = self._read("model.safetensors", lambda p: load_file(str(p)))
        check_weights(model, state, str(self.path))
        model.load_state_dict(state)

    def ema_state(self) -> dict[str, torch.Tensor]:
        return self._read("ema.safetensors", lambda p: load_file(str(p)))

    def optimizer_state(self) -> dict[str, Any]:
        # mapped, not read: under FSDP every process opens it and keeps only its shard
        return self._read("optimizer.pt", lambda p: torch.load(p, map_location="cpu", weights_only=True, mmap=True))

    def state(self) -> dict[str, Any]:
        return self._read("state.pt", lambda p: torch.load(p, map_location="cpu", weights_only=True))


def read_log(path: Path) -> list[dict[str, Any]]:
    """The complete JSON lines of a log such as loss.jsonl (a line cut short by a kill ends it)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


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
    """The weights `--init` names: a run folder (its EMA weights, model/), a kept checkpoint-<step> (that step's
    EMA weights), a model folder (these three as the model folder), or a .safetensors file."""
    path = Path(init)
    if is_checkpoint(path):
        return step_model_dir(path)
    for folder in (path / MODEL, path):
        if folder.is_dir() and pretrained.weight_files(folder):
            return folder
    if path.is_file() and path.suffix == ".safetensors":
        return path
    raise FileNotFoundError(f"--init {init}: no weights there (give a run folder of `toolkit train`, its model/ "
                            "folder, or a .safetensors file)")


def load_init(model: torch.nn.Module, weights: Path) -> None:
    """Start `model` from another run's weights; every tensor must match by name and shape."""
    load_weights(model, weights, f"--init {weights}", "; train the earlier stage with the same config")
