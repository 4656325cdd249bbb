"""`python -m offline etf <stage>`: the nine ETF stages one at a time, or `all` of them in order."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from offline.errors import UserError

DEFAULT_OUT = "runs/etf"
HELP = {
    "prep": "daily data -> returns, volatility, momentum, indicators, crash label, fixed splits (writes config.json)",
    "features": "further features and interactions; the model's feature list",
    "regime": "PCA + KMeans regimes (bull/neutral/bear) fit on the train block",
    "hyperopt": "Optuna over LightGBM, objective mean F2 over purged time-series folds (SQLite study)",
    "train": "final LightGBM + isotonic/sigmoid calibration chosen by Brier on the validation block",
    "threshold": "scan thresholds on the validation block; keep the F2-best and the curve",
    "evaluate": "test block: PR/ROC AUC, F2, precision, recall vs base rate and the naive volatility rule",
    "scan": "grid over core/alpha/beta/core2 on the validation block",
    "backtest": "test block backtest vs buy-and-hold and no crash signal; writes results/report.json/.md",
}


def _config_from_args(args: argparse.Namespace):
    from offline.etf.config import EtfConfig

    base = {}
    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise UserError(f"--config {path}: file not found")
        try:
            base = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"--config {path}: not JSON ({exc})") from None
    cfg = EtfConfig.from_json(base) if base else EtfConfig()
    for name in ("source", "trials", "horizon", "depth", "seed", "threads", "cost_bps"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    return cfg.validate()


def _print(name: str, summary: dict, seconds: float) -> None:
    print(f"{name}: {json.dumps(summary, default=str)[:600]} ({seconds:.1f}s)")


def _run_stage(args: argparse.Namespace) -> int:
    from offline.etf import stages

    out = Path(args.out)
    t0 = time.perf_counter()
    if args.stage == "prep":
        summary = stages.prep(out, _config_from_args(args))
    elif args.stage == "hyperopt":
        summary = stages.hyperopt(out, progress=not args.quiet)
    else:
        summary = stages.STAGE_FUNCTIONS[args.stage](out)
    _print(args.stage, summary, time.perf_counter() - t0)
    return 0


def _run_all(args: argparse.Namespace) -> int:
    from offline.etf.pipeline import run_all, summary_table

    out = Path(args.out)
    t0 = time.perf_counter()
    run_all(out, _config_from_args(args), progress=not args.quiet)
    report = json.loads((out / "results" / "report.json").read_text())
    print(summary_table(report))
    print(f"report: {out / 'results' / 'report.md'} ({time.perf_counter() - t0:.0f}s)")
    return 0


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        help="'sp500' (default; arch's S&P 500 + VIX), 'nasdaq' (arch's NASDAQ Composite, no VIX) or a competition directory",
    )
    p.add_argument("--config", help="JSON file of EtfConfig fields to start from (splits, grid, ...)")
    p.add_argument("--trials", type=int, help="Optuna trials (default 30)")
    p.add_argument("--horizon", type=int, help="crash label horizon in trading days (default 20)")
    p.add_argument("--depth", type=float, help="crash label depth as a fraction (default 0.08 = -8%%)")
    p.add_argument("--seed", type=int, help="seed for LightGBM, Optuna, PCA and KMeans (default 0)")
    p.add_argument("--threads", type=int, help="LightGBM threads (default 2)")
    p.add_argument("--cost-bps", dest="cost_bps", type=float, help="cost per unit turnover in bp (default 5)")


def register(sub: argparse._SubParsersAction) -> None:
    etf = sub.add_parser(
        "etf",
        help="ETF crash prediction and momentum pipeline (nine stages)",
        description="Crash classifier + momentum allocation, every reported number out of sample. "
        "Stages read and write a run directory (config.json, datasets/, models/, results/).",
    )
    esub = etf.add_subparsers(dest="stage", metavar="STAGE", required=True)
    a = esub.add_parser("all", help="run all nine stages in order and print a summary")
    a.add_argument("--out", default=DEFAULT_OUT, help=f"run directory (default {DEFAULT_OUT})")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_options(a)
    a.set_defaults(func=_run_all)
    for name, text in HELP.items():
        p = esub.add_parser(name, help=text, description=text)
        p.add_argument("--out", default=DEFAULT_OUT, help=f"run directory (default {DEFAULT_OUT})")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "prep":
            _add_config_options(p)
        p.set_defaults(func=_run_stage)
