"""Every model feature, defined once as polars expressions; training and serving run the same code.

Data is held long, so the number of expressions does not grow with the number of series:
- prices: one row per (instrument, day), `inst` = index into `FeatureSpec.instruments`;
- labels: one row per (target, label day), `target` = target index, `lag` its horizon.
Both grids are complete and sorted (group, date_id), so k rows back in a group is k trading days.

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
WINDOW = 72  # days of price history that determine the last day's features exactly (>= 64 + the 5-day fill)
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
INST_STATS = (*LEG_STATS, *KEY_STATS)
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
    def leg_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per target, the instrument index of leg A and of leg B (-1 for a single-leg target)."""
        a = np.array([self.inst_index[t.leg_a] for t in self.targets], dtype=np.int64)
        b = np.array([self.inst_index[t.leg_b] if t.leg_b else -1 for t in self.targets], dtype=np.int64)
        return a, b

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
PAD = 63  # null rows before each instrument: no window (at most 63 rows) reaches the previous one


def _padded(values: np.ndarray, groups: int, rows: int) -> np.ndarray:
    """`values` of `groups` equal consecutive blocks, with `rows` NaN in front of each block."""
    blocks = np.asarray(values, dtype=np.float64).reshape(groups, -1)
    return np.concatenate([np.full((groups, rows), np.nan), blocks], axis=1).ravel()


def _first_of(blocks: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """Per position, the first non-NaN value among the blocks `codes`, in that order."""
    out = blocks[codes[0]].copy()
    for c in codes[1:]:
        out = np.where(np.isnan(out), blocks[c], out)
    return out


def _diff(rows: np.ndarray, k: int) -> np.ndarray:
    """Each row minus itself k positions earlier (NaN for the first k)."""
    out = np.full_like(rows, np.nan)
    out[:, k:] = rows[:, k:] - rows[:, :-k]
    return out


def instrument_features(
    spec: FeatureSpec, prices: pl.DataFrame, keep: np.ndarray | None = None
) -> tuple[np.ndarray, pl.DataFrame]:
    """(instruments, kept days, INST_STATS): per instrument and day: log-returns over 1/5/21 days, volume z-score, rolling mean/std of returns,
    and 5/21-day returns scaled by the 21-day volatility, raw (z) and net of the market (rz);
    and per day the market's 1/5/21-day returns.

    The market is the equity proxy (first `spec.proxy` column, else the next); its beta is the 63-day
    rolling regression slope of daily returns. `keep`: positions of the days wanted (default all).
    Every instrument's block is preceded by PAD null rows,
    so the expressions run over one long column yet never see another instrument's values (what
    `.over("inst")` would give, at a fraction of its per-call cost).
    """
    n_inst = len(spec.instruments)
    n_days = prices.height // n_inst
    size = n_days + PAD
    is_proxy = np.zeros(n_inst, dtype=bool)
    is_proxy[[spec.inst_index[c] for c in spec.proxy]] = True
    frame = pl.DataFrame(
        {
            "price": _padded(prices["price"].to_numpy(), n_inst, PAD),
            "volume": _padded(prices["volume"].to_numpy(), n_inst, PAD),
            "real": np.tile(np.arange(size) >= PAD, n_inst),
            "proxy": np.repeat(is_proxy, size),
        },
        nan_to_null=True,
    )
    frame = frame.with_columns(
        pl.when("real").then(pl.col("price").log().forward_fill(limit=FFILL_LIMIT)).alias("lp"),
        pl.col("volume").log1p().alias("lv"),
    ).with_columns(
        *[(pl.col("lp") - pl.col("lp").shift(k)).alias(f"ret{k}") for k in (1, 5, 21)],
        (
            (pl.col("lv") - pl.col("lv").rolling_mean(21, min_samples=10))
            / pl.col("lv").rolling_std(21, min_samples=10)
        ).alias("volz"),
    )
    # the market's returns, by the same arithmetic as `ret{k}` on the proxies' log prices
    lp = frame["lp"].to_numpy().reshape(n_inst, size)[[spec.inst_index[c] for c in spec.proxy]]
    market = {f"m{k}": _first_of(_diff(lp, k), range(len(lp))) for k in (1, 5, 21)}
    frame = frame.with_columns(
        *[pl.Series(name, np.tile(m, n_inst), nan_to_null=True) for name, m in market.items()]
    ).with_columns(
        pl.col("ret1").rolling_mean(5, min_samples=3).alias("mean5"),
        pl.col("ret1").rolling_mean(21, min_samples=14).alias("mean21"),
        pl.col("ret1").rolling_std(5, min_samples=3).alias("std5"),
        pl.col("ret1").rolling_std(21, min_samples=14).alias("std21"),
        (
            pl.rolling_cov("ret1", "m1", window_size=63, min_samples=40)
            / pl.col("m1").rolling_var(63, min_samples=40)
        ).alias("beta"),
    )
    keep = np.arange(n_days) if keep is None else np.asarray(keep)
    rows = (np.arange(n_inst)[:, None] * size + PAD + keep[None, :]).ravel()
    # a proxy's residual against the market it defines is rounding noise: leave it undefined
    stats = (
        frame[rows]
        .select(
            *[(pl.col(f"ret{k}") / (pl.col("std21") * k**0.5)).alias(f"z{k}") for k in (5, 21)],
            *[
                pl.when(pl.col("proxy"))
                .then(None)
                .otherwise(
                    (pl.col(f"ret{k}") - pl.col("beta") * pl.col(f"m{k}")) / (pl.col("std21") * k**0.5)
                )
                .alias(f"rz{k}")
                for k in (5, 21)
            ],
            *[c for c in INST_STATS if c not in ("z5", "z21", "rz5", "rz21")],
        )
        .select(INST_STATS)
    )
    block = stats.to_numpy().reshape(n_inst, len(keep), len(INST_STATS))
    market_frame = pl.DataFrame(
        {"date_id": prices["date_id"][:n_days], **{k: m[PAD:] for k, m in market.items()}}, nan_to_null=True
    )
    return block, market_frame


def regime_features(market: pl.DataFrame) -> pl.DataFrame:
    """Per day: the equity proxy's return, realized vols, term structure, vol-of-vol, drawdown.

    `market` is the per-day frame of `instrument_features`: where the first proxy's return is null the
    next proxy's is used, chained on returns so a switch of series causes no jump in the level.
    """
    r = pl.col("m1")
    lp = r.fill_null(0.0).cum_sum()
    rv5 = r.rolling_std(5, min_samples=4) * ANNUAL
    rv21 = r.rolling_std(21, min_samples=15) * ANNUAL
    rv63 = r.rolling_std(63, min_samples=40) * ANNUAL
    # cum_sum makes the level depend on the window start; the drawdown only uses differences
    return market.select(
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


def own_labels(spec: FeatureSpec, labels: pl.DataFrame) -> np.ndarray:
    """(targets, days, 3): each target's last three delivered labels, the lag-L labels of day t-L-k, k = 1, 2, 3."""
    n_t = len(spec.targets)
    values = labels["value"].to_numpy().reshape(n_t, -1)
    n = values.shape[1]
    lags = np.array([t.lag for t in spec.targets])
    out = np.full((n_t, n, 3), np.nan)
    for k in (1, 2, 3):
        src = np.arange(n)[None, :] - (lags + k)[:, None]
        ok = src >= 0
        out[:, :, k - 1] = np.where(ok, np.take_along_axis(values, np.where(ok, src, 0), axis=1), np.nan)
    return out


@dataclass
class FeatureTables:
    """The computed features of some days: per day, per (instrument, day) and per (target, day)."""

    days: np.ndarray
    regime: np.ndarray  # (days, REGIME_FEATURES)
    inst: np.ndarray  # (instruments, days, INST_STATS)
    labels: np.ndarray  # (targets, days, lab1..lab3)


def compute_tables(
    spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame, days: Sequence[int] | None = None
) -> FeatureTables:
    """Features of `days` (default: every day of the long price panel), from the price panel and the
    label panel (on the same days or a shorter tail)."""
    all_days = prices["date_id"][: prices.height // len(spec.instruments)].to_numpy()
    days = all_days if days is None else np.asarray(days, dtype=np.int64)
    pos = days - all_days[0]
    inst, market = instrument_features(spec, prices, pos)
    regime = regime_features(market).select(REGIME_FEATURES).to_numpy()[pos]
    labs = np.full((len(spec.targets), len(days), 3), np.nan)
    if labels.height:
        known = own_labels(spec, labels)
        lpos = days - labels["date_id"][0]
        ok = (lpos >= 0) & (lpos < known.shape[1])
        labs[:, ok] = known[:, lpos[ok]]
    return FeatureTables(days, regime, inst, labs)


def feature_matrix(spec: FeatureSpec, tables: FeatureTables) -> np.ndarray:
    """One row per day of `tables` in `spec.all_features()` order; probability columns are NaN.

    Spread statistics are leg A's minus leg B's (null for single-leg targets).
    """
    n = len(tables.days)
    inst = tables.inst.transpose(1, 0, 2)  # (days, instruments, stats)
    n_leg_stats = len(LEG_STATS)
    leg_block = inst[:, : len(spec.legs), :n_leg_stats]
    key_block = inst[:, [spec.inst_index[c] for c in spec.key_instruments], n_leg_stats:]
    a, b = spec.leg_codes
    spread_cols = [LEG_STATS.index(c) for c in SPREAD_STATS]
    spread = inst[:, a][:, :, spread_cols] - inst[:, np.maximum(b, 0)][:, :, spread_cols]
    spread[:, b < 0] = np.nan
    X = np.concatenate(
        [
            tables.regime,
            key_block.reshape(n, -1),
            leg_block.reshape(n, -1),
            np.concatenate([tables.labels.transpose(1, 0, 2), spread], axis=2).reshape(n, -1),
            np.full((n, len(PROBABILITIES)), np.nan),
        ],
        axis=1,
    )
    return np.asarray(X, dtype=np.float64)


def batch_features(
    spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training entry: wide prices/labels -> (date_ids, global feature matrix) for every day."""
    pp, lp = panels_from_frames(spec, prices, labels)
    tables = compute_tables(spec, pp, lp)
    return tables.days, feature_matrix(spec, tables)


def last_day_features(spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame) -> np.ndarray:
    """Serving entry: long panels of the last WINDOW / LABEL_WINDOW days -> the last day's vector."""
    last = prices["date_id"][prices.height // len(spec.instruments) - 1]
    return feature_matrix(spec, compute_tables(spec, prices, labels, [last]))[0]
