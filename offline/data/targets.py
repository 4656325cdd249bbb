"""The competition's targets from prices, and Kaggle's layout of the lagged label files.

target(s) = log(A[s+L+1] / A[s+1]) - log(B[s+L+1] / B[s+1]); null when any price is null; no fill.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from kaggle_kernel.schema import LAGS, TargetDef, target_defs


def reindex_consecutive(prices: pl.DataFrame) -> pl.DataFrame:
    """Insert all-null rows for missing date_ids so that a row shift is a day shift."""
    lo, hi = prices["date_id"].min(), prices["date_id"].max()
    full = pl.DataFrame({"date_id": pl.int_range(lo, hi + 1, eager=True, dtype=pl.Int64)})
    return full.join(prices.with_columns(pl.col("date_id").cast(pl.Int64)), on="date_id", how="left")


def _leg_return(leg: str, lag: int) -> pl.Expr:
    return pl.col(leg).shift(-(lag + 1)).log() - pl.col(leg).shift(-1).log()


def target_expr(target: TargetDef) -> pl.Expr:
    """One target as a polars expression over a consecutive, date-sorted price frame."""
    expr = _leg_return(target.leg_a, target.lag)
    if target.leg_b is not None:
        expr = expr - _leg_return(target.leg_b, target.lag)
    return expr.alias(target.name)


def compute_targets(prices: pl.DataFrame, defs: Sequence[TargetDef] | None = None) -> pl.DataFrame:
    """All targets for every date_id in `prices` (date_id + target columns, float64)."""
    defs = list(defs) if defs is not None else target_defs()
    frame = reindex_consecutive(prices.sort("date_id"))
    out = frame.select("date_id", *[target_expr(t) for t in defs])
    return out.filter(pl.col("date_id").is_in(prices["date_id"].implode()))


def lagged_label_frames(
    labels: pl.DataFrame, date_ids: Iterable[int], defs: Sequence[TargetDef] | None = None
) -> dict[int, pl.DataFrame]:
    """Kaggle's test_labels_lag_L.csv for each lag: row d holds the lag-L labels of d - L - 1."""
    defs = list(defs) if defs is not None else target_defs()
    days = pl.DataFrame({"date_id": pl.Series(list(date_ids), dtype=pl.Int64)})
    out = {}
    for lag in LAGS:
        names = [t.name for t in defs if t.lag == lag]
        frame = days.with_columns((pl.col("date_id") - lag - 1).alias("label_date_id")).join(
            labels.select("date_id", *names).rename({"date_id": "label_date_id"}),
            on="label_date_id",
            how="left",
        )
        out[lag] = frame.select("date_id", *names, "label_date_id")
    return out


def labels_from_lag_files(lagged: dict[int, pl.DataFrame]) -> pl.DataFrame:
    """Rebuild label rows (date_id = label date) from whatever lag files are present."""
    parts = []
    for frame in lagged.values():
        names = [c for c in frame.columns if c.startswith("target_")]
        long = frame.select(pl.col("label_date_id").alias("date_id"), *names).unpivot(
            index="date_id", variable_name="target", value_name="value"
        )
        parts.append(long)
    if not parts:
        return pl.DataFrame(schema={"date_id": pl.Int64})
    long = (
        pl.concat(parts).drop_nulls("value").unique(["date_id", "target"], keep="first", maintain_order=True)
    )
    wide = long.pivot(on="target", index="date_id", values="value")
    return wide.sort("date_id")
