"""Run folders as inference reads them: a `toolkit train` run's model, a kept step's, or the authors' release.

Both `toolkit eval` / `toolkit animate` (through a method's ``--checkpoint``) and training (``--init``, resume)
read run folders through this module, so a method never imports the training package. What it reads::

    run.json                 method, config name and sha, resolved config
    model/                   EMA weights through the model's save_pretrained: from_pretrained(run/model)
    checkpoint/              the latest checkpoint (meta.json, config.json, model and EMA weights, ...)
    checkpoint-<step>/       a kept step, with model/: that step's EMA weights

``--checkpoint published`` (`PUBLISHED`) is no folder: the authors' released weights through the weights
registry, run with the paper config's tables (`paper_run_config`). Folders are replaced atomically (`writing`,
then `swap_in`): a kill at any moment leaves the previous folder whole. :mod:`toolkit.train.checkpoint` writes
checkpoints with the same primitives and keeps what only training needs (optimizer state, resume).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors.torch import load_file, save_file

from toolkit.io import _umask
from toolkit.models import pretrained

CHECKPOINT = "checkpoint"
MODEL = "model"
# `--checkpoint published`: the authors' released weights through the weights registry, not a run folder.
PUBLISHED = "published"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (e.g. no space left); the previous one is intact."""


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


def durable_rename(src: Path, dst: Path) -> None:
    """Rename and make the rename durable (the one place a folder changes name)."""
    os.replace(src, dst)
    _fsync_path(dst.parent)


def swap_in(tmp: Path, final: Path) -> None:
    """Put a finished temporary folder at `final`; the old one is moved aside, then deleted."""
    aside = None
    if final.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        aside.rmdir()
        durable_rename(final, aside)
    durable_rename(tmp, final)
    if aside is not None:
        shutil.rmtree(aside)


@contextlib.contextmanager
def writing(out_dir: Path, name: str, step: int) -> Iterator[Path]:
    """A temporary folder for `name`, made durable with ordinary file modes when the block ends; on any error it is
    removed, and a failed write (a full disk, which torch reports as "unexpected pos") becomes a
    CheckpointWriteError naming the folder and the free space."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out_dir))
    try:
        yield tmp
        _plain_modes(tmp)
        _fsync_tree(tmp)
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = getattr(exc, "errno", None) == errno.ENOSPC or "unexpected pos" in str(exc) or _disk_nearly_full(out_dir)
        why = "no space left on the device" if full else str(exc).splitlines()[0]
        raise CheckpointWriteError(getattr(exc, "errno", None) or (errno.ENOSPC if full else errno.EIO),
                                   f"{out_dir}: could not save {name} at step {step}: {why} "
                                   f"({shutil.disk_usage(out_dir).free / 2**20:.0f} MiB free); the partial files "
                                   "were removed and the previous checkpoint is intact") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _disk_nearly_full(folder: Path) -> bool:
    return shutil.disk_usage(folder).free < 64 * 2**20


def _plain_modes(root: Path) -> None:
    """The modes a plain mkdir / open would give (mkdtemp makes 0700 folders)."""
    mask = _umask()
    for dirpath, dirs, files in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for f in files:
            os.chmod(Path(dirpath) / f, 0o666 & ~mask)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of a run folder (run.json, meta.json, config.json); an unreadable one is a ValueError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from exc


def read_weights(weights: Path, name: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a file that is not one (truncated, another format) is a ValueError
    starting with `name`."""
    try:
        return load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{name}: {weights} is not a readable safetensors file ({str(exc).splitlines()[0]})") from None


def check_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str, advice: str = "") -> None:
    """Every tensor must match the model by name and shape, else a ValueError that starts with `name` and lists the
    first differences."""
    own = model.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    reshaped = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        raise ValueError(f"{name}: weights do not match the model (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}, other shape {reshaped[:3]}){advice}")


def load_weights(model: torch.nn.Module, weights: Path, name: str, advice: str = "") -> None:
    """Load a safetensors file, or a model folder's weights, into `model` (see `read_weights` and `check_weights`
    for the errors)."""
    if weights.is_dir():
        files = pretrained.weight_files(weights)
        state = {prefix + k: v for prefix, path in files.items() for k, v in read_weights(path, name).items()}
    else:
        state = read_weights(weights, name)
    check_weights(model, state, name, advice)
    model.load_state_dict(state)


def load_run(checkpoint: str | os.PathLike, method: str) -> tuple[dict[str, Any], Path]:
    """(resolved config, model folder) of a `toolkit train --method METHOD` run folder (or of its model/ folder)."""
    root = Path(checkpoint)
    if is_checkpoint(root):  # checkpoint/ or a kept checkpoint-<step>: that step's EMA weights, its own config
        meta = read_json(root / "meta.json")
        if meta.get("method") not in (None, method):
            raise ValueError(f"{checkpoint}: holds a {meta.get('method')!r} model, not {method!r}")
        return read_json(root / "config.json"), step_model_dir(root)
    if (root / pretrained.CONFIG_FILE).is_file() and not (root / "run.json").is_file():
        root = root.parent
    run, model_dir = root / "run.json", root / MODEL
    if not run.is_file() or not (model_dir / pretrained.CONFIG_FILE).is_file() \
            or not pretrained.weight_files(model_dir):
        raise FileNotFoundError(f"{checkpoint}: not a trained {method} folder (expected run.json and a model/ "
                                f"folder with its config and weights, as `toolkit train --method {method} --out "
                                "DIR` writes)")
    meta = read_json(run)
    if meta.get("method") not in (None, method):
        raise ValueError(f"{checkpoint}: holds a {meta.get('method')!r} model, not {method!r}")
    return meta["config"], model_dir


def is_checkpoint(path: Path) -> bool:
    """Whether `path` is a checkpoint folder: checkpoint/ or a kept checkpoint-<step>/."""
    return (path.name == CHECKPOINT or path.name.startswith(f"{CHECKPOINT}-")) and (path / "meta.json").is_file() \
        and (path / "ema.safetensors").is_file()


def step_model_dir(checkpoint_dir: Path) -> Path:
    """The from_pretrained folder holding a checkpoint's own step's EMA weights.

    checkpoint/ -> the run's model/ (written with it); checkpoint-<step>/ -> its model/. A kept checkpoint from
    before kept checkpoints held model/ gets it now: the run's model config with that step's weights, its EMA
    tensors in place of the trained ones (what `export` writes), built in a temporary folder and renamed."""
    if checkpoint_dir.name == CHECKPOINT:
        return checkpoint_dir.parent / MODEL
    own = checkpoint_dir / MODEL
    if (own / pretrained.CONFIG_FILE).is_file():
        return own
    run_model = checkpoint_dir.parent / MODEL / "config.json"
    if not run_model.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no model/ in it and no {run_model} to rebuild it from")
    state = {**read_weights(checkpoint_dir / "model.safetensors", str(checkpoint_dir)),
             **read_weights(checkpoint_dir / "ema.safetensors", str(checkpoint_dir))}
    with writing(checkpoint_dir, MODEL, int(read_json(checkpoint_dir / "meta.json")["step"])) as tmp:
        shutil.copy2(run_model, tmp / "config.json")
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"))
    swap_in(tmp, own)
    return own


def paper_run_config(config_file: str | os.PathLike) -> dict[str, Any]:
    """The run config a released checkpoint runs with: the paper config's tables (codec, scheduler, sampling,
    data, ...) without its training stages, in the form `load_run` returns."""
    with open(config_file, "rb") as fh:
        tables = tomllib.load(fh)
    tables.pop("stages", None)
    return tables
