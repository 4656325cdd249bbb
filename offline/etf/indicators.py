"""Market features as polars expressions: each function takes a daily frame and returns it with more columns.

Input: one row per trading day sorted by date_id with open/high/low/close/volume, vix (may be null)
and def_ret (may be null). Every feature at row t uses rows <= t only; the crash label alone looks
forward. The features live in kaggle_kernel/crash.py (serving computes the same inputs) and are
re-exported here; the label, which serving never needs, is defined here.
"""

from __future__ import annotations

import polars as pl

from kaggle_kernel.crash import (
    ANNUAL,
    MOMENTUM,
    MOVING_AVERAGES,
    VOLATILITY,
    WARMUP,
    base_indicators,
    defensive_indicators,
    feature_frame,
    interactions,
    naive_rule,
)

__all__ = [
    "ANNUAL",
    "MOMENTUM",
    "MOVING_AVERAGES",
    "VOLATILITY",
    "WARMUP",
    "base_indicators",
    "crash_episodes",
    "crash_label",
    "defensive_indicators",
    "feature_frame",
    "forward_max_drawdown",
    "interactions",
    "naive_rule",
]


def forward_max_drawdown(horizon: int) -> pl.Expr:
    """Worst peak-to-trough move of the close over rows t..t+horizon (the peak may be day t itself)."""
    close = pl.col("close")
    steps = []
    for k in range(1, horizon + 1):
        peak = pl.max_horizontal(*(close.shift(-j) for j in range(k + 1)))
        steps.append(close.shift(-k) / peak - 1)
    return pl.min_horizontal(*steps).clip(upper_bound=0)


def crash_label(frame: pl.DataFrame, horizon: int, depth: float) -> pl.DataFrame:
    """fwd_mdd and crash = 1 when the max drawdown over the next `horizon` days is <= -depth (null at the end)."""
    complete = pl.col("close").shift(-horizon).is_not_null()
    return frame.with_columns(
        pl.when(complete).then(forward_max_drawdown(horizon)).alias("fwd_mdd"),
    ).with_columns(
        pl.when(complete).then((pl.col("fwd_mdd") <= -depth).cast(pl.Int8)).alias("crash"),
    )


def crash_episodes(crash: pl.Series, gap: int) -> int:
    """Independent crash episodes: runs of crash days, runs fewer than `gap` rows apart counted as one.

    Overlapping forward windows make neighbouring crash days one event; this is the sample size that
    calibration, threshold and allocation choices on a block really rest on.
    """
    days = (crash.fill_null(0) > 0).arg_true()
    if days.len() == 0:
        return 0
    return int((days.diff().drop_nulls() > max(gap, 1)).sum()) + 1
