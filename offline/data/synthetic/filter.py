"""P(stressed on day t | observable returns up to t): a two-state forward filter for the synthetic market.

The generator's regime is latent; a model sees only prices. This filter recovers what the prices say
about it, with the generator's own emission model: on day u, the standardised returns z of the
assets observed on u and u-1 are

    z[u] = mu_s[u] + m_s * (loadings @ f + idio * e),   f, e Student-t(5) with unit variance,

where m_s is the regime's per-asset volatility multiplier (stressed/calm = the class vol ratios) and
mu_s the planted conditional mean under regime s (momentum coefficient and stress drift). Shocks are
whitened with the factor covariance of the assets observed that day (eigenvectors, so the leading
components are close to single factors) and each whitened component is scored with the unit-variance
Student-t(5) density; that is exact for a single factor and a conservative stand-in for the near-normal
mixtures of many idiosyncratic shocks. Approximations (also in the synthetic module's docstring):
- the build-up ("pressure") is ignored in the emission: its extra equity vol-of-vol reads as early
  evidence of stress, which is roughly what it foreshadows;
- the semi-Markov regime (build-ups of 5-15 days before onsets) is folded into a two-state Markov chain
  with the generator's exit probability and an entry probability matching its stationary stressed share;
- mu_s uses the z windows of the recursion, as the oracle's forecast does.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from offline.data.synthetic.market import T_DF, Dynamics, regime_multipliers
from offline.data.synthetic.regime import RegimeParams
from offline.data.synthetic.universe import Universe


def transition(params: RegimeParams) -> tuple[float, float]:
    """(P(calm -> stressed), P(stressed -> calm)) of the two-state chain with the generator's stationary share."""
    pi = params.stationary_stressed()
    return params.exit_prob * pi / (1 - pi), params.exit_prob


def observed_z(prices: pl.DataFrame, universe: Universe) -> np.ndarray:
    """(rows, assets) daily log close change / daily vol; NaN unless the close is known on the day and the day before.

    Currencies come from their USD pair (FX_<C>USD, or minus FX_USD<C>).
    """
    exprs = []
    for name in universe.names:
        if name.startswith("CCY_"):
            code = name.removeprefix("CCY_")
            if f"FX_{code}USD" in prices.columns:
                expr = pl.col(f"FX_{code}USD").log()
            else:
                expr = -pl.col(f"FX_USD{code}").log()
        else:
            expr = pl.col(universe.instruments[name]["fields"]["close"]).log()
        exprs.append(expr.diff().alias(name))
    log_ret = prices.select(exprs).to_numpy().astype(np.float64)  # nulls -> NaN
    return log_ret / universe.vol


def regime_means(z: np.ndarray, dyn: Dynamics) -> tuple[np.ndarray, np.ndarray]:
    """Planted mean of z on every day of the latent path z, if the day is calm and if it is stressed."""
    sums = dyn.window_sums(z)
    days = z.shape[0]
    return dyn.mean(sums, np.zeros(days)), dyn.mean(sums, np.ones(days))


def _log_t(u: np.ndarray) -> np.ndarray:
    """Unit-variance Student-t(T_DF) log density up to its constant."""
    return -(T_DF + 1) / 2 * np.log1p(u * u / (T_DF - 2))


def log_likelihoods(
    obs: np.ndarray, mu_calm: np.ndarray, mu_stressed: np.ndarray, universe: Universe, params: RegimeParams
) -> np.ndarray:
    """(rows, 2) log p(observed z of the day | calm, stressed), up to a per-day constant shared by both states."""
    mult = regime_multipliers(universe, params.stationary_stressed())
    cov = universe.loadings @ universe.loadings.T + np.diag(universe.idio**2)
    seen = ~np.isnan(obs)
    patterns, which = np.unique(seen, axis=0, return_inverse=True)
    out = np.zeros((obs.shape[0], 2))
    # a few hundred small decompositions: threaded BLAS only adds contention (10x slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        for k, pattern in enumerate(patterns):
            if not pattern.any():
                continue
            rows = np.flatnonzero(which == k)
            vals, vecs = np.linalg.eigh(cov[np.ix_(pattern, pattern)])
            whiten = vecs / np.sqrt(vals)
            x = obs[np.ix_(rows, pattern)]
            for s, mu in enumerate((mu_calm, mu_stressed)):
                m = mult[s][pattern]
                u = ((x - mu[np.ix_(rows, pattern)]) / m) @ whiten
                out[rows, s] = _log_t(u).sum(axis=1) - np.log(m).sum()
    return out


def forward_filter(loglik: np.ndarray, params: RegimeParams) -> np.ndarray:
    """P(stressed on day t | days 0..t) from per-day log likelihoods, starting from the stationary share."""
    enter, leave = transition(params)
    p = params.stationary_stressed()
    evidence = loglik[:, 1] - loglik[:, 0]
    out = np.empty(loglik.shape[0])
    for t, ev in enumerate(evidence):
        prior = p * (1 - leave) + (1 - p) * enter
        log_odds = np.log(prior) - np.log1p(-prior) + ev
        p = 1 / (1 + np.exp(-np.clip(log_odds, -700, 700)))
        out[t] = p
    return out


def propagate(p_now: np.ndarray, params: RegimeParams, horizon: int) -> np.ndarray:
    """(rows, horizon+1): P(stressed on t+h | filtered P(stressed on t)), h = 0..horizon, by the two-state chain."""
    enter, leave = transition(params)
    pi = params.stationary_stressed()
    decay = (1 - enter - leave) ** np.arange(horizon + 1)
    return pi + (p_now[:, None] - pi) * decay[None, :]


def filter_stressed(
    prices: pl.DataFrame, z: np.ndarray, universe: Universe, dyn: Dynamics, params: RegimeParams
) -> np.ndarray:
    """Filtered P(stressed) for every row of `prices`.

    z is the latent path ending on the last row of `prices` (it may start earlier, so windows are full);
    it only supplies the planted means.
    """
    obs = observed_z(prices, universe)
    mu_calm, mu_stressed = (m[-prices.height :] for m in regime_means(z, dyn))
    return forward_filter(log_likelihoods(obs, mu_calm, mu_stressed, universe, params), params)
