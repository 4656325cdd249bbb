"""The ETF crash model's inputs, defined once for training (offline/etf) and serving (the kernel).

From competition price columns: the market ETF's OHLCV and the defensive (bond) return
(`market_frame`), indicators as polars expressions (`base_indicators`, `defensive_indicators`,
`naive_rule`, `interactions`, chained by `feature_frame`). Every feature at row t uses rows <= t
only. `CrashModel.inputs` runs the offline chain on a window of recent prices and returns the
model's input vector for the window's last day; a logistic model is evaluated here
(`CrashModel.probability`), a booster by the caller (kaggle_kernel.forest). Only stdlib, numpy and
polars here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import polars.selectors as cs

ANNUAL = 252
MOMENTUM = (5, 21, 63, 126, 252)
VOLATILITY = (5, 10, 21, 63, 126)
MOVING_AVERAGES = (20, 50, 200)
WARMUP = ANNUAL + 1  # rows before every trailing window (incl. the naive rule's) is full

RAW_COLUMNS = ("date_id", "date", "open", "high", "low", "close", "volume", "vix", "def_ret")
FIELDS = ("open", "high", "low", "close", "volume")

# Days of competition prices (date_ids, market holidays included) that fix the last day's inputs.
# The chain drops the first WARMUP (253) market rows and then takes 252-row windows of rv_21
# (rv_z_252), so the last day is free of any start-of-window effect once the window holds
# 253 + 252 = 505 market rows. By then the slowest EWM (Wilder's alpha = 1/14) weighs the state
# before the window by (13/14)**505 ~ 6e-17, and MACD's spans decay faster, far below 1e-9
# relative. 600 days leave room for 95 days without a US close (about 4.5% of competition days
# are US holidays, ~27 in 600).
CRASH_WINDOW = 600


# --- raw market frame ---------------------------------------------------------------------------


def ticker_columns(ticker: str) -> dict[str, str]:
    """Competition column of each OHLCV field of a US ETF."""
    return {f: f"US_Stock_{ticker}_adj_{f}" for f in FIELDS}


def price_columns(market_tickers: Iterable[str], defensive_tickers: Iterable[str]) -> list[str]:
    """Competition columns the crash model reads: OHLCV of the market ETFs, closes of the defensive ones."""
    cols = [c for t in market_tickers for c in ticker_columns(t).values()]
    cols += [ticker_columns(t)["close"] for t in defensive_tickers]
    return list(dict.fromkeys(cols))


def _column(prices: pl.DataFrame, name: str) -> pl.Expr:
    """A Float64 price column, or nulls when the frame lacks it (serving windows may be narrow)."""
    return pl.col(name).cast(pl.Float64) if name in prices.columns else pl.lit(None, dtype=pl.Float64)


def market_frame(prices: pl.DataFrame, market: str, defensive: Sequence[str]) -> pl.DataFrame:
    """RAW_COLUMNS from competition prices (date_id + wide columns) for chosen market/defensive tickers.

    Rows where the market has no positive close (its exchange's holidays) are dropped. def_ret is
    the equal-weight daily return of the defensive closes (0 where none has one; null: no defensive).
    """
    bonds = list(defensive)
    frame = (
        prices.select(
            pl.col("date_id").cast(pl.Int64),
            *(_column(prices, c).alias(f) for f, c in ticker_columns(market).items()),
            *(_column(prices, ticker_columns(t)["close"]).alias(f"_bond_{t}") for t in bonds),
        )
        .filter(pl.col("close").is_not_null() & (pl.col("close") > 0))
        .sort("date_id")
    )
    bond_rets = [(pl.col(f"_bond_{t}") / pl.col(f"_bond_{t}").shift(1) - 1) for t in bonds]
    def_ret = pl.mean_horizontal(bond_rets) if bond_rets else pl.lit(None, dtype=pl.Float64)
    frame = frame.with_columns(def_ret.alias("def_ret"))
    if bonds:  # first row has no previous close: no return yet
        frame = frame.with_columns(pl.col("def_ret").fill_null(0.0))
    return frame.with_columns(
        pl.lit(None, dtype=pl.Date).alias("date"),
        pl.lit(None, dtype=pl.Float64).alias("vix"),
        # OHLC gaps (a missing high, say) fall back to the close so ranges stay defined
        *(pl.col(f).fill_null(pl.col("close")) for f in ("open", "high", "low")),
        pl.col("volume").fill_null(0.0),
    ).select(RAW_COLUMNS)


# --- indicators ---------------------------------------------------------------------------------


def _log_ret() -> pl.Expr:
    return (pl.col("close") / pl.col("close").shift(1)).log()


def _wilder(expr: pl.Expr, n: int) -> pl.Expr:
    return expr.ewm_mean(alpha=1.0 / n, adjust=False)


def base_indicators(frame: pl.DataFrame) -> pl.DataFrame:
    """Returns, realized volatility (+ term structure), momentum, RSI, MACD, Bollinger %B, ATR, MAs."""
    close, high, low = pl.col("close"), pl.col("high"), pl.col("low")
    frame = frame.with_columns(
        _log_ret().alias("ret_1d"),
        (close / close.shift(1) - 1).alias("ret_simple"),
        (high / low).log().pow(2).alias("_hl2"),
        pl.max_horizontal(high - low, (high - close.shift(1)).abs(), (low - close.shift(1)).abs()).alias(
            "_tr"
        ),
        close.diff().clip(lower_bound=0).alias("_gain"),
        (-close.diff()).clip(lower_bound=0).alias("_loss"),
        pl.col("volume").log1p().alias("_logvol"),
    )
    r = pl.col("ret_1d")
    ema12 = close.ewm_mean(span=12, adjust=False)
    ema26 = close.ewm_mean(span=26, adjust=False)
    ma20, sd20 = close.rolling_mean(20), close.rolling_std(20)
    frame = frame.with_columns(
        *(r.rolling_std(k).mul(math.sqrt(ANNUAL)).alias(f"rv_{k}") for k in VOLATILITY),
        *(close.truediv(close.shift(k)).sub(1).alias(f"mom_{k}") for k in MOMENTUM),
        *(close.truediv(close.rolling_mean(k)).sub(1).alias(f"dist_ma_{k}") for k in MOVING_AVERAGES),
        r.clip(upper_bound=0).pow(2).rolling_mean(21).mul(ANNUAL).sqrt().alias("downside_vol_21"),
        pl.col("_hl2").rolling_mean(21).truediv(4 * math.log(2)).mul(ANNUAL).sqrt().alias("range_vol_21"),
        (100 - 100 / (1 + _wilder(pl.col("_gain"), 14) / _wilder(pl.col("_loss"), 14))).alias("rsi_14"),
        ((ema12 - ema26) / close).alias("macd"),
        ((ema12 - ema26) / close).ewm_mean(span=9, adjust=False).alias("macd_signal"),
        ((close - (ma20 - 2 * sd20)) / (4 * sd20)).alias("bb_pctb_20"),
        (_wilder(pl.col("_tr"), 14) / close).alias("atr_14"),
        (close / close.rolling_max(ANNUAL) - 1).alias("drawdown_252"),
        (close / close.rolling_max(63) - 1).alias("drawdown_63"),
        r.rolling_skew(63).alias("skew_63"),
        r.rolling_min(21).alias("worst_day_21"),
        ((pl.col("_logvol") - pl.col("_logvol").rolling_mean(63)) / pl.col("_logvol").rolling_std(63)).alias(
            "volume_z_63"
        ),
    )
    frame = frame.with_columns(
        (pl.col("macd") - pl.col("macd_signal")).alias("macd_hist"),
        (pl.col("rv_5") / pl.col("rv_21")).alias("rv_ratio_5_21"),
        (pl.col("rv_21") / pl.col("rv_63")).alias("rv_ratio_21_63"),
        (pl.col("rv_21") / pl.col("rv_126")).alias("rv_ratio_21_126"),
        # VIX stand-in where VIX is missing: 21-day annualized realized volatility in percent
        pl.col("vix").fill_null(pl.col("rv_21") * 100).alias("vix_filled"),
        pl.col("vix").is_null().cast(pl.Int8).alias("vix_missing"),
    )
    return frame.drop("_hl2", "_tr", "_gain", "_loss", "_logvol").with_columns(cs.float().fill_nan(None))


def defensive_indicators(frame: pl.DataFrame) -> pl.DataFrame:
    """Momentum of the defensive asset and its 63-day correlation with the market (when it exists)."""
    if frame["def_ret"].null_count() == frame.height:
        return frame
    level = (1 + pl.col("def_ret").fill_null(0)).cum_prod()
    return frame.with_columns(
        (level / level.shift(21) - 1).alias("def_mom_21"),
        (level / level.shift(63) - 1).alias("def_mom_63"),
        pl.rolling_corr(pl.col("ret_simple"), pl.col("def_ret"), window_size=63).alias("stock_bond_corr_63"),
    )


def naive_rule(frame: pl.DataFrame) -> pl.DataFrame:
    """The naive crash rule: rv_21 above the 80th percentile of its previous 252 days (the ratio, its
    log, which the linear crash models read, and the flag)."""
    q80 = pl.col("rv_21").shift(1).rolling_quantile(0.8, window_size=ANNUAL, interpolation="linear")
    return frame.with_columns((pl.col("rv_21") / q80).alias("naive_score")).with_columns(
        (pl.col("naive_score") > 1).cast(pl.Int8).alias("naive_flag"),
        pl.col("naive_score").log().alias("naive_log"),
    )


def interactions(frame: pl.DataFrame) -> pl.DataFrame:
    """Second-level features: volatility z-scores and changes, VIX-RV spread, crossed signals."""
    rv = pl.col("rv_21")
    return frame.with_columns(
        ((rv - rv.rolling_mean(ANNUAL)) / rv.rolling_std(ANNUAL)).alias("rv_z_252"),
        (rv / rv.shift(5) - 1).alias("rv_change_5"),
        rv.rolling_std(63).alias("vol_of_vol_63"),
        (pl.col("mom_21") * rv).alias("mom21_x_rv21"),
        (pl.col("drawdown_252") * rv).alias("dd252_x_rv21"),
        ((pl.col("rsi_14") - 50) / 50 * pl.col("bb_pctb_20")).alias("rsi_x_bb"),
        (pl.col("dist_ma_50") - pl.col("dist_ma_200")).alias("ma_cross_50_200"),
        (pl.col("mom_21") / (rv / math.sqrt(12))).alias("mom21_risk_adj"),
        (pl.col("vix_filled") / 100 - rv).alias("vix_rv_spread"),
        (pl.col("vix_filled") / pl.col("vix_filled").rolling_mean(63)).alias("vix_rel_63"),
    ).with_columns(cs.float().fill_nan(None))


def feature_frame(raw: pl.DataFrame) -> pl.DataFrame:
    """The feature chain of training and serving: indicators and the naive rule, drop WARMUP rows,
    then interactions (their windows start after the warm-up, in training as in serving)."""
    frame = naive_rule(defensive_indicators(base_indicators(raw.select(RAW_COLUMNS).sort("date_id"))))
    return interactions(frame.slice(WARMUP))


# --- the served model ---------------------------------------------------------------------------


@dataclass
class CrashModel:
    """The served crash model: tickers, input order and, for a logistic model, its weights.

    `market` is the one market ETF and `defensive` the bond ETFs training used (chosen offline
    by offline.etf.sources.competition_frame from the whole history). `linear` holds a logistic
    model's standardisation and weights ({mean, scale, coef, intercept}); None means the model is a
    LightGBM booster, packed and evaluated by kaggle_kernel.forest.
    """

    market: str
    defensive: list[str]
    features: list[str]  # the model's input order
    linear: dict | None = None

    @property
    def columns(self) -> list[str]:
        """Competition columns `inputs` reads."""
        return price_columns([self.market], self.defensive)

    def to_json(self) -> dict:
        return {
            "market": self.market,
            "defensive": list(self.defensive),
            "features": list(self.features),
            "linear": self.linear,
            "window": CRASH_WINDOW,
        }

    @classmethod
    def from_json(cls, data: dict) -> CrashModel:
        missing = sorted({"market", "defensive", "features"} - set(data))
        if missing:
            raise ValueError(f"crash model JSON lacks keys {missing}")
        linear = data.get("linear")
        if linear is not None:
            lens = {k: len(linear[k]) for k in ("mean", "scale", "coef")}
            if set(lens.values()) != {len(data["features"])}:
                raise ValueError(
                    f"crash model JSON: linear weights {lens} do not match {len(data['features'])} features"
                )
        return cls(
            market=str(data["market"]),
            defensive=[str(t) for t in data["defensive"]],
            features=[str(f) for f in data["features"]],
            linear=linear,
        )

    def inputs(self, window: pl.DataFrame) -> np.ndarray:
        """Input vector (float64, NaN = missing) of the window's last day, in `features` order.

        `window`: date_id + competition columns, consecutive days, the last CRASH_WINDOW days (or
        the whole history when shorter, which then reproduces training from its first day). When
        the market has no close on the last day, or the day falls in the warm-up, the vector is all
        NaN: the caller falls back, e.g. to the previous day's probability as offline does.
        """
        nan = np.full(len(self.features), np.nan)
        if window.height == 0:
            return nan
        last_day = window["date_id"].max()
        frame = feature_frame(market_frame(window, self.market, self.defensive)).tail(1)
        if frame.height == 0 or frame["date_id"][0] != last_day:
            return nan
        row = frame.select(pl.col(self.features).cast(pl.Float64))
        return row.to_numpy()[0].astype(np.float64)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """A logistic model's probability for each row of x (missing inputs count as the training mean)."""
        if self.linear is None:
            raise ValueError("a LightGBM crash model is evaluated by its packed forest, not here")
        lin = self.linear
        z = np.nan_to_num((np.atleast_2d(x) - np.asarray(lin["mean"])) / np.asarray(lin["scale"]))
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(lin["coef"]) + float(lin["intercept"]))))
