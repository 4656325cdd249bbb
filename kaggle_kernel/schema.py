"""Facts of the competition: feature columns in file order and the 424 target definitions.

Read from schema.json beside this file, so the kernel and the offline trainers share one copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SCHEMA_FILE = Path(__file__).with_name("schema.json")
N_TARGETS = 424
LAGS = (1, 2, 3, 4)


@dataclass(frozen=True)
class TargetDef:
    """One target: `name` = log-return of `leg_a` minus that of `leg_b` (if any) over `lag` days."""

    name: str
    lag: int
    pair: str
    leg_a: str
    leg_b: str | None

    @property
    def index(self) -> int:
        return int(self.name.removeprefix("target_"))


def parse_pair(pair: str) -> tuple[str, str | None]:
    """Split a target_pairs.csv `pair` ("A" or "A - B") into its legs."""
    parts = pair.split(" - ")
    if len(parts) == 1 and parts[0].strip():
        return parts[0].strip(), None
    if len(parts) == 2 and all(p.strip() for p in parts):
        return parts[0].strip(), parts[1].strip()
    raise ValueError(f"pair {pair!r} is neither 'A' nor 'A - B'")


@cache
def _raw() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def feature_columns() -> list[str]:
    """The 557 feature columns of train.csv/test.csv, in file order (without date_id)."""
    return list(_raw()["feature_columns"])


def target_defs() -> list[TargetDef]:
    """The 424 target definitions in target order."""
    out = []
    for t in _raw()["targets"]:
        a, b = parse_pair(t["pair"])
        out.append(TargetDef(t["target"], int(t["lag"]), t["pair"], a, b))
    return out


def target_names() -> list[str]:
    return [f"target_{i}" for i in range(N_TARGETS)]
