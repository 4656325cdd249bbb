"""Baselines on the same walk-forward folds: naive (latest delivered label), per-target mean, and one
pooled LightGBM over all targets on target-relative features (fit on every other training day, which
keeps it to seconds: its 424 x days rows are highly redundant)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np

from kaggle_kernel.features import REGIME_PROB
from kaggle_kernel.schema import TargetDef
from offline.train.cv import Fold
from offline.train.evaluate import score_block

if TYPE_CHECKING:
    from offline.train.engine import Dataset, TrainConfig

POOLED_PARAMS = {
    "objective": "regression",
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 500,
    "subsample": 0.5,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 10.0,
    "max_bin": 63,
    "verbose": -1,
}
POOLED_DAY_STRIDE = 2


def naive(data: Dataset, targets: list[TargetDef], folds: list[Fold]) -> np.ndarray:
    P = np.full(data.Y.shape, np.nan)
    for t in targets:
        P[:, t.index] = data.X[:, data.col[f"{t.name}_lab1"]]
    return _only_test(P, folds)


def per_target_mean(
    data: Dataset, Ytrain: np.ndarray, targets: list[TargetDef], folds: list[Fold]
) -> np.ndarray:
    P = np.full(data.Y.shape, np.nan)
    idx = [t.index for t in targets]
    for f in folds:
        P[f.test_start : f.test_end, idx] = np.nanmean(Ytrain[: f.train_end, idx], axis=0)
    return P


def _relative_columns(data: Dataset, t: TargetDef) -> list[int]:
    """A target's features in a layout shared by all targets (leg B columns absent -> NaN column)."""
    spec, col = data.spec, data.col
    own = [col[n] for n in spec.own_features(t)]
    a = [col[n] for n in spec.leg_features(t.leg_a)]
    b = [col[n] for n in spec.leg_features(t.leg_b)] if t.leg_b else [-1] * len(a)
    shared = [col[n] for n in [*spec.shared_features, REGIME_PROB]]
    return [*own, *a, *b, *shared]


def pooled(
    data: Dataset,
    Ytrain: np.ndarray,
    targets: list[TargetDef],
    folds: list[Fold],
    seed: int,
    n_jobs: int | None,
) -> np.ndarray:
    """One model over (day, target) rows; the target's lag and whether it is a spread are features too."""
    n_days = len(data.date_ids)
    Xpad = np.concatenate([data.X, np.full((n_days, 1), np.nan)], axis=1).astype(np.float32)
    blocks = []
    for t in targets:
        cols = _relative_columns(data, t)
        extra = np.column_stack(
            [np.full(n_days, t.lag, np.float32), np.full(n_days, t.leg_b is not None, np.float32)]
        )
        blocks.append(np.concatenate([Xpad[:, cols], extra], axis=1))
    Xs = np.stack(blocks)  # target, day, feature
    Ys = np.stack([Ytrain[:, t.index] for t in targets])
    params = {
        **POOLED_PARAMS,
        "random_state": seed,
        "n_jobs": n_jobs or -1,
        "deterministic": True,
        "force_row_wise": True,
    }
    P = np.full(data.Y.shape, np.nan)
    for f in folds:
        Xtr = Xs[:, : f.train_end : POOLED_DAY_STRIDE].reshape(-1, Xs.shape[2])
        ytr = Ys[:, : f.train_end : POOLED_DAY_STRIDE].reshape(-1)
        keep = ~np.isnan(ytr)
        model = lgb.LGBMRegressor(**params).fit(Xtr[keep], ytr[keep])
        Xte = Xs[:, f.test_start : f.test_end].reshape(-1, Xs.shape[2])
        pred = model.predict(Xte).reshape(len(targets), -1)
        for k, t in enumerate(targets):
            P[f.test_start : f.test_end, t.index] = pred[k]
    return P


def _only_test(P: np.ndarray, folds: list[Fold]) -> np.ndarray:
    out = np.full(P.shape, np.nan)
    for f in folds:
        out[f.test_start : f.test_end] = P[f.test_start : f.test_end]
    return out


def all_baselines(
    data: Dataset,
    Ytrain: np.ndarray,
    targets: list[TargetDef],
    folds: list[Fold],
    mask: np.ndarray,
    cfg: TrainConfig,
    n_jobs: int | None,
) -> dict:
    idx = [t.index for t in targets]
    out = {}
    for name, P in (
        ("naive", naive(data, targets, folds)),
        ("mean", per_target_mean(data, Ytrain, targets, folds)),
        ("pooled", pooled(data, Ytrain, targets, folds, cfg.seed, n_jobs)),
    ):
        block = score_block(P[:, idx], data.Y[:, idx], mask, folds)
        out[name] = block["score"]
        out[f"{name}_per_fold"] = [f["score"] for f in block["per_fold"]]
    return out
