"""The files one ETF stage writes and a later one reads, as dataclasses with to_json/from_json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

from offline.errors import UserError


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def read_json(path: Path) -> dict:
    if not path.exists():
        raise UserError(f"{path} is missing: run the earlier etf stages first (python -m offline etf all)")
    return json.loads(path.read_text())


class StageFile:
    """A JSON file at FILE inside the run directory."""

    FILE: ClassVar[str]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / self.FILE
        write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, run_dir: Path):
        return cls.from_json(read_json(Path(run_dir) / cls.FILE))


@dataclass
class SourceInfo(StageFile):
    """prep: where the data came from, the stand-ins used for missing columns, the label and blocks."""

    FILE: ClassVar[str] = "datasets/source.json"
    source: str
    market: str
    defensive: list[str]
    stand_ins: dict[str, str]
    label: str
    blocks: dict
    has_defensive: bool


# the CV table's keys that reports and the frozen design carry (per informative fold and mean)
CV_SUMMARY_KEYS = (
    "candidate", "params", "pr_auc", "roc_auc", "naive_pr_auc", "naive_roc_auc",
    "fold_pr_auc", "fold_roc_auc", "survives",
)  # fmt: skip


@dataclass
class CvResult(StageFile):
    """cv: every candidate's purged walk-forward scores in the train block, next to the naive rule's."""

    FILE: ClassVar[str] = "results/cv.json"
    rows: list[dict]  # one per candidate and hyper-parameter point
    best: dict[str, dict]  # per candidate: its CV-best point
    survivors: list[str]  # candidates whose CV-best point passes the survival rule (stages/cv.py RULE)
    calibration: dict[str, dict]  # naive rule and each survivor: calibration method, Brier on CV scores
    folds: int
    purge_rows: int
    train_rows: int
    rule: str


@dataclass
class ChosenModel(StageFile):
    """fit: the model fit on the train block, its calibration fit on validation, how it was chosen."""

    FILE: ClassVar[str] = "models/model.json"
    model: dict  # candidates.FittedModel.to_json()
    calibration: dict
    chosen_by: str
    validation: dict[str, dict]  # per candidate fit: raw-score PR/ROC AUC on the validation block
    naive_validation: dict


@dataclass
class ThresholdChoice(StageFile):
    """threshold: the F2-best threshold on calibrated validation probabilities."""

    FILE: ClassVar[str] = "results/threshold.json"
    threshold: float
    f2: float
    precision: float
    recall: float
    rows: int
    positives: int


@dataclass
class ScanResult(StageFile):
    """scan: the allocation (chosen on validation, or frozen) and its validation figures vs the benchmarks."""

    FILE: ClassVar[str] = "results/scan.json"
    chosen: dict
    rule: str
    threshold: float
    defensive: bool
    validation: dict[str, dict]  # strategy, no_signal, buy_and_hold, ma_210, momentum_126
    points: int = 0
    qualified: int = 0
    frozen: bool = False


@dataclass
class Evaluation(StageFile):
    """test: the model's and the naive rule's figures on the same labelled test rows."""

    FILE: ClassVar[str] = "results/evaluation.json"
    test: dict
    naive: dict


@dataclass
class Backtest(StageFile):
    """test: performance of the allocation, its no-signal twin and the benchmarks on the test block."""

    FILE: ClassVar[str] = "results/backtest.json"
    params: dict
    threshold: float
    cost_bps: float
    runs: dict[str, dict]  # strategy, no_signal, buy_and_hold, ma_210, momentum_126
