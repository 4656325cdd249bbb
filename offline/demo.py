"""`make demo`: the whole pipeline on the built-in synthetic market, ending in a score/latency table.

synth -> train (walk-forward CV, 424 targets) -> package (artifacts) -> local gateway with the
naive kernel, the oracle and the packaged kernel, each scored on the synthetic test window.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from offline.train.run_files import TrainReport

KERNEL_SCRIPT = Path(__file__).resolve().parents[1] / "kaggle_kernel" / "submission.py"


def run_demo(out: Path, seed: int = 0, days: int = 1961, jobs: int | None = None) -> dict:
    from offline.data.synthetic import SynthConfig, write_synthetic
    from offline.gateway import run_gateway
    from offline.release.package import artifact_size, build
    from offline.train.engine import TrainConfig, train

    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    data = out / "data"
    t = time.perf_counter()
    write_synthetic(data, SynthConfig(days=days, seed=seed))
    timings["synth_s"] = time.perf_counter() - t
    print(f"[demo] synthetic market: {data} ({timings['synth_s']:.1f} s)", flush=True)

    t = time.perf_counter()
    # train on what is known before the test window, so the gateway scores out of sample
    first_test = int(pl.read_csv(data / "test.csv", columns=["date_id"])["date_id"].min())
    report = train(data, out / "train", TrainConfig(seed=seed, until=first_test - 1), n_jobs=jobs)
    timings["train_s"] = time.perf_counter() - t
    print(f"[demo] trained: OOF score {report.oof_score:.3f} ({timings['train_s']:.0f} s)", flush=True)

    t = time.perf_counter()
    artifacts = out / "artifacts"
    build(out / "train", artifacts)
    timings["package_s"] = time.perf_counter() - t
    print(f"[demo] packaged: {artifacts} ({artifact_size(artifacts) / 1e6:.1f} MB)", flush=True)

    rows = []
    for name, kernel in (("naive", "naive"), ("oracle", "oracle"), ("packaged kernel", str(KERNEL_SCRIPT))):
        report_path = out / "gateway" / name.replace(" ", "_") / "report.json"
        rep = run_gateway(data, kernel, report_path, echo=False, artifacts=artifacts)
        rows.append((name, rep))
    table = format_table(rows, report)
    print(table)
    (out / "demo.md").write_text(table + "\n")
    summary = {
        "timings": timings,
        "train": {
            k: report.to_json().get(k)
            for k in ("oof_score", "baselines", "oracle_score", "oracle_fraction", "train_seconds")
        },
        "gateway": {
            name: {k: rep.get(k) for k in ("score", "latency_ms", "startup_s", "ok")} for name, rep in rows
        },
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def format_table(rows: list[tuple[str, dict]], train_report: TrainReport) -> str:
    """demo.md: the gateway runs and the training run's out-of-fold scores, as Markdown tables."""
    lines = [
        "Synthetic test window, scored days only (local gateway, Kaggle's batches and checks):",
        "",
        "| kernel | score | p50 ms | p95 ms | max ms | startup s | status |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, rep in rows:
        lat = rep.get("latency_ms") or {}
        status = "ok" if rep.get("ok") else f"FAILED ({rep['failure']['kind']})"
        startup = rep.get("startup_s")
        lines.append(
            f"| {name} | {_num(rep.get('score'), 3)} | {_num(lat.get('p50'))} | {_num(lat.get('p95'))} | "
            f"{_num(lat.get('max'))} | {_num(startup, 2)} | {status} |"
        )
    b = train_report.baselines or {}
    c = train_report.candidates
    oracle = train_report.oracle
    members = list(c)  # every candidate, in blend order
    lines += [
        "",
        "Walk-forward out-of-fold scores on the training period before the test window (424 targets, "
        "the blend's days; 90% block-bootstrap intervals):",
        "",
        "| model | score | 90% interval |",
        "| --- | ---: | --- |",
        f"| blend | {_num(train_report.oof_score, 3)} | {_interval(train_report.oof_interval)} |",
        *(f"| {m} | {_num(c[m].score, 3)} | {_interval(c[m].interval)} |" for m in members),
        f"| naive (all OOF days) | {_num(b['naive'].score if 'naive' in b else None, 3)} | "
        f"{_interval(b['naive'].interval if 'naive' in b else None)} |",
        f"| oracle | {_num(oracle and oracle.score, 3)} | {_interval(oracle and oracle.interval)} |",
        "",
        f"Blend / oracle: {_pct(oracle and oracle.fraction)}.",
    ]
    return "\n".join(lines)


def _num(v, digits: int = 1) -> str:
    return "n/a" if v is None else f"{float(v):.{digits}f}"


def _interval(v) -> str:
    return "n/a" if not v else f"[{float(v[0]):.3f}, {float(v[1]):.3f}]"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * float(v):.0f}%"


def _demo(args: argparse.Namespace) -> int:
    summary = run_demo(Path(args.out), seed=args.seed, days=args.days, jobs=args.jobs)
    return 0 if all(g["ok"] for g in summary["gateway"].values()) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="synthetic data -> train -> package -> gateway, with a score/latency table"
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=1961, help="synthetic trading days (default 1961)")
    p.add_argument("--jobs", type=int, default=None, help="training processes (default: all cores)")
    p.set_defaults(func=_demo)
