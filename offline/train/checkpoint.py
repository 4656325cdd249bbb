"""Per-target checkpoints: each finished target is written atomically and skipped on a rerun
with the same fingerprint (config + data + target); anything else retrains."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from offline.train.regressors import TargetResult


def fingerprint(*parts: object) -> str:
    """SHA-256 over JSON-able parts and numpy arrays (by bytes, shape and dtype)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            rows = [part] if part.flags.c_contiguous or part.ndim < 2 else part  # C-order bytes, no copy
            for row in rows:
                h.update(np.ascontiguousarray(row).data)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary sibling and rename: a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class CheckpointStore:
    """models/<target>.txt (LightGBM text) + checkpoints/<target>.json (fingerprint, OOF, status)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.models = self.root / "models"
        self.meta = self.root / "checkpoints"

    def load(self, name: str, fp: str) -> TargetResult | None:
        path = self.meta / f"{name}.json"
        if not path.exists():
            return None
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        if meta.get("fingerprint") != fp:
            return None
        text = None
        if meta["model"] is not None:
            model_path = self.root / meta["model"]
            if not model_path.exists():
                return None
            text = model_path.read_text()
        oof = np.array([np.nan if v is None else v for v in meta["oof"]], dtype=np.float64)
        return TargetResult(meta["index"], name, oof, text, meta["fallback"], meta["n_train"])

    def save(self, result: TargetResult, fp: str) -> None:
        model_rel = None
        if result.model_text is not None:
            model_rel = f"models/{result.name}.txt"
            atomic_write(self.root / model_rel, result.model_text)
        meta = {
            "fingerprint": fp,
            "index": result.index,
            "model": model_rel,
            "fallback": result.fallback,
            "n_train": result.n_train,
            "oof": [None if v != v else v for v in result.oof.tolist()],  # NaN -> null
        }
        atomic_write(self.meta / f"{result.name}.json", json.dumps(meta))
