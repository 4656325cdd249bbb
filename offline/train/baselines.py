"""Baselines on the same walk-forward folds: naive (latest delivered label) and per-target mean.
The mean-rank prior and pooled LightGBM are candidates (candidates.py), reported with the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kaggle_kernel.schema import TargetDef
from offline.train.cv import Fold
from offline.train.evaluate import score_block
from offline.train.run_files import BaselineScore

if TYPE_CHECKING:
    from offline.train.config import TrainConfig
    from offline.train.dataset import Dataset


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
        Y = Ytrain[: f.train_end, idx]
        count = (~np.isnan(Y)).sum(axis=0)
        with np.errstate(invalid="ignore"):  # a target without training labels: NaN, as nanmean gives
            P[f.test_start : f.test_end, idx] = np.nansum(Y, axis=0) / count
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
) -> dict[str, BaselineScore]:
    """Each baseline's OOF score on every OOF day, with its interval and per-fold scores."""
    idx = [t.index for t in targets]
    out = {}
    for name, P in (
        ("naive", naive(data, targets, folds)),
        ("mean", per_target_mean(data, Ytrain, targets, folds)),
    ):
        block = score_block(P[:, idx], data.Y[:, idx], mask, folds)
        out[name] = BaselineScore(block["score"], block["interval"], [f["score"] for f in block["per_fold"]])
    return out
