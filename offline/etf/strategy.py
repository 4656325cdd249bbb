"""The momentum + crash-signal allocation, its cost-aware backtest and performance metrics.

Definition (signals at the close of day t set the weights held over day t+1):
    market   = clip(core + alpha * [trailing momentum > 0] - beta * [crash probability > threshold], 0, 1)
    defensive = clip(core2, 0, 1 - market)        (cash when the source has no defensive asset)
    cash      = 1 - market - defensive            (earns 0)
Each day pays cost_bps / 10_000 times the turnover sum(|w_t - w_{t-1}|); a block starts from cash.
"""

from __future__ import annotations

import math

import numpy as np

ANNUAL = 252


def target_weights(
    momentum: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    core: float,
    alpha: float,
    beta: float,
    core2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights decided at each close from that day's signals (NaN momentum counts as not positive)."""
    up = np.nan_to_num(momentum, nan=0.0) > 0
    crash = np.nan_to_num(prob, nan=0.0) > threshold
    market = np.clip(core + alpha * up - beta * crash, 0.0, 1.0)
    defensive = np.clip(np.minimum(core2, 1.0 - market), 0.0, 1.0)
    return market, defensive


def held(weights: np.ndarray) -> np.ndarray:
    """Weights held over each day: the previous close's decision (cash on the first day)."""
    out = np.empty_like(weights, dtype=float)
    out[0] = 0.0
    out[1:] = weights[:-1]
    return out


def run(
    ret_market: np.ndarray,
    ret_defensive: np.ndarray,
    w_market: np.ndarray,
    w_defensive: np.ndarray,
    cost_bps: float,
) -> dict[str, np.ndarray]:
    """Daily net returns of holding the given (already shifted) weights, with turnover costs."""
    prev_m = np.concatenate([[0.0], w_market[:-1]])
    prev_d = np.concatenate([[0.0], w_defensive[:-1]])
    turnover = np.abs(w_market - prev_m) + np.abs(w_defensive - prev_d)
    gross = w_market * np.nan_to_num(ret_market) + w_defensive * np.nan_to_num(ret_defensive)
    net = gross - cost_bps / 10_000 * turnover
    return {
        "gross": gross,
        "net": net,
        "turnover": turnover,
        "exposure": w_market + w_defensive,
        "market": w_market,
        "defensive": w_defensive,
    }


def drawdown(returns: np.ndarray) -> np.ndarray:
    equity = np.cumprod(1 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return equity / peak - 1


def metrics(
    returns: np.ndarray, turnover: np.ndarray | None = None, exposure: np.ndarray | None = None
) -> dict:
    """CAGR, volatility, Sharpe, Sortino (risk-free 0), max drawdown, Calmar, turnover/yr, hit rate."""
    n = len(returns)
    total = float(np.prod(1 + returns))
    cagr = total ** (ANNUAL / n) - 1 if n and total > 0 else -1.0
    sd = float(np.std(returns, ddof=1)) if n > 1 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0) ** 2))) if n else 0.0
    mean = float(np.mean(returns)) if n else 0.0
    mdd = float(drawdown(returns).min()) if n else 0.0
    active = exposure > 0 if exposure is not None else np.ones(n, dtype=bool)
    return {
        "cagr": cagr,
        "volatility": sd * math.sqrt(ANNUAL),
        "sharpe": mean / sd * math.sqrt(ANNUAL) if sd > 0 else 0.0,
        "sortino": mean / downside * math.sqrt(ANNUAL) if downside > 0 else 0.0,
        "max_drawdown": mdd,
        "calmar": cagr / abs(mdd) if mdd < 0 else 0.0,
        "turnover": float(np.sum(turnover)) * ANNUAL / n if turnover is not None and n else 0.0,
        "hit_rate": float(np.mean(returns[active] > 0)) if active.any() else 0.0,
        "exposure": float(np.mean(exposure)) if exposure is not None and n else 1.0,
        "total_return": total - 1,
        "days": n,
    }


# --- on a predictions frame ---------------------------------------------------------------------

ALLOCATION_KEYS = ("core", "alpha", "beta", "core2")
BENCHMARKS = ("buy_and_hold", "ma_210", "momentum_126")


def market_inputs(pred) -> dict[str, np.ndarray]:
    """Arrays the backtests read from a predictions frame (offline.etf.stages.fit)."""
    return {
        "momentum": pred["alloc_momentum"].to_numpy().astype(float),
        "ma_gap": pred["ma_gap"].to_numpy().astype(float),
        "prob": pred["prob"].to_numpy().astype(float),
        "ret_market": pred["ret_simple"].fill_null(0).to_numpy().astype(float),
        "ret_defensive": pred["def_ret"].fill_null(0).to_numpy().astype(float),
        "block": pred["block"].to_numpy(),
    }


def simulate(inputs: dict, block: str, threshold: float, allocation: dict, cost_bps: float) -> dict:
    """Decide weights on every row, hold them the next day, then run the block's rows only."""
    m, d = target_weights(
        inputs["momentum"], inputs["prob"], threshold, *(allocation[k] for k in ALLOCATION_KEYS)
    )
    mask = inputs["block"] == block
    return run(
        inputs["ret_market"][mask], inputs["ret_defensive"][mask], held(m)[mask], held(d)[mask], cost_bps
    )


def benchmark(inputs: dict, block: str, name: str, cost_bps: float) -> dict:
    """Buy-and-hold, or all-in/all-out timing on the close above its 210-day average or positive 126-day momentum."""
    signal = {
        "buy_and_hold": np.ones(len(inputs["block"])),
        "ma_210": (np.nan_to_num(inputs["ma_gap"], nan=-1.0) > 0).astype(float),
        "momentum_126": (np.nan_to_num(inputs["momentum"], nan=-1.0) > 0).astype(float),
    }[name]
    mask = inputs["block"] == block
    w = signal if name == "buy_and_hold" else held(signal)
    return run(inputs["ret_market"][mask], np.zeros(mask.sum()), w[mask], np.zeros(mask.sum()), cost_bps)


def perf(result: dict) -> dict:
    return metrics(result["net"], result["turnover"], result["exposure"])
