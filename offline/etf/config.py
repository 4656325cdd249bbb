"""The ETF pipeline's one configuration: label, splits, search sizes, seeds; written to the run dir at prep."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from offline.errors import UserError

CONFIG_FILE = "config.json"


@dataclass
class EtfConfig:
    """Everything a stage needs to rerun alone. Splits are fixed here, before any result is seen."""

    source: str = "sp500"  # "sp500" (arch's S&P 500 + VIX) or a competition directory
    # Crash label, fixed before any result of the second attempt (issue 12) was seen: the maximum
    # drawdown over the next `horizon` trading days is at or below -depth. Not a tuning knob.
    horizon: int = 20
    depth: float = 0.08
    # Splits by calendar date (inclusive ends): train through 2014, validation 2015-2018, the test
    # block is every later row (none in arch's data, which ends in 2018). `start`/`end` slice the
    # data ("" = no limit; tests use a slice).
    start: str = ""
    end: str = ""
    train_end: str = "2014-12-31"
    validation_end: str = "2018-12-31"
    # Competition splits by date_id fraction (there are no calendar dates): train, validation, rest test.
    train_frac: float = 0.6
    validation_frac: float = 0.2
    # Competition tickers: first market ticker with data wins; defensive = equal weight of bond ETFs present.
    market_tickers: tuple[str, ...] = ("VT", "ACWI", "VEA", "RSP")
    defensive_tickers: tuple[str, ...] = ("BND", "AGG", "IEF")
    # Candidates (offline/etf/candidates.py) by purged expanding walk-forward folds of the train block.
    folds: int = 4
    gap: int = 0  # purge gap in rows; the effective gap is max(gap, horizon)
    # Timing benchmarks: moving-average timing (10 months) and momentum timing (6 months).
    ma_timing_window: int = 210
    # Strategy: trailing momentum window, cost per unit turnover, scan grid and its selection rule.
    momentum_window: int = 126
    cost_bps: float = 5.0
    grid_core: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    grid_alpha: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    grid_beta: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    grid_core2: tuple[float, ...] = (0.0, 0.25, 0.5)
    # Scan picks the best validation Sharpe among points whose validation max drawdown is at most
    # this share of buy-and-hold's (falls back to the best Sharpe when no point qualifies).
    scan_drawdown_ratio: float = 0.5
    # Walk-forward out-of-fold probabilities for the engine: first fit on this share, then chunks.
    oof_min_train_frac: float = 0.4
    oof_chunks: int = 5
    seed: int = 0
    threads: int = 2
    # The frozen design this run follows (a path to frozen.json); "" = search the design (cv stage).
    frozen: str = ""

    @property
    def purge(self) -> int:
        return max(self.gap, self.horizon)

    def validate(self) -> EtfConfig:
        if self.horizon < 1:
            raise UserError(f"horizon must be at least 1 trading day, got {self.horizon}")
        if not 0 < self.depth < 1:
            raise UserError(f"depth must be a fraction in (0, 1), e.g. 0.08 for -8%, got {self.depth}")
        if self.folds < 2:
            raise UserError(f"folds must be at least 2, got {self.folds}")
        if not (
            0 < self.train_frac and 0 < self.validation_frac and self.train_frac + self.validation_frac < 1
        ):
            raise UserError("train_frac and validation_frac must be positive and sum to less than 1")
        for name in ("start", "end", "train_end", "validation_end"):
            value = getattr(self, name)
            if value and not _is_date(value):
                raise UserError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
        if not (self.start or "0") <= self.train_end < self.validation_end <= (self.end or "9"):
            raise UserError(
                f"dates must satisfy start <= train_end < validation_end <= end, got "
                f"{self.start or '-'}, {self.train_end}, {self.validation_end}, {self.end or '-'}"
            )
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> EtfConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{CONFIG_FILE}: unknown keys {unknown}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values).validate()


def _is_date(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def save_config(run_dir: Path, config: EtfConfig) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    path.write_text(json.dumps(config.to_json(), indent=2) + "\n")
    return path


def load_config(run_dir: Path) -> EtfConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{path} is missing: run `python -m offline etf prep --out {run_dir}` first")
    return EtfConfig.from_json(json.loads(path.read_text()))
