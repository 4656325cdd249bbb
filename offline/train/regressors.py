"""One LightGBM regressor per target: walk-forward out-of-fold predictions and a final refit.

Each regressor starts from the shared structural model's prediction (shared.py, LightGBM's
init_score) and learns what is particular to its target; its final file carries both sets of trees.
A target the data cannot support (too few labels, a missing leg) falls back to its naive baseline,
the latest delivered label, and says why; an error in one target never stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.train.cv import Fold
from offline.train.lgbm import SubsetFit, fit_subsets, lgbm_params
from offline.train.shared import SharedFit, combine

DEFAULT_PARAMS = {  # a small, slow correction to the shared model: larger ones fit noise (README)
    "objective": "regression",
    "n_estimators": 25,
    "learning_rate": 0.02,
    "num_leaves": 4,
    "min_child_samples": 400,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "reg_lambda": 30.0,
    "max_bin": 63,
    "verbose": -1,
}
MIN_LABELS = 200  # fewer training labels than this in any fold -> naive fallback


def regressor_params(params: dict | None, seed: int) -> dict:
    """Defaults, then overrides; single-threaded and deterministic so every executor gives one model."""
    return {**lgbm_params(DEFAULT_PARAMS, seed, overrides=params), "n_jobs": 1}


def rank_per_day(Y: np.ndarray) -> np.ndarray:
    """Cross-sectional rank of each day's non-null targets, scaled to [-0.5, 0.5]; NaN stays NaN."""
    from offline.metric import average_ranks

    ranks = average_ranks(Y)
    n = np.sum(~np.isnan(Y), axis=1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 1, (ranks - 0.5) / n - 0.5, np.nan)


@dataclass
class TargetTask:
    """What one worker needs besides the shared matrices: which target, its columns, how to fit."""

    index: int
    name: str
    columns: list[int]
    feature_names: list[str]
    naive_column: int
    folds: list[Fold]
    params: dict
    seed: int
    missing_legs: list[str]
    min_labels: int = MIN_LABELS
    final: bool = True  # also refit on every labeled day (tuning skips this)
    fold_ids: list[int] | None = None  # which shared margins belong to `folds` (default: 0, 1, ...)


@dataclass
class TargetResult:
    index: int
    name: str
    oof: np.ndarray
    model_text: str | None
    fallback: str | None
    n_train: int


def fit_target(
    task: TargetTask, X: np.ndarray, Y: np.ndarray, shared: SharedFit | None = None
) -> TargetResult:
    """OOF predictions over `task.folds` and the final model for one target (column `task.index` of Y).

    With `shared`, every fit starts from the shared model's margins for that fold, and the final
    model text also holds the shared trees.
    """
    y = Y[:, task.index]
    naive = X[:, task.naive_column]
    oof = np.full(len(y), np.nan)

    def fallback(reason: str) -> TargetResult:
        for f in task.folds:
            oof[f.test_start : f.test_end] = naive[f.test_start : f.test_end]
        return TargetResult(task.index, task.name, oof, None, reason, int(np.sum(~np.isnan(y))))

    def margin(i: int) -> np.ndarray | None:
        return None if shared is None else shared.margins[i][:, task.index]

    if task.missing_legs:
        return fallback(f"leg column(s) missing from the data: {', '.join(task.missing_legs)}")
    fold_ids = list(task.fold_ids if task.fold_ids is not None else range(len(task.folds)))
    train = [f.train_idx()[~np.isnan(y[f.train_idx()])] for f in task.folds]
    for i, tr in zip(fold_ids, train, strict=True):
        if len(tr) < task.min_labels:
            return fallback(f"fold {i} has {len(tr)} training labels (< {task.min_labels})")
    labeled = np.flatnonzero(~np.isnan(y))
    rows = [*train, labeled] if task.final else train
    margins = [margin(i) for i in fold_ids] + ([margin(-1)] if task.final else [])
    fits = [SubsetFit(r, y[r], None if m is None else m[r]) for r, m in zip(rows, margins, strict=True)]
    try:
        params = regressor_params(task.params, task.seed)
        Xt = X[:, task.columns]
        models = list(fit_subsets(Xt, fits, params, task.feature_names))
        n = len(task.folds)  # the final model, if any, is last
        for f, m, model in zip(task.folds, margins[:n], models[:n], strict=True):
            te = f.test_idx()
            oof[te] = model.predict(Xt[te]) + (0.0 if m is None else m[te])
        text = None
        if task.final:
            text = models[-1].model_to_string()
            if shared is not None:
                names = [f"{task.name}_{s}" for s in shared.features]
                text = combine(text, shared.model_text, names, task.feature_names)
    except Exception as exc:  # one bad target must not stop the other 423
        return fallback(f"training failed: {type(exc).__name__}: {exc}")
    return TargetResult(task.index, task.name, oof, text, None, len(labeled))
