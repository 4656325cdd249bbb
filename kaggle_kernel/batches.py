"""Read the gateway's batches defensively: any column order, missing or extra columns, strings
where numbers belong, repeated or out-of-order date_ids, several rows for one day."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import polars as pl

_TARGET = re.compile(r"^target_(\d+)$")


def as_polars(frame) -> pl.DataFrame:
    """A polars DataFrame from polars or pandas input (None or anything else -> empty frame)."""
    if isinstance(frame, pl.DataFrame):
        return frame
    if frame is None:
        return pl.DataFrame()
    try:
        return pl.from_pandas(frame)
    except Exception:
        return pl.DataFrame({str(k): list(v) for k, v in dict(frame).items()})


def numeric(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """rows x columns float64; absent columns and unparseable cells are NaN."""
    have = set(frame.columns)  # frame.columns builds a new list on every access
    present = [c for c in columns if c in have]
    out = np.full((frame.height, len(columns)), np.nan)
    if present and frame.height:
        block = frame.select(present).cast(pl.Float64, strict=False).to_numpy()
        pos = {c: i for i, c in enumerate(columns)}
        out[:, [pos[c] for c in present]] = block
    return out


def date_ids(frame: pl.DataFrame, column: str = "date_id") -> np.ndarray | None:
    if column not in frame.columns or frame.height == 0:
        return None
    return frame[column].cast(pl.Int64, strict=False).to_numpy().astype(np.float64)


def combine_days(days: np.ndarray, rows: np.ndarray) -> dict[int, np.ndarray]:
    """One row per day: later rows of the same day fill (and override) earlier ones cell by cell."""
    out: dict[int, np.ndarray] = {}
    for d, row in zip(days, rows, strict=True):
        if np.isnan(d):
            continue
        prev = out.get(int(d))
        out[int(d)] = row.copy() if prev is None else np.where(np.isnan(row), prev, row)
    return out


def label_columns(frame: pl.DataFrame, n_targets: int) -> tuple[list[str], np.ndarray]:
    """The frame's target_<i> columns with 0 <= i < n_targets, and their indices."""
    names, idx = [], []
    for c in frame.columns:
        m = _TARGET.match(c)
        if m and int(m.group(1)) < n_targets:
            names.append(c)
            idx.append(int(m.group(1)))
    return names, np.array(idx, dtype=np.int64)
