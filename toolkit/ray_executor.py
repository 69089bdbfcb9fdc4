"""The Ray executor: the per-video work of `prepare` and `eval` as Ray tasks, on this machine or a cluster.

Ray decides where each video runs; this module only submits the tasks, keeps a bounded number of them in
flight (Ray's "limit pending tasks" pattern, so a 100k-video run does not hold 100k results at once) and
hands back each video's result, or the exception its task raised, or the error Ray reports when the worker
process running it died. Worker processes are reused between tasks (``max_calls=0``, GPU tasks included),
so a model a task builds into a module-level cache (the annotation backends, the metric networks) is
loaded once per worker process, not once per video.

Ray is an optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence, TypeVar

EXECUTORS = ("local", "ray")
INSTALL_HINT = "pip install -e '.[ray]' (or pip install 'animation-toolkit[ray]')"
# In-flight tasks per CPU of the cluster: enough to keep every worker busy, few enough to bound memory.
TASKS_PER_CPU = 4

T = TypeVar("T")


def check_executor(executor: str, ray_address: str | None, cluster_cpus: int | None = None) -> None:
    """Refuse an unknown executor, an address without Ray, CPUs for a local cluster that will not be started
    (`cluster_cpus`, eval's --workers), or Ray when it is not installed: before any work."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if ray_address is not None and executor != "ray":
        raise ValueError("--ray-address is for --executor ray")
    if cluster_cpus is not None and (executor != "ray" or ray_address is not None):
        raise ValueError("--workers sets the CPUs of a local Ray cluster: use it with --executor ray, "
                         "without --ray-address")
    if executor == "ray":
        require_ray()


def require_ray() -> ModuleType:
    """The ray module, or a RuntimeError that names the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(f"--executor ray needs Ray, which is not installed here: {INSTALL_HINT}") from exc
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` ("auto": the one `ray start` made on this node), or start a local one with
    `num_cpus` CPUs (None: all cores). Returns whether this call started Ray (the caller then shuts it down);
    an already initialised Ray is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"a local Ray cluster needs at least 1 CPU, got {num_cpus}")
    # The workers of a local cluster import the toolkit from the same place as this process; a cluster's nodes
    # have their own installation.
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") and not address else {}
    # Ray would otherwise replace builtins.print in this process for its progress bars
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=True, runtime_env={"env_vars": env} if env else None)
    except ConnectionError as exc:
        raise ConnectionError(f"--ray-address {address}: no Ray cluster answers there ({exc})") from exc
    return True


def start_up_seconds(address: str | None = None, num_cpus: int | None = None) -> float:
    """Seconds to start (or join) a cluster and run one task on it: the fixed cost apart from the work."""
    ray = require_ray()
    t0 = time.perf_counter()
    connect(address, num_cpus)
    ray.get(ray.remote(_noop).remote())
    return time.perf_counter() - t0


def _noop() -> None:
    return None


def cluster_gpu_share() -> float:
    """GPUs per CPU of the cluster (at most 1): the GPU fraction a one-CPU task asks for, so every CPU slot of a
    GPU node can run a GPU task. 0 when the cluster has no GPU."""
    ray = require_ray()
    res = ray.cluster_resources()
    gpus, cpus = res.get("GPU", 0.0), res.get("CPU", 0.0)
    return 0.0 if not gpus or not cpus else min(1.0, gpus / cpus)


def describe_failure(exc: BaseException) -> str:
    """'Type: message' of a task's failure; a worker that died is named as such."""
    ray = require_ray()
    exc = task_cause(exc)
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return f"{type(exc).__name__}: the Ray worker running this video died ({str(exc).splitlines()[0]})"
    return f"{type(exc).__name__}: {exc}"


def task_cause(exc: BaseException) -> BaseException:
    """The exception a task's own code raised (RayTaskError unwrapped), else `exc` itself."""
    ray = require_ray()
    if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        return exc.cause
    return exc


def map_tasks(fn: Callable[..., Any], items: Sequence[T], shared: tuple = (), *, num_cpus: float = 1,
              num_gpus: float = 0, max_retries: int = 0) -> Iterator[tuple[T, Any]]:
    """Run ``fn(item, *shared)`` for every item as a Ray task; yield ``(item, result)`` as tasks finish.

    `result` is the exception when the task raised or its worker died (after `max_retries` retries of a died
    worker), so one video never stops the others. `shared` goes into the object store once, not per task.
    """
    ray = require_ray()
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, max_calls=0)(fn)
    refs = [ray.put(x) for x in shared]
    window = max(1, int(ray.cluster_resources().get("CPU", 1) * TASKS_PER_CPU))
    pending: dict[Any, T] = {}
    todo = iter(items)

    def submit() -> None:
        for item in todo:
            pending[remote.remote(item, *refs)] = item
            if len(pending) >= window:
                return

    submit()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            item = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = exc
            yield item, result
        submit()
