"""Mitsui gateway: batches as Kaggle sends them, Kaggle's validation, the kit's stricter checks.

Batches: test.csv and lagged_test_labels/test_labels_lag_{1..4}.csv are read with plain
`pl.read_csv` (Kaggle's own dtype inference, so an all-null column arrives as String); for each
unique `date_id` of test.csv, in file order, the batch is (test rows of that date_id, then for
each lag the lag-file rows with that date_id); the row id is the date_id.

Validation, as Kaggle's gateway does it (a failure ends the run):
  * the prediction is a DataFrame-like value with exactly one row
    (Kaggle: INVALID_SUBMISSION "Invalid predictions: expected 1 rows but received N");
  * it is a polars or pandas DataFrame, has no `date_id` column and as many columns as the four
    lag batches have target columns (Kaggle asserts these; a failed assert is reported as
    GATEWAY_RAISED_EXCEPTION with the assertion quoted here).
Kit checks, reported as warnings only: names exactly target_0..target_N-1 in order, float dtypes,
finite values, not a constant row (the metric fails on a scored day with constant predictions).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .core.errors import GatewayRuntimeError, GatewayRuntimeErrorType
from .core.relay import RemoteError

KAGGLE_DATA_DIR = "/kaggle/input/mitsui-commodity-prediction-challenge/"
DATA_DIR_ENV = "KAGGLE_KIT_DATA_DIR"  # set by `python -m offline gateway` for the kernel script
LAGS = (1, 2, 3, 4)
ROW_ID = "date_id"
# Kaggle's one-row primitives: a numpy float32 is none of these (np.float64 is a float), np.int_ is
PRIMITIVES = (int, float, str, bool, np.int_)


def resolve_data_dir(data_paths: tuple | list | None) -> Path:
    """data_paths[0] when given, else Kaggle's input directory: nothing else, as Kaggle's gateway."""
    return Path(data_paths[0]) if data_paths else Path(KAGGLE_DATA_DIR)


def generate_data_batches(data_dir: Path | str) -> Iterator[tuple[tuple[pl.DataFrame, ...], int]]:
    """Yield ((test, lag1, lag2, lag3, lag4), date_id) per unique date_id of test.csv, in order."""
    data_dir = Path(data_dir)
    test = pl.read_csv(data_dir / "test.csv")
    lags = [pl.read_csv(data_dir / "lagged_test_labels" / f"test_labels_lag_{lag}.csv") for lag in LAGS]
    for date_id in test[ROW_ID].unique(maintain_order=True).to_list():
        batch = (test.filter(pl.col(ROW_ID) == date_id), *[f.filter(pl.col(ROW_ID) == date_id) for f in lags])
        yield batch, date_id


def expected_target_columns(data_batch: tuple[pl.DataFrame, ...]) -> list[str]:
    """The lag batches' target columns (all but date_id and label_date_id), in target order."""
    names = [c for frame in data_batch[1:] for c in frame.columns if c not in (ROW_ID, "label_date_id")]
    return sorted(
        names, key=lambda n: int(n.removeprefix("target_")) if n.removeprefix("target_").isdigit() else -1
    )


def _invalid(detail: str) -> GatewayRuntimeError:
    return GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION, detail)


def _failed_assert(assertion: str, detail: str) -> GatewayRuntimeError:
    return GatewayRuntimeError(
        GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION, f"AssertionError: {assertion} ({detail})"
    )


def validate_prediction(prediction: Any, data_batch: tuple[pl.DataFrame, ...], date_id: int) -> None:
    """Kaggle's checks on one answer: the row count first, then type, date_id and column count."""
    import pandas as pd

    where = f"prediction for date_id {date_id}"
    if prediction is None:
        raise _invalid(f"No prediction received ({where})")
    if isinstance(prediction, PRIMITIVES):
        rows = 1
    elif isinstance(prediction, pl.DataFrame | pl.Series | pd.DataFrame | pd.Series):
        rows = len(prediction)
    else:
        raise _invalid(f"Invalid prediction data type, received: {type(prediction)} ({where})")
    if rows != 1:
        raise _invalid(f"Invalid predictions: expected 1 rows but received {rows} ({where})")
    if not isinstance(prediction, pl.DataFrame | pd.DataFrame):
        raise _failed_assert(
            "assert isinstance(prediction, (pd.DataFrame, pl.DataFrame))",
            f"{where} is a {type(prediction).__name__}",
        )
    if ROW_ID in prediction.columns:
        raise _failed_assert("assert 'date_id' not in prediction.columns", f"{where} has a date_id column")
    want = len(expected_target_columns(data_batch))
    if len(prediction.columns) != want:
        raise _failed_assert(
            "assert len(prediction.columns) == len(provided_label_lags.columns)",
            f"{where} has {len(prediction.columns)} columns, the lag batches have {want} target columns",
        )


def as_polars_row(prediction: Any) -> pl.DataFrame:
    """A validated prediction (polars or pandas, 1 row) as a polars frame."""
    if isinstance(prediction, pl.DataFrame):
        return prediction
    return pl.from_pandas(prediction)


def kit_warnings(prediction: Any, expected: list[str]) -> list[tuple[str, str]]:
    """The kit's stricter checks on a valid prediction: (kind, message) pairs, empty when clean."""
    row = as_polars_row(prediction)
    out = []
    if row.columns != expected:
        wrong = [c for c, e in zip(row.columns, expected, strict=False) if c != e]
        out.append(
            (
                "names",
                f"columns are not {expected[0]}..{expected[-1]} in order (first mismatch: {wrong[0] if wrong else '-'})",
            )
        )
    not_float = [c for c, t in row.schema.items() if not t.is_float()]
    if not_float:
        out.append(
            (
                "dtype",
                f"{len(not_float)} non-float column(s), e.g. {not_float[0]} is {row.schema[not_float[0]]}",
            )
        )
    numeric = [c for c, t in row.schema.items() if t.is_numeric()]
    values = row.select(pl.col(numeric).cast(pl.Float64)).to_numpy().ravel() if numeric else np.array([])
    bad = int((~np.isfinite(values)).sum()) + row.width - len(numeric)
    if bad:
        out.append(("not_finite", f"{bad} value(s) are null, NaN, infinite or not numbers"))
    finite = values[np.isfinite(values)]
    if finite.size == values.size and finite.size > 0 and np.all(finite == finite[0]):
        out.append(
            (
                "constant",
                f"constant row (every value {float(finite[0]):g}); the metric fails on such a scored day",
            )
        )
    return out


def assemble_submission(predictions: list[Any], date_ids: list[int]) -> pl.DataFrame:
    """date_id first, then the prediction columns, one row per answered date_id.

    As Kaggle combines them: pandas answers with pd.concat (columns unioned, gaps null), polars
    answers with a relaxed vertical concat (differing columns fail the run).
    """
    import pandas as pd

    if not predictions:
        return pl.DataFrame(schema={ROW_ID: pl.Int64})
    if all(isinstance(p, pd.DataFrame) for p in predictions):
        combined = pl.from_pandas(pd.concat(predictions, ignore_index=True))
    elif all(isinstance(p, pl.DataFrame) for p in predictions):
        try:
            combined = pl.concat(predictions, how="vertical_relaxed")
        except pl.exceptions.SchemaError:
            raise _invalid("Inconsistent prediction types") from None
        except (pl.exceptions.ComputeError, pl.exceptions.ShapeError, pl.exceptions.ColumnNotFoundError):
            raise _invalid("Inconsistent prediction column counts") from None
    else:  # Kaggle's pd.concat / pl.concat raise TypeError on a mix: an unhandled gateway exception
        raise GatewayRuntimeError(
            GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION,
            "TypeError: the answers mix pandas and polars DataFrames; they cannot be concatenated",
        )
    return combined.insert_column(0, pl.Series(ROW_ID, date_ids, dtype=pl.Int64))


def remote_failure(exc: RemoteError) -> GatewayRuntimeError:
    """Map a failure the inference server reported to Kaggle's error kind."""
    if exc.error_type == "SERVER_MISSING_ENDPOINT":
        return GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_MISSING_ENDPOINT, exc.message)
    return GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_RAISED_EXCEPTION, exc.message)


class MitsuiGateway:
    """The gateway loop: send each batch to `send('predict', *batch)`, validate, collect, write."""

    def __init__(self, data_paths: tuple | list | None = None, send: Callable[..., Any] | None = None):
        self.data_paths = data_paths
        self.send = send
        self.warnings: list[tuple[int, str, str]] = []  # (date_id, kind, message)
        self.date_ids: list[int] = []
        self.rows: list[Any] = []  # validated answers as received (pandas or polars)

    def predict(self, data_batch: tuple[pl.DataFrame, ...], date_id: int) -> Any:
        try:
            return self.send("predict", *data_batch)
        except RemoteError as exc:
            raise remote_failure(exc) from None

    def handle(self, prediction: Any, data_batch: tuple[pl.DataFrame, ...], date_id: int) -> None:
        validate_prediction(prediction, data_batch, date_id)
        self.warnings += [
            (date_id, k, m) for k, m in kit_warnings(prediction, expected_target_columns(data_batch))
        ]
        self.rows.append(prediction)
        self.date_ids.append(date_id)

    def run(self, submission_path: Path | str = "submission.parquet") -> pl.DataFrame:
        """Run every batch and write the submission (Kaggle writes it into the working directory)."""
        try:
            data_dir = resolve_data_dir(self.data_paths)
            for data_batch, date_id in generate_data_batches(data_dir):
                self.handle(self.predict(data_batch, date_id), data_batch, date_id)
            submission = assemble_submission(self.rows, self.date_ids)
            submission.write_parquet(submission_path)
        except GatewayRuntimeError:
            raise
        except Exception:  # as Kaggle's run(): anything else is the gateway's own exception
            raise GatewayRuntimeError(
                GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION, traceback.format_exc()
            ) from None
        return submission
