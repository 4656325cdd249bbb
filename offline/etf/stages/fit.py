"""Stage fit: the naive rule and the CV survivors (or the frozen model) fit on the train block;
validation picks one (CHOICE) and fits its calibration map (the rank-keeping sigmoid, or frozen).

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


CHOICE = (
    "among the naive rule and the CV survivors, the highest min(validation PR AUC / the rule's, "
    "validation ROC AUC / the rule's); the naive rule (1.0) unless a survivor beats it on both"
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
    names = [BASELINE, *cv.survivors]
    return [(n, cv.best[n]["params"], cv.calibration[n]["method"]) for n in names], CHOICE


def pick(ranks: dict[str, dict], naive: dict) -> str:
    """CHOICE: the highest worse-of-two relative gain over the rule on validation; the rule on ties."""
    gain = {n: min(r["pr_auc"] / naive["pr_auc"], r["roc_auc"] / naive["roc_auc"]) for n, r in ranks.items()}
    return max(gain, key=lambda n: (gain[n], n == BASELINE))


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    frame = read_frame(run_dir, FRAME)
    train, val = labelled(frame, "train"), labelled(frame, "validation")
    y_val = val["crash"].to_numpy().astype(float)
    choices, how = design_choices(run_dir, cfg)
    naive_val = mdl.ranking(y_val, np.nan_to_num(val["naive_score"].to_numpy().astype(float)))
    fits, ranks = {}, {}
    for name, params, method in choices:
        model = fit(candidate(name), params, train, cfg.seed, cfg.threads)
        raw_val = model.predict(matrix(val, model.features))
        ranks[name] = mdl.ranking(y_val, raw_val)
        fits[name] = (model, method, raw_val)
    model, method, raw_val = fits[pick(ranks, naive_val)]
    cal = mdl.calibrate(raw_val, y_val, method)
    raw = model.predict(matrix(frame, model.features))
    preds = frame.select(KEEP).with_columns(
        pl.Series("prob_raw", raw), pl.Series("prob", mdl.apply_calibration(cal, raw))
    )
    write_frame(preds, run_dir, PREDICTIONS)
    ChosenModel(
        model=model.to_json(), calibration=cal, chosen_by=how, validation=ranks, naive_validation=naive_val
    ).save(run_dir)
    return {"model": model.name, "calibration": method, "validation": ranks[model.name], "naive": naive_val}
