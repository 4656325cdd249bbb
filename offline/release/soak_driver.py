"""The soak's kernel side: serve a long run of days with the packaged Predictor, measure each call.

Run with Kaggle's python (.venv-kaggle) by `offline.release.soak`; imports only the standard
library, polars, numpy and the `kaggle_kernel` shipped inside the artifacts (as on Kaggle).
argv: ARTIFACTS DATA_DIR PLAN_JSON OUT_JSON. The plan names the columns that go dark and for
which date_ids, the day sent twice and the day never sent.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl


def rss_mb() -> float:
    """The process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def held_days(predictor) -> int:
    """Price and label days the Predictor's histories hold now: the state a call's work scales with."""
    histories = [h for h in (predictor.history, predictor.crash_history) if h is not None]
    return sum(len(h.prices) + len(h.labels) for h in histories)


def bad_row(row: pl.DataFrame, n_targets: int) -> bool:
    """Not one row of n_targets finite floats that are not all equal."""
    if row.shape != (1, n_targets) or not all(t == pl.Float64 for t in row.dtypes):
        return True
    values = row.to_numpy().ravel()
    return not np.isfinite(values).all() or np.ptp(values) == 0


def main() -> None:
    artifacts, data_dir, plan_path, out_path = (Path(a) for a in sys.argv[1:5])
    plan = json.loads(plan_path.read_text())
    sys.path.insert(0, str(artifacts))
    from kaggle_kernel.predictor import Predictor

    predictor = Predictor.from_artifacts(artifacts)
    test = pl.read_csv(data_dir / "test.csv")
    lags = [
        pl.read_csv(data_dir / "lagged_test_labels" / f"test_labels_lag_{lag}.csv") for lag in (1, 2, 3, 4)
    ]
    lo, hi = plan["dark_days"]
    dark = pl.col("date_id").is_between(lo, hi)
    test = test.with_columns(
        pl.when(dark).then(None).otherwise(pl.col(c)).alias(c) for c in plan["dark_columns"]
    )
    days = [d for d in test["date_id"].unique(maintain_order=True).to_list() if d != plan["skip_day"]]
    at = days.index(plan["repeat_day"])
    days = days[: at + 1] + [plan["repeat_day"]] + days[at + 1 :]
    ms, cpu_ms, rss, held, bad = [], [], [], [], 0
    n_targets = sum(1 for b in lags for c in b.columns if c.startswith("target_"))
    for d in days:
        batch = (test.filter(pl.col("date_id") == d), *[f.filter(pl.col("date_id") == d) for f in lags])
        start, cpu = time.perf_counter(), time.process_time()
        row = predictor.predict(*batch)
        ms.append((time.perf_counter() - start) * 1000)
        cpu_ms.append((time.process_time() - cpu) * 1000)
        rss.append(rss_mb())
        held.append(held_days(predictor))
        bad += int(bad_row(row, n_targets))
    errors = {part: int(n) for part, n in predictor.errors.items()}
    out = {
        "ms": ms,
        "cpu_ms": cpu_ms,
        "rss_mb": rss,
        "held_days": held,
        "bad_rows": bad,
        "errors": errors,
        "days": [int(d) for d in days],
    }
    out_path.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
