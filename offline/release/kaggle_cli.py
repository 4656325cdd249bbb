"""The real `kaggle` CLI as a subprocess: run one command per step, classify what went wrong.

Failures become one line naming the step (HTTP 401/403/404/429 recognised); every line shown has
the credentials scrubbed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from offline.errors import UserError
from offline.release.credentials import credential_strings, scrub

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
