"""Stage test: the test block, once. Classification against the naive rule on the same days, the
allocation's backtest against buy-and-hold, no crash signal and the timing rules, plots, report.

Inputs: every earlier stage's files. Outputs: results/evaluation.json, results/backtest.json,
results/backtest_daily.parquet, PNG plots, results/report.json/.md. With an empty test block it
writes the report of the design (validation figures, frozen choices) and says why it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.etf import model as mdl
from offline.etf import plots, strategy
from offline.etf.config import EtfConfig
from offline.etf.files import Backtest, Evaluation, ScanResult, ThresholdChoice
from offline.etf.report import write_report
from offline.etf.stages.common import PREDICTIONS, labelled, read_frame, results_dir

NO_TEST = "the test block is empty (no rows after validation_end): stopped after the scan; the design's choices are written"


def classification(rows: pl.DataFrame, thr: float) -> Evaluation:
    """The model's and the naive rule's figures on the same labelled test rows."""
    y = rows["crash"].to_numpy().astype(int)
    prob, raw = rows["prob"].to_numpy(), rows["prob_raw"].to_numpy()
    naive = np.nan_to_num(rows["naive_score"].to_numpy().astype(float))
    flag = rows["naive_flag"].fill_null(0).to_numpy().astype(float)
    model = {
        **mdl.classification(y, prob, thr),
        **mdl.ranking(y, prob),
        "pr_auc_raw": mdl.ranking(y, raw)["pr_auc"],
        "roc_auc_raw": mdl.ranking(y, raw)["roc_auc"],
        "base_rate": float(y.mean()),
        "brier": mdl.brier(y, prob),
        "rows": len(y),
        "positives": int(y.sum()),
    }
    naive_out = {
        **mdl.ranking(y, naive),
        **{k: v for k, v in mdl.classification(y, flag, 0.5).items() if k != "threshold"},
        "rule": "rv_21 above the 80th percentile of its previous 252 days",
    }
    return Evaluation(test=model, naive=naive_out)


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    results = results_dir(run_dir)
    pred = read_frame(run_dir, PREDICTIONS)
    test = pred.filter(pl.col("block") == "test")
    rows = labelled(pred, "test")
    if rows.height == 0 or rows["crash"].n_unique() < 2:
        for stale in (Evaluation.FILE, Backtest.FILE):
            (Path(run_dir) / stale).unlink(missing_ok=True)
        report = write_report(
            run_dir,
            cfg,
            stopped=NO_TEST if test.height == 0 else "the test block has no labelled rows of both classes",
        )
        return {"stopped": report["stopped"]}
    thr = ThresholdChoice.load(run_dir).threshold
    sc = ScanResult.load(run_dir)
    ev = classification(rows, thr)
    ev.save(run_dir)
    plots.pr_roc(
        rows["crash"].to_numpy(),
        {"crash model": rows["prob"].to_numpy(), "naive rule": np.nan_to_num(rows["naive_score"].to_numpy())},
        results / "pr_curve.png",
        results / "roc_curve.png",
    )
    inputs = strategy.market_inputs(pred)
    runs = {
        "strategy": strategy.simulate(inputs, "test", thr, sc.chosen, cfg.cost_bps),
        "no_signal": strategy.simulate(inputs, "test", thr, {**sc.chosen, "beta": 0.0}, cfg.cost_bps),
        **{name: strategy.benchmark(inputs, "test", name, cfg.cost_bps) for name in strategy.BENCHMARKS},
    }
    Backtest(
        params=sc.chosen,
        threshold=thr,
        cost_bps=cfg.cost_bps,
        runs={k: strategy.perf(v) for k, v in runs.items()},
    ).save(run_dir)
    test.select("date_id", "date", "prob", "crash").with_columns(
        *(pl.Series(f"{k}_net", v["net"]) for k, v in runs.items()),
        pl.Series("market_weight", runs["strategy"]["market"]),
        pl.Series("defensive_weight", runs["strategy"]["defensive"]),
        pl.Series("turnover", runs["strategy"]["turnover"]),
    ).write_parquet(results / "backtest_daily.parquet")
    dated = test["date"].null_count() == 0
    names = {"strategy": "strategy", "no_signal": "without crash signal", "buy_and_hold": "buy and hold",
             "ma_210": "210-day MA timing", "momentum_126": "126-day momentum timing"}  # fmt: skip
    plots.backtest(
        test["date"].to_numpy() if dated else test["date_id"].to_numpy(),
        {names[k]: np.cumprod(1 + v["net"]) for k, v in runs.items()},
        {names[k]: strategy.drawdown(v["net"]) for k, v in runs.items()},
        runs["strategy"]["exposure"],
        test["prob"].to_numpy(),
        thr,
        test["crash"].to_numpy(),
        results / "backtest.png",
        "date" if dated else "date_id",
    )
    report = write_report(run_dir, cfg)
    return {k: report["backtest"][k] for k in ("sharpe", "max_drawdown", "bh_sharpe", "bh_max_drawdown")} | {
        "pr_auc": report["test"]["pr_auc"],
        "naive_pr_auc": report["naive"]["pr_auc"],
    }
