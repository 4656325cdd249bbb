"""Out-of-fold evaluation: the competition score over walk-forward test days, per fold and per target."""

from __future__ import annotations

import numpy as np

from offline.metric import rank_correlations
from offline.train.cv import Fold


def daily_scores(P: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Daily rank correlations on masked days that have labels.

    Unlike the official metric this never raises: a missing prediction counts as 0.0 and a
    constant day as correlation 0 (counted and reported), so a report shows every variant.
    """
    rows = np.flatnonzero(mask & (~np.isnan(Y)).any(axis=1))
    preds = np.nan_to_num(P[rows], nan=0.0, posinf=0.0, neginf=0.0)
    corr = rank_correlations(preds, Y[rows])
    constant = int(np.isnan(corr).sum())
    return rows, np.nan_to_num(corr, nan=0.0), constant


def _sharpe(corr: np.ndarray) -> float:
    std = float(np.std(corr))
    return float(np.mean(corr) / std) if std > 0 else float("nan")


def score_block(P: np.ndarray, Y: np.ndarray, mask: np.ndarray, folds: list[Fold] | None = None) -> dict:
    """Competition score (mean / population std of daily Spearman) over the masked days."""
    rows, corr, constant = daily_scores(P, Y, mask)
    out = {
        "score": _sharpe(corr),
        "mean": float(np.mean(corr)),
        "n_days": int(len(rows)),
        "constant_days": constant,
    }
    if folds is not None:
        out["per_fold"] = []
        for i, f in enumerate(folds):
            sel = (rows >= f.test_start) & (rows < f.test_end)
            out["per_fold"].append(
                {"fold": i, "score": _sharpe(corr[sel]), "mean": float(np.mean(corr[sel]))}
            )
    return out


def paired_gain(P_new: np.ndarray, P_old: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> dict:
    """Day-by-day gain in rank correlation of P_new over P_old on the same days, with its t statistic
    (mean / standard error): a feature "helps" only if the gain stands clear of day-to-day noise."""
    _, new, _ = daily_scores(P_new, Y, mask)
    _, old, _ = daily_scores(P_old, Y, mask)
    d = new - old
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    mean = float(np.mean(d)) if len(d) else float("nan")
    return {"mean_daily_gain": mean, "t": mean / se if se > 0 else float("nan"), "n_days": len(d)}


def target_ics(P: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> dict:
    """Per-target rank IC over time (OOF days), with a summary."""
    ic = rank_correlations(P[mask].T, Y[mask].T)
    finite = ic[~np.isnan(ic)]
    return {
        "values": [None if np.isnan(v) else float(v) for v in ic],
        "mean": float(finite.mean()) if finite.size else None,
        "median": float(np.median(finite)) if finite.size else None,
        "frac_positive": float((finite > 0).mean()) if finite.size else None,
    }
