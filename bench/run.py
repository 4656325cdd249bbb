"""`make bench`: the packed kernel against the naive pandas + LightGBM kernel, side by side in one run.

    python -m bench.run [--artifacts DIR] [--data DIR] [--days N] [--out bench/results.json]

Without --artifacts: runs/demo (from `make demo`) if present, else runs/bench, built on first use
(default synthetic market, all 424 targets at default model size, packaged). Both kernels serve
the same test days as the gateway delivers them, alternating which goes first so machine noise hits
both alike; their predictions must agree to 1e-6. Cold start and peak memory are measured in fresh
subprocesses. Prints a table and writes the numbers to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from offline.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
DEMO = ROOT / "runs" / "demo"
WORK = ROOT / "runs" / "bench"
TOLERANCE = 1e-6
GOALS = {  # key: (comparison, bound)
    "speedup": (">=", 10.0),
    "kernel_ms_p50": ("<=", 10.0),
    "cold_start_s": ("<=", 3.0),
    "artifact_mb": ("<=", 50.0),
    "max_abs_diff": ("<=", TOLERANCE),
}

_COLD_START = """
import json, sys, time
t0 = time.perf_counter()
from kaggle_kernel.predictor import Predictor
t1 = time.perf_counter()
p = Predictor.from_artifacts(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "problems": p.problems,
                  "models": 0 if p.stage2 is None else len(p.stage2_targets)}))
"""

_SERVE = """
import json, resource, sys, time
from kaggle_kernel.predictor import Predictor
from offline.gateway.kaggle_evaluation.mitsui_gateway import generate_data_batches
p = Predictor.from_artifacts(sys.argv[1])
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = 0
for batch, _ in generate_data_batches(sys.argv[2]):
    if n >= int(sys.argv[3]):
        break
    p.predict(*batch)
    n += 1
print(json.dumps({"days": n, "after_load_kb": after_load, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "errors": sum(p.errors.values())}))
"""


# ---- inputs -------------------------------------------------------------------------------------
def build_default(work: Path = WORK) -> tuple[Path, Path]:
    """Synthesize the default market, train all targets at default size and package them into work/."""
    from offline.data.synthetic import SynthConfig, write_synthetic
    from offline.release.package import build
    from offline.train.engine import TrainConfig, train

    data, models, artifacts = work / "data", work / "train", work / "artifacts"
    print(
        f"[bench] building default artifacts in {work} (synthetic data, 424 targets; several minutes)",
        file=sys.stderr,
        flush=True,
    )
    if not (data / "test.csv").exists():
        write_synthetic(data, SynthConfig())
    train(data, models, TrainConfig(ablation=False, baselines=False))
    build(models, artifacts, data)
    return artifacts, data


def _current(artifacts: Path) -> bool:
    """Artifacts exist and were built for this kernel's feature vector (else they are stale)."""
    from kaggle_kernel.features import FeatureSpec

    try:
        manifest = json.loads((artifacts / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("feature_names") == FeatureSpec().all_features()


def resolve_inputs(
    artifacts: str | Path | None, data: str | Path | None, work: Path = WORK
) -> tuple[Path, Path]:
    """(artifacts, data): as given, else runs/demo, else runs/bench (built if missing)."""
    if artifacts is None:
        if data is not None:
            raise UserError("--data needs --artifacts (the models to serve on it)")
        for root in (DEMO, work):
            if _current(root / "artifacts") and (root / "data" / "test.csv").exists():
                return root / "artifacts", root / "data"
        return build_default(work)
    artifacts = Path(artifacts)
    manifest = artifacts / "manifest.json"
    if not manifest.exists():
        raise UserError(f"{manifest} not found: build artifacts with `make package` or `make demo`")
    if data is None:
        trained_on = (json.loads(manifest.read_text()).get("training") or {}).get("data") or {}
        data = trained_on.get("dir")
        if data is None:
            raise UserError(f"{manifest} names no training data; pass --data DIR")
    data = Path(data)
    if not data.is_absolute() and not data.exists():
        data = ROOT / data
    if not (data / "test.csv").exists():
        raise UserError(
            f"{data / 'test.csv'} not found: --data must be a competition directory with test.csv"
        )
    return artifacts, data


def load_days(data: Path, n_days: int | None = None) -> list[tuple[tuple, int]]:
    """The gateway's (test, lag1..lag4) batches per test day, in order; the first n_days of them."""
    from offline.gateway.kaggle_evaluation.mitsui_gateway import generate_data_batches

    days = []
    for batch, date_id in generate_data_batches(data):
        if n_days is not None and len(days) >= n_days:
            break
        days.append((batch, int(date_id)))
    if not days:
        raise UserError(f"{data / 'test.csv'} has no test days")
    return days


# ---- measurements -------------------------------------------------------------------------------
def serve_side_by_side(artifacts: Path, days: list[tuple[tuple, int]]) -> dict:
    """Both kernels serve every day, alternating which goes first; per-day ms and the largest difference."""
    from bench.naive_kernel import NaiveKernel
    from kaggle_kernel.predictor import Predictor

    kernel = Predictor.from_artifacts(artifacts)
    if kernel.problems:
        raise UserError(f"{artifacts}: artifact problems {kernel.problems}; rebuild them before benchmarking")
    naive = NaiveKernel(artifacts)
    times = {"kernel": [], "naive": []}
    diffs = []
    for i, (batch, _) in enumerate(days):
        outs = {}
        for name in ("kernel", "naive") if i % 2 == 0 else ("naive", "kernel"):
            model = kernel if name == "kernel" else naive
            t = time.perf_counter()
            outs[name] = model.predict(*batch)
            times[name].append(1e3 * (time.perf_counter() - t))
        a, b = outs["kernel"].to_numpy()[0].astype(np.float64), outs["naive"].to_numpy()[0].astype(np.float64)
        diffs.append(float(np.max(np.abs(a - b))))
    return {
        "kernel_ms": np.array(times["kernel"]),
        "naive_ms": np.array(times["naive"]),
        "diffs": np.array(diffs),
        "kernel_errors": int(sum(kernel.errors.values())),
    }


def _python(code: str, *args: str) -> tuple[float, dict]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def cold_start(artifacts: Path, repeats: int = 3) -> dict:
    """Interpreter start to a ready Predictor (import, manifest check, forest load, bootstrap), fresh processes."""
    runs = [_python(_COLD_START, str(artifacts)) for _ in range(repeats)]
    walls = [w for w, _ in runs]
    best = runs[int(np.argsort(walls)[len(walls) // 2])][1]  # the median run's in-process split
    return {
        "cold_start_s": float(np.median(walls)),
        "cold_start_runs_s": walls,
        "import_s": best["import_s"],
        "load_s": best["load_s"],
        "problems": best["problems"],
    }


def peak_memory(artifacts: Path, data: Path, n_days: int) -> dict:
    """Peak RSS of a fresh process that loads the artifacts and serves n_days test days."""
    _, out = _python(_SERVE, str(artifacts), str(data), str(n_days))
    kb = 1024.0  # Linux reports ru_maxrss in KiB
    return {
        "peak_rss_mb": out["peak_kb"] / kb,
        "rss_after_load_mb": out["after_load_kb"] / kb,
        "served_days": out["days"],
        "errors": out["errors"],
    }


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    libs = {}
    for lib in ("polars", "numpy", "pandas", "lightgbm"):
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            libs[lib] = None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": libs,
    }


def _goals(r: dict) -> dict:
    out = {}
    for key, (op, bound) in GOALS.items():
        v = r[key]
        out[key] = bool(v >= bound) if op == ">=" else bool(v <= bound)
    return out


def measure(
    artifacts: str | Path, data: str | Path, n_days: int | None = None, cold_repeats: int = 3
) -> dict:
    """Every benchmark number of one run (see the module docstring)."""
    from offline.release.package import artifact_size

    artifacts, data = Path(artifacts), Path(data)
    load_start = os.getloadavg()
    manifest = json.loads((artifacts / "manifest.json").read_text())
    days = load_days(data, n_days)
    served = serve_side_by_side(artifacts, days)
    cold = cold_start(artifacts, cold_repeats)
    mem = peak_memory(artifacts, data, len(days))
    k, n = served["kernel_ms"], served["naive_ms"]
    models = manifest.get("models", {})
    r = {
        "artifacts": str(artifacts),
        "data": str(data),
        "n_days": len(days),
        "first_date_id": days[0][1],
        "last_date_id": days[-1][1],
        "n_models": len(models),
        "n_target_models": sum(1 for m in manifest.get("targets", {}).values() if m),
        "n_trees": int(sum(m.get("trees", 0) for m in models.values())),
        "kernel_ms_p50": float(np.percentile(k, 50)),
        "kernel_ms_p99": float(np.percentile(k, 99)),
        "kernel_ms_first": float(k[0]),
        "naive_ms_p50": float(np.percentile(n, 50)),
        "naive_ms_p99": float(np.percentile(n, 99)),
        "speedup": float(np.percentile(n, 50) / np.percentile(k, 50)),
        "max_abs_diff": float(served["diffs"].max()),
        "kernel_errors": served["kernel_errors"],
        **{k2: cold[k2] for k2 in ("cold_start_s", "cold_start_runs_s", "import_s", "load_s")},
        "cold_start_in_process_s": cold["import_s"] + cold["load_s"],
        "peak_rss_mb": mem["peak_rss_mb"],
        "rss_after_load_mb": mem["rss_after_load_mb"],
        "artifact_mb": artifact_size(artifacts) / 1e6,
        "machine": {**machine(), "load_avg_start": list(load_start), "load_avg_end": list(os.getloadavg())},
        "bench_process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    r["goals_met"] = _goals(r)
    return r


# ---- report -------------------------------------------------------------------------------------
def format_table(r: dict) -> str:
    def goal(key: str) -> str:
        op, bound = GOALS[key]
        return f"{op} {bound:g}", "yes" if r["goals_met"][key] else "NO"

    rows = [
        ("kernel p50 ms / day", f"{r['kernel_ms_p50']:.2f}", *goal("kernel_ms_p50")),
        ("kernel p99 ms / day", f"{r['kernel_ms_p99']:.2f}", "", ""),
        ("naive p50 ms / day", f"{r['naive_ms_p50']:.2f}", "", ""),
        ("speedup (naive/kernel p50)", f"{r['speedup']:.1f}x", *goal("speedup")),
        ("cold start s", f"{r['cold_start_s']:.2f}", *goal("cold_start_s")),
        ("  in process (import+load)", f"{r['cold_start_in_process_s']:.2f}", "", ""),
        ("peak RSS MB (serve all days)", f"{r['peak_rss_mb']:.0f}", "", ""),
        ("artifacts MB", f"{r['artifact_mb']:.1f}", *goal("artifact_mb")),
        ("max |naive - kernel|", f"{r['max_abs_diff']:.1e}", *goal("max_abs_diff")),
    ]
    m = r["machine"]
    head = (
        f"bench: {r['artifacts']} on {r['data']}: {r['n_days']} days (date_id {r['first_date_id']}.."
        f"{r['last_date_id']}), {r['n_models']} models ({r['n_target_models']} targets), {r['n_trees']} trees"
    )
    lines = [head, f"{'metric':<30}{'value':>10}  {'goal':<10}{'met':>4}"]
    lines += [f"{a:<30}{b:>10}  {c:<10}{d:>4}" for a, b, c, d in rows]
    lines.append(
        f"machine: {m['usable_cpus']}/{m['nproc']} cpus ({m['cpu']}), load "
        f"{m['load_avg_start'][0]:.2f} -> {m['load_avg_end'][0]:.2f}; kernel fallbacks {r['kernel_errors']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--artifacts", help="artifacts directory (default: runs/demo/artifacts, else runs/bench, built)"
    )
    p.add_argument(
        "--data", help="competition directory with test.csv (default: the artifacts' training data)"
    )
    p.add_argument("--days", type=int, help="serve only the first N test days (default: all)")
    p.add_argument("--out", default=str(RESULTS), help="results JSON (default bench/results.json)")
    p.add_argument("--cold-repeats", type=int, default=3, help="fresh processes for the cold start (median)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a speed/size goal is not met")
    args = p.parse_args(argv)
    try:
        if args.days is not None and args.days < 1:
            raise UserError(f"--days must be at least 1 (got {args.days})")
        if args.cold_repeats < 1:
            raise UserError(f"--cold-repeats must be at least 1 (got {args.cold_repeats})")
        artifacts, data = resolve_inputs(args.artifacts, args.data)
        results = measure(artifacts, data, args.days, args.cold_repeats)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(format_table(results))
    print(f"written: {args.out}")
    if not results["goals_met"]["max_abs_diff"]:
        print(
            f"error: naive and packed kernel disagree by {results['max_abs_diff']:.3g} (> {TOLERANCE:g})",
            file=sys.stderr,
        )
        return 1
    if args.strict and not all(results["goals_met"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
