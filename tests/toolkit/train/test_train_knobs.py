"""Gradient accumulation and the learning-rate schedule (exact on resume), and the run's tracker: tensorboard event
files with the loss and the validation metrics and samples, sample files under validation/step-N/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.toolkit.train.runs import TOY, assert_same_run, loss_lines, snapshot, weights
from tests.toolkit.train.toy_recipe import ToyRecipe
from toolkit.train.checkpoint import latest
from toolkit.train.loop import learning_rate, resolve_config, train

TOY_ANIMATOR = "tests.toolkit.train.toy_recipe:ToyAnimator"
KNOBS = {"steps": 12, "grad_accum_steps": 2, "lr_schedule": "cosine", "lr_warmup_steps": 2, "checkpoint_every": 4}


def toy_config(**tables: dict[str, Any]) -> dict[str, Any]:
    """The toy tiny config with `tables` merged into its tables."""
    cfg = ToyRecipe().load_config("tiny")
    for name, values in tables.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


def test_learning_rate_schedules() -> None:
    t = resolve_config({"train": {"lr": 1.0, "steps": 10, "lr_warmup_steps": 2}})["train"]
    assert t["lr_schedule"] == "constant" and t["grad_accum_steps"] == 1
    assert [learning_rate(t, s) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    cosine = {**t, "lr_schedule": "cosine"}
    assert [learning_rate(cosine, s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert learning_rate(cosine, 6) == pytest.approx(0.5)  # half way through the decay
    assert 0 < learning_rate(cosine, 9) < 0.05
    linear = {**t, "lr_schedule": "linear"}
    assert [learning_rate(linear, s) for s in (2, 6)] == [1.0, 0.5] and learning_rate(linear, 9) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="lr_schedule must be one of \\('constant', 'cosine', 'linear'\\)"):
        resolve_config({"train": {"lr_schedule": "step"}})
    with pytest.raises(ValueError, match="grad_accum_steps = 0 is outside"):
        resolve_config({"train": {"grad_accum_steps": 0}})
    with pytest.raises(ValueError, match="report_to must be one of"):
        resolve_config({"train": {"report_to": "mlflow"}})


def test_accumulation_and_cosine_resume_exactly(tmp_path: Path) -> None:
    """12 steps straight, or 5 + resume + 7: the same losses and bit-identical weights, with 2 micro-batches per
    optimizer step and a cosine schedule; the step, EMA and learning rate count optimizer steps."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(ToyRecipe(), "tiny", tmp_path, straight, progress=False, method=TOY, train_overrides=KNOBS)
    first = train(ToyRecipe(), "tiny", tmp_path, resumed, progress=False, method=TOY, train_overrides=KNOBS,
                  max_steps=5)
    assert first["step"] == 5
    train(ToyRecipe(), "tiny", tmp_path, resumed, progress=False, method=TOY, train_overrides=KNOBS, resume=True)
    assert_same_run(straight, resumed)
    lines = loss_lines(straight)
    t = resolve_config(toy_config(train=KNOBS))["train"]
    assert [r["step"] for r in lines] == list(range(1, 13))
    assert [r["lr"] for r in lines] == [learning_rate(t, s) for s in range(12)]
    assert latest(straight).state()["ema_updates"] == 12
    # the schedule decays over [train] steps: changing them on resume is refused, and so is another accumulation
    for changed in ({"steps": 20}, {"grad_accum_steps": 1}):
        before = snapshot(resumed)
        with pytest.raises(ValueError, match="schedule decays over|grad_accum_steps"):
            train(ToyRecipe(), "tiny", tmp_path, resumed, progress=False, method=TOY, resume=True,
                  train_overrides={**KNOBS, **changed})
        assert snapshot(resumed) == before


def test_accumulation_matches_the_bigger_batch(tmp_path: Path) -> None:
    """Batch 4 x 2 micro-batches trains as batch 8 at once (up to float rounding) when the loss is a mean over
    the items and draws nothing at random (no dropout, noise or condition dropout)."""
    cfg = toy_config(model={"dropout": 0.0}, loss={"noise_std": 0.0, "p_drop": 0.0},
                     train={"steps": 10, "report_to": "none"})
    runs = {}
    for batch, accum in ((8, 1), (4, 2)):
        out = runs[accum] = tmp_path / f"accum-{accum}"
        train(ToyRecipe(), cfg, tmp_path, out, progress=False, method=TOY,
              train_overrides={"batch_size": batch, "grad_accum_steps": accum})
    one, two = loss_lines(runs[1]), loss_lines(runs[2])
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 11))
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-5)
    np.testing.assert_allclose([r["grad_norm"] for r in two], [r["grad_norm"] for r in one], rtol=1e-4)
    for rel in ("checkpoint/model.safetensors", "checkpoint/ema.safetensors"):
        a, b = weights(runs[1] / rel), weights(runs[2] / rel)
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def validation_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.builders import make_shards

    return make_shards(tmp_path_factory.mktemp("toy-shards"), n_videos=2, n_frames=5, h=24, w=20,
                       test_ids=("00002",))


def test_tensorboard_holds_the_loss_and_the_validations(validation_shards: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from toolkit.cli import main

    out = tmp_path / "run"
    train(ToyRecipe(), "tiny", validation_shards, out, progress=False, method=TOY_ANIMATOR,
          train_overrides={"steps": 4, "validate_every": 2, "report_to": "tensorboard"})
    validations = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert [(r["step"], r["samples"]) for r in validations] == [(2, "validation/step-2"), (4, "validation/step-4")]
    for step in (2, 4):
        assert sorted(p.name for p in (out / "validation" / f"step-{step}").iterdir()) == ["00002.mp4", "00002.png"]

    events = EventAccumulator(str(out / "logs"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/grad_norm", "train/step_time", "train/clips_per_s",
            "validation/l1", "validation/psnr_fg"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["loss"] for r in loss_lines(out)])
    assert [(e.step, e.value) for e in events.Scalars("validation/l1")] == [
        (r["step"], pytest.approx(r["l1"])) for r in validations]
    assert [e.step for e in events.Scalars("train/clips_per_s")] == [1, 2, 3, 4]
    assert tags["images"] == ["validation/00002"]
    images = events.Images("validation/00002")  # all 5 frames, ground truth above generated
    assert [(i.step, i.width, i.height) for i in images] == [(2, 5 * 20, 2 * 24), (4, 5 * 20, 2 * 24)]

    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"samples: {out / 'validation'}/step-N/" in text and f"events: {out / 'logs'}/ (tensorboard: tensorboard --logdir {out / 'logs'})" in text
    assert f"{validations[-1]['l1_fg']:.4g}" in text.splitlines()[-1]


def test_tensorboard_resume_drops_the_events_after_the_checkpoint(tmp_path: Path) -> None:
    """A run put back to an earlier checkpoint logs its steps again: the reader sees each step once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    overrides = {"steps": 8, "checkpoint_every": 4, "keep_checkpoints": True, "report_to": "tensorboard"}
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False, method=TOY, train_overrides=overrides)
    shutil.rmtree(out / "checkpoint")
    shutil.copytree(out / "checkpoint-4", out / "checkpoint")
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False, method=TOY, train_overrides=overrides, resume=True)
    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 9))
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["loss"] for r in loss_lines(out)])


def test_a_tracker_that_is_not_installed_is_named_before_anything_is_written(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ValueError, match="report_to = 'wandb', but wandb is not installed: pip install wandb"):
        train(ToyRecipe(), "tiny", tmp_path, tmp_path / "run", progress=False, method=TOY,
              train_overrides={"report_to": "wandb"})
    assert not (tmp_path / "run").exists()
