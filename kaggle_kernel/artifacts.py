"""The artifacts dataset as the kernel sees it: manifest.json and the SHA-256 of every listed file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kaggle_kernel.manifest import MANIFEST, Manifest

__all__ = ["MANIFEST", "check_artifacts", "sha256_file"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_artifacts(root: str | Path) -> tuple[Manifest | None, dict[str, str]]:
    """(manifest or None, {file: problem}) -- every file the manifest lists must exist with its hash."""
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        return None, {MANIFEST: f"missing in {root}"}
    try:
        manifest = Manifest.read(root)
    except (ValueError, KeyError, TypeError) as exc:
        return None, {MANIFEST: f"unreadable: {exc}"}
    problems = {}
    for name, entry in sorted(manifest.files.items()):
        f = root / name
        if not f.exists():
            problems[name] = "missing"
        elif sha256_file(f) != entry.sha256:
            problems[name] = "SHA-256 does not match the manifest (corrupt or changed)"
    return manifest, problems
