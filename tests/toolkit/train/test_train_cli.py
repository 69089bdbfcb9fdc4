"""`toolkit train`: argument checks before any write, and runs killed (mid-step, mid-checkpoint) then resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.toolkit.train.runs import ROOT, TOY, assert_same_run, snapshot, subprocess_env
from toolkit.cli import main


def cli(out: Path, shards: Path, *extra: str) -> list[str]:
    return ["train", "--method", TOY, "--config", "tiny", "--shards", str(shards), "--out", str(out), "--quiet",
            *extra]


def test_help_shows_examples(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "accelerate launch" in text and "-m toolkit train" in text and "--resume" in text
    assert (ROOT / "toolkit" / "__main__.py").is_file()  # what `-m toolkit` runs


@pytest.mark.parametrize("extra, message", [
    (["--train-steps", "0"], "--train-steps: must be at least 1"),
    (["--lr=-1e-4"], "--lr: must be a positive number"),
    (["--workers", "two"], "--workers: not an integer"),
    (["--max-minutes", "0"], "--max-minutes: must be a positive number"),
    (["--mixed-precision", "fp8"], "--mixed-precision: invalid choice"),
    (["--distributed", "zero2"], "--distributed: invalid choice"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str],
                                        message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(cli(tmp_path / "run", tmp_path, *extra))
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, message", [
    ("method", "unknown recipe 'no-such-method'"),
    ("config", "has no config 'huge'"),
    ("shards", "shard folder not found"),
    ("fp16", "fp16 needs a GPU"),
    ("batch", "fewer than one global batch"),
    ("fsdp-unit", "fsdp_wrap ['Conv3d']: no such module class in the model"),
    ("not-empty", "is not empty (holds notes.txt); pass --resume"),
    ("published", "has no released weights to start from"),
])
def test_errors_are_caught_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture, case: str,
                                                      message: str) -> None:
    if case == "fp16" and torch.cuda.is_available():
        pytest.skip("fp16 is allowed on a GPU")
    out, shards = tmp_path / "run", tmp_path / "shards"
    shards.mkdir()
    argv = cli(out, shards)
    if case == "method":
        argv[argv.index(TOY)] = "no-such-method"
    elif case == "config":
        argv[argv.index("tiny")] = "huge"
    elif case == "shards":
        argv[argv.index(str(shards))] = str(tmp_path / "missing")
    elif case == "fp16":
        argv += ["--mixed-precision", "fp16"]
    elif case == "batch":
        argv += ["--batch-size", "41"]
    elif case == "published":
        argv += ["--init", "published"]
    elif case == "fsdp-unit":
        config = tmp_path / "units.toml"
        config.write_text((ROOT / "tests" / "toolkit" / "train" / "configs" / "tiny.toml").read_text().replace(
            "[train]\n", '[train]\ndistributed = "fsdp"\nfsdp_wrap = ["Linear", "Conv3d"]\n'))
        argv[argv.index("tiny")] = str(config)
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_trains_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(cli(out, tmp_path, "--train-steps", "10", "--seed", "3", "--lr", "0.005")) == 0
    assert "step 10: finished" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == TOY and run["config"]["train"]["seed"] == 3 and run["config"]["train"]["lr"] == 0.005
    assert (out / "model" / "model.safetensors").is_file()


def _start(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=subprocess_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_matches_uninterrupted(reference_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start([sys.executable, "-m", "toolkit", *cli(out, tmp_path, "--workers", "1")], TOY_STEP_SLEEP="0.1")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            log = out / "loss.jsonl"
            if (out / "checkpoint" / "meta.json").is_file() and log.is_file() and \
                    len(log.read_text().splitlines()) >= 13:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, output  # killed mid-run, not finished
    steps_logged = len((out / "loss.jsonl").read_text().splitlines())
    assert 13 <= steps_logged < 30
    assert main(cli(out, tmp_path, "--resume")) == 0
    assert_same_run(reference_run, out)


# Runs `toolkit train` with a kill planted inside the second checkpoint (step 20).
DRIVER = """
import os, signal, sys
from toolkit.models import run_folder
from toolkit.train import checkpoint

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "mid-write":  # the trained weights are written, the EMA weights are not
    real_save_file, calls = checkpoint.save_file, []
    def save_file(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return real_save_file(*args, **kwargs)
    checkpoint.save_file = save_file
else:  # between-renames: the old checkpoint is moved aside, the new one not yet in place
    real_rename = run_folder.durable_rename
    def rename(src, dst):
        if dst.name == "checkpoint" and any(dst.parent.glob(".checkpoint.old-*")):
            die()
        return real_rename(src, dst)
    run_folder.durable_rename = rename
from toolkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["mid-write", "between-renames"])
def test_kill_during_a_checkpoint_write_then_resume_matches(reference_run: Path, tmp_path: Path,
                                                            phase: str) -> None:
    out = tmp_path / "run"
    proc = _start([sys.executable, "-c", DRIVER, phase, *cli(out, tmp_path)])
    output = proc.communicate(timeout=120)[0].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, output
    if phase == "mid-write":
        assert json.loads((out / "checkpoint" / "meta.json").read_text())["step"] == 10
        assert len(list(out.glob(".checkpoint.tmp-*"))) == 1
    else:
        assert not (out / "checkpoint").exists()
        [aside] = out.glob(".checkpoint.old-*")
        assert json.loads((aside / "meta.json").read_text())["step"] == 10
    assert main(cli(out, tmp_path, "--resume")) == 0
    assert not list(out.glob(".*"))  # the stale temporaries are gone
    assert_same_run(reference_run, out)
