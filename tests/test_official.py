"""Kaggle's real kaggle_evaluation package, run in .venv-kaggle (Kaggle's image versions).

The packaged kernel and the naive kernel pass it on the whole public window with the same
predictions as the emulated run, and the emulator answers the same probe kernels the same way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kaggle_kernel.manifest import Manifest
from offline.gateway import official
from offline.gateway.runner import PACKAGE_DIR, format_summary, kernel_environment, run_gateway
from offline.release import preflight
from offline.release.package import build
from offline.release.soak import run_soak
from offline.train.engine import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "kaggle_kernel" / "submission.py"
FIRST_DAY = 1827


@pytest.fixture(scope="session")
def kaggle_python() -> str:
    """.venv-kaggle's python (make test builds it); under CI its absence is a failure."""
    path = Path(os.environ.get("MITSUI_KIT_KAGGLE_PYTHON") or ROOT / ".venv-kaggle" / "bin" / "python")
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; make test builds .venv-kaggle")
        pytest.skip(f"{path} not present (make kaggle-venv)")
    return str(path)


def _copy_public(public_dir: Path, dest: Path, days: int | None = None) -> Path:
    """CSV files and kaggle_evaluation/ in a writable directory; optionally the first `days` days."""
    shutil.copytree(public_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "README.md"))
    for f in dest.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    if days is not None:
        for name in ["test.csv", *[f"lagged_test_labels/test_labels_lag_{lag}.csv" for lag in (1, 2, 3, 4)]]:
            header, *rows = (dest / name).read_text().splitlines()
            kept = [r for r in rows if int(r.split(",", 1)[0]) < FIRST_DAY + days]
            (dest / name).write_text("\n".join([header, *kept]) + "\n")
    return dest


@pytest.fixture(scope="module")
def real_public(public_dir, tmp_path_factory) -> Path:
    return _copy_public(public_dir, tmp_path_factory.mktemp("real") / "public")


@pytest.fixture(scope="module")
def real_tiny(public_dir, tmp_path_factory) -> Path:
    return _copy_public(public_dir, tmp_path_factory.mktemp("real") / "tiny", days=6)


@pytest.fixture(scope="module")
def artifacts(synthetic_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("official")
    cfg = TrainConfig(
        n_folds=2, min_labels=100, targets=list(range(24)), ablation=False, baselines=False, target_mode="raw"
    )
    train(synthetic_dir, out / "train", cfg, n_jobs=2)
    build(out / "train", out / "artifacts", data_dir=synthetic_dir)
    return out / "artifacts"


def _both(data: Path, kernel, tmp_path: Path, python: str, **kw) -> tuple[dict, dict]:
    emulated = run_gateway(data, kernel, tmp_path / "emu" / "report.json", echo=False, python=python, **kw)
    real = run_gateway(
        data, kernel, tmp_path / "real" / "report.json", echo=False, python=python, official=True, **kw
    )
    return emulated, real


def _assert_same_predictions(emulated: dict, real: dict) -> None:
    a, b = pl.read_parquet(emulated["submission"]), pl.read_parquet(real["submission"])
    assert a.columns == b.columns and a["date_id"].to_list() == b["date_id"].to_list()
    assert np.nanmax(np.abs(a.drop("date_id").to_numpy() - b.drop("date_id").to_numpy())) <= 1e-12


@pytest.mark.parametrize("kernel", ["packaged", "naive"])
def test_real_package_on_the_public_window_equals_the_emulator(
    kernel, real_public, kaggle_python, request, tmp_path
):
    script, kw = (
        ("naive", {})
        if kernel == "naive"
        else (PACKAGED, {"artifacts": request.getfixturevalue("artifacts")})
    )
    emulated, real = _both(real_public, script, tmp_path, kaggle_python, **kw)
    for report in (emulated, real):
        assert report["ok"], report["errors"]
        assert report["n_days"] == 134 and report["errors"] == [] and report["n_scored_days"] == 90
        assert report["environment"]["polars"] == "1.35.2" and report["environment"]["grpcio"] == "1.80.0"
    assert real["official"] and not emulated["official"]
    assert real["latency_ms"]["p50"] > 0 and real["score"] == pytest.approx(emulated["score"], abs=1e-12)
    assert 0 < real["startup_s"] < real["wall_s"]
    _assert_same_predictions(emulated, real)


# ---------------------------------------------------------------- probes: the emulator answers as Kaggle does

PROBE_TEMPLATE = """
import os, sys, time
import numpy as np
import pandas as pd
import polars as pl
import kaggle_evaluation.mitsui_inference_server

CALLS = 0

def row(lags):
    cols = sorted((c for b in lags for c in b.columns if c.startswith("target_")), key=lambda n: int(n[7:]))
    return pl.DataFrame({c: [float(np.sin(i + CALLS))] for i, c in enumerate(cols)})

def predict(test, l1, l2, l3, l4):
    global CALLS
    CALLS += 1
    lags = (l1, l2, l3, l4)
{body}

inference_server = kaggle_evaluation.mitsui_inference_server.MitsuiInferenceServer({endpoint})
if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
    inference_server.serve()
else:
    inference_server.run_local_gateway(({data_path},))
"""

PROBES = {
    # 1: the first predict has no deadline of its own (the emulator's startup limit is 3 s here)
    "slow_first_call": ("if CALLS == 1:\n    time.sleep(5)\nreturn row(lags)", {}),
    # 10: the detail of SERVER_RAISED_EXCEPTION is the exception's message only
    "raises": ("if CALLS == 3:\n    raise ValueError('exploded on purpose')\nreturn row(lags)", {}),
    # 4: an int column on one day is upcast in the merged submission; the kit warns per day
    "int_column": (
        "r = row(lags)\nreturn r.with_columns(pl.lit(1).alias('target_0')) if CALLS == 2 else r",
        {},
    ),
    # 5: pandas on some days, polars on others
    "mixed_types": ("r = row(lags)\nreturn r.to_pandas() if CALLS % 2 else r", {}),
    # 6: a pl.Enum column cannot cross Kaggle's relay
    "enum_column": (
        "r = row(lags)\nreturn r.with_columns(pl.lit('a').cast(pl.Enum(['a'])).alias('target_0'))",
        {},
    ),
    # 7: a numpy float32 scalar is not one of Kaggle's one-row primitives
    "float32_scalar": ("return np.float32(1.5)", {}),
    # 8: the data path is data_paths[0], nothing else
    "bad_data_path": ("return row(lags)", {"data_path": "'/nonexistent/mitsui'"}),
    # 9: endpoints must be named functions
    "lambda_endpoint": ("return row(lags)", {"endpoint": "lambda *a: predict(*a)"}),
    # 3: a kernel that dies mid-run
    "dies": ("if CALLS == 3:\n    os._exit(3)\nreturn row(lags)", {}),
}


def _probe(tmp_path: Path, name: str) -> Path:
    body, fill = PROBES[name]
    text = PROBE_TEMPLATE.replace("{body}", textwrap.indent(body, "    "))
    text = text.replace("{endpoint}", fill.get("endpoint", "predict"))
    text = text.replace("{data_path}", fill.get("data_path", 'os.environ["KAGGLE_KIT_DATA_DIR"]'))
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(set(PROBES) - {"bad_data_path"}))
def test_emulator_matches_the_real_package_on_probe(name, real_tiny, kaggle_python, tmp_path):
    emulated, real = _both(real_tiny, _probe(tmp_path, name), tmp_path, kaggle_python, startup_limit=3)
    kinds = [(r["failure"] or {}).get("kind") for r in (emulated, real)]
    if name == "dies":
        assert emulated["failure"]["date_id"] == real["failure"]["date_id"] == FIRST_DAY + 2
    assert kinds[0] == kinds[1], (emulated["failure"], real["failure"])
    assert emulated["n_days"] == real["n_days"] and emulated["ok"] == real["ok"]
    assert emulated["warning_counts"] == real["warning_counts"]
    if name == "raises":
        assert emulated["failure"]["message"] == real["failure"]["message"]
        assert real["failure"]["message"] == f"date_id {FIRST_DAY + 2}: exploded on purpose"
    if emulated["ok"]:
        _assert_same_predictions(emulated, real)


def test_data_path_is_data_paths_0_in_both(real_tiny, kaggle_python, tmp_path):
    """run_local_gateway in the kernel's process: the kit's package and Kaggle's fail alike."""
    script = _probe(tmp_path, "bad_data_path")
    real = run_gateway(
        real_tiny, script, tmp_path / "r" / "report.json", echo=False, python=kaggle_python, official=True
    )
    assert (
        real["failure"]["kind"] == "GATEWAY_RAISED_EXCEPTION"
        and "/nonexistent/mitsui" in real["failure"]["message"]
    )
    env = {k: v for k, v in os.environ.items() if k != "KAGGLE_IS_COMPETITION_RERUN"}
    env["PYTHONPATH"] = str(PACKAGE_DIR.parent)  # the kit's kaggle_evaluation, run_local_gateway in-process
    env["KAGGLE_KIT_DATA_DIR"] = str(real_tiny)  # ignored, as by Kaggle's gateway
    done = subprocess.run(
        [kaggle_python, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert (
        done.returncode != 0
        and "GATEWAY_RAISED_EXCEPTION" in done.stderr
        and "/nonexistent/mitsui" in done.stderr
    )


def test_busy_ports_are_servers_not_clients():
    """A program listening on one of Kaggle's ports is busy; a client connection that only uses one
    as its local port (the machine's ephemeral range includes them) is not."""
    import socket

    port = official.KAGGLE_PORTS[-1]
    with socket.socket() as srv, socket.socket() as cli:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        cli.bind(("127.0.0.1", port))
        cli.connect(srv.getsockname())
        assert port not in official.busy_ports()
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen()
        assert port in official.busy_ports()


def test_two_official_runs_at_once_do_not_collide(real_tiny, kaggle_python, tmp_path):
    reports: dict[int, dict] = {}

    def run(i: int) -> None:
        out = tmp_path / f"run{i}" / "report.json"
        reports[i] = run_gateway(real_tiny, "naive", out, echo=False, python=kaggle_python, official=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(reports[i]["ok"] and reports[i]["n_days"] == 6 for i in (0, 1)), reports
    assert official.busy_ports() == []


# ---------------------------------------------------------------- honesty: preflight, in-sample, soak


def test_in_sample_scores_are_flagged_with_the_oof_score(artifacts, synthetic_dir, kaggle_python, tmp_path):
    report = run_gateway(
        synthetic_dir, PACKAGED, tmp_path / "r.json", echo=False, python=kaggle_python, artifacts=artifacts
    )
    assert report["ok"], report["errors"]
    flag = report["in_sample"]
    assert flag["overlap_days"] == report["n_test_days"] and flag["oof_score"] is not None
    assert "IN-SAMPLE" in format_summary(report) and f"{flag['oof_score']:.6f}" in format_summary(report)


def test_preflight_refuses_synthetic_artifacts_and_names_the_directory(artifacts, kaggle_python):
    manifest = Manifest.read(artifacts)
    origin = preflight.check_origin(manifest)
    assert (
        origin.status == "FAIL"
        and manifest.training.data["dir"] in origin.detail
        and "synthetic" in origin.detail
    )
    real = dataclasses.replace(
        manifest, training=dataclasses.replace(manifest.training, origin="competition")
    )
    assert preflight.check_origin(real).status == "PASS"
    assert preflight.check_in_sample(manifest).status == "PASS"  # 600 synthetic days end before 1827
    overlapping = dataclasses.replace(
        manifest,
        training=dataclasses.replace(
            manifest.training, data={**manifest.training.data, "last_date_id": 1900}
        ),
    )
    warn = preflight.check_in_sample(overlapping)
    assert warn.status == "WARN" and "74 of the public window's days" in warn.detail and "OOF" in warn.detail
    env = kernel_environment(kaggle_python)
    assert preflight.check_imports(artifacts, env).status == "PASS"
    assert preflight.check_imports(artifacts, {**env, "polars": "2.1.0"}).status == "FAIL"
    assert preflight.check_hashes(artifacts).status == "PASS"
    assert preflight.check_metadata(artifacts, ROOT / "kernel-metadata.json").status == "PASS"


def test_preflight_flags_a_kernel_importing_pandas(artifacts, tmp_path):
    copy = tmp_path / "art"
    shutil.copytree(artifacts, copy)
    (copy / "kaggle_kernel" / "extra.py").write_text("import pandas as pd\n")
    check = preflight.check_imports(copy, {"polars": "1.35.2", "numpy": "2.4.6"})
    assert check.status == "FAIL" and "pandas" in check.detail
    assert preflight.check_hashes(copy).status == "PASS"  # not listed; the import check catches it


def test_soak_holds_memory_state_and_rows(artifacts, kaggle_python):
    result = run_soak(artifacts, days=250, python=kaggle_python)
    assert result.days == 250  # one day skipped, one sent twice
    assert result.errors == 0 and result.bad_rows == 0, result.error_parts
    # latency is a benchmark (make soak), not a unit test; what it scales with is asserted here
    assert result.held_growth_days <= 0
    assert result.rss_growth_mb <= 20
    assert result.dark_days[1] - result.dark_days[0] == 62 and len(result.dark_columns) == 3
    grown = dataclasses.replace(result, held_growth_days=1)
    assert json.loads(grown.to_json())["ok"] is False and any("histories grew" in f for f in grown.failures)
