"""ThreadLoader: the batches of the DataLoader, in order, from threads; errors reach the consumer; threads end."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from tests.helpers.builders import make_shards
from toolkit.data import ClipDataset
from toolkit.train.loop import _EpochItems
from toolkit.train.thread_loader import ThreadLoader


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ThreadLoader")]


def test_clip_batches_equal_those_of_one_process(tmp_path) -> None:
    shards = make_shards(tmp_path, n_videos=3, n_frames=30, h=72, w=48, image_format="png")
    ds = ClipDataset(shards, n_frames=4, stride=2, size=32, columns=["pose", "densepose", "keypoints"], seed=1,
                     samples_per_video=4, dtype=torch.uint8, renders="labels")
    batches = [[i, (i + 5) % len(ds)] for i in range(len(ds))]
    got = list(ThreadLoader(ds, batches, num_workers=3, prefetch=1))
    assert ds._shards is None  # the threads read through copies of their own
    expected = list(DataLoader(ds, batch_sampler=batches, num_workers=0))
    assert len(got) == len(expected) == len(ds)
    assert all(same(a, b) for a, b in zip(got, expected))
    assert not loader_threads()


class Slow(Dataset):
    """Items that take a random while, and whose value depends on the epoch last set: a race shows up as a
    wrong epoch in an item when threads share one copy."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at, self.epoch = n, fail_at, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict:
        time.sleep(np.random.default_rng(i).uniform(0, 0.004))
        epoch = self.epoch
        if i == self.fail_at:
            raise ValueError(f"item {i} is broken")
        return {"i": torch.tensor(i), "epoch": torch.tensor(epoch)}


def test_each_thread_keeps_its_own_epoch() -> None:
    keys = [[(epoch, i), (epoch, (i + 1) % 6)] for epoch in range(4) for i in range(6)]
    got = list(ThreadLoader(_EpochItems(Slow(6)), keys, num_workers=3))
    assert [b["epoch"].tolist() for b in got] == [[e, e] for e, _ in (k[0] for k in keys)]
    assert [b["i"].tolist() for b in got] == [[k[0][1], k[1][1]] for k in keys]


def test_an_item_error_reaches_the_consumer_after_the_batches_before_it() -> None:
    seen = []
    with pytest.raises(ValueError, match="item 7 is broken"):
        for batch in ThreadLoader(Slow(12, fail_at=7), [[i] for i in range(12)], num_workers=2):
            seen.append(int(batch["i"]))
    assert seen == list(range(7))
    assert not loader_threads()


def test_stopping_early_ends_the_threads() -> None:
    it = iter(ThreadLoader(Slow(100), [[i] for i in range(100)], num_workers=2, collate_fn=default_collate))
    assert int(next(it)["i"]) == 0
    assert loader_threads()
    it.close()
    assert not loader_threads()


def test_pinning_and_arguments() -> None:
    batch = next(iter(ThreadLoader(Slow(2), [[0, 1]], num_workers=1, pin_memory=True)))
    assert batch["i"].is_pinned() == torch.cuda.is_available()  # no CUDA: nothing to pin for, as DataLoader
    with pytest.raises(ValueError, match="at least one worker thread"):
        ThreadLoader(Slow(2), [[0]], num_workers=0)
    with pytest.raises(ValueError, match="prefetch"):
        ThreadLoader(Slow(2), [[0]], num_workers=1, prefetch=0)
    assert len(ThreadLoader(Slow(2), [[0], [1]], num_workers=1)) == 2


class TorchThreads(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"threads": torch.tensor(torch.get_num_threads())}


def test_loader_threads_keep_torch_to_one_thread_and_leave_trainings_alone() -> None:
    """As in a DataLoader worker process: a loader thread's tensor work must not contend with the training's
    intra-op threads (it slowed the tiny UniAnimate step from 0.62 to 0.84 s on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = [int(b["threads"]) for b in ThreadLoader(TorchThreads(), [[i] for i in range(4)], num_workers=2)]
        assert got == [1, 1, 1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
