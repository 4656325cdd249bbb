"""`make bench-train`: `python -m offline train` on the default synthetic market, quiet and with one
competing CPU-bound process, in one run.

    python -m bench.train [--data DIR] [--days N] [--targets SPEC] [--out bench/train.json]

Without --data the default synthetic market (seed 0, 1961 days, or --days) is written to
runs/bench-train/data on first use. Training runs twice in fresh subprocesses with the same
arguments: quiet, then while a child process started by the bench spins a busy loop (stopped when
that run ends). Writes both wall times, their ratio, each run's per-step seconds from report.json,
the machine's cores and the issue-10 goals (quiet at most 120 s, loaded at most 2x quiet) to
bench/train.json. --targets (e.g. 0-15) is a reduced mode for checking the bench itself; its
times say nothing about the goals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "train.json"
WORK = ROOT / "runs" / "bench-train"
GOALS = {"quiet_s": ("<=", 120.0), "ratio": ("<=", 2.0)}  # issue 10, part 5
BUSY_LOOP = "while True:\n    pass\n"


def ensure_data(data: str | None, days: int) -> Path:
    """The competition directory to train on: --data, else the default synthetic market (written once)."""
    if data:
        return Path(data)
    from offline.data.synthetic import TRUTH_FILE, SynthConfig, write_synthetic

    out = WORK / f"data-{days}"
    if not (out / TRUTH_FILE).exists():
        write_synthetic(out, SynthConfig(days=days))
    return out


def timed_train(data: Path, out: Path, targets: str | None) -> dict:
    """Wall time and per-step seconds of one `python -m offline train` in a fresh subprocess, into an
    empty `out` (a previous run's per-target checkpoints would skip the regressors)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "offline", "train", "--data", str(data), "--out", str(out)]
    if targets:
        cmd += ["--targets", targets]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    from offline.train.run_files import TrainReport

    return {"wall_s": round(wall, 2), "seconds": TrainReport.load(out).seconds, "command": cmd[1:]}


def with_competitor(fn):
    """Run fn() while one child process spins a CPU-bound busy loop; the child is stopped afterwards."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(0.5)  # let it reach the loop
        return fn()
    finally:
        busy.terminate()
        busy.wait(timeout=10)


def measure(data: Path, targets: str | None) -> dict:
    quiet = timed_train(data, WORK / "quiet", targets)
    loaded = with_competitor(lambda: timed_train(data, WORK / "loaded", targets))
    result = {
        "quiet_s": quiet["wall_s"],
        "loaded_s": loaded["wall_s"],
        "ratio": round(loaded["wall_s"] / quiet["wall_s"], 3),
        "quiet_steps": quiet["seconds"],
        "loaded_steps": loaded["seconds"],
        "command": "python " + " ".join(quiet["command"]),
        "data": str(data),
        "reduced": targets is not None,
        "targets": targets or "all",
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    result["goals"] = {
        key: {"bound": f"{op} {bound}", "met": result[key] <= bound} for key, (op, bound) in GOALS.items()
    }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="competition directory (default: the default synthetic market)")
    p.add_argument("--days", type=int, default=1961, help="days of the synthetic market (default 1961)")
    p.add_argument("--targets", help="reduced mode: train only these targets, e.g. 0-15")
    p.add_argument("--out", default=str(RESULTS), help="results JSON (default bench/train.json)")
    args = p.parse_args(argv)
    result = measure(ensure_data(args.data, args.days), args.targets)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    mode = f" (reduced: targets {args.targets})" if args.targets else ""
    print(
        f"make train{mode}: quiet {result['quiet_s']:.1f} s, with one busy process {result['loaded_s']:.1f} s, "
        f"ratio {result['ratio']:.2f} -> {args.out}"
    )
    for key, goal in result["goals"].items():
        print(f"  {key} {goal['bound']}: {'met' if goal['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
