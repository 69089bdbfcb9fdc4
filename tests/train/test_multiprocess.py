"""Training on several processes (`accelerate launch`, gloo on CPU) is the one-process run with the same global
batch, cut across ranks: the same loss sequence, and no clip seen by two ranks in one epoch.

The toy objective here is deterministic (no dropout, input noise or condition dropout): the loop draws each
rank's random numbers from its own stream (seed, step, rank), so with randomness in the loss the
two runs are equal in distribution, not number for number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.runs import ROOT, TOY, loss_lines, one_thread, subprocess_env
from tests.train.toy_recipe import ToyRecipe
from toolkit.train.loop import DataOrder, _StepBatches, train

STEPS, GLOBAL_BATCH, ITEMS = 10, 8, 40   # two epochs of five steps


def deterministic_config(folder: Path) -> Path:
    """tests/train/configs/tiny.toml without dropout or loss noise, for STEPS steps."""
    text = (ROOT / "tests" / "train" / "configs" / "tiny.toml").read_text()
    for old, new in (("dropout = 0.1", "dropout = 0.0"), ("noise_std = 0.05", "noise_std = 0.0"),
                     ("p_drop = 0.1", "p_drop = 0.0"), ("steps = 30", f"steps = {STEPS}")):
        assert old in text
        text = text.replace(old, new)
    path = folder / "deterministic.toml"
    path.write_text(text)
    return path


def seen(folder: Path, rank: int) -> list[list[int]]:
    return [json.loads(line) for line in (folder / f"seen-{rank}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = deterministic_config(tmp_path)
    one_seen, two_seen = tmp_path / "seen1", tmp_path / "seen2"
    one_seen.mkdir()
    two_seen.mkdir()
    monkeypatch.setenv("TOY_SEEN_DIR", str(one_seen))
    with one_thread():
        train(ToyRecipe(), str(config), tmp_path, tmp_path / "one", progress=False, method=TOY)

    # --multi_gpu with ACCELERATE_USE_CPU=1 is how accelerate starts several CPU processes (gloo); `--cpu
    # --num_processes 2` alone starts one.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "toolkit", "train", "--method", TOY, "--config", str(config), "--shards", str(tmp_path),
           "--out", str(tmp_path / "two"), "--batch-size", str(GLOBAL_BATCH // 2), "--quiet"]
    done = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(ACCELERATE_USE_CPU="1", TOY_SEEN_DIR=str(two_seen)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["num_processes"] == 2

    one, two = loss_lines(tmp_path / "one"), loss_lines(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, STEPS + 1))
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5, rel=0), a["step"]
        assert b["lr"] == a["lr"]

    batches, rank0, rank1 = seen(one_seen, 0), seen(two_seen, 0), seen(two_seen, 1)
    assert len(batches) == len(rank0) == len(rank1) == STEPS
    for step in range(STEPS):   # each rank takes its half of the one-process batch of the step
        assert rank0[step] + rank1[step] == batches[step]
    for epoch in range(2):
        steps = range(epoch * 5, epoch * 5 + 5)
        a = [i for s in steps for i in rank0[s]]
        b = [i for s in steps for i in rank1[s]]
        assert not set(a) & set(b), f"epoch {epoch}: an item seen by both ranks"
        assert sorted(a + b) == list(range(ITEMS))


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
