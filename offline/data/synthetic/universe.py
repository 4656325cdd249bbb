"""The synthetic market's assets: asset classes, factor loadings, volatilities and levels.

Base assets are every non-FX instrument plus nine currencies valued in USD; the 38 FX columns are
differences of currency log values, so cross rates are exactly consistent. Volatilities and price
levels come from market_stats.json (the real public window); loadings are set per asset class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from kaggle_kernel.schema import feature_columns
from offline.data.synthetic.derive_stats import STATS_FILE, instruments

FACTORS = ("global_equity", "metals", "precious", "energy", "rates", "dollar", "emerging")
CURRENCIES = ("AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "NOK", "NZD", "ZAR")
ALL_FACTORS = (*FACTORS, *(f"ccy_{c}" for c in CURRENCIES))

US_CLASSES = {
    "equity": "ACWI VT RSP SPYV VTV VYM VEA VXUS EFA VGK EWJ",
    "emerging": "EEM IEMG VWO EWT EWY EWZ FXI YINN",
    "financial": "AMP BCS MS RY TD",
    "bond": "SPTL VGLT IEF VGIT TIP AGG BND MBB BNDX LQD VCIT SPIB EMB",
    "short_bond": "SHY VGSH BSV VCSH IGSB",
    "credit": "JNK",
    "gold": "GLD IAU",
    "silver": "SLV",
    "gold_miner": "GDX GDXJ NUGT AEM AG FNV GOLD HL KGC NEM PAAS WPM",
    "metal_miner": "FCX SCCO TECK RIO VALE",
    "steel": "CLF NUE STLD X",
    "materials": "ALB XLB LYB CAT DE",
    "energy": "BP COP CVE CVX DVN EOG HES MPC OXY SHEL XLE XOM",
    "oil_service": "BKR HAL OIH SLB",
    "midstream": "ENB KMI OKE TRGP WMB",
    "uranium": "CCJ URA",
}

# class -> (loadings on FACTORS / currency factors, idiosyncratic weight); normalised to unit variance later
CLASS_LOADINGS: dict[str, tuple[dict[str, float], float]] = {
    "equity": ({"global_equity": 1.0, "emerging": 0.15, "dollar": -0.1}, 0.25),
    "emerging": ({"global_equity": 0.8, "emerging": 0.8, "dollar": -0.2}, 0.45),
    "financial": ({"global_equity": 0.85, "rates": -0.3}, 0.7),
    "bond": ({"rates": 1.0, "global_equity": -0.15}, 0.3),
    "short_bond": ({"rates": 0.8}, 0.6),
    "credit": ({"global_equity": 0.55, "rates": 0.5}, 0.5),
    "gold": ({"precious": 1.0, "dollar": -0.3}, 0.05),
    "silver": ({"precious": 0.85, "metals": 0.35, "dollar": -0.25}, 0.45),
    "gold_miner": ({"precious": 0.9, "global_equity": 0.4}, 0.55),
    "metal_miner": ({"metals": 0.9, "global_equity": 0.6, "emerging": 0.2}, 0.6),
    "steel": ({"metals": 0.6, "global_equity": 0.65}, 0.85),
    "materials": ({"global_equity": 0.8, "metals": 0.35}, 0.65),
    "energy": ({"energy": 1.0, "global_equity": 0.45}, 0.45),
    "oil_service": ({"energy": 1.0, "global_equity": 0.5}, 0.6),
    "midstream": ({"energy": 0.6, "global_equity": 0.6}, 0.6),
    "uranium": ({"energy": 0.3, "global_equity": 0.6}, 1.0),
    "lme": ({"metals": 1.0, "global_equity": 0.3, "dollar": -0.25, "emerging": 0.15}, 0.6),
    "lme_lead": ({"metals": 0.7, "global_equity": 0.25, "dollar": -0.2}, 0.85),
    "jpx_gold": ({"precious": 1.0, "dollar": -0.3, "ccy_JPY": -0.35}, 0.06),
    "jpx_platinum": ({"precious": 0.55, "metals": 0.55, "ccy_JPY": -0.3}, 0.5),
    "jpx_rubber": ({"metals": 0.3, "global_equity": 0.3, "ccy_JPY": -0.2}, 0.9),
}
# currency valued in USD: the dollar factor lowers all of them; own factor is the currency's own news
CURRENCY_LOADINGS: dict[str, dict[str, float]] = {
    "AUD": {"dollar": -0.8, "global_equity": 0.35, "metals": 0.3, "ccy_AUD": 0.6},
    "CAD": {"dollar": -0.6, "global_equity": 0.25, "energy": 0.3, "ccy_CAD": 0.6},
    "CHF": {"dollar": -0.8, "global_equity": -0.15, "ccy_CHF": 0.55},
    "EUR": {"dollar": -1.0, "ccy_EUR": 0.45},
    "GBP": {"dollar": -0.8, "ccy_GBP": 0.6},
    "JPY": {"dollar": -0.6, "global_equity": -0.35, "ccy_JPY": 0.8},
    "NOK": {"dollar": -0.8, "energy": 0.3, "global_equity": 0.2, "ccy_NOK": 0.6},
    "NZD": {"dollar": -0.8, "global_equity": 0.3, "ccy_NZD": 0.6, "ccy_AUD": 0.4},
    "ZAR": {"dollar": -0.7, "global_equity": 0.4, "precious": 0.25, "ccy_ZAR": 0.9},
}
REGIME_VOL_RATIO = {  # stressed / calm volatility, per broad group
    "equity": 2.0,
    "emerging": 1.9,
    "financial": 2.0,
    "credit": 1.8,
    "bond": 1.3,
    "short_bond": 1.2,
    "gold": 1.3,
    "silver": 1.5,
    "gold_miner": 1.6,
    "metal_miner": 1.9,
    "steel": 1.9,
    "materials": 1.9,
    "energy": 1.8,
    "oil_service": 1.8,
    "midstream": 1.7,
    "uranium": 1.7,
    "lme": 1.6,
    "lme_lead": 1.5,
    "jpx_gold": 1.3,
    "jpx_platinum": 1.5,
    "jpx_rubber": 1.4,
    "currency": 1.4,
}
DEFAULT_US = {
    "level": 30.0,
    "vol": 0.022,
    "decimals": 4,
    "volume": 5e6,
    "volume_logstd": 0.45,
    "range": 0.02,
    "gap_vol": 0.01,
}


@cache
def market_stats() -> dict:
    """The committed statistics of the real public window (see derive_market_stats)."""
    return json.loads(Path(STATS_FILE).read_text())


def asset_class(instrument: str) -> str:
    """Asset class of a non-FX instrument (LME_CA, JPX_Gold_Mini_Futures, US_Stock_FCX, ...)."""
    if instrument.startswith("LME_"):
        return "lme_lead" if instrument == "LME_PB" else "lme"
    if instrument.startswith("JPX_"):
        return (
            "jpx_gold"
            if "_Gold_" in instrument
            else "jpx_platinum"
            if "_Platinum_" in instrument
            else "jpx_rubber"
        )
    ticker = instrument.removeprefix("US_Stock_")
    for cls, tickers in US_CLASSES.items():
        if ticker in tickers.split():
            return cls
    raise ValueError(f"no asset class for {instrument!r}")


def fx_legs(fx_column: str) -> tuple[str, str]:
    """FX_AUDJPY -> ("AUD", "JPY"); USD is the numeraire and has no base asset."""
    pair = fx_column.removeprefix("FX_")
    return pair[:3], pair[3:]


@dataclass(frozen=True)
class Universe:
    """Base assets (instruments + currencies), their classes, loadings, daily vols and anchor levels."""

    names: tuple[str, ...]  # base assets: non-FX instruments, then "CCY_<code>"
    classes: tuple[str, ...]
    loadings: np.ndarray  # (n_assets, n_factors), rows normalised with idio to unit variance
    idio: np.ndarray  # (n_assets,)
    vol: np.ndarray  # daily log-return volatility
    log_level: np.ndarray  # log price level to anchor the public-window-like tail at
    instruments: dict  # instrument -> {exchange, fields: {field: column}}
    stats: dict  # instrument -> market_stats entry (with defaults filled in)

    @property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def vol_ratio(self) -> np.ndarray:
        return np.array([REGIME_VOL_RATIO[c] for c in self.classes])

    def leg_matrix(self, columns: list[str]) -> np.ndarray:
        """(n_assets, len(columns)): log return of each close column as a combination of asset z-returns."""
        idx = self.index
        out = np.zeros((len(self.names), len(columns)))
        for j, col in enumerate(columns):
            if col.startswith("FX_"):
                a, b = fx_legs(col)
                for ccy, sign in ((a, 1.0), (b, -1.0)):
                    if ccy != "USD":
                        k = idx[f"CCY_{ccy}"]
                        out[k, j] += sign * self.vol[k]
            else:
                from offline.data.synthetic.derive_stats import split_column

                _, inst, _ = split_column(col)
                k = idx[inst]
                out[k, j] = self.vol[k]
        return out


def _currency_stats(stats: dict) -> tuple[dict[str, float], dict[str, float]]:
    """Vol and log USD value of each currency from its USD pair in the statistics."""
    vol, level = {}, {}
    for c in CURRENCIES:
        direct, inverse = stats.get(f"FX_{c}USD"), stats.get(f"FX_USD{c}")
        s, sign = (direct, 1.0) if direct else (inverse, -1.0)
        vol[c] = float(s["vol"])
        level[c] = sign * float(np.log(s["level"]))
    return vol, level


def build_universe() -> Universe:
    """Assemble the base assets from the schema columns and the committed market statistics."""
    stats = market_stats()["instruments"]
    insts = instruments(feature_columns())
    names, classes, load_rows, idio, vols, levels = [], [], [], [], [], []
    filled = {}
    fidx = {f: i for i, f in enumerate(ALL_FACTORS)}

    def add(
        name: str, cls: str, loads: dict[str, float], idio_w: float, vol: float, log_level: float
    ) -> None:
        row = np.zeros(len(ALL_FACTORS))
        for f, w in loads.items():
            row[fidx[f]] = w
        norm = np.sqrt(row @ row + idio_w**2)
        names.append(name)
        classes.append(cls)
        load_rows.append(row / norm)
        idio.append(idio_w / norm)
        vols.append(vol)
        levels.append(log_level)

    for inst, info in insts.items():
        if info["exchange"] == "FX":
            filled[inst] = stats[inst]
            continue
        cls = asset_class(inst)
        s = dict(stats.get(inst, {}))
        if s.get("level") is None:  # never traded in the window: class defaults
            s = {**DEFAULT_US, **{k: v for k, v in s.items() if v is not None}}
        filled[inst] = s
        loads, idio_w = CLASS_LOADINGS[cls]
        add(inst, cls, loads, idio_w, float(s["vol"]), float(np.log(s["level"])))
    cvol, clevel = _currency_stats(stats)
    for c in CURRENCIES:
        loads = CURRENCY_LOADINGS[c]
        own = loads[f"ccy_{c}"]
        add(
            f"CCY_{c}",
            "currency",
            {k: v for k, v in loads.items() if k != f"ccy_{c}"} | {f"ccy_{c}": own},
            0.0,
            cvol[c],
            clevel[c],
        )
    return Universe(
        names=tuple(names),
        classes=tuple(classes),
        loadings=np.array(load_rows),
        idio=np.array(idio),
        vol=np.array(vols),
        log_level=np.array(levels),
        instruments=insts,
        stats=filled,
    )
