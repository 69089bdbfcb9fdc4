"""`ThreadLoader`: a DataLoader whose workers are threads of this process.

A DataLoader worker process hands every batch over in freshly allocated shared memory,
which the kernel must fault in page by page: on a small machine that costs more than
making a clip of pose + DensePose labels (benchmarks/loader.py measures both). ClipDataset
spends its time in code that releases the GIL (JPEG and zstd decoding, OpenCV), so threads
make its clips in parallel and hand them over for free.

Semantics follow the DataLoader's: batches in the sampler's order, each thread with its own
copy of the dataset (as each worker process has), at most `prefetch` batches per thread
made ahead, an item's exception raised in the consumer. A dataset made in pure Python holds
the GIL and gains nothing from threads: give such a dataset worker processes.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from accelerate.utils import recursively_apply
from torch.utils.data import Dataset, default_collate


def _start_thread(cuda_device: int | None) -> None:
    """Tensor work in a loader thread runs on that thread alone, as in a DataLoader worker process (the intra-op
    thread count is per thread, so training keeps its own), and pins memory for the consumer's GPU (the current
    CUDA device is per thread too; without it every process would open a context on GPU 0)."""
    torch.set_num_threads(1)
    if cuda_device is not None:
        torch.cuda.set_device(cuda_device)


class ThreadLoader:
    """Batches of `dataset` for the index lists of `batch_sampler`, made by `num_workers` threads.

    Args:
        dataset: a map-style dataset; each thread works on its own deep copy.
        batch_sampler: yields the list of keys of each batch, in order.
        num_workers: threads (at least 1).
        collate_fn: turns a list of items into a batch.
        prefetch: batches made ahead per thread.
        pin_memory: put the batches in page-locked memory (in the worker thread), for the CUDA device current
            where the loader is made.
    """

    def __init__(self, dataset: Dataset, batch_sampler: Iterable[Sequence[Any]], num_workers: int,
                 collate_fn: Callable[[list], Any] = default_collate, prefetch: int = 2, pin_memory: bool = False):
        if num_workers < 1:
            raise ValueError(f"ThreadLoader needs at least one worker thread, got {num_workers}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.dataset, self.batch_sampler, self.num_workers = dataset, batch_sampler, num_workers
        self.collate_fn, self.prefetch = collate_fn, prefetch
        self.pin_memory = pin_memory and torch.cuda.is_available()  # as DataLoader: nothing to pin for without CUDA
        self._local = threading.local()
        # the consumer's CUDA device, read in its thread (as DataLoader hands it to its pinning thread)
        self._cuda_device = torch.cuda.current_device() if self.pin_memory else None

    def __len__(self) -> int:
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def _batch(self, keys: Sequence[Any]) -> Any:
        dataset = getattr(self._local, "dataset", None)
        if dataset is None:
            dataset = self._local.dataset = copy.deepcopy(self.dataset)
        batch = self.collate_fn([dataset[k] for k in keys])
        return recursively_apply(torch.Tensor.pin_memory, batch) if self.pin_memory else batch

    def __iter__(self) -> Iterator[Any]:
        self._local = threading.local()  # fresh copies per pass, as fresh worker processes would have
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="ThreadLoader", initializer=_start_thread,
                                  initargs=(self._cuda_device,))
        pending: deque[Future] = deque()
        try:
            for keys in self.batch_sampler:
                pending.append(pool.submit(self._batch, list(keys)))
                if len(pending) >= self.num_workers * self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
