"""Read the gateway's batches defensively: any column order, missing or extra columns, strings
where numbers belong, repeated or out-of-order date_ids, several rows for one day."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import polars as pl
from polars.exceptions import PanicException

# What the kernel catches: a polars panic on an odd input (a dtype numpy lacks, ...) derives from
# BaseException, not Exception, and would otherwise escape `predict` and fail the submission.
FAILURES = (Exception, PanicException)
# numeric dtypes numpy holds as they are (128-bit integers and decimals it does not)
_TO_NUMPY = frozenset(
    (pl.Float64, pl.Float32, pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt64, pl.UInt32, pl.UInt16, pl.UInt8)
)
_TARGET = re.compile(r"^target_(\d+)$")
MAX_DATE_ID = 2**31  # a date_id at least this large in size is no trading-day index: missing


def as_polars(frame) -> pl.DataFrame:
    """A polars DataFrame in one chunk from a polars (eager or lazy) or pandas frame or a mapping of
    columns; None or anything else -> an empty frame."""
    if isinstance(frame, pl.DataFrame):
        return _one_chunk(frame)
    if frame is None:
        return pl.DataFrame()
    for read in (_collect, pl.from_pandas, _from_mapping):
        try:
            return _one_chunk(read(frame))
        except FAILURES:
            continue
    return pl.DataFrame()


def _one_chunk(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame glued from many pieces (pl.concat of rows) is read column by column piece by piece,
    seconds for thousands of rows: rechunked once, it is read in one pass."""
    return frame.rechunk() if frame.width and frame.n_chunks() > 1 else frame


def _collect(frame) -> pl.DataFrame:
    if not isinstance(frame, pl.LazyFrame):
        raise TypeError("not a LazyFrame")
    return frame.collect()


def _from_mapping(frame) -> pl.DataFrame:
    return pl.DataFrame({str(k): list(v) for k, v in dict(frame).items()})


def numeric(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """rows x columns float64; absent columns and unparseable cells are NaN."""
    if frame.height == 1:  # the gateway's usual batch: one row, read in one call
        fast = _one_row(frame, tuple(columns))
        if fast is not None:
            return fast
    schema = frame.schema
    present = [c for c in columns if c in schema]
    out = np.full((frame.height, len(columns)), np.nan)
    if present and frame.height:
        block = frame.select(present)
        if not all(schema[c] in _TO_NUMPY for c in present):  # casting 250 columns costs ms: only when needed
            block = pl.DataFrame([_as_float(block[c]) for c in present])
        values = block.to_numpy()
        if values.dtype != np.float64:
            values = values.astype(np.float64)
        if len(present) == len(columns):
            return values
        pos = {c: i for i, c in enumerate(columns)}
        out[:, [pos[c] for c in present]] = values
    return out


def _as_float(column: pl.Series) -> pl.Series:
    """`column` as Float64: numbers and booleans cast, anything else (text, categorical, dates)
    through its text; null where that is not a number, and all null when it cannot be read at all."""
    try:
        if column.dtype.is_numeric() or column.dtype == pl.Boolean:
            return column.cast(pl.Float64, strict=False)
        return column.cast(pl.String, strict=False).cast(pl.Float64, strict=False)
    except FAILURES:
        return pl.Series(column.name, [None] * len(column), dtype=pl.Float64)


def _one_row(frame: pl.DataFrame, columns: tuple[str, ...]) -> np.ndarray | None:
    """The single row as floats, or None when a cell is not a number (the caller then casts)."""
    pos = _positions(tuple(frame.columns), columns)
    row = np.array(frame.row(0) + (None,), dtype=object)[pos]  # position -1 picks the trailing None
    row[np.equal(row, None)] = np.nan
    try:
        return row.astype(np.float64)[None, :]
    except FAILURES:  # a cell that is no number (or whose float() fails in its own way)
        return None


@lru_cache(maxsize=64)
def _positions(have: tuple[str, ...], want: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(have)}
    return np.array([index.get(c, -1) for c in want], dtype=np.int64)


def date_ids(frame: pl.DataFrame, column: str = "date_id") -> np.ndarray | None:
    if column not in frame.columns or frame.height == 0:
        return None
    ids = frame[column]
    if ids.dtype in _TO_NUMPY and ids.dtype.is_integer():  # the gateway's: read as they are (null: NaN)
        days = ids.to_numpy().astype(np.float64)
    else:
        days = _as_float(ids).cast(pl.Int64, strict=False).to_numpy().astype(np.float64)
    return np.where(np.abs(days) < MAX_DATE_ID, days, np.nan)


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
    return _label_columns(tuple(frame.columns), n_targets)


@lru_cache(maxsize=64)  # the gateway sends the same four layouts every day
def _label_columns(columns: tuple[str, ...], n_targets: int) -> tuple[list[str], np.ndarray]:
    names, idx = [], []
    for c in columns:
        m = _TARGET.match(c)
        if m and int(m.group(1)) < n_targets:
            names.append(c)
            idx.append(int(m.group(1)))
    return names, np.array(idx, dtype=np.int64)
