"""Derive per-instrument market statistics from the real public window (market_stats.json).

The synthetic market takes price levels, volatilities, volume levels, tick sizes and null patterns
from these statistics; they describe the real data without containing any of its rows.

    python -m offline.data.synthetic.derive_stats ../shared/mitsui-public [--out offline/data/synthetic/market_stats.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

from kaggle_kernel.schema import feature_columns

STATS_FILE = Path(__file__).with_name("market_stats.json")
EXCHANGES = ("LME", "JPX", "US", "FX")
JPX_FIELDS = ("Open", "High", "Low", "Close", "Volume", "settlement_price", "open_interest")
US_FIELDS = ("open", "high", "low", "close", "volume")


def split_column(column: str) -> tuple[str, str, str]:
    """(exchange, instrument, field) of a feature column; field is lower-case (`close`, `volume`, ...)."""
    if column.startswith("LME_") and column.endswith("_Close"):
        return "LME", column.removesuffix("_Close"), "close"
    if column.startswith("JPX_"):
        for f in JPX_FIELDS:
            if column.endswith("_" + f):
                return "JPX", column.removesuffix("_" + f), f.lower()
    if column.startswith("US_Stock_"):
        for f in US_FIELDS:
            if column.endswith("_adj_" + f):
                return "US", column.removesuffix("_adj_" + f), f
    if column.startswith("FX_"):
        return "FX", column, "close"
    raise ValueError(f"column {column!r} belongs to no known exchange")


def instruments(columns: list[str]) -> dict[str, dict]:
    """Instrument name -> {exchange, fields: {field: column}}, in first-column order."""
    out: dict[str, dict] = {}
    for c in columns:
        exchange, inst, fld = split_column(c)
        out.setdefault(inst, {"exchange": exchange, "fields": {}})["fields"][fld] = c
    return out


def _decimals(values: np.ndarray) -> int:
    """Fewest decimals (0..6) that represent every value; 0.5 steps count as 1."""
    for d in range(7):
        if np.all(np.abs(values * 10**d - np.round(values * 10**d)) < 1e-6 * np.maximum(1.0, np.abs(values))):
            return d
    return 6


def _sig(x: float | None, digits: int = 5) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _log_return_vol(close: np.ndarray) -> float | None:
    lp = np.log(close)
    r = np.diff(lp)  # NaN where either day is null: returns across gaps are skipped
    r = r[np.isfinite(r)]
    return float(np.std(r)) if r.size >= 5 else None


def instrument_stats(frame: pl.DataFrame, fields: dict[str, str]) -> dict:
    """Level, volatility, tick decimals, null pattern, volume/open-interest level, intraday range of one instrument."""
    close = frame[fields["close"]].to_numpy().astype(np.float64)
    ok = np.isfinite(close)
    rows = np.flatnonzero(ok)
    out: dict = {
        "close": fields["close"],
        "null_fraction": _sig(1.0 - ok.mean(), 4),
        "first_row": int(rows[0]) if rows.size else None,
        "last_row": int(rows[-1]) if rows.size else None,
    }
    if rows.size:
        out["level"] = _sig(float(np.median(close[ok])), 6)
        out["vol"] = _sig(_log_return_vol(close), 4)
        out["decimals"] = _decimals(close[ok])
    for name in ("volume", "open_interest"):
        if name in fields:
            v = frame[fields[name]].to_numpy().astype(np.float64)
            v = v[np.isfinite(v) & (v > 0)]
            if v.size:
                out[name] = _sig(float(np.median(v)), 4)
                out[f"{name}_logstd"] = _sig(float(np.std(np.log(v))), 3)
    if "high" in fields and "low" in fields:
        hi, lo = (frame[fields[f]].to_numpy().astype(np.float64) for f in ("high", "low"))
        rng = np.log(hi / lo)
        rng = rng[np.isfinite(rng)]
        if rng.size:
            out["range"] = _sig(float(np.median(rng)), 3)
    if "open" in fields:
        op = frame[fields["open"]].to_numpy().astype(np.float64)
        gap = np.log(op[1:] / close[:-1])
        gap = gap[np.isfinite(gap)]
        if gap.size >= 5:
            out["gap_vol"] = _sig(float(np.std(gap)), 3)
    if "settlement_price" in fields:
        s = frame[fields["settlement_price"]].to_numpy().astype(np.float64)
        d = np.log(s / close)
        d = d[np.isfinite(d)]
        if d.size:
            out["settlement_vol"] = _sig(float(np.std(d)), 3)
    return out


def derive(public_dir: Path | str) -> dict:
    """Statistics of the public window's test.csv, grouped per instrument and per exchange."""
    from offline.data.competition import read_prices

    path = Path(public_dir) / "test.csv"
    frame = read_prices(path)
    columns = feature_columns()
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from offline.errors import DataError

        raise DataError(str(path), f"lacks schema columns, e.g. {missing[:3]}")
    insts = instruments(columns)
    per_inst = {
        name: {"exchange": info["exchange"], **instrument_stats(frame, info["fields"])}
        for name, info in insts.items()
    }
    holidays = {}
    for ex in EXCHANGES:
        closes = [per_inst[n]["close"] for n, i in insts.items() if i["exchange"] == ex]
        all_null = frame.select(pl.all_horizontal([pl.col(c).is_null() for c in closes])).to_series()
        holidays[ex] = _sig(float(all_null.mean()), 4)
    values = frame.select(columns)
    null_fraction = float(sum(values.null_count().row(0)) / (values.height * values.width))
    return {
        "about": "Statistics of the real public window (test.csv), derived by offline.data.synthetic.derive_stats; "
        "no rows of the data. Rows are window-relative (0 = first day of the window).",
        "source": "mitsui-public/test.csv",
        "window_rows": frame.height,
        "scored_rows": int(frame["is_scored"].sum()) if "is_scored" in frame.columns else None,
        "null_fraction": _sig(null_fraction, 4),
        "exchange_holiday_fraction": holidays,
        "instruments": per_inst,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline.data.synthetic.derive_stats", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("public_dir", help="directory holding the public window's test.csv")
    parser.add_argument("--out", default=str(STATS_FILE), help=f"output JSON (default {STATS_FILE})")
    args = parser.parse_args(argv)
    stats = derive(args.public_dir)
    Path(args.out).write_text(json.dumps(stats, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out}: {len(stats['instruments'])} instruments", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
