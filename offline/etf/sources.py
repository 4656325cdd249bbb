"""Raw daily market data for the pipeline: arch's S&P 500 + VIX, or a competition directory's ETFs.

Both give one frame: date_id, date (null for competition data), open/high/low/close/volume of the
market, vix (null where absent) and def_ret, the defensive asset's daily return (null: cash).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from offline.errors import DataError, UserError

RAW_COLUMNS = ("date_id", "date", "open", "high", "low", "close", "volume", "vix", "def_ret")
FIELDS = ("open", "high", "low", "close", "volume")


def load_sp500() -> pl.DataFrame:
    """S&P 500 OHLCV 1999-2018 and VIX 2014-2018 as shipped inside the `arch` package."""
    import arch.data.sp500
    import arch.data.vix

    spx = pl.from_pandas(arch.data.sp500.load().reset_index())
    vix = pl.from_pandas(arch.data.vix.load().reset_index())
    spx = spx.select(
        pl.col("Date").cast(pl.Date).alias("date"),
        *(pl.col(c.title()).cast(pl.Float64).alias(c) for c in FIELDS[:3]),
        pl.col("Adj Close").cast(pl.Float64).alias("close"),
        pl.col("Volume").cast(pl.Float64).alias("volume"),
    )
    vix = vix.select(pl.col("Date").cast(pl.Date).alias("date"), pl.col("vix").cast(pl.Float64))
    frame = spx.join(vix, on="date", how="left").sort("date")
    return frame.with_row_index("date_id").select(
        pl.col("date_id").cast(pl.Int64),
        "date",
        *FIELDS,
        pl.col("vix").fill_nan(None),
        pl.lit(None, dtype=pl.Float64).alias("def_ret"),
    )


def _ticker_columns(prices: pl.DataFrame, ticker: str) -> dict[str, str] | None:
    cols = {f: f"US_Stock_{ticker}_adj_{f}" for f in FIELDS}
    if not all(c in prices.columns for c in cols.values()):
        return None
    if prices[cols["close"]].drop_nulls().len() == 0:
        return None
    return cols


def competition_frame(
    prices: pl.DataFrame, market: tuple[str, ...], defensive: tuple[str, ...], name: str = "train.csv"
) -> tuple[pl.DataFrame, dict]:
    """Market OHLCV and defensive return from a competition price frame (date_id + feature columns).

    Rows where the market has no close (holidays of its exchange) are dropped; the returned info
    names the tickers used.
    """
    market_cols = next(((t, c) for t in market if (c := _ticker_columns(prices, t))), None)
    if market_cols is None:
        wanted = ", ".join(f"US_Stock_{t}_adj_close" for t in market)
        raise DataError(name, f"no market ETF with data; looked for {wanted}")
    ticker, cols = market_cols
    bonds = [
        t
        for t in defensive
        if f"US_Stock_{t}_adj_close" in prices.columns
        and prices[f"US_Stock_{t}_adj_close"].drop_nulls().len() > 0
    ]
    frame = (
        prices.select(
            pl.col("date_id").cast(pl.Int64),
            *(pl.col(c).cast(pl.Float64).alias(f) for f, c in cols.items()),
            *(pl.col(f"US_Stock_{t}_adj_close").cast(pl.Float64).alias(f"_bond_{t}") for t in bonds),
        )
        .filter(pl.col("close").is_not_null() & (pl.col("close") > 0))
        .sort("date_id")
    )
    bond_rets = [(pl.col(f"_bond_{t}") / pl.col(f"_bond_{t}").shift(1) - 1) for t in bonds]
    def_ret = pl.mean_horizontal(bond_rets) if bond_rets else pl.lit(None, dtype=pl.Float64)
    frame = frame.with_columns(def_ret.alias("def_ret"))
    if bonds:  # first row has no previous close: no return yet
        frame = frame.with_columns(pl.col("def_ret").fill_null(0.0))
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.Date).alias("date"),
        pl.lit(None, dtype=pl.Float64).alias("vix"),
        # OHLC gaps (a missing high, say) fall back to the close so ranges stay defined
        *(pl.col(f).fill_null(pl.col("close")) for f in ("open", "high", "low")),
        pl.col("volume").fill_null(0.0),
    ).select(RAW_COLUMNS)
    return frame, {"market": ticker, "defensive": bonds}


def load_source(source: str, config) -> tuple[pl.DataFrame, dict]:
    """The raw frame for `source` ("sp500" or a competition directory) and a description of it."""
    if source == "sp500":
        frame = load_sp500().filter(
            pl.col("date").is_between(pl.lit(config.start).str.to_date(), pl.lit(config.end).str.to_date())
        )
        return frame, {
            "source": "sp500",
            "market": "S&P 500 (arch.data.sp500)",
            "defensive": [],
            "vix": "arch.data.vix",
        }
    path = Path(source)
    if not path.is_dir():
        raise UserError(f"--source must be 'sp500' or a competition directory; {source!r} is neither")
    from offline.data.competition import load_competition

    frame, info = competition_frame(
        load_competition(path).prices(), tuple(config.market_tickers), tuple(config.defensive_tickers)
    )
    return frame, {"source": str(path), **info}
