"""The artifacts dataset as the kernel sees it: manifest.json and the SHA-256 of every listed file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_artifacts(root: str | Path) -> tuple[dict | None, dict[str, str]]:
    """(manifest or None, {file: problem}) -- every file the manifest lists must exist with its hash."""
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        return None, {MANIFEST: f"missing in {root}"}
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return None, {MANIFEST: f"unreadable: {exc}"}
    problems = {}
    for name, entry in sorted(files.items()):
        f = root / name
        if not f.exists():
            problems[name] = "missing"
        elif sha256_file(f) != entry.get("sha256"):
            problems[name] = "SHA-256 does not match the manifest (corrupt or changed)"
    return manifest, problems
