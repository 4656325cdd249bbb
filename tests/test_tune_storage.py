"""`tune --storage postgresql://...`: two workers on one study in a real PostgreSQL server the test starts.

The server is the Debian package (/usr/lib/postgresql/*/bin), initialised into a temporary directory
with a password, listening on a free localhost port, and stopped at the end. Under CI=true a missing
server or driver is a failure, elsewhere a skip.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "kit-s3cret-Pw"  # a throwaway password for the throwaway server; must never be printed
USER = "kit"
TRIALS = 2  # per worker


def _missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the PostgreSQL test (.ci/run installs the postgresql package)")
    pytest.skip(why)


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        _missing("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """postgresql+psycopg2://kit:***@127.0.0.1:PORT/postgres of a fresh server, stopped afterwards."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _missing("psycopg2 is not installed (pip install -e '.[dev]')")
    bindir = _bin_dir()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no postgres user to run the server as")
    base = Path(tempfile.mkdtemp(prefix="kit-pg-"))  # under /tmp: pytest's own tmp is root-only (0700)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    (base / "pw").write_text(PASSWORD + "\n")
    # initdb and postgres refuse to run as root: run them as the package's postgres user then
    as_user: dict = {}
    if os.geteuid() == 0:
        as_user = {"user": "postgres", "group": "postgres"}
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        shutil.chown(base / "pw", "postgres", "postgres")
    run = dict(capture_output=True, text=True, timeout=120, **as_user)
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        init = [str(bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(base / "pw")]
        proc = subprocess.run([*init, "--auth", "scram-sha-256", "--no-sync"], **run)
        assert proc.returncode == 0, proc.stderr
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        proc = subprocess.run([*pg_ctl, "-l", str(base / "log"), "-o", options, "-w", "start"], **run)
        assert proc.returncode == 0, proc.stderr + (base / "log").read_text()
        yield f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], **run)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from offline.data.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("tune_data") / "comp"
    write_synthetic(out, SynthConfig(days=300, test_days=40, seed=4))
    return out


def test_two_workers_share_one_postgres_study(postgres_url: str, tiny_dir: Path, tmp_path: Path) -> None:
    import optuna

    study = "pg_two_workers"
    workers = []
    for k in range(2):
        out = tmp_path / f"worker{k}"
        cmd = [sys.executable, "-m", "offline", "tune", "--data", str(tiny_dir), "--out", str(out)]
        cmd += ["--trials", str(TRIALS), "--storage", postgres_url, "--study", study]
        cmd += ["--targets", "0-3", "--folds", "2", "--min-labels", "50", "--jobs", "1", "--seed", str(k)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workers.append((out, proc))
        time.sleep(0.2 * k)  # both start within the same second: they race to create the study
    outputs = []
    for _, proc in workers:
        stdout, stderr = proc.communicate(timeout=300)
        outputs.append(stdout + stderr)
        assert proc.returncode == 0, stderr
    for text in outputs:
        assert PASSWORD not in text
        assert "***" in text  # the storage is reported, masked
    results = []
    for out, _ in workers:
        text = (out / "best_params.json").read_text()
        assert PASSWORD not in text
        result = json.loads(text)
        assert result["study"] == study and result["storage"].startswith(f"postgresql+psycopg2://{USER}:***@")
        assert result["n_targets"] == 4 and set(result["params"]) >= {"num_leaves", "learning_rate"}
        results.append(result)
    loaded = optuna.load_study(study_name=study, storage=postgres_url)
    assert len(loaded.trials) == 2 * TRIALS  # both workers' trials are in the one study
    # the worker that finished last saw the other's trials: separate studies would each hold TRIALS
    assert max(r["n_trials"] for r in results) == 2 * TRIALS
    finished = [t for t in loaded.trials if t.state.is_finished()]
    assert len(finished) == 2 * TRIALS
    assert loaded.best_value == pytest.approx(max(r["score"] for r in results))
