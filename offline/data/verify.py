"""Recompute every label the prices determine and compare it with the published label files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import polars as pl

from kaggle_kernel.schema import target_defs
from offline.data.competition import TRAIN_LABELS, Competition, lag_file, load_competition
from offline.data.targets import compute_targets
from offline.errors import DataError

TOLERANCE = 1e-5


@dataclass
class Comparison:
    """Counts over (label date, target) cells. `undetermined`: published, but prices cannot recompute it."""

    compared: int = 0
    mismatched: int = 0
    max_abs_error: float = 0.0
    undetermined: int = 0
    determined_but_null: int = 0
    worst: list[dict] = field(default_factory=list)

    def add(self, other: Comparison) -> None:
        self.compared += other.compared
        self.mismatched += other.mismatched
        self.max_abs_error = max(self.max_abs_error, other.max_abs_error)
        self.undetermined += other.undetermined
        self.determined_but_null += other.determined_but_null
        self.worst = sorted(self.worst + other.worst, key=lambda w: -w["abs_error"])[:5]


def _long(frame: pl.DataFrame, date_col: str, value: str) -> pl.DataFrame:
    names = [c for c in frame.columns if c.startswith("target_")]
    return frame.select(pl.col(date_col).alias("date_id"), *names).unpivot(
        index="date_id", variable_name="target", value_name=value
    )


def compare_labels(
    published: pl.DataFrame, recomputed: pl.DataFrame, source: str, date_col: str = "date_id"
) -> Comparison:
    """Compare published labels (wide) with recomputed ones on their common (date, target) cells."""
    pub = _long(published, date_col, "published")
    rec = _long(recomputed, "date_id", "recomputed")
    both = pub.join(rec, on=["date_id", "target"], how="left").with_columns(
        (pl.col("published") - pl.col("recomputed")).abs().alias("abs_error")
    )
    has_pub, has_rec = pl.col("published").is_not_null(), pl.col("recomputed").is_not_null()
    stats = both.select(
        (has_pub & has_rec).sum().alias("compared"),
        (pl.col("abs_error") > TOLERANCE).sum().alias("mismatched"),
        pl.col("abs_error").max().fill_null(0.0).alias("max_abs_error"),
        (has_pub & ~has_rec).sum().alias("undetermined"),
        (~has_pub & has_rec).sum().alias("determined_but_null"),
    ).row(0, named=True)
    worst = (
        both.filter(pl.col("abs_error") > TOLERANCE)
        .sort("abs_error", descending=True)
        .head(5)
        .with_columns(pl.lit(source).alias("file"))
        .to_dicts()
    )
    return Comparison(
        worst=worst, **{k: (float(v) if k == "max_abs_error" else int(v)) for k, v in stats.items()}
    )


def missing_legs(comp: Competition) -> list[str]:
    """Pair legs that are not price columns (their targets' labels cannot be recomputed)."""
    have = set(comp.feature_columns)
    return sorted({leg for t in target_defs() for leg in (t.leg_a, t.leg_b) if leg and leg not in have})


def verify(comp: Competition) -> dict:
    """Per-file and total comparison of published labels with labels recomputed from prices."""
    absent = set(missing_legs(comp))
    defs = [t for t in target_defs() if not ({t.leg_a, t.leg_b} & absent)]
    recomputed = compute_targets(comp.prices(), defs)
    per_file: dict[str, Comparison] = {}
    if comp.train_labels is not None:
        per_file[TRAIN_LABELS] = compare_labels(comp.train_labels, recomputed, TRAIN_LABELS)
    for lag, frame in sorted(comp.lagged.items()):
        per_file[lag_file(lag)] = compare_labels(frame, recomputed, lag_file(lag), date_col="label_date_id")
    total = Comparison()
    for c in per_file.values():
        total.add(c)
    out = asdict(total)
    out["ok"] = total.mismatched == 0 and total.compared > 0
    out["tolerance"] = TOLERANCE
    out["missing_legs"] = sorted(absent)
    out["files"] = {
        name: {k: v for k, v in asdict(c).items() if k != "worst"} for name, c in per_file.items()
    }
    return out


def load_verified(path) -> Competition:
    """load_competition, then the label check of `data verify`: what verify rejects, this rejects."""
    comp = load_competition(path, require_legs=False)
    result = verify(comp)
    if result["compared"] == 0:
        raise DataError(str(path), "no published label could be compared with the prices: nothing verified")
    if result["mismatched"]:
        w = result["worst"][0]
        raise DataError(
            w["file"],
            f"{result['mismatched']} label(s) disagree with the prices, e.g. date {w['date_id']} {w['target']}: "
            f"published {w['published']:.8g}, recomputed {w['recomputed']:.8g} (python -m offline data verify)",
        )
    return comp
