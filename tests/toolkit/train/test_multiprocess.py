"""Training on several processes (`accelerate launch`, gloo on CPU) is the one-process run with the same global
batch, cut across ranks: the same loss sequence, and no clip seen by two ranks in one epoch -- with DDP and with
FSDP, whose checkpoints are DDP's (full tensors) and resume exactly.

The toy objective here is deterministic (no dropout, input noise or condition dropout): the loop draws each
rank's random numbers from its own stream (seed, step, rank), so with randomness in the loss the
two runs are equal in distribution, not number for number.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch

from tests.toolkit.train.runs import ROOT, TOY, assert_same_run, loss_lines, one_thread, subprocess_env, weights
from tests.toolkit.train.toy_recipe import ToyModel, ToyRecipe
from toolkit.train.checkpoint import latest
from toolkit.train.loop import DataOrder, _StepBatches, train

STEPS, GLOBAL_BATCH, ITEMS = 10, 8, 40   # two epochs of five steps


def deterministic_config(folder: Path) -> Path:
    """tests/toolkit/train/configs/tiny.toml without dropout or loss noise, for STEPS steps, with a layer the loss never
    uses; beside it the same with FSDP, each Linear layer its own unit (deterministic-fsdp.toml)."""
    text = (ROOT / "tests" / "toolkit" / "train" / "configs" / "tiny.toml").read_text()
    for old, new in (("dropout = 0.1", "dropout = 0.0\nspare = true"), ("noise_std = 0.05", "noise_std = 0.0"),
                     ("p_drop = 0.1", "p_drop = 0.0"), ("steps = 30", f"steps = {STEPS}")):
        assert old in text
        text = text.replace(old, new)
    path = folder / "deterministic.toml"
    path.write_text(text)
    sharded = text.replace("[train]\n", '[train]\ndistributed = "fsdp"\nfsdp_wrap = ["Linear"]\n')
    assert sharded != text
    path.with_name("deterministic-fsdp.toml").write_text(sharded)
    return path


def seen(folder: Path, rank: int) -> list[list[int]]:
    return [json.loads(line) for line in (folder / f"seen-{rank}.jsonl").read_text().splitlines()]


def launch(config: Path, out: Path, *extra: str, seen_dir: Path | None = None) -> None:
    """`toolkit train` on the toy recipe in 2 CPU processes (gloo), each with half the global batch."""
    # --multi_gpu with ACCELERATE_USE_CPU=1 is how accelerate starts several CPU processes (gloo); `--cpu
    # --num_processes 2` alone starts one.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "toolkit", "train", "--method", TOY, "--config", str(config), "--shards", str(config.parent),
           "--out", str(out), "--batch-size", str(GLOBAL_BATCH // 2), "--quiet", *extra]
    env = subprocess_env(ACCELERATE_USE_CPU="1", **({"TOY_SEEN_DIR": str(seen_dir)} if seen_dir else {}))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """run(mode): the STEPS-step run of the deterministic config, in one process ("one") or two ("ddp", "fsdp").

    Each is made once per module; a run's folder holds seen/, the TOY_SEEN_DIR of its processes.
    """
    root = tmp_path_factory.mktemp("multiprocess")
    config, made = deterministic_config(root), {}

    def run(mode: str) -> Path:
        if mode not in made:
            out = root / mode
            (out / "seen").mkdir(parents=True)
            if mode == "one":
                with pytest.MonkeyPatch.context() as patch, one_thread():
                    patch.setenv("TOY_SEEN_DIR", str(out / "seen"))
                    train(ToyRecipe(), str(config), root, out / "run", progress=False, method=TOY)
            else:
                launch(config.with_name(f"deterministic{'-fsdp' if mode == 'fsdp' else ''}.toml"), out / "run",
                       seen_dir=out / "seen")
            made[mode] = out
        return made[mode]

    yield run


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_equal_one_process_with_the_same_global_batch(runs: Callable[[str], Path], mode: str) -> None:
    one, two = runs("one"), runs(mode)
    assert {k: v for k, v in json.loads((two / "run" / "run.json").read_text()).items()
            if k in ("num_processes", "fsdp")} == {"num_processes": 2, "fsdp": mode == "fsdp"}
    whole, held = json.loads((one / "seen" / "params-0.json").read_text()), [
        json.loads((two / "seen" / f"params-{rank}.json").read_text()) for rank in (0, 1)]
    if mode == "fsdp":  # each process holds half of every parameter; each Linear and the model are FSDP units
        assert [h["kinds"] for h in held] == [["DTensor"], ["DTensor"]]
        assert [h["elements"] for h in held] == [whole["elements"] // 2] * 2
        assert [h["fsdp_units"] for h in held] == [["FSDPLinear"] * 3 + ["FSDPToyModel"]] * 2
    else:
        assert held == [whole, whole]

    a_lines, b_lines = loss_lines(one / "run"), loss_lines(two / "run")
    assert [r["step"] for r in a_lines] == [r["step"] for r in b_lines] == list(range(1, STEPS + 1))
    for a, b in zip(a_lines, b_lines):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5, rel=0), a["step"]
        assert b["lr"] == a["lr"]

    batches, rank0, rank1 = seen(one / "seen", 0), seen(two / "seen", 0), seen(two / "seen", 1)
    assert len(batches) == len(rank0) == len(rank1) == STEPS
    for step in range(STEPS):   # each rank takes its half of the one-process batch of the step
        assert rank0[step] + rank1[step] == batches[step]
    for epoch in range(2):
        steps = range(epoch * 5, epoch * 5 + 5)
        a = [i for s in steps for i in rank0[s]]
        b = [i for s in steps for i in rank1[s]]
        assert not set(a) & set(b), f"epoch {epoch}: an item seen by both ranks"
        assert sorted(a + b) == list(range(ITEMS))


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, f"{what}: {k}"
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5), f"{what}: {k} differs by {(a[k] - b[k]).abs().max()}"


@pytest.mark.slow
def test_fsdp_writes_the_ddp_checkpoint(runs: Callable[[str], Path]) -> None:
    """Full weights, EMA and optimizer state, in the files and layout DDP writes, with (nearly) DDP's values."""
    ddp, sharded = runs("ddp") / "run", runs("fsdp") / "run"
    assert sorted(p.name for p in (sharded / "checkpoint").iterdir()) == \
        sorted(p.name for p in (ddp / "checkpoint").iterdir())
    for rel in ("checkpoint/model.safetensors", "checkpoint/ema.safetensors", "model/model.safetensors"):
        _close(weights(sharded / rel), weights(ddp / rel), rel)
    # the exported EMA model loads with from_pretrained in a plain process
    exported = ToyModel.from_pretrained(sharded / "model").state_dict()
    _close(exported, ToyModel.from_pretrained(ddp / "model").state_dict(), "from_pretrained")
    assert not any(type(t).__name__ == "DTensor" for t in exported.values())
    opt_a, opt_b = latest(sharded).optimizer_state(), latest(ddp).optimizer_state()
    assert opt_a["param_groups"] == opt_b["param_groups"] and opt_a["state"].keys() == opt_b["state"].keys()
    for index in opt_a["state"]:
        _close(opt_a["state"][index], opt_b["state"][index], f"optimizer state {index}")


@pytest.mark.slow
def test_fsdp_resume_reproduces_the_uninterrupted_run(runs: Callable[[str], Path], tmp_path: Path) -> None:
    uninterrupted = runs("fsdp") / "run"
    config = uninterrupted.parent.parent / "deterministic-fsdp.toml"
    out = tmp_path / "run"
    launch(config, out, "--train-steps", "4")
    assert latest(out).step == 4 and len(loss_lines(out)) == 4
    shutil.copytree(out, tmp_path / "stopped")
    launch(config, out, "--resume")
    assert_same_run(uninterrupted, out)

    # the same checkpoint resumes under DDP, to the uninterrupted run's losses
    launch(config.with_name("deterministic.toml"), tmp_path / "stopped", "--resume")
    assert json.loads((tmp_path / "stopped" / "run.json").read_text())["fsdp"] is False
    a_lines, b_lines = loss_lines(uninterrupted), loss_lines(tmp_path / "stopped")
    assert [r["step"] for r in b_lines] == list(range(1, STEPS + 1))
    for a, b in zip(a_lines, b_lines):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5, rel=0), a["step"]


def test_clip_dataset_ranks_never_share_a_clip_in_an_epoch(default_shards: Path) -> None:
    """ClipDataset under the loop's split across 2 ranks: every clip (video, frames) of an epoch on one rank."""
    from toolkit.data import ClipDataset

    data = ClipDataset(default_shards, n_frames=8, stride=2, samples_per_video=3)
    order = DataOrder(len(data), global_batch=6, seed=0)
    steps = order.steps_per_epoch
    clips: dict[int, list[tuple]] = {}
    for rank in (0, 1):
        clips[rank] = []
        for batch in _StepBatches(order, 0, steps, rank, world=2):
            for epoch, index in batch:
                data.set_epoch(epoch)
                video_id, frames, _ = data.clip_indices(index)
                clips[rank].append((index, video_id, tuple(frames)))
    assert len(clips[0]) == len(clips[1]) == steps * 3
    assert not {c[0] for c in clips[0]} & {c[0] for c in clips[1]}
    assert not {c[1:] for c in clips[0]} & {c[1:] for c in clips[1]}
    assert len({c[0] for c in clips[0] + clips[1]}) == steps * 6 == len(data)
