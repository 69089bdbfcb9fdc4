"""Helpers for the training-loop tests: comparing runs, and the environment of `toolkit train` subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[3]
TOY = "tests.toolkit.train.toy_recipe:ToyRecipe"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models train ~100x faster on one thread on a shared CPU; every run compared bit for bit uses one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment of a `toolkit train` subprocess: the checkout importable, one thread like the tests."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def loss_lines(run: Path) -> list[dict]:
    """loss.jsonl without the wall-clock seconds (the only field that may differ between equal runs)."""
    lines = [json.loads(x) for x in (run / "loss.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in lines]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_run(a: Path, b: Path) -> None:
    """Same loss sequence and bit-identical trained, EMA and exported weights."""
    assert loss_lines(a) == loss_lines(b)
    for rel in ("checkpoint/model.safetensors", "checkpoint/ema.safetensors", "model/model.safetensors"):
        wa, wb = weights(a / rel), weights(b / rel)
        assert wa.keys() == wb.keys()
        for k in wa:
            assert torch.equal(wa[k], wb[k]), f"{rel}: {k} differs"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder with its bytes: to show that a refused command wrote nothing."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
