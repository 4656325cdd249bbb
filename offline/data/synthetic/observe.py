"""Turn latent synthetic returns into the 557 observed columns: OHLC, volumes, open interest, nulls.

Closes follow the latent log prices; open, high and low wrap around them (low <= open, close <= high);
volumes rise with absolute returns and in stress. Nulls: exchange holidays (each exchange its own
dates), series that end (as in the real window) or start late, and occasional 1-3 day gaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.signal import lfilter

from kaggle_kernel.features import DEFAULT_KEY, DEFAULT_PROXY
from kaggle_kernel.schema import feature_columns
from offline.data.synthetic.universe import Universe, fx_legs, market_stats

FX_HOLIDAY = 0.002  # FX almost never null
GAP_RATE = 1 / 1000  # per instrument-day chance that a 1-3 day gap starts
LATE_STARTERS = 6
US_MAX_DECIMALS = 4


@dataclass
class NullPlan:
    """Which (day, instrument) cells are null and why; summarised into synthetic_truth.json."""

    mask: dict[str, np.ndarray]  # instrument -> bool per day (True = null)
    holidays: dict[str, list[int]]
    late_starters: dict[str, int]
    enders: dict[str, int]
    gaps: int


def plan_nulls(
    universe: Universe,
    days: int,
    window_start: int,
    window_days: int,
    protected: set[str],
    rng: np.random.Generator,
) -> NullPlan:
    """Draw holidays per exchange, late starts/ends and gaps for `days` days.

    Series that end inside the real window end at the same relative position of the synthetic test
    window; a series absent from the whole real window ends at a random day before it.
    """
    stats = market_stats()
    hol_rate = stats["exchange_holiday_fraction"]
    real_rows = stats["window_rows"]
    holidays: dict[str, np.ndarray] = {}
    for ex in ("LME", "JPX", "US", "FX"):
        rate = max(float(hol_rate.get(ex, 0.0)), FX_HOLIDAY)
        run = np.where(rng.random(days) < 0.15, rng.integers(2, 4, size=days), 1)  # some 2-3 day runs
        start = rng.random(days) < rate / 1.375
        h = np.zeros(days, dtype=bool)
        for d in np.flatnonzero(start):
            h[d : d + int(run[d])] = True
        holidays[ex] = h
    mask: dict[str, np.ndarray] = {}
    late: dict[str, int] = {}
    enders: dict[str, int] = {}
    gaps = 0
    names = list(universe.instruments)
    candidates = [n for n in names if universe.instruments[n]["exchange"] == "US" and n not in protected]
    chosen = set(rng.choice(candidates, size=min(LATE_STARTERS, len(candidates)), replace=False).tolist())
    late_rows = rng.integers(int(0.03 * days), max(int(0.4 * days), int(0.03 * days) + 1), size=len(names))
    end_rows = rng.integers(
        int(0.55 * window_start), max(window_start, int(0.55 * window_start) + 1), size=len(names)
    )
    gap_start = rng.random((days, len(names))) < GAP_RATE
    gap_len = rng.integers(1, 4, size=(days, len(names)))
    for j, inst in enumerate(names):
        info = universe.instruments[inst]
        m = holidays[info["exchange"]].copy()
        s = stats["instruments"].get(inst, {})
        if s.get("last_row") is None:
            enders[inst] = int(end_rows[j])
        elif s["last_row"] < real_rows - 1:
            enders[inst] = window_start + int(round((s["last_row"] + 1) * window_days / real_rows)) - 1
        if inst in enders:
            m[enders[inst] + 1 :] = True
        if inst in chosen:
            late[inst] = int(late_rows[j])
            m[: late[inst]] = True
        if info["exchange"] != "FX":
            for d in np.flatnonzero(gap_start[:, j]):
                m[d : d + int(gap_len[d, j])] = True
                gaps += 1
        mask[inst] = m
    return NullPlan(
        mask=mask,
        holidays={k: np.flatnonzero(v).tolist() for k, v in holidays.items()},
        late_starters=late,
        enders=enders,
        gaps=gaps,
    )


def protected_instruments() -> set[str]:
    """Instruments the features lean on (proxy, key instruments) and lead-lag followers: never late starters."""
    from offline.data.synthetic.derive_stats import split_column
    from offline.data.synthetic.market import LEAD_LAG, WIDE_LEAD_LAG

    out = {t for _, followers in (*LEAD_LAG, *WIDE_LEAD_LAG) for t in followers if not t.startswith("CCY_")}
    for col in (*DEFAULT_PROXY, *DEFAULT_KEY):
        out.add(split_column(col)[1])
    return out


def _round(x: np.ndarray, decimals: int) -> np.ndarray:
    step = 10.0**-decimals
    return np.maximum(np.round(x, decimals), step)


def observe(
    universe: Universe,
    log_close: np.ndarray,
    abs_z: np.ndarray,
    stressed: np.ndarray,
    vol_mult: np.ndarray,
    nulls: NullPlan,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """The 557 feature columns (schema order) for every day of `log_close` (days x assets)."""
    days = log_close.shape[0]
    idx = universe.index
    cols: dict[str, np.ndarray] = {}
    ccy_log = {c.removeprefix("CCY_"): log_close[:, i] for c, i in idx.items() if c.startswith("CCY_")}
    ccy_log["USD"] = np.zeros(days)
    for inst, info in universe.instruments.items():
        f = info["fields"]
        null = nulls.mask[inst]
        if info["exchange"] == "FX":
            a, b = fx_legs(inst)
            cols[f["close"]] = np.where(null, np.nan, _round(np.exp(ccy_log[a] - ccy_log[b]), 6))
            continue
        s = universe.stats[inst]
        i = idx[inst]
        dec = int(s.get("decimals", 4))
        if info["exchange"] == "US":
            dec = min(dec, US_MAX_DECIMALS)
        lc = log_close[:, i]
        vm = vol_mult[:, i]
        close = np.exp(lc)
        values = {"close": close}
        if "open" in f:
            gap = float(s.get("gap_vol") or 0.3 * universe.vol[i])
            rng_w = float(s.get("range") or 1.5 * universe.vol[i])
            prev = np.concatenate([[lc[0]], lc[:-1]])
            opn = np.exp(prev + gap * vm * rng.standard_normal(days))
            top = np.maximum(opn, close) * np.exp(0.35 * rng_w * vm * np.abs(rng.standard_normal(days)))
            bottom = np.minimum(opn, close) * np.exp(-0.35 * rng_w * vm * np.abs(rng.standard_normal(days)))
            values |= {"open": opn, "high": top, "low": bottom}
        if "settlement_price" in f:
            sv = float(s.get("settlement_vol") or 0.0)
            values["settlement_price"] = close * np.exp(sv * rng.standard_normal(days))
        for key in ("open", "high", "low", "close", "settlement_price"):
            if key in values:
                values[key] = _round(values[key], dec)
        for key in ("volume", "open_interest"):
            if key in f:
                level = float(s.get(key) or 1000.0)
                spread = float(s.get(f"{key}_logstd") or 0.4)
                if key == "volume":
                    noise = _ar1(rng, days, 0.6) * spread * 0.8
                    lv = np.log(level) + noise + 0.25 * (np.minimum(abs_z[:, i], 4) - 0.8) + 0.35 * stressed
                else:
                    lv = np.log(level) + _ar1(rng, days, 0.985) * spread
                values[key] = np.maximum(np.round(np.exp(lv)), 1.0)
        for key, col in f.items():
            cols[col] = np.where(null, np.nan, values[key])
    return pl.DataFrame({c: cols[c] for c in feature_columns()}, nan_to_null=True)


def _ar1(rng: np.random.Generator, days: int, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) path."""
    e = rng.standard_normal(days) * np.sqrt(1 - phi**2)
    e[0] /= np.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e)
