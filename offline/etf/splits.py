"""Time splits fixed by the config: train/validation/test blocks, purged label rows, expanding CV folds."""

from __future__ import annotations

import numpy as np
import polars as pl

from offline.errors import UserError

BLOCKS = ("train", "validation", "test")


def assign_blocks(frame: pl.DataFrame, config) -> pl.DataFrame:
    """Add `block`: by calendar date (S&P 500) or by date_id fraction (competition data, no dates)."""
    if frame["date"].null_count() < frame.height:
        date = pl.col("date")
        block = (
            pl.when(date <= pl.lit(config.train_end).str.to_date())
            .then(pl.lit("train"))
            .when(date <= pl.lit(config.validation_end).str.to_date())
            .then(pl.lit("validation"))
            .otherwise(pl.lit("test"))
        )
    else:
        lo, hi = frame["date_id"].min(), frame["date_id"].max()
        span = hi - lo + 1
        cut1 = lo + config.train_frac * span
        cut2 = lo + (config.train_frac + config.validation_frac) * span
        d = pl.col("date_id")
        block = (
            pl.when(d < cut1)
            .then(pl.lit("train"))
            .when(d < cut2)
            .then(pl.lit("validation"))
            .otherwise(pl.lit("test"))
        )
    return frame.with_columns(block.alias("block"))


def mark_label_rows(frame: pl.DataFrame, purge: int) -> pl.DataFrame:
    """Add `label_ok`: the row has a label whose window (next `purge` rows) stays inside its own block."""
    frame = frame.with_row_index("_i")
    last = pl.col("_i").max().over("block")
    return frame.with_columns(
        (pl.col("crash").is_not_null() & (pl.col("_i") + purge <= last)).alias("label_ok")
    ).drop("_i")


def expanding_folds(n: int, folds: int, purge: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Walk-forward folds over n time-ordered rows: train on everything before the fold minus `purge` rows."""
    chunk = n // (folds + 1)
    if chunk <= purge:
        raise UserError(f"{n} training rows are too few for {folds} folds with a purge gap of {purge} rows")
    out = []
    for k in range(1, folds + 1):
        start, stop = k * chunk, (n if k == folds else (k + 1) * chunk)
        out.append((np.arange(0, start - purge), np.arange(start, stop)))
    return out
