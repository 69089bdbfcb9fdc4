"""What a training run folder holds, for `toolkit info RUN`: its method and config, how far it got, its loss
and its validations (loss.jsonl, validation.jsonl, the checkpoint's meta.json), where the validation samples and
the tracker's event files are, read without loading weights."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from toolkit.models import run_folder
from toolkit.train import checkpoint
from toolkit.train.loop import EVENTS_DIR
from toolkit.train.validate import SAMPLES_DIR, VALIDATION_LOG

RECENT = 100  # the loss is summarised over this many last logged steps


def is_run(path: str | Path) -> bool:
    """Whether `path` is a `toolkit train` run folder (it has run.json)."""
    return (Path(path) / "run.json").is_file()


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """Method, config, steps (saved / planned), training seconds, init, the loss, each validation line, the folders
    of the validation samples and tracker events (None when absent), and what is wrong with the checkpoint's files
    (each checked against the size and sha256 recorded at save)."""
    run_dir = Path(run_dir)
    if not is_run(run_dir):
        raise FileNotFoundError(f"{run_dir}: not a training run folder (no run.json; `toolkit train --out` makes one)")
    run = run_folder.read_json(run_dir / "run.json")
    saved_ckpt = checkpoint.latest(run_dir)
    saved = saved_ckpt.meta if saved_ckpt is not None else {}
    problems = saved_ckpt.problems() if saved_ckpt is not None else []
    losses = [r for r in checkpoint.read_log(run_dir / "loss.jsonl") if isinstance(r.get("loss"), (int, float))]
    recent = [r["loss"] for r in losses[-RECENT:] if math.isfinite(r["loss"])]
    best = min(losses, key=lambda r: r["loss"]) if losses else None
    return {
        "run": str(run_dir), "method": run.get("method"), "config_name": run.get("config_name"),
        "config_sha": run.get("config_sha"), "num_processes": run.get("num_processes"),
        "step": saved.get("step", 0), "steps": run.get("config", {}).get("train", {}).get("steps"),
        "seconds": losses[-1].get("seconds") if losses else None,
        "init": run.get("init"), "init_sha256": run.get("init_sha256"),
        "loss": None if not losses else {
            "last": losses[-1]["loss"], "last_step": losses[-1]["step"],
            "mean_recent": sum(recent) / len(recent) if recent else None, "recent_steps": len(recent),
            "min": best["loss"], "min_step": best["step"]},
        "validation": checkpoint.read_log(run_dir / VALIDATION_LOG),
        "samples": str(run_dir / SAMPLES_DIR) if (run_dir / SAMPLES_DIR).is_dir() else None,
        "report_to": run.get("config", {}).get("train", {}).get("report_to"),
        "events": str(run_dir / EVENTS_DIR) if (run_dir / EVENTS_DIR).is_dir() else None,
        "checkpoint_problems": problems,
    }
