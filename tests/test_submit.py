"""`python -m offline submit` end to end: the real kaggle CLI against the fake Kaggle API (tests/fake_kaggle.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fake_kaggle import FakeKaggle

from kaggle_kernel.manifest import FileEntry, Manifest, Training

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = Path(sys.executable).parent / "kaggle"
COMPETITION = "mitsui-commodity-prediction-challenge"
USER, KEY = "alice", "FAKEKEY-9f1c2e7d5b3a"
DATASET = f"{USER}/mitsui-kit-artifacts"
KERNEL = f"{USER}/mitsui-kit-submission"
STUB_KERNEL = "import os\nprint('stub kernel', os.environ.get('KAGGLE_IS_COMPETITION_RERUN'))\n"


@pytest.fixture(scope="module")
def kaggle_cli_works(tmp_path_factory) -> None:
    """The real CLI must start; a broken install is a failure of `make submit`, not a skip."""
    home = tmp_path_factory.mktemp("cli-home")
    proc = subprocess.run(
        [str(KAGGLE), "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home), "KAGGLE_CONFIG_DIR": str(home)},
    )
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        hint = (
            " (kaggle 2.x imports `six` without declaring it: the project must install six)"
            if "six" in str(last)
            else ""
        )
        pytest.fail(f"{KAGGLE} does not start: {last}{hint}")


@pytest.fixture
def fake(kaggle_cli_works):
    with FakeKaggle(username=USER, key=KEY, pending_polls=1, running_polls=1) as server:
        yield server


def write_artifacts(root: Path, forest: bytes = b"forest-v1", dataset_id: str = DATASET) -> Path:
    """A miniature artifacts/ as make package lays it out: files, sub-directories, manifest, metadata."""
    files = {
        "forest.npz": forest + bytes(range(256)),
        "models/regime.txt": b"tree\nversion=v4\n",
        "models/target_0.txt": b"tree\nversion=v4\nnum_leaves=3\n",
        "kaggle_kernel/__init__.py": b'__version__ = "0.1.0"\n',
        "dataset-metadata.json": json.dumps(
            {
                "title": "mitsui-kit-artifacts",
                "id": dataset_id,
                "licenses": [{"name": "CC0-1.0"}],
                "isPrivate": True,
            }
        ).encode(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / ".gitkeep").write_bytes(b"")
    listed = {n: FileEntry(sha256=hashlib.sha256(d).hexdigest(), bytes=len(d)) for n, d in files.items()}
    Manifest(
        kit_version="0.1.0",
        git_revision="abc123",
        libraries={},
        feature_names=[],
        stage1=["regime"],
        models={},
        targets={},
        fallbacks={},
        target_mode="raw",
        training=Training(origin="competition", data={}, cv={}),
        snapshot={},
        etf_crash=None,
        dataset_id=dataset_id,
        files=listed,
    ).write(root)
    return root


@pytest.fixture
def project(tmp_path) -> dict[str, Path]:
    """artifacts/, the real kernel-metadata.json and a stub code_file, in a temporary project dir."""
    art = write_artifacts(tmp_path / "artifacts")
    (tmp_path / "kernel-metadata.json").write_text((ROOT / "kernel-metadata.json").read_text())
    code = tmp_path / json.loads((ROOT / "kernel-metadata.json").read_text())["code_file"]
    code.parent.mkdir(parents=True)
    code.write_text(STUB_KERNEL)
    home = tmp_path / "home"
    home.mkdir()
    return {"artifacts": art, "meta": tmp_path / "kernel-metadata.json", "home": home, "code": code}


def run_submit(
    fake: FakeKaggle, project: dict, *extra: str, key: str = KEY, **env_extra: str
) -> subprocess.CompletedProcess:
    """`python -m offline submit` as a user runs it; asserts the key appears nowhere in its output."""
    env = {**fake.cli_env(dict(os.environ), str(project["home"]), key=key), **env_extra}
    cmd = [
        sys.executable,
        "-m",
        "offline",
        "submit",
        "--artifacts",
        str(project["artifacts"]),
        "--kernel-metadata",
        str(project["meta"]),
        "--poll-seconds",
        "0.05",
        "--timeout",
        "60",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    shown = proc.stdout + proc.stderr
    for secret in (key, base64.b64encode(f"{USER}:{key}".encode()).decode()):
        assert secret not in shown, f"credential leaked in output:\n{shown}"
    return proc


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}


def uploaded_matches(files: dict[str, bytes], art: Path) -> None:
    """Top-level files byte for byte; each sub-directory as NAME.zip holding exactly its files."""
    expected_names = {
        p.name + (".zip" if p.is_dir() else "")
        for p in art.iterdir()
        if p.name not in ("dataset-metadata.json", ".gitkeep")
    }
    assert set(files) == expected_names
    for p in art.iterdir():
        if p.is_file() and p.name in files:
            assert files[p.name] == p.read_bytes(), p.name
        elif p.is_dir():
            inside = {f.relative_to(p).as_posix(): f.read_bytes() for f in p.rglob("*") if f.is_file()}
            assert unzip(files[p.name + ".zip"]) == inside, p.name


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return last


def test_first_submit_creates_dataset_pushes_kernel_and_submits(fake, project):
    proc = run_submit(fake, project, "--message", "first try")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    ds = fake.datasets[DATASET]
    assert ds.is_private and ds.license_name == "CC0-1.0" and ds.title == "mitsui-kit-artifacts"
    assert len(ds.versions) == 1 and not fake.calls("CreateDatasetVersion")
    (create,) = fake.calls("CreateDataset")
    assert create.body["isPrivate"] is True and create.body["ownerSlug"] == USER
    uploaded_matches(ds.versions[0], project["artifacts"])

    (push,) = fake.calls("SaveKernel")
    body = push.body
    assert body["slug"] == KERNEL and body["competitionDataSources"] == [COMPETITION]
    assert body["datasetDataSources"] == [DATASET]
    assert body["isPrivate"] is True and body["enableInternet"] is False and body["enableGpu"] is False
    assert body["language"] == "python" and body["kernelType"] == "script"
    assert body["text"] == project["code"].read_text()

    (sub,) = fake.calls("CreateCodeSubmission")
    assert sub.body["competitionName"] == COMPETITION
    assert (sub.body["kernelOwner"], sub.body["kernelSlug"], sub.body["kernelVersion"]) == (
        USER,
        "mitsui-kit-submission",
        1,
    )
    assert sub.body["submissionDescription"] == "first try"

    # Order: dataset ready before the push, kernel run complete before the submission.
    names = fake.rpc_names()
    assert names.index("CreateDataset") < names.index("SaveKernel") < names.index("CreateCodeSubmission")
    statuses = [i for i, n in enumerate(names) if n == "GetDatasetStatus"]
    assert sum(i > names.index("CreateDataset") for i in statuses) >= 2  # pending, then ready
    kernel_polls = [i for i, n in enumerate(names) if n == "GetKernelSessionStatus"]
    assert len(kernel_polls) == 3 and kernel_polls[-1] < names.index("CreateCodeSubmission")
    assert all(r.authorized for r in fake.requests if r.rpc != "upload")
    for command in (
        "kaggle datasets create -p",
        "--dir-mode zip",
        "kaggle kernels push -p",
        f"kaggle competitions submit {COMPETITION} -k {KERNEL} -v 1",
    ):
        assert command in proc.stdout


def test_second_submit_versions_the_dataset(fake, project):
    assert run_submit(fake, project, "-m", "one").returncode == 0
    write_artifacts(project["artifacts"], forest=b"forest-v2")
    proc = run_submit(fake, project, "-m", "two")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(fake.calls("CreateDataset")) == 1
    (version,) = fake.calls("CreateDatasetVersion")
    assert version.body["ownerSlug"] == USER and version.body["body"]["versionNotes"] == "two"
    ds = fake.datasets[DATASET]
    assert len(ds.versions) == 2 and ds.versions[1]["forest.npz"].startswith(b"forest-v2")
    uploaded_matches(ds.versions[1], project["artifacts"])
    assert [s["kernelVersion"] for s in fake.submissions] == [1, 2]
    assert "kaggle datasets version -p" in proc.stdout


def test_dry_run_prints_commands_and_sends_nothing(fake, project):
    proc = run_submit(fake, project, "--dry-run", "-m", "dry")
    assert proc.returncode == 0, proc.stderr
    assert fake.requests == []
    for command in (
        f"kaggle datasets status {DATASET}",
        "kaggle datasets create -p",
        "kaggle datasets version -p",
        "kaggle kernels push -p",
        f"kaggle kernels status {KERNEL}",
        f"kaggle competitions submit {COMPETITION} -k {KERNEL}",
    ):
        assert command in proc.stdout
    assert "--public" not in proc.stdout and '"enable_internet": false' in proc.stdout


def test_public_flag_is_explicit(fake, project):
    assert run_submit(fake, project, "--public").returncode == 0
    assert fake.calls("CreateDataset")[0].body.get("isPrivate", False) is False
    assert fake.calls("SaveKernel")[0].body["isPrivate"] is False


def test_wrong_key_is_401_with_a_hint_and_never_shown(fake, project):
    proc = run_submit(fake, project, key="WRONGKEY-4d8e0a1b")
    line = one_line_error(proc)
    assert "HTTP 401" in line and "KAGGLE_KEY" in line
    assert fake.rpc_names() == ["GetDatasetStatus"]


def test_404_names_the_step_and_scrubs_echoed_credentials(fake, project):
    fake.errors["SaveKernel"] = 404
    fake.echo_credentials = True  # the server's error text carries user:key; the client must hide it
    line = one_line_error(run_submit(fake, project, VERBOSE="1"))  # verbose CLI output shows auth headers
    assert "pushing the kernel" in line and "HTTP 404" in line
    assert not fake.calls("CreateCodeSubmission")


def test_429_says_try_later(fake, project):
    fake.errors["GetDatasetStatus"] = 429
    line = one_line_error(run_submit(fake, project))
    assert "HTTP 429" in line and "try again later" in line
    assert not fake.calls("StartBlobUpload")


def test_failed_upload_stops_before_the_kernel(fake, project):
    fake.fail_uploads = True
    line = one_line_error(run_submit(fake, project))
    assert "upload of" in line and "failed" in line and "forest.npz" in line
    assert not fake.calls("SaveKernel")


def test_failed_kernel_run_reports_its_message(fake, project):
    fake.kernel_failure = "ModuleNotFoundError: No module named 'lightgbm'"
    line = one_line_error(run_submit(fake, project))
    assert "version 1 failed on Kaggle" in line and "lightgbm" in line
    assert not fake.calls("CreateCodeSubmission")


def test_missing_or_stale_artifacts_are_refused_before_any_request(fake, project):
    (project["artifacts"] / "models" / "regime.txt").write_bytes(b"changed")
    line = one_line_error(run_submit(fake, project))
    assert "regime.txt" in line and "make package" in line
    (project["artifacts"] / "dataset-metadata.json").unlink()
    line = one_line_error(run_submit(fake, project))
    assert "run make package first" in line
    assert fake.requests == []


def test_kernel_metadata_at_the_root_is_private_offline_and_for_the_competition():
    meta = json.loads((ROOT / "kernel-metadata.json").read_text())
    assert meta["competition_sources"] == [COMPETITION]
    assert meta["is_private"] is True and meta["enable_internet"] is False and meta["enable_gpu"] is False
    assert meta["code_file"] == "kaggle_kernel/submission.py" and (ROOT / meta["code_file"]).is_file()
    assert meta["language"] == "python" and meta["kernel_type"] == "script"
    assert meta["id"].endswith("/mitsui-kit-submission")


def test_missing_credentials_name_what_is_missing_and_the_dry_run_needs_none(fake, project):
    env = {k: v for k, v in fake.cli_env(dict(os.environ), str(project["home"])).items()}
    env.pop("KAGGLE_USERNAME"), env.pop("KAGGLE_KEY")
    cmd = [sys.executable, "-m", "offline", "submit", "--artifacts", str(project["artifacts"])]
    cmd += ["--kernel-metadata", str(project["meta"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    line = one_line_error(proc)
    assert "no Kaggle credentials" in line and "KAGGLE_USERNAME, KAGGLE_KEY" in line and "kaggle.json" in line
    assert "rejected" not in line and fake.requests == []
    # a dry run works without them, the owner a placeholder
    write_artifacts(project["artifacts"], dataset_id="YOUR_KAGGLE_USERNAME/mitsui-kit-artifacts")
    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "kaggle datasets status YOUR_KAGGLE_USERNAME/mitsui-kit-artifacts" in dry.stdout
    assert fake.requests == []
