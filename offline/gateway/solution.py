"""The answer key for a gateway run: true targets of test.csv's scored days, from the best source.

Sources, cell by cell in this priority: train_labels.csv, labels rebuilt from the lag files,
targets computed from the prices (train + test). Scored days (is_scored) with no known label at
all are left out and counted, since the metric cannot score a day without labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from offline.data.competition import Competition
from offline.data.targets import compute_targets, labels_from_lag_files


@dataclass
class Solution:
    """`frame`: date_id + targets for the scorable days; the rest says where the labels came from."""

    frame: pl.DataFrame
    n_is_scored: int
    unknown_date_ids: list[int]
    cells_by_source: dict[str, int] = field(default_factory=dict)


def _aligned(source: pl.DataFrame, days: pl.DataFrame, names: list[str]) -> np.ndarray:
    cols = [
        pl.col(c).cast(pl.Float64) if c in source.columns else pl.lit(None, pl.Float64).alias(c)
        for c in names
    ]
    frame = days.join(
        source.select(pl.col("date_id").cast(pl.Int64), *[c for c in names if c in source.columns]),
        on="date_id",
        how="left",
    ).select(cols)
    values = frame.to_numpy().astype(np.float64)
    values[~np.isfinite(values)] = np.nan  # log of a zero or negative price is not a label
    return values


def scored_solution(comp: Competition) -> Solution:
    """Labels for the is_scored days of test.csv, combined from train_labels, lag files and prices."""
    names = comp.target_pairs["target"].to_list()
    scored = comp.test.filter(pl.col("is_scored"))["date_id"].unique().sort()
    days = pl.DataFrame({"date_id": scored.cast(pl.Int64)})
    sources: dict[str, pl.DataFrame] = {}
    if comp.train_labels is not None:
        sources["train_labels"] = comp.train_labels
    if comp.lagged:
        sources["lag_files"] = labels_from_lag_files(comp.lagged)
    sources["prices"] = compute_targets(comp.prices())
    truth = np.full((days.height, len(names)), np.nan)
    cells = {}
    for name, source in sources.items():
        values = _aligned(source, days, names) if source.height else np.full_like(truth, np.nan)
        take = np.isnan(truth) & ~np.isnan(values)
        truth[take] = values[take]
        cells[name] = int(take.sum())
    known = ~np.isnan(truth).all(axis=1)
    frame = pl.DataFrame(truth[known], schema=names, orient="row").insert_column(
        0, days["date_id"].filter(pl.Series(known))
    )
    unknown = days["date_id"].filter(pl.Series(~known)).to_list()
    return Solution(frame=frame, n_is_scored=days.height, unknown_date_ids=unknown, cells_by_source=cells)
