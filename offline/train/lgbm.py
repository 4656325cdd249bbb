"""One place that builds LightGBM parameters: seeded, deterministic, and within the thread budget.

The budget: joblib workers x LightGBM threads never exceeds the cores this process may use (its CPU
affinity, capped by OMP_NUM_THREADS when set), so a busy machine is not oversubscribed.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by OMP_NUM_THREADS when that is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return max(cores, 1)


def threads_per_worker(workers: int = 1) -> int:
    """LightGBM threads for each of `workers` parallel processes: workers x threads <= available cores."""
    return max(available_cores() // max(int(workers), 1), 1)


def lgbm_params(base: dict, seed: int, workers: int = 1, overrides: dict | None = None) -> dict:
    """`base`, then `overrides`, then the kit's fixed part: seed, deterministic, row-wise, threads."""
    out = {**base, **(overrides or {})}
    out.update(
        random_state=seed,
        n_jobs=threads_per_worker(workers),
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    return out
