"""Run a kernel the way Kaggle does, score its submission and write a report (`run_gateway`).

The kernel script runs in its own process with `python` (make gateway: .venv-kaggle, Kaggle's
image versions); the report records the versions it ran with (`environment`).

Emulated run (default): KAGGLE_IS_COMPETITION_RERUN=1, the kit's `kaggle_evaluation` on the
kernel's PYTHONPATH, the data dir in $KAGGLE_KIT_DATA_DIR, working directory = `out_dir`. Its
`serve()` listens on a free 127.0.0.1 port and reports the port through a file; this process
is the gateway: it sends each batch (Arrow IPC), times each call, validates the answer (Kaggle's
rules fail the run, the kit's checks warn), shuts the server down and writes the submission.

Limits, as Kaggle applies them: the server must be up within `startup_limit` seconds of the
script's start (else SERVER_NEVER_STARTED); the first predict has no deadline of its own (load
models there if need be); every later call has `call_limit` seconds (else
GRPC_DEADLINE_EXCEEDED). A kernel that dies mid-run is SERVER_CONNECTION_FAILED. The kit adds
one guard Kaggle's 9-hour notebook limit plays: the whole run may take at most startup_limit +
call_limit x days (`wall_limit`).

Official run (`official=True`): DIR/kaggle_evaluation (a real Kaggle download) goes on the
kernel's PYTHONPATH, KAGGLE_IS_COMPETITION_RERUN is unset, the script runs Kaggle's own
run_local_gateway((DIR,)) under `launcher.py` (which records each call) and Kaggle's error type
is read from the kernel's output (see `official.py`).

Scoring: is_scored days of test.csv against labels from train_labels.csv, else the lag files,
else the prices (see `solution.py`); days without any known label are left out and counted.
A metric failure (a constant day, zero std) fails the run, as it would fail the submission.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
from offline.gateway import official as off
from offline.gateway.kaggle_evaluation.core.errors import GatewayRuntimeError
from offline.gateway.kaggle_evaluation.core.relay import CallTimeout, Client, ConnectionClosed, RemoteError
from offline.gateway.kaggle_evaluation.core.templates import PORT_ENV, PORT_FILE_ENV
from offline.gateway.kaggle_evaluation.mitsui_gateway import (
    DATA_DIR_ENV,
    MitsuiGateway,
    assemble_submission,
    generate_data_batches,
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
    """The run failed; `kind` is Kaggle's error name (SERVER_NEVER_STARTED, ...) or a kit guard's."""

    def __init__(self, kind: str, message: str, date_id: int | None = None):
        self.kind, self.message, self.date_id = kind, message, date_id
        super().__init__(message)


@dataclass(frozen=True)
class Limits:
    """Kaggle's start-up and per-call limits, and the kit's guard on the whole run (wall_s)."""

    startup_s: float
    call_s: float
    n_days: int

    @property
    def wall_s(self) -> float:
        return self.startup_s + self.call_s * self.n_days


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
    date_ids: list[int] = field(default_factory=list)


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
                "SERVER_NEVER_STARTED",
                f"the kernel exited with code {code} before its inference server answered; "
                f"last stderr lines:\n{kp.stderr_tail()}",
            )
        if time.monotonic() >= deadline:
            raise RunFailure(
                "SERVER_NEVER_STARTED",
                f"the inference server did not answer within {limit:g} s of the script's start "
                f"(--startup-limit {limit:g}; Kaggle allows 900 s)",
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
    how = f"exited with code {code}" if code is not None else "closed the connection"
    return RunFailure(
        "SERVER_CONNECTION_FAILED",
        f"the kernel process {how} while answering date_id {date_id}; last stderr lines:\n{kp.stderr_tail()}",
        date_id,
    )


def _run_emulated(
    data_dir: Path,
    script: Path,
    out_dir: Path,
    limits: Limits,
    python: str,
    echo: bool,
    prog: _Progress,
) -> None:
    startup_limit, call_limit, wall_limit = limits.startup_s, limits.call_s, limits.wall_s
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
        kp = KernelProcess(script, out_dir, env, out_dir / KERNEL_LOG, echo, python=python)
        client = None
        try:
            client = _wait_for_server(kp, port_file, t0 + startup_limit, startup_limit)
            prog.startup_s = time.monotonic() - t0
            gateway = MitsuiGateway((str(data_dir),))
            prog.warnings = gateway.warnings
            for i, (batch, date_id) in enumerate(generate_data_batches(data_dir)):
                # Kaggle: no deadline on the first call; the kit's wall guard bounds it
                timeout = t0 + wall_limit - time.monotonic() if i == 0 else call_limit
                start = time.perf_counter()
                try:
                    prediction = client.send("predict", *batch, timeout=max(timeout, 0.001))
                except CallTimeout:
                    if i == 0:
                        raise RunFailure(
                            "wall_limit",
                            f"the first predict (date_id {date_id}) was still running after the run's wall "
                            f"limit of {wall_limit:g} s",
                            date_id,
                        ) from None
                    raise RunFailure(
                        "GRPC_DEADLINE_EXCEEDED",
                        f"predict for date_id {date_id} took longer than {call_limit:g} s "
                        f"(--call-limit {call_limit:g}; Kaggle allows 300 s per call after the first)",
                        date_id,
                    ) from None
                except ConnectionClosed:
                    raise _died(kp, date_id) from None
                except RemoteError as exc:
                    prog.kernel_traceback = exc.traceback
                    raise _with_date(remote_failure(exc), date_id) from None
                prog.latencies.append(time.perf_counter() - start)
                prog.n_answered += 1  # answered, as Kaggle's client sees it; validated next
                prog.date_ids.append(date_id)
                try:
                    gateway.handle(prediction, batch, date_id)
                except GatewayRuntimeError as exc:
                    raise _with_date(exc, date_id) from None
            try:
                prog.submission = assemble_submission(gateway.rows, gateway.date_ids)
            except GatewayRuntimeError as exc:
                raise _with_date(exc, None) from None
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


def _with_date(exc: GatewayRuntimeError, date_id: int | None) -> RunFailure:
    """Kaggle's error as a RunFailure of the same name, the date_id in its message."""
    detail = exc.error_details or exc.error_type.name
    where = f"date_id {date_id}: " if date_id is not None else ""
    return RunFailure(exc.error_type.name, f"{where}{detail}", date_id)


def _run_official(
    data_dir: Path,
    script: Path,
    out_dir: Path,
    limits: Limits,
    python: str,
    echo: bool,
    prog: _Progress,
) -> None:
    if not (data_dir / "kaggle_evaluation").is_dir():
        raise UserError(f"--official needs Kaggle's kaggle_evaluation/ package in {data_dir}; it is absent")
    wall_limit, n_days = limits.wall_s, limits.n_days
    env = {k: v for k, v in os.environ.items() if k != "KAGGLE_IS_COMPETITION_RERUN"}
    env.update({DATA_DIR_ENV: str(data_dir), "PYTHONPATH": _pythonpath(data_dir), "PYTHONUNBUFFERED": "1"})
    calls_path = out_dir / "calls.jsonl"
    calls_path.unlink(missing_ok=True)
    with off.exclusive_ports(echo):
        t0 = time.monotonic()
        kp = KernelProcess(
            script,
            out_dir,
            env,
            out_dir / KERNEL_LOG,
            echo,
            python=python,
            launcher=(off.LAUNCHER, calls_path),
        )
        timed_out = False
        try:
            try:
                kp.proc.wait(wall_limit)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            kp.kill()
            prog.wall_s = time.monotonic() - t0
            prog.exit_code = kp.poll()
    calls = off.CallLog.read(calls_path)
    prog.latencies, prog.warnings = calls.seconds, calls.warnings
    prog.n_answered, prog.date_ids = len(calls.answered), calls.answered
    prog.startup_s = calls.first_call_s
    if timed_out:
        raise RunFailure(
            "wall_limit",
            f"the official local gateway ran longer than startup limit + call limit x days = {wall_limit:g} s"
            + (f"; date_id {calls.pending} was not answered" if calls.pending is not None else ""),
            calls.pending,
        )
    if prog.exit_code != 0:
        text = (out_dir / KERNEL_LOG).read_text(errors="replace") if (out_dir / KERNEL_LOG).exists() else ""
        found = off.kaggle_error(text)
        at = calls.pending
        if at is None and calls.answered and len(calls.answered) < n_days:
            at = calls.answered[-1]  # the answer Kaggle's validation refused stopped the loop
        where = f"date_id {at}: " if at is not None else ""
        if found is not None:
            kind, detail = found
            raise RunFailure(kind, f"{where}{detail or kind}", at)
        # no Kaggle error: the process died; on Kaggle the gateway would see the server vanish
        kind, when = (
            ("SERVER_CONNECTION_FAILED", "while answering")
            if at is not None
            else ("SERVER_NEVER_STARTED", "before Kaggle's gateway sent a batch")
        )
        raise RunFailure(
            kind,
            f"{where}the kernel exited with code {prog.exit_code} {when}; last stderr lines:\n{kp.stderr_tail()}",
            at,
        )
    if not (out_dir / SUBMISSION).exists():
        raise RunFailure("no_submission", f"the official gateway wrote no {SUBMISSION} in {out_dir}")
    sub = pl.read_parquet(out_dir / SUBMISSION)
    if not sub.columns or sub.columns[0] != "date_id":
        raise RunFailure(
            "invalid_submission",
            f"{SUBMISSION} does not start with a date_id column (it starts with {', '.join(sub.columns[:3])})",
        )
    prog.submission = sub


def kernel_environment(python: str) -> dict[str, str | None]:
    """The versions the kernel process runs with: python, polars, numpy, pyarrow, pandas."""
    code = (
        "import json, platform\n"
        "from importlib import metadata\n"
        "out = {'python': platform.python_version()}\n"
        "for lib in ('polars', 'numpy', 'pyarrow', 'pandas', 'grpcio', 'protobuf'):\n"
        "    try: out[lib] = metadata.version(lib)\n"
        "    except metadata.PackageNotFoundError: out[lib] = None\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        env = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise UserError(f"cannot run the kernel's python {python}: {exc}") from None
    env["executable"] = python
    return env


def _latency(prog: _Progress, official: bool) -> dict[str, Any]:
    source = "Kaggle's client, per call" if official else "per call"
    if not prog.latencies:
        return {"p50": None, "p95": None, "max": None, "mean": None, "first": None, "source": source}
    ms = np.asarray(prog.latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
        "first": float(ms[0]),
        "source": source,
    }


def _warning_summary(warnings: list[tuple[int, str, str]]) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for date_id, kind, message in warnings:
        counts[kind] = counts.get(kind, 0) + 1
        first.setdefault(kind, f"date_id {date_id}: {message}")
    return counts, [f"{kind} on {counts[kind]} day(s), first {first[kind]}" for kind in counts]


def in_sample(artifacts: Path | None, test_days: list[int]) -> dict[str, Any] | None:
    """When the artifacts' training days overlap the test days: how many, and the honest OOF score."""
    from kaggle_kernel.artifacts import check_artifacts

    if artifacts is None:
        return None
    manifest, _ = check_artifacts(artifacts)
    if manifest is None:
        return None
    first, last = manifest.training.first_date_id, manifest.training.last_date_id
    if first is None or last is None:
        return None
    overlap = [d for d in test_days if first <= d <= last]
    if not overlap:
        return None
    return {
        "overlap_days": len(overlap),
        "training_days": [first, last],
        "oof_score": manifest.training.oof_score,
        "note": f"the models were trained on date_id {first}..{last}, which covers {len(overlap)} of the "
        f"{len(test_days)} test days: this score is in-sample; the honest figure is the training run's "
        f"out-of-fold score",
    }


def run_gateway(
    data_dir: Path | str,
    kernel: str | Path,
    report_path: Path | str,
    out_dir: Path | str | None = None,
    startup_limit: float = 900,
    call_limit: float = 300,
    official: bool = False,
    echo: bool = True,
    python: str | None = None,
    artifacts: Path | str | None = None,
) -> dict[str, Any]:
    """Run `kernel` with `python` on `data_dir`; write submission.parquet beside the JSON report.

    `artifacts` is the dataset the packaged kernel loads (MITSUI_KIT_ARTIFACTS). Returns the
    report (also written to `report_path`); `report["ok"]` is False when the run failed.
    """
    data_dir = Path(data_dir).resolve()
    comp = load_competition(data_dir)
    if comp.test is None:
        raise UserError(f"{data_dir} has no test.csv; the gateway needs one")
    name, script = resolve_kernel(kernel)
    python = os.path.abspath(python) if python else sys.executable  # not resolve(): keep the venv
    environment = kernel_environment(python)
    report_path = Path(report_path)
    out_dir = Path(out_dir) if out_dir is not None else report_path.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUBMISSION).unlink(missing_ok=True)
    test_days = comp.test["date_id"].unique(maintain_order=True).to_list()
    n_test_days = len(test_days)
    limits = Limits(startup_limit, call_limit, n_test_days)
    if artifacts is not None:
        artifacts = Path(artifacts).resolve()
        os.environ["MITSUI_KIT_ARTIFACTS"] = str(artifacts)
    prog = _Progress()
    failure: RunFailure | None = None
    try:
        run = _run_official if official else _run_emulated
        run(data_dir, script, out_dir, limits, python, echo, prog)
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
            except (ZeroDivisionError, ValueError, UserError, pl.exceptions.PolarsError) as exc:
                score_error = f"{type(exc).__name__}: {exc}"
                failure = RunFailure("metric_failed", f"the competition metric failed: {score_error}")
    else:
        score_error = f"run failed: {failure.kind}"

    counts, warning_lines = _warning_summary(prog.warnings)
    report = {
        "ok": failure is None,
        "failure": None
        if failure is None
        else {"kind": failure.kind, "message": failure.message, "date_id": failure.date_id},
        "score": score,
        "score_error": score_error,
        "in_sample": in_sample(artifacts, test_days) if name not in BUILTIN_KERNELS else None,
        "kernel": name,
        "kernel_script": str(script),
        "data_dir": str(data_dir),
        "official": official,
        "environment": environment,
        "artifacts": None if artifacts is None else str(artifacts),
        "out_dir": str(out_dir.resolve()),
        "submission": str((out_dir / SUBMISSION).resolve()) if (out_dir / SUBMISSION).exists() else None,
        "kernel_log": str((out_dir / KERNEL_LOG).resolve()),
        "limits": {"startup_s": limits.startup_s, "call_s": limits.call_s, "wall_s": limits.wall_s},
        "n_days": prog.n_answered,
        "n_test_days": n_test_days,
        "n_is_scored": solution.n_is_scored,
        "n_scored_days": solution.frame.height if failure is None else 0,
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
    """A few plain lines for a person: outcome, score (and whether it is in-sample), days, latency."""
    lat, env = report["latency_ms"], report["environment"]
    lines = [
        f"gateway: kernel {report['kernel']} on {report['data_dir']} "
        f"({'Kaggle' if report['official'] else 'emulated'} kaggle_evaluation; python {env['python']}, "
        f"polars {env['polars']}, numpy {env['numpy']}, pyarrow {env['pyarrow']})"
    ]
    if report["ok"]:
        lines.append(f"score {report['score']:.6f}")
        if report["in_sample"]:
            oof = report["in_sample"]["oof_score"]
            lines.append(
                f"IN-SAMPLE: {report['in_sample']['note']} ({'n/a' if oof is None else f'{oof:.6f}'})"
            )
        lines.append(
            f"days answered {report['n_days']}/{report['n_test_days']}, scored {report['n_scored_days']}"
            f" of {report['n_is_scored']} is_scored ({report['n_days_unknown_labels']} without labels)"
        )
    else:
        failure = report["failure"]
        lines.append(f"FAILED ({failure['kind']}): {failure['message']}")
        at = (
            f" before the failure at date_id {failure['date_id']}"
            if failure.get("date_id") is not None
            else ""
        )
        lines.append(
            f"not scored: {report['n_days']} of {report['n_test_days']} days answered{at} "
            f"({report['score_error']})"
        )
    if lat["p50"] is not None:
        lines.append(
            f"latency ({lat['source']}) p50 {_ms(lat['p50'])}  p95 {_ms(lat['p95'])}  max {_ms(lat['max'])}  "
            f"first {_ms(lat['first'])}"
        )
    startup = "-" if report["startup_s"] is None else f"{report['startup_s']:.2f} s"
    wall = "-" if report["wall_s"] is None else f"{report['wall_s']:.2f} s"
    lines.append(f"startup {startup}  wall {wall}")
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    lines.append(f"submission {report['submission'] or '-'}  log {report['kernel_log']}")
    return "\n".join(lines)
