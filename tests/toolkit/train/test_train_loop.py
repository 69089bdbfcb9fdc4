"""The training loop on the toy recipe: it learns, resumes exactly, keeps an EMA, and refuses what it must."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.toolkit.train.runs import TOY, assert_same_run, loss_lines, snapshot, weights
from tests.toolkit.train.toy_recipe import OtherToyRecipe, ToyModel, ToyRecipe
from toolkit.train.checkpoint import latest
from toolkit.train.ema import EMA
from toolkit.train.loop import DataOrder, resolve_config, train
from toolkit.train.recipe import Trainee


def test_loss_decreases(tmp_path: Path) -> None:
    train(ToyRecipe(), "tiny", tmp_path, tmp_path / "run", progress=False, train_overrides={"steps": 80})
    losses = [r["loss"] for r in loss_lines(tmp_path / "run")]
    assert len(losses) == 80
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])


def test_resume_reproduces_the_uninterrupted_run(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = train(ToyRecipe(), "tiny", tmp_path, out, max_steps=13, progress=False, method=TOY)
    assert (first["step"], first["stopped"]) == (13, "max_steps")
    assert latest(out).step == 13 and len(loss_lines(out)) == 13
    # data loader workers change nothing, and may change on resume
    rest = train(ToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False, method=TOY,
                 train_overrides={"num_workers": 2})
    assert (rest["step"], rest["stopped"]) == (30, "done")
    assert_same_run(reference_run, out)
    again = train(ToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False, method=TOY)
    assert again["step"] == 30 and again["loss"] is None  # nothing left to do
    assert_same_run(reference_run, out)


@pytest.mark.parametrize("loader", ["threads", "processes"])
def test_loader_workers_change_nothing(reference_run: Path, tmp_path: Path, loader: str) -> None:
    """Two worker threads or processes train exactly as loading in the training process (the reference run);
    the toy data crosses epochs with `set_epoch` state, which threads must not share."""
    out = tmp_path / "run"
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False, method=TOY,
          train_overrides={"num_workers": 2, "loader": loader})
    assert_same_run(reference_run, out)
    assert json.loads((out / "run.json").read_text())["config"]["train"]["loader"] == loader


def test_max_minutes_stops_with_a_checkpoint(reference_run: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    monkeypatch.setenv("TOY_STEP_SLEEP", "0.02")
    first = train(ToyRecipe(), "tiny", tmp_path, out, max_minutes=0.15 / 60, progress=False, method=TOY)
    assert first["stopped"] == "max_minutes" and 0 < first["step"] < 30
    assert latest(out).step == first["step"]
    monkeypatch.delenv("TOY_STEP_SLEEP")
    train(ToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False, method=TOY)
    assert_same_run(reference_run, out)


def test_fsdp_in_one_process_is_the_plain_run(reference_run: Path, tmp_path: Path) -> None:
    """One process has nothing to shard: distributed = "fsdp" trains exactly as the plain run."""
    out = tmp_path / "run"
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False, method=TOY,
          train_overrides={"distributed": "fsdp", "fsdp_wrap": ["Linear"]})
    assert_same_run(reference_run, out)
    assert json.loads((out / "run.json").read_text())["fsdp"] is False


def test_gradient_checkpointing_changes_nothing_but_memory(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False, method=TOY,
          train_overrides={"gradient_checkpointing": True})
    assert_same_run(reference_run, out)


def test_ema_is_updated_and_exported(reference_run: Path) -> None:
    ckpt = latest(reference_run)
    assert ckpt.state()["ema_updates"] == 30
    ema, trained = weights(ckpt.path / "ema.safetensors"), weights(ckpt.path / "model.safetensors")
    torch.manual_seed(0)
    initial = ToyModel(**ckpt.config["model"]).state_dict()
    exported = ToyModel.from_pretrained(reference_run / "model").state_dict()
    assert ema.keys() == trained.keys() == exported.keys()
    for k in ema:
        assert not torch.equal(ema[k], trained[k]) and not torch.equal(ema[k], initial[k])
        assert torch.equal(exported[k], ema[k])
    # the EMA lies between the start and the end of training
    start_gap = sum((ema[k] - initial[k]).norm() for k in ema)
    end_gap = sum((ema[k] - trained[k]).norm() for k in ema)
    assert end_gap < start_gap


def test_ema_update_and_swap() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    ema = EMA(model, model.parameters(), decay=0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update()  # warm-up decay min(0.99, 1/10) = 0.1
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), 0.9))
    before = model.weight.detach().clone()
    with ema.applied():
        assert torch.equal(model.weight, ema.shadow["weight"])
    assert torch.equal(model.weight, before)
    with pytest.raises(ValueError, match="ema_decay"):
        EMA(model, model.parameters(), decay=1.0)
    off = EMA(model, model.parameters(), decay=0.0)  # EMA off: its weights are the model's
    off.update()
    assert torch.equal(off.state_dict()["weight"], model.weight) and not off.shadow


def test_keep_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(ToyRecipe(), "tiny", tmp_path, out, progress=False,
          train_overrides={"steps": 20, "keep_checkpoints": True, "report_to": "none"})
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "checkpoint-10", "checkpoint-20", "loss.jsonl",
                                                     "model", "run.json"]
    assert json.loads((out / "checkpoint-10" / "meta.json").read_text())["step"] == 10
    assert (out / "checkpoint-20" / "model.safetensors").read_bytes() == \
        (out / "checkpoint" / "model.safetensors").read_bytes()


def test_resume_refuses_another_method_or_config(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    before = snapshot(out)
    with pytest.raises(ValueError) as err:
        train(OtherToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False)
    assert f"holds a '{TOY}' checkpoint with config tiny" in str(err.value)
    assert "asks for 'other-toy' with config tiny" in str(err.value)

    other = tmp_path / "wide.toml"
    other.write_text((Path(__file__).parent / "configs" / "tiny.toml").read_text().replace("hidden = 32",
                                                                                         "hidden = 48"))
    with pytest.raises(ValueError) as err:
        train(ToyRecipe(), str(other), tmp_path, out, resume=True, progress=False, method=TOY)
    sha = latest(out).meta["config_sha"]
    assert f"with config tiny (sha {sha})" in str(err.value) and f"with config {other} (sha " in str(err.value)

    with pytest.raises(ValueError, match=r"lr 0.01 -> 0.02"):
        train(ToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False, method=TOY,
              train_overrides={"lr": 0.02})
    assert snapshot(out) == before


def test_new_run_into_a_non_empty_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not empty \(holds notes.txt\); pass --resume"):
        train(ToyRecipe(), "tiny", tmp_path, out, progress=False)
    with pytest.raises(ValueError, match="holds no training run"):
        train(ToyRecipe(), "tiny", tmp_path, out, resume=True, progress=False)
    assert snapshot(out) == {"notes.txt": b"mine"}


class _NoSaveRecipe(ToyRecipe):
    def build_model(self, config: dict) -> Trainee:
        return Trainee(nn.Linear(config["model"]["dim"], config["model"]["dim"]), needs=config["loss"])


def test_model_contract_is_checked_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no save_pretrained"):
        train(_NoSaveRecipe(), "tiny", tmp_path, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(ToyRecipe(), "tiny", tmp_path, tmp_path / "run", progress=False, train_overrides={"batch_size": 41})
    assert not (tmp_path / "run").exists()


def test_data_order_is_a_pure_function_of_seed_and_step() -> None:
    order = DataOrder(40, 8, seed=3)
    epoch0 = [order.batch(s) for s in range(5)]
    assert sorted(i for b in epoch0 for _, i in b) == list(range(40))
    assert {e for b in epoch0 for e, _ in b} == {0} and {e for e, _ in order.batch(5)} == {1}
    assert order.batch(5) != [(1, i) for _, i in order.batch(0)]
    assert DataOrder(40, 8, seed=3).batch(7) == order.batch(7)
    assert DataOrder(40, 8, seed=4).batch(7) != order.batch(7)
    assert DataOrder(43, 8, seed=3).steps_per_epoch == 5  # the partial batch is dropped


def test_resolve_config_fills_defaults_and_checks() -> None:
    cfg = resolve_config({"train": {"lr": 1, "steps": 5}, "model": {"a": 1}}, {"seed": 7, "batch_size": None})
    assert cfg["train"]["lr"] == 1.0 and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["seed"] == 7 and cfg["train"]["batch_size"] == 1 and cfg["model"] == {"a": 1}
    with pytest.raises(ValueError, match="unknown \\[train\\] keys \\['learning_rate'\\]"):
        resolve_config({"train": {"learning_rate": 1e-4}})
    with pytest.raises(ValueError, match="batch_size must be int"):
        resolve_config({"train": {"batch_size": "8"}})
    with pytest.raises(ValueError, match="ema_decay = 1.0 is outside"):
        resolve_config({"train": {"ema_decay": 1.0}})
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_config({}, {"mixed_precision": "fp8"})
    assert resolve_config({})["train"]["distributed"] == "ddp"
    assert resolve_config({})["train"]["loader"] == "threads"
    with pytest.raises(ValueError, match="loader must be one of \\('threads', 'processes'\\), got 'fibers'"):
        resolve_config({}, {"loader": "fibers"})
    cfg = resolve_config({"train": {"distributed": "fsdp", "fsdp_wrap": ("Block",)}})
    assert cfg["train"]["fsdp_wrap"] == ["Block"]
    with pytest.raises(ValueError, match="distributed must be one of \\('ddp', 'fsdp'\\), got 'zero2'"):
        resolve_config({}, {"distributed": "zero2"})
    with pytest.raises(ValueError, match="fsdp_wrap must be a list of strings"):
        resolve_config({"train": {"distributed": "fsdp", "fsdp_wrap": "Block"}})
    with pytest.raises(ValueError, match="fsdp_wrap names FSDP units: it needs distributed"):
        resolve_config({"train": {"fsdp_wrap": ["Block"]}})
