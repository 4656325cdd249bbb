"""The competition score: mean / population std of daily Spearman correlations (average ranks).

Per day, only targets with a non-null label count; predictions are ranked among those same targets.
Fails like the official metric: a day with no labels, a constant day, or zero std across days raises.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from offline.errors import UserError


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Row-wise 1-based average ranks of a 2-D array; NaN cells stay NaN and are not ranked."""
    values = np.asarray(values, dtype=np.float64)
    n_rows, n_cols = values.shape
    order = np.argsort(values, axis=1, kind="stable")  # NaN sorts last
    ordered = np.take_along_axis(values, order, axis=1)
    pos = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    new_group = np.ones_like(ordered, dtype=bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    end_group = np.ones_like(ordered, dtype=bool)
    end_group[:, :-1] = new_group[:, 1:]
    first = np.maximum.accumulate(np.where(new_group, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(end_group, pos, n_cols)[:, ::-1], axis=1)[:, ::-1]
    avg = (first + last) / 2.0 + 1.0
    ranks = np.empty_like(values)
    np.put_along_axis(ranks, order, avg, axis=1)
    ranks[np.isnan(values)] = np.nan
    return ranks


def rank_correlations(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman per row over the cells where truth is not NaN; NaN for a row that is empty or constant."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} != solution shape {truth.shape}")
    mask = ~np.isnan(truth)
    rp = average_ranks(np.where(mask, pred, np.nan))
    rt = average_ranks(truth)
    n = np.maximum(mask.sum(axis=1), 1)
    dp = np.where(mask, rp - np.nansum(rp, axis=1, keepdims=True) / n[:, None], 0.0)
    dt = np.where(mask, rt - np.nansum(rt, axis=1, keepdims=True) / n[:, None], 0.0)
    denom = np.sqrt((dp * dp).sum(axis=1) * (dt * dt).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (dp * dt).sum(axis=1) / denom, np.nan)


def daily_rank_correlations(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman per day like the official metric: raises on a day without labels or a constant day."""
    corr = rank_correlations(pred, truth)  # validates shapes
    pred = np.asarray(pred, dtype=np.float64)
    mask = ~np.isnan(np.asarray(truth, dtype=np.float64))
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"day (row {int(np.argmax(empty))}) has no non-null target")
    bad = mask & ~np.isfinite(pred)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        raise ValueError(f"day (row {row}) has a non-finite prediction for a scored target")
    zero = np.isnan(corr)
    if zero.any():
        raise ZeroDivisionError(
            f"Denominator is zero, unable to compute rank correlation (row {int(np.argmax(zero))})."
        )
    return corr


def sharpe_of_daily(corrs: np.ndarray) -> float:
    """Mean over population std of the daily correlations."""
    std = float(np.std(corrs))
    if std == 0:
        raise ZeroDivisionError("Denominator is zero, unable to compute Sharpe ratio.")
    return float(np.mean(corrs)) / std


def align(solution: pl.DataFrame, submission: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Join on date_id and return (pred, truth, targets) arrays for the solution's target columns."""
    targets = [c for c in solution.columns if c.startswith("target_")]
    missing = [c for c in targets if c not in submission.columns]
    if missing:
        raise UserError(f"submission lacks {len(missing)} target column(s), e.g. {missing[:3]}")
    for name, frame in (("solution", solution), ("submission", submission)):
        if "date_id" not in frame.columns:
            raise UserError(f"{name} has no date_id column")
        if frame["date_id"].is_duplicated().any():
            raise UserError(
                f"{name} has duplicate date_id {frame.filter(pl.col('date_id').is_duplicated())['date_id'][0]}"
            )
    joined = (
        solution.select("date_id", *targets)
        .join(
            submission.select("date_id", *[pl.col(c).alias(f"pred__{c}") for c in targets]),
            on="date_id",
            how="left",
        )
        .sort("date_id")
    )
    lacking = joined.filter(
        pl.col(f"pred__{targets[0]}").is_null() & pl.all_horizontal(pl.col("^pred__.*$").is_null())
    )
    if lacking.height:
        raise UserError(f"submission has no row for date_id {lacking['date_id'][0]} of the solution")
    truth = joined.select(targets).cast(pl.Float64).to_numpy()
    pred = joined.select([f"pred__{c}" for c in targets]).cast(pl.Float64).to_numpy()
    return pred, truth, targets


def score(solution: pl.DataFrame, submission: pl.DataFrame) -> float:
    """The competition score of `submission` against `solution` (date_id + target_* each)."""
    pred, truth, _ = align(solution, submission)
    return sharpe_of_daily(daily_rank_correlations(pred, truth))
