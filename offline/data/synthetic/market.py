"""Latent daily returns of the synthetic market with planted predictability, and their exact forecasts.

Every base asset i has standardised returns z[u, i] (log return / daily vol) with

    z[u] = mu[u] + m(s_u) * (loadings @ f[u] + idio * e[u])
    mu[u] = sum_k c_k(s_u) * W_k @ S_k[u - delay_k] / window_k + alpha + drift * (1[s_u stressed] - pi)

where S_k[d] is the sum of the `window_k` z ending on day d (a window term: lead-lag, reversal, spread
reversal, momentum; W_k acts partly on residuals: own z minus beta x the z of an observable sector
proxy), c_k its coefficient in the calm or stressed state, alpha a persistent per-asset drift, f and
e Student-t(5) shocks with unit variance, and the global-equity factor's shock is scaled by a
vol-of-vol term driven by the regime pressure. The forecast uses the same recursion with zero future
shocks and P(stressed) from the regime model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from offline.data.synthetic.regime import RegimePath
from offline.data.synthetic.universe import ALL_FACTORS, Universe

T_DF = 5.0
DELAY = 2  # default effects act on windows ending two days before the return (one quiet day in between)
HORIZON = 5  # forecasts for days t+1..t+5 cover every lag-1..4 target of day t
VOV_SCALE = 0.9  # vol-of-vol of the equity factor at full pressure (log-scale std)
VOV_PERSIST = 0.6

MINERS_CU = ["US_Stock_FCX", "US_Stock_SCCO", "US_Stock_TECK", "US_Stock_RIO", "US_Stock_VALE"]
STEEL = ["US_Stock_CLF", "US_Stock_NUE", "US_Stock_STLD", "US_Stock_X"]
ALUMINIUM = ["US_Stock_ALB", "US_Stock_XLB", "US_Stock_LYB"]
GOLD_MINERS = [
    "US_Stock_GDX",
    "US_Stock_GDXJ",
    "US_Stock_NEM",
    "US_Stock_AEM",
    "US_Stock_GOLD",
    "US_Stock_KGC",
]
LEAD_LAG = (("LME_CA", tuple(MINERS_CU)), ("LME_ZS", tuple(STEEL)), ("LME_AH", tuple(ALUMINIUM)))
WIDE_LEAD_LAG = (  # a wider set of followers: metals -> miners and commodity currencies, gold, oil
    ("LME_CA", (*MINERS_CU, "US_Stock_CAT", "US_Stock_DE", "CCY_AUD", "CCY_ZAR")),
    ("LME_ZS", tuple(STEEL)),
    ("LME_AH", tuple(ALUMINIUM)),
    ("JPX_Gold_Standard_Futures", tuple(GOLD_MINERS)),
    ("US_Stock_XLE", ("CCY_NOK", "CCY_CAD", "US_Stock_ENB", "US_Stock_KMI", "US_Stock_WMB")),
)
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
    """Planted predictability; coefficients act on standardised returns (see module docstring). 0 = absent."""

    lead_lag: float = 0.6  # US miners/steel/materials on the mean of recent z of the related LME metal
    lead_lag_window: int = 5
    lead_lag_delay: int = DELAY  # the lead-lag window ends this many days before the return it moves
    lead_lag_pairs: tuple[tuple[str, tuple[str, ...]], ...] = LEAD_LAG  # (source, followers)
    reversal: float = -0.75  # US stocks/currencies on the mean of their own last 5 residual z
    spread_reversal: float = -1.0  # each side of a spread on the mean of the spread's last 5 z (half/half)
    momentum_calm: float = 1.0  # on the mean of the own last `momentum_window` residual z, calm regime
    momentum_stressed: float = -1.25  # same, stressed regime
    momentum_window: int = 21
    stress_drift: float = 0.6  # multiplier on STRESS_DRIFT / CURRENCY_STRESS_DRIFT
    persistent_drift: float = 0.0  # cross-asset std of a constant per-asset drift (in daily vols)
    strength: float = 1.0  # global multiplier on every coefficient above

    def scaled(self) -> dict[str, float]:
        s = self.strength
        keys = (
            "lead_lag",
            "reversal",
            "spread_reversal",
            "momentum_calm",
            "momentum_stressed",
            "stress_drift",
            "persistent_drift",
        )
        return {k: s * getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WindowTerm:
    """One window effect: mu[u] += c(state on u) * matrix @ (sum of z over `window` days ending u - delay) / window."""

    name: str
    matrix: np.ndarray  # (n, n)
    window: int
    delay: int
    calm: float = 1.0
    stressed: float = 1.0

    def coef(self, p_stressed: np.ndarray) -> np.ndarray:
        return self.calm + (self.stressed - self.calm) * p_stressed


@dataclass
class Dynamics:
    """The linear predictive structure on z: window terms, persistent drift alpha and stress drift."""

    terms: list[WindowTerm]
    alpha: np.ndarray
    drift: np.ndarray
    pi: float
    description: list[dict] = field(default_factory=list)

    def mean(self, sums: list[np.ndarray], p_stressed: np.ndarray) -> np.ndarray:
        """mu given each term's window sums (rows = days, in `terms` order) and P(stressed) on the forecast day."""
        out = self.alpha[None, :] + (p_stressed - self.pi)[:, None] * self.drift[None, :]
        for term, s in zip(self.terms, sums, strict=True):
            out = out + term.coef(p_stressed)[:, None] * (s @ term.matrix.T) / term.window
        return out

    def window_sums(self, z: np.ndarray) -> list[np.ndarray]:
        """Per term, the window sum each day's mean uses (window ending u - delay; zeros before the path)."""
        csum = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])  # csum[k] = sum of z[:k]
        end = np.arange(z.shape[0]) + 1
        return [
            csum[np.clip(end - t.delay, 0, None)] - csum[np.clip(end - t.delay - t.window, 0, None)]
            for t in self.terms
        ]


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


def persistent_alpha(universe: Universe, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A constant drift per asset (in daily vols): normal with std `scale`, centred within each class."""
    raw = rng.standard_normal(len(universe.names)) * scale
    classes = np.array(universe.classes)
    for c in sorted(set(universe.classes)):
        sel = classes == c
        if sel.sum() > 1:
            raw[sel] -= raw[sel].mean() * 0.5  # half the class mean stays: sectors drift too
    return raw


def build_dynamics(
    universe: Universe, effects: Effects, pi: float, rng: np.random.Generator | None = None
) -> Dynamics:
    """Turn the documented effects into matrices over the universe's assets (zero coefficients are left out).

    `rng` draws the persistent drift (needed only when effects.persistent_drift > 0).
    """
    idx = universe.index
    n = len(universe.names)
    k = effects.scaled()
    terms: list[WindowTerm] = []
    desc: list[dict] = []
    resid, proxies = residualiser(universe)
    has_proxy = np.array([nm in proxies for nm in universe.names])
    classes = np.array(universe.classes)
    if k["lead_lag"]:
        w = np.zeros((n, n))
        win, lag = effects.lead_lag_window, effects.lead_lag_delay
        for source, targets in effects.lead_lag_pairs:
            for t in targets:
                w[idx[t], idx[source]] += k["lead_lag"]
            desc.append(
                {
                    "effect": "lead_lag",
                    "source": source,
                    "targets": list(targets),
                    "coef": k["lead_lag"],
                    "window": win,
                    "delay": lag,
                    "meaning": f"z[target, u] gains coef * mean(z[source, u-{lag + win - 1}..u-{lag}]): the "
                    f"source's moves reach its followers {lag} to {lag + win - 1} days later",
                    "oracle_needs": f"the source's last {win} returns ending {lag} days before each "
                    "target day",
                }
            )
        terms.append(WindowTerm("lead_lag", w, win, lag))
    w5 = np.zeros((n, n))
    if k["reversal"]:
        rev = has_proxy & np.isin(classes, REVERSAL_CLASSES)
        w5[rev] += k["reversal"] * resid[rev]
        desc.append(
            {
                "effect": "residual_reversal",
                "assets": [nm for nm, m in zip(universe.names, rev, strict=True) if m],
                "coef": k["reversal"],
                "window": 5,
                "delay": DELAY,
                "proxies": proxies,
                "meaning": "z[a, u] gains coef * mean over u-6..u-2 of (z[a] - beta * z[proxy]): short-term "
                "reversal of the part of a move its sector proxy does not explain",
                "oracle_needs": "each asset's and its proxy's last five returns",
            }
        )
    if k["spread_reversal"]:
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
                "delay": DELAY,
                "meaning": "z[a] gains coef/2 * mean(z[a]-z[b] over u-6..u-2), z[b] loses it: spreads revert",
                "oracle_needs": "both legs' last five returns",
            }
        )
    if w5.any():
        terms.append(WindowTerm("reversal", w5, 5, DELAY))
    if k["momentum_calm"] or k["momentum_stressed"]:
        momm = has_proxy & np.isin(classes, MOMENTUM_CLASSES)
        win = effects.momentum_window
        regime_dependent = k["momentum_calm"] != k["momentum_stressed"]
        terms.append(
            WindowTerm(
                "momentum",
                np.where(momm[:, None], resid, 0.0),
                win,
                DELAY,
                k["momentum_calm"],
                k["momentum_stressed"],
            )
        )
        desc.append(
            {
                "effect": "regime_momentum" if regime_dependent else "momentum",
                "assets": [nm for nm, m in zip(universe.names, momm, strict=True) if m],
                "coef_calm": k["momentum_calm"],
                "coef_stressed": k["momentum_stressed"],
                "window": win,
                "delay": DELAY,
                "proxies": "as residual_reversal" if k["reversal"] else proxies,
                "meaning": f"z[a, u] gains coef(regime on u) * mean over u-{win + 1}..u-2 of "
                "(z[a] - beta * z[proxy]): "
                + (
                    "residual trends persist when calm and reverse when stressed"
                    if regime_dependent
                    else "residual trends persist"
                ),
                "oracle_needs": f"each asset's and its proxy's last {win} returns"
                + (" and P(stressed) on the target days" if regime_dependent else ""),
            }
        )
    drift = np.array([STRESS_DRIFT.get(c, 0.0) for c in universe.classes])
    for name, d in CURRENCY_STRESS_DRIFT.items():
        drift[idx[name]] = d
    drift *= k["stress_drift"]
    if k["stress_drift"]:
        desc.append(
            {
                "effect": "stress_drift",
                "coef_by_class": {c: v * k["stress_drift"] for c, v in STRESS_DRIFT.items()},
                "coef_by_currency": {c: v * k["stress_drift"] for c, v in CURRENCY_STRESS_DRIFT.items()},
                "meaning": "z[a, u] gains coef * (1[stressed on u] - pi): flight to quality in the "
                f"high-volatility state, pi = {pi:.3f} keeps the long-run mean at zero",
                "oracle_needs": "P(stressed) on the target days, i.e. the volatility state filtered from "
                "returns",
            }
        )
    alpha = np.zeros(n)
    if k["persistent_drift"]:
        if rng is None:
            raise ValueError("persistent_drift needs an rng")
        alpha = persistent_alpha(universe, k["persistent_drift"], rng)
        desc.append(
            {
                "effect": "persistent_drift",
                "scale": k["persistent_drift"],
                "alpha": dict(zip(universe.names, np.round(alpha, 6).tolist(), strict=True)),
                "meaning": "z[a, u] gains alpha[a] every day: a persistent per-asset drift (in daily vols), "
                "so a target's long-run mean (and mean daily rank) carries real but partial information",
                "oracle_needs": "alpha (estimable from the history of each target's labels)",
            }
        )
    return Dynamics(terms=terms, alpha=alpha, drift=drift, pi=pi, description=desc)


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
    csum = np.zeros((days + 1, n))  # csum[k] = sum of z[:k]
    for u in range(days):
        sums = [
            (csum[max(u + 1 - t.delay, 0)] - csum[max(u + 1 - t.delay - t.window, 0)])[None, :]
            for t in dyn.terms
        ]
        mu[u] = dyn.mean(sums, st[u : u + 1])[0]
        z[u] = mu[u] + shock[u]
        csum[u + 1] = csum[u] + z[u]
    return MarketPath(z=z, mu=mu, vol_mult=vol_mult)


def forecast(z: np.ndarray, dyn: Dynamics, p_stressed: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """(days, horizon, n): E[z[t+h] | z up to t, regime info at t] for h = 1..horizon, zero future shocks.

    p_stressed[t, h] is P(stressed on t+h | info at t). Exact for the linear recursion; the product of
    a regime-dependent coefficient with forecast returns is taken at its expectation.
    """
    days, n = z.shape
    if any(t.window < horizon for t in dyn.terms):
        raise ValueError(f"every window must span at least the horizon ({horizon} days)")
    csum = np.vstack([np.zeros((1, n)), np.cumsum(z, axis=0)])  # csum[k] = sum of z[:k]
    t = np.arange(days)
    ahead = np.zeros((days, horizon + 1, n))  # ahead[:, j] = sum of the forecasts of t+1..t+j
    out = np.empty((days, horizon, n))
    for h in range(1, horizon + 1):
        sums = []
        for term in dyn.terms:
            end = t + h - term.delay  # last day of the window
            known_end = np.minimum(end, t) + 1
            known = csum[np.clip(known_end, 0, None)] - csum[np.clip(end + 1 - term.window, 0, None)]
            unknown = ahead[:, h - term.delay] if h > term.delay else 0.0
            sums.append(known + unknown)
        out[:, h - 1] = dyn.mean(sums, p_stressed[:, h])
        ahead[:, h] = ahead[:, h - 1] + out[:, h - 1]
    return out
