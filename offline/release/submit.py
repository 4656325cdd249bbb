"""`make submit`: artifacts/ -> private Kaggle dataset -> kernel run -> code-competition submission.

Every step runs the real `kaggle` CLI (the one installed next to this Python) as a subprocess:
  1. kaggle datasets status OWNER/SLUG --format json(...)      does the dataset exist?
  2. kaggle datasets create -p artifacts --dir-mode zip ...    (or `datasets version -m MSG`)
  3. kaggle datasets status ... (repeated)                     until the new version is ready
  4. kaggle kernels push -p STAGE                              kernel-metadata.json filled in
  5. kaggle kernels status OWNER/KERNEL (repeated)             until the run is complete
  6. kaggle competitions submit COMP -k OWNER/KERNEL -v N ...  the code submission of that version
Failures become one clear line (HTTP 401/403/404/429 recognised); credentials never reach output.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from offline.errors import UserError

COMPETITION = "mitsui-commodity-prediction-challenge"
SUBMISSION_FILE = "submission.parquet"  # what the evaluation gateway writes in the kernel run
PLACEHOLDER_OWNER = "YOUR_KAGGLE_USERNAME"
NOT_UPLOADED = ".gitkeep"
DATASET_FAILED = {"failed", "deleted"}
KERNEL_DONE = "COMPLETE"
KERNEL_FAILED = {"ERROR", "CANCEL_REQUESTED", "CANCEL_ACKNOWLEDGED"}
# Lines the CLI prints with exit status 0 although the step failed.
SOFT_ERRORS = (
    "Dataset creation error",
    "Dataset version creation error",
    "Upload unsuccessful",
    "Kernel push error",
    "not valid dataset sources",
    "not valid competition sources",
    "not valid kernel sources",
    "Could not find competition",
)
HINTS = {
    401: "Kaggle rejected the credentials (HTTP 401): check KAGGLE_USERNAME and KAGGLE_KEY "
    "(or KAGGLE_API_TOKEN, or kaggle.json in KAGGLE_CONFIG_DIR)",
    403: "permission denied (HTTP 403): join the competition and accept its rules, and check that the "
    "dataset and kernel ids belong to this account",
    404: "not found (HTTP 404)",
    429: "rate limited by Kaggle (HTTP 429): try again later",
}


# -- credentials ----------------------------------------------------------------------------------


def _config_dirs(env: dict[str, str]) -> list[Path]:
    home = Path(env.get("HOME") or Path.home())
    dirs = [
        env.get("KAGGLE_CONFIG_DIR"),
        home / ".kaggle",
        Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle",
    ]
    return [Path(d) for d in dirs if d]


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip() if path.is_file() else ""
    except OSError:
        return ""


def credential_strings(env: dict[str, str]) -> list[str]:
    """Every secret the CLI could echo: API key, access tokens, and the Basic-auth form of user:key."""
    users, secrets = {env.get("KAGGLE_USERNAME", "")}, {env.get("KAGGLE_KEY", "")}
    token = env.get("KAGGLE_API_TOKEN", "")
    secrets.add(_read_text(Path(token)) if token and Path(token).is_file() else token)
    for d in _config_dirs(env):
        try:
            config = json.loads(_read_text(d / "kaggle.json") or "{}")
        except ValueError:
            config = {}
        if isinstance(config, dict):
            users.add(str(config.get("username", "")))
            secrets.add(str(config.get("key", "")))
        secrets.update(_read_text(d / name) for name in ("access_token", "access_token.txt"))
    keys = {s for s in secrets if len(s) >= 4}
    encoded = {base64.b64encode(f"{u}:{k}".encode()).decode() for u in users for k in keys}
    return sorted(keys | encoded, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def kaggle_username(env: dict[str, str]) -> str | None:
    """KAGGLE_USERNAME, else the username in the first kaggle.json found (the key is not needed)."""
    if env.get("KAGGLE_USERNAME"):
        return env["KAGGLE_USERNAME"]
    for d in _config_dirs(env):
        try:
            user = json.loads(_read_text(d / "kaggle.json") or "{}").get("username")
        except (ValueError, AttributeError):
            user = None
        if user:
            return str(user)
    return None


# -- running the CLI ------------------------------------------------------------------------------


def kaggle_cli() -> str:
    """The kaggle CLI installed beside this Python (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "kaggle"
    if beside.exists():
        return str(beside)
    found = shutil.which("kaggle")
    if found is None:
        raise UserError("the kaggle CLI is not installed: run `make venv` (it installs the kaggle package)")
    return found


def http_status(output: str) -> int | None:
    """The HTTP status a failed CLI call reports, when its output makes it recognisable."""
    low = output.lower()
    checks = (
        (401, r"\b401\b|authentication required|unauthenticated|unauthorized|invalid credentials"),
        (403, r"\b403\b|forbidden|permission .* denied|permission denied"),
        (429, r"\b429\b|too many requests|rate limit"),
        (404, r"\b404\b|not found|could not find"),
    )
    for status, pattern in checks:
        if re.search(pattern, low):
            return status
    return None


def _detail(output: str) -> str:
    """The last meaningful line of CLI output (no progress bars, no traceback frames)."""
    lines = [ln.strip() for ln in output.replace("\r", "\n").splitlines()]
    lines = [ln for ln in lines if ln and "%|" not in ln and not ln.startswith(("File ", "Traceback", "^"))]
    return lines[-1][:300] if lines else "(no output)"


def explain(step: str, output: str) -> str:
    """One line saying which step failed and why."""
    uploads = re.findall(r"Upload unsuccessful: (\S+)", output)
    if uploads:
        return (
            f"{step}: upload of {', '.join(uploads)} failed, so Kaggle got the dataset without those files; "
            f"run make submit again"
        )
    status = http_status(output)
    if status == 401:
        return f"{step}: {HINTS[401]}"
    if status is not None:
        return f"{step}: {HINTS[status]} -- kaggle said: {_detail(output)}"
    if "ModuleNotFoundError" in output or "ImportError" in output:
        return f"{step}: the kaggle CLI cannot start ({_detail(output)}); reinstall it with make venv"
    if "connectionerror" in output.lower().replace(" ", "") or "max retries exceeded" in output.lower():
        return f"{step}: could not reach the Kaggle API -- {_detail(output)}"
    return f"{step} failed: {_detail(output)}"


@dataclass
class Kaggle:
    """Runs one kaggle CLI command per step, echoing it, with credentials scrubbed from all it shows."""

    cli: str
    env: dict[str, str] | None = None
    out: Callable[[str], None] = print

    def __post_init__(self) -> None:
        env = dict(os.environ if self.env is None else self.env)
        for name in ("VERBOSE", "VERBOSE_OUTPUT"):  # verbose mode prints the Authorization header
            env.pop(name, None)
        env["PYTHONIOENCODING"] = "utf-8"
        self.env = env
        self.secrets = credential_strings(env)

    def say(self, text: str) -> None:
        self.out(scrub(text, self.secrets))

    def command(self, args: list[str], note: str = "") -> None:
        self.say(f"$ {shlex.join([self.cli, *args])}" + (f"   # {note}" if note else ""))

    def run(self, step: str, args: list[str], echo: bool = True, echo_output: bool = False) -> str:
        """Run `kaggle ARGS`; returns its stdout. A failure raises UserError naming the step."""
        if echo:
            self.command(args)
        try:
            proc = subprocess.run(
                [self.cli, *args],
                capture_output=True,
                text=True,
                env=self.env,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise UserError(f"{step}: cannot run {self.cli}: {exc}") from None
        stdout, stderr = scrub(proc.stdout, self.secrets), scrub(proc.stderr, self.secrets)
        both = f"{stdout}\n{stderr}"
        if proc.returncode != 0 or any(marker in stdout for marker in SOFT_ERRORS):
            raise UserError(explain(step, both))
        if echo_output:
            for line in stdout.splitlines():
                if line.strip():
                    self.out(f"  {line.strip()}")
        return stdout


# -- the steps ------------------------------------------------------------------------------------


def read_dataset_id(artifacts: Path) -> str:
    """The dataset id in artifacts/dataset-metadata.json, checked for a real owner."""
    meta_path = artifacts / "dataset-metadata.json"
    if not artifacts.is_dir() or not meta_path.exists():
        raise UserError(f"{meta_path} not found: run make package first")
    try:
        meta = json.loads(meta_path.read_text())
        dataset_id = str(meta["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{meta_path}: unreadable dataset metadata ({exc}); run make package again") from None
    owner, _, slug = dataset_id.partition("/")
    if not owner or not slug or "/" in slug:
        raise UserError(f"{meta_path}: id {dataset_id!r} is not OWNER/SLUG")
    if owner == PLACEHOLDER_OWNER:
        raise UserError(
            f"{meta_path}: id {dataset_id!r} has no Kaggle username; set KAGGLE_USERNAME "
            f"(or kaggle.json) and run make package again"
        )
    return dataset_id


def check_manifest(artifacts: Path) -> dict:
    """The manifest, after checking every listed file against its SHA-256 (no stale uploads)."""
    from kaggle_kernel.artifacts import check_artifacts

    manifest, problems = check_artifacts(artifacts)
    if problems:
        name, problem = next(iter(problems.items()))
        raise UserError(
            f"{artifacts / name}: {problem} ({len(problems)} problem(s) in {artifacts}); "
            f"run make package again"
        )
    return manifest or {}


def kernel_metadata(template: dict, kernel_owner: str, dataset_id: str, public: bool) -> dict:
    """kernel-metadata.json as pushed: our id and dataset, the competition, internet and GPU off."""
    slug = str(template.get("id", "")).partition("/")[2] or "mitsui-kit-submission"
    meta = dict(template)
    meta.update(
        {
            "id": f"{kernel_owner}/{slug}",
            "dataset_sources": [dataset_id],
            "competition_sources": sorted({*template.get("competition_sources", []), COMPETITION}),
            "is_private": not public,
            "enable_gpu": False,
            "enable_tpu": False,
            "enable_internet": False,
            "kernel_type": template.get("kernel_type", "script"),
            "language": template.get("language", "python"),
        }
    )
    return meta


def stage_kernel(meta: dict, code_source: Path, stage: Path) -> Path:
    """Write kernel-metadata.json and the code file into `stage` (code_file keeps its relative path)."""
    target = stage / meta["code_file"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(code_source, target)
    (stage / "kernel-metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    return stage


def status_args(dataset_id: str) -> list[str]:
    return ["datasets", "status", dataset_id, "--format", "json(status,current_version_number)"]


def submit_args(kernel_id: str, version: str, message: str) -> list[str]:
    return [
        "competitions",
        "submit",
        COMPETITION,
        "-k",
        kernel_id,
        "-v",
        version,
        "-f",
        SUBMISSION_FILE,
        "-m",
        message,
    ]


def dataset_state(kaggle: Kaggle, dataset_id: str, echo: bool = True) -> tuple[str, int | None] | None:
    """(status, current version) of the dataset, or None when Kaggle has no such dataset."""
    args = status_args(dataset_id)
    try:
        stdout = kaggle.run("checking the dataset", args, echo=echo)
    except UserError as exc:
        if "HTTP 404" in str(exc):
            return None
        raise
    found = re.search(r"\{.*\}", stdout, re.S)
    try:
        state = json.loads(found.group(0)) if found else {}
        return str(state["status"]), state.get("current_version_number")
    except (ValueError, KeyError) as exc:
        raise UserError(
            f"checking the dataset: unexpected answer from kaggle datasets status: {stdout.strip()!r}"
        ) from exc


def wait_for_dataset(kaggle: Kaggle, dataset_id: str, min_version: int, poll: float, timeout: float) -> None:
    kaggle.command(
        status_args(dataset_id),
        note=f"repeated every {poll:g} s until version {min_version} is ready",
    )
    deadline, last = time.monotonic() + timeout, None
    while True:
        state = dataset_state(kaggle, dataset_id, echo=False)
        status, version = state if state else ("not visible yet", None)
        if (status, version) != last:
            kaggle.say(f"  dataset {dataset_id}: {status} (version {version})")
            last = (status, version)
        if status == "ready" and (version is None or version >= min_version):
            return
        if status in DATASET_FAILED:
            raise UserError(
                f"waiting for the dataset: Kaggle reports {dataset_id} as {status}; "
                f"see https://www.kaggle.com/datasets/{dataset_id}"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"waiting for the dataset: {dataset_id} still {status} after {timeout:g} s; "
                f"re-run later or raise --timeout"
            )
        time.sleep(poll)


def pushed_version(stdout: str) -> int:
    found = re.search(r"Kernel version (\d+) successfully pushed", stdout)
    if not found:
        raise UserError(f"pushing the kernel: no version number in the kaggle output: {_detail(stdout)}")
    return int(found.group(1))


def wait_for_kernel(kaggle: Kaggle, kernel_id: str, version: int, poll: float, timeout: float) -> None:
    kaggle.command(
        ["kernels", "status", kernel_id], note=f"repeated every {poll:g} s until the run completes"
    )
    deadline, last = time.monotonic() + timeout, None
    while True:
        time.sleep(poll)  # give Kaggle time to register the new version's run
        stdout = kaggle.run("waiting for the kernel run", ["kernels", "status", kernel_id], echo=False)
        found = re.search(r'has status "(?:KernelWorkerStatus\.)?([A-Za-z_]+)"', stdout)
        status = found.group(1).upper() if found else "UNKNOWN"
        if status != last:
            kaggle.say(f"  kernel {kernel_id} version {version}: {status.lower()}")
            last = status
        if status == KERNEL_DONE:
            return
        if status in KERNEL_FAILED:
            failure = re.search(r'Failure message: "(.*)"', stdout)
            reason = failure.group(1) if failure else status.lower()
            raise UserError(
                f"kernel run: {kernel_id} version {version} failed on Kaggle: {reason} "
                f"(log: kaggle kernels output {kernel_id} -p DIR)"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"kernel run: {kernel_id} version {version} still {status.lower()} after "
                f"{timeout:g} s; re-run later or raise --timeout"
            )


def _default_message(manifest: dict) -> str:
    version = manifest.get("kit_version", "?")
    revision = str(manifest.get("git_revision", "unknown"))[:12]
    return f"mitsui-kit {version} ({revision})"


def submit(args: argparse.Namespace) -> int:
    """Run the whole chain; every failure is a UserError naming its step."""
    artifacts, meta_path = Path(args.artifacts), Path(args.kernel_metadata)
    dataset_id = read_dataset_id(artifacts)
    manifest = check_manifest(artifacts)
    try:
        template = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{meta_path}: cannot read the kernel metadata ({exc})") from None
    code_source = meta_path.parent / template.get("code_file", "")
    if not template.get("code_file") or not code_source.is_file():
        raise UserError(f"{meta_path}: code_file {template.get('code_file')!r} not found next to it")

    kaggle = Kaggle(kaggle_cli())
    owner = kaggle_username(kaggle.env) or dataset_id.split("/")[0]
    meta = kernel_metadata(template, owner, dataset_id, args.public)
    kernel_id = meta["id"]
    message = args.message or _default_message(manifest)
    visibility = "PUBLIC" if args.public else "private"
    upload = ["-p", str(artifacts), "--dir-mode", "zip", "--ignore-patterns", NOT_UPLOADED]
    create = ["datasets", "create", *upload, *(["--public"] if args.public else [])]
    version = ["datasets", "version", *upload, "-m", message]
    kaggle.say(
        f"submitting {artifacts} as {visibility} dataset {dataset_id} and {visibility} kernel {kernel_id} "
        f"to {COMPETITION}"
    )

    if args.dry_run:
        kaggle.say("dry run: printing the kaggle commands, nothing is sent")
        kaggle.command(status_args(dataset_id))
        kaggle.command(create, note="when the dataset does not exist yet")
        kaggle.command(version, note="when it exists")
        kaggle.command(
            status_args(dataset_id),
            note="repeated until the new version is ready",
        )
        kaggle.command(
            ["kernels", "push", "-p", "STAGE"],
            note=f"STAGE: a temporary dir with {meta['code_file']} and this kernel-metadata.json",
        )
        kaggle.say(json.dumps(meta, indent=1))
        kaggle.command(["kernels", "status", kernel_id], note="repeated until the run completes")
        kaggle.command(
            submit_args(kernel_id, "VERSION", message), note="VERSION: the one kernels push reports"
        )
        return 0

    state = dataset_state(kaggle, dataset_id)
    if state is None:
        kaggle.say(f"  dataset {dataset_id} does not exist yet: creating it ({visibility})")
        kaggle.run("creating the dataset", create, echo_output=True)
        min_version = 1
    else:
        kaggle.say(f"  dataset {dataset_id} exists (version {state[1]}): adding a version")
        kaggle.run("versioning the dataset", version, echo_output=True)
        min_version = (state[1] or 0) + 1
    wait_for_dataset(kaggle, dataset_id, min_version, args.poll_seconds, args.timeout)

    with tempfile.TemporaryDirectory(prefix="mitsui-kit-kernel-") as tmp:
        stage = stage_kernel(meta, code_source, Path(tmp))
        stdout = kaggle.run("pushing the kernel", ["kernels", "push", "-p", str(stage)], echo_output=True)
    kernel_version = pushed_version(stdout)
    wait_for_kernel(kaggle, kernel_id, kernel_version, args.poll_seconds, args.timeout)

    kaggle.run(
        "submitting to the competition",
        submit_args(kernel_id, str(kernel_version), message),
        echo_output=True,
    )
    kaggle.say(
        f"submitted {kernel_id} version {kernel_version} to {COMPETITION}; "
        f"see https://www.kaggle.com/competitions/{COMPETITION}/submissions"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="push artifacts/ and the kernel to Kaggle, wait for the run, submit it",
        description="Upload artifacts/ as a private Kaggle dataset (create or new version), push the kernel "
        "(kernel-metadata.json, internet and GPU off) with that dataset attached, wait for its run, "
        "then create the code-competition submission for that kernel version. Uses the kaggle CLI "
        "and its credentials (KAGGLE_USERNAME/KAGGLE_KEY, KAGGLE_API_TOKEN or kaggle.json).",
    )
    p.add_argument(
        "--artifacts", default="artifacts", help="artifacts directory from make package (default artifacts)"
    )
    p.add_argument(
        "--kernel-metadata",
        default="kernel-metadata.json",
        help="kernel metadata template (default kernel-metadata.json)",
    )
    p.add_argument(
        "--message",
        "-m",
        help="dataset version notes and submission description "
        "(default: kit version and git revision from manifest.json)",
    )
    p.add_argument("--dry-run", action="store_true", help="print each kaggle command instead of running it")
    p.add_argument(
        "--public", action="store_true", help="make a new dataset and the kernel public (default private)"
    )
    p.add_argument(
        "--poll-seconds", type=float, default=10.0, help="seconds between status checks (default 10)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for the dataset and, separately, for the kernel run (default 3600)",
    )
    p.set_defaults(func=submit)
