"""TrainConfig: everything that changes a model, validated on construction (one place for the choices)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from offline.errors import UserError
from offline.train.candidates import RIDGE_ALPHA

MODES = ("raw", "rank")  # the target transforms CV chooses between
TargetMode = Literal["auto", "raw", "rank"]
EtfFeature = Literal["auto", "on", "off"]


@dataclass
class TrainConfig:
    """Everything that changes a model. Fingerprinted: a changed field retrains the targets.

    Validated on construction: a choice outside its Literal, or a bad number, is a UserError naming
    the field and what it allows."""

    n_folds: int = 4
    gap: int = 5
    min_train: float = 0.4
    seed: int = 0
    params: dict = field(default_factory=dict)
    regime_params: dict = field(default_factory=dict)
    pooled_params: dict = field(default_factory=dict)
    ridge_alpha: float = RIDGE_ALPHA
    target_mode: TargetMode = "auto"
    targets: list[int] | None = None
    min_labels: int = 200
    until: int | None = None  # train on what is known at the end of this date_id (None: everything)
    etf_feature: EtfFeature = "auto"  # the ETF crash probability as a feature: "auto" (by CV), "on", "off"
    analysis_every: int = 8
    ablation: bool = True
    baselines: bool = True
    tuned_from: str | None = None  # the tuning result (best_params.json) whose parameters this run uses
    tuned_until: int | None = None  # the last date_id that tuning saw

    def __post_init__(self):
        for name, kind in (("target_mode", TargetMode), ("etf_feature", EtfFeature)):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise UserError(
                    f"TrainConfig.{name}: {getattr(self, name)!r} is not one of {', '.join(map(repr, allowed))}"
                )
        checks = {
            "n_folds": self.n_folds >= 2,
            "gap": self.gap >= 0,
            "min_train": 0 < self.min_train < 1,
            "ridge_alpha": self.ridge_alpha >= 0,
            "min_labels": self.min_labels >= 1,
            "analysis_every": self.analysis_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise UserError(f"TrainConfig.{name}: {getattr(self, name)!r} is out of range")

    def model_part(self) -> dict:
        """The fields that change a single target's model (not which analyses run)."""
        return {
            k: getattr(self, k)
            for k in ("n_folds", "gap", "min_train", "seed", "params", "min_labels", "until")
        }
