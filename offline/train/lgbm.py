"""One place that builds LightGBM parameters (seeded, deterministic, within the thread budget) and
fits many boosters on subsets of one binned Dataset.

The budget: joblib workers x LightGBM threads never exceeds the cores this process may use (its CPU
affinity, capped by OMP_NUM_THREADS when set), so a busy machine is not oversubscribed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np


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


@dataclass(frozen=True)
class SubsetFit:
    """One booster's training rows (positions in the X of `fit_subsets`), labels, init_score and
    parameter overrides."""

    rows: np.ndarray
    labels: np.ndarray
    init_score: np.ndarray | None = None
    overrides: dict | None = None


def fit_subsets(
    X: np.ndarray, fits: list[SubsetFit], params: dict, names: list[str]
) -> Iterator[lgb.Booster]:
    """One booster per SubsetFit, each on a subset of one binned Dataset of X's rows.

    LightGBM finds its bins (its costliest step on small data) once, on every row some fit uses, and
    each fit trains on a subset of that Dataset, as `lightgbm.cv` does with its folds: the bins see
    later days' feature values (never their labels). Binning on the first fold's rows instead (a
    `reference` Dataset) and training on subsets of the result corrupted LightGBM 4.7.0's heap here.
    `params` are the sklearn-style ones `lgbm_params` builds."""
    p = {**params, "feature_pre_filter": False}  # every fit keeps every feature its own rows could split
    every = np.unique(np.concatenate([f.rows for f in fits]))
    full = lgb.Dataset(X[every], label=np.zeros(len(every)), params=p, feature_name=names).construct()
    for f in fits:
        part = full.subset(np.searchsorted(every, f.rows)).construct()
        part.set_label(f.labels)
        if f.init_score is not None:
            part.set_init_score(f.init_score)
        q = {**p, **(f.overrides or {})}
        rounds = int(q.pop("n_estimators", 100))
        yield lgb.train(q, part, num_boost_round=rounds)
