"""Kaggle credentials: where the kaggle CLI finds them, which secrets to hide, what is missing.

Credentials never reach logs or artifacts: `credential_strings` lists every form the CLI could echo
(the key, tokens, the Basic-auth encoding of user:key) and `scrub` replaces them.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

CREDENTIAL_VARS = ("KAGGLE_USERNAME", "KAGGLE_KEY")
TOKEN_VAR = "KAGGLE_API_TOKEN"


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


def missing_credentials(env: dict[str, str]) -> str | None:
    """None when the CLI can authenticate; else one sentence naming the variables and files looked for."""
    if all(env.get(v) for v in CREDENTIAL_VARS) or env.get(TOKEN_VAR):
        return None
    dirs = _config_dirs(env)
    if any((d / "kaggle.json").is_file() or (d / "access_token").is_file() for d in dirs):
        return None
    unset = [v for v in (*CREDENTIAL_VARS, TOKEN_VAR) if not env.get(v)]
    return (
        f"no Kaggle credentials: {', '.join(unset)} not set and no kaggle.json in "
        f"{', '.join(str(d) for d in dirs)}. Set KAGGLE_USERNAME and KAGGLE_KEY (your API key from "
        f"kaggle.com > Settings > API), or save kaggle.json in one of those directories"
    )


def main() -> int:
    """`python -m offline.release.credentials`: exit 2 with the message when credentials are missing."""
    problem = missing_credentials(dict(os.environ))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
