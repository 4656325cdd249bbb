"""`python -m offline compare RUN_A RUN_B`: two training runs' OOF predictions, paired on their common days.

Both runs must come from the same competition directory; the labels are read from it, the days
are those on which both runs have an out-of-fold prediction, the targets those both predict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.data.competition import load_competition
from offline.errors import UserError
from offline.train.evaluate import daily_scores, interval, paired
from offline.train.run_files import REPORT_FILE, DataInfo, TrainReport


def _run(path: Path) -> tuple[DataInfo, pl.DataFrame]:
    """The training data of a finished run (from its report.json) and its OOF predictions."""
    for f in (path / REPORT_FILE, path / "oof.parquet"):
        if not f.exists():
            raise UserError(f"{f} not found: {path} is not a finished training run")
    return TrainReport.load(path).data, pl.read_parquet(path / "oof.parquet")


def compare(run_a: Path | str, run_b: Path | str) -> dict:
    """Scores of A and B on their common OOF days and targets, and B - A with its 90% interval."""
    from offline.train.dataset import training_frames

    (ra, oa), (rb, ob) = _run(Path(run_a)), _run(Path(run_b))
    if Path(ra.dir).resolve() != Path(rb.dir).resolve():
        raise UserError(f"{run_a} trained on {ra.dir}, {run_b} on {rb.dir}: not comparable")
    names = [c for c in oa.columns if c.startswith("target_") and c in ob.columns]
    a = oa.select("date_id", *names)
    b = ob.select("date_id", *names)
    joined = a.join(b, on="date_id", suffix="_b")
    A = joined.select(names).cast(pl.Float64).to_numpy()
    B = joined.select([f"{n}_b" for n in names]).cast(pl.Float64).to_numpy()
    keep_t = ~(np.isnan(A).all(axis=0) | np.isnan(B).all(axis=0))
    both = ~np.isnan(A[:, keep_t]).all(axis=1) & ~np.isnan(B[:, keep_t]).all(axis=1)
    if not both.any():
        raise UserError(f"{run_a} and {run_b} have no out-of-fold day and target in common")
    days = joined["date_id"].to_numpy()
    _, labels = training_frames(load_competition(ra.dir, require_legs=False), ra.until)
    wide = pl.DataFrame({"date_id": days}).join(labels, on="date_id", how="left")
    kept = [n for n, k in zip(names, keep_t, strict=True) if k]
    Y = wide.select(kept).cast(pl.Float64).to_numpy()
    _, ca, _ = daily_scores(A[:, keep_t], Y, both)
    _, cb, _ = daily_scores(B[:, keep_t], Y, both)
    return {
        "days": len(ca),
        "targets": len(kept),
        "a": {"run": str(run_a), "score": _score(ca), "interval": interval(ca)},
        "b": {"run": str(run_b), "score": _score(cb), "interval": interval(cb)},
        "b_minus_a": paired(cb, ca),
    }


def _score(corr: np.ndarray) -> float:
    return float(np.mean(corr) / np.std(corr)) if np.std(corr) > 0 else float("nan")


def _bounds(iv: list[float] | None) -> list[float]:
    """An interval's bounds; NaN for one the bootstrap could not give (evaluate.central_interval)."""
    return iv or [float("nan")] * 2


def print_comparison(c: dict) -> None:
    d = c["b_minus_a"]
    lo, hi = _bounds(d.get("score_difference_interval"))
    for side in ("a", "b"):
        s = c[side]
        iv = _bounds(s["interval"])
        print(f"{side.upper()} {s['run']}: {s['score']:.4f} [{iv[0]:.3f}, {iv[1]:.3f}]")
    print(
        f"B - A on {c['days']} common OOF days, {c['targets']} targets: {d['score_difference']:+.4f} "
        f"(90% interval [{lo:+.3f}, {hi:+.3f}]); mean daily gain {d['mean_daily_gain']:+.4f}, t = {d['t']:.2f}"
    )
