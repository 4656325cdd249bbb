"""Market features as polars expressions: each function takes a daily frame and returns it with more columns.

Input: one row per trading day sorted by date_id with open/high/low/close/volume, vix (may be null)
and def_ret (may be null). Every feature at row t uses rows <= t only; the crash label alone looks
forward. Kept free of pandas/sklearn so the kit can move it into kaggle_kernel/features.py.
"""

from __future__ import annotations

import math

import polars as pl
import polars.selectors as cs

ANNUAL = 252
MOMENTUM = (5, 21, 63, 126, 252)
VOLATILITY = (5, 10, 21, 63, 126)
MOVING_AVERAGES = (20, 50, 200)
WARMUP = ANNUAL + 1  # rows before every trailing window (incl. the naive rule's) is full


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
    """The naive crash rule: rv_21 above the 80th percentile of its previous 252 days (and its ratio)."""
    q80 = pl.col("rv_21").shift(1).rolling_quantile(0.8, window_size=ANNUAL, interpolation="linear")
    return frame.with_columns((pl.col("rv_21") / q80).alias("naive_score")).with_columns(
        (pl.col("naive_score") > 1).cast(pl.Int8).alias("naive_flag")
    )


def forward_max_drawdown(horizon: int) -> pl.Expr:
    """Worst peak-to-trough move of the close over rows t..t+horizon (the peak may be day t itself)."""
    close = pl.col("close")
    steps = []
    for k in range(1, horizon + 1):
        peak = pl.max_horizontal(*(close.shift(-j) for j in range(k + 1)))
        steps.append(close.shift(-k) / peak - 1)
    return pl.min_horizontal(*steps).clip(upper_bound=0)


def crash_label(frame: pl.DataFrame, horizon: int, depth: float) -> pl.DataFrame:
    """fwd_mdd and crash = 1 when the max drawdown over the next `horizon` days is <= -depth (null at the end)."""
    complete = pl.col("close").shift(-horizon).is_not_null()
    return frame.with_columns(
        pl.when(complete).then(forward_max_drawdown(horizon)).alias("fwd_mdd"),
    ).with_columns(
        pl.when(complete).then((pl.col("fwd_mdd") <= -depth).cast(pl.Int8)).alias("crash"),
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


VIX_FEATURES = ("vix_filled", "vix_missing", "vix_rv_spread", "vix_rel_63")
