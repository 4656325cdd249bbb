"""Run the nine stages in order with a progress bar, and a short summary table of the results."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

from offline.etf import stages
from offline.etf.config import EtfConfig


def run_all(run_dir: Path, cfg: EtfConfig, raw: pl.DataFrame | None = None, progress: bool = True) -> dict:
    """prep ... backtest into `run_dir`; returns each stage's summary and its seconds."""
    from tqdm import tqdm

    run_dir = Path(run_dir)
    out: dict[str, dict] = {}
    bar = tqdm(stages.STAGES, desc="etf", file=sys.stderr, disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        if name == "prep":
            summary = stages.prep(run_dir, cfg, raw=raw)
        elif name == "hyperopt":
            summary = stages.hyperopt(run_dir, progress=progress)
        else:
            summary = stages.STAGE_FUNCTIONS[name](run_dir)
        out[name] = {"summary": summary, "seconds": time.perf_counter() - t0}
    bar.close()
    return out


def summary_table(report: dict) -> str:
    """A few lines for the terminal: test metrics, backtest vs buy-and-hold, goals."""
    t, b = report["test"], report["backtest"]
    rows = [
        ("test PR AUC / base rate", f"{t['pr_auc']:.3f} / {t['base_rate']:.3f}"),
        ("test ROC AUC", f"{t['roc_auc']:.3f}"),
        ("test F2 / precision / recall", f"{t['f2']:.3f} / {t['precision']:.3f} / {t['recall']:.3f}"),
        ("threshold (validation)", f"{t['threshold']:.3f}"),
        (
            "Sharpe: strategy / no signal / B&H",
            f"{b['sharpe']:.2f} / {b['no_signal_sharpe']:.2f} / {b['bh_sharpe']:.2f}",
        ),
        (
            "max DD: strategy / no signal / B&H",
            f"{b['max_drawdown']:.1%} / {b['no_signal_max_drawdown']:.1%} / {b['bh_max_drawdown']:.1%}",
        ),
        ("CAGR: strategy / B&H", f"{b['cagr']:.1%} / {b['bh_cagr']:.1%}"),
    ]
    rows += [(f"goal {k}", "met" if g["met"] else "NOT met") for k, g in report["goals"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
