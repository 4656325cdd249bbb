"""Run one function over many tasks with shared matrices: joblib processes here, or a Dask cluster.

Results stream back as they finish (so the caller can checkpoint and show progress); the order
of completion does not change any result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from offline.train.lgbm import available_cores

EXECUTORS = ("local", "dask")


def default_jobs() -> int:
    """Worker processes by default: the cores this process may use (affinity, OMP_NUM_THREADS)."""
    return available_cores()


def run_tasks(
    func: Callable[..., Any],
    tasks: Iterable[Any],
    shared: tuple,
    executor: str = "local",
    n_jobs: int | None = None,
    scheduler: str | None = None,
) -> Iterator[Any]:
    """Yield func(task, *shared) for every task, in completion order."""
    tasks = list(tasks)
    if not tasks:
        return iter(())
    if executor == "local":
        return _run_local(func, tasks, shared, n_jobs or default_jobs())
    if executor == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler tcp://HOST:PORT (or a Client)")
        return _run_dask(func, tasks, shared, scheduler)
    raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")


def _run_local(func: Callable, tasks: list, shared: tuple, n_jobs: int) -> Iterator[Any]:
    if n_jobs == 1:
        return (func(t, *shared) for t in tasks)
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered", max_nbytes="1M")
    return parallel(delayed(func)(t, *shared) for t in tasks)


def _run_dask(func: Callable, tasks: list, shared: tuple, scheduler: Any) -> Iterator[Any]:
    from distributed import Client, as_completed

    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else scheduler
    try:
        shared_futures = [client.scatter(obj, broadcast=True) for obj in shared]
        futures = [client.submit(func, t, *shared_futures, pure=False) for t in tasks]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if own:
            client.close()
