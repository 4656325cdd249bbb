"""Every model feature, defined once as polars expressions; training and serving run the same code.

Data is held long, so the number of expressions does not grow with the number of series:
- prices: one row per (instrument, day), `inst` = index into `FeatureSpec.instruments`;
- labels: one row per (target, label day), `target` = target index, `lag` its horizon.
Both grids are complete and sorted (group, date_id), so `shift(k)` over a group is k trading days.

Training evaluates the expressions over the whole history; serving over the last WINDOW days and
keeps the last day. `feature_matrix` lays the result out as the global feature vector of each day
(`FeatureSpec.all_features()` order), which the per-target models and the packed forest index into.

At day t the newest delivered lag-L label is the label of day t-L-1 (Kaggle's lag files), so
own-label features read the label series shifted by L+1, L+2 and L+3 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from kaggle_kernel.schema import TargetDef, target_defs

ANNUAL = 252.0**0.5
FFILL_LIMIT = 5  # a price carries over at most this many missing days
WINDOW = 100  # days of price history that determine the last day's features exactly
REPLAY_DAYS = 160  # Kaggle's public phase replays the last training days; bootstrap history covers that
LABEL_WINDOW = 8  # days of label history that determine the last day's own-label features

DEFAULT_PROXY = ("US_Stock_VT_adj_close", "US_Stock_ACWI_adj_close")
DEFAULT_KEY = (
    "LME_CA_Close",
    "LME_AH_Close",
    "LME_ZS_Close",
    "LME_PB_Close",
    "JPX_Gold_Standard_Futures_Close",
    "JPX_Platinum_Standard_Futures_Close",
    "US_Stock_VT_adj_close",
    "US_Stock_XLE_adj_close",
    "FX_USDJPY",
    "FX_EURUSD",
    "US_Stock_IEF_adj_close",
)
REGIME_PROB = "regime_prob"
ETF_CRASH_PROB = "etf_crash_prob"
PROBABILITIES = (REGIME_PROB, ETF_CRASH_PROB)

REGIME_FEATURES = (
    "px_ret1",
    "px_rv5",
    "px_rv21",
    "px_rv63",
    "px_ts_5_21",
    "px_ts_21_63",
    "px_vov21",
    "px_dd63",
)
KEY_STATS = ("mean5", "mean21", "std5", "std21")
LEG_STATS = ("ret1", "ret5", "ret21", "volz", "z5", "z21", "rz5", "rz21")
OWN_STATS = ("lab1", "lab2", "lab3", "sret1", "sret5", "sret21", "sz5", "sz21", "srz5", "srz21")
SPREAD_STATS = ("ret1", "ret5", "ret21", "z5", "z21", "rz5", "rz21")  # leg stats differenced per target


def volume_column(price_column: str) -> str | None:
    """The volume column that belongs to a price column, if the competition has one."""
    if price_column.startswith("US_Stock_") and price_column.endswith("_adj_close"):
        return price_column.removesuffix("_close") + "_volume"
    if price_column.startswith("JPX_") and price_column.endswith("_Close"):
        return price_column.removesuffix("_Close") + "_Volume"
    return None


def _short(col: str) -> str:
    return col.removeprefix("US_Stock_").removesuffix("_adj_close").removesuffix("_Close")


@dataclass(frozen=True)
class FeatureSpec:
    """Which series feed the features. Defaults: the competition's 424 targets and key instruments."""

    targets: tuple[TargetDef, ...] = field(default_factory=lambda: tuple(target_defs()))
    proxy: tuple[str, ...] = DEFAULT_PROXY
    key_instruments: tuple[str, ...] = DEFAULT_KEY

    @cached_property
    def legs(self) -> tuple[str, ...]:
        """Every price column that is a leg of some target, in first-use order."""
        seen: dict[str, None] = {}
        for t in self.targets:
            seen[t.leg_a] = None
            if t.leg_b is not None:
                seen[t.leg_b] = None
        return tuple(seen)

    @cached_property
    def instruments(self) -> tuple[str, ...]:
        """Legs, then key instruments and proxies that are not legs: the `inst` index space."""
        return tuple(dict.fromkeys([*self.legs, *self.key_instruments, *self.proxy]))

    @cached_property
    def inst_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.instruments)}

    @cached_property
    def leg_table(self) -> pl.DataFrame:
        """target index -> instrument index of leg A and of leg B (null for a single-leg target)."""
        return pl.DataFrame(
            {
                "target": np.arange(len(self.targets), dtype=np.uint32),
                "a": [self.inst_index[t.leg_a] for t in self.targets],
                "b": [self.inst_index[t.leg_b] if t.leg_b else None for t in self.targets],
            },
            schema={"target": pl.UInt32, "a": pl.UInt32, "b": pl.UInt32},
        )

    @cached_property
    def key_features(self) -> list[str]:
        return [f"key_{_short(c)}_{s}" for c in self.key_instruments for s in KEY_STATS]

    @cached_property
    def shared_features(self) -> list[str]:
        return [*REGIME_FEATURES, *self.key_features]

    def leg_features(self, leg: str) -> list[str]:
        return [f"leg_{leg}_{s}" for s in LEG_STATS]

    def own_features(self, t: TargetDef) -> list[str]:
        return [f"{t.name}_{s}" for s in OWN_STATS]

    def all_features(self) -> list[str]:
        """The global feature vector of one day, as `feature_matrix` lays it out."""
        names = list(self.shared_features)
        for leg in self.legs:
            names += self.leg_features(leg)
        for t in self.targets:
            names += self.own_features(t)
        return [*names, *PROBABILITIES]

    def target_features(self, t: TargetDef, probabilities: Sequence[str] = PROBABILITIES) -> list[str]:
        """The features one target's regressor sees, in a fixed order."""
        names = [*self.own_features(t), *self.leg_features(t.leg_a)]
        if t.leg_b is not None:
            names += self.leg_features(t.leg_b)
        return [*names, *self.shared_features, *probabilities]

    def regime_model_features(self) -> list[str]:
        return list(REGIME_FEATURES)

    def price_columns(self, available: Sequence[str]) -> list[str]:
        """Columns of train/test the features read (prices and their volumes) that exist."""
        have = set(available)
        cols = []
        for c in self.instruments:
            cols.append(c)
            v = volume_column(c)
            if v is not None:
                cols.append(v)
        return [c for c in cols if c in have]


# ---- long inputs --------------------------------------------------------------------------------
PRICE_SCHEMA = {"inst": pl.UInt32, "date_id": pl.Int64, "price": pl.Float64, "volume": pl.Float64}
LABEL_SCHEMA = {"target": pl.UInt32, "lag": pl.Int32, "date_id": pl.Int64, "value": pl.Float64}


def price_panel(
    spec: FeatureSpec, date_ids: np.ndarray, columns: Sequence[str], values: np.ndarray
) -> pl.DataFrame:
    """Long (inst, date_id, price, volume) from a wide day x column matrix on consecutive date_ids.

    Instruments absent from `columns` get null prices, so the grid is always complete.
    """
    n_days, n_inst = len(date_ids), len(spec.instruments)
    pos = {c: i for i, c in enumerate(columns)}
    nan_col = np.full(n_days, np.nan)
    price = np.empty((n_inst, n_days))
    volume = np.empty((n_inst, n_days))
    for i, inst in enumerate(spec.instruments):
        price[i] = values[:, pos[inst]] if inst in pos else nan_col
        v = volume_column(inst)
        volume[i] = values[:, pos[v]] if v in pos else nan_col
    return pl.DataFrame(
        {
            "inst": np.repeat(np.arange(n_inst, dtype=np.uint32), n_days),
            "date_id": np.tile(np.asarray(date_ids, dtype=np.int64), n_inst),
            "price": price.ravel(),
            "volume": volume.ravel(),
        },
        schema=PRICE_SCHEMA,
        nan_to_null=True,
    )


def label_panel(spec: FeatureSpec, date_ids: np.ndarray, values: np.ndarray) -> pl.DataFrame:
    """Long (target, lag, date_id, value) from a day x target label matrix on consecutive label days."""
    n_days, n_t = len(date_ids), len(spec.targets)
    lags = np.array([t.lag for t in spec.targets], dtype=np.int32)
    return pl.DataFrame(
        {
            "target": np.repeat(np.arange(n_t, dtype=np.uint32), n_days),
            "lag": np.repeat(lags, n_days),
            "date_id": np.tile(np.asarray(date_ids, dtype=np.int64), n_t),
            "value": np.asarray(values, dtype=np.float64).T.ravel(),
        },
        schema=LABEL_SCHEMA,
        nan_to_null=True,
    )


def consecutive(frame: pl.DataFrame, first: int | None = None, last: int | None = None) -> pl.DataFrame:
    """Rows for every date_id from first (or min) to last (or max); missing days all-null."""
    lo = frame["date_id"].min() if first is None else first
    hi = frame["date_id"].max() if last is None else last
    days = pl.DataFrame({"date_id": pl.int_range(lo, hi + 1, eager=True, dtype=pl.Int64)})
    return days.join(frame.with_columns(pl.col("date_id").cast(pl.Int64)), on="date_id", how="left")


def panels_from_frames(
    spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Training-side entry: wide train/test-like prices and wide labels -> the two long panels."""
    prices = consecutive(prices.sort("date_id"))
    cols = spec.price_columns(prices.columns)
    date_ids = prices["date_id"].to_numpy()
    pp = price_panel(spec, date_ids, cols, prices.select(cols).cast(pl.Float64).to_numpy())
    names = [t.name for t in spec.targets]
    if labels is None or labels.height == 0:
        lab = np.full((len(date_ids), len(names)), np.nan)
    else:
        wide = consecutive(labels, int(date_ids[0]), int(date_ids[-1]))
        wide = wide.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(n) for n in names if n not in wide.columns]
        )
        lab = wide.select(names).cast(pl.Float64).to_numpy()
    return pp, label_panel(spec, date_ids, lab)


# ---- expressions ------------------------------------------------------------------------------
def _over(e: pl.Expr, by: str) -> pl.Expr:
    return e.over(by)


def instrument_features(spec: FeatureSpec, prices: pl.DataFrame) -> pl.DataFrame:
    """Per (inst, day): log-returns over 1/5/21 days, volume z-score, rolling mean/std of returns,
    and 5/21-day returns scaled by the 21-day volatility, raw (z) and net of the market (rz).

    The market is the equity proxy; its beta is the 63-day rolling regression slope of daily returns.
    """
    lp = pl.col("price").log().forward_fill(limit=FFILL_LIMIT)
    lv = pl.col("volume").log1p()
    frame = prices.with_columns(_over(lp, "inst").alias("lp"))
    frame = frame.with_columns(
        *[_over(pl.col("lp") - pl.col("lp").shift(k), "inst").alias(f"ret{k}") for k in (1, 5, 21)],
        _over((lv - lv.rolling_mean(21, min_samples=10)) / lv.rolling_std(21, min_samples=10), "inst").alias(
            "volz"
        ),
    )
    market = _market_returns(spec, frame)
    frame = frame.join(market, on="date_id", how="left").with_columns(
        _over(pl.col("ret1").rolling_mean(5, min_samples=3), "inst").alias("mean5"),
        _over(pl.col("ret1").rolling_mean(21, min_samples=14), "inst").alias("mean21"),
        _over(pl.col("ret1").rolling_std(5, min_samples=3), "inst").alias("std5"),
        _over(pl.col("ret1").rolling_std(21, min_samples=14), "inst").alias("std21"),
        _over(
            pl.rolling_cov("ret1", "m1", window_size=63, min_samples=40)
            / pl.col("m1").rolling_var(63, min_samples=40),
            "inst",
        ).alias("beta"),
    )
    # a proxy's residual against the market it defines is rounding noise: leave it undefined
    proxies = pl.Series([spec.inst_index[c] for c in spec.proxy], dtype=pl.UInt32).implode()
    return frame.with_columns(
        *[(pl.col(f"ret{k}") / (pl.col("std21") * k**0.5)).alias(f"z{k}") for k in (5, 21)],
        *[
            pl.when(pl.col("inst").is_in(proxies))
            .then(None)
            .otherwise((pl.col(f"ret{k}") - pl.col("beta") * pl.col(f"m{k}")) / (pl.col("std21") * k**0.5))
            .alias(f"rz{k}")
            for k in (5, 21)
        ],
    ).select("inst", "date_id", *LEG_STATS, *KEY_STATS)


def _market_returns(spec: FeatureSpec, inst: pl.DataFrame) -> pl.DataFrame:
    """Per day: the equity proxy's 1/5/21-day log-returns (first proxy column, else the next)."""
    codes = [spec.inst_index[c] for c in spec.proxy]
    parts = [
        inst.filter(pl.col("inst") == code).select(
            "date_id", *[pl.col(f"ret{k}").alias(f"m{k}_{i}") for k in (1, 5, 21)]
        )
        for i, code in enumerate(codes)
    ]
    wide = parts[0]
    for p in parts[1:]:
        wide = wide.join(p, on="date_id", how="left")
    return wide.select(
        "date_id",
        *[pl.coalesce([pl.col(f"m{k}_{i}") for i in range(len(codes))]).alias(f"m{k}") for k in (1, 5, 21)],
    )


def regime_features(spec: FeatureSpec, inst: pl.DataFrame) -> pl.DataFrame:
    """Per day: the equity proxy's return, realized vols, term structure, vol-of-vol, drawdown.

    The proxy is the first `spec.proxy` column, falling back to the next where its return is null;
    chained on returns so a switch of series causes no jump in the level.
    """
    codes = [spec.inst_index[c] for c in spec.proxy]
    parts = [
        inst.filter(pl.col("inst") == code).select("date_id", pl.col("ret1").alias(f"r{i}"))
        for i, code in enumerate(codes)
    ]
    wide = parts[0]
    for p in parts[1:]:
        wide = wide.join(p, on="date_id", how="left")
    r = pl.coalesce([pl.col(f"r{i}") for i in range(len(codes))])
    lp = r.fill_null(0.0).cum_sum()
    rv5 = r.rolling_std(5, min_samples=4) * ANNUAL
    rv21 = r.rolling_std(21, min_samples=15) * ANNUAL
    rv63 = r.rolling_std(63, min_samples=40) * ANNUAL
    # cum_sum makes the level depend on the window start; the drawdown only uses differences
    return wide.sort("date_id").select(
        "date_id",
        r.alias("px_ret1"),
        rv5.alias("px_rv5"),
        rv21.alias("px_rv21"),
        rv63.alias("px_rv63"),
        (rv5 / rv21).alias("px_ts_5_21"),
        (rv21 / rv63).alias("px_ts_21_63"),
        rv5.rolling_std(21, min_samples=15).alias("px_vov21"),
        (lp - lp.rolling_max(63, min_samples=1)).alias("px_dd63"),
    )


def own_features(spec: FeatureSpec, labels: pl.DataFrame, inst: pl.DataFrame) -> pl.DataFrame:
    """Per (target, day): its last three delivered labels and its spread's returns (leg A minus leg B)."""
    lag = pl.col("lag").first()
    own = labels.with_columns(
        *[_over(pl.col("value").shift(lag + k), "target").alias(f"lab{k}") for k in (1, 2, 3)]
    ).drop("value", "lag")
    legs = spec.leg_table
    first = labels["date_id"].min()
    rets = inst.filter(pl.col("date_id") >= first).select("inst", "date_id", *SPREAD_STATS)
    ra = rets.rename({"inst": "a", **{c: f"a_{c}" for c in SPREAD_STATS}})
    rb = rets.rename({"inst": "b", **{c: f"b_{c}" for c in SPREAD_STATS}})
    spread = (
        own.join(legs, on="target", how="left")
        .join(ra, on=["a", "date_id"], how="left")
        .join(rb, on=["b", "date_id"], how="left")
    )
    return spread.select(
        "target",
        "date_id",
        "lab1",
        "lab2",
        "lab3",
        *[(pl.col(f"a_{c}") - pl.col(f"b_{c}")).alias(f"s{c}") for c in SPREAD_STATS],
    )


@dataclass
class FeatureTables:
    """The computed features of a stretch of days, long per instrument and per target."""

    regime: pl.DataFrame  # date_id + REGIME_FEATURES
    inst: pl.DataFrame  # inst, date_id, LEG_STATS, KEY_STATS
    own: pl.DataFrame  # target, date_id, OWN_STATS


def compute_tables(spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame) -> FeatureTables:
    """All features for every day of the long price panel (labels on the same or a shorter tail)."""
    inst = instrument_features(spec, prices)
    return FeatureTables(regime_features(spec, inst), inst, own_features(spec, labels, inst))


def feature_matrix(
    spec: FeatureSpec, tables: FeatureTables, date_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(date_ids, X): one row per day in `spec.all_features()` order; probability columns are NaN."""
    regime = tables.regime
    if date_ids is not None:
        keep = pl.Series(list(date_ids), dtype=pl.Int64).implode()
        regime = regime.filter(pl.col("date_id").is_in(keep))
    days = regime["date_id"].to_numpy()
    n = len(days)
    keep_days = pl.Series(days, dtype=pl.Int64).implode()
    inst = tables.inst.filter(pl.col("date_id").is_in(keep_days)).sort("date_id", "inst")
    own = tables.own.filter(pl.col("date_id").is_in(keep_days)).sort("date_id", "target")
    n_inst, n_legs, n_t = len(spec.instruments), len(spec.legs), len(spec.targets)
    key_codes = [spec.inst_index[c] for c in spec.key_instruments]
    leg_block = inst.select(LEG_STATS).to_numpy().reshape(n, n_inst, len(LEG_STATS))[:, :n_legs]
    key_block = inst.select(KEY_STATS).to_numpy().reshape(n, n_inst, len(KEY_STATS))[:, key_codes]
    own_block = own.select(OWN_STATS).to_numpy().reshape(n, n_t, len(OWN_STATS))
    X = np.concatenate(
        [
            regime.select(REGIME_FEATURES).to_numpy(),
            key_block.reshape(n, -1),
            leg_block.reshape(n, -1),
            own_block.reshape(n, -1),
            np.full((n, len(PROBABILITIES)), np.nan),
        ],
        axis=1,
    )
    return days, np.asarray(X, dtype=np.float64)


def batch_features(
    spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training entry: wide prices/labels -> (date_ids, global feature matrix) for every day."""
    pp, lp = panels_from_frames(spec, prices, labels)
    return feature_matrix(spec, compute_tables(spec, pp, lp))


def last_day_features(spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame) -> np.ndarray:
    """Serving entry: long panels of the last WINDOW / LABEL_WINDOW days -> the last day's vector."""
    tables = compute_tables(spec, prices, labels)
    last = int(tables.regime["date_id"].max())
    return feature_matrix(spec, tables, [last])[1][0]
