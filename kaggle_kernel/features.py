"""Every model feature, defined once as polars expressions; training and serving run the same code.

Data is held long, so the number of expressions does not grow with the number of series:
- prices: one row per (instrument, day), `inst` = index into `FeatureSpec.instruments`;
- labels: one row per (target, label day), `target` = target index, `lag` its horizon.
Both grids are complete and sorted (group, date_id), so k rows back in a group is k trading days.

Training evaluates the expressions over the whole history; serving (`day_features`) evaluates the
same code on the last WINDOW days and keeps the last day, except for the rolling statistics, which it
computes in numpy at the few days it needs (`_rolling_at`, `_regime_at`: the same windows and minimum
counts, ROLLING and REGIME_ROLLING; per-call polars overhead was most of a served day). The parity
tests check serving against training for every feature and day, and the numpy statistics against the
polars expressions. `feature_matrix` lays the result out as the global feature vector of each day
(`FeatureSpec.all_features()` order), which the per-target models and the packed forest index into.

At day t the newest delivered lag-L label is the label of day t-L-1 (Kaggle's lag files), so
own-label features read the label series shifted by L+1, L+2 and L+3 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import polars as pl

from kaggle_kernel import structure
from kaggle_kernel.schema import TargetDef, target_defs
from kaggle_kernel.state import HISTORY_MARGIN

ANNUAL = 252.0**0.5
FFILL_LIMIT = 5  # a price carries over at most this many missing days
MIN_VOL = 1e-8  # a daily log-return std at or below this is a flat price: nothing to scale returns by
# Days back the last day's features reach: the 63-day beta of a day 3 days back (the _L3 stats)
# reads daily returns from 65 days back, whose log price may be filled from 5 more days back.
LOOKBACK = 3 + 62 + 1 + 5
WINDOW = LOOKBACK + 1  # days of price history that determine the last day's features exactly
REPLAY_DAYS = 160  # Kaggle's public phase replays the last training days; bootstrap history covers that
PRIOR_DAYS = 252  # label days in a target's prior (the mean and the mean daily rank of its delivered labels)
PRIOR_MIN = 20  # fewer delivered labels than this in the prior window: the prior is unknown
# A label is a difference of log returns over at most 5 days: beyond this in size (a 148-fold move)
# or not finite, it is a corrupt cell and counts as missing (it would sit in the prior for a year)
MAX_ABS_LABEL = 5.0
LABEL_WINDOW = PRIOR_DAYS + 5  # days of label history that determine the last day's own-label features
HISTORY_DAYS = max(WINDOW, LABEL_WINDOW) + HISTORY_MARGIN  # days the kernel keeps before the newest day
BOOTSTRAP_DAYS = HISTORY_DAYS + REPLAY_DAYS  # days of the snapshot the kernel bootstraps from

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
MARKET_FEATURES = ("px_rv21_L5", "px_rv21_L21")  # the proxy's realized volatility 5 and 21 days earlier
# Return windows (days back at which the window ends, days back at which it starts): the last
# 1/5/21/63 days, and windows that end 5 and 21 days back (slow momentum, delayed lead-lag)
WINDOWS = {
    "ret1": (0, 1),
    "ret5": (0, 5),
    "ret21": (0, 21),
    "ret63": (0, 63),
    "ret5_21": (5, 21),
    "ret21_63": (21, 63),
}
# Back-to-back blocks of the key instruments' past (a distributed lag): a linear model of one target
# rebuilds from them a lead-lag of any delay up to 63 days (`FeatureSpec.local_layout`)
KEY_LAGGED = {
    "ret5_10": (5, 10),
    "ret10_15": (10, 15),
    "ret15_21": (15, 21),
    "ret21_42": (21, 42),
    "ret42_63": (42, 63),
}
SCALED = {f"z{k.removeprefix('ret')}": k for k in WINDOWS if k != "ret1"}  # returns in 21-day-vol units
VOL_STATS = ("std21", "std21_L5", "std21_L21")  # realized (daily) volatility, now and 5 and 21 days earlier
KEY_STATS = (*WINDOWS, "std5", *VOL_STATS)
CONTEXT_KEY_STATS = ("ret5", "ret21", "ret63", "std21")  # of the key instruments, in models of one target
RZ_DAYS = (5, 21, 63)  # horizons of the returns net of the class benchmark (rz: residual momentum)
RZ_STATS = tuple(f"rz{k}" for k in RZ_DAYS)
LEG_STATS = (*WINDOWS, "volz", *SCALED, *RZ_STATS, *VOL_STATS)
STRUCT_LAGS = (1, 2, 3)
STRUCT_STATS = (  # structural leg effects (instrument_features); windows ending t and 1-3 days earlier
    "res5",
    "res21",
    "res63",
    "peer5",
    "leadlag",
    *[f"{s}_L{k}" for k in STRUCT_LAGS for s in ("res5", "peer5", "leadlag")],
)
LSD_STATS = tuple(f"lsd_{s}" for s in STRUCT_STATS)  # per target: lag x (leg A - leg B)
SPREAD_STATS = (*WINDOWS, *SCALED, *RZ_STATS)  # leg stats differenced per target
LABEL_STATS = ("lab1", "lab2", "lab3", "lmean", "lrank")  # delivered labels: last three, prior mean and rank
GENERIC_OWN = (*LABEL_STATS, *[f"s{s}" for s in SPREAD_STATS])
OWN_STATS = (*GENERIC_OWN, *LSD_STATS)
INST_STATS = (*dict.fromkeys([*LEG_STATS, *KEY_STATS, *KEY_LAGGED]), *STRUCT_STATS)
TARGET_CONSTANTS = ("lag", "class_a", "class_b")  # per target, the same every day (categorical in models)


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
    def target_lags(self) -> np.ndarray:
        """Per target, its lag (label horizon) in days."""
        return np.array([t.lag for t in self.targets], dtype=np.int64)

    @cached_property
    def key_features(self) -> list[str]:
        return [f"key_{_short(c)}_{s}" for c in self.key_instruments for s in KEY_STATS]

    @cached_property
    def key_lag_features(self) -> list[str]:
        return [f"key_{_short(c)}_{s}" for c in self.key_instruments for s in KEY_LAGGED]

    @cached_property
    def shared_features(self) -> list[str]:
        return [*REGIME_FEATURES, *MARKET_FEATURES, *self.key_features]

    @cached_property
    def context_features(self) -> list[str]:
        """The day's market context a model of one target sees: the proxy's regime features and
        lagged volatility, and the key instruments' 5/21/63-day returns and volatility."""
        keys = [f"key_{_short(c)}_{s}" for c in self.key_instruments for s in CONTEXT_KEY_STATS]
        return [*REGIME_FEATURES, *MARKET_FEATURES, *keys]

    @cached_property
    def constants(self) -> np.ndarray:
        """(targets, TARGET_CONSTANTS): the target's lag and its legs' asset classes (-1: no leg B)."""
        return np.array(
            [
                [t.lag, structure.asset_class(t.leg_a), structure.asset_class(t.leg_b) if t.leg_b else -1]
                for t in self.targets
            ],
            dtype=np.float64,
        )

    @cached_property
    def local_layout(self) -> tuple[str, ...]:
        """The features of one target's own linear model, `{target}` standing for its name: its
        generic own stats, every key instrument's last 5 days and the blocks before them, the
        market's volatility and the regime probability (per-target slopes: lead-lag, flight to quality)."""
        keys = [f"key_{_short(c)}_{s}" for c in self.key_instruments for s in ("ret5", *KEY_LAGGED)]
        return (*[f"{{target}}_{s}" for s in GENERIC_OWN], *keys, "px_rv21", *MARKET_FEATURES, REGIME_PROB)

    @cached_property
    def positions(self) -> dict[str, int]:
        """Each feature's position in the global vector (`all_features`)."""
        return {n: i for i, n in enumerate(self.all_features())}

    def local_index(self) -> np.ndarray:
        """(targets, local features): positions of each target's `local_layout` in the global vector."""
        col = self.positions
        return np.array(
            [[col[f.format(target=t.name)] for f in self.local_layout] for t in self.targets], dtype=np.int64
        )

    def pooled_context(self, structural: bool = False) -> list[str]:
        """The day's context in a pooled row: the same in every target's row of one day (trees only:
        a linear model cannot use it, since ranks across the targets ignore it)."""
        return [] if structural else [*self.context_features, REGIME_PROB]

    def pooled_features(self, structural: bool = False) -> list[str]:
        """Names of a pooled (day, target) row: own stats, leg A, leg B, the day's context (trees
        only: `structural` is the linear layout, with the lsd_* stats and without context), constants."""
        own = GENERIC_OWN + (LSD_STATS if structural else ())
        return [
            *[f"own_{s}" for s in own],
            *[f"a_{s}" for s in LEG_STATS],
            *[f"b_{s}" for s in LEG_STATS],
            *self.pooled_context(structural),
            *TARGET_CONSTANTS,
        ]

    def pooled_index(self, structural: bool = False) -> np.ndarray:
        """(targets, pooled features without the constants): positions in the global vector, -1 none."""
        col = self.positions
        own = GENERIC_OWN + (LSD_STATS if structural else ())
        shared = [col[n] for n in self.pooled_context(structural)]
        rows = []
        for t in self.targets:
            a = [col[f"leg_{t.leg_a}_{s}"] for s in LEG_STATS]
            b = [col[f"leg_{t.leg_b}_{s}"] for s in LEG_STATS] if t.leg_b else [-1] * len(LEG_STATS)
            rows.append([*[col[f"{t.name}_{s}"] for s in own], *a, *b, *shared])
        return np.array(rows, dtype=np.int64)

    def leg_features(self, leg: str) -> list[str]:
        return [f"leg_{leg}_{s}" for s in LEG_STATS]

    def own_features(self, t: TargetDef) -> list[str]:
        return [f"{t.name}_{s}" for s in OWN_STATS]

    def all_features(self) -> list[str]:
        """The global feature vector of one day, as `feature_matrix` lays it out."""
        names = [*self.shared_features, *self.key_lag_features]
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
        return [*names, *self.context_features, *probabilities]

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


def instrument_arrays(
    spec: FeatureSpec, columns: Sequence[str], values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(instruments, days) prices and volumes from a wide day x column matrix; NaN where absent.

    A price must be finite and positive and a volume finite and non-negative; any other cell is
    missing, so one corrupt cell (0, -5, inf) cannot reach the returns of the next 63 days. Training
    and serving both read prices through here."""
    price_at, volume_at = _instrument_positions(spec.instruments, tuple(columns))
    values = np.asarray(values, dtype=np.float64)
    rows = np.concatenate([values.T, np.full((1, len(values)), np.nan)])  # position -1: the NaN row
    price, volume = rows[price_at], rows[volume_at]
    return _usable(price, volume)


def _usable(price: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prices and volumes with every cell instrument_arrays reads as missing made NaN (in place)."""
    with np.errstate(invalid="ignore"):
        price[~((price > 0) & (price < np.inf))] = np.nan
        volume[~((volume >= 0) & (volume < np.inf))] = np.nan
    return price, volume


def usable_prices(spec: FeatureSpec, columns: Sequence[str], values: np.ndarray) -> np.ndarray:
    """A day x column matrix of `columns` with the cells instrument_arrays reads as missing made NaN:
    what the kernel stores, so a corrupt cell sent for a day it holds never replaces a good one."""
    price_at, volume_at = (a[a >= 0] for a in _instrument_positions(spec.instruments, tuple(columns)))
    out = np.array(values, dtype=np.float64)
    price, volume = _usable(out[:, price_at], out[:, volume_at])
    out[:, price_at], out[:, volume_at] = price, volume
    return out


@lru_cache(maxsize=16)
def _instrument_positions(
    instruments: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per instrument, the column of its price and of its volume in `columns` (-1: absent)."""
    pos = {c: i for i, c in enumerate(columns)}
    price = [pos.get(c, -1) for c in instruments]
    volume = [pos.get(v, -1) if (v := volume_column(c)) is not None else -1 for c in instruments]
    return np.array(price, dtype=np.intp), np.array(volume, dtype=np.intp)


def price_panel(
    spec: FeatureSpec, date_ids: np.ndarray, columns: Sequence[str], values: np.ndarray
) -> pl.DataFrame:
    """Long (inst, date_id, price, volume) from a wide day x column matrix on consecutive date_ids.

    Instruments absent from `columns` get null prices, so the grid is always complete.
    """
    n_days, n_inst = len(date_ids), len(spec.instruments)
    price, volume = instrument_arrays(spec, columns, values)
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


def usable_labels(values: np.ndarray) -> np.ndarray:
    """`values` with every label beyond MAX_ABS_LABEL in size, or not finite, made missing (NaN):
    what the features read, in training (label_panel) and serving (the kernel's label history)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(values) <= MAX_ABS_LABEL, values, np.nan)


def label_panel(spec: FeatureSpec, date_ids: np.ndarray, values: np.ndarray) -> pl.DataFrame:
    """Long (target, lag, date_id, value) from a day x target label matrix on consecutive label days;
    only usable_labels (the kernel keeps only those as they arrive)."""
    n_days, n_t = len(date_ids), len(spec.targets)
    lags = np.array([t.lag for t in spec.targets], dtype=np.int32)
    return pl.DataFrame(
        {
            "target": np.repeat(np.arange(n_t, dtype=np.uint32), n_days),
            "lag": np.repeat(lags, n_days),
            "date_id": np.tile(np.asarray(date_ids, dtype=np.int64), n_t),
            "value": usable_labels(np.asarray(values, dtype=np.float64)).T.ravel(),
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
    - res5, res21, res63: the return net of the class benchmark (structure.py; 63-day beta), for US
      stocks and FX (residual reversal and residual momentum over a week, a month, a quarter);
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
            f"res{k}": np.where(rel["residual"][:, None], rets[k] - beta * bench[k], np.nan) for k in RZ_DAYS
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


# rolling statistics of daily log returns (volz: of log volume): (window, min non-null values)
ROLLING = {"std5": (5, 3), "std21": (21, 14), "vol63": (63, 40), "beta": (63, 40), "volz": (21, 10)}


def _log_series(
    price: np.ndarray, volume: np.ndarray, pad: int, groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Padded long price and volume -> (log price carried over at most FFILL_LIMIT missing days,
    log(1 + volume)), each (groups, padded days); pad rows stay NaN."""
    frame = pl.DataFrame(
        {"price": price, "volume": volume, "real": np.tile(np.arange(len(price) // groups) >= pad, groups)},
        nan_to_null=True,
    ).select(
        pl.when("real").then(pl.col("price").log().forward_fill(limit=FFILL_LIMIT)).alias("lp"),
        pl.col("volume").log1p().alias("lv"),
    )
    return frame["lp"].to_numpy().reshape(groups, -1), frame["lv"].to_numpy().reshape(groups, -1)


def _log_filled(price: np.ndarray) -> np.ndarray:
    """_log_series' log price of unpadded (instruments, days) in numpy (a missing price is NaN)."""
    missing = np.isnan(price)
    with np.errstate(invalid="ignore", divide="ignore"):
        lp = np.log(price)
    pos = np.arange(price.shape[1])
    last = np.maximum.accumulate(np.where(missing, -1, pos), axis=1)
    filled = np.take_along_axis(lp, np.maximum(last, 0), axis=1)
    return np.where((last >= 0) & (pos - last <= FFILL_LIMIT), filled, np.nan)


def _rolling_polars(ret1: np.ndarray, b1: np.ndarray, lv: np.ndarray) -> dict[str, np.ndarray]:
    """The ROLLING stats at every position of (groups, padded days) arrays (NaN is missing): polars
    over one long column, which the pad rows keep from reading another group's values."""
    w = ROLLING
    lvc = pl.col("lv")
    frame = pl.DataFrame({"ret1": ret1.ravel(), "b1": b1.ravel(), "lv": lv.ravel()}, nan_to_null=True).select(
        *[
            pl.col("ret1").rolling_std(w[k][0], min_samples=w[k][1]).alias(k)
            for k in ("std5", "std21", "vol63")
        ],
        (
            pl.rolling_cov("ret1", "b1", window_size=w["beta"][0], min_samples=w["beta"][1])
            / pl.col("b1").rolling_var(w["beta"][0], min_samples=w["beta"][1])
        ).alias("beta"),
        (
            (lvc - lvc.rolling_mean(w["volz"][0], min_samples=w["volz"][1]))
            / lvc.rolling_std(w["volz"][0], min_samples=w["volz"][1])
        ).alias("volz"),
    )
    return {k: frame[k].to_numpy().reshape(ret1.shape) for k in w}


def _windows(x: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """(rows, positions, size): the `size` values of each row ending at each position, NaN before the row."""
    positions = np.asarray(positions)
    if positions.size and positions.min() >= size - 1:  # serving: every window inside the row, one gather
        return x[:, positions[:, None] + np.arange(1 - size, 1)]
    xp = np.concatenate([np.full((x.shape[0], size - 1), np.nan), x], axis=1)
    return np.lib.stride_tricks.sliding_window_view(xp, size, axis=1)[:, positions]


def _moments(x: np.ndarray, y: np.ndarray | None, least: int) -> tuple[np.ndarray, np.ndarray]:
    """Over the last axis of windows: (mean of x, sample covariance of x and y, or variance of x) of
    the non-missing values (pairs for the covariance); NaN with fewer than `least` of them."""
    ok = ~np.isnan(x) if y is None else ~(np.isnan(x) | np.isnan(y))
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(ok, x, 0.0).sum(axis=-1) / n
        dx = np.where(ok, x - mx[..., None], 0.0)
        dy = dx if y is None else np.where(ok, y - (np.where(ok, y, 0.0).sum(axis=-1) / n)[..., None], 0.0)
        cov = (dx * dy).sum(axis=-1) / (n - 1)
    least_ok = n >= least
    return np.where(least_ok, mx, np.nan), np.where(least_ok, cov, np.nan)


def _rolling_at(
    ret1: np.ndarray, b1: np.ndarray, lv: np.ndarray, positions: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """_rolling_polars in numpy on unpadded rows, each stat at its `positions` only (NaN elsewhere).
    Serving asks only for windows inside the row."""

    def windows(x: np.ndarray, key: str) -> np.ndarray:
        return _windows(x, positions[key], ROLLING[key][0])

    out = {k: np.full(ret1.shape, np.nan) for k in ROLLING}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in ("std5", "std21", "vol63"):
            out[k][:, positions[k]] = np.sqrt(_moments(windows(ret1, k), None, ROLLING[k][1])[1])
        r, b, least = windows(ret1, "beta"), windows(b1, "beta"), ROLLING["beta"][1]
        out["beta"][:, positions["beta"]] = _moments(r, b, least)[1] / _moments(b, None, least)[1]
        mean, var = _moments(windows(lv, "volz"), None, ROLLING["volz"][1])
        out["volz"][:, positions["volz"]] = (lv[:, positions["volz"]] - mean) / np.sqrt(var)
    return out


def instrument_features(
    spec: FeatureSpec, price: np.ndarray, volume: np.ndarray, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(instruments, kept days, INST_STATS), and the market's daily return per day (NaN: none).

    Per instrument and day: log-returns over 1/5/21 days, volume z-score, rolling mean/std of
    returns, 5/21-day returns scaled by the 21-day volatility, raw (z) and net of the instrument's
    class benchmark (rz; structure.py, 63-day rolling beta), and the structural stats (_structural).
    The market is the equity proxy (first `spec.proxy` column, else the next). `price`, `volume`:
    (instruments, consecutive days). `keep`: positions of the days wanted (default all). Every instrument's block is preceded by PAD null rows (unless
    every kept day's look-back lies inside its block, as when serving the last day), so the
    expressions run over one long column yet never see another instrument's values (what
    `.over("inst")` would give, at a fraction of its per-call cost).
    """
    n_inst, n_days = price.shape
    keep = np.arange(n_days) if keep is None else np.asarray(keep)
    pad = 0 if keep.min() >= LOOKBACK else PAD
    size = n_days + pad
    at = pad + keep
    # the structural stats of the kept days need the 3 days before them (and a day with no
    # history before it is a pad day, 0 either way)
    start = max(int(pad + keep.min()) - max(STRUCT_LAGS), 0)
    if pad:  # training: polars over every day
        lp, lv = _log_series(_padded(price, n_inst, pad), _padded(volume, n_inst, pad), pad, n_inst)
    else:  # serving: every look-back inside the window; numpy on the few days needed
        lp, lv = _log_filled(price), np.log1p(volume)
    # returns of every instrument, of the market and of each instrument's benchmark
    proxies = [spec.inst_index[c] for c in spec.proxy]
    rets = {k: _diff(lp, k) for k in (1, *RZ_DAYS)}
    market = _first_of(rets[1], proxies)
    bench = {k: _gather(rets[k], spec.relations["benchmark"]) for k in (1, *RZ_DAYS)}
    if pad:
        rolling = _rolling_polars(rets[1], bench[1], lv)
    else:
        struct_days = np.arange(start, size)
        vol_days = np.concatenate([at - back for back in (0, 5, 21)])  # VOL_STATS
        positions = {"std5": at, "std21": vol_days, "vol63": struct_days, "beta": struct_days, "volz": at}
        rolling = _rolling_at(rets[1], bench[1], lv, positions)
    beta = rolling["beta"]
    struct = _structural(spec, rets, bench, rolling["vol63"], beta, pad, start)
    windows = {**WINDOWS, **KEY_LAGGED}
    stats = {name: lp[:, at - end] - lp[:, at - begin] for name, (end, begin) in windows.items()}
    stats["volz"] = rolling["volz"][:, at]
    std21 = rolling["std21"]
    stats["std5"] = rolling["std5"][:, at]
    for name, back in zip(VOL_STATS, (0, 5, 21), strict=True):
        stats[name] = std21[:, at - back]  # a pad (or serving-window) position: NaN, never another series
    # a flat price has no volatility to scale by (polars 1.x leaves ~1e-10 in the std of zeros, numpy 0)
    vol = np.where(stats["std21"] > MIN_VOL, stats["std21"], np.nan)
    for zname, rname in SCALED.items():
        end, begin = WINDOWS[rname]
        stats[zname] = stats[rname] / (vol * (begin - end) ** 0.5)
    for k in RZ_DAYS:
        # NaN without a benchmark (the equity proxy itself; instruments whose benchmark is absent)
        stats[f"rz{k}"] = (rets[k][:, at] - beta[:, at] * bench[k][:, at]) / (vol * k**0.5)
    generic = INST_STATS[: len(INST_STATS) - len(STRUCT_STATS)]
    block = np.stack([stats[c] for c in generic], axis=2)
    # every stat finite or NaN, whatever the arithmetic met (an infinite value is unknown, not extreme)
    block[~np.isfinite(block)] = np.nan
    return np.concatenate([block, struct[:, at - start]], axis=2), market[pad:]


# the market's realized volatilities and vol-of-vol: (window, min non-null values); the drawdown's window
REGIME_ROLLING = {"rv5": (5, 4), "rv21": (21, 15), "rv63": (63, 40), "vov21": (21, 15)}
DRAWDOWN_DAYS = 63


def regime_features(market: pl.DataFrame) -> pl.DataFrame:
    """Per day: the equity proxy's return, realized vols, term structure, vol-of-vol, drawdown.

    `market` is (date_id, m1), m1 the market return of `instrument_features`: where the first proxy's
    return is null the next proxy's is used, chained on returns so a switch of series causes no jump
    in the level.
    """
    r = pl.col("m1")
    lp = r.fill_null(0.0).cum_sum()
    w = REGIME_ROLLING
    rv5, rv21, rv63 = (r.rolling_std(w[k][0], min_samples=w[k][1]) * ANNUAL for k in ("rv5", "rv21", "rv63"))
    # cum_sum makes the level depend on the window start; the drawdown only uses differences
    return market.select(
        "date_id",
        r.alias("px_ret1"),
        rv5.alias("px_rv5"),
        rv21.alias("px_rv21"),
        rv63.alias("px_rv63"),
        (rv5 / rv21).alias("px_ts_5_21"),
        (rv21 / rv63).alias("px_ts_21_63"),
        rv5.rolling_std(w["vov21"][0], min_samples=w["vov21"][1]).alias("px_vov21"),
        (lp - lp.rolling_max(DRAWDOWN_DAYS, min_samples=1)).alias("px_dd63"),
        rv21.shift(5).alias("px_rv21_L5"),
        rv21.shift(21).alias("px_rv21_L21"),
    )


def _regime_at(m1: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """regime_features' REGIME_FEATURES and MARKET_FEATURES at `positions` of the market return, in
    numpy (serving: every window inside the series), (positions, features)."""
    w = REGIME_ROLLING

    def rv(key: str, *ats: np.ndarray) -> list[np.ndarray]:
        """The realized volatility at each array of positions (one computation for all of them)."""
        x = _windows(m1[None, :], np.concatenate(ats), w[key][0])[0]
        vol = np.sqrt(_moments(x, None, w[key][1])[1]) * ANNUAL
        return np.split(vol, np.cumsum([len(a) for a in ats])[:-1])

    with np.errstate(invalid="ignore", divide="ignore"):
        size, least = w["vov21"]
        back = positions[:, None] - np.arange(size - 1, -1, -1)[None, :]  # (positions, window) days
        rv5, rv5_days = rv("rv5", positions, np.maximum(back, 0).ravel())
        rv21, rv21_l5, rv21_l21 = rv("rv21", positions, positions - 5, positions - 21)
        (rv63,) = rv("rv63", positions)
        vov21 = np.sqrt(_moments(np.where(back >= 0, rv5_days.reshape(back.shape), np.nan), None, least)[1])
        lp = np.cumsum(np.where(np.isnan(m1), 0.0, m1))
        peak = np.array([lp[max(p - DRAWDOWN_DAYS + 1, 0) : p + 1].max() for p in positions])
        cols = {
            "px_ret1": m1[positions],
            "px_rv5": rv5,
            "px_rv21": rv21,
            "px_rv63": rv63,
            "px_ts_5_21": rv5 / rv21,
            "px_ts_21_63": rv21 / rv63,
            "px_vov21": vov21,
            "px_dd63": lp[positions] - peak,
            "px_rv21_L5": rv21_l5,
            "px_rv21_L21": rv21_l21,
        }
    return np.stack([cols[c] for c in (*REGIME_FEATURES, *MARKET_FEATURES)], axis=1)


def day_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis among non-NaN values, scaled to [-0.5, 0.5] (NaN stays NaN;
    a row with fewer than two values is all NaN). The same function ranks training and serving rows."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        return _row_ranks(v)
    n = v.shape[-1]
    order = np.argsort(v, axis=-1, kind="stable")  # NaN sort last
    s = np.take_along_axis(v, order, axis=-1)
    pos = np.broadcast_to(np.arange(n), s.shape)
    new = np.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    last_new = np.ones(s.shape, dtype=bool)
    last_new[..., :-1] = new[..., 1:]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(last_new, pos, n), -1), axis=-1), -1)
    avg = np.empty(s.shape)
    np.put_along_axis(avg, order, (first + last) / 2.0 + 1.0, axis=-1)
    count = np.sum(~np.isnan(v), axis=-1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isnan(v) | (count < 2), np.nan, (avg - 0.5) / count - 0.5)


def _row_ranks(v: np.ndarray) -> np.ndarray:
    """day_ranks of one row (what serving ranks), the same numbers in a few calls: a value's tie
    group spans the sorted positions [left, right), so its average 1-based rank is (left + right - 1) / 2 + 1.
    Without ties (a forecast, mostly) position p's rank is p + 1: one sort and a scatter."""
    order = np.argsort(v)
    s = v[order]  # NaN sort last, so they never count as smaller
    count = len(v) - int(np.isnan(s).sum())
    if count >= 2 and not (s[1:count] == s[: count - 1]).any():
        out = np.full(len(v), np.nan)
        out[order[:count]] = (np.arange(count) + 0.5) / count - 0.5  # (rank - 0.5) / count - 0.5
        return out
    first, end = np.searchsorted(s, v, "left"), np.searchsorted(s, v, "right")
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = (first + (end - 1)) / 2.0 + 1.0
        return np.where(np.isnan(v) | (count < 2), np.nan, (avg - 0.5) / float(count) - 0.5)


def _window_mean(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per row, the mean of the non-NaN values in positions [end - PRIOR_DAYS, end) for each end
    (ends: (rows, days)); NaN with fewer than PRIOR_MIN of them."""
    zero = np.zeros((values.shape[0], 1))
    cs = np.concatenate([zero, np.cumsum(np.nan_to_num(values), axis=1)], axis=1)
    cnt = np.concatenate([zero, np.cumsum(~np.isnan(values), axis=1)], axis=1)
    e = np.clip(ends, 0, values.shape[1])
    b = np.clip(ends - PRIOR_DAYS, 0, values.shape[1])
    total = np.take_along_axis(cs, e, 1) - np.take_along_axis(cs, b, 1)
    count = np.take_along_axis(cnt, e, 1) - np.take_along_axis(cnt, b, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= PRIOR_MIN, total / count, np.nan)


# Serving: moves of a lag's prior window after which its running sums are recomputed exactly, so
# the rounding of additions and removals never accumulates over a long replay
PRIOR_REFRESH = 32


@dataclass
class _PriorMemo:
    """One lag's last prior window, as rings of label-day columns (targets x window days; column
    `head` holds the oldest day): label values and their day ranks; per target (row 0 values, row 1
    ranks) the sums and counts of the non-NaN cells; moves since the sums were exact."""

    values: np.ndarray
    ranks: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    head: int = 0
    moves: int = 0

    def ordered(self, ring: np.ndarray) -> np.ndarray:
        return np.concatenate([ring[:, self.head :], ring[:, : self.head]], axis=1)

    def holds(self, block: np.ndarray, skip: int) -> bool:
        """Whether `block`'s first columns are this window without its `skip` (0 or 1) oldest days."""
        if block.shape != self.values.shape:
            return False
        first = block.shape[1] - self.head - skip  # ring columns head + skip.. come first, then ..head
        return _same_bits(block[:, :first], self.values[:, self.head + skip :]) and _same_bits(
            block[:, first : block.shape[1] - skip], self.values[:, : self.head]
        )


_PRIOR_MEMO: dict[int, _PriorMemo] = {}  # serving: per lag, the last window


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays, NaN equal to NaN (compared as bits, without copying)."""
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def _exact_sums(block: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.stack([block, ranks])
    missing = np.isnan(both)
    return np.where(missing, 0.0, both).sum(axis=2), both.shape[2] - missing.sum(axis=2)


def _prior_memo(lag: int, block: np.ndarray) -> _PriorMemo:
    """The prior window `block` (targets x label days, a fresh array) of one lag with its ranks and
    sums. Serving moves the window on by at most one day per call: when it shares all but its newest
    day with the last window of this lag (same values), only that day is ranked, it replaces the
    oldest day in the rings, and the sums gain it and lose the day that left (every PRIOR_REFRESH
    moves they are summed anew from the rings); any other window is computed anew."""
    memo = _PRIOR_MEMO.get(lag)
    if memo is not None and memo.holds(block, 1):
        new, h = block[:, -1], memo.head
        rank = day_ranks(new)
        enter, leave = np.stack([new, rank]), np.stack([memo.values[:, h], memo.ranks[:, h]])
        memo.values[:, h], memo.ranks[:, h] = new, rank
        memo.head, memo.moves = (h + 1) % block.shape[1], memo.moves + 1
        if memo.moves < PRIOR_REFRESH:
            memo.sums = (
                memo.sums + np.where(np.isnan(enter), 0.0, enter) - np.where(np.isnan(leave), 0.0, leave)
            )
            memo.counts = memo.counts + np.isnan(leave) - np.isnan(enter)
        else:
            memo.sums, memo.counts = _exact_sums(memo.ordered(memo.values), memo.ordered(memo.ranks))
            memo.moves = 0
        return memo
    if memo is not None and memo.holds(block, 0):  # the same day again
        return memo
    ranks = day_ranks(block.T).T
    memo = _PriorMemo(block, ranks, *_exact_sums(block, ranks))
    _PRIOR_MEMO[lag] = memo
    return memo


def _prior_at(values: np.ndarray, lags: np.ndarray, position: int) -> tuple[np.ndarray, np.ndarray]:
    """Serving: the label prior (mean, mean rank) of every target at one day position, from the
    PRIOR_DAYS newest delivered label days (same numbers as _window_mean, to rounding)."""
    out = np.full((2, len(lags)), np.nan)
    for lag in np.unique(lags):
        group = lags == lag
        end = position - lag  # exclusive: the newest delivered label day is position - lag - 1
        lo, hi = max(end - PRIOR_DAYS, 0), max(min(end, values.shape[1]), 0)
        if hi - lo < PRIOR_MIN:
            continue
        memo = _prior_memo(int(lag), values[group, lo:hi])  # a fresh copy (boolean row index)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, group] = np.where(memo.counts >= PRIOR_MIN, memo.sums / memo.counts, np.nan)
    return out[0], out[1]


def own_labels(spec: FeatureSpec, values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
    """(targets, positions, LABEL_STATS) from each target's delivered labels at day t (the lag-L label
    of day s is delivered at s + L + 1): the lag-L labels of days t-L-k for k = 1, 2, 3; and over the
    PRIOR_DAYS newest delivered label days, the mean label and the mean daily rank of the label among
    the targets of the same lag (those are delivered together, so the rank is known when they are).
    `values`: (targets, consecutive label days); `positions`: day positions in it (default every day;
    serving asks for the last)."""
    n_t = len(spec.targets)
    n = values.shape[1]
    pos = np.arange(n) if positions is None else np.asarray(positions, dtype=np.int64)
    lags = spec.target_lags
    out = np.full((n_t, len(pos), len(LABEL_STATS)), np.nan)
    src = pos[None, :, None] - (lags[:, None, None] + np.arange(1, 4))  # (targets, positions, k = 1..3)
    ok = src >= 0
    out[:, :, :3] = np.where(ok, values[np.arange(n_t)[:, None, None], np.where(ok, src, 0)], np.nan)
    if positions is not None and len(pos) <= 4:  # serving: a few days, ranks remembered across calls
        for j, p in enumerate(pos):
            out[:, j, 3], out[:, j, 4] = _prior_at(values, lags, int(p))
        return out
    ranks = np.full_like(values, np.nan)
    for lag in np.unique(lags):
        ranks[lags == lag] = day_ranks(values[lags == lag].T).T
    ends = pos[None, :] - lags[:, None]  # exclusive end: the newest delivered day is t-L-1
    out[:, :, 3] = _window_mean(values, ends)
    out[:, :, 4] = _window_mean(ranks, ends)
    return out


@dataclass
class FeatureTables:
    """The computed features of some days: per day, per (instrument, day) and per (target, day)."""

    days: np.ndarray
    regime: np.ndarray  # (days, REGIME_FEATURES)
    inst: np.ndarray  # (instruments, days, INST_STATS)
    labels: np.ndarray  # (targets, days, LABEL_STATS)


@dataclass(frozen=True)
class FeatureInputs:
    """What the features read: prices and volumes (instruments, days) on the consecutive `date_ids`,
    and labels (targets, label days) on consecutive label days from `label_start`."""

    date_ids: np.ndarray
    price: np.ndarray
    volume: np.ndarray
    label_start: int
    labels: np.ndarray

    @classmethod
    def from_panels(cls, spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame) -> FeatureInputs:
        """From the long price panel and the long label panel (on the same days or a shorter tail)."""
        n_inst, n_t = len(spec.instruments), len(spec.targets)
        return cls(
            prices["date_id"][: prices.height // n_inst].to_numpy(),
            prices["price"].to_numpy().reshape(n_inst, -1),
            prices["volume"].to_numpy().reshape(n_inst, -1),
            int(labels["date_id"][0]) if labels.height else 0,
            labels["value"].to_numpy().reshape(n_t, -1),
        )


def compute_tables(
    spec: FeatureSpec, inputs: FeatureInputs, days: Sequence[int] | None = None
) -> FeatureTables:
    """Features of `days` (default: every price day of `inputs`)."""
    all_days = inputs.date_ids
    days = all_days if days is None else np.asarray(days, dtype=np.int64)
    pos = days - all_days[0]
    inst, market = instrument_features(spec, inputs.price, inputs.volume, pos)
    if pos.min() >= LOOKBACK:  # serving: every look-back inside the window
        regime = _regime_at(market, pos)
    else:
        frame = pl.DataFrame({"date_id": all_days, "m1": market}, nan_to_null=True)
        regime = regime_features(frame).select(*REGIME_FEATURES, *MARKET_FEATURES).to_numpy()[pos]
    labs = np.full((len(spec.targets), len(days), len(LABEL_STATS)), np.nan)
    if inputs.labels.shape[1]:
        lpos = days - inputs.label_start
        ok = (lpos >= 0) & (lpos < inputs.labels.shape[1])
        labs[:, ok] = own_labels(spec, inputs.labels, lpos[ok] if len(days) <= 4 else None)[
            :, slice(None) if len(days) <= 4 else lpos[ok]
        ]
    return FeatureTables(days, regime, inst, labs)


@lru_cache(maxsize=16)
def _stat_columns(stats: tuple[str, ...]) -> np.ndarray:
    """Positions of `stats` among INST_STATS."""
    return np.array([INST_STATS.index(c) for c in stats], dtype=np.intp)


def feature_matrix(spec: FeatureSpec, tables: FeatureTables) -> np.ndarray:
    """One row per day of `tables` in `spec.all_features()` order; probability columns are NaN.

    Spread statistics are leg A's minus leg B's (null for single-leg targets).
    """
    n = len(tables.days)
    inst = tables.inst.transpose(1, 0, 2)  # (days, instruments, stats)

    def block(rows, stats: Sequence[str]) -> np.ndarray:  # (days, rows, stats), gathered in one step
        return inst[:, np.asarray(rows)[:, None], _stat_columns(tuple(stats))]

    leg_block = block(np.arange(len(spec.legs)), LEG_STATS)
    keys = [spec.inst_index[c] for c in spec.key_instruments]
    key_block = block(keys, KEY_STATS)
    key_lag_block = block(keys, KEY_LAGGED)
    a, b = spec.leg_codes
    b0 = np.maximum(b, 0)
    spread = block(a, SPREAD_STATS) - block(b0, SPREAD_STATS)
    spread[:, b < 0] = np.nan
    leg_b = np.where((b < 0)[None, :, None], 0.0, block(b0, STRUCT_STATS))
    lags = spec.target_lags.astype(np.float64)[None, :, None]
    lsd = lags * (block(a, STRUCT_STATS) - leg_b)
    own = (tables.labels.transpose(1, 0, 2), spread, lsd)  # (days, targets, stats) each
    parts = [tables.regime, key_block, key_lag_block, leg_block]
    widths = [int(np.prod(p.shape[1:])) for p in parts] + [len(spec.targets) * sum(o.shape[2] for o in own)]
    X = np.empty((n, sum(widths) + len(PROBABILITIES)))
    at = 0
    for part, width in zip([*parts, None], widths, strict=True):  # each block written once, in place
        shape = part.shape if part is not None else (n, len(spec.targets), width // len(spec.targets))
        view = X[:, at : at + width].reshape(shape)  # splitting the contiguous last axis: a view
        if part is None:  # the targets' own stats, side by side per target
            k = 0
            for o in own:
                view[:, :, k : k + o.shape[2]] = o
                k += o.shape[2]
        else:
            view[...] = part
        at += width
    X[:, at:] = np.nan
    return X


def pooled_rows(spec: FeatureSpec, X: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(days x targets, pooled features) float64 from global vectors X (days, features); `index` from
    `FeatureSpec.pooled_index`. Row d * n_targets + j is target j on day d."""
    n, width = X.shape[0], index.shape[1]
    pos = np.where(index < 0, X.shape[1], index)  # -1 reads the NaN column appended to each day
    out = np.empty((n, index.shape[0], width + spec.constants.shape[1]))
    day = np.empty(X.shape[1] + 1)
    day[-1] = np.nan
    for d in range(n):  # one day at a time: a contiguous gather, no (days, targets, features) temporaries
        day[:-1] = X[d]
        out[d, :, :width] = day[pos]
    out[:, :, width:] = spec.constants
    return out.reshape(n * index.shape[0], -1)


def batch_features(
    spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Training entry: wide prices/labels -> (date_ids, global feature matrix) for every day."""
    pp, lp = panels_from_frames(spec, prices, labels)
    tables = compute_tables(spec, FeatureInputs.from_panels(spec, pp, lp))
    return tables.days, feature_matrix(spec, tables)


def day_features(spec: FeatureSpec, inputs: FeatureInputs) -> np.ndarray:
    """Serving entry: inputs of the last WINDOW / LABEL_WINDOW days -> the last day's vector."""
    return feature_matrix(spec, compute_tables(spec, inputs, inputs.date_ids[-1:]))[0]


def last_day_features(spec: FeatureSpec, prices: pl.DataFrame, labels: pl.DataFrame) -> np.ndarray:
    """`day_features` of long panels (what the parity test slices from the training panels)."""
    return day_features(spec, FeatureInputs.from_panels(spec, prices, labels))
