"""Stage scan: the allocation grid on the validation block (or the frozen allocation), next to
buy-and-hold, the same allocation without the crash signal and the two timing rules.

Inputs: datasets/predictions.parquet, results/threshold.json. Outputs: results/scan.json
(ScanResult), results/scan.csv.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl

from offline.etf import strategy
from offline.etf.config import EtfConfig
from offline.etf.files import ScanResult, ThresholdChoice
from offline.etf.frozen import load_frozen
from offline.etf.stages.common import PREDICTIONS, read_frame, results_dir


def validation_figures(
    inputs: dict, thr: float, alloc: dict, cost_bps: float, block: str = "validation"
) -> dict:
    """The allocation, its twin without the crash signal and the benchmarks on one block."""
    out = {
        "strategy": strategy.perf(strategy.simulate(inputs, block, thr, alloc, cost_bps)),
        "no_signal": strategy.perf(strategy.simulate(inputs, block, thr, {**alloc, "beta": 0.0}, cost_bps)),
    }
    for name in strategy.BENCHMARKS:
        out[name] = strategy.perf(strategy.benchmark(inputs, block, name, cost_bps))
    return out


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    pred = read_frame(run_dir, PREDICTIONS)
    thr = ThresholdChoice.load(run_dir).threshold
    has_def = bool(pred["def_ret"].null_count() < pred.height)
    inputs = strategy.market_inputs(pred)
    bh = strategy.perf(strategy.benchmark(inputs, "validation", "buy_and_hold", cfg.cost_bps))
    cap = cfg.scan_drawdown_ratio * bh["max_drawdown"]  # both negative
    grid, qualified = [], 0
    if cfg.frozen:
        chosen = dict(load_frozen(cfg.frozen).allocation)
        rule = "frozen allocation (chosen on the design run's validation block)"
    else:
        core2 = cfg.grid_core2 if has_def else (0.0,)
        for point in itertools.product(cfg.grid_core, cfg.grid_alpha, cfg.grid_beta, core2):
            alloc = dict(zip(strategy.ALLOCATION_KEYS, point, strict=True))
            grid.append(
                {**alloc, **strategy.perf(strategy.simulate(inputs, "validation", thr, alloc, cfg.cost_bps))}
            )
        table = pl.DataFrame(grid)
        table.write_csv(results_dir(run_dir) / "scan.csv")
        ok = table.filter(pl.col("max_drawdown") >= cap)
        qualified = ok.height
        pool = ok if ok.height else table
        best = pool.sort(["sharpe", "turnover"], descending=[True, False], maintain_order=True).row(
            0, named=True
        )
        chosen = {k: best[k] for k in strategy.ALLOCATION_KEYS}
        rule = (
            f"highest validation Sharpe among points with max drawdown at most {cfg.scan_drawdown_ratio:.0%} "
            f"of buy-and-hold's ({cap:.3f}); best Sharpe overall if none"
        )
    figures = validation_figures(inputs, thr, chosen, cfg.cost_bps)
    ScanResult(
        chosen=chosen,
        rule=rule,
        threshold=thr,
        defensive=has_def,
        validation=figures,
        points=len(grid),
        qualified=qualified,
        frozen=bool(cfg.frozen),
    ).save(run_dir)
    return {**chosen, **{f"val_{k}_sharpe": round(v["sharpe"], 3) for k, v in figures.items()}}
