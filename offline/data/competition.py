"""Load and validate a competition directory in Kaggle's layout; every error names file, column and row."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kaggle_kernel.schema import LAGS, parse_pair
from offline.errors import DataError

TRAIN = "train.csv"
TRAIN_LABELS = "train_labels.csv"
TARGET_PAIRS = "target_pairs.csv"
TEST = "test.csv"
LAG_DIR = "lagged_test_labels"


def lag_file(lag: int) -> str:
    return f"{LAG_DIR}/test_labels_lag_{lag}.csv"


@dataclass
class Competition:
    """A validated competition directory. Absent optional files are None (or missing from `lagged`)."""

    path: Path
    target_pairs: pl.DataFrame
    train: pl.DataFrame | None = None
    train_labels: pl.DataFrame | None = None
    test: pl.DataFrame | None = None
    lagged: dict[int, pl.DataFrame] = field(default_factory=dict)

    @property
    def feature_columns(self) -> list[str]:
        frame = self.train if self.train is not None else self.test
        return [c for c in frame.columns if c not in ("date_id", "is_scored")]

    def prices(self) -> pl.DataFrame:
        """Train and test rows as one frame, one row per date_id (train wins on overlap), sorted."""
        parts = [
            f.select(["date_id", *self.feature_columns]) for f in (self.train, self.test) if f is not None
        ]
        return pl.concat(parts).unique("date_id", keep="first", maintain_order=True).sort("date_id")


def _check_field_counts(path: Path, name: str) -> None:
    """Every line has as many fields as the header: a truncated row is an error, not nulls."""
    lines = pl.read_csv(
        path, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"], infer_schema=False
    )
    counts = lines.select(pl.col("line").str.count_matches(",", literal=True).alias("n"))["n"]
    bad = (counts != counts[0]).arg_true()
    if len(bad):
        i = int(bad[0])
        raise DataError(
            name,
            f"has {counts[i] + 1} fields, the header has {counts[0] + 1} (a cut or damaged line)",
            row=i + 1,
        )


def _read_csv(path: Path, name: str, overrides: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    _check_field_counts(path, name)
    try:
        return pl.read_csv(path, schema_overrides=overrides, infer_schema_length=None)
    except pl.exceptions.ComputeError as exc:
        # polars names the column and the bad value; add the file
        raise DataError(name, f"cannot parse as numbers: {str(exc).splitlines()[0]}") from None
    except pl.exceptions.PolarsError as exc:
        raise DataError(name, str(exc).splitlines()[0]) from None


def _first_bad_row(frame: pl.DataFrame, column: str, dtype: pl.DataType) -> tuple[int, str]:
    bad = frame.with_row_index("_row").filter(
        pl.col(column).is_not_null() & pl.col(column).cast(dtype, strict=False).is_null()
    )
    row = bad.row(0, named=True)
    return int(row["_row"]) + 2, row[column]  # +2: header line, 1-based


def _cast_numeric(frame: pl.DataFrame, name: str, columns: list[str], dtype: pl.DataType) -> pl.DataFrame:
    """Cast columns to `dtype`; the first unparseable cell is reported with its file line."""
    for column in columns:
        if frame.schema[column] == dtype:
            continue
        cast = frame[column].cast(dtype, strict=False)
        if cast.null_count() != frame[column].null_count():
            line, value = _first_bad_row(frame, column, dtype)
            raise DataError(name, f"value {value!r} is not a number", column=column, row=line)
        frame = frame.with_columns(cast.alias(column))
    return frame


def _check_date_id(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    if "date_id" not in frame.columns:
        raise DataError(name, "has no date_id column")
    frame = _cast_numeric(frame, name, ["date_id"], pl.Int64)
    nulls = frame["date_id"].is_null()
    if nulls.any():
        raise DataError(name, "date_id is empty", column="date_id", row=int(nulls.arg_true()[0]) + 2)
    steps = frame["date_id"].diff().fill_null(1)
    if (steps <= 0).any():
        i = int((steps <= 0).arg_true()[0])
        raise DataError(
            name,
            f"date_id {frame['date_id'][i]} follows {frame['date_id'][i - 1]}; must be strictly increasing",
            column="date_id",
            row=i + 2,
        )
    return frame


def read_prices(path: Path | str, name: str | None = None) -> pl.DataFrame:
    """Read train.csv/test.csv: date_id Int64, features Float64, is_scored Boolean if present."""
    path = Path(path)
    name = name or path.name
    header = pl.read_csv(path, n_rows=0).columns
    overrides: dict[str, pl.DataType] = {c: pl.String for c in header}
    frame = _read_csv(path, name, overrides)
    frame = _check_date_id(frame, name)
    features = [c for c in frame.columns if c not in ("date_id", "is_scored")]
    frame = _cast_numeric(frame, name, features, pl.Float64)
    if "is_scored" in frame.columns:
        text = frame["is_scored"].str.to_lowercase()
        ok = text.is_in(["true", "false"])
        if not ok.all():
            i = int((~ok).arg_true()[0])
            raise DataError(
                name, f"is_scored {frame['is_scored'][i]!r} is not true/false", column="is_scored", row=i + 2
            )
        frame = frame.with_columns((text == "true").alias("is_scored"))
    return frame


def read_target_pairs(path: Path) -> pl.DataFrame:
    """Read target_pairs.csv and check names, lags and pair syntax."""
    frame = _read_csv(path, TARGET_PAIRS)
    missing = {"target", "lag", "pair"} - set(frame.columns)
    if missing:
        raise DataError(TARGET_PAIRS, f"missing columns {sorted(missing)}")
    frame = _cast_numeric(frame, TARGET_PAIRS, ["lag"], pl.Int64)
    for i, row in enumerate(frame.iter_rows(named=True)):
        if row["target"] != f"target_{i}":
            raise DataError(TARGET_PAIRS, f"expected target_{i}, found {row['target']!r}", "target", i + 2)
        if row["lag"] not in LAGS:
            raise DataError(TARGET_PAIRS, f"lag {row['lag']} not in {LAGS}", "lag", i + 2)
        try:
            parse_pair(row["pair"] or "")
        except ValueError as exc:
            raise DataError(TARGET_PAIRS, str(exc), "pair", i + 2) from None
    return frame


def _read_labels(path: Path, name: str, expected: list[str], extra: tuple[str, ...] = ()) -> pl.DataFrame:
    header = pl.read_csv(path, n_rows=0).columns
    frame = _read_csv(path, name, {c: pl.String for c in header})
    frame = _check_date_id(frame, name)
    got = [c for c in frame.columns if c not in ("date_id", *extra)]
    if got != expected:
        missing = sorted(set(expected) - set(got), key=_target_order)
        unexpected = sorted(set(got) - set(expected))
        detail = []
        if missing:
            detail.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if not detail:
            detail.append("columns out of target order")
        raise DataError(name, "target columns disagree with target_pairs.csv: " + "; ".join(detail))
    frame = _cast_numeric(frame, name, got, pl.Float64)
    return _cast_numeric(frame, name, list(extra), pl.Int64)


def _target_order(name: str) -> int:
    try:
        return int(name.removeprefix("target_"))
    except ValueError:
        return -1


def _check_legs(pairs: pl.DataFrame, columns: list[str], name: str) -> None:
    have = set(columns)
    for i, pair in enumerate(pairs["pair"]):
        for leg in parse_pair(pair):
            if leg is not None and leg not in have:
                raise DataError(TARGET_PAIRS, f"leg {leg!r} is not a column of {name}", "pair", i + 2)


def _column_mismatch(train_cols: list[str], test_cols: list[str]) -> None:
    """Name the file that lacks a column the other has (or say the order differs)."""
    for name, have, other, other_name in (
        (TRAIN, train_cols, test_cols, TEST),
        (TEST, test_cols, train_cols, TRAIN),
    ):
        lacking = [c for c in other if c not in set(have)]
        if lacking:
            more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
            raise DataError(name, f"lacks column(s) {', '.join(lacking[:3])}{more} that {other_name} has")
    raise DataError(TEST, f"has the feature columns of {TRAIN} in a different order")


def load_competition(path: Path | str, require_legs: bool = True) -> Competition:
    """Read every competition file present in `path` and validate them against each other.

    require_legs=False accepts a pair leg absent from the prices (training then falls back to a
    baseline for its targets, `data verify` cannot recompute their labels); all else is checked.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(str(path), "is not a directory")
    if not (path / TARGET_PAIRS).exists():
        raise DataError(str(path / TARGET_PAIRS), "required file is missing")
    if not (path / TRAIN).exists() and not (path / TEST).exists():
        raise DataError(str(path), f"needs {TRAIN} or {TEST}; neither is present")
    pairs = read_target_pairs(path / TARGET_PAIRS)
    comp = Competition(path=path, target_pairs=pairs)
    if (path / TRAIN).exists():
        comp.train = read_prices(path / TRAIN, TRAIN)
    if (path / TEST).exists():
        comp.test = read_prices(path / TEST, TEST)
        if "is_scored" not in comp.test.columns:
            raise DataError(TEST, "has no is_scored column")
    if comp.train is not None and comp.test is not None:
        train_cols, test_cols = comp.train.columns[1:], [c for c in comp.test.columns[1:] if c != "is_scored"]
        if train_cols != test_cols:
            _column_mismatch(train_cols, test_cols)
    if require_legs:
        _check_legs(pairs, comp.feature_columns, TRAIN if comp.train is not None else TEST)
    names = pairs["target"].to_list()
    if (path / TRAIN_LABELS).exists():
        comp.train_labels = _read_labels(path / TRAIN_LABELS, TRAIN_LABELS, names)
    lags = pairs["lag"].to_list()
    for lag in LAGS:
        file = path / lag_file(lag)
        if not file.exists():
            continue
        expected = [n for n, lg in zip(names, lags, strict=True) if lg == lag]
        frame = _read_labels(file, lag_file(lag), expected, extra=("label_date_id",))
        wrong = frame.filter(pl.col("label_date_id") != pl.col("date_id") - lag - 1)
        if wrong.height:
            row = frame.with_row_index("_r").filter(pl.col("label_date_id") != pl.col("date_id") - lag - 1)
            raise DataError(
                lag_file(lag),
                f"label_date_id {wrong['label_date_id'][0]} != date_id {wrong['date_id'][0]} - {lag} - 1",
                "label_date_id",
                int(row["_r"][0]) + 2,
            )
        comp.lagged[lag] = frame
    return comp
