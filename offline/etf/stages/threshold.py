"""Stage threshold: scan thresholds on the calibrated validation probabilities; keep the F2-best.

Inputs: datasets/predictions.parquet. Outputs: results/threshold.json (ThresholdChoice),
results/threshold_curve.csv, results/threshold.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.etf import model as mdl
from offline.etf import plots
from offline.etf.config import EtfConfig
from offline.etf.files import ThresholdChoice
from offline.etf.stages.common import PREDICTIONS, labelled, read_frame, results_dir

THRESHOLDS = np.round(np.arange(0.005, 1.0, 0.005), 3)


def pick_threshold(curve: dict[str, np.ndarray]) -> int:
    """Index of the F2-best threshold; ties go to the middle of the tied thresholds."""
    f2 = curve["f2"]
    tied = np.flatnonzero(np.isclose(f2, f2.max(), rtol=0, atol=1e-12))
    return int(tied[len(tied) // 2])


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    results = results_dir(run_dir)
    val = labelled(read_frame(run_dir, PREDICTIONS), "validation")
    y, p = val["crash"].to_numpy(), val["prob"].to_numpy()
    curve = mdl.threshold_curve(y, p, THRESHOLDS)
    i = pick_threshold(curve)
    pl.DataFrame(curve).write_csv(results / "threshold_curve.csv")
    best = ThresholdChoice(
        threshold=float(THRESHOLDS[i]),
        f2=float(curve["f2"][i]),
        precision=float(curve["precision"][i]),
        recall=float(curve["recall"][i]),
        rows=len(y),
        positives=int(y.sum()),
    )
    best.save(run_dir)
    plots.threshold_curve(curve, best.threshold, results / "threshold.png")
    return {"threshold": best.threshold, "f2": best.f2}
