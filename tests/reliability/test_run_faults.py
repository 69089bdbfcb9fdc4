"""Faults around training run folders (issue: reliability, round two): a resume never loses a run, a step
checkpoint means that step, one writer at a time, a full disk or a damaged file is named. Toy recipe, seconds each."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # for tests.toolkit.train.* (the toy recipe), as tests/toolkit/train/conftest.py does under `pytest`
    sys.path.insert(0, str(ROOT))

from tests.toolkit.train.runs import TOY, one_thread, snapshot  # noqa: E402
from tests.toolkit.train.toy_recipe import ToyModel, ToyRecipe  # noqa: E402
from toolkit.cli import main as cli  # noqa: E402
from toolkit.models import run_folder  # noqa: E402
from toolkit.train import checkpoint  # noqa: E402
from toolkit.train.loop import train  # noqa: E402

DEAD_PID = 4_194_400  # above Linux's largest pid_max: never a running process


def run(out, shards, **kw):
    overrides = {"steps": 6, "checkpoint_every": 2, **kw.pop("overrides", {})}
    with one_thread():
        return train(ToyRecipe(), "tiny", shards, out, progress=False, method=TOY, train_overrides=overrides, **kw)


@pytest.fixture
def shards(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"dataset": "toy-a"}')
    return folder


def argv(out, shards, *extra):
    return ["train", "--method", TOY, "--config", "tiny", "--shards", str(shards), "--out", str(out), "--quiet",
            "--train-steps", "6", *extra]


def test_resume_with_no_checkpoint_refuses_and_keeps_the_run(shards, tmp_path, capsys):
    out = tmp_path / "run"
    run(out, shards)
    import shutil

    shutil.rmtree(out / "checkpoint")
    before = snapshot(out)
    assert cli(argv(out, shards, "--resume")) == 1
    err = capsys.readouterr().err
    assert "no checkpoint/ to resume from" in err and "loss.jsonl up to step 6" in err and "start over" in err
    assert "Traceback" not in err and snapshot(out) == before


def test_a_kept_step_checkpoint_loads_that_steps_ema_weights(shards, tmp_path):
    out, short = tmp_path / "run", tmp_path / "short"
    run(out, shards, overrides={"keep_checkpoints": True})
    run(short, shards, max_steps=2)                      # the same run stopped at step 2: its model/ is step 2's EMA
    step2 = load_file(str(short / "model" / "model.safetensors"))
    for given in (out / "checkpoint-2", out / "checkpoint-2" / "model"):
        config, model_dir = run_folder.load_run(given, TOY) if given.name != "model" else (None, given)
        assert load_file(str(model_dir / "model.safetensors")).keys() == step2.keys()
        assert all(torch.equal(v, step2[k]) for k, v in load_file(str(model_dir / "model.safetensors")).items())
    assert checkpoint.init_weights(out / "checkpoint-2") == out / "checkpoint-2" / "model"
    x = torch.randn(3, 8)
    a = ToyModel.from_pretrained(run_folder.load_run(out / "checkpoint-2", TOY)[1]).eval()(x)
    b = ToyModel.from_pretrained(run_folder.load_run(out, TOY)[1]).eval()(x)
    assert not torch.allclose(a, b)                     # step 2 is not the latest
    import shutil

    shutil.rmtree(out / "checkpoint-4" / "model")        # kept by an older toolkit: rebuilt from its own files
    rebuilt = run_folder.load_run(out / "checkpoint-4", TOY)[1]
    short4 = tmp_path / "short4"
    run(short4, shards, max_steps=4)
    want = load_file(str(short4 / "model" / "model.safetensors"))
    assert all(torch.equal(v, want[k]) for k, v in load_file(str(rebuilt / "model.safetensors")).items())


def test_a_full_disk_during_a_save_is_named_and_cleaned_up(shards, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save, calls = torch.save, []

    def failing_save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 4:  # two files a checkpoint: the third checkpoint fails
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4416 vs 4310")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    with pytest.raises(run_folder.CheckpointWriteError, match="no space left") as info:
        run(out, shards)
    assert str(out) in str(info.value) and "previous checkpoint is intact" in str(info.value)
    assert not list(out.glob(".checkpoint.tmp-*"))
    logged = [r["step"] for r in checkpoint.read_log(out / "loss.jsonl")]
    assert max(logged) == checkpoint.latest(out).step == 4


def test_a_second_writer_is_refused_and_a_dead_ones_lock_taken_over(shards, tmp_path, capsys):
    out = tmp_path / "run"
    run(out, shards, max_steps=2)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (out / ".lock").write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(), "since": "now"}))
        assert cli(argv(out, shards, "--resume")) == 1
        err = capsys.readouterr().err
        assert f"being written by process {live.pid}" in err and "Traceback" not in err
        assert checkpoint.latest(out).step == 2
    finally:
        live.kill()
        live.wait()
    (out / ".lock").write_text(json.dumps({"pid": DEAD_PID, "host": __import__("socket").gethostname()}))
    assert cli(argv(out, shards, "--resume")) == 0
    assert "taking over the lock" in capsys.readouterr().err
    assert checkpoint.latest(out).step == 6 and not (out / ".lock").exists()


@pytest.mark.parametrize("damage", ["truncated model.safetensors", "empty state.pt", "truncated optimizer.pt"])
def test_a_damaged_checkpoint_file_is_named_on_resume_and_by_info(shards, tmp_path, capsys, damage):
    out = tmp_path / "run"
    run(out, shards, max_steps=2)
    how, name = damage.split(" ")
    path = out / "checkpoint" / name
    path.write_bytes(b"" if how == "empty" else path.read_bytes()[:50])
    assert cli(argv(out, shards, "--resume")) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "damaged" in err and "Traceback" not in err
    assert cli(["info", str(out)]) == 1
    captured = capsys.readouterr()
    assert "DAMAGED" in captured.out and str(path) in captured.err


def test_a_resume_onto_other_shards_is_refused_unless_asked(shards, tmp_path, capsys):
    out = tmp_path / "run"
    run(out, shards, max_steps=2)
    (shards / "manifest.json").write_text('{"dataset": "toy-b"}')
    assert cli(argv(out, shards, "--resume")) == 1
    assert "trained on other shards" in capsys.readouterr().err
    assert cli(argv(out, shards, "--resume", "--allow-other-shards")) == 0


def test_run_files_get_ordinary_modes_and_a_nan_loss_says_no_checkpoint_exists(shards, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(out, shards, max_steps=2)
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [out / "checkpoint", out / "model", *(out / "checkpoint").iterdir(), *(out / "model").iterdir()]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~mask, path
    monkeypatch.setattr(ToyRecipe, "loss",
                        lambda self, model, batch, generator, needs: model(batch["x"]).sum() * float("nan"))
    with pytest.raises(RuntimeError, match="no checkpoint was saved yet"):
        run(tmp_path / "nan", shards)


@pytest.mark.parametrize("broken", ["run.json", "checkpoint/meta.json"])
def test_info_names_a_broken_json_file(shards, tmp_path, capsys, broken):
    out = tmp_path / "run"
    run(out, shards, max_steps=2)
    (out / broken).write_text('{"method": ')
    assert cli(["info", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(out / broken) in err and "Traceback" not in err
