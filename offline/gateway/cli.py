"""`python -m offline gateway` (run a kernel through the local gateway) and `python -m offline score`."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from offline.errors import DataError, UserError


def read_table(path: str | Path) -> pl.DataFrame:
    """A parquet or csv file with date_id + target_* columns; targets as Float64 (nulls allowed)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            frame = pl.read_csv(path, infer_schema_length=None)
        else:
            raise UserError(f"{path}: expected a .parquet or .csv file")
    except pl.exceptions.PolarsError as exc:
        raise DataError(str(path), str(exc).splitlines()[0]) from None
    if "date_id" not in frame.columns:
        raise DataError(str(path), "has no date_id column")
    targets = [c for c in frame.columns if c.startswith("target_")]
    if not targets:
        raise DataError(str(path), "has no target_* columns")
    for col in ["date_id", *targets]:
        dtype = pl.Int64 if col == "date_id" else pl.Float64
        cast = frame[col].cast(dtype, strict=False)
        if cast.null_count() != frame[col].null_count():
            bad = (
                frame.with_row_index("_r")
                .filter(cast.is_null() & frame[col].is_not_null())
                .row(0, named=True)
            )
            raise DataError(
                str(path), f"value {bad[col]!r} is not a number", column=col, row=int(bad["_r"]) + 1
            )
        frame = frame.with_columns(cast.alias(col))
    return frame


def _score(args: argparse.Namespace) -> int:
    from offline import metric

    solution, submission = read_table(args.solution), read_table(args.submission)
    try:
        pred, truth, targets = metric.align(solution, submission)
        daily = metric.daily_rank_correlations(pred, truth)
        value = metric.sharpe_of_daily(daily)
    except (ZeroDivisionError, ValueError) as exc:
        raise UserError(f"the metric failed: {exc}") from None
    print(
        f"days {len(daily)}  targets {len(targets)}  mean daily rank correlation {daily.mean():.6f}  "
        f"std {daily.std():.6f}"
    )
    print(f"{value:.10g}")
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from offline.gateway.runner import format_summary, run_gateway

    report = run_gateway(
        args.data,
        args.kernel,
        args.report,
        out_dir=args.out,
        startup_limit=args.startup_limit,
        call_limit=args.call_limit,
        official=args.official,
        echo=not args.quiet,
        python=args.python,
        artifacts=args.artifacts,
    )
    print(format_summary(report))
    print(f"report {Path(args.report).resolve()}")
    return 0 if report["ok"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "gateway",
        help="run a kernel through the local evaluation gateway, score it and time it",
        description="Run a kernel script the way Kaggle does (own process, serve(), one batch per date_id, "
        "Kaggle's validation and time limits), write submission.parquet and a JSON report with the score "
        "on the is_scored days and per-call latency. Exit code 1 when the run fails.",
    )
    g.add_argument(
        "--data", required=True, help="competition directory (Kaggle layout: test.csv, lagged_test_labels/)"
    )
    g.add_argument(
        "--kernel",
        default="naive",
        help="'naive' (latest delivered label), 'oracle' (DATA/oracle.parquet) or a kernel script path",
    )
    g.add_argument("--report", default="runs/gateway/report.json", help="report JSON path")
    g.add_argument(
        "--out",
        default=None,
        help="run directory: kernel cwd, submission.parquet, kernel.log (default: the report's directory)",
    )
    g.add_argument(
        "--startup-limit",
        type=float,
        default=900,
        help="seconds from script start until the inference server is up (Kaggle: 900); the first "
        "predict itself has no deadline",
    )
    g.add_argument(
        "--call-limit", type=float, default=300, help="seconds per call after the first (Kaggle: 300)"
    )
    g.add_argument(
        "--official",
        action="store_true",
        help="use DATA/kaggle_evaluation (a real Kaggle download) and its run_local_gateway instead",
    )
    g.add_argument(
        "--python",
        default=None,
        help="the interpreter the kernel runs with (make gateway: .venv-kaggle/bin/python, Kaggle's "
        "image versions; default: this one)",
    )
    g.add_argument(
        "--artifacts",
        default=None,
        help="artifacts directory the packaged kernel loads (sets MITSUI_KIT_ARTIFACTS; make gateway: "
        "ARTIFACTS, default artifacts/)",
    )
    g.add_argument(
        "--quiet", action="store_true", help="do not echo the kernel's output (still in kernel.log)"
    )
    g.set_defaults(func=_gateway)

    s = sub.add_parser(
        "score",
        help="score a submission against a solution with the competition metric",
        description="Both files are parquet or csv with date_id + target_* columns (null targets allowed in the "
        "solution). Per day: Spearman rank correlation over the non-null targets; score = mean / population std. "
        "The score is the last line printed.",
    )
    s.add_argument("solution", help="true targets (parquet or csv)")
    s.add_argument("submission", help="predictions (parquet or csv)")
    s.set_defaults(func=_score)
