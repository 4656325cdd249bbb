"""One LightGBM regressor per target: walk-forward out-of-fold predictions and a final refit.

A target the data cannot support (too few labels, a missing leg) falls back to its naive baseline,
the latest delivered label, and says why; an error in one target never stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from offline.train.cv import Fold

DEFAULT_PARAMS = {  # shallow, heavily regularized trees: the signal is weak and close to linear
    "objective": "regression",
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_child_samples": 200,
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
    out = {**DEFAULT_PARAMS, **(params or {})}
    out.update(random_state=seed, n_jobs=1, deterministic=True, force_row_wise=True)
    return out


def rank_per_day(Y: np.ndarray) -> np.ndarray:
    """Cross-sectional rank of each day's non-null targets, scaled to [-0.5, 0.5]; NaN stays NaN."""
    from offline.gateway.metric import average_ranks

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


@dataclass
class TargetResult:
    index: int
    name: str
    oof: np.ndarray
    model_text: str | None
    fallback: str | None
    n_train: int


def _fit(X: np.ndarray, y: np.ndarray, names: list[str], params: dict) -> lgb.LGBMRegressor:
    model = lgb.LGBMRegressor(**params)
    model.fit(X, y, feature_name=names)
    return model


def fit_target(task: TargetTask, X: np.ndarray, Y: np.ndarray) -> TargetResult:
    """OOF predictions over `task.folds` and the final model for one target (column `task.index` of Y)."""
    y = Y[:, task.index]
    naive = X[:, task.naive_column]
    oof = np.full(len(y), np.nan)

    def fallback(reason: str) -> TargetResult:
        for f in task.folds:
            oof[f.test_start : f.test_end] = naive[f.test_start : f.test_end]
        return TargetResult(task.index, task.name, oof, None, reason, int(np.sum(~np.isnan(y))))

    if task.missing_legs:
        return fallback(f"leg column(s) missing from the data: {', '.join(task.missing_legs)}")
    Xt = X[:, task.columns]
    params = regressor_params(task.params, task.seed)
    try:
        for i, f in enumerate(task.folds):
            tr = f.train_idx()
            tr = tr[~np.isnan(y[tr])]
            if len(tr) < task.min_labels:
                return fallback(f"fold {i} has {len(tr)} training labels (< {task.min_labels})")
            te = f.test_idx()
            oof[te] = _fit(Xt[tr], y[tr], task.feature_names, params).booster_.predict(Xt[te])
        labeled = np.flatnonzero(~np.isnan(y))
        text = (
            _fit(Xt[labeled], y[labeled], task.feature_names, params).booster_.model_to_string()
            if task.final
            else None
        )
    except Exception as exc:  # one bad target must not stop the other 423
        return fallback(f"training failed: {type(exc).__name__}: {exc}")
    return TargetResult(task.index, task.name, oof, text, None, len(labeled))
