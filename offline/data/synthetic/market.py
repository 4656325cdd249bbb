"""Latent daily returns of the synthetic market with planted predictability, and their exact forecasts.

Every base asset i has standardised returns z[u, i] (log return / daily vol) with

    z[u] = mu[u] + m(s_u) * (loadings @ f[u] + idio * e[u])
    mu[u] = W5 @ S5[u-2] / 5 + c(s_u) * MOM @ S21[u-2] / 21 + drift * (1[s_u stressed] - pi)

where S5[d]/S21[d] are sums of the 5/21 z ending on day d (W5 and MOM act partly on residuals: own z minus beta x the
z of an observable sector proxy), f and e Student-t(5) shocks with unit variance, and the
global-equity factor's shock is scaled by a vol-of-vol term driven by the regime pressure. The
forecast uses the same recursion with zero future shocks and P(stressed) from the regime model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offline.data.synthetic.regime import RegimePath
from offline.data.synthetic.universe import ALL_FACTORS, Universe

T_DF = 5.0
DELAY = 2  # effects act on windows ending two days before the return (one quiet day in between)
HORIZON = 5  # forecasts for days t+1..t+5 cover every lag-1..4 target of day t
VOV_SCALE = 0.9  # vol-of-vol of the equity factor at full pressure (log-scale std)
VOV_PERSIST = 0.6

MINERS_CU = ["US_Stock_FCX", "US_Stock_SCCO", "US_Stock_TECK", "US_Stock_RIO", "US_Stock_VALE"]
STEEL = ["US_Stock_CLF", "US_Stock_NUE", "US_Stock_STLD", "US_Stock_X"]
ALUMINIUM = ["US_Stock_ALB", "US_Stock_XLB", "US_Stock_LYB"]
SPREADS = [
    ("LME_CA", "LME_ZS"),
    ("LME_AH", "LME_ZS"),
    ("LME_PB", "LME_AH"),
    ("JPX_Platinum_Standard_Futures", "JPX_Gold_Standard_Futures"),
]
# residual = own z minus beta x the z of an observable proxy (key instruments of the feature set)
PROXY_BY_CLASS = {
    **dict.fromkeys(
        ("equity", "emerging", "financial", "materials", "steel", "uranium", "credit"), "US_Stock_VT"
    ),
    **dict.fromkeys(("energy", "oil_service", "midstream"), "US_Stock_XLE"),
    **dict.fromkeys(("bond", "short_bond"), "US_Stock_IEF"),
    **dict.fromkeys(("gold", "silver", "gold_miner"), "JPX_Gold_Standard_Futures"),
    "metal_miner": "LME_CA",
    "currency": "CCY_EUR",
}
MOMENTUM_CLASSES = (
    "equity",
    "emerging",
    "financial",
    "materials",
    "steel",
    "uranium",
    "energy",
    "oil_service",
    "midstream",
    "metal_miner",
    "gold_miner",
    "silver",
    "gold",
    "bond",
    "short_bond",
    "credit",
    "currency",
)
REVERSAL_CLASSES = (
    MOMENTUM_CLASSES  # together: a 21-day trend net of a 5-day reversal, so prices stay mean-stable
)
STRESS_DRIFT = {  # per class: daily drift (in vols) while stressed, centred so the long-run mean is 0
    "equity": -0.14,
    "emerging": -0.16,
    "financial": -0.16,
    "credit": -0.1,
    "metal_miner": -0.14,
    "steel": -0.14,
    "materials": -0.12,
    "energy": -0.1,
    "oil_service": -0.12,
    "midstream": -0.08,
    "uranium": -0.1,
    "lme": -0.1,
    "lme_lead": -0.08,
    "jpx_platinum": -0.06,
    "jpx_rubber": -0.06,
    "bond": 0.08,
    "short_bond": 0.05,
    "gold": 0.1,
    "gold_miner": 0.05,
    "jpx_gold": 0.06,
}
CURRENCY_STRESS_DRIFT = {
    "CCY_JPY": 0.14,
    "CCY_CHF": 0.08,
    "CCY_AUD": -0.1,
    "CCY_NZD": -0.1,
    "CCY_ZAR": -0.12,
    "CCY_NOK": -0.08,
    "CCY_CAD": -0.06,
}


@dataclass(frozen=True)
class Effects:
    """Planted predictability; coefficients act on standardised returns (see module docstring)."""

    lead_lag: float = 0.6  # US miners/steel/materials on the mean of the last 5 z of the related LME metal
    reversal: float = (
        -0.75
    )  # US stocks/currencies on the mean of their own last 5 residual z (own minus beta x proxy)
    spread_reversal: float = (
        -1.0
    )  # each side of a spread on the mean of the spread's last 5 z (split half/half)
    momentum_calm: float = 1.0  # on the mean of the own last 21 residual z, calm regime
    momentum_stressed: float = -1.25  # same, stressed regime
    stress_drift: float = 0.6  # multiplier on STRESS_DRIFT / CURRENCY_STRESS_DRIFT
    strength: float = 1.0  # global multiplier on everything above

    def scaled(self) -> dict[str, float]:
        s = self.strength
        return {
            "lead_lag": s * self.lead_lag,
            "reversal": s * self.reversal,
            "spread_reversal": s * self.spread_reversal,
            "momentum_calm": s * self.momentum_calm,
            "momentum_stressed": s * self.momentum_stressed,
            "stress_drift": s * self.stress_drift,
        }


@dataclass
class Dynamics:
    """The linear predictive structure on z: W5 and MOM (n x n), regime momentum coefficients and drift."""

    w5: np.ndarray
    mom: np.ndarray
    momentum_calm: float
    momentum_stressed: float
    drift: np.ndarray
    pi: float
    description: list[dict] = field(default_factory=list)

    def mean(self, s5: np.ndarray, s21: np.ndarray, p_stressed: np.ndarray) -> np.ndarray:
        """mu given 5/21-day z sums (rows = days) and P(stressed) on the forecast day."""
        c = self.momentum_calm + (self.momentum_stressed - self.momentum_calm) * p_stressed
        return (
            s5 @ self.w5.T / 5
            + c[:, None] * (s21 @ self.mom.T) / 21
            + (p_stressed - self.pi)[:, None] * self.drift
        )


def residualiser(universe: Universe) -> tuple[np.ndarray, dict[str, dict]]:
    """(n x n) matrix R with R @ z = each asset's z minus beta x its class proxy's z (beta from loadings)."""
    idx = universe.index
    n = len(universe.names)
    r = np.eye(n)
    used = {}
    full = np.hstack([universe.loadings, np.diag(universe.idio)])  # exact covariance of unit shocks
    for i, (name, cls) in enumerate(zip(universe.names, universe.classes, strict=True)):
        proxy = PROXY_BY_CLASS.get(cls)
        if proxy is None or proxy == name:
            continue
        p = idx[proxy]
        beta = float(full[i] @ full[p] / (full[p] @ full[p]))
        r[i, p] -= beta
        used[name] = {"proxy": proxy, "beta": round(beta, 4)}
    return r, used


def build_dynamics(universe: Universe, effects: Effects, pi: float) -> Dynamics:
    """Turn the documented effects into matrices over the universe's assets."""
    idx = universe.index
    n = len(universe.names)
    k = effects.scaled()
    w5 = np.zeros((n, n))
    desc: list[dict] = []
    for source, targets in (("LME_CA", MINERS_CU), ("LME_ZS", STEEL), ("LME_AH", ALUMINIUM)):
        for t in targets:
            w5[idx[t], idx[source]] += k["lead_lag"]
        desc.append(
            {
                "effect": "lead_lag",
                "source": source,
                "targets": targets,
                "coef": k["lead_lag"],
                "window": 5,
                "meaning": "z[target, u] gains coef * mean(z[source, u-6..u-2]): LME moves reach related US "
                "stocks with a delay of two to six days",
            }
        )
    resid, proxies = residualiser(universe)
    has_proxy = np.array([nm in proxies for nm in universe.names])
    classes = np.array(universe.classes)
    rev = has_proxy & np.isin(classes, REVERSAL_CLASSES)
    w5[rev] += k["reversal"] * resid[rev]
    desc.append(
        {
            "effect": "residual_reversal",
            "assets": [nm for nm, m in zip(universe.names, rev, strict=True) if m],
            "coef": k["reversal"],
            "window": 5,
            "proxies": proxies,
            "meaning": "z[a, u] gains coef * mean over u-6..u-2 of (z[a] - beta * z[proxy]): short-term "
            "reversal of the part of a move its sector proxy does not explain",
        }
    )
    for a, b in SPREADS:
        ia, ib = idx[a], idx[b]
        half = k["spread_reversal"] / 2
        w5[ia, ia] += half
        w5[ia, ib] -= half
        w5[ib, ib] += half
        w5[ib, ia] -= half
    desc.append(
        {
            "effect": "spread_reversal",
            "pairs": [list(p) for p in SPREADS],
            "coef": k["spread_reversal"],
            "window": 5,
            "meaning": "z[a] gains coef/2 * mean(z[a]-z[b] over u-6..u-2), z[b] loses it: spreads revert",
        }
    )
    momm = has_proxy & np.isin(classes, MOMENTUM_CLASSES)
    mom = np.where(momm[:, None], resid, 0.0)
    desc.append(
        {
            "effect": "regime_momentum",
            "assets": [nm for nm, m in zip(universe.names, momm, strict=True) if m],
            "coef_calm": k["momentum_calm"],
            "coef_stressed": k["momentum_stressed"],
            "window": 21,
            "proxies": "as residual_reversal",
            "meaning": "z[a, u] gains coef(regime on u) * mean over u-22..u-2 of (z[a] - beta * z[proxy]): "
            "residual trends persist when calm and reverse when stressed",
        }
    )
    drift = np.array([STRESS_DRIFT.get(c, 0.0) for c in universe.classes])
    for name, d in CURRENCY_STRESS_DRIFT.items():
        drift[idx[name]] = d
    drift *= k["stress_drift"]
    desc.append(
        {
            "effect": "stress_drift",
            "coef_by_class": {c: v * k["stress_drift"] for c, v in STRESS_DRIFT.items()},
            "coef_by_currency": {c: v * k["stress_drift"] for c, v in CURRENCY_STRESS_DRIFT.items()},
            "meaning": "z[a, u] gains coef * (1[stressed on u] - pi): flight to quality in stress, "
            f"pi = {pi:.3f} keeps the long-run mean at zero",
        }
    )
    return Dynamics(
        w5=w5,
        mom=mom,
        momentum_calm=k["momentum_calm"],
        momentum_stressed=k["momentum_stressed"],
        drift=drift,
        pi=pi,
        description=desc,
    )


def student_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Student-t(T_DF) draws scaled to unit variance (fat tails)."""
    return rng.standard_t(T_DF, size=shape) / np.sqrt(T_DF / (T_DF - 2))


def regime_multipliers(universe: Universe, pi: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-asset shock scale when calm and when stressed: ratio = the class vol ratio, long-run variance 1."""
    ratio = universe.vol_ratio()
    calm = 1 / np.sqrt(1 - pi + pi * ratio**2)
    return calm, calm * ratio


@dataclass
class MarketPath:
    z: np.ndarray  # (days, n) standardised returns
    mu: np.ndarray  # (days, n) conditional means that generated them
    vol_mult: np.ndarray  # (days, n) total volatility multiplier (regime x vol-of-vol)


def simulate_returns(
    universe: Universe, dyn: Dynamics, regime: RegimePath, rng: np.random.Generator
) -> MarketPath:
    """Sequentially draw z for every day of the regime path (the recursion needs past z)."""
    days, n = regime.stressed.size, len(universe.names)
    calm, stressed = regime_multipliers(universe, regime.params.stationary_stressed())
    regime_mult = np.where(regime.stressed[:, None], stressed, calm)  # (days, n)
    f = student_t(rng, (days, len(ALL_FACTORS)))
    e = student_t(rng, (days, n))
    xi = np.empty(days)
    innov = rng.standard_normal(days)
    xi[0] = innov[0]
    for d in range(1, days):
        xi[d] = VOV_PERSIST * xi[d - 1] + np.sqrt(1 - VOV_PERSIST**2) * innov[d]
    a = VOV_SCALE * regime.pressure * xi
    g = np.exp(a - (VOV_SCALE * regime.pressure) ** 2 / 2)  # equity factor scale, E[g^2] ~ 1
    f[:, ALL_FACTORS.index("global_equity")] *= g
    shock = f @ universe.loadings.T + e * universe.idio  # unit variance when g = 1
    eq_share = universe.loadings[:, ALL_FACTORS.index("global_equity")] ** 2
    vol_mult = regime_mult * np.sqrt(1 - eq_share + eq_share * g[:, None] ** 2)
    shock *= regime_mult
    st = regime.stressed.astype(np.float64)
    z = np.zeros((days, n))
    mu = np.zeros((days, n))
    s5 = np.zeros((days, n))  # s5[u] = sum of z[u-4..u]
    s21 = np.zeros((days, n))
    zero = np.zeros(n)
    for u in range(days):
        if u >= DELAY:
            mu[u] = dyn.mean(s5[u - DELAY][None, :], s21[u - DELAY][None, :], st[u : u + 1])[0]
        z[u] = mu[u] + shock[u]
        prev5, prev21 = (s5[u - 1], s21[u - 1]) if u else (zero, zero)
        s5[u] = prev5 + z[u] - (z[u - 5] if u >= 5 else 0.0)
        s21[u] = prev21 + z[u] - (z[u - 21] if u >= 21 else 0.0)
    return MarketPath(z=z, mu=mu, vol_mult=vol_mult)


def forecast(z: np.ndarray, dyn: Dynamics, p_stressed: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """(days, horizon, n): E[z[t+h] | z up to t, regime info at t] for h = 1..horizon, zero future shocks.

    p_stressed[t, h] is P(stressed on t+h | info at t). Exact for the linear recursion; the product of
    the regime-dependent momentum coefficient with forecast returns is taken at its expectation.
    """
    days, n = z.shape
    pad = np.vstack([np.zeros((22, n)), z])  # pad[22 + t] = z[t]; 22 >= 21 + DELAY - 1 rows of history
    csum = np.cumsum(pad, axis=0)
    t = np.arange(days)
    # window sums ending at day t + h - DELAY, starting with h = 1
    end = 22 + t + 1 - DELAY
    s5 = csum[end] - csum[end - 5]
    s21 = csum[end] - csum[end - 21]
    out = np.empty((days, horizon, n))
    for h in range(1, horizon + 1):
        out[:, h - 1] = dyn.mean(s5, s21, p_stressed[:, h])
        # advance the windows by one day: add day t+h-1 (known or forecast), drop the day leaving them
        k = h + 1 - DELAY  # offset of the day entering, relative to t
        entering = pad[22 + t + k] if k <= 0 else out[:, k - 1]
        s5 = s5 + entering - pad[22 + t + k - 5]
        s21 = s21 + entering - pad[22 + t + k - 21]
    return out
