"""The frozen design (offline/etf/frozen.json): every choice made on data through 2018, and the code's hash.

Written by `python -m offline etf freeze --out DIR` from a design run; read back by every later run,
which then refits only the model weights (train block), the calibration map and the threshold
(validation block), and evaluates the test block once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from offline.errors import UserError

FROZEN_PATH = Path(__file__).with_name("frozen.json")
ROOT = Path(__file__).resolve().parents[2]
HASHED = ("offline/etf", "kaggle_kernel/crash.py")


def code_hash(root: Path = ROOT) -> str:
    """SHA-256 over the path and bytes of every .py file of offline/etf and kaggle_kernel/crash.py."""
    digest = hashlib.sha256()
    for rel in HASHED:
        path = root / rel
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class FrozenDesign:
    """The choices a held-out run keeps: config, label, model family/inputs/params, calibration method,
    threshold and allocation; the design run's figures come along for the record."""

    code_hash: str
    config: dict
    label: str
    model: dict  # name, family, features, params
    calibration: dict  # method (kept) and the design run's map
    threshold: float
    allocation: dict
    design: dict  # the design run's CV table, validation figures and blocks

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FrozenDesign:
        try:
            return cls(**data)
        except TypeError as exc:
            raise UserError(f"frozen design: {exc}") from None

    def save(self, path: Path = FROZEN_PATH) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=2, default=float) + "\n")
        return path


def load_frozen(path: Path | str = FROZEN_PATH) -> FrozenDesign | None:
    """The frozen design at `path`, or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    return FrozenDesign.from_json(json.loads(path.read_text()))


def freeze(run_dir: Path, path: Path = FROZEN_PATH) -> FrozenDesign:
    """Write the frozen design of a design run (one that searched: it has results/cv.json)."""
    from offline.etf.config import load_config
    from offline.etf.files import (
        CV_SUMMARY_KEYS,
        ChosenModel,
        CvResult,
        ScanResult,
        SourceInfo,
        ThresholdChoice,
    )

    cfg = load_config(run_dir)
    if cfg.frozen:
        raise UserError(
            f"{run_dir} followed a frozen design; freeze a design run (python -m offline etf all --search)"
        )
    cv, chosen = CvResult.load(run_dir), ChosenModel.load(run_dir)
    source, scan = SourceInfo.load(run_dir), ScanResult.load(run_dir)
    model = chosen.model
    design = FrozenDesign(
        code_hash=code_hash(),
        config=cfg.to_json(),
        label=source.label,
        model={k: model[k] for k in ("name", "family", "features", "params")},
        calibration=chosen.calibration,
        threshold=ThresholdChoice.load(run_dir).threshold,
        allocation=scan.chosen,
        design={
            "source": source.source,
            "blocks": source.blocks,
            "cv": [{k: r[k] for k in CV_SUMMARY_KEYS} for r in cv.rows],
            "survivors": cv.survivors,
            "chosen_by": chosen.chosen_by,
            "validation": {"candidates": chosen.validation, "naive": chosen.naive_validation},
            "validation_allocation": scan.validation,
        },
    )
    design.save(path)
    return design
