"""`python -m offline etf <stage>`: the ETF stages one at a time, `all` in order, or `freeze` a design run."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from offline.errors import UserError

DEFAULT_OUT = "runs/etf"


def _config_from_args(args: argparse.Namespace):
    """Config: the frozen design's (unless --search), else --config or the defaults; then the options."""
    from offline.etf.config import EtfConfig
    from offline.etf.frozen import FROZEN_PATH, load_frozen

    base: dict = {}
    frozen = None if args.search else load_frozen(args.frozen or FROZEN_PATH)
    if args.frozen and frozen is None:
        raise UserError(f"--frozen {args.frozen}: file not found")
    if frozen is not None and args.config:
        raise UserError(
            f"--config {args.config}: a frozen design fixes the config; add --search to design anew"
        )
    if frozen is not None:
        base = {**frozen.config, "frozen": str(Path(args.frozen or FROZEN_PATH).resolve())}
    elif args.config:
        path = Path(args.config)
        if not path.exists():
            raise UserError(f"--config {path}: file not found")
        try:
            base = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"--config {path}: not JSON ({exc})") from None
    cfg = EtfConfig.from_json(base) if base else EtfConfig()
    for name in ("source", "start", "end", "train_end", "validation_end", "seed", "threads", "cost_bps"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    return cfg.validate()


def _run(args: argparse.Namespace) -> int:
    from offline.etf.config import load_config
    from offline.etf.stages import run_all, run_stage

    out = Path(args.out)
    t0 = time.perf_counter()
    if args.stage == "all":
        run_all(out, _config_from_args(args), progress=not args.quiet)
        report = json.loads((out / "results" / "report.json").read_text())
        print(summary(report))
        print(f"report: {out / 'results' / 'report.md'} ({time.perf_counter() - t0:.0f}s)")
        return 0
    cfg = _config_from_args(args) if args.stage == "prep" else load_config(out)
    result = run_stage(args.stage, out, cfg)
    print(f"{args.stage}: {json.dumps(result, default=str)[:600]} ({time.perf_counter() - t0:.1f}s)")
    return 0


def _freeze(args: argparse.Namespace) -> int:
    from offline.etf.frozen import FROZEN_PATH, freeze

    design = freeze(Path(args.out), Path(args.to or FROZEN_PATH))
    print(
        f"froze {design.model['name']} {design.model['params']} -> {args.to or FROZEN_PATH} (code hash {design.code_hash})"
    )
    return 0


def summary(report: dict) -> str:
    """A few lines for the terminal: validation against the naive rule, then the test block if any."""
    v = report["validation"]
    rows = [
        ("model (chosen by)", f"{report['design']['model']['name']} ({report['design']['chosen_by']})"),
        ("validation PR AUC model / naive", f"{v['model']['pr_auc']:.3f} / {v['naive']['pr_auc']:.3f}"),
        ("validation ROC AUC model / naive", f"{v['model']['roc_auc']:.3f} / {v['naive']['roc_auc']:.3f}"),
        ("allocation (validation)", str(report["allocation"]["chosen"])),
    ]
    if report["stopped"]:
        rows.append(("stopped", report["stopped"]))
    else:
        t, n, b = report["test"], report["naive"], report["backtest"]
        rows += [
            (
                "test PR AUC model / naive / base",
                f"{t['pr_auc']:.3f} / {n['pr_auc']:.3f} / {t['base_rate']:.3f}",
            ),
            ("test ROC AUC model / naive", f"{t['roc_auc']:.3f} / {n['roc_auc']:.3f}"),
            (
                "Sharpe: strategy / no signal / B&H / MA210 / mom126",
                f"{b['sharpe']:.2f} / {b['no_signal_sharpe']:.2f} / {b['bh_sharpe']:.2f} / {b['ma_210_sharpe']:.2f} / {b['momentum_126_sharpe']:.2f}",
            ),
            ("max DD: strategy / B&H", f"{b['max_drawdown']:.1%} / {b['bh_max_drawdown']:.1%}"),
        ]
        rows += [(f"goal {k}", "met" if g["met"] else "NOT met") for k, g in report["goals"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {val}" for k, val in rows)


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        help="'sp500' (default), 'nasdaq' (arch's indexes), a CSV file (Date, Close, ...) or a competition directory",
    )
    p.add_argument(
        "--config",
        help="JSON file of EtfConfig fields to start from (with --search, or without a frozen design)",
    )
    p.add_argument(
        "--search",
        action="store_true",
        help="search the design (cv stage) even when offline/etf/frozen.json exists",
    )
    p.add_argument(
        "--frozen", help="frozen design to follow (default offline/etf/frozen.json when it exists)"
    )
    p.add_argument("--start", help="first date used, YYYY-MM-DD")
    p.add_argument("--end", help="last date used, YYYY-MM-DD")
    p.add_argument("--train-end", dest="train_end", help="last date of the train block (default 2014-12-31)")
    p.add_argument(
        "--valid-end",
        dest="validation_end",
        help="last date of the validation block (default 2018-12-31); later rows are the test block",
    )
    p.add_argument("--seed", type=int, help="seed of every fit (default 0)")
    p.add_argument("--threads", type=int, help="LightGBM threads (default 2)")
    p.add_argument("--cost-bps", dest="cost_bps", type=float, help="cost per unit turnover in bp (default 5)")


def register(sub: argparse._SubParsersAction) -> None:
    from offline.etf.stages import HELP

    etf = sub.add_parser(
        "etf",
        help="ETF crash prediction and momentum pipeline",
        description="Crash classifier + momentum allocation, designed on data through 2018 and frozen. "
        "Stages read and write a run directory (config.json, datasets/, models/, results/).",
    )
    esub = etf.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, text in {"all": "run every stage in order and print a summary", **HELP}.items():
        p = esub.add_parser(name, help=text, description=text)
        p.add_argument("--out", default=DEFAULT_OUT, help=f"run directory (default {DEFAULT_OUT})")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name in ("all", "prep"):
            _add_config_options(p)
        p.set_defaults(func=_run)
    f = esub.add_parser("freeze", help="write offline/etf/frozen.json from a design run (--out DIR)")
    f.add_argument(
        "--out", default="runs/etf-design", help="the design run directory (default runs/etf-design)"
    )
    f.add_argument("--to", help="where to write the frozen design (default offline/etf/frozen.json)")
    f.set_defaults(func=_freeze)
