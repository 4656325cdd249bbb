"""manifest.json, the one definition `make package` writes and the kernel reads (stdlib only).

It lists every artifact file with its SHA-256, the kit version and git revision, library
versions, the features per model, the training data (where it came from, its days, its
fingerprint) and the CV scores. `from_json` names the first missing or mistyped field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

FORMAT = "mitsui-kit-artifacts/1"
MANIFEST = "manifest.json"
ORIGIN_COMPETITION = "competition"  # trained on Kaggle's files (a download, or a copy of them)
ORIGIN_SYNTHETIC = "synthetic"  # trained on the kit's built-in synthetic market
ORIGIN_UNKNOWN = "unknown"  # the training directory was gone when the artifacts were built


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Training:
    """What the models were fitted on: `origin`, `data` (dir, until, first/last date_id, fingerprint), `cv`."""

    origin: str
    data: dict[str, Any]
    cv: dict[str, Any]

    @property
    def first_date_id(self) -> int | None:
        return self.data.get("first_date_id")

    @property
    def last_date_id(self) -> int | None:
        return self.data.get("last_date_id")

    @property
    def oof_score(self) -> float | None:
        return self.cv.get("oof_score")


@dataclass(frozen=True)
class Manifest:
    kit_version: str
    git_revision: str
    libraries: dict[str, str | None]
    feature_names: list[str]
    stage1: list[str]
    models: dict[str, dict[str, Any]]
    targets: dict[str, str | None]
    fallbacks: dict[str, Any]
    target_mode: str | None
    training: Training
    snapshot: dict[str, Any]
    etf_crash: dict[str, str] | None
    dataset_id: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    blend: dict[str, Any] | None = (
        None  # the scored blend's members, weights and files (None: the two-stage engine alone)
    )
    format: str = FORMAT

    def to_json(self) -> str:
        """Sorted keys, no timestamps: two builds of the same models give the same bytes."""
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("manifest.json is not a JSON object")
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r} is not {FORMAT!r}")
        missing = [f.name for f in fields(cls) if f.name not in raw]
        if missing:
            raise ValueError(f"manifest.json has no {missing[0]!r}")
        try:
            training = Training(**raw["training"])
            files = {name: FileEntry(**entry) for name, entry in raw["files"].items()}
        except TypeError as exc:
            raise ValueError(f"manifest.json: {exc}") from None
        return cls(**{**raw, "training": training, "files": files})

    @classmethod
    def read(cls, root: str | Path) -> Manifest:
        return cls.from_json((Path(root) / MANIFEST).read_text())

    def write(self, root: str | Path) -> Path:
        path = Path(root) / MANIFEST
        path.write_text(self.to_json())
        return path
