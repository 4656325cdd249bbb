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

from kaggle_kernel import structure
from kaggle_kernel.schema import TargetDef, target_defs

ANNUAL = 252.0**0.5
FFILL_LIMIT = 5  # a price carries over at most this many missing days
# Days back the last day's features reach: the 63-day beta of a day 3 days back (the _L3 stats)
# reads daily returns from 65 days back, whose log price may be filled from 5 more days back.
LOOKBACK = 3 + 62 + 1 + 5
WINDOW = LOOKBACK + 1  # days of price history that determine the last day's features exactly
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
STRUCT_LAGS = (1, 2, 3)
STRUCT_STATS = (  # structural leg effects (instrument_features); windows ending t and 1-3 days earlier
    "res5",
    "res21",
    "peer5",
    "leadlag",
    *[f"{s}_L{k}" for k in STRUCT_LAGS for s in ("res5", "peer5", "leadlag")],
)
LSD_STATS = tuple(f"lsd_{s}" for s in STRUCT_STATS)  # per target: lag x (leg A - leg B)
OWN_STATS = (
    "lab1",
    "lab2",
    "lab3",
    "sret1",
    "sret5",
    "sret21",
    "sz5",
    "sz21",
    "srz5",
    "srz21",
    *LSD_STATS,
)
INST_STATS = (*LEG_STATS, *KEY_STATS, *STRUCT_STATS)
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
    def relations(self) -> dict[str, np.ndarray]:
        """Per instrument (structure.py): benchmark index, residual flag, peer group, related metal (-1 none)."""
        idx = self.inst_index
        groups = sorted({g for c in self.instruments if (g := structure.peer_group(c))})

        def code(name: str | None) -> int:
            return idx.get(name, -1) if name else -1

        bench = np.array([code(structure.class_benchmark(c)) for c in self.instruments])
        own = np.arange(len(self.instruments))
        return {
            "benchmark": np.where(bench == own, -1, bench),
            "residual": np.array([structure.has_residual(c) for c in self.instruments]) & (bench >= 0),
            "peer": np.array(
                [groups.index(g) if (g := structure.peer_group(c)) else -1 for c in self.instruments]
            ),
            "metal": np.array([code(structure.related_metal(c)) for c in self.instruments]),
        }

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


def _gather(rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """rows[codes], NaN where the code is -1."""
    out = rows[np.maximum(codes, 0)]
    out[codes < 0] = np.nan
    return out


def _structural(
    spec: FeatureSpec,
    rets: dict[int, np.ndarray],
    bench: dict[int, np.ndarray],
    vol: np.ndarray,
    beta: np.ndarray,
    pad: int,
    start: int = 0,
) -> np.ndarray:
    """(instruments, padded days from `start`, STRUCT_STATS), in log-return units, 0 where undefined:
    - res5, res21: the return net of the class benchmark (structure.py; 63-day beta), for US stocks and FX;
    - peer5: the 5-day return relative to the exchange peers' average, each scaled by its own 63-day
      volatility, in the instrument's volatility (LME metals; JPX gold and platinum);
    - leadlag: the related LME metal's 5-day return in the stock's volatility, per day;
    - and res5, peer5, leadlag 1, 2 and 3 days earlier.
    """
    rel = spec.relations
    rets = {k: v[:, start:] for k, v in rets.items()}
    bench = {k: v[:, start:] for k, v in bench.items()}
    vol, beta = vol[:, start:], beta[:, start:]
    with np.errstate(invalid="ignore", divide="ignore"):
        z5 = rets[5] / vol
        base = {
            f"res{k}": np.where(rel["residual"][:, None], rets[k] - beta * bench[k], np.nan) for k in (5, 21)
        }
        peer = np.full_like(z5, np.nan)
        for g in range(rel["peer"].max(initial=-1) + 1):
            members = rel["peer"] == g
            seen = ~np.isnan(z5[members])
            mean = np.where(seen, z5[members], 0.0).sum(axis=0) / seen.sum(axis=0)
            peer[members] = vol[members] * (z5[members] - mean)
        base["peer5"] = peer
        base["leadlag"] = vol * _gather(z5, rel["metal"]) / 5
    base = {k: np.where(np.isfinite(v), v, 0.0) for k, v in base.items()}
    out = np.zeros((*z5.shape, len(STRUCT_STATS)))
    for i, name in enumerate(STRUCT_STATS):
        stat, _, lag = name.partition("_L")
        k = int(lag or 0)
        out[:, k:, i] = base[stat][:, : z5.shape[1] - k]
    out[:, : max(pad - start, 0)] = 0.0
    return out


def instrument_features(
    spec: FeatureSpec, prices: pl.DataFrame, keep: np.ndarray | None = None
) -> tuple[np.ndarray, pl.DataFrame]:
    """(instruments, kept days, INST_STATS), and the market's daily return per day.

    Per instrument and day: log-returns over 1/5/21 days, volume z-score, rolling mean/std of
    returns, 5/21-day returns scaled by the 21-day volatility, raw (z) and net of the instrument's
    class benchmark (rz; structure.py, 63-day rolling beta), and the structural stats (_structural).
    The market is the equity proxy (first `spec.proxy` column, else the next). `keep`: positions
    of the days wanted (default all). Every instrument's block is preceded by PAD null rows (unless
    every kept day's look-back lies inside its block, as when serving the last day), so the
    expressions run over one long column yet never see another instrument's values (what
    `.over("inst")` would give, at a fraction of its per-call cost).
    """
    n_inst = len(spec.instruments)
    n_days = prices.height // n_inst
    keep = np.arange(n_days) if keep is None else np.asarray(keep)
    pad = 0 if keep.min() >= LOOKBACK else PAD
    size = n_days + pad
    frame = pl.DataFrame(
        {
            "price": _padded(prices["price"].to_numpy(), n_inst, pad),
            "volume": _padded(prices["volume"].to_numpy(), n_inst, pad),
            "real": np.tile(np.arange(size) >= pad, n_inst),
        },
        nan_to_null=True,
    )
    lv = pl.col("volume").log1p()
    frame = frame.select(
        pl.when("real").then(pl.col("price").log().forward_fill(limit=FFILL_LIMIT)).alias("lp"),
        ((lv - lv.rolling_mean(21, min_samples=10)) / lv.rolling_std(21, min_samples=10)).alias("volz"),
    )
    # returns of every instrument, of the market and of each instrument's benchmark
    shape = (n_inst, size)
    lp = frame["lp"].to_numpy().reshape(shape)
    proxies = [spec.inst_index[c] for c in spec.proxy]
    rets = {k: _diff(lp, k) for k in (1, 5, 21)}
    market = _first_of(rets[1], proxies)
    bench = {k: _gather(rets[k], spec.relations["benchmark"]) for k in (1, 5, 21)}
    rolling = pl.DataFrame({"ret1": rets[1].ravel(), "b1": bench[1].ravel()}, nan_to_null=True).select(
        pl.col("ret1").rolling_mean(5, min_samples=3).alias("mean5"),
        pl.col("ret1").rolling_mean(21, min_samples=14).alias("mean21"),
        pl.col("ret1").rolling_std(5, min_samples=3).alias("std5"),
        pl.col("ret1").rolling_std(21, min_samples=14).alias("std21"),
        pl.col("ret1").rolling_std(63, min_samples=40).alias("vol63"),
        (
            pl.rolling_cov("ret1", "b1", window_size=63, min_samples=40)
            / pl.col("b1").rolling_var(63, min_samples=40)
        ).alias("beta"),
    )
    beta = rolling["beta"].to_numpy().reshape(shape)
    # the structural stats of the kept days need the 3 days before them (and a day with no
    # history before it is a pad day, 0 either way)
    start = max(int(pad + keep.min()) - max(STRUCT_LAGS), 0)
    struct = _structural(spec, rets, bench, rolling["vol63"].to_numpy().reshape(shape), beta, pad, start)
    rows = (np.arange(n_inst)[:, None] * size + pad + keep[None, :]).ravel()
    at = pad + keep
    stats = {f"ret{k}": rets[k][:, at] for k in (1, 5, 21)}
    stats["volz"] = frame["volz"].gather(rows).to_numpy().reshape(n_inst, len(keep))
    values = rolling[rows].select(KEY_STATS).to_numpy().T.reshape(len(KEY_STATS), n_inst, len(keep))
    stats.update(zip(KEY_STATS, values, strict=True))
    for k in (5, 21):
        scale = stats["std21"] * k**0.5
        stats[f"z{k}"] = stats[f"ret{k}"] / scale
        # NaN without a benchmark (the equity proxy itself; instruments whose benchmark is absent)
        stats[f"rz{k}"] = (rets[k][:, at] - beta[:, at] * bench[k][:, at]) / scale
    block = np.stack([stats[c] for c in (*LEG_STATS, *KEY_STATS)], axis=2)
    market_frame = pl.DataFrame({"date_id": prices["date_id"][:n_days], "m1": market[pad:]}, nan_to_null=True)
    return np.concatenate([block, struct[:, at - start]], axis=2), market_frame


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
    keys = [spec.inst_index[c] for c in spec.key_instruments]
    key_block = inst[:, keys, n_leg_stats : n_leg_stats + len(KEY_STATS)]
    a, b = spec.leg_codes
    spread_cols = [LEG_STATS.index(c) for c in SPREAD_STATS]
    spread = inst[:, a][:, :, spread_cols] - inst[:, np.maximum(b, 0)][:, :, spread_cols]
    spread[:, b < 0] = np.nan
    struct_cols = [INST_STATS.index(c) for c in STRUCT_STATS]
    leg_b = np.where((b < 0)[None, :, None], 0.0, inst[:, np.maximum(b, 0)][:, :, struct_cols])
    lags = np.array([t.lag for t in spec.targets], dtype=np.float64)[None, :, None]
    lsd = lags * (inst[:, a][:, :, struct_cols] - leg_b)
    X = np.concatenate(
        [
            tables.regime,
            key_block.reshape(n, -1),
            leg_block.reshape(n, -1),
            np.concatenate([tables.labels.transpose(1, 0, 2), spread, lsd], axis=2).reshape(n, -1),
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
