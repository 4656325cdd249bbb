"""`make demo`: the whole pipeline on the built-in synthetic market, ending in a score/latency table.

synth -> train (walk-forward CV, 424 targets) -> package (artifacts) -> local gateway with the
naive kernel, the oracle and the packaged kernel, each scored on the synthetic test window.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import polars as pl

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
    print(f"[demo] trained: OOF score {report['oof_score']:.3f} ({timings['train_s']:.0f} s)", flush=True)

    t = time.perf_counter()
    artifacts = out / "artifacts"
    build(out / "train", artifacts)
    timings["package_s"] = time.perf_counter() - t
    print(f"[demo] packaged: {artifacts} ({artifact_size(artifacts) / 1e6:.1f} MB)", flush=True)

    rows = []
    os.environ["MITSUI_KIT_ARTIFACTS"] = str(artifacts.resolve())
    for name, kernel in (("naive", "naive"), ("oracle", "oracle"), ("packaged kernel", str(KERNEL_SCRIPT))):
        rep = run_gateway(data, kernel, out / "gateway" / name.replace(" ", "_") / "report.json", echo=False)
        rows.append((name, rep))
    table = format_table(rows, report)
    print(table)
    (out / "demo.md").write_text(table + "\n")
    summary = {
        "timings": timings,
        "train": {
            k: report.get(k)
            for k in ("oof_score", "baselines", "oracle_score", "oracle_fraction", "train_seconds")
        },
        "gateway": {
            name: {k: rep.get(k) for k in ("score", "latency_ms", "startup_s", "ok")} for name, rep in rows
        },
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def format_table(rows: list[tuple[str, dict]], train_report: dict) -> str:
    lines = [
        "",
        "Synthetic test window, scored days only (local gateway, Kaggle's batches and checks):",
        "",
        f"{'kernel':<18}{'score':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'startup s':>11}  status",
    ]
    for name, rep in rows:
        lat = rep.get("latency_ms") or {}
        score = rep.get("score")
        lines.append(
            f"{name:<18}{score if score is None else f'{score:.3f}':>9}{_ms(lat.get('p50')):>9}"
            f"{_ms(lat.get('p95')):>9}{_ms(lat.get('max')):>9}{rep.get('startup_s', float('nan')):>11.2f}  "
            f"{'ok' if rep.get('ok') else 'FAILED: ' + '; '.join(map(str, rep.get('errors', [])))[:80]}"
        )
    b = train_report.get("baselines", {})
    lines += [
        "",
        "Walk-forward out-of-fold score on the training period before the test window (424 targets):",
        f"  model {train_report['oof_score']:.3f} | naive {b.get('naive', float('nan')):.3f} | "
        f"mean {b.get('mean', float('nan')):.3f} | pooled {b.get('pooled', float('nan')):.3f}"
        + (
            f" | oracle {train_report['oracle_score']:.3f} (model = {100 * train_report['oracle_fraction']:.0f}% of oracle)"
            if train_report.get("oracle_score")
            else ""
        ),
    ]
    return "\n".join(lines)


def _ms(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


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
