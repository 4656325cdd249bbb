"""The blend of the candidates, chosen by the competition metric and scored out of sample (nested):
fold k is blended with weights fit on the out-of-fold days of folds 0..k-1 only (fold 0, with
nothing before it, with equal weights), so the blend's OOF score is as honest as its members'.
The served weights are fit on every OOF day. The grid holds every single member, so when no mix
beats the best member on the earlier folds the weights say so (all weight on that member).
"""

from __future__ import annotations

import itertools

import numpy as np

from kaggle_kernel.blend import blend
from kaggle_kernel.features import day_ranks
from offline.train.cv import Fold

GRID_STEP = 0.25


def weight_grid(k: int, step: float = GRID_STEP) -> np.ndarray:
    """Every weight vector of k non-negative multiples of `step` summing to 1, (n, k)."""
    m = int(round(1 / step))
    rows = [c for c in itertools.product(range(m + 1), repeat=k) if sum(c) == m]
    return np.array(rows, dtype=np.float64) / m


def _sharpe(corr: np.ndarray) -> float:
    sd = float(np.std(corr))
    return float(np.mean(corr) / sd) if sd > 0 else float("-inf")


class DailySpearman:
    """Daily Spearman correlations of many candidate blends against fixed labels, fast: the labels'
    ranks are computed once; each blend is ranked on the labelled cells only (as the metric does)."""

    def __init__(self, Y: np.ndarray):
        self.valid = ~np.isnan(Y)
        ry = day_ranks(Y)
        ry = np.where(self.valid, ry - np.nanmean(ry, axis=1, keepdims=True), 0.0)
        self.ry = ry
        self.ry_norm = np.sqrt(np.sum(ry**2, axis=1))

    def __call__(self, B: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Daily correlations of the blend B (rows x targets) on the label rows `rows`."""
        valid, ry = self.valid[rows], self.ry[rows]
        rb = day_ranks(np.where(valid, B, np.nan))
        rb = np.where(valid, rb - np.nanmean(rb, axis=1, keepdims=True), 0.0)
        denom = np.sqrt(np.sum(rb**2, axis=1)) * self.ry_norm[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(np.sum(rb * ry, axis=1) / denom, nan=0.0)


def fit_weights(
    ranked: list[np.ndarray], scorer: DailySpearman, rows: np.ndarray
) -> tuple[np.ndarray, float]:
    """The grid weights with the best competition score on `rows` (first best wins: ties go to the
    earlier grid point)."""
    best, best_score = None, float("-inf")
    for w in weight_grid(len(ranked)):
        B = sum(wk * r[rows] for wk, r in zip(w, ranked, strict=True) if wk)
        s = _sharpe(scorer(B, rows))
        if s > best_score:
            best, best_score = w, s
    return best, best_score


def nested_blend(preds: dict[str, np.ndarray], Y: np.ndarray, folds: list[Fold]) -> dict:
    """preds: member -> (days, targets) OOF predictions on the blended targets; Y the labels there.

    Returns the nested OOF blend, each fold's weights and the served (all-OOF) weights."""
    names = list(preds)
    ranked = [np.nan_to_num(day_ranks(preds[n]), nan=0.0) for n in names]
    labelled = (~np.isnan(Y)).any(axis=1)
    scorer = DailySpearman(Y)
    oof = np.full(Y.shape, np.nan)
    per_fold = []
    for k, f in enumerate(folds):
        earlier = np.concatenate([g.test_idx() for g in folds[:k]]) if k else np.zeros(0, dtype=np.int64)
        earlier = earlier[labelled[earlier]]
        if len(earlier):
            w, _ = fit_weights(ranked, scorer, earlier)
        else:
            w = np.full(len(names), 1.0 / len(names))
        te = f.test_idx()
        oof[te] = blend([preds[n][te] for n in names], w)
        per_fold.append(
            {"fold": k, "weights": dict(zip(names, map(float, w), strict=True)), "fit_days": len(earlier)}
        )
    every = np.concatenate([f.test_idx() for f in folds])
    final, _ = fit_weights(ranked, scorer, every[labelled[every]])
    return {
        "members": names,
        "oof": oof,
        "per_fold": per_fold,
        "weights": dict(zip(names, map(float, final), strict=True)),
    }
