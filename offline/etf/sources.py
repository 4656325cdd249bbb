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


def load_source(source: str, config) -> tuple[pl.DataFrame, dict]:
    """The raw frame for `source` (an index in INDEXES or a competition directory) and a description of it."""
    if source in INDEXES:
        frame = load_index(source).filter(
            pl.col("date").is_between(pl.lit(config.start).str.to_date(), pl.lit(config.end).str.to_date())
        )
        return frame, {
            "source": source,
            "market": INDEXES[source],
            "defensive": [],
            "vix": "arch.data.vix" if source == "sp500" else "none (realized volatility stands in)",
        }
    path = Path(source)
    if not path.is_dir():
        names = "', '".join(INDEXES)
        raise UserError(f"--source must be '{names}' or a competition directory; {source!r} is neither")
    from offline.data.competition import load_competition

    frame, info = competition_frame(
        load_competition(path).prices(), tuple(config.market_tickers), tuple(config.defensive_tickers)
    )
    return frame, {"source": str(path), **info}
