"""`python -m offline train` and `python -m offline tune`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from offline.errors import UserError

if TYPE_CHECKING:
    from offline.train.run_files import TrainReport


def _targets(text: str | None) -> list[int] | None:
    """'0-9,40,100-105' -> [0..9, 40, 100..105]."""
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise UserError(f"--targets: {part!r} is not a number or a range like 10-19") from None
    bad = [i for i in out if not 0 <= i < 424]
    if bad:
        raise UserError(f"--targets: {bad[0]} is outside 0..423")
    return sorted(set(out))


def _load_params(path: str | None) -> dict:
    """The TrainConfig fields a tuning result (or a plain JSON of regressor parameters) sets."""
    if not path:
        return {}
    p = Path(path)
    if not p.exists():
        return {}
    try:
        payload = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}: not valid JSON ({exc})") from None
    if "params" not in payload:
        return {"params": payload}
    out = {k: payload[k] for k in ("params", "pooled_params", "ridge_alpha") if k in payload}
    return {**out, "tuned_from": str(p), "tuned_until": payload.get("tuned_until")}


def _add_execution(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local: joblib processes on this machine; dask: a dask.distributed cluster",
    )
    p.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--jobs", type=int, default=None, help="local processes (default: all cores)")


def _train(args: argparse.Namespace) -> int:
    from offline.train.engine import TrainConfig, train

    params_file = args.params or str(Path(args.out).parent / "tune" / "best_params.json")
    tuned = _load_params(params_file)
    if tuned.get("tuned_from"):  # a status line (stderr): stdout's first line is the run's headline
        print(
            f"using tuned parameters from {tuned['tuned_from']} (tuning saw days up to {tuned['tuned_until']})",
            file=sys.stderr,
        )
    cfg = TrainConfig(
        n_folds=args.folds,
        gap=args.gap,
        seed=args.seed,
        targets=_targets(args.targets),
        **tuned,
        target_mode=args.target_mode,
        min_labels=args.min_labels,
        ablation=not args.no_ablation,
        baselines=not args.no_baselines,
        until=args.until,
        etf_feature=args.etf_feature,
    )
    from offline.train.run_files import TrainReport

    train(args.data, args.out, cfg, executor=args.executor, n_jobs=args.jobs, scheduler=args.scheduler)
    print_summary(TrainReport.load(args.out), args.out)
    return 0


def print_summary(report: TrainReport, out: str) -> None:
    """The console summary of a finished run (read back from its report.json): the headline first."""
    from offline.train.report import headline
    from offline.train.run_files import SCALE_TEXT, counts_text

    print(headline(report))
    cands = ", ".join(f"{n} {c.score:.4f}" for n, c in report.candidates.items())
    b = report.baselines or {}
    nan = float("nan")
    naive, mean = (b[k].score if k in b else nan for k in ("naive", "mean"))
    print(f"candidates: {cands}; baselines: naive {naive:.4f}, mean {mean:.4f}")
    print(
        "blend weights: "
        + ", ".join(f"{m} {w:.2f}" for m, w in report.blend.weights.items())
        + f"; neutral to {counts_text(report.blend.factor_counts())} label factors,"
        + f" {report.blend.ties:.0%} of targets tied, members as {SCALE_TEXT[report.blend.scale]}"
    )
    g = report.regime
    print(
        f"regime ROC AUC {g.roc_auc:.3f}  PR AUC {g.pr_auc:.3f} "
        f"(base rate {g.base_rate:.3f});  {report.train_seconds:.0f} s;  report: {out}/report.md"
    )


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the regime classifier and the 424 regressors (walk-forward CV)")
    t.add_argument("--data", required=True, help="competition directory")
    t.add_argument("--out", default="runs/train", help="output directory (default runs/train)")
    t.add_argument("--folds", type=int, default=4, help="walk-forward folds (default 4)")
    t.add_argument(
        "--gap", type=int, default=5, help="purge gap in days, >= the longest label horizon (default 5)"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--targets", help="subset, e.g. 0-49,100 (default: all 424)")
    t.add_argument(
        "--params", help="JSON of regressor parameters (default: <out>/../tune/best_params.json if present)"
    )
    t.add_argument(
        "--target-mode",
        choices=("auto", "raw", "rank"),
        default="auto",
        help="fit raw targets or per-day ranks; auto decides by CV score (default)",
    )
    t.add_argument(
        "--min-labels", type=int, default=200, help="fewer training labels -> naive fallback (default 200)"
    )
    t.add_argument(
        "--until",
        type=int,
        help="train only on what is known at the end of this date_id "
        "(e.g. the day before test.csv starts, to score the test window out of sample)",
    )
    t.add_argument(
        "--etf-feature",
        choices=("auto", "on", "off"),
        default="auto",
        help="the ETF crash probability as a regressor feature: kept if CV shows it helps (auto, "
        "default), always (on) or never (off)",
    )
    t.add_argument("--no-ablation", action="store_true", help="skip the ablation runs")
    t.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    _add_execution(t)
    t.set_defaults(func=_train)
    register_tune(sub)
    c = sub.add_parser("compare", help="paired difference of two training runs on their common OOF days")
    c.add_argument("run_a", help="training output directory A")
    c.add_argument("run_b", help="training output directory B")
    c.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from offline.train.compare import compare, print_comparison

    print_comparison(compare(args.run_a, args.run_b))
    return 0


def _tune(args: argparse.Namespace) -> int:
    from offline.train.engine import TrainConfig
    from offline.train.tune import tune

    cfg = TrainConfig(
        n_folds=args.folds,
        gap=args.gap,
        seed=args.seed,
        targets=_targets(args.targets),
        min_labels=args.min_labels,
    )
    result = tune(
        args.data,
        args.out,
        cfg,
        n_trials=args.trials,
        storage=args.storage,
        study_name=args.study,
        mode=args.target_mode,
        executor=args.executor,
        n_jobs=args.jobs,
        scheduler=args.scheduler,
    )
    print(
        f"best OOF score {result['score']:.4f} (trial {result['trial']} of {result['n_trials']}, "
        f"{result['n_pruned']} pruned) on {result['n_targets']} targets; storage {result['storage']}"
    )
    print(f"best parameters -> {args.out}/best_params.json (make train reads them)")
    return 0


def register_tune(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tune", help="Optuna study of the regressors' parameters (OOF competition score)")
    t.add_argument("--data", required=True, help="competition directory")
    t.add_argument("--out", default="runs/tune", help="output directory (default runs/tune)")
    t.add_argument("--trials", type=int, default=20, help="trials to add to the study (default 20)")
    t.add_argument(
        "--storage", help="SQLAlchemy URL shared by many workers (default sqlite:///<out>/study.db)"
    )
    t.add_argument("--study", default="regressors", help="study name (default regressors)")
    t.add_argument("--targets", help="subset to score on, e.g. 0-49 (default every 8th target)")
    t.add_argument(
        "--target-mode", choices=("raw", "rank"), default="raw", help="fit raw targets or per-day ranks"
    )
    t.add_argument("--folds", type=int, default=4)
    t.add_argument("--gap", type=int, default=5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--min-labels", type=int, default=200)
    _add_execution(t)
    t.set_defaults(func=_tune)
