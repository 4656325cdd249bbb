"""Stage fit: the CV survivors (or the frozen model) fit on the train block; validation picks one and
fits its calibration map (method chosen in CV, or frozen).

Inputs: datasets/frame.parquet, results/cv.json or the frozen design. Outputs: models/model.json
(ChosenModel), datasets/predictions.parquet (raw and calibrated probability of every row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.errors import UserError
from offline.etf import model as mdl
from offline.etf.candidates import BASELINE, candidate, fit, matrix
from offline.etf.config import EtfConfig
from offline.etf.files import ChosenModel, CvResult
from offline.etf.frozen import load_frozen
from offline.etf.stages.common import FRAME, PREDICTIONS, labelled, read_frame, write_frame

KEEP = (
    "date_id",
    "date",
    "block",
    "label_ok",
    "crash",
    "fwd_mdd",
    "naive_score",
    "naive_flag",
    "close",
    "ret_simple",
    "def_ret",
    "alloc_momentum",
    "ma_gap",
)


def design_choices(run_dir: Path, cfg: EtfConfig) -> tuple[list[tuple[str, dict, str]], str]:
    """[(candidate, params, calibration method)] to fit, and how they were chosen."""
    if cfg.frozen:
        fz = load_frozen(cfg.frozen)
        if fz is None:
            raise UserError(f"frozen design {cfg.frozen} is missing (config.json names it)")
        return [
            (fz.model["name"], fz.model["params"], fz.calibration["method"])
        ], f"frozen design {fz.code_hash[:12]}"
    cv = CvResult.load(run_dir)
    names = cv.survivors or [BASELINE]
    how = (
        "highest validation PR AUC among the CV survivors"
        if cv.survivors
        else "no candidate beat the naive rule in CV: the naive rule, calibrated"
    )
    return [(n, cv.best[n]["params"], cv.calibration[n]["method"]) for n in names], how


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    frame = read_frame(run_dir, FRAME)
    train, val = labelled(frame, "train"), labelled(frame, "validation")
    y_val = val["crash"].to_numpy().astype(float)
    choices, how = design_choices(run_dir, cfg)
    fits, ranks = [], {}
    for name, params, method in choices:
        model = fit(candidate(name), params, train, cfg.seed, cfg.threads)
        raw_val = model.predict(matrix(val, model.features))
        ranks[name] = mdl.ranking(y_val, raw_val)
        fits.append((model, method, raw_val))
    model, method, raw_val = max(fits, key=lambda f: (ranks[f[0].name]["pr_auc"], -fits.index(f)))
    cal = mdl.fit_calibration(method, raw_val, y_val)
    cal["brier"] = {
        "raw": mdl.brier(y_val, raw_val),
        "calibrated": mdl.brier(y_val, mdl.apply_calibration(cal, raw_val)),
    }
    cal["rows"] = len(y_val)
    raw = model.predict(matrix(frame, model.features))
    preds = frame.select(KEEP).with_columns(
        pl.Series("prob_raw", raw), pl.Series("prob", mdl.apply_calibration(cal, raw))
    )
    write_frame(preds, run_dir, PREDICTIONS)
    naive_val = mdl.ranking(y_val, np.nan_to_num(val["naive_score"].to_numpy().astype(float)))
    ChosenModel(
        model=model.to_json(), calibration=cal, chosen_by=how, validation=ranks, naive_validation=naive_val
    ).save(run_dir)
    return {"model": model.name, "calibration": method, "validation": ranks[model.name], "naive": naive_val}
