"""Run a kernel the way Kaggle does, score its submission and write a report (`run_gateway`).

Emulated run (default): the kernel script runs in its own process with
KAGGLE_IS_COMPETITION_RERUN=1, the kit's `kaggle_evaluation` on its PYTHONPATH, the data dir in
$KAGGLE_KIT_DATA_DIR and its working directory = `out_dir`. Its `serve()` listens on a free
127.0.0.1 port and reports the port through a file; this process is the gateway: it sends each
batch (Arrow IPC), times each call, validates the answer (Kaggle's rules fail the run, the kit's
checks warn), shuts the server down and writes `out_dir/submission.parquet`.

Limits: the server must answer a first call (a ping handshake, then the first predict) within
`startup_limit` seconds of the script's start; Kaggle applies the per-call deadline only after
the first answer, so the first predict counts against the startup limit and every later call
has `call_limit` seconds. A breach kills the kernel's process group and fails the run naming
the limit. `startup_s` is script start to the handshake answer (the server being up).

Official run (`official=True`): DIR/kaggle_evaluation (a real Kaggle download) goes on the
kernel's PYTHONPATH instead of ours, KAGGLE_IS_COMPETITION_RERUN is unset, and the kernel runs
Kaggle's own local gateway via run_local_gateway((DIR,)), which writes submission.parquet into
the working directory. Only wall time is known then: latency_ms holds the mean per day
(p50/p95/max are null) and the whole run has startup_limit + call_limit * days.

Scoring: is_scored days of test.csv against labels from train_labels.csv, else the lag files,
else the prices (see `solution.py`); days without any known label are left out and counted.
A metric failure (a constant day, zero std) fails the run, as it would fail the submission.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from offline import metric
from offline.data.competition import load_competition
from offline.errors import UserError
from offline.gateway.kaggle_evaluation.core.errors import GatewayRuntimeError
from offline.gateway.kaggle_evaluation.core.relay import CallTimeout, Client, ConnectionClosed, RemoteError
from offline.gateway.kaggle_evaluation.core.templates import PORT_ENV, PORT_FILE_ENV
from offline.gateway.kaggle_evaluation.mitsui_gateway import (
    DATA_DIR_ENV,
    MitsuiGateway,
    assemble_submission,
    generate_data_batches,
    kit_warnings,
    remote_failure,
)
from offline.gateway.process import KernelProcess
from offline.gateway.solution import scored_solution

GATEWAY_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = GATEWAY_DIR / "kaggle_evaluation"
BUILTIN_KERNELS = {
    "naive": GATEWAY_DIR / "kernels" / "naive.py",
    "oracle": GATEWAY_DIR / "kernels" / "oracle.py",
}
SUBMISSION = "submission.parquet"
KERNEL_LOG = "kernel.log"


class RunFailure(Exception):
    """The run failed; `kind` is a short category (startup_limit, call_limit, kernel_crashed, ...)."""

    def __init__(self, kind: str, message: str):
        self.kind, self.message = kind, message
        super().__init__(message)


@dataclass
class _Progress:
    """What a run has measured so far (kept when it fails half-way)."""

    latencies: list[float] = field(default_factory=list)
    warnings: list[tuple[int, str, str]] = field(default_factory=list)
    n_answered: int = 0
    startup_s: float | None = None
    wall_s: float | None = None
    exit_code: int | None = None
    kernel_traceback: str | None = None
    submission: pl.DataFrame | None = None


def resolve_kernel(kernel: str | Path) -> tuple[str, Path]:
    """A built-in kernel name (naive, oracle) or a path to a kernel script."""
    if str(kernel) in BUILTIN_KERNELS:
        return str(kernel), BUILTIN_KERNELS[str(kernel)]
    path = Path(kernel)
    if not path.is_file():
        raise UserError(
            f"kernel {kernel!r} is neither a built-in ({', '.join(BUILTIN_KERNELS)}) nor a script file"
        )
    return str(path), path.resolve()


def _pythonpath(first: Path) -> str:
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(first), rest] if rest else [str(first)])


def _wait_for_server(kp: KernelProcess, port_file: Path, deadline: float, limit: float) -> Client:
    while True:
        code = kp.poll()
        if code is not None:
            raise RunFailure(
                "kernel_crashed",
                f"the kernel exited with code {code} before its inference server answered; "
                f"last stderr lines:\n{kp.stderr_tail()}",
            )
        if time.monotonic() >= deadline:
            raise RunFailure(
                "startup_limit",
                f"startup limit breached: the inference server did not answer within {limit:g} s of the "
                f"script's start (--startup-limit {limit:g}; Kaggle allows 900 s)",
            )
        if port_file.exists():
            try:
                client = Client(
                    int(port_file.read_text()), connect_timeout=max(0.1, deadline - time.monotonic())
                )
                client.ping(max(0.1, deadline - time.monotonic()))
                return client
            except (OSError, ValueError, CallTimeout, ConnectionClosed):
                pass
        time.sleep(0.02)


def _died(kp: KernelProcess, date_id: int) -> RunFailure:
    try:
        kp.proc.wait(5)
    except Exception:
        pass
    code = kp.poll()
    return RunFailure(
        "kernel_crashed",
        f"the kernel process {'exited with code ' + str(code) if code is not None else 'closed the connection'} "
        f"while answering date_id {date_id}; last stderr lines:\n{kp.stderr_tail()}",
    )


def _run_emulated(
    data_dir: Path,
    script: Path,
    out_dir: Path,
    startup_limit: float,
    call_limit: float,
    echo: bool,
    prog: _Progress,
) -> None:
    with tempfile.TemporaryDirectory(prefix="kit-gateway-") as tmp:
        path_dir = Path(tmp) / "path"
        path_dir.mkdir()
        (path_dir / "kaggle_evaluation").symlink_to(PACKAGE_DIR, target_is_directory=True)
        port_file = Path(tmp) / "port"
        env = {
            **os.environ,
            "KAGGLE_IS_COMPETITION_RERUN": "1",
            DATA_DIR_ENV: str(data_dir),
            PORT_ENV: "0",
            PORT_FILE_ENV: str(port_file),
            "PYTHONPATH": _pythonpath(path_dir),
            "PYTHONUNBUFFERED": "1",
        }
        t0 = time.monotonic()
        kp = KernelProcess(script, out_dir, env, out_dir / KERNEL_LOG, echo)
        client = None
        try:
            client = _wait_for_server(kp, port_file, t0 + startup_limit, startup_limit)
            prog.startup_s = time.monotonic() - t0
            gateway = MitsuiGateway((str(data_dir),))
            prog.warnings = gateway.warnings
            for i, (batch, date_id) in enumerate(generate_data_batches(data_dir)):
                timeout = t0 + startup_limit - time.monotonic() if i == 0 else call_limit
                start = time.perf_counter()
                try:
                    prediction = client.send("predict", *batch, timeout=max(timeout, 0.001))
                except CallTimeout:
                    if i == 0:
                        raise RunFailure(
                            "startup_limit",
                            f"startup limit breached: the first predict (date_id {date_id}) was not answered "
                            f"within {startup_limit:g} s of the script's start (--startup-limit {startup_limit:g})",
                        ) from None
                    raise RunFailure(
                        "call_limit",
                        f"call limit breached: predict for date_id {date_id} took longer than {call_limit:g} s "
                        f"(--call-limit {call_limit:g}; Kaggle allows 300 s per call after the first)",
                    ) from None
                except ConnectionClosed:
                    raise _died(kp, date_id) from None
                except RemoteError as exc:
                    prog.kernel_traceback = exc.traceback
                    raise remote_failure(exc) from None
                prog.latencies.append(time.perf_counter() - start)
                gateway.handle(prediction, batch, date_id)
                prog.n_answered += 1
            prog.submission = assemble_submission(gateway.rows, gateway.date_ids)
            client.shutdown()
            client = None
            prog.exit_code = kp.wait(10)
        finally:
            if client is not None:
                client.close()
            kp.kill()
            if prog.exit_code is None:
                prog.exit_code = kp.poll()
            prog.wall_s = time.monotonic() - t0


def _run_official(
    data_dir: Path,
    script: Path,
    out_dir: Path,
    startup_limit: float,
    call_limit: float,
    n_days: int,
    echo: bool,
    prog: _Progress,
) -> None:
    if not (data_dir / "kaggle_evaluation").is_dir():
        raise UserError(f"--official needs Kaggle's kaggle_evaluation/ package in {data_dir}; it is absent")
    env = {k: v for k, v in os.environ.items() if k != "KAGGLE_IS_COMPETITION_RERUN"}
    env.update({DATA_DIR_ENV: str(data_dir), "PYTHONPATH": _pythonpath(data_dir), "PYTHONUNBUFFERED": "1"})
    (out_dir / SUBMISSION).unlink(missing_ok=True)
    wall_limit = startup_limit + call_limit * n_days
    t0 = time.monotonic()
    kp = KernelProcess(script, out_dir, env, out_dir / KERNEL_LOG, echo)
    try:
        try:
            kp.proc.wait(wall_limit)
        except Exception:
            raise RunFailure(
                "wall_limit",
                f"wall-time limit breached: the official local gateway ran longer than startup limit + call "
                f"limit x days = {startup_limit:g} + {call_limit:g} x {n_days} = {wall_limit:g} s",
            ) from None
    finally:
        kp.kill()
        prog.wall_s = time.monotonic() - t0
        prog.exit_code = kp.poll()
    if prog.exit_code != 0:
        raise RunFailure(
            "kernel_crashed",
            f"the kernel exited with code {prog.exit_code}; last stderr lines:\n{kp.stderr_tail()}",
        )
    if not (out_dir / SUBMISSION).exists():
        raise RunFailure("no_submission", f"the official gateway wrote no {SUBMISSION} in {out_dir}")
    sub = pl.read_parquet(out_dir / SUBMISSION)
    if not sub.columns or sub.columns[0] != "date_id":
        raise RunFailure(
            "invalid_submission", f"{SUBMISSION} does not start with a date_id column: {sub.columns[:3]}"
        )
    names = [f"target_{i}" for i in range(sub.width - 1)]
    for row in sub.iter_slices(1):
        date_id = int(row["date_id"][0])
        prog.warnings += [(date_id, k, m) for k, m in kit_warnings(row.drop("date_id"), names)]
    prog.n_answered = sub.height
    prog.submission = sub


def _latency(prog: _Progress, official: bool) -> dict[str, Any]:
    if official:
        mean = prog.wall_s / prog.n_answered * 1000 if prog.n_answered and prog.wall_s else None
        return {
            "p50": None,
            "p95": None,
            "max": None,
            "mean": mean,
            "first": None,
            "source": "wall time only",
        }
    if not prog.latencies:
        return {"p50": None, "p95": None, "max": None, "mean": None, "first": None, "source": "per call"}
    ms = np.asarray(prog.latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
        "first": float(ms[0]),
        "source": "per call",
    }


def _warning_summary(warnings: list[tuple[int, str, str]]) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for date_id, kind, message in warnings:
        counts[kind] = counts.get(kind, 0) + 1
        first.setdefault(kind, f"date_id {date_id}: {message}")
    return counts, [f"{kind} on {counts[kind]} day(s), first {first[kind]}" for kind in counts]


def run_gateway(
    data_dir: Path | str,
    kernel: str | Path,
    report_path: Path | str,
    out_dir: Path | str | None = None,
    startup_limit: float = 900,
    call_limit: float = 300,
    official: bool = False,
    echo: bool = True,
) -> dict[str, Any]:
    """Run `kernel` on `data_dir` through the gateway; write submission.parquet and the JSON report.

    Returns the report (also written to `report_path`); `report["ok"]` is False when the run failed.
    """
    data_dir = Path(data_dir).resolve()
    comp = load_competition(data_dir)
    if comp.test is None:
        raise UserError(f"{data_dir} has no test.csv; the gateway needs one")
    name, script = resolve_kernel(kernel)
    report_path = Path(report_path)
    out_dir = Path(out_dir) if out_dir is not None else report_path.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUBMISSION).unlink(missing_ok=True)
    n_test_days = comp.test["date_id"].n_unique()
    prog = _Progress()
    failure: RunFailure | None = None
    try:
        if official:
            _run_official(data_dir, script, out_dir, startup_limit, call_limit, n_test_days, echo, prog)
        else:
            _run_emulated(data_dir, script, out_dir, startup_limit, call_limit, echo, prog)
    except RunFailure as exc:
        failure = exc
    except GatewayRuntimeError as exc:
        failure = RunFailure(exc.error_type.name, exc.error_details or exc.error_type.name)

    solution = scored_solution(comp)
    score, score_error = None, None
    if failure is None:
        if not official:
            prog.submission.write_parquet(out_dir / SUBMISSION)
        if solution.frame.height == 0:
            score_error = "no is_scored day with a known label"
        else:
            try:
                score = metric.score(solution.frame, prog.submission)
            except (ZeroDivisionError, ValueError, UserError) as exc:
                score_error = f"{type(exc).__name__}: {exc}"
                failure = RunFailure("metric_failed", f"the competition metric failed: {score_error}")
    else:
        score_error = f"run failed: {failure.kind}"

    counts, warning_lines = _warning_summary(prog.warnings)
    report = {
        "ok": failure is None,
        "failure": None if failure is None else {"kind": failure.kind, "message": failure.message},
        "score": score,
        "score_error": score_error,
        "kernel": name,
        "kernel_script": str(script),
        "data_dir": str(data_dir),
        "official": official,
        "out_dir": str(out_dir.resolve()),
        "submission": str((out_dir / SUBMISSION).resolve()) if (out_dir / SUBMISSION).exists() else None,
        "kernel_log": str((out_dir / KERNEL_LOG).resolve()),
        "limits": {"startup_s": startup_limit, "call_s": call_limit},
        "n_days": prog.n_answered,
        "n_test_days": n_test_days,
        "n_is_scored": solution.n_is_scored,
        "n_scored_days": solution.frame.height,
        "n_days_unknown_labels": len(solution.unknown_date_ids),
        "unknown_label_date_ids": solution.unknown_date_ids,
        "label_cells_by_source": solution.cells_by_source,
        "latency_ms": _latency(prog, official),
        "startup_s": prog.startup_s,
        "wall_s": prog.wall_s,
        "kernel_exit_code": prog.exit_code,
        "errors": [] if failure is None else [f"{failure.kind}: {failure.message}"],
        "warning_counts": counts,
        "warnings": warning_lines,
        "kernel_traceback": prog.kernel_traceback,
    }
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def format_summary(report: dict[str, Any]) -> str:
    """A few lines for a person: outcome, score, days, latency, startup."""
    lat = report["latency_ms"]
    lines = [
        f"gateway: kernel {report['kernel']} on {report['data_dir']}"
        f"{' (official kaggle_evaluation)' if report['official'] else ''}"
    ]
    if not report["ok"]:
        lines.append(f"FAILED ({report['failure']['kind']}): {report['failure']['message']}")
    score = "n/a" if report["score"] is None else f"{report['score']:.6f}"
    lines.append(f"score {score}" + (f"  ({report['score_error']})" if report["score"] is None else ""))
    lines.append(
        f"days answered {report['n_days']}/{report['n_test_days']}, scored {report['n_scored_days']}"
        f" of {report['n_is_scored']} is_scored ({report['n_days_unknown_labels']} without labels)"
    )
    if lat["source"] == "per call":
        lines.append(
            f"latency p50 {_ms(lat['p50'])}  p95 {_ms(lat['p95'])}  max {_ms(lat['max'])}  "
            f"first {_ms(lat['first'])}"
        )
    else:
        lines.append(f"latency (wall time only) mean {_ms(lat['mean'])} per day")
    startup = "-" if report["startup_s"] is None else f"{report['startup_s']:.2f} s"
    wall = "-" if report["wall_s"] is None else f"{report['wall_s']:.2f} s"
    lines.append(f"startup {startup}  wall {wall}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    lines.append(f"submission {report['submission'] or '-'}  log {report['kernel_log']}")
    return "\n".join(lines)
