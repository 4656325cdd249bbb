"""The ETF stages, one module each with `run(run_dir, cfg) -> summary`; the dispatch lives here only.

A design run (no frozen design) runs every stage; a run under a frozen design skips `cv` and keeps
the frozen model, calibration method and allocation (see offline/etf/frozen.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from offline.etf.config import EtfConfig
from offline.etf.stages import cv, fit, prep, scan, test, threshold

STAGES: dict[str, Callable[[Path, EtfConfig], dict]] = {
    "prep": prep.run,
    "cv": cv.run,
    "fit": fit.run,
    "threshold": threshold.run,
    "scan": scan.run,
    "test": test.run,
}
HELP = {
    "prep": "daily data -> indicators, naive rule, crash label, fixed splits (writes config.json)",
    "cv": "every candidate by purged walk-forward CV inside the train block, against the naive rule",
    "fit": "fit the CV survivors (or the frozen model) on train; validation picks one and fits its calibration",
    "threshold": "scan thresholds on the validation block; keep the F2-best and the curve",
    "scan": "allocation grid on the validation block (or the frozen allocation) vs buy-and-hold and timing rules",
    "test": "the test block once: PR/ROC AUC vs the naive rule, backtest; writes results/report.json/.md",
}


def stage_names(cfg: EtfConfig) -> list[str]:
    """The stages this configuration runs, in order."""
    return [name for name in STAGES if not (cfg.frozen and name == "cv")]


def run_stage(name: str, run_dir: Path, cfg: EtfConfig) -> dict:
    if cfg.frozen and name == "cv":
        return {"skipped": f"the design is frozen ({cfg.frozen}): no candidate search"}
    return STAGES[name](Path(run_dir), cfg)


def run_all(run_dir: Path, cfg: EtfConfig, progress: bool = True) -> dict[str, dict]:
    """Every stage of `cfg` into `run_dir`; each stage's summary and seconds."""
    from tqdm import tqdm

    out: dict[str, dict] = {}
    bar = tqdm(stage_names(cfg), desc="etf", file=sys.stderr, disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        out[name] = {"summary": run_stage(name, run_dir, cfg), "seconds": time.perf_counter() - t0}
    bar.close()
    return out
