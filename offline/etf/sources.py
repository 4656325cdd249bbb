"""Raw daily market data for the pipeline: an index shipped in arch, or a competition directory's ETFs.

Both give one frame: date_id, date (null for competition data), open/high/low/close/volume of the
market, vix (null where absent) and def_ret, the defensive asset's daily return (null: cash).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kaggle_kernel.crash import FIELDS, RAW_COLUMNS, market_frame, ticker_columns
from offline.errors import DataError, UserError

__all__ = [
    "FIELDS",
    "INDEXES",
    "RAW_COLUMNS",
    "competition_frame",
    "load_csv",
    "load_index",
    "load_source",
    "load_sp500",
]

# Real daily indexes shipped inside the `arch` package (1999-2018); only the S&P 500 has a VIX.
INDEXES = {"sp500": "S&P 500 (arch.data.sp500)", "nasdaq": "NASDAQ Composite (arch.data.nasdaq)"}


def load_index(name: str) -> pl.DataFrame:
    """OHLCV of an index in INDEXES; vix from arch.data.vix (2014-2018) for the S&P 500, else null.

    A zero volume is taken as a missing print and replaced by the previous day's volume.
    """
    import importlib

    if name not in INDEXES:
        raise UserError(f"unknown index {name!r}; known: {', '.join(INDEXES)}")
    index = pl.from_pandas(importlib.import_module(f"arch.data.{name}").load().reset_index())
    if name == "sp500":
        import arch.data.vix

        vix = pl.from_pandas(arch.data.vix.load().reset_index())
        vix = vix.select(pl.col("Date").cast(pl.Date).alias("date"), pl.col("vix").cast(pl.Float64))
    else:
        vix = pl.DataFrame(schema={"date": pl.Date, "vix": pl.Float64})
    index = index.select(
        pl.col("Date").cast(pl.Date).alias("date"),
        *(pl.col(c.title()).cast(pl.Float64).alias(c) for c in FIELDS[:3]),
        pl.col("Adj Close").cast(pl.Float64).alias("close"),
        pl.when(pl.col("Volume") > 0).then(pl.col("Volume")).cast(pl.Float64).forward_fill().alias("volume"),
    )
    frame = index.join(vix, on="date", how="left").sort("date")
    return frame.with_row_index("date_id").select(
        pl.col("date_id").cast(pl.Int64),
        "date",
        *FIELDS,
        pl.col("vix").fill_nan(None),
        pl.lit(None, dtype=pl.Float64).alias("def_ret"),
    )


def load_sp500() -> pl.DataFrame:
    """S&P 500 OHLCV 1999-2018 and VIX 2014-2018 as shipped inside the `arch` package."""
    return load_index("sp500")


def _ticker_columns(prices: pl.DataFrame, ticker: str) -> dict[str, str] | None:
    cols = ticker_columns(ticker)
    if not all(c in prices.columns for c in cols.values()):
        return None
    if prices[cols["close"]].drop_nulls().len() == 0:
        return None
    return cols


def competition_frame(
    prices: pl.DataFrame, market: tuple[str, ...], defensive: tuple[str, ...], name: str = "train.csv"
) -> tuple[pl.DataFrame, dict]:
    """Market OHLCV and defensive return from a competition price frame (date_id + feature columns).

    Picks the first market ticker and the defensive tickers with any data here; the frame itself is
    kaggle_kernel.crash.market_frame (rows without a market close dropped). Info names the tickers.
    """
    market_cols = next(((t, c) for t in market if (c := _ticker_columns(prices, t))), None)
    if market_cols is None:
        wanted = ", ".join(f"US_Stock_{t}_adj_close" for t in market)
        raise DataError(name, f"no market ETF with data; looked for {wanted}")
    ticker = market_cols[0]
    bonds = [
        t
        for t in defensive
        if f"US_Stock_{t}_adj_close" in prices.columns
        and prices[f"US_Stock_{t}_adj_close"].drop_nulls().len() > 0
    ]
    frame = market_frame(prices, ticker, bonds)
    return frame, {"market": ticker, "defensive": bonds}


# Stand-ins for columns a CSV may lack, each computed from what is there (named in the report).
STAND_INS = {
    "Open": "the close (open-based ranges vanish)",
    "High": "the close (true range, hence ATR, becomes the absolute close-to-close move)",
    "Low": "the close (true range, hence ATR, becomes the absolute close-to-close move)",
    "Volume": "none: volume features are missing (no candidate reads them)",
    "VIX": "21-day realized volatility of the close, in percent (vix_filled)",
}
CSV_COLUMNS = ("Date", "Close", "Open", "High", "Low", "Volume", "VIX")


def _bad_row(path: Path, column: str, mask: pl.Series, message: str) -> None:
    rows = mask.arg_true()
    if rows.len():
        # CSV line of the first bad row: the header is line 1
        raise DataError(
            str(path),
            f"{message} ({rows.len()} rows; first at line {int(rows[0]) + 2})",
            column,
            int(rows[0]) + 1,
        )


# A date at the start of the cell (a time or time zone after it, as pandas writes timestamps, is ignored)
_DATE_TOKEN = r"^(\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}/\d{1,2}/\d{4})"
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y")
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"  # 2,506.85 as some exports write it


def _number(column: str) -> pl.Expr:
    """A text column as Float64 (null where it is not a number); 2,506.85 reads as 2506.85."""
    v = pl.col(column).str.strip_chars()
    return (
        pl.when(v.str.contains(_THOUSANDS))
        .then(v.str.replace_all(",", ""))
        .otherwise(v)
        .cast(pl.Float64, strict=False)
    )


def _canonical_columns(path: Path, text: pl.DataFrame) -> pl.DataFrame:
    """`text` with its CSV_COLUMNS named as CSV_COLUMNS, matched without regard to case or spaces."""
    names: dict[str, str] = {}
    for col in text.columns:
        want = next((c for c in CSV_COLUMNS if c.lower() == col.strip().lower()), None)
        if want is None:
            continue
        if want in names:
            raise DataError(str(path), f"columns {names[want]!r} and {col!r} both read as {want!r}", want)
        names[want] = col
    return text.select(pl.col(col).alias(want) for want, col in names.items())


def load_csv(path: Path, min_rows: int = 0) -> tuple[pl.DataFrame, dict[str, str]]:
    """Daily data from a CSV with Date and Close, optionally Open/High/Low/Volume/VIX (any case);
    (frame, stand-ins used). A date may carry a time after it; a file newest first is read oldest first.

    Bad input is a DataError naming the file, column and row: a missing file or column, an unparseable
    date, a missing or non-positive price, dates not increasing, fewer rows than the longest window.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--source {path}: no such CSV file")
    try:
        text = _canonical_columns(path, pl.read_csv(path, infer_schema=False))
    except pl.exceptions.PolarsError as exc:
        raise DataError(str(path), f"not a readable CSV ({exc})") from None
    for need in ("Date", "Close"):
        if need not in text.columns:
            raise DataError(str(path), f"missing required column; has {text.columns}", need)
    token = pl.col("Date").str.strip_chars().str.extract(_DATE_TOKEN)
    date = pl.coalesce(*(token.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS))
    present = [c for c in CSV_COLUMNS[1:] if c in text.columns]
    frame = text.select(date.alias("date"), *(_number(c) for c in present))
    _bad_row(path, "Date", frame["date"].is_null(), "unparseable date (expected YYYY-MM-DD)")
    for c in present:
        raw_null = text[c].is_null() | (text[c].str.strip_chars() == "")
        _bad_row(path, c, frame[c].is_null() & ~raw_null, "not a number")
        if c == "Close":
            _bad_row(path, c, frame[c].is_null(), "missing close")
        if c in ("Open", "High", "Low", "Close"):
            _bad_row(path, c, frame[c].fill_null(1.0) <= 0, "non-positive price")
    step = frame["date"].diff().dt.total_days()
    if frame.height > 1 and (step.drop_nulls() < 0).all():
        frame = frame.reverse()  # newest first, as some exports write it
    else:
        _bad_row(path, "Date", (step <= 0).fill_null(False), "dates not increasing")
    if frame.height < min_rows:
        raise DataError(
            str(path), f"{frame.height} rows; the longest window and the label need at least {min_rows}"
        )
    close = pl.col("Close")
    out = frame.with_row_index("date_id").select(
        pl.col("date_id").cast(pl.Int64),
        "date",
        *(
            (pl.col(c).fill_null(close) if c in present else close).alias(c.lower())
            for c in ("Open", "High", "Low")
        ),
        close.alias("close"),
        (pl.col("Volume") if "Volume" in present else pl.lit(None, dtype=pl.Float64)).alias("volume"),
        (pl.col("VIX") if "VIX" in present else pl.lit(None, dtype=pl.Float64)).alias("vix"),
        pl.lit(None, dtype=pl.Float64).alias("def_ret"),
    )
    return out, {c: STAND_INS[c] for c in STAND_INS if c not in present}


def _date_slice(frame: pl.DataFrame, config) -> pl.DataFrame:
    d = pl.col("date")
    if config.start:
        frame = frame.filter(d >= pl.lit(config.start).str.to_date())
    if config.end:
        frame = frame.filter(d <= pl.lit(config.end).str.to_date())
    return frame


def load_source(source: str, config) -> tuple[pl.DataFrame, dict]:
    """The raw frame for `source` (an index in INDEXES, a CSV file or a competition directory) and a description."""
    if source in INDEXES:
        frame = _date_slice(load_index(source), config)
        stand = {
            "VIX": STAND_INS["VIX"]
            + (" where arch's VIX (2014-2018) is missing" if source == "sp500" else "")
        }
        return frame, {"source": source, "market": INDEXES[source], "defensive": [], "stand_ins": stand}
    path = Path(source)
    if path.suffix.lower() == ".csv":
        from offline.etf.indicators import WARMUP

        frame, stand = load_csv(path, min_rows=WARMUP + 2 * config.horizon + 60)
        return _date_slice(frame, config), {
            "source": str(path),
            "market": path.name,
            "defensive": [],
            "stand_ins": stand,
        }
    if not path.is_dir():
        names = "', '".join(INDEXES)
        raise UserError(
            f"--source must be '{names}', a CSV file or a competition directory; {source!r} is none"
        )
    from offline.data.competition import load_competition

    frame, info = competition_frame(
        load_competition(path).prices(), tuple(config.market_tickers), tuple(config.defensive_tickers)
    )
    return frame, {"source": str(path), **info, "stand_ins": {"VIX": STAND_INS["VIX"]}}
