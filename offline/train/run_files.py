"""The two files a training run leaves for other stages, as dataclasses: models.json (what `make
package` packs) and report.json (what compare, the CLI summary, report.md, the demo and the bench read).

`to_json` gives the file's object with the keys it has always had; `from_json` reads one back and
names the first missing or unknown key (as a dotted path); `load` adds the file's path to that.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from kaggle_kernel.blend import SCALES
from offline.errors import UserError
from offline.train.checkpoint import atomic_write
from offline.train.config import MODES, TrainConfig

MODELS_FILE = "models.json"
REPORT_FILE = "report.json"

Interval = list[float] | None  # a 90% block-bootstrap interval; None under 2 days


def _keys(d: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """d itself, once it is an object with every required key and nothing beyond required + optional."""
    if not isinstance(d, dict):
        what = f"key {where!r}" if where else "the top level"
        raise UserError(f"{what} is not a JSON object but a {type(d).__name__}")
    prefix = f"{where}." if where else ""
    for k in required:
        if k not in d:
            raise UserError(f"missing key {prefix + k!r}")
    for k in d:
        if k not in required and k not in optional:
            raise UserError(f"unknown key {prefix + k!r}")
    return d


def _obj(d: object, where: str) -> dict:
    """d, once it is a JSON object (of any keys)."""
    return _keys(d, where, (), tuple(d) if isinstance(d, dict) else ())


def _list(d: object, where: str) -> list:
    if not isinstance(d, list):
        raise UserError(f"key {where!r} is not a JSON list but a {type(d).__name__}")
    return d


def _plain(cls, d: object, where: str):
    """A flat dataclass from an object whose keys are its field names (those with a default optional)."""
    required = tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
    optional = tuple(f.name for f in fields(cls) if f.name not in required)
    return cls(**_keys(d, where, required, optional))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON-able")


def _write(path: Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=1, default=_json_default))


def _read(path: Path, from_json):
    """from_json of the file at path; a bad file is a UserError naming it (and the key)."""
    if not path.exists():
        raise UserError(f"{path} not found")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    try:
        return from_json(obj)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:  # a value of the wrong kind
        raise UserError(f"{path}: {type(exc).__name__}: {exc}") from None


# ---- shared ---------------------------------------------------------------------------------------
@dataclass
class DataInfo:
    """The training data: its directory, the `until` cut, the feature/label fingerprint and its days."""

    dir: str
    until: int | None
    fingerprint: str
    first_date_id: int
    last_date_id: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict, where: str = "data") -> DataInfo:
        return _plain(cls, d, where)


# ---- models.json ----------------------------------------------------------------------------------
@dataclass
class RegimeFile:
    file: str
    features: list[str]
    kind: str


@dataclass
class TargetFile:
    """One target's entry; `file` is absent for a target that fell back to naive."""

    index: int
    lag: int
    pair: str
    fallback: str | None
    file: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        if self.file is None:
            del d["file"]
        return d


@dataclass
class EtfCrashFiles:
    file: str
    model: str


@dataclass
class BlendFiles:
    spec: str
    pooled: str
    ridge: str
    local: str
    leaders: str | None = None  # absent in runs from before the leaders member


@dataclass
class CvScores:
    oof_score: float
    regime_roc_auc: float


@dataclass
class ModelsFile:
    """models.json: every model file of the run, relative to its directory, and the data and CV scores."""

    regime: RegimeFile
    targets: dict[str, TargetFile]
    blend: BlendFiles
    target_mode: str
    data: DataInfo
    cv: CvScores
    etf_crash: EtfCrashFiles | None = None

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "regime": asdict(self.regime),
            "targets": {name: t.to_json() for name, t in self.targets.items()},
        }
        if self.etf_crash is not None:
            out["etf_crash"] = asdict(self.etf_crash)
        out["blend"] = asdict(self.blend)
        out["target_mode"] = self.target_mode
        out["data"] = self.data.to_json()
        out["cv"] = asdict(self.cv)
        return out

    @classmethod
    def from_json(cls, d: dict) -> ModelsFile:
        required = ("regime", "targets", "blend", "target_mode", "data", "cv")
        _keys(d, "", required, ("etf_crash",))
        return cls(
            regime=_plain(RegimeFile, d["regime"], "regime"),
            targets={
                name: _plain(TargetFile, t, f"targets.{name}")
                for name, t in _obj(d["targets"], "targets").items()
            },
            blend=_plain(BlendFiles, d["blend"], "blend"),
            target_mode=d["target_mode"],
            data=DataInfo.from_json(d["data"]),
            cv=_plain(CvScores, d["cv"], "cv"),
            etf_crash=_plain(EtfCrashFiles, d["etf_crash"], "etf_crash") if d.get("etf_crash") else None,
        )

    def write(self, run_dir: Path) -> None:
        _write(Path(run_dir) / MODELS_FILE, self.to_json())

    @classmethod
    def load(cls, run_dir: Path | str) -> ModelsFile:
        return _read(Path(run_dir) / MODELS_FILE, cls.from_json)


# ---- report.json ----------------------------------------------------------------------------------
@dataclass
class FoldScore:
    fold: int
    score: float
    mean: float


@dataclass
class Scored:
    score: float
    interval: Interval


@dataclass
class TargetModeReport:
    """The target transform chosen by OOF score on the analysis subset; `scores` by mode (raw, rank)."""

    chosen: str
    scores: dict[str, float]
    intervals: dict[str, Interval]
    rank_vs_raw: dict | None
    decided_on_targets: int

    def to_json(self) -> dict:
        return {
            "chosen": self.chosen,
            **self.scores,
            "intervals": self.intervals,
            "rank_vs_raw": self.rank_vs_raw,
            "decided_on_targets": self.decided_on_targets,
        }

    @classmethod
    def from_json(cls, d: dict, where: str = "target_mode") -> TargetModeReport:
        _keys(d, where, ("chosen", "intervals", "rank_vs_raw", "decided_on_targets"), MODES)
        return cls(
            d["chosen"],
            {m: d[m] for m in MODES if m in d},
            d["intervals"],
            d["rank_vs_raw"],
            d["decided_on_targets"],
        )


@dataclass
class EtfDecision:
    """Whether the regressors get the ETF crash probability, and the paired test that decided it
    (absent when it was switched off or unavailable)."""

    used: bool
    decided_by: str
    unavailable: str | None = None
    with_score: float | None = None
    without_score: float | None = None
    gain: dict | None = None
    targets: int | None = None

    KEYS = {"with_score": "with", "without_score": "without"}  # field -> JSON key

    def to_json(self) -> dict:
        return {self.KEYS.get(k, k): v for k, v in asdict(self).items() if v is not None or k == "used"}

    @classmethod
    def from_json(cls, d: dict, where: str = "etf_crash_prob") -> EtfDecision:
        back = {v: k for k, v in cls.KEYS.items()}
        optional = ("unavailable", "with", "without", "gain", "targets")
        _keys(d, where, ("used", "decided_by"), optional)
        return cls(**{back.get(k, k): v for k, v in d.items()})


@dataclass
class RegimeScores:
    """The regime classifier out of fold: overall metrics and one dict of them per fold."""

    n: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    folds: list[dict]


@dataclass
class Fallback:
    target: str
    reason: str


@dataclass
class TargetIcs:
    values: list[float | None]
    mean: float | None
    median: float | None
    frac_positive: float | None


@dataclass
class Tuning:
    """The tuning result this run's parameters came from, and the blend on days tuning never saw."""

    source: str
    tuned_until: int | None
    params: dict
    pooled_params: dict
    ridge_alpha: float
    blend_on_days_tuning_never_saw: dict

    def to_json(self) -> dict:
        d = asdict(self)
        return {"from": d.pop("source"), **d}

    @classmethod
    def from_json(cls, d: dict, where: str = "tuning") -> Tuning:
        names = tuple(f.name for f in fields(cls) if f.name != "source")
        _keys(d, where, ("from", *names))
        return cls(source=d["from"], **{k: d[k] for k in names})


@dataclass
class CandidateScores:
    """A blend member on the blend days (folds 1..), per fold there, and on every OOF day."""

    score: float
    interval: Interval
    per_fold: list[float]
    all_oof_days: Scored
    chose: dict | None = None  # what the fit chose from the data (the local penalty per fold, then final)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict, where: str) -> CandidateScores:
        _keys(d, where, ("score", "interval", "per_fold", "all_oof_days"), ("chose",))
        return cls(
            d["score"],
            d["interval"],
            d["per_fold"],
            _plain(Scored, d["all_oof_days"], f"{where}.all_oof_days"),
            d.get("chose"),
        )


def counts_text(counts: int | list[int]) -> str:
    """A blend's factor counts for people: "20", or "10 and 20 averaged" (a run from before the
    averaged counts wrote one int per fold)."""
    counts = [counts] if isinstance(counts, int) else list(counts)
    if len(counts) == 1:
        return str(counts[0])
    return ", ".join(map(str, counts[:-1])) + f" and {counts[-1]} averaged"


SCALE_TEXT = dict(zip(SCALES, ("day ranks", "day z-scores"), strict=True))  # the blend's scales for people


@dataclass
class BlendReport:
    """The served weights, label-factor count, the counts averaged, tied share and members' scale,
    each nested fold's (fit on the folds before it), paired tests vs members."""

    weights: dict[str, float]
    per_fold_weights: list[dict]
    vs_members: dict[str, dict]
    factors: int = 0  # a run from before the factor-neutral blend has none
    ties: float = 0.0  # nor one from before the tie step
    counts: list[int] | None = None  # nor one from before the averaged counts: all `factors`
    scale: str = "rank"  # nor one from before the z-scores

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise UserError(f"blend.scale: must be one of {list(SCALES)}, got {self.scale!r}")

    def factor_counts(self) -> list[int]:
        return self.counts or [self.factors]


@dataclass
class BaselineScore:
    score: float
    interval: Interval
    per_fold: list[float]


def baselines_to_json(b: dict[str, BaselineScore]) -> dict:
    out: dict[str, Any] = {}
    for name, s in b.items():
        out.update({name: s.score, f"{name}_interval": s.interval, f"{name}_per_fold": s.per_fold})
    return out


def baselines_from_json(d: dict, where: str = "baselines") -> dict[str, BaselineScore]:
    names = [k for k in _obj(d, where) if not k.endswith(("_interval", "_per_fold"))]
    expected = {k for n in names for k in (n, f"{n}_interval", f"{n}_per_fold")}
    _keys(d, where, tuple(sorted(expected)))
    return {n: BaselineScore(d[n], d[f"{n}_interval"], d[f"{n}_per_fold"]) for n in names}


@dataclass
class Ablation:
    """Variants on the analysis subset: `scores` has "full" and one score per variant."""

    targets: int
    scores: dict[str, float]
    intervals: dict[str, Interval]

    def to_json(self) -> dict:
        return {"targets": self.targets, **self.scores, "intervals": self.intervals}

    @classmethod
    def from_json(cls, d: dict, where: str = "ablation") -> Ablation:
        _keys(_obj(d, where), where, ("targets", "intervals", "full"), tuple(d))
        scores = {k: v for k, v in d.items() if k not in ("targets", "intervals")}
        return cls(d["targets"], scores, d["intervals"])


@dataclass
class OracleScore:
    """The synthetic market's true expected returns, scored on the blend days; fraction = blend / oracle."""

    score: float
    fraction: float | None
    interval: Interval


@dataclass
class TrainReport:
    """report.json. Flat fields are the file's top-level keys; the nested ones are its objects."""

    engine_oof_score: float
    engine_interval: Interval
    engine_per_fold: list[FoldScore]
    n_targets: int
    n_days: int
    n_oof_days: int
    target_mode: TargetModeReport
    shared_only: float
    shared_only_interval: Interval
    etf_crash_prob: EtfDecision
    regime: RegimeScores
    fallbacks: list[Fallback]
    ic: TargetIcs
    fit_seconds: float
    oof_score: float
    oof_interval: Interval
    oof_mean_daily_corr: float
    per_fold: list[FoldScore]
    n_blend_days: int
    candidates: dict[str, CandidateScores]
    blend: BlendReport
    train_seconds: float
    config: TrainConfig
    data: DataInfo
    seconds: dict[str, float]
    tuning: Tuning | None = None
    baselines: dict[str, BaselineScore] | None = None
    ablation: Ablation | None = None
    oracle: OracleScore | None = None

    @property
    def tuned_from(self) -> str | None:
        return self.tuning.source if self.tuning else None

    @property
    def all_fell_back(self) -> bool:
        """Every target fell back to naive: no per-target model was trained."""
        return len(self.fallbacks) == self.n_targets

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "engine_oof_score": self.engine_oof_score,
            "engine_interval": self.engine_interval,
            "engine_per_fold": [asdict(f) for f in self.engine_per_fold],
            "n_targets": self.n_targets,
            "n_days": self.n_days,
            "n_oof_days": self.n_oof_days,
            "target_mode": self.target_mode.to_json(),
            "shared_only": self.shared_only,
            "shared_only_interval": self.shared_only_interval,
            "etf_crash_prob": self.etf_crash_prob.to_json(),
            "regime": asdict(self.regime),
            "fallbacks": [asdict(f) for f in self.fallbacks],
            "ic": asdict(self.ic),
            "fit_seconds": self.fit_seconds,
        }
        if self.tuning is not None:
            out["tuned_from"] = self.tuning.source
            out["tuning"] = self.tuning.to_json()
        out.update(
            {
                "oof_score": self.oof_score,
                "oof_interval": self.oof_interval,
                "oof_mean_daily_corr": self.oof_mean_daily_corr,
                "per_fold": [asdict(f) for f in self.per_fold],
                "n_blend_days": self.n_blend_days,
                "candidates": {n: c.to_json() for n, c in self.candidates.items()},
                "blend": asdict(self.blend),
            }
        )
        if self.baselines is not None:
            out["baselines"] = baselines_to_json(self.baselines)
        if self.ablation is not None:
            out["ablation"] = self.ablation.to_json()
        if self.oracle is not None:
            out["oracle_score"] = self.oracle.score
            out["oracle_fraction"] = self.oracle.fraction
            out["oracle_interval"] = self.oracle.interval
        out["train_seconds"] = self.train_seconds
        out["config"] = asdict(self.config)
        out["data"] = self.data.to_json()
        out["seconds"] = self.seconds
        return out

    NESTED = (  # the keys whose values are objects or lists of them
        "engine_per_fold",
        "target_mode",
        "etf_crash_prob",
        "regime",
        "fallbacks",
        "ic",
        "per_fold",
        "candidates",
        "blend",
        "config",
        "data",
    )
    ORACLE = ("oracle_score", "oracle_fraction", "oracle_interval")
    OPTIONAL = ("tuned_from", "tuning", "baselines", "ablation", *ORACLE)

    @classmethod
    def from_json(cls, d: dict) -> TrainReport:
        optional_fields = ("tuning", "baselines", "ablation", "oracle")
        flat = [f.name for f in fields(cls) if f.name not in (*cls.NESTED, *optional_fields)]
        _keys(d, "", (*flat, *cls.NESTED), cls.OPTIONAL)
        for group in (("tuned_from", "tuning"), cls.ORACLE):  # all of a group's keys, or none
            if any(k in d for k in group):
                _keys({k: d[k] for k in group if k in d}, "", group)
        return cls(
            **{k: d[k] for k in flat},
            engine_per_fold=_folds(d["engine_per_fold"], "engine_per_fold"),
            target_mode=TargetModeReport.from_json(d["target_mode"]),
            etf_crash_prob=EtfDecision.from_json(d["etf_crash_prob"]),
            regime=_plain(RegimeScores, d["regime"], "regime"),
            fallbacks=[
                _plain(Fallback, f, f"fallbacks.{i}")
                for i, f in enumerate(_list(d["fallbacks"], "fallbacks"))
            ],
            ic=_plain(TargetIcs, d["ic"], "ic"),
            per_fold=_folds(d["per_fold"], "per_fold"),
            candidates={
                n: CandidateScores.from_json(c, f"candidates.{n}")
                for n, c in _obj(d["candidates"], "candidates").items()
            },
            blend=_plain(BlendReport, d["blend"], "blend"),
            config=_config(d["config"]),
            data=DataInfo.from_json(d["data"]),
            tuning=Tuning.from_json(d["tuning"]) if "tuning" in d else None,
            baselines=baselines_from_json(d["baselines"]) if "baselines" in d else None,
            ablation=Ablation.from_json(d["ablation"]) if "ablation" in d else None,
            oracle=OracleScore(*(d[k] for k in cls.ORACLE)) if "oracle_score" in d else None,
        )

    def write(self, run_dir: Path) -> None:
        _write(Path(run_dir) / REPORT_FILE, self.to_json())

    @classmethod
    def load(cls, run_dir: Path | str) -> TrainReport:
        return _read(Path(run_dir) / REPORT_FILE, cls.from_json)


def _folds(d: object, where: str) -> list[FoldScore]:
    return [_plain(FoldScore, f, f"{where}.{i}") for i, f in enumerate(_list(d, where))]


def _config(d: dict) -> TrainConfig:
    names = tuple(f.name for f in fields(TrainConfig))
    return TrainConfig(**_keys(d, "config", names))
